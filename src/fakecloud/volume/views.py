"""Cinder's JSON views of volumes, attachments, types and quotas, shaped per microversion."""

from __future__ import annotations

from typing import Any

from fakecloud.framework import Version
from fakecloud.volume.backend import DEFAULT_AZ, DEFAULT_TYPE, DEFAULT_TYPE_ID, HOST, Attachment, Volume

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
        "metadata": dict(volume.metadata),
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
        view["group_id"] = None
    if admin and version >= (3, 21):
        view["provider_id"] = None
    if version >= (3, 48):
        view["service_uuid"] = "5f1c3a2e-6b4d-4c8e-9a7f-1d2e3f4a5b6c"
        view["shared_targets"] = False
    if admin and version >= (3, 61):
        view["cluster_name"] = None
    if version >= (3, 63):
        view["volume_type_id"] = DEFAULT_TYPE_ID
    if version >= (3, 65):
        view["consumes_quota"] = True
    return view


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


def volume_type() -> dict[str, Any]:
    return {
        "id": DEFAULT_TYPE_ID,
        "name": DEFAULT_TYPE,
        "description": "Default Volume Type",
        "is_public": True,
        "os-volume-type-access:is_public": True,
        "qos_specs_id": None,
        "extra_specs": {},
    }


def quota_set(project_id: str, limits: dict[str, int], usage: dict[str, int] | None) -> dict[str, Any]:
    """`?usage=true` turns each value into {limit, in_use, reserved, allocated}."""
    values: dict[str, Any] = dict(limits)
    values[f"volumes_{DEFAULT_TYPE}"] = -1
    values[f"gigabytes_{DEFAULT_TYPE}"] = -1
    values[f"snapshots_{DEFAULT_TYPE}"] = -1
    if usage is not None:
        values = {k: {"limit": v, "in_use": usage.get(k, 0), "reserved": 0, "allocated": 0}
                  for k, v in values.items()}
    return {"id": project_id, **values}


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
