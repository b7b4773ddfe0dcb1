"""Glance v2 views: how an image looks on the wire (the routes and the admin inventory render it)."""

from __future__ import annotations

from typing import Any

from fakecloud.image.backend import Image, Member


def image_view(image: Image) -> dict[str, Any]:
    base = f"/v2/images/{image.id}"
    view: dict[str, Any] = dict(image.properties)
    view.update({
        "id": image.id, "name": image.name, "status": image.status, "visibility": image.visibility,
        "protected": image.protected, "os_hidden": image.hidden, "checksum": image.checksum,
        "os_hash_algo": "sha512" if image.hash_value else None,
        "os_hash_value": image.hash_value, "owner": image.owner, "size": image.size,
        "virtual_size": None, "min_disk": image.min_disk, "min_ram": image.min_ram,
        "disk_format": image.disk_format, "container_format": image.container_format,
        "created_at": image.created_at, "updated_at": image.updated_at, "tags": list(image.tags),
        "self": base, "file": f"{base}/file", "schema": "/v2/schemas/image",
    })
    return view


def member_view(member: Member) -> dict[str, Any]:
    return {"image_id": member.image_id, "member_id": member.member_id, "status": member.status,
            "created_at": member.created_at, "updated_at": member.updated_at, "schema": "/v2/schemas/member"}
