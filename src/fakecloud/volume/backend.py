"""Cinder's state: volumes, their attachments, per-project quota overrides.

Cinder owns volume attachments: Nova's os-volume_attachments views read the same `Attachment` records
through `reserve_attachment`, `begin_detach`, `attachments_of_server` and `server_deleted`.

Every server GET reads its attachments, so attachments are indexed by server and by id. A volume's
`attachments` list is only ever changed through `_add_attachment`, `_remove_attachment` and
`_rekey_attachment`, which keep both indexes in step.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from fakecloud.backend import Backend
from fakecloud.errors import BadRequest, Conflict, Forbidden, NotFound, QuotaExceeded

DEFAULT_TYPE = "__DEFAULT__"
DEFAULT_TYPE_ID = "7b8a9c4e-2d1f-5e3a-8b6c-0d9e1f2a3b4c"
DEFAULT_AZ = "nova"
HOST = "fakecloud@lvm#lvm"

# Statuses Cinder lets a volume be deleted from (cinder/volume/api.py `delete`).
DELETABLE = ("available", "error", "error_restoring", "error_extending", "error_managing")
DELETE_REFUSED = (
    "Invalid volume: Volume status must be available or error or error_restoring or error_extending or "
    "error_managing and must not be migrating, attached, belong to a group, have snapshots or be "
    "disassociated from snapshots after volume transfer."
)
# Transitional statuses that `load()` settles: status -> status it lands in.
SETTLE = {"creating": "available", "extending": None, "deleting": None, "attaching": "in-use", "detaching": None}
# Cinder quota classes this cloud reports but never consumes.
FIXED_QUOTAS = {"snapshots": 10, "backups": 10, "backup_gigabytes": 1000, "groups": 10, "per_volume_gigabytes": -1}
QUOTA_KEYS = ("volumes", "gigabytes")


@dataclass(slots=True)
class Attachment:
    id: str
    volume_id: str
    server_id: str
    device: str
    attached_at: str
    host_name: str | None = None
    # Cinder attachment status: reserved, attaching, attached, detaching, error_attaching, error_detaching.
    status: str = "attaching"
    mode: str = "rw"


@dataclass(slots=True)
class Volume:
    id: str
    name: str | None
    size: int
    status: str
    project_id: str
    user_id: str
    created_at: str
    updated_at: str
    description: str | None = None
    volume_type: str = DEFAULT_TYPE
    availability_zone: str = DEFAULT_AZ
    metadata: dict[str, str] = field(default_factory=dict)
    attachments: list[Attachment] = field(default_factory=list)
    bootable: bool = False
    readonly: bool = False
    snapshot_id: str | None = None
    source_volid: str | None = None
    image_id: str | None = None
    image_metadata: dict[str, str] = field(default_factory=dict)
    migration_status: str | None = None
    previous_status: str | None = None  # the status an extend returns to
    pending_size: int | None = None  # the size an extend in progress grows to
    seq: int = 0  # creation order, for newest-first listing with equal timestamps

    @property
    def attach_status(self) -> str:
        return "attached" if any(a.status in ("attached", "detaching") for a in self.attachments) else "detached"


class VolumeBackend(Backend):
    name = "volume"

    def reset(self) -> None:
        self.volumes: dict[str, Volume] = {}
        self.quota_overrides: dict[str, dict[str, int]] = {}
        self._seq = itertools.count(1)
        self._reindex()

    # attachment indexes -----------------------------------------------------------------------
    def _reindex(self) -> None:
        """Rebuild the attachment indexes from the volumes (after reset or load)."""
        self._by_server: dict[str, dict[str, Attachment]] = {}
        self._by_id: dict[str, Attachment] = {}
        for volume in self.volumes.values():
            for attachment in volume.attachments:
                self._index_attachment(attachment)

    def _index_attachment(self, attachment: Attachment) -> None:
        self._by_server.setdefault(attachment.server_id, {})[attachment.id] = attachment
        self._by_id[attachment.id] = attachment

    def _unindex_attachment(self, attachment: Attachment) -> None:
        self._by_id.pop(attachment.id, None)
        mine = self._by_server.get(attachment.server_id)
        if mine is not None:
            mine.pop(attachment.id, None)
            if not mine:
                del self._by_server[attachment.server_id]

    def _add_attachment(self, volume: Volume, attachment: Attachment) -> None:
        volume.attachments.append(attachment)
        self._index_attachment(attachment)

    def _remove_attachment(self, volume: Volume, attachment: Attachment) -> None:
        volume.attachments = [a for a in volume.attachments if a.id != attachment.id]
        self._unindex_attachment(attachment)

    def _remove_attachments(self, volume: Volume, doomed: list[Attachment]) -> None:
        for attachment in doomed:
            self._remove_attachment(volume, attachment)

    def _rekey_attachment(self, attachment: Attachment, server_id: str) -> None:
        """os-attach names the server of a reserved attachment: move it in the server index."""
        self._unindex_attachment(attachment)
        attachment.server_id = server_id
        self._index_attachment(attachment)

    def _in_volume_order(self, attachments: list[Attachment]) -> list[Attachment]:
        """Order as a scan of the volumes would: by volume creation, then the volume's own list order."""
        volumes = sorted({a.volume_id for a in attachments if a.volume_id in self.volumes},
                         key=lambda v: self.volumes[v].seq)
        wanted = {a.id for a in attachments}
        return [a for v in volumes for a in self.volumes[v].attachments if a.id in wanted]

    # lookups ----------------------------------------------------------------------------------
    def get_volume(self, volume_id: str, project_id: str | None) -> Volume:
        """A volume by id; another project's volume is as unknown as a missing one."""
        volume = self.volumes.get(volume_id)
        if volume is None or (project_id is not None and volume.project_id != project_id):
            raise NotFound(f"Volume {volume_id} could not be found.")
        return volume

    def list_volumes(self, project_id: str | None, filters: dict[str, str] | None = None) -> list[Volume]:
        """Newest first; `filters` match name, status, project, bootable and availability zone exactly."""
        filters = filters or {}
        result = []
        for volume in self.volumes.values():
            if project_id is not None and volume.project_id != project_id:
                continue
            if "name" in filters and volume.name != filters["name"]:
                continue
            if "status" in filters and volume.status != filters["status"]:
                continue
            if "project_id" in filters and volume.project_id != filters["project_id"]:
                continue
            if "bootable" in filters and str(volume.bootable).lower() != filters["bootable"].lower():
                continue
            if "availability_zone" in filters and volume.availability_zone != filters["availability_zone"]:
                continue
            result.append(volume)
        result.sort(key=lambda v: v.seq, reverse=True)
        return result

    def attachments_of_server(self, server_id: str) -> list[Attachment]:
        mine = self._by_server.get(server_id)
        if not mine:
            return []
        if len(mine) == 1:
            return list(mine.values())
        return self._in_volume_order(list(mine.values()))

    def list_attachments(self, project_id: str | None) -> list[Attachment]:
        """Every attachment (of the project's volumes), read from the index rather than every volume."""
        found = [a for a in self._by_id.values()
                 if a.volume_id in self.volumes and project_id in (None, self.volumes[a.volume_id].project_id)]
        return self._in_volume_order(found)

    def get_attachment(self, attachment_id: str, project_id: str | None) -> tuple[Volume, Attachment]:
        attachment = self._by_id.get(attachment_id)
        volume = self.volumes.get(attachment.volume_id) if attachment is not None else None
        if attachment is None or volume is None or (project_id is not None and volume.project_id != project_id):
            raise NotFound(f"Volume attachment {attachment_id} could not be found.")
        return volume, attachment

    # quotas -----------------------------------------------------------------------------------
    def quota_limits(self, project_id: str) -> dict[str, int]:
        quotas = self.cloud.config.quotas
        limits = {"volumes": quotas.volumes, "gigabytes": quotas.gigabytes, **FIXED_QUOTAS}
        limits.update(self.quota_overrides.get(project_id, {}))
        return limits

    def quota_usage(self, project_id: str) -> dict[str, int]:
        mine = [v for v in self.volumes.values() if v.project_id == project_id]
        return {"volumes": len(mine), "gigabytes": sum(v.size for v in mine)}

    def set_quotas(self, project_id: str, values: dict[str, int]) -> dict[str, int]:
        self.quota_overrides.setdefault(project_id, {}).update(values)
        return self.quota_limits(project_id)

    def _check_quota(self, project_id: str, volumes: int, gigabytes: int) -> None:
        limits, used = self.quota_limits(project_id), self.quota_usage(project_id)
        if volumes and limits["volumes"] >= 0 and used["volumes"] + volumes > limits["volumes"]:
            raise QuotaExceeded(
                f"VolumeLimitExceeded: Maximum number of volumes allowed ({limits['volumes']}) exceeded for "
                "quota 'volumes'.", status=413)
        if gigabytes and limits["gigabytes"] >= 0 and used["gigabytes"] + gigabytes > limits["gigabytes"]:
            raise QuotaExceeded(
                "VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed gigabytes quota. "
                f"Requested {gigabytes}G, quota is {limits['gigabytes']}G and {used['gigabytes']}G has been "
                "consumed.", status=413)

    # volume lifecycle ---------------------------------------------------------------------------
    def create_volume(
        self,
        project_id: str,
        user_id: str,
        size: int,
        name: str | None = None,
        description: str | None = None,
        volume_type: str | None = None,
        availability_zone: str | None = None,
        metadata: dict[str, str] | None = None,
        image_ref: str | None = None,
        snapshot_id: str | None = None,
        source_volid: str | None = None,
    ) -> Volume:
        """Validate, charge quota, and start the creating -> available transition."""
        if volume_type not in (None, DEFAULT_TYPE, DEFAULT_TYPE_ID):
            raise NotFound(f"Volume type with name {volume_type} could not be found.")
        if availability_zone not in (None, DEFAULT_AZ):
            raise BadRequest(f"Invalid input received: Availability zone '{availability_zone}' is invalid.")
        if snapshot_id is not None:
            raise NotFound(f"Snapshot {snapshot_id} could not be found.")
        if source_volid is not None:
            source = self.get_volume(source_volid, project_id)
            if size < source.size:
                raise BadRequest("Invalid input received: Volume size cannot be lesser than the source volume size.")
        image = None
        if image_ref is not None:
            image = self._find_image(image_ref)
            if getattr(image, "status", "active") != "active":
                # Cinder copies the image's data, so only an active image can seed a volume.
                raise BadRequest(f"Invalid input received: Image {image.id} is not active.")
            if size < image.min_disk:
                raise BadRequest(f"Invalid input received: Volume size {size}GB cannot be smaller than the image "
                                 f"minDisk size {image.min_disk}GB.")
        self._check_quota(project_id, 1, size)
        now = self.now()
        volume = Volume(
            id=str(uuid.uuid4()), name=name, size=size, status="creating", project_id=project_id,
            user_id=user_id, created_at=now, updated_at=now, description=description,
            metadata=dict(metadata or {}), source_volid=source_volid, seq=next(self._seq),
        )
        if image is not None:
            volume.image_id = image.id
            volume.bootable = True
            volume.image_metadata = {
                "image_id": image.id, "image_name": image.name, "min_disk": str(image.min_disk),
                "min_ram": str(image.min_ram), "disk_format": image.disk_format,
                "container_format": getattr(image, "container_format", "bare"),
            }
        self.volumes[volume.id] = volume
        fault = self.resource_fault("volume.create", project_id)
        if fault is None:
            self.after("volume_create", self._finish_create, volume.id)
        elif fault.action == "error_status":
            self._set(volume, "error")
        return volume

    def _find_image(self, image_ref: str) -> Any:
        finder = getattr(self.cloud.image, "find_image", None)
        if finder is None:
            raise NotFound(f"Image {image_ref} could not be found.")
        return finder(image_ref)

    def _finish_create(self, volume_id: str) -> None:
        volume = self.volumes.get(volume_id)
        if volume is not None and volume.status == "creating":
            self._set(volume, "available")

    def update_volume(self, volume_id: str, project_id: str | None, changes: dict[str, Any]) -> Volume:
        volume = self.get_volume(volume_id, project_id)
        if "name" in changes:
            volume.name = changes["name"]
        if "description" in changes:
            volume.description = changes["description"]
        if "metadata" in changes:
            volume.metadata = dict(changes["metadata"] or {})
        volume.updated_at = self.now()
        return volume

    def set_metadata(self, volume_id: str, project_id: str | None, metadata: dict[str, str], replace: bool) -> Volume:
        volume = self.get_volume(volume_id, project_id)
        volume.metadata = dict(metadata) if replace else {**volume.metadata, **metadata}
        volume.updated_at = self.now()
        return volume

    def delete_metadata_key(self, volume_id: str, project_id: str | None, key: str) -> None:
        volume = self.get_volume(volume_id, project_id)
        if key not in volume.metadata:
            raise NotFound(f"Metadata item was not found: {key}")
        del volume.metadata[key]
        volume.updated_at = self.now()

    def delete_volume(self, volume_id: str, project_id: str | None, force: bool = False) -> None:
        """Cinder refuses attached or busy volumes; `force` (admin) only skips the status check."""
        volume = self.get_volume(volume_id, project_id)
        if volume.status == "deleting":
            return
        if volume.attachments or volume.migration_status or (not force and volume.status not in DELETABLE):
            raise BadRequest(DELETE_REFUSED)
        self._set(volume, "deleting")
        fault = self.resource_fault("volume.delete", volume.project_id)
        if fault is None:
            self.after("volume_delete", self._finish_delete, volume.id)
        elif fault.action == "error_status":
            self._set(volume, "error_deleting")

    def _finish_delete(self, volume_id: str) -> None:
        volume = self.volumes.get(volume_id)
        if volume is not None and volume.status == "deleting":
            self._remove_attachments(volume, list(volume.attachments))
            del self.volumes[volume_id]
            self.cloud.guests.volume_deleted(volume_id)

    def extend_volume(self, volume_id: str, project_id: str | None, new_size: int, allow_in_use: bool) -> Volume:
        """Grow only; an in-use volume only when the request's microversion allows it (>= 3.42)."""
        volume = self.get_volume(volume_id, project_id)
        allowed = ("available", "in-use") if allow_in_use else ("available",)
        if volume.status not in allowed:
            wanted = "'available' or 'in-use'" if allow_in_use else "'available'"
            raise BadRequest(f"Invalid volume: Volume status must be {wanted} to extend, but current status is: "
                             f"{volume.status}.")
        if new_size <= volume.size:
            raise BadRequest("Invalid input received: New size for extend must be greater than current size. "
                             f"(current: {volume.size}, extend: {new_size}).")
        self._check_quota(volume.project_id, 0, new_size - volume.size)
        volume.previous_status, volume.pending_size = volume.status, new_size
        self._set(volume, "extending")
        fault = self.resource_fault("volume.extend", volume.project_id)
        if fault is None:
            self.after("volume_extend", self._finish_extend, volume.id)
        elif fault.action == "error_status":
            volume.previous_status = volume.pending_size = None
            self._set(volume, "error_extending")
        return volume

    def _finish_extend(self, volume_id: str) -> None:
        volume = self.volumes.get(volume_id)
        if volume is not None and volume.status == "extending":
            self._complete_extend(volume)
            volume.updated_at = self.now()

    @staticmethod
    def _complete_extend(volume: Volume) -> None:
        volume.size = volume.pending_size or volume.size
        status = volume.previous_status or "available"
        # The server may have gone away meanwhile (server_deleted): no attachment left, nothing is in use.
        volume.status = "available" if status == "in-use" and not volume.attachments else status
        volume.previous_status = volume.pending_size = None

    def reset_status(self, volume_id: str, status: str | None, attach_status: str | None,
                     migration_status: str | None) -> Volume:
        """Admin's os-reset_status: force the record, dropping attachments when told it is detached."""
        volume = self.get_volume(volume_id, None)
        if attach_status == "detached":
            self._remove_attachments(volume, list(volume.attachments))
        if status:
            self._set(volume, status)
        if migration_status is not None:
            volume.migration_status = None if migration_status in ("", "none") else migration_status
        return volume

    def set_bootable(self, volume_id: str, project_id: str | None, bootable: bool) -> None:
        volume = self.get_volume(volume_id, project_id)
        volume.bootable = bootable
        volume.updated_at = self.now()

    def set_readonly(self, volume_id: str, project_id: str | None, readonly: bool) -> None:
        volume = self.get_volume(volume_id, project_id)
        volume.readonly = readonly
        volume.updated_at = self.now()

    # attachments (the contract Nova calls) ----------------------------------------------------
    def reserve_attachment(self, volume_id: str, server_id: str, project_id: str, device: str | None) -> Attachment:
        """Record the attachment now (status attaching); `volume_attach` later makes the volume in-use."""
        volume = self.get_volume(volume_id, project_id)
        if any(a.server_id == server_id for a in volume.attachments):
            raise Conflict(f"Volume {volume_id} is already attached to server {server_id}.")
        if volume.status != "available":
            raise BadRequest(f"Invalid volume: volume {volume_id} status must be available, but current status "
                             f"is: {volume.status}.")
        attachment = Attachment(
            id=str(uuid.uuid4()), volume_id=volume.id, server_id=server_id,
            device=device or self._next_device(server_id), attached_at=self.now(),
        )
        self._add_attachment(volume, attachment)
        self._start_attach(volume, attachment)
        return attachment

    def _start_attach(self, volume: Volume, attachment: Attachment) -> None:
        attachment.status = "attaching"
        self._set(volume, "attaching")
        fault = self.resource_fault("volume.attach", volume.project_id)
        if fault is None:
            self.after("volume_attach", self._finish_attach, volume.id, attachment.id)
        elif fault.action == "error_status":
            attachment.status = "error_attaching"
            self._set(volume, "error_attaching")

    def _next_device(self, server_id: str) -> str:
        used = {a.device for a in self.attachments_of_server(server_id)}
        for letter in "bcdefghijklmnopqrstuvwxyz":
            if f"/dev/vd{letter}" not in used:
                return f"/dev/vd{letter}"
        raise BadRequest("No free device name is left on this server.")

    def _finish_attach(self, volume_id: str, attachment_id: str) -> None:
        volume = self.volumes.get(volume_id)
        if volume is None or volume.status != "attaching":
            return
        attachment = next((a for a in volume.attachments if a.id == attachment_id), None)
        if attachment is None or attachment.status != "attaching":
            return
        attachment.status = "attached"
        attachment.attached_at = self.now()
        self._set(volume, "in-use")
        self.cloud.guests.server_changed(attachment.server_id)

    def begin_detach(self, volume_id: str, server_id: str) -> None:
        """Status detaching now; after `volume_detach` the attachment is gone and the volume available."""
        volume = self.volumes.get(volume_id)
        attachment = None
        if volume is not None:
            attachment = next((a for a in volume.attachments if a.server_id == server_id), None)
        if volume is None or attachment is None:
            raise NotFound(f"Volume {volume_id} is not attached to server {server_id}.")
        self._start_detach(volume, attachment)

    def _start_detach(self, volume: Volume, attachment: Attachment) -> None:
        if volume.status in ("extending", "deleting"):
            raise BadRequest(f"Invalid volume: Unable to detach volume. Volume status must be 'in-use' and "
                             f"attach_status must be 'attached' to detach, but current status is: {volume.status}.")
        attachment.status = "detaching"
        self._set(volume, "detaching")
        fault = self.resource_fault("volume.detach", volume.project_id)
        if fault is None:
            self.after("volume_detach", self._finish_detach, volume.id, attachment.id)
        elif fault.action == "error_status":
            attachment.status = "error_detaching"
            self._set(volume, "error_detaching")

    def _finish_detach(self, volume_id: str, attachment_id: str) -> None:
        volume = self.volumes.get(volume_id)
        if volume is None or volume.status != "detaching":
            return
        attachment = next((a for a in volume.attachments if a.id == attachment_id), None)
        if attachment is not None:
            self._remove_attachment(volume, attachment)
            self._set(volume, "in-use" if volume.attachments else "available")
            self.cloud.guests.server_changed(attachment.server_id)

    def server_deleted(self, server_id: str) -> None:
        """The server is gone: its attachments vanish at once and those volumes are free again."""
        for attachment in self.attachments_of_server(server_id):
            volume = self.volumes.get(attachment.volume_id)
            if volume is None:
                self._unindex_attachment(attachment)
                continue
            self._remove_attachment(volume, attachment)
            if not volume.attachments and volume.status in ("in-use", "attaching", "detaching", "error_attaching",
                                                            "error_detaching"):
                self._set(volume, "available")

    # Cinder's own attach actions (old clients: os-reserve / os-attach / os-begin_detaching / os-detach) ------
    def os_reserve(self, volume_id: str, project_id: str | None) -> None:
        volume = self.get_volume(volume_id, project_id)
        if volume.status != "available":
            raise BadRequest(f"Invalid volume: Volume status must be available to reserve, but the status is "
                             f"{volume.status}.")
        self._add_attachment(volume, Attachment(str(uuid.uuid4()), volume.id, "", "", self.now(), status="reserved"))
        self._set(volume, "attaching")

    def os_unreserve(self, volume_id: str, project_id: str | None) -> None:
        volume = self.get_volume(volume_id, project_id)
        if volume.status != "attaching":
            return
        self._remove_attachments(volume, [a for a in volume.attachments if a.status == "reserved"])
        self._set(volume, "in-use" if volume.attachments else "available")

    def os_attach(self, volume_id: str, project_id: str | None, server_id: str | None, host_name: str | None,
                  mountpoint: str, mode: str = "rw") -> Attachment:
        """Attach after (or without) os-reserve, reusing the reserved record."""
        volume = self.get_volume(volume_id, project_id)
        if mode not in ("rw", "ro"):
            raise BadRequest("Invalid request to attach volume with an invalid mode. Attaching mode should be "
                             "'rw' or 'ro'")
        if server_id and any(a.server_id == server_id for a in volume.attachments):
            raise BadRequest(f"Invalid volume: volume {volume_id} is already attached to instance {server_id}.")
        attachment = next((a for a in volume.attachments if a.status == "reserved"), None)
        if attachment is None:
            if volume.status != "available":
                raise BadRequest(f"Invalid volume: volume {volume_id} status must be available or attaching, but "
                                 f"current status is: {volume.status}.")
            attachment = Attachment(str(uuid.uuid4()), volume.id, "", "", self.now())
            self._add_attachment(volume, attachment)
        self._rekey_attachment(attachment, server_id or "")
        attachment.host_name = host_name
        attachment.device = mountpoint
        attachment.mode = mode
        self._start_attach(volume, attachment)
        return attachment

    def os_begin_detaching(self, volume_id: str, project_id: str | None) -> None:
        volume = self.get_volume(volume_id, project_id)
        if volume.status != "in-use" or volume.attach_status != "attached":
            raise BadRequest(f"Invalid volume: Unable to detach volume. Volume status must be 'in-use' and "
                             f"attach_status must be 'attached' to detach. Currently: status: '{volume.status}', "
                             f"attach_status: '{volume.attach_status}.'")
        self._set(volume, "detaching")

    def os_roll_detaching(self, volume_id: str, project_id: str | None) -> None:
        volume = self.get_volume(volume_id, project_id)
        if volume.status == "detaching":
            self._set(volume, "in-use")

    def os_detach(self, volume_id: str, project_id: str | None, attachment_id: str | None) -> None:
        volume = self.get_volume(volume_id, project_id)
        candidates = [a for a in volume.attachments if attachment_id in (None, a.id)]
        if attachment_id is None and len(candidates) > 1:
            raise BadRequest("Invalid volume: Volume has more than one attachment; give attachment_id.")
        if not candidates:
            raise NotFound(f"Volume attachment {attachment_id} could not be found.")
        if volume.status == "detaching":  # after os-begin_detaching: keep the status, finish the detach
            volume.status = "in-use"
        self._start_detach(volume, candidates[0])

    def delete_attachment(self, attachment_id: str, project_id: str | None) -> Volume:
        volume, attachment = self.get_attachment(attachment_id, project_id)
        if attachment.status == "reserved":
            self._remove_attachment(volume, attachment)
            self._set(volume, "in-use" if volume.attachments else "available")
        else:
            self._start_detach(volume, attachment)
        return volume

    # helpers ----------------------------------------------------------------------------------
    def _set(self, volume: Volume, status: str) -> None:
        volume.status = status
        volume.updated_at = self.now()

    def require_admin(self, is_admin: bool, action: str) -> None:
        if not is_admin:
            raise Forbidden(f"Policy doesn't allow {action} to be performed.")

    # admin API ----------------------------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        return {"volumes": [asdict(v) for v in self.volumes.values()], "quota_overrides": self.quota_overrides}

    def load(self, data: dict[str, Any]) -> None:
        """Restore volumes; anything mid-transition lands where the transition would have taken it."""
        self.reset()
        for raw in data.get("volumes", []):
            attachments = [Attachment(**a) for a in raw.pop("attachments", [])]
            volume = Volume(**raw, attachments=attachments)
            if volume.status in SETTLE:
                self._settle(volume)
                if volume.status == "gone":
                    continue
            self.volumes[volume.id] = volume
        self.quota_overrides = {k: dict(v) for k, v in data.get("quota_overrides", {}).items()}
        self._seq = itertools.count(max((v.seq for v in self.volumes.values()), default=0) + 1)
        self._reindex()  # `_settle` filtered attachment lists directly, before the volumes were stored

    def _settle(self, volume: Volume) -> None:
        if volume.status == "deleting":
            volume.status = "gone"
        elif volume.status == "extending":
            self._complete_extend(volume)
        elif volume.status == "detaching":
            volume.attachments = [a for a in volume.attachments if a.status != "detaching"]
            volume.status = "in-use" if volume.attachments else "available"
        elif volume.status == "attaching":
            volume.attachments = [a for a in volume.attachments if a.status != "reserved"]
            for attachment in volume.attachments:
                if attachment.status == "attaching":
                    attachment.status = "attached"
            volume.status = "in-use" if volume.attachments else "available"
        else:
            volume.status = SETTLE[volume.status] or volume.status
        for attachment in volume.attachments:
            if attachment.status == "detaching":
                attachment.status = "attached"
