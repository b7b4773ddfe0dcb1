"""Cinder v3 routes: what openstacksdk's block_storage proxy, OSC and Nova-style callers send.

Every resource route is served both as `/volume/v3/{project_id}/...` (the catalog URL) and as
`/volume/v3/...` (the project-less form newer clients use).
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

from openstack_fakecloud.errors import BadRequest, Forbidden, NotFound
from openstack_fakecloud.faults import REQUEST_ACTIONS
from openstack_fakecloud.framework import (
    Collection,
    Reply,
    RequestContext,
    action_of,
    format_version,
    query_href,
)
from openstack_fakecloud.volume import admin_routes, group_routes, transfer_routes, type_routes, views
from openstack_fakecloud.volume.api import PENDING, quota_values, route, service
from openstack_fakecloud.volume.api import backend as _backend
from openstack_fakecloud.volume.api import base as _base
from openstack_fakecloud.volume.api import int_field as _int_field
from openstack_fakecloud.volume.api import require_version as _require_version
from openstack_fakecloud.volume.api import scope as _scope
from openstack_fakecloud.volume.api import truthy as _truthy
from openstack_fakecloud.volume.backend import DEFAULT_AZ, Volume

# the route modules are imported for their registrations, which the loop at the bottom mounts
__all__ = ["service", "admin_routes", "group_routes", "transfer_routes", "type_routes"]

# Routes are registered at the bottom: project-less paths first (their first segment is a keyword, so
# they never swallow a `{project_id}` path), and within each group in file order (`detail` before `{id}`).


def _detail(ctx: RequestContext, volume: Volume, extended: bool = True) -> dict[str, Any]:
    """`extended=False` for create and update, which Cinder answers without its extension attributes."""
    version = ctx.microversion or (3, 0)
    return views.volume_detail(volume, ctx.is_admin, version, _base(ctx, volume.project_id), extended)


def _request_fault(ctx: RequestContext, op: str) -> None:
    """Request-level faults (http_error, quota) for an operation that shares a route (the action URL)."""
    fault = ctx.cloud.faults.take("volume", op, REQUEST_ACTIONS - {"latency"}, ctx.project_id)
    if fault is not None:
        ctx.cloud.raise_fault("volume", op, fault)


# discovery -----------------------------------------------------------------------------------------
def _version_entry(ctx: RequestContext) -> dict[str, Any]:
    return {
        "id": "v3.0",
        "status": "CURRENT",
        "version": format_version(ctx.cloud.volume_max),
        "min_version": "3.0",
        "updated": "2023-08-31T00:00:00Z",
        "links": [
            {"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"},
            {"rel": "self", "href": ctx.url("/volume/v3/")},
        ],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.volume+json;version=3"}],
    }


@service.route("", "GET", op="versions", auth=False)
@service.route("/", "GET", op="versions", auth=False)
def versions(ctx: RequestContext) -> Reply:
    return Reply(300, {"versions": [_version_entry(ctx)]})


@service.route("/v3", "GET", op="version", auth=False)
@service.route("/v3/", "GET", op="version", auth=False)
def version(ctx: RequestContext) -> Reply:
    return Reply(200, {"versions": [_version_entry(ctx)]})


# volumes --------------------------------------------------------------------------------------------
@route("/volumes", "POST", op="volume.create")
def create_volume(ctx: RequestContext) -> Reply:
    spec = ctx.require_body("volume")
    if spec.get("size") is None and not (spec.get("source_volid") or spec.get("snapshot_id")):
        raise BadRequest(f"Invalid input for field/attribute volume. Value: {spec}. 'size' is a required property")
    size = spec.get("size")
    if size is None and spec.get("source_volid"):
        size = _backend(ctx).get_volume(spec["source_volid"], ctx.project_id).size
    metadata = spec.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise BadRequest("Invalid input for field/attribute metadata. Value: metadata. It is not a dict.")
    volume = _backend(ctx).create_volume(
        ctx.project_id,
        ctx.token.user_id,
        _int_field("size", size) if size is not None else 1,
        name=spec.get("name", spec.get("display_name")),
        description=spec.get("description", spec.get("display_description")),
        volume_type=spec.get("volume_type"),
        availability_zone=spec.get("availability_zone"),
        metadata={str(k): str(v) for k, v in metadata.items()},
        image_ref=spec.get("imageRef") or spec.get("image_id"),
        snapshot_id=spec.get("snapshot_id"),
        source_volid=spec.get("source_volid"),
        admin=ctx.is_admin,
        request_id=ctx.request_id,
        group_id=spec.get("group_id") if ctx.at_least("3.13") else None,
    )
    return Reply(202, {"volume": _detail(ctx, volume, extended=False)})


def _sort(volumes: list[Volume], ctx: RequestContext) -> list[Volume]:
    """`sort=key:dir,...` or `sort_key`/`sort_dir`; default newest first, as Cinder."""
    spec = ctx.query.get("sort")
    keys: list[tuple[str, str]] = []
    if spec:
        for part in spec.split(","):
            key, _, direction = part.strip().partition(":")
            keys.append((key, direction or "desc"))
    elif ctx.query.get("sort_key"):
        keys.append((ctx.query["sort_key"], ctx.query.get("sort_dir", "desc")))
    allowed = {"name", "size", "status", "created_at", "updated_at", "id", "availability_zone", "bootable"}
    for key, direction in reversed(keys):
        if key not in allowed or direction not in ("asc", "desc"):
            raise BadRequest(f"Invalid input received: Invalid sort key or direction {key}:{direction}.")
        sort_key = "seq" if key == "created_at" else key
        volumes = sorted(volumes, key=lambda v, k=sort_key: (getattr(v, k) is None, getattr(v, k) or 0),
                         reverse=direction == "desc")
    return volumes


# Cinder's paging: `volumes_links` to the path asked for (with or without the project), the request's query
# one value per parameter, linked whenever a page comes back full (Cinder cannot tell whether more follow,
# so a listing that divides evenly ends on an empty page: tempest's pagination test expects that link); an
# unknown marker is a 404.
VOLUMES: Collection[Volume] = Collection(
    "volumes",
    parse_limit=lambda raw: _int_field("limit", raw, minimum=0),
    unknown_marker=lambda marker: NotFound(f"Marker {marker} could not be found."),
    next_href=lambda ctx, marker, limit: query_href(ctx, ctx.url(ctx.request.url.path), marker, repeated=False),
    link_when="full",
)


def _list(ctx: RequestContext, detail: bool) -> Reply:
    scope = None if ctx.all_projects() else ctx.project_id
    filters = {k: ctx.query[k] for k in ("name", "status", "bootable", "availability_zone")
               if ctx.query.get(k) is not None}
    if scope is None and ctx.query.get("project_id"):
        filters["project_id"] = ctx.query["project_id"]
    volumes = _backend(ctx).list_volumes(scope, filters)
    metadata = ctx.query.get("metadata")
    if metadata:
        try:
            wanted = ast.literal_eval(metadata)
        except (ValueError, SyntaxError):
            raise BadRequest(f"Invalid input received: invalid metadata filter {metadata}.") from None
        if isinstance(wanted, dict):
            volumes = [v for v in volumes if all(v.metadata.get(str(k)) == str(x) for k, x in wanted.items())]
    page, links = VOLUMES.page(ctx, _sort(volumes, ctx))
    items = [_detail(ctx, v) if detail else views.volume_summary(v, _base(ctx, v.project_id)) for v in page]
    return Reply(200, {"volumes": items, **links})


@route("/volumes", "GET", op="volume.list")
def list_volumes(ctx: RequestContext) -> Reply:
    return _list(ctx, detail=False)


@route("/volumes/detail", "GET", op="volume.list")
def list_volumes_detail(ctx: RequestContext) -> Reply:
    return _list(ctx, detail=True)


@route("/volumes/summary", "GET", op="volume.summary")
def volume_summary(ctx: RequestContext) -> Reply:
    _require_version(ctx, "3.12")
    volumes = _backend(ctx).list_volumes(None if ctx.all_projects() else ctx.project_id)
    return Reply(200, {"volume-summary": {"total_size": sum(v.size for v in volumes), "total_count": len(volumes),
                                          "metadata": {}}})


@route("/volumes/{id}", "GET", op="volume.show")
def show_volume(ctx: RequestContext) -> Reply:
    return Reply(200, {"volume": _detail(ctx, _backend(ctx).get_volume(ctx.path["id"], _scope(ctx)))})


@route("/volumes/{id}", "PUT", op="volume.update")
def update_volume(ctx: RequestContext) -> Reply:
    spec = ctx.require_body("volume")
    changes: dict[str, Any] = {}
    for key, legacy in (("name", "display_name"), ("description", "display_description")):
        if key in spec or legacy in spec:
            changes[key] = spec.get(key, spec.get(legacy))
    if "metadata" in spec:
        if not isinstance(spec["metadata"], dict):
            raise BadRequest("Invalid input for field/attribute metadata. It is not a dict.")
        changes["metadata"] = {str(k): str(v) for k, v in spec["metadata"].items()}
    if not changes:
        raise BadRequest("Invalid input for field/attribute volume. Value: {}. {} does not have enough properties")
    volume = _backend(ctx).update_volume(ctx.path["id"], _scope(ctx), changes)
    return Reply(200, {"volume": _detail(ctx, volume, extended=False)})


@route("/volumes/{id}", "DELETE", op="volume.delete")
def delete_volume(ctx: RequestContext) -> Reply:
    force = _truthy(ctx.query.get("force", "false"))
    if force and not ctx.is_admin:
        raise Forbidden("Policy doesn't allow volume:force_delete to be performed.")
    _backend(ctx).delete_volume(ctx.path["id"], _scope(ctx), force=force)
    return Reply(202)


# metadata -------------------------------------------------------------------------------------------
def _metadata_body(ctx: RequestContext, key: str = "metadata") -> dict[str, str]:
    data = ctx.require_body(key)
    return {str(k): str(v) for k, v in data.items()}


@route("/volumes/{id}/metadata", "GET", op="volume.metadata.show")
def show_metadata(ctx: RequestContext) -> Reply:
    return Reply(200, {"metadata": dict(_backend(ctx).get_volume(ctx.path["id"], _scope(ctx)).metadata)})


@route("/volumes/{id}/metadata", "POST", "PUT", op="volume.metadata.update")
def set_metadata(ctx: RequestContext) -> Reply:
    replace = ctx.request.method == "PUT"
    volume = _backend(ctx).set_metadata(ctx.path["id"], _scope(ctx), _metadata_body(ctx), replace)
    return Reply(200, {"metadata": dict(volume.metadata)})


@route("/volumes/{id}/metadata/{key}", "GET", op="volume.metadata.show")
def show_metadata_item(ctx: RequestContext) -> Reply:
    volume = _backend(ctx).get_volume(ctx.path["id"], _scope(ctx))
    if ctx.path["key"] not in volume.metadata:
        raise NotFound(f"Metadata item was not found: {ctx.path['key']}")
    return Reply(200, {"meta": {ctx.path["key"]: volume.metadata[ctx.path["key"]]}})


@route("/volumes/{id}/metadata/{key}", "PUT", op="volume.metadata.update")
def set_metadata_item(ctx: RequestContext) -> Reply:
    item = _metadata_body(ctx, "meta")
    if list(item) != [ctx.path["key"]]:
        raise BadRequest("Request body and URI mismatch")
    _backend(ctx).set_metadata(ctx.path["id"], _scope(ctx), item, replace=False)
    return Reply(200, {"meta": item})


@route("/volumes/{id}/metadata/{key}", "DELETE", op="volume.metadata.delete")
def delete_metadata_item(ctx: RequestContext) -> Reply:
    _backend(ctx).delete_metadata_key(ctx.path["id"], _scope(ctx), ctx.path["key"])
    return Reply(200)


# actions --------------------------------------------------------------------------------------------
Action = Callable[[RequestContext, str, Any], Reply]
ACTIONS: dict[str, Action] = {}


def action(name: str) -> Callable[[Action], Action]:
    def register(fn: Action) -> Action:
        ACTIONS[name] = fn
        return fn

    return register


@route("/volumes/{id}/action", "POST", op="volume.action")
def volume_action(ctx: RequestContext) -> Reply:
    _name, handler, args = action_of(ctx.body, ACTIONS, "Malformed request body: expected exactly one action.")
    return handler(ctx, ctx.path["id"], args if args is not None else {})


def _args(args: Any, name: str) -> dict[str, Any]:
    if not isinstance(args, dict):
        raise BadRequest(f"Invalid input for field/attribute {name}. It is not a dict.")
    return args


@action("os-extend")
def extend(ctx: RequestContext, volume_id: str, args: Any) -> Reply:
    _request_fault(ctx, "volume.extend")
    args = _args(args, "os-extend")
    if "new_size" not in args:
        raise BadRequest("Invalid input for field/attribute os-extend. 'new_size' is a required property")
    new_size = _int_field("new_size", args["new_size"])
    _backend(ctx).extend_volume(volume_id, _scope(ctx), new_size, allow_in_use=ctx.at_least("3.42"))
    return Reply(202)


@action("os-reset_status")
def reset_status(ctx: RequestContext, volume_id: str, args: Any) -> Reply:
    _backend(ctx).require_admin(ctx.is_admin, "volume_extension:volume_admin_actions:reset_status")
    args = _args(args, "os-reset_status")
    _backend(ctx).reset_status(volume_id, args.get("status"), args.get("attach_status"),
                               args.get("migration_status"))
    return Reply(202)


@action("os-force_delete")
def force_delete(ctx: RequestContext, volume_id: str, args: Any) -> Reply:
    _backend(ctx).require_admin(ctx.is_admin, "volume_extension:volume_admin_actions:force_delete")
    _backend(ctx).delete_volume(volume_id, None, force=True)
    return Reply(202)


@action("os-reserve")
def reserve(ctx: RequestContext, volume_id: str, args: Any) -> Reply:
    _backend(ctx).os_reserve(volume_id, _scope(ctx))
    return Reply(202)


@action("os-unreserve")
def unreserve(ctx: RequestContext, volume_id: str, args: Any) -> Reply:
    _backend(ctx).os_unreserve(volume_id, _scope(ctx))
    return Reply(202)


@action("os-attach")
def attach(ctx: RequestContext, volume_id: str, args: Any) -> Reply:
    _request_fault(ctx, "volume.attach")
    args = _args(args, "os-attach")
    server_id, host_name = args.get("instance_uuid"), args.get("host_name")
    if not args.get("mountpoint"):
        raise BadRequest("Invalid input for field/attribute os-attach. 'mountpoint' is a required property")
    if bool(server_id) == bool(host_name):
        raise BadRequest("Invalid request to attach volume to an invalid target")
    _backend(ctx).os_attach(volume_id, _scope(ctx), server_id, host_name, args["mountpoint"],
                            args.get("mode", "rw"))
    return Reply(202)


@action("os-begin_detaching")
def begin_detaching(ctx: RequestContext, volume_id: str, args: Any) -> Reply:
    _backend(ctx).os_begin_detaching(volume_id, _scope(ctx))
    return Reply(202)


@action("os-roll_detaching")
def roll_detaching(ctx: RequestContext, volume_id: str, args: Any) -> Reply:
    _backend(ctx).os_roll_detaching(volume_id, _scope(ctx))
    return Reply(202)


@action("os-detach")
def detach(ctx: RequestContext, volume_id: str, args: Any) -> Reply:
    _request_fault(ctx, "volume.detach")
    args = _args(args, "os-detach")
    _backend(ctx).os_detach(volume_id, _scope(ctx), args.get("attachment_id"))
    return Reply(202)


@action("os-set_bootable")
def set_bootable(ctx: RequestContext, volume_id: str, args: Any) -> Reply:
    args = _args(args, "os-set_bootable")
    if "bootable" not in args:
        raise BadRequest("Invalid input for field/attribute os-set_bootable. 'bootable' is a required property")
    _backend(ctx).set_bootable(volume_id, _scope(ctx), _truthy(args["bootable"]))
    return Reply(200)


@action("os-update_readonly_flag")
def update_readonly(ctx: RequestContext, volume_id: str, args: Any) -> Reply:
    args = _args(args, "os-update_readonly_flag")
    if "readonly" not in args:
        raise BadRequest("Invalid input for field/attribute os-update_readonly_flag. 'readonly' is a required "
                         "property")
    _backend(ctx).set_readonly(volume_id, _scope(ctx), _truthy(args["readonly"]))
    return Reply(202)


@action("os-retype")
def retype(ctx: RequestContext, volume_id: str, args: Any) -> Reply:
    args = _args(args, "os-retype")
    if not args.get("new_type"):
        raise BadRequest("Invalid input for field/attribute os-retype. 'new_type' is a required property")
    _backend(ctx).retype(volume_id, _scope(ctx), str(args["new_type"]), args.get("migration_policy") or "never")
    return Reply(202)


@action("os-force_detach")
def force_detach(ctx: RequestContext, volume_id: str, args: Any) -> Reply:
    _backend(ctx).require_admin(ctx.is_admin, "volume_extension:volume_admin_actions:force_detach")
    args = _args(args, "os-force_detach")
    _backend(ctx).force_detach(volume_id, args.get("attachment_id"))
    return Reply(202)


@action("os-set_image_metadata")
def set_image_metadata(ctx: RequestContext, volume_id: str, args: Any) -> Reply:
    metadata = _args(args, "os-set_image_metadata").get("metadata")
    if not isinstance(metadata, dict):
        raise BadRequest("Invalid input for field/attribute metadata. It is not a dict.")
    volume = _backend(ctx).set_image_metadata(volume_id, _scope(ctx), {str(k): str(v) for k, v in metadata.items()})
    return Reply(200, {"metadata": dict(volume.image_metadata)})


@action("os-unset_image_metadata")
def unset_image_metadata(ctx: RequestContext, volume_id: str, args: Any) -> Reply:
    key = _args(args, "os-unset_image_metadata").get("key")
    if not isinstance(key, str):
        raise BadRequest("Invalid input for field/attribute key. 'key' is a required property")
    _backend(ctx).unset_image_metadata(volume_id, _scope(ctx), key)
    return Reply(200)


@action("os-show_image_metadata")
def show_image_metadata(ctx: RequestContext, volume_id: str, args: Any) -> Reply:
    return Reply(200, {"metadata": dict(_backend(ctx).get_volume(volume_id, _scope(ctx)).image_metadata)})


@action("os-volume_upload_image")
def upload_image(ctx: RequestContext, volume_id: str, args: Any) -> Reply:
    args = _args(args, "os-volume_upload_image")
    if not args.get("image_name"):
        raise BadRequest("Invalid input for field/attribute image_name. 'image_name' is a required property")
    volume = _backend(ctx).get_volume(volume_id, _scope(ctx))
    image = _backend(ctx).upload_to_image(volume_id, ctx.project_id, ctx.is_admin, args)
    return Reply(202, {"os-volume_upload_image": {
        "id": volume.id, "updated_at": volume.updated_at, "status": volume.status, "display_description":
        volume.description, "size": volume.size, "volume_type": views.volume_type(
            _backend(ctx).catalog.get_type(volume.volume_type_id)), "image_id": image.id,
        "container_format": image.container_format, "disk_format": image.disk_format, "image_name": image.name,
        "protected": image.protected, "visibility": image.visibility}})


# attachments (3.27+) -------------------------------------------------------------------------------
def _attachments(ctx: RequestContext, detail: bool) -> Reply:
    _require_version(ctx, "3.27")
    scope = None if ctx.all_projects() else ctx.project_id
    wanted = {k: ctx.query.get(k) for k in ("volume_id", "instance_id", "status", "id") if ctx.query.get(k)}
    items = []
    for attachment in _backend(ctx).list_attachments(scope):
        fields = {"volume_id": attachment.volume_id, "instance_id": attachment.server_id,
                  "status": attachment.status, "id": attachment.id}
        if all(fields[k] == v for k, v in wanted.items()):
            items.append(views.attachment_detail(attachment) if detail else views.attachment_summary(attachment))
    return Reply(200, {"attachments": items})


@route("/attachments", "GET", op="attachment.list")
def list_attachments(ctx: RequestContext) -> Reply:
    return _attachments(ctx, detail=False)


@route("/attachments/detail", "GET", op="attachment.list")
def list_attachments_detail(ctx: RequestContext) -> Reply:
    return _attachments(ctx, detail=True)


@route("/attachments/{id}", "GET", op="attachment.show")
def show_attachment(ctx: RequestContext) -> Reply:
    _require_version(ctx, "3.27")
    _, attachment = _backend(ctx).get_attachment(ctx.path["id"], _scope(ctx))
    return Reply(200, {"attachment": views.attachment_detail(attachment)})


@route("/attachments", "POST", op="attachment.create")
def create_attachment(ctx: RequestContext) -> Reply:
    """Reserve-and-attach in one step (Cinder's new attach flow, collapsed)."""
    _require_version(ctx, "3.27")
    spec = ctx.require_body("attachment")
    volume_id, server_id = spec.get("volume_uuid"), spec.get("instance_uuid")
    if not volume_id:
        raise BadRequest("Invalid input for field/attribute attachment. 'volume_uuid' is a required property")
    backend = _backend(ctx)
    volume = backend.get_volume(volume_id, _scope(ctx))
    attachment = backend.reserve_attachment(volume.id, server_id or "", volume.project_id, None)
    return Reply(200, {"attachment": views.attachment_detail(attachment)})


@route("/attachments/{id}", "DELETE", op="attachment.delete")
def delete_attachment(ctx: RequestContext) -> Reply:
    _require_version(ctx, "3.27")
    volume = _backend(ctx).delete_attachment(ctx.path["id"], _scope(ctx))
    return Reply(200, {"attachments": [views.attachment_summary(a) for a in volume.attachments]})


# zones, extensions, limits, quotas ------------------------------------------------------------------
@route("/os-availability-zone", "GET", op="availability_zone.list")
def list_zones(ctx: RequestContext) -> Reply:
    return Reply(200, {"availabilityZoneInfo": [{"zoneName": DEFAULT_AZ, "zoneState": {"available": True}}]})


# Cinder's API extensions (all built in since the v3 API, still listed for clients that look).
EXTENSIONS = (
    ("AvailabilityZones", "os-availability-zone"), ("Backups", "backups"), ("Capabilities", "capabilities"),
    ("Hosts", "os-hosts"), ("QuotaClasses", "os-quota-class-sets"), ("Quotas", "os-quota-sets"),
    ("Qos_specs_manage", "qos-specs"), ("SchedulerStats", "scheduler-stats"), ("Services", "os-services"),
    ("TypesManage", "os-types-manage"), ("TypesExtraSpecs", "os-types-extra-specs"),
    ("VolumeActions", "os-volume-actions"), ("VolumeAdminActions", "os-admin-actions"),
    ("VolumeHostAttribute", "os-vol-host-attr"), ("VolumeImageMetadata", "os-vol-image-meta"),
    ("VolumeMigStatusAttribute", "os-vol-mig-status-attr"), ("VolumeTenantAttribute", "os-vol-tenant-attr"),
    ("VolumeTransfer", "os-volume-transfer"), ("VolumeTypeAccess", "os-volume-type-access"),
    ("VolumeTypeEncryption", "encryption"),
)


@route("/extensions", "GET", op="extension.list")
def list_extensions(ctx: RequestContext) -> Reply:
    items = [{"name": name, "alias": alias, "description": f"{name} support.", "links": [],
              "updated": "2013-10-03T00:00:00+00:00"} for name, alias in EXTENSIONS]
    return Reply(200, {"extensions": items})


@route("/limits", "GET", op="limits.show")
def show_limits(ctx: RequestContext) -> Reply:
    backend = _backend(ctx)
    absolute = views.absolute_limits(backend.quota_limits(ctx.project_id), backend.quota_usage(ctx.project_id))
    return Reply(200, {"limits": {"rate": [], "absolute": absolute}})


def _quota_target(ctx: RequestContext, action_name: str) -> str:
    target = ctx.path["target"]
    if target != ctx.project_id and not ctx.is_admin:
        raise Forbidden(f"Policy doesn't allow volume_extension:quotas:{action_name} to be performed.")
    return target


@route("/os-quota-sets/{target}", "GET", op="quota.show")
def show_quotas(ctx: RequestContext) -> Reply:
    target = _quota_target(ctx, "show")
    backend = _backend(ctx)
    usage = backend.quota_usage(target) if _truthy(ctx.query.get("usage", "false")) else None
    return Reply(200, {"quota_set": views.quota_set(target, backend.quota_limits(target), usage)})


@route("/os-quota-sets/{target}/defaults", "GET", op="quota.defaults")
def show_default_quotas(ctx: RequestContext) -> Reply:
    return Reply(200, {"quota_set": views.quota_set(ctx.path["target"], _backend(ctx).default_quotas(), None)})


@route("/os-quota-sets/{target}", "PUT", op="quota.update")
def update_quotas(ctx: RequestContext) -> Reply:
    if not ctx.is_admin:
        raise Forbidden("Policy doesn't allow volume_extension:quotas:update to be performed.")
    values = quota_values(ctx.require_body("quota_set"))
    limits = _backend(ctx).set_quotas(ctx.path["target"], values)
    return Reply(200, {"quota_set": views.quota_set(None, limits, None)})


@route("/os-quota-sets/{target}", "DELETE", op="quota.delete")
def delete_quotas(ctx: RequestContext) -> Reply:
    if not ctx.is_admin:
        raise Forbidden("Policy doesn't allow volume_extension:quotas:delete to be performed.")
    _backend(ctx).delete_quotas(ctx.path["target"])
    return Reply(200)


# a path that names no volume (`/volumes/`): Cinder finds no such resource
@route("/volumes/", "GET", "PUT", "DELETE", op="volume.show")
def no_volume(ctx: RequestContext) -> Reply:
    raise NotFound("The resource could not be found.")


# registration ---------------------------------------------------------------------------------------
for _path, _methods, _op, _handler in PENDING:
    service.route("/v3" + _path, *_methods, op=_op)(_handler)
for _path, _methods, _op, _handler in PENDING:
    service.route("/v3/{project_id}" + _path, *_methods, op=_op)(_handler)
