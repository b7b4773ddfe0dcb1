"""Cinder's state: volumes, their attachments, quotas, transfers and user messages.

The admin catalog (volume types, QoS specs) lives in `catalog.py`; this backend owns it as `self.catalog`.

Cinder owns volume attachments: Nova's os-volume_attachments views read the same `Attachment` records
through `reserve_attachment`, `reserve_boot_attachment`, `start_boot_attach`, `begin_detach`,
`attachments_of_server` and `server_deleted` (and tell Nova `volume_attached`).

Every server GET reads its attachments, so attachments are indexed by server and by id. A volume's
`attachments` list is only ever changed through `_add_attachment`, `_remove_attachment` and
`_rekey_attachment`, which keep both indexes in step.
"""

from __future__ import annotations

import itertools
import secrets
import uuid
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from openstack_fakecloud.backend import Backend
from openstack_fakecloud.errors import BadRequest, Conflict, Forbidden, NotFound, QuotaExceeded
from openstack_fakecloud.volume.catalog import DEFAULT_TYPE, DEFAULT_TYPE_ID, Catalog, VolumeType
from openstack_fakecloud.volume.groups import GroupBook

DEFAULT_AZ = "nova"
HOST_NAME = "fakecloud"
BACKEND_NAME = "lvm"
HOST = f"{HOST_NAME}@{BACKEND_NAME}#{BACKEND_NAME}"
# What the one backend reports to the scheduler; a type whose extra specs ask otherwise finds no host.
CAPABILITIES = {"storage_protocol": "iSCSI", "vendor_name": "Open Source", "volume_backend_name": BACKEND_NAME}

# Statuses Cinder lets a volume be deleted from (cinder/volume/api.py `delete`).
DELETABLE = ("available", "error", "error_restoring", "error_extending", "error_managing")
DELETE_REFUSED = (
    "Invalid volume: Volume status must be available or error or error_restoring or error_extending or "
    "error_managing and must not be migrating, attached, belong to a group, have snapshots or be "
    "disassociated from snapshots after volume transfer."
)
# Transitional statuses that `load()` settles: status -> status it lands in.
SETTLE = {"creating": "available", "extending": None, "deleting": None, "attaching": "in-use", "detaching": None,
          "reserved": "in-use"}
# Cinder quota classes this cloud reports but never consumes.
FIXED_QUOTAS = {"snapshots": 10, "backups": 10, "backup_gigabytes": 1000, "groups": 10, "per_volume_gigabytes": -1}
QUOTA_KEYS = ("volumes", "gigabytes", *FIXED_QUOTAS)
TYPE_QUOTA_KEYS = ("volumes", "gigabytes", "snapshots")  # each also kept per volume type: volumes_<type>


@dataclass(slots=True)
class Transfer:
    id: str
    volume_id: str
    name: str | None
    auth_key: str
    source_project_id: str
    created_at: str
    no_snapshots: bool = False


@dataclass(slots=True)
class Message:
    """A user message: why an asynchronous request failed (Cinder's /messages)."""

    id: str
    project_id: str
    resource_uuid: str
    event_id: str
    user_message: str
    request_id: str
    created_at: str
    guaranteed_until: str
    resource_type: str = "VOLUME"
    message_level: str = "ERROR"


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
    volume_type: str = DEFAULT_TYPE  # the type's name, as Cinder shows it
    volume_type_id: str = DEFAULT_TYPE_ID
    availability_zone: str = DEFAULT_AZ
    metadata: dict[str, str] = field(default_factory=dict)
    attachments: list[Attachment] = field(default_factory=list)
    bootable: bool = False
    readonly: bool | None = None  # Cinder's admin metadata: shown in `metadata` once set
    snapshot_id: str | None = None
    source_volid: str | None = None
    image_id: str | None = None
    image_metadata: dict[str, str] = field(default_factory=dict)
    migration_status: str | None = None
    group_id: str | None = None
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
        self.quota_defaults: dict[str, int] = {}  # the `default` quota class's changes
        self.catalog = Catalog(self.now)
        self.groups = GroupBook(self)
        self.transfers: dict[str, Transfer] = {}
        self.messages: dict[str, Message] = {}
        self.disabled_services: dict[str, str | None] = {}  # "host/binary" -> reason
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
    def default_quotas(self) -> dict[str, int]:
        """The `default` quota class: configured limits, per-type limits (unlimited), admin changes."""
        quotas = self.cloud.config.quotas
        limits = {"volumes": quotas.volumes, "gigabytes": quotas.gigabytes, **FIXED_QUOTAS}
        for volume_type in self.catalog.types.values():
            for key in TYPE_QUOTA_KEYS:
                limits[f"{key}_{volume_type.name}"] = -1
        limits.update({k: v for k, v in self.quota_defaults.items() if k in limits})
        return limits

    def quota_limits(self, project_id: str) -> dict[str, int]:
        limits = self.default_quotas()
        limits.update({k: v for k, v in self.quota_overrides.get(project_id, {}).items() if k in limits})
        return limits

    def quota_usage(self, project_id: str) -> dict[str, int]:
        mine = [v for v in self.volumes.values() if v.project_id == project_id]
        usage = {"volumes": len(mine), "gigabytes": sum(v.size for v in mine)}
        for volume in mine:
            for key, amount in ((f"volumes_{volume.volume_type}", 1), (f"gigabytes_{volume.volume_type}", volume.size)):
                usage[key] = usage.get(key, 0) + amount
        return usage

    def check_quota_keys(self, values: dict[str, Any]) -> None:
        unknown = sorted(set(values) - set(self.default_quotas()))
        if unknown:
            raise BadRequest(f"Bad key(s) in quota set: {', '.join(unknown)}")

    def set_quotas(self, project_id: str, values: dict[str, int]) -> dict[str, int]:
        self.check_quota_keys(values)
        self.quota_overrides.setdefault(project_id, {}).update(values)
        return self.quota_limits(project_id)

    def delete_quotas(self, project_id: str) -> None:
        """Back to the defaults (Cinder deletes the project's own limits)."""
        self.quota_overrides.pop(project_id, None)

    def set_default_quotas(self, values: dict[str, int]) -> dict[str, int]:
        self.check_quota_keys(values)
        self.quota_defaults.update(values)
        return self.default_quotas()

    def _check_quota(self, project_id: str, volumes: int, gigabytes: int) -> None:
        limits = self.quota_limits(project_id)
        if not ((volumes and limits["volumes"] >= 0) or (gigabytes and limits["gigabytes"] >= 0)):
            return  # unlimited: no need to count what the project uses (a walk over every volume)
        used = self.quota_usage(project_id)
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
        admin: bool = False,
        request_id: str = "",
        group_id: str | None = None,
    ) -> Volume:
        """Validate, charge quota, and start the creating -> available transition (or to error, with a user
        message, when no backend matches the type's extra specs)."""
        kind = self.catalog.resolve(volume_type, None if admin else project_id)
        if group_id is not None:
            self.groups.check_member(group_id, project_id, kind.id)
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
            volume_type=kind.name, volume_type_id=kind.id, group_id=group_id,
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
        if not self._schedulable(kind):
            self._set(volume, "error")
            self._message(volume, "001", "003", "schedule allocate volume:Could not find any available weighted "
                          "backend.", request_id)
        elif fault is None:
            self.after("volume_create", self._finish_create, volume.id)
        elif fault.action == "error_status":
            self._set(volume, "error")
        return volume

    @staticmethod
    def _schedulable(kind: VolumeType) -> bool:
        """Cinder's capabilities filter: the type's specs must match what the one backend reports."""
        for key, offered in CAPABILITIES.items():
            asked = kind.extra_specs.get(key)
            if asked is not None and asked.removeprefix("<in>").strip().lower() != offered.lower():
                return False
        return True

    def _message(self, volume: Volume, action: str, detail: str, text: str, request_id: str) -> None:
        """Cinder's event id: VOLUME_<resource type>_<action id>_<detail id>; kept 30 days."""
        now = self.cloud.clock.wall()
        kept = (now + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
        message = Message(str(uuid.uuid4()), volume.project_id, volume.id, f"VOLUME_VOLUME_{action}_{detail}", text,
                          request_id or f"req-{uuid.uuid4()}", self.now(), kept)
        self.messages[message.id] = message

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
            self._tell_servers_extended(volume)

    def _tell_servers_extended(self, volume: Volume) -> None:
        """Cinder sends Nova the `volume-extended` external event, which Nova records as an instance action."""
        for attachment in volume.attachments:
            server = self.cloud.compute.servers.get(attachment.server_id)
            if server is not None:
                self.cloud.compute.record_action(server, "extend_volume", None, done=True)

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

    def reserve_boot_attachment(self, volume_id: str, server_id: str, project_id: str,
                                device: str | None) -> Attachment:
        """A volume a boot maps (Nova's attachment_create at the API): attachment and volume `reserved`; the
        build attaches it later (`start_boot_attach`), as a hot attach does."""
        volume = self.get_volume(volume_id, project_id)
        if volume.status != "available" or any(a.server_id == server_id for a in volume.attachments):
            raise BadRequest(f"Invalid volume: Volume {volume.id} status must be available or downloading")
        attachment = Attachment(
            id=str(uuid.uuid4()), volume_id=volume.id, server_id=server_id,
            device=device or self._next_device(server_id), attached_at=self.now(), status="reserved",
        )
        self._add_attachment(volume, attachment)
        self._set(volume, "reserved")
        return attachment

    def start_boot_attach(self, server_id: str) -> None:
        """The build reached its volumes: each reserved one attaches (the `volume_attach` delay, its faults)."""
        for attachment in self.attachments_of_server(server_id):
            volume = self.volumes.get(attachment.volume_id)
            if volume is not None and attachment.status == "reserved":
                self._start_attach(volume, attachment)

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
        self.cloud.compute.volume_attached(attachment.server_id)

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
            if not volume.attachments and volume.status in ("in-use", "attaching", "reserved", "detaching",
                                                            "error_attaching", "error_detaching"):
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
        if attachment_id is None and not candidates:
            # Cinder's manager: nothing attached, so only make sure the volume does not stay detaching
            if volume.status in ("detaching", "in-use"):
                self._set(volume, "available")
            return
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

    # types, retype, image metadata ------------------------------------------------------------
    def type_in_use(self, type_id: str) -> bool:
        kind = self.catalog.get_type(type_id)
        return any(v.volume_type_id == kind.id for v in self.volumes.values())

    def rename_type(self, kind: VolumeType) -> None:
        """Cinder joins the type's name into the volume view: a renamed type renames it everywhere."""
        for volume in self.volumes.values():
            if volume.volume_type_id == kind.id:
                volume.volume_type = kind.name

    def retype(self, volume_id: str, project_id: str | None, new_type: str | None, policy: str) -> None:
        """One backend: a retype never migrates, so it lands at once (`migration_policy` is only checked)."""
        volume = self.get_volume(volume_id, project_id)
        if policy not in ("never", "on-demand"):
            raise BadRequest(f"Invalid input received: Invalid migration policy {policy}.")
        kind = self.catalog.resolve(new_type, project_id)
        if volume.status not in ("available", "in-use"):
            raise BadRequest(f"Invalid volume: Volume status must be available or in-use, but current status is: "
                             f"{volume.status}.")
        if kind.id == volume.volume_type_id:
            raise BadRequest("Invalid input received: New volume type must be different from the current one.")
        volume.volume_type, volume.volume_type_id = kind.name, kind.id
        volume.updated_at = self.now()

    def set_image_metadata(self, volume_id: str, project_id: str | None, metadata: dict[str, str]) -> Volume:
        volume = self.get_volume(volume_id, project_id)
        volume.image_metadata.update(metadata)
        volume.updated_at = self.now()
        return volume

    def unset_image_metadata(self, volume_id: str, project_id: str | None, key: str) -> None:
        volume = self.get_volume(volume_id, project_id)
        if key not in volume.image_metadata:
            raise NotFound(f"Glance metadata for volume {volume_id} with key {key} not found.")
        del volume.image_metadata[key]
        volume.updated_at = self.now()

    def force_detach(self, volume_id: str, attachment_id: str | None) -> None:
        """Admin's os-force_detach: the attachment (or every one) goes at once, whatever its state."""
        volume = self.get_volume(volume_id, None)
        doomed = [a for a in volume.attachments if attachment_id in (None, a.id)]
        if attachment_id is not None and not doomed:
            raise NotFound(f"Volume attachment {attachment_id} could not be found.")
        self._remove_attachments(volume, doomed)
        self._set(volume, "in-use" if volume.attachments else "available")
        for attachment in doomed:
            if attachment.server_id:
                self.cloud.guests.server_changed(attachment.server_id)

    def upload_to_image(self, volume_id: str, project_id: str, admin: bool, spec: dict[str, Any]) -> Any:
        """os-volume_upload_image: a Glance image of the volume, active once the copy (one timer) ends."""
        from openstack_fakecloud.image.backend import NewImage

        volume = self.get_volume(volume_id, None if admin else project_id)
        allowed = ("available", "in-use") if spec.get("force") else ("available",)
        if volume.status not in allowed:
            raise BadRequest(f"Invalid volume: Volume {volume_id} status must be available, but current status is: "
                             f"{volume.status}.")
        new = NewImage(name=spec.get("image_name"), disk_format=spec.get("disk_format") or "raw",
                       container_format=spec.get("container_format") or "bare",
                       visibility=spec.get("visibility") or "shared", protected=bool(spec.get("protected")),
                       min_disk=volume.size)
        image = self.cloud.image.create_image(new, volume.project_id, admin)
        previous = volume.status
        self._set(volume, "uploading")
        # the copy takes as long as creating a volume would (fakecloud has no separate upload delay)
        self.after("volume_create", self._finish_upload, volume.id, image.id, previous)
        return image

    def _finish_upload(self, volume_id: str, image_id: str, previous: str) -> None:
        image = self.cloud.image.images.get(image_id)
        if image is not None and image.status == "queued":
            self.cloud.image.upload(image_id, b"\0" * 512, image.owner, True)
        volume = self.volumes.get(volume_id)
        if volume is not None and volume.status == "uploading":
            self._set(volume, previous)

    # transfers ---------------------------------------------------------------------------------
    def create_transfer(self, volume_id: str, project_id: str, name: str | None, no_snapshots: bool) -> Transfer:
        volume = self.get_volume(volume_id, project_id)
        if volume.status != "available":
            raise BadRequest(f"Invalid volume: status must be available, but current status is: {volume.status}.")
        transfer = Transfer(str(uuid.uuid4()), volume.id, name, secrets.token_hex(8), volume.project_id, self.now(),
                            no_snapshots)
        self.transfers[transfer.id] = transfer
        self._set(volume, "awaiting-transfer")
        return transfer

    def get_transfer(self, transfer_id: str, project_id: str | None) -> Transfer:
        """The giving project (or an admin) sees a transfer; the receiver only accepts it by id and key."""
        transfer = self.transfers.get(transfer_id)
        if transfer is None or project_id not in (None, transfer.source_project_id):
            raise NotFound(f"Transfer {transfer_id} could not be found.")
        return transfer

    def list_transfers(self, project_id: str | None) -> list[Transfer]:
        return [t for t in self.transfers.values() if project_id in (None, t.source_project_id)]

    def delete_transfer(self, transfer_id: str, project_id: str | None) -> None:
        transfer = self.get_transfer(transfer_id, project_id)
        del self.transfers[transfer.id]
        volume = self.volumes.get(transfer.volume_id)
        if volume is not None and volume.status == "awaiting-transfer":
            self._set(volume, "available")

    def accept_transfer(self, transfer_id: str, auth_key: str, project_id: str, user_id: str) -> Transfer:
        transfer = self.transfers.get(transfer_id)
        if transfer is None:
            raise NotFound(f"Transfer {transfer_id} could not be found.")
        if not secrets.compare_digest(str(auth_key), transfer.auth_key):
            raise BadRequest(f"Invalid auth key: Attempt to transfer {transfer_id} with invalid auth key.")
        volume = self.get_volume(transfer.volume_id, None)
        self._check_quota(project_id, 1, volume.size)
        del self.transfers[transfer.id]
        volume.project_id, volume.user_id = project_id, user_id
        self._set(volume, "available")
        return transfer

    # user messages ------------------------------------------------------------------------------
    def list_messages(self, project_id: str | None) -> list[Message]:
        return [m for m in self.messages.values() if project_id in (None, m.project_id)]

    def get_message(self, message_id: str, project_id: str | None) -> Message:
        message = self.messages.get(message_id)
        if message is None or project_id not in (None, message.project_id):
            raise NotFound(f"Message {message_id} could not be found.")
        return message

    def delete_message(self, message_id: str, project_id: str | None) -> None:
        del self.messages[self.get_message(message_id, project_id).id]

    # services -----------------------------------------------------------------------------------
    def set_service(self, host: str, binary: str, disabled: bool, reason: str | None = None) -> None:
        key = f"{host}/{binary}"
        if disabled:
            self.disabled_services[key] = reason
        else:
            self.disabled_services.pop(key, None)

    # helpers ----------------------------------------------------------------------------------
    def _set(self, volume: Volume, status: str) -> None:
        volume.status = status
        volume.updated_at = self.now()

    def require_admin(self, is_admin: bool, action: str) -> None:
        if not is_admin:
            raise Forbidden(f"Policy doesn't allow {action} to be performed.")

    # admin API ----------------------------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        return {"volumes": [asdict(v) for v in self.volumes.values()], "quota_overrides": self.quota_overrides,
                "quota_defaults": self.quota_defaults, "catalog": self.catalog.dump(),
                "transfers": [asdict(t) for t in self.transfers.values()],
                "messages": [asdict(m) for m in self.messages.values()],
                "disabled_services": self.disabled_services, "groups": self.groups.dump()}

    def load(self, data: dict[str, Any]) -> None:
        """Restore volumes; anything mid-transition lands where the transition would have taken it."""
        self.reset()
        for raw in data.get("volumes", []):
            attachments = [Attachment(**a) for a in raw.pop("attachments", [])]
            volume = Volume(**raw, attachments=attachments)
            if volume.status == "uploading":
                volume.status = "available"
            if volume.status in SETTLE:
                self._settle(volume)
                if volume.status == "gone":
                    continue
            self.volumes[volume.id] = volume
        self.quota_overrides = {k: dict(v) for k, v in data.get("quota_overrides", {}).items()}
        self.quota_defaults = dict(data.get("quota_defaults", {}))
        self.catalog.load(data.get("catalog", {}))
        self.transfers = {raw["id"]: Transfer(**raw) for raw in data.get("transfers", [])}
        self.messages = {raw["id"]: Message(**raw) for raw in data.get("messages", [])}
        self.disabled_services = dict(data.get("disabled_services", {}))
        self.groups.load(data.get("groups", []))
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
        elif volume.status == "reserved":  # a boot's volume: the loaded server is settled ACTIVE
            for attachment in volume.attachments:
                if attachment.status in ("reserved", "attaching"):
                    attachment.status = "attached"
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
