"""Cinder's JSON views of volumes, attachments, types, QoS specs, transfers, messages and quotas."""

from __future__ import annotations

from typing import Any

from openstack_fakecloud.framework import Version
from openstack_fakecloud.volume.backend import (
    CAPABILITIES,
    DEFAULT_AZ,
    DEFAULT_TYPE,
    HOST,
    Attachment,
    Message,
    Transfer,
    Volume,
)
from openstack_fakecloud.volume.catalog import Encryption, GroupType, QosSpec, VolumeType
from openstack_fakecloud.volume.groups import Group

LATEST: Version = (3, 70)


def links(base: str, kind: str, item_id: str) -> list[dict[str, str]]:
    href = f"{base}/{kind}/{item_id}"
    return [{"rel": "self", "href": href}, {"rel": "bookmark", "href": href}]


def volume_attachment(attachment: Attachment) -> dict[str, Any]:
    """An entry of a volume's `attachments` (Cinder sets `id` to the volume id)."""
    return {
        "id": attachment.volume_id,
        "attachment_id": attachment.id,
        "volume_id": attachment.volume_id,
        "server_id": attachment.server_id or None,
        "host_name": attachment.host_name,
        "device": attachment.device,
        "attached_at": attachment.attached_at,
    }


def volume_summary(volume: Volume, base: str = "") -> dict[str, Any]:
    return {"id": volume.id, "name": volume.name, "links": links(base, "volumes", volume.id)}


def volume_detail(volume: Volume, admin: bool = False, version: Version = LATEST, base: str = "",
                  extended: bool = True) -> dict[str, Any]:
    """The full view; admin-only and newer-microversion keys appear as real Cinder adds them.

    `extended` adds the attributes Cinder's API extensions graft onto show and list-detail only (tenant,
    host, migration and image metadata): create and update answer without them, and clients that check
    the answer's schema (tempest) refuse a create that carries them.
    """
    view: dict[str, Any] = {
        "id": volume.id,
        "name": volume.name,
        "status": volume.status,
        "size": volume.size,
        # Cinder lists only attachments that are attached (or detaching), not reservations.
        "attachments": [volume_attachment(a) for a in volume.attachments if a.status in ("attached", "detaching")],
        "availability_zone": volume.availability_zone or DEFAULT_AZ,
        "bootable": "true" if volume.bootable else "false",
        "encrypted": False,
        "created_at": volume.created_at,
        "updated_at": volume.updated_at,
        "description": volume.description,
        "volume_type": volume.volume_type or DEFAULT_TYPE,
        "snapshot_id": volume.snapshot_id,
        "source_volid": volume.source_volid,
        "metadata": _metadata(volume),
        "user_id": volume.user_id,
        "multiattach": False,
        "replication_status": None,
        "consistencygroup_id": None,
        "links": links(base, "volumes", volume.id),
    }
    if admin:
        view["migration_status"] = volume.migration_status
    if extended:
        view["os-vol-tenant-attr:tenant_id"] = volume.project_id
        if volume.image_metadata:
            view["volume_image_metadata"] = dict(volume.image_metadata)
        if admin:
            view["os-vol-host-attr:host"] = HOST
            view["os-vol-mig-status-attr:migstat"] = volume.migration_status
            view["os-vol-mig-status-attr:name_id"] = None
    if version >= (3, 13):
        view["group_id"] = volume.group_id
    if admin and version >= (3, 21):
        view["provider_id"] = None
    if version >= (3, 48):
        view["service_uuid"] = "5f1c3a2e-6b4d-4c8e-9a7f-1d2e3f4a5b6c"
        view["shared_targets"] = False
    if admin and version >= (3, 61):
        view["cluster_name"] = None
    if version >= (3, 63):
        view["volume_type_id"] = volume.volume_type_id
    if version >= (3, 65):
        view["consumes_quota"] = True
    return view


def _metadata(volume: Volume) -> dict[str, str]:
    """Cinder shows the visible admin metadata (`readonly`) among the user's metadata."""
    shown = dict(volume.metadata)
    if volume.readonly is not None:
        shown["readonly"] = str(volume.readonly)
    return shown


def attachment_summary(attachment: Attachment) -> dict[str, Any]:
    return {"id": attachment.id, "status": attachment.status, "instance": attachment.server_id or None,
            "volume_id": attachment.volume_id}


def attachment_detail(attachment: Attachment) -> dict[str, Any]:
    return {
        **attachment_summary(attachment),
        "attached_at": attachment.attached_at if attachment.status in ("attached", "detaching") else None,
        "detached_at": None,
        "attach_mode": attachment.mode,
        "connection_info": {"driver_volume_type": "iscsi", "attachment_id": attachment.id,
                            "volume_id": attachment.volume_id},
    }


def volume_type(kind: VolumeType, shape: str = "show") -> dict[str, Any]:
    """`shape`: "show" (list and show), "create" (no qos_specs_id) or "update" (neither access flag nor qos)."""
    view: dict[str, Any] = {"id": kind.id, "name": kind.name, "description": kind.description,
                            "is_public": kind.is_public, "extra_specs": dict(kind.extra_specs)}
    if shape != "update":
        view["os-volume-type-access:is_public"] = kind.is_public
    if shape == "show":
        view["qos_specs_id"] = kind.qos_specs_id
    return view


def encryption(spec: Encryption, full: bool = True) -> dict[str, Any]:
    """`full` for show (with timestamps and `deleted`), else what create answers."""
    view: dict[str, Any] = {"volume_type_id": spec.volume_type_id, "encryption_id": spec.encryption_id,
                            "provider": spec.provider, "cipher": spec.cipher, "key_size": spec.key_size,
                            "control_location": spec.control_location}
    if full:
        view.update({"created_at": spec.created_at, "updated_at": spec.updated_at, "deleted": False,
                     "deleted_at": None})
    return view


def qos_spec(spec: QosSpec) -> dict[str, Any]:
    return {"id": spec.id, "name": spec.name, "consumer": spec.consumer, "specs": dict(spec.specs)}


def transfer(item: Transfer, base: str, version: Version, detail: bool = True,
             auth_key: bool = False) -> dict[str, Any]:
    view: dict[str, Any] = {"id": item.id, "name": item.name, "volume_id": item.volume_id,
                            "links": links(base, "os-volume-transfer", item.id)}
    if detail:
        view["created_at"] = item.created_at
        if version >= (3, 55):
            view["no_snapshots"] = item.no_snapshots
        if version >= (3, 57):
            view.update({"source_project_id": item.source_project_id, "destination_project_id": None,
                         "accepted": False})
    if auth_key:
        view["auth_key"] = item.auth_key
    return view


def message(item: Message, base: str) -> dict[str, Any]:
    return {"id": item.id, "request_id": item.request_id, "message_level": item.message_level,
            "event_id": item.event_id, "created_at": item.created_at, "guaranteed_until": item.guaranteed_until,
            "resource_uuid": item.resource_uuid, "resource_type": item.resource_type,
            "user_message": item.user_message, "links": links(base, "messages", item.id)}


def pool_capabilities(now: str, volume_count_gb: int) -> dict[str, Any]:
    return {"volume_backend_name": CAPABILITIES["volume_backend_name"],
            "vendor_name": CAPABILITIES["vendor_name"], "storage_protocol": CAPABILITIES["storage_protocol"],
            "driver_version": "3.0.0", "total_capacity_gb": 1000.0,
            "free_capacity_gb": float(max(0, 1000 - volume_count_gb)), "reserved_percentage": 0,
            "QoS_support": False, "updated": now, "timestamp": now}


def quota_set(project_id: str | None, limits: dict[str, int], usage: dict[str, int] | None) -> dict[str, Any]:
    """`?usage=true` turns each value into {limit, in_use, reserved}; `project_id` None: no `id` (an update)."""
    values: dict[str, Any] = dict(limits)
    if usage is not None:
        values = {k: {"limit": v, "in_use": usage.get(k, 0), "reserved": 0} for k, v in values.items()}
    return values if project_id is None else {"id": project_id, **values}


def absolute_limits(limits: dict[str, int], usage: dict[str, int]) -> dict[str, int]:
    return {
        "maxTotalVolumes": limits["volumes"],
        "maxTotalVolumeGigabytes": limits["gigabytes"],
        "maxTotalSnapshots": limits["snapshots"],
        "maxTotalBackups": limits["backups"],
        "maxTotalBackupGigabytes": limits["backup_gigabytes"],
        "totalVolumesUsed": usage["volumes"],
        "totalGigabytesUsed": usage["gigabytes"],
        "totalSnapshotsUsed": 0,
        "totalBackupsUsed": 0,
        "totalBackupGigabytesUsed": 0,
    }


def group_type(kind: GroupType) -> dict[str, Any]:
    return {"id": kind.id, "name": kind.name, "description": kind.description, "is_public": kind.is_public,
            "group_specs": dict(kind.group_specs)}


def group(item: Group, members: list[str], version: Version) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": item.id, "name": item.name, "description": item.description, "status": item.status,
        "availability_zone": item.availability_zone, "created_at": item.created_at,
        "group_type": item.group_type_id, "volume_types": list(item.volume_type_ids),
    }
    if version >= (3, 14):
        view.update({"group_snapshot_id": None, "source_group_id": item.source_group_id})
    if version >= (3, 25):
        view["volumes"] = members
    if version >= (3, 38):
        view["replication_status"] = "disabled"
    return view
