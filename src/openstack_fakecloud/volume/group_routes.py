"""Cinder's group types (3.11+) and generic volume groups (3.13+).

Group types are admin-managed like volume types; groups belong to a project and collect its volumes.
"""

from __future__ import annotations

from typing import Any

from openstack_fakecloud.errors import BadRequest, NotFound
from openstack_fakecloud.framework import Reply, RequestContext, action_of
from openstack_fakecloud.volume import views
from openstack_fakecloud.volume.api import backend, body_dict, require_admin, require_version, route, scope, truthy
from openstack_fakecloud.volume.catalog import Catalog


def _catalog(ctx: RequestContext) -> Catalog:
    require_version(ctx, "3.11")
    return backend(ctx).catalog


def _specs(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and k for k in value):
        raise BadRequest(f"Invalid input for field/attribute group_specs. Value: {value}.")
    return {k: str(v) for k, v in value.items()}


# group types -----------------------------------------------------------------------------------------
@route("/group_types", "GET", op="group_type.list")
def list_group_types(ctx: RequestContext) -> Reply:
    kinds = list(_catalog(ctx).group_types.values())
    wanted = ctx.query.get("is_public")
    if not ctx.is_admin:
        kinds = [k for k in kinds if k.is_public]
    elif wanted is not None and wanted.lower() != "none":
        kinds = [k for k in kinds if k.is_public == truthy(wanted)]
    key, _, direction = (ctx.query.get("sort") or "name:asc").partition(":")
    if key not in ("name", "id", "description"):
        raise BadRequest(f"Invalid input received: Invalid sort key {key}.")
    kinds.sort(key=lambda k: getattr(k, key) or "", reverse=direction == "desc")
    return Reply(200, {"group_types": [views.group_type(k) for k in kinds]})


@route("/group_types", "POST", op="group_type.create")
def create_group_type(ctx: RequestContext) -> Reply:
    catalog = _catalog(ctx)
    require_admin(ctx, "group:group_types_manage")
    spec = body_dict(ctx, "group_type")
    kind = catalog.create_group_type(spec.get("name"), spec.get("description"), truthy(spec.get("is_public", True)),
                                     _specs(spec.get("group_specs") or {}))
    return Reply(202, {"group_type": views.group_type(kind)})


@route("/group_types/{type_id}", "GET", op="group_type.show")
def show_group_type(ctx: RequestContext) -> Reply:
    kind = _catalog(ctx).get_group_type(ctx.path["type_id"])
    if not kind.is_public and not ctx.is_admin:
        raise NotFound(f"Group type {ctx.path['type_id']} could not be found.")
    return Reply(200, {"group_type": views.group_type(kind)})


@route("/group_types/{type_id}", "PUT", op="group_type.update")
def update_group_type(ctx: RequestContext) -> Reply:
    catalog = _catalog(ctx)
    require_admin(ctx, "group:group_types_manage")
    spec = dict(body_dict(ctx, "group_type"))
    if "is_public" in spec and spec["is_public"] is not None:
        spec["is_public"] = truthy(spec["is_public"])
    return Reply(200, {"group_type": views.group_type(catalog.update_group_type(ctx.path["type_id"], spec))})


@route("/group_types/{type_id}", "DELETE", op="group_type.delete")
def delete_group_type(ctx: RequestContext) -> Reply:
    catalog = _catalog(ctx)
    require_admin(ctx, "group:group_types_manage")
    kind = catalog.get_group_type(ctx.path["type_id"])
    catalog.delete_group_type(kind.id, backend(ctx).groups.type_in_use(kind.id))
    return Reply(202)


@route("/group_types/{type_id}/group_specs", "GET", op="group_type.specs.list")
def list_group_specs(ctx: RequestContext) -> Reply:
    return Reply(200, {"group_specs": dict(_catalog(ctx).get_group_type(ctx.path["type_id"]).group_specs)})


@route("/group_types/{type_id}/group_specs", "POST", op="group_type.specs.create")
def create_group_specs(ctx: RequestContext) -> Reply:
    catalog = _catalog(ctx)
    require_admin(ctx, "group:group_types_specs")
    kind = catalog.get_group_type(ctx.path["type_id"])
    specs = _specs(ctx.body.get("group_specs") if isinstance(ctx.body, dict) else None)
    kind.group_specs.update(specs)
    return Reply(202, {"group_specs": specs})


@route("/group_types/{type_id}/group_specs/{key}", "GET", op="group_type.specs.show")
def show_group_spec(ctx: RequestContext) -> Reply:
    kind, key = _catalog(ctx).get_group_type(ctx.path["type_id"]), ctx.path["key"]
    if key not in kind.group_specs:
        raise NotFound(f"Group Type {kind.id} has no specs with key {key}.")
    return Reply(200, {key: kind.group_specs[key]})


@route("/group_types/{type_id}/group_specs/{key}", "PUT", op="group_type.specs.update")
def update_group_spec(ctx: RequestContext) -> Reply:
    catalog = _catalog(ctx)
    require_admin(ctx, "group:group_types_specs")
    kind = catalog.get_group_type(ctx.path["type_id"])
    specs = _specs(ctx.body)
    if list(specs) != [ctx.path["key"]]:
        raise BadRequest("Request body and URI mismatch")
    kind.group_specs.update(specs)
    return Reply(200, specs)


@route("/group_types/{type_id}/group_specs/{key}", "DELETE", op="group_type.specs.delete")
def delete_group_spec(ctx: RequestContext) -> Reply:
    catalog = _catalog(ctx)
    require_admin(ctx, "group:group_types_specs")
    kind, key = catalog.get_group_type(ctx.path["type_id"]), ctx.path["key"]
    if key not in kind.group_specs:
        raise NotFound(f"Group Type {kind.id} has no specs with key {key}.")
    del kind.group_specs[key]
    return Reply(202)


# groups ----------------------------------------------------------------------------------------------
def _view(ctx: RequestContext, group_id: str) -> dict[str, Any]:
    group = backend(ctx).groups.get(group_id, scope(ctx))
    return views.group(group, backend(ctx).groups.members(group), ctx.microversion or (3, 0))


@route("/groups", "POST", op="group.create")
def create_group(ctx: RequestContext) -> Reply:
    require_version(ctx, "3.13")
    spec = body_dict(ctx, "group")
    group = backend(ctx).groups.create(ctx.project_id, spec.get("name"), spec.get("description"),
                                       spec.get("group_type"), spec.get("volume_types"),
                                       spec.get("availability_zone"))
    return Reply(202, {"group": {"id": group.id, "name": group.name}})


@route("/groups/action", "POST", op="group.create_from_src")
def create_group_from_source(ctx: RequestContext) -> Reply:
    require_version(ctx, "3.14")
    spec = body_dict(ctx, "create-from-src")
    if spec.get("group_snapshot_id"):
        raise BadRequest("Invalid input received: fakecloud has no group snapshots to create a group from.")
    if not spec.get("source_group_id"):
        raise BadRequest("Invalid input received: Either 'group_snapshot_id' or 'source_group_id' must be provided.")
    group = backend(ctx).groups.create_from_source(ctx.project_id, str(spec["source_group_id"]), spec.get("name"),
                                                   spec.get("description"), ctx.token.user_id)
    return Reply(202, {"group": {"id": group.id, "name": group.name}})


def _list(ctx: RequestContext, detail: bool) -> Reply:
    require_version(ctx, "3.13")
    groups = backend(ctx).groups.list(None if ctx.all_projects() else ctx.project_id)
    items = [_view(ctx, g.id) if detail else {"id": g.id, "name": g.name} for g in groups]
    return Reply(200, {"groups": items})


@route("/groups", "GET", op="group.list")
def list_groups(ctx: RequestContext) -> Reply:
    return _list(ctx, detail=False)


@route("/groups/detail", "GET", op="group.list")
def list_groups_detail(ctx: RequestContext) -> Reply:
    return _list(ctx, detail=True)


@route("/groups/{id}", "GET", op="group.show")
def show_group(ctx: RequestContext) -> Reply:
    require_version(ctx, "3.13")
    return Reply(200, {"group": _view(ctx, ctx.path["id"])})


@route("/groups/{id}", "PUT", op="group.update")
def update_group(ctx: RequestContext) -> Reply:
    require_version(ctx, "3.13")
    spec = body_dict(ctx, "group")
    if not any(k in spec for k in ("name", "description", "add_volumes", "remove_volumes")):
        raise BadRequest("Invalid input received: Name, description, add_volumes and remove_volumes can not be "
                         "all empty in the request body.")
    backend(ctx).groups.update(ctx.path["id"], scope(ctx), spec)
    return Reply(202)


def _delete(ctx: RequestContext, args: Any) -> Reply:
    args = args if isinstance(args, dict) else {}
    backend(ctx).groups.delete(ctx.path["id"], scope(ctx), truthy(args.get("delete-volumes", False)))
    return Reply(202)


def _reset_status(ctx: RequestContext, args: Any) -> Reply:
    require_version(ctx, "3.20")
    require_admin(ctx, "group:reset_status")
    backend(ctx).groups.reset_status(ctx.path["id"], args.get("status") if isinstance(args, dict) else None)
    return Reply(202)


@route("/groups/{id}/action", "POST", op="group.action")
def group_action(ctx: RequestContext) -> Reply:
    require_version(ctx, "3.13")
    _name, handler, args = action_of(ctx.body, {"delete": _delete, "reset_status": _reset_status},
                                     "Malformed request body: expected exactly one action.")
    return handler(ctx, args)
