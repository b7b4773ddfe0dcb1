"""Cinder's volume type API (types, extra specs, project access, encryption) and QoS specs.

Reading types is open to every project (private types only to the projects given access); changing them is
admin-only, as in Cinder's default policy.
"""

from __future__ import annotations

from typing import Any

from openstack_fakecloud.errors import BadRequest, NotFound
from openstack_fakecloud.framework import Reply, RequestContext, action_of
from openstack_fakecloud.volume import views
from openstack_fakecloud.volume.api import backend, base, body_dict, require_admin, route, scope, truthy
from openstack_fakecloud.volume.catalog import ENCRYPTION_FIELDS, Catalog, VolumeType


def _catalog(ctx: RequestContext) -> Catalog:
    return backend(ctx).catalog


def _type(ctx: RequestContext) -> VolumeType:
    """The type in the path; a private one the caller has no access to is as unknown as a missing one."""
    kind = _catalog(ctx).get_type(ctx.path["type_id"])
    if not _catalog(ctx).visible(kind, scope(ctx)):
        raise NotFound(f"Volume type {ctx.path['type_id']} could not be found.")
    return kind


def _specs(value: Any, name: str = "extra_specs") -> dict[str, str]:
    if not isinstance(value, dict):
        raise BadRequest(f"Invalid input for field/attribute {name}. Value: {value}. {value!r} is not of type "
                         "'object'")
    for key, spec in value.items():
        if not isinstance(key, str) or not key or len(key) > 255 or not isinstance(spec, str | int | float | bool):
            raise BadRequest(f"Invalid input for field/attribute {name}. Value: {value}.")
    return {k: str(v) for k, v in value.items()}


# types ----------------------------------------------------------------------------------------------
@route("/types", "GET", op="type.list")
def list_types(ctx: RequestContext) -> Reply:
    """Cinder's filter: public types and those shared with the caller's project; only an admin may ask for the
    private ones (`is_public=false`) or every type (`is_public=none`)."""
    wanted = ctx.query.get("is_public") if ctx.is_admin else None
    if wanted is None:
        is_public: bool | None = True
    else:
        is_public = None if wanted.lower() == "none" else truthy(wanted)
    kinds = _catalog(ctx).list_types(ctx.project_id, is_public)
    return Reply(200, {"volume_types": [views.volume_type(k) for k in kinds]})


@route("/types", "POST", op="type.create")
def create_type(ctx: RequestContext) -> Reply:
    require_admin(ctx, "volume_extension:types_manage")
    spec = body_dict(ctx, "volume_type")
    public = spec.get("os-volume-type-access:is_public", spec.get("is_public", True))
    kind = _catalog(ctx).create_type(spec.get("name"), spec.get("description"), truthy(public),
                                     _specs(spec.get("extra_specs") or {}))
    return Reply(200, {"volume_type": views.volume_type(kind, "create")})


@route("/types/{type_id}", "GET", op="type.show")
def show_type(ctx: RequestContext) -> Reply:
    return Reply(200, {"volume_type": views.volume_type(_type(ctx))})


@route("/types/{type_id}", "PUT", op="type.update")
def update_type(ctx: RequestContext) -> Reply:
    require_admin(ctx, "volume_extension:types_manage")
    spec = body_dict(ctx, "volume_type")
    if not any(k in spec for k in ("name", "description", "is_public")):
        raise BadRequest("Invalid input received: Specify volume type name, description, is_public or a "
                         "combination thereof.")
    changes = dict(spec)
    if "is_public" in changes and changes["is_public"] is not None:
        changes["is_public"] = truthy(changes["is_public"])
    kind = _catalog(ctx).update_type(ctx.path["type_id"], changes)
    backend(ctx).rename_type(kind)
    return Reply(200, {"volume_type": views.volume_type(kind, "update")})


@route("/types/{type_id}", "DELETE", op="type.delete")
def delete_type(ctx: RequestContext) -> Reply:
    require_admin(ctx, "volume_extension:types_manage")
    kind = _catalog(ctx).get_type(ctx.path["type_id"])
    _catalog(ctx).delete_type(kind.id, backend(ctx).type_in_use(kind.id))
    return Reply(202)


# extra specs ----------------------------------------------------------------------------------------
@route("/types/{type_id}/extra_specs", "GET", op="type.extra_specs.list")
def list_extra_specs(ctx: RequestContext) -> Reply:
    return Reply(200, {"extra_specs": dict(_type(ctx).extra_specs)})


@route("/types/{type_id}/extra_specs", "POST", op="type.extra_specs.create")
def create_extra_specs(ctx: RequestContext) -> Reply:
    require_admin(ctx, "volume_extension:types_extra_specs:create")
    kind = _catalog(ctx).get_type(ctx.path["type_id"])
    specs = _specs(ctx.body.get("extra_specs") if isinstance(ctx.body, dict) else None)
    return Reply(200, {"extra_specs": _catalog(ctx).set_extra_specs(kind.id, specs)})


@route("/types/{type_id}/extra_specs/{key}", "GET", op="type.extra_specs.show")
def show_extra_spec(ctx: RequestContext) -> Reply:
    kind, key = _type(ctx), ctx.path["key"]
    if key not in kind.extra_specs:
        raise NotFound(f"Volume Type {kind.id} has no extra specs with key {key}.")
    return Reply(200, {key: kind.extra_specs[key]})


@route("/types/{type_id}/extra_specs/{key}", "PUT", op="type.extra_specs.update")
def update_extra_spec(ctx: RequestContext) -> Reply:
    require_admin(ctx, "volume_extension:types_extra_specs:update")
    kind = _catalog(ctx).get_type(ctx.path["type_id"])
    if not isinstance(ctx.body, dict) or not ctx.body:
        raise BadRequest("Malformed request body: expected one extra spec.")
    if len(ctx.body) > 1:
        raise BadRequest("Request body contains too many items.")
    specs = _specs(ctx.body)
    if ctx.path["key"] not in specs:
        raise BadRequest("Request body and URI mismatch")
    return Reply(200, _catalog(ctx).set_extra_specs(kind.id, specs))


@route("/types/{type_id}/extra_specs/{key}", "DELETE", op="type.extra_specs.delete")
def delete_extra_spec(ctx: RequestContext) -> Reply:
    require_admin(ctx, "volume_extension:types_extra_specs:delete")
    _catalog(ctx).delete_extra_spec(ctx.path["type_id"], ctx.path["key"])
    return Reply(202)


# project access -------------------------------------------------------------------------------------
@route("/types/{type_id}/os-volume-type-access", "GET", op="type.access.list")
def list_type_access(ctx: RequestContext) -> Reply:
    require_admin(ctx, "volume_extension:volume_type_access")
    kind = _catalog(ctx).get_type(ctx.path["type_id"])
    if kind.is_public:
        raise NotFound("Access list not available for public volume types.")
    return Reply(200, {"volume_type_access": [{"volume_type_id": kind.id, "project_id": p} for p in kind.projects]})


@route("/types/{type_id}/action", "POST", op="type.action")
def type_action(ctx: RequestContext) -> Reply:
    require_admin(ctx, "volume_extension:volume_type_access:addProjectAccess")
    name, handler, args = action_of(ctx.body, {"addProjectAccess": _catalog(ctx).add_access,
                                               "removeProjectAccess": _catalog(ctx).remove_access},
                                    "Malformed request body: expected exactly one action.")
    project = args.get("project") if isinstance(args, dict) else None
    if not project:
        raise BadRequest(f"Invalid input for field/attribute {name}. 'project' is a required property")
    handler(ctx.path["type_id"], str(project))
    return Reply(202)


# encryption ------------------------------------------------------------------------------------------
@route("/types/{type_id}/encryption", "GET", op="type.encryption.show")
def show_encryption(ctx: RequestContext) -> Reply:
    kind = _type(ctx)
    return Reply(200, views.encryption(kind.encryption) if kind.encryption else {})


@route("/types/{type_id}/encryption", "POST", op="type.encryption.create")
def create_encryption(ctx: RequestContext) -> Reply:
    require_admin(ctx, "volume_extension:volume_type_encryption:create")
    spec = body_dict(ctx, "encryption")
    kind = _catalog(ctx).get_type(ctx.path["type_id"])
    created = _catalog(ctx).create_encryption(kind.id, spec, backend(ctx).type_in_use(kind.id))
    return Reply(200, {"encryption": views.encryption(created, full=False)})


@route("/types/{type_id}/encryption/{key}", "GET", op="type.encryption.show")
def show_encryption_item(ctx: RequestContext) -> Reply:
    kind, key = _type(ctx), ctx.path["key"]
    shown = views.encryption(kind.encryption) if kind.encryption else {}
    if key not in shown:
        raise NotFound(f"Volume type encryption for type {kind.id} does not exist.")
    return Reply(200, {key: shown[key]})


@route("/types/{type_id}/encryption/{key}", "PUT", op="type.encryption.update")
def update_encryption(ctx: RequestContext) -> Reply:
    require_admin(ctx, "volume_extension:volume_type_encryption:update")
    spec = body_dict(ctx, "encryption")
    kind = _catalog(ctx).get_type(ctx.path["type_id"])
    _catalog(ctx).update_encryption(kind.id, spec, backend(ctx).type_in_use(kind.id))
    return Reply(200, {"encryption": {k: v for k, v in spec.items() if k in ENCRYPTION_FIELDS}})


@route("/types/{type_id}/encryption/{key}", "DELETE", op="type.encryption.delete")
def delete_encryption(ctx: RequestContext) -> Reply:
    require_admin(ctx, "volume_extension:volume_type_encryption:delete")
    kind = _catalog(ctx).get_type(ctx.path["type_id"])
    _catalog(ctx).delete_encryption(kind.id, backend(ctx).type_in_use(kind.id))
    return Reply(202)


# QoS specs -------------------------------------------------------------------------------------------
def _qos_reply(ctx: RequestContext, qos_id: str) -> Reply:
    spec = _catalog(ctx).get_qos(qos_id)
    return Reply(200, {"qos_specs": views.qos_spec(spec),
                       "links": views.links(base(ctx, ctx.project_id), "qos-specs", spec.id)})


@route("/qos-specs", "GET", op="qos.list")
def list_qos(ctx: RequestContext) -> Reply:
    require_admin(ctx, "volume_extension:qos_specs_manage:get_all")
    return Reply(200, {"qos_specs": [views.qos_spec(q) for q in _catalog(ctx).qos.values()]})


@route("/qos-specs", "POST", op="qos.create")
def create_qos(ctx: RequestContext) -> Reply:
    require_admin(ctx, "volume_extension:qos_specs_manage:create")
    spec = dict(body_dict(ctx, "qos_specs"))
    name, consumer = spec.pop("name", None), spec.pop("consumer", "back-end")
    created = _catalog(ctx).create_qos(name, consumer, _specs(spec, "qos_specs"))
    return _qos_reply(ctx, created.id)


@route("/qos-specs/{qos_id}", "GET", op="qos.show")
def show_qos(ctx: RequestContext) -> Reply:
    require_admin(ctx, "volume_extension:qos_specs_manage:get")
    return _qos_reply(ctx, ctx.path["qos_id"])


@route("/qos-specs/{qos_id}", "PUT", op="qos.update")
def set_qos_keys(ctx: RequestContext) -> Reply:
    require_admin(ctx, "volume_extension:qos_specs_manage:update")
    spec = _catalog(ctx).get_qos(ctx.path["qos_id"])
    values = dict(body_dict(ctx, "qos_specs"))
    if "consumer" in values:
        consumer = values.pop("consumer")
        if consumer not in ("front-end", "back-end", "both"):
            raise BadRequest(f"Invalid input received: Value {consumer} is not valid for consumer.")
        spec.consumer = consumer
    specs = _specs(values, "qos_specs")
    spec.specs.update(specs)
    return Reply(200, {"qos_specs": specs})


@route("/qos-specs/{qos_id}", "DELETE", op="qos.delete")
def delete_qos(ctx: RequestContext) -> Reply:
    require_admin(ctx, "volume_extension:qos_specs_manage:delete")
    _catalog(ctx).delete_qos(ctx.path["qos_id"], truthy(ctx.query.get("force", "false")))
    return Reply(202)


@route("/qos-specs/{qos_id}/delete_keys", "PUT", op="qos.delete_keys")
def unset_qos_keys(ctx: RequestContext) -> Reply:
    require_admin(ctx, "volume_extension:qos_specs_manage:update")
    spec = _catalog(ctx).get_qos(ctx.path["qos_id"])
    keys = ctx.body.get("keys") if isinstance(ctx.body, dict) else None
    if not isinstance(keys, list):
        raise BadRequest("Invalid input for field/attribute keys. 'keys' is a required property")
    missing = [k for k in keys if k not in spec.specs]
    if missing:
        raise NotFound(f"QoS spec {missing[0]} not found for QoS specs {spec.id}.")
    for key in keys:
        del spec.specs[key]
    return Reply(202)


@route("/qos-specs/{qos_id}/associations", "GET", op="qos.associations")
def list_qos_associations(ctx: RequestContext) -> Reply:
    require_admin(ctx, "volume_extension:qos_specs_manage:get")
    kinds = _catalog(ctx).associations(ctx.path["qos_id"])
    return Reply(200, {"qos_associations": [{"association_type": "volume_type", "id": k.id, "name": k.name}
                                            for k in kinds]})


def _type_param(ctx: RequestContext) -> str:
    type_id = ctx.query.get("vol_type_id")
    if not type_id:
        raise BadRequest("Invalid input received: Volume Type id must not be None.")
    return type_id


@route("/qos-specs/{qos_id}/associate", "GET", op="qos.associate")
def associate_qos(ctx: RequestContext) -> Reply:
    require_admin(ctx, "volume_extension:qos_specs_manage:update")
    _catalog(ctx).associate(ctx.path["qos_id"], _type_param(ctx))
    return Reply(202)


@route("/qos-specs/{qos_id}/disassociate", "GET", op="qos.disassociate")
def disassociate_qos(ctx: RequestContext) -> Reply:
    require_admin(ctx, "volume_extension:qos_specs_manage:update")
    type_id = _type_param(ctx)
    _catalog(ctx).get_type(type_id)
    _catalog(ctx).disassociate(ctx.path["qos_id"], type_id)
    return Reply(202)


@route("/qos-specs/{qos_id}/disassociate_all", "GET", op="qos.disassociate_all")
def disassociate_all_qos(ctx: RequestContext) -> Reply:
    require_admin(ctx, "volume_extension:qos_specs_manage:update")
    _catalog(ctx).disassociate(ctx.path["qos_id"], None)
    return Reply(202)
