"""Glance v2 views: how an image looks on the wire (the routes and the admin inventory render it)."""

from __future__ import annotations

from typing import Any

from openstack_fakecloud.image.backend import Image, Member, Task
from openstack_fakecloud.image.metadefs import Association, Namespace


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


def task_view(task: Task, summary: bool = False) -> dict[str, Any]:
    """A task as Glance shows it; the list leaves out `input`, `result` and `message`."""
    view: dict[str, Any] = {
        "id": task.id, "type": task.type, "status": task.status, "owner": task.owner,
        "created_at": task.created_at, "updated_at": task.updated_at, "expires_at": None,
        "self": f"/v2/tasks/{task.id}", "schema": "/v2/schemas/task",
    }
    if not summary:
        view.update({"input": task.input, "result": task.result, "message": task.message})
    return view


# metadata definitions -----------------------------------------------------------------------------------
def association_view(association: Association) -> dict[str, Any]:
    view: dict[str, Any] = {"name": association.name, "created_at": association.created_at,
                            "updated_at": association.updated_at}
    if association.prefix is not None:
        view["prefix"] = association.prefix
    if association.properties_target is not None:
        view["properties_target"] = association.properties_target
    return view


def metadef_object_view(namespace: str, name: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, **value, "schema": "/v2/schemas/metadefs/object",
            "self": f"/v2/metadefs/namespaces/{namespace}/objects/{name}"}


def metadef_property_view(name: str, value: dict[str, Any], with_name: bool = True) -> dict[str, Any]:
    """A property is a JSON-schema fragment; Glance shows no timestamps on it."""
    view = {k: v for k, v in value.items() if k not in ("created_at", "updated_at")}
    return {"name": name, **view} if with_name else view


def metadef_tag_view(name: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "created_at": value.get("created_at"), "updated_at": value.get("updated_at")}


def namespace_view(namespace: Namespace, detail: bool = False) -> dict[str, Any]:
    """The namespace; `detail` (show, create) adds its associations, properties, objects and tags."""
    view: dict[str, Any] = {
        "namespace": namespace.namespace, "display_name": namespace.display_name,
        "description": namespace.description, "visibility": namespace.visibility,
        "protected": namespace.protected, "owner": namespace.owner,
        "created_at": namespace.created_at, "updated_at": namespace.updated_at,
        "self": f"/v2/metadefs/namespaces/{namespace.namespace}", "schema": "/v2/schemas/metadefs/namespace",
    }
    view = {k: v for k, v in view.items() if v is not None}
    if namespace.associations:
        view["resource_type_associations"] = [association_view(a) for a in namespace.associations]
    if detail:
        if namespace.properties:
            view["properties"] = {n: metadef_property_view(n, v, with_name=False)
                                  for n, v in namespace.properties.items()}
        if namespace.objects:
            view["objects"] = [metadef_object_view(namespace.namespace, n, v) for n, v in namespace.objects.items()]
        if namespace.tags:
            view["tags"] = [{"name": n} for n in namespace.tags]
    return view
