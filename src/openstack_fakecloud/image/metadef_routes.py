"""Glance v2 metadata definitions routes (/v2/metadefs/...) and their schemas (/v2/schemas/metadefs/...).

Bodies follow Glance's metadefs API: a namespace list is wrapped with `first` and `schema`, a namespace's
properties are a dict keyed by name, its objects and tags are lists. The store is `cloud.image.metadefs`.
"""

from __future__ import annotations

from typing import Any

from openstack_fakecloud.errors import BadRequest, NotFound
from openstack_fakecloud.framework import Reply, RequestContext
from openstack_fakecloud.image.metadefs import NAMESPACE_VISIBILITIES, MetadefStore, NamespaceFields
from openstack_fakecloud.image.service import service
from openstack_fakecloud.image.views import (
    association_view,
    metadef_object_view,
    metadef_property_view,
    metadef_tag_view,
    namespace_view,
)

PROPERTY_TYPES = ("array", "boolean", "integer", "number", "object", "string")
NS = "/v2/metadefs/namespaces/{namespace}"


def _store(ctx: RequestContext) -> MetadefStore:
    return ctx.cloud.image.metadefs


def _invalid(schema: str, message: str) -> BadRequest:
    return BadRequest(f"Provided object does not match schema '{schema}': {message}")


def _string(body: dict[str, Any], key: str, schema: str, required: bool = False,
            max_length: int = 255) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise _invalid(schema, f"'{key}' is a required property")
        return None
    if not isinstance(value, str) or len(value) > max_length:
        raise _invalid(schema, f"{value!r} is not a string of at most {max_length} characters ({key})")
    return value


def _body(ctx: RequestContext) -> dict[str, Any]:
    if not isinstance(ctx.body, dict):
        raise BadRequest("Body expected in request.")
    return ctx.body


# namespaces --------------------------------------------------------------------------------------
def _namespace_fields(body: dict[str, Any]) -> NamespaceFields:
    name = _string(body, "namespace", "namespace", required=True, max_length=80)
    visibility = body.get("visibility", "private")
    if visibility not in NAMESPACE_VISIBILITIES:
        raise _invalid("namespace", f"{visibility!r} is not one of {list(NAMESPACE_VISIBILITIES)}")
    protected = body.get("protected", False)
    if not isinstance(protected, bool):
        raise _invalid("namespace", f"{protected!r} is not of type 'boolean' (protected)")
    assert name is not None
    return NamespaceFields(namespace=name, display_name=_string(body, "display_name", "namespace", max_length=80),
                           description=_string(body, "description", "namespace", max_length=500),
                           visibility=visibility, protected=protected)


@service.route("/v2/metadefs/namespaces", "POST", op="metadef.namespace.create")
def create_namespace(ctx: RequestContext) -> Reply:
    body = _body(ctx)
    store = _store(ctx)
    fields = _namespace_fields(body)
    associations = body.get("resource_type_associations") or []
    if not isinstance(associations, list) or not all(isinstance(a, dict) for a in associations):
        raise _invalid("namespace", "'resource_type_associations' is not an array of objects")
    namespace = store.create(fields, ctx.project_id, ctx.is_admin)
    try:
        for raw in associations:
            _associate(ctx, namespace.namespace, raw)
        for name, prop in (body.get("properties") or {}).items():
            store.put_member(namespace.namespace, "property", None, name, _property(prop, name),
                             ctx.project_id, ctx.is_admin)
        for obj in body.get("objects") or []:
            name, value = _object(obj)
            store.put_member(namespace.namespace, "object", None, name, value, ctx.project_id, ctx.is_admin)
        for tag in body.get("tags") or []:
            store.put_member(namespace.namespace, "tag", None, _tag_name(tag), {}, ctx.project_id, ctx.is_admin)
    except Exception:
        del store.namespaces[namespace.namespace]  # all or nothing, as Glance's single transaction
        raise
    return Reply(201, namespace_view(namespace, detail=True))


@service.route("/v2/metadefs/namespaces", "GET", op="metadef.namespace.list")
def list_namespaces(ctx: RequestContext) -> Reply:
    namespaces = _store(ctx).visible(ctx.project_id, ctx.is_admin)
    visibility = ctx.query.get("visibility")
    if visibility is not None:
        namespaces = [n for n in namespaces if n.visibility == visibility]
    wanted = [t for t in ctx.query.get("resource_types", "").split(",") if t]
    if wanted:
        namespaces = [n for n in namespaces if any(a.name in wanted for a in n.associations)]
    namespaces.sort(key=lambda n: (n.created_at, n.namespace))
    return Reply(200, {"namespaces": [namespace_view(n) for n in namespaces], "first": "/v2/metadefs/namespaces",
                       "schema": "/v2/schemas/metadefs/namespaces"})


@service.route(NS, "GET", op="metadef.namespace.show")
def show_namespace(ctx: RequestContext) -> Reply:
    namespace = _store(ctx).get(ctx.path["namespace"], ctx.project_id, ctx.is_admin)
    return Reply(200, namespace_view(namespace, detail=True))


@service.route(NS, "PUT", op="metadef.namespace.update")
def update_namespace(ctx: RequestContext) -> Reply:
    fields = _namespace_fields(_body(ctx))
    namespace = _store(ctx).update(ctx.path["namespace"], fields, ctx.project_id, ctx.is_admin)
    return Reply(200, namespace_view(namespace))


@service.route(NS, "DELETE", op="metadef.namespace.delete")
def delete_namespace(ctx: RequestContext) -> Reply:
    _store(ctx).delete(ctx.path["namespace"], ctx.project_id, ctx.is_admin)
    return Reply(204)


# resource types ----------------------------------------------------------------------------------
@service.route("/v2/metadefs/resource_types", "GET", op="metadef.resource_type.list")
def list_resource_types(ctx: RequestContext) -> Reply:
    store = _store(ctx)
    return Reply(200, {"resource_types": [{"name": name, "created_at": created, "updated_at": created}
                                          for name, created in sorted(store.resource_types.items())]})


def _associate(ctx: RequestContext, namespace: str, body: dict[str, Any]) -> Any:
    schema = "resource_type_association"
    name = _string(body, "name", schema, required=True, max_length=80)
    assert name is not None
    return _store(ctx).associate(namespace, name, _string(body, "prefix", schema, max_length=80),
                                 _string(body, "properties_target", schema, max_length=80),
                                 ctx.project_id, ctx.is_admin)


@service.route(NS + "/resource_types", "POST", op="metadef.resource_type.associate")
def create_association(ctx: RequestContext) -> Reply:
    return Reply(201, association_view(_associate(ctx, ctx.path["namespace"], _body(ctx))))


@service.route(NS + "/resource_types", "GET", op="metadef.resource_type.list_associations")
def list_associations(ctx: RequestContext) -> Reply:
    namespace = _store(ctx).get(ctx.path["namespace"], ctx.project_id, ctx.is_admin)
    return Reply(200, {"resource_type_associations": [association_view(a) for a in namespace.associations]})


@service.route(NS + "/resource_types/{name}", "DELETE", op="metadef.resource_type.dissociate")
def delete_association(ctx: RequestContext) -> Reply:
    _store(ctx).dissociate(ctx.path["namespace"], ctx.path["name"], ctx.project_id, ctx.is_admin)
    return Reply(204)


# properties --------------------------------------------------------------------------------------
def _property(body: Any, name: str | None = None) -> dict[str, Any]:
    """A property definition: a JSON-schema fragment with a title and a type (the name is kept apart)."""
    if not isinstance(body, dict):
        raise _invalid("property", "a property must be an object")
    if name is None and _string(body, "name", "property", required=True, max_length=80) is None:
        raise _invalid("property", "'name' is a required property")
    _string(body, "title", "property", required=True)
    kind = body.get("type")
    if kind not in PROPERTY_TYPES:
        raise _invalid("property", f"{kind!r} is not one of {list(PROPERTY_TYPES)} (type)")
    if "enum" in body and not isinstance(body["enum"], list):
        raise _invalid("property", f"{body['enum']!r} is not of type 'array' (enum)")
    return {k: v for k, v in body.items() if k not in ("name", "created_at", "updated_at")}


@service.route(NS + "/properties", "POST", op="metadef.property.create")
def create_property(ctx: RequestContext) -> Reply:
    body = _body(ctx)
    value = _property(body)
    stored = _store(ctx).put_member(ctx.path["namespace"], "property", None, body["name"], value, ctx.project_id,
                                    ctx.is_admin)
    return Reply(201, metadef_property_view(body["name"], stored))


@service.route(NS + "/properties", "GET", op="metadef.property.list")
def list_properties(ctx: RequestContext) -> Reply:
    properties = _store(ctx).members(ctx.path["namespace"], "property", ctx.project_id, ctx.is_admin)
    return Reply(200, {"properties": {n: metadef_property_view(n, v, with_name=False)
                                      for n, v in properties.items()}})


@service.route(NS + "/properties", "DELETE", op="metadef.property.delete_all")
def delete_properties(ctx: RequestContext) -> Reply:
    _store(ctx).clear_members(ctx.path["namespace"], "property", ctx.project_id, ctx.is_admin)
    return Reply(204)


@service.route(NS + "/properties/{name}", "GET", op="metadef.property.show")
def show_property(ctx: RequestContext) -> Reply:
    name = ctx.path["name"]
    value = _store(ctx).member(ctx.path["namespace"], "property", name, ctx.project_id, ctx.is_admin)
    return Reply(200, metadef_property_view(name, value))


@service.route(NS + "/properties/{name}", "PUT", op="metadef.property.update")
def update_property(ctx: RequestContext) -> Reply:
    body = _body(ctx)
    value = _property(body)
    stored = _store(ctx).put_member(ctx.path["namespace"], "property", ctx.path["name"], body["name"], value,
                                    ctx.project_id, ctx.is_admin)
    return Reply(200, metadef_property_view(body["name"], stored))


@service.route(NS + "/properties/{name}", "DELETE", op="metadef.property.delete")
def delete_property(ctx: RequestContext) -> Reply:
    _store(ctx).delete_member(ctx.path["namespace"], "property", ctx.path["name"], ctx.project_id, ctx.is_admin)
    return Reply(204)


# objects -----------------------------------------------------------------------------------------
def _object(body: Any) -> tuple[str, dict[str, Any]]:
    if not isinstance(body, dict):
        raise _invalid("object", "an object definition must be an object")
    name = _string(body, "name", "object", required=True, max_length=80)
    assert name is not None
    required = body.get("required", [])
    properties = body.get("properties", {})
    if not isinstance(required, list) or not isinstance(properties, dict):
        raise _invalid("object", "'required' must be an array and 'properties' an object")
    value = {"description": _string(body, "description", "object", max_length=500), "required": required,
             "properties": {n: _property(p, n) for n, p in properties.items()}}
    return name, {k: v for k, v in value.items() if v is not None}


@service.route(NS + "/objects", "POST", op="metadef.object.create")
def create_object(ctx: RequestContext) -> Reply:
    name, value = _object(_body(ctx))
    stored = _store(ctx).put_member(ctx.path["namespace"], "object", None, name, value, ctx.project_id,
                                    ctx.is_admin)
    return Reply(201, metadef_object_view(ctx.path["namespace"], name, stored))


@service.route(NS + "/objects", "GET", op="metadef.object.list")
def list_objects(ctx: RequestContext) -> Reply:
    namespace = ctx.path["namespace"]
    objects = _store(ctx).members(namespace, "object", ctx.project_id, ctx.is_admin)
    return Reply(200, {"objects": [metadef_object_view(namespace, n, v) for n, v in objects.items()],
                       "schema": "v2/schemas/metadefs/objects"})


@service.route(NS + "/objects", "DELETE", op="metadef.object.delete_all")
def delete_objects(ctx: RequestContext) -> Reply:
    _store(ctx).clear_members(ctx.path["namespace"], "object", ctx.project_id, ctx.is_admin)
    return Reply(204)


@service.route(NS + "/objects/{name}", "GET", op="metadef.object.show")
def show_object(ctx: RequestContext) -> Reply:
    namespace, name = ctx.path["namespace"], ctx.path["name"]
    value = _store(ctx).member(namespace, "object", name, ctx.project_id, ctx.is_admin)
    return Reply(200, metadef_object_view(namespace, name, value))


@service.route(NS + "/objects/{name}", "PUT", op="metadef.object.update")
def update_object(ctx: RequestContext) -> Reply:
    namespace = ctx.path["namespace"]
    name, value = _object(_body(ctx))
    stored = _store(ctx).put_member(namespace, "object", ctx.path["name"], name, value, ctx.project_id,
                                    ctx.is_admin)
    return Reply(200, metadef_object_view(namespace, name, stored))


@service.route(NS + "/objects/{name}", "DELETE", op="metadef.object.delete")
def delete_object(ctx: RequestContext) -> Reply:
    _store(ctx).delete_member(ctx.path["namespace"], "object", ctx.path["name"], ctx.project_id, ctx.is_admin)
    return Reply(204)


# tags --------------------------------------------------------------------------------------------
def _tag_name(body: Any) -> str:
    if not isinstance(body, dict):
        raise _invalid("tag", "a tag must be an object")
    name = _string(body, "name", "tag", required=True)
    assert name is not None
    return name


@service.route(NS + "/tags", "POST", op="metadef.tag.create_all")
def create_tags(ctx: RequestContext) -> Reply:
    raw = _body(ctx).get("tags")
    if not isinstance(raw, list):
        raise _invalid("tags", "'tags' is a required property")
    names = _store(ctx).replace_tags(ctx.path["namespace"], [_tag_name(t) for t in raw], ctx.project_id,
                                     ctx.is_admin)
    return Reply(201, {"tags": [{"name": n} for n in names]})


@service.route(NS + "/tags", "GET", op="metadef.tag.list")
def list_tags(ctx: RequestContext) -> Reply:
    tags = _store(ctx).members(ctx.path["namespace"], "tag", ctx.project_id, ctx.is_admin)
    return Reply(200, {"tags": [metadef_tag_view(n, v) for n, v in tags.items()]})


@service.route(NS + "/tags", "DELETE", op="metadef.tag.delete_all")
def delete_tags(ctx: RequestContext) -> Reply:
    _store(ctx).clear_members(ctx.path["namespace"], "tag", ctx.project_id, ctx.is_admin)
    return Reply(204)


@service.route(NS + "/tags/{name}", "POST", op="metadef.tag.create")
def create_tag(ctx: RequestContext) -> Reply:
    name = ctx.path["name"]
    stored = _store(ctx).put_member(ctx.path["namespace"], "tag", None, name, {}, ctx.project_id, ctx.is_admin)
    return Reply(201, metadef_tag_view(name, stored))


@service.route(NS + "/tags/{name}", "GET", op="metadef.tag.show")
def show_tag(ctx: RequestContext) -> Reply:
    name = ctx.path["name"]
    return Reply(200, metadef_tag_view(name, _store(ctx).member(ctx.path["namespace"], "tag", name,
                                                                ctx.project_id, ctx.is_admin)))


@service.route(NS + "/tags/{name}", "PUT", op="metadef.tag.update")
def update_tag(ctx: RequestContext) -> Reply:
    new = _tag_name(_body(ctx))
    stored = _store(ctx).put_member(ctx.path["namespace"], "tag", ctx.path["name"], new, {}, ctx.project_id,
                                    ctx.is_admin)
    return Reply(200, metadef_tag_view(new, stored))


@service.route(NS + "/tags/{name}", "DELETE", op="metadef.tag.delete")
def delete_tag(ctx: RequestContext) -> Reply:
    _store(ctx).delete_member(ctx.path["namespace"], "tag", ctx.path["name"], ctx.project_id, ctx.is_admin)
    return Reply(204)


# schemas -----------------------------------------------------------------------------------------
_STAMPS: dict[str, dict[str, Any]] = {
    "created_at": {"type": "string", "readOnly": True, "format": "date-time",
                   "description": "Date and time of the creation (READ-ONLY)"},
    "updated_at": {"type": "string", "readOnly": True, "format": "date-time",
                   "description": "Date and time of the last modification (READ-ONLY)"},
}
_PROPERTY: dict[str, Any] = {
    "name": "property", "required": ["name", "title", "type"], "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "maxLength": 80},
        "title": {"type": "string"}, "description": {"type": "string"},
        "operators": {"type": "array", "items": {"type": "string"}},
        "type": {"type": "string", "enum": [*PROPERTY_TYPES, None]},
        "enum": {"type": "array"}, "default": {}, "readonly": {"type": "boolean"},
        "minimum": {"type": "number"}, "maximum": {"type": "number"},
        "minLength": {"type": "integer", "minimum": 0}, "maxLength": {"type": "integer", "minimum": 0},
        "pattern": {"type": "string", "format": "regex"}, "items": {"type": "object"},
        "minItems": {"type": "integer", "minimum": 0}, "maxItems": {"type": "integer", "minimum": 0},
        "uniqueItems": {"type": "boolean", "default": False}, "additionalItems": {"type": "boolean"},
    },
}
_RESOURCE_TYPE: dict[str, Any] = {
    "name": "resource_type_association", "required": ["name", "prefix"], "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "maxLength": 80,
                 "description": "Resource type names should be aligned with Heat resource types whenever "
                                "possible: https://docs.openstack.org/heat/latest/template_guide/openstack.html"},
        "prefix": {"type": "string", "maxLength": 80,
                   "description": "Specifies the prefix to use for the given resource type."},
        "properties_target": {"type": "string", "maxLength": 80,
                              "description": "Some resource types allow more than one key / value pair per "
                                             "instance."},
        **_STAMPS,
    },
}
_OBJECT: dict[str, Any] = {
    "name": "object", "required": ["name"], "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "maxLength": 80}, "description": {"type": "string"},
        "required": {"type": "array", "items": {"type": "string"}},
        "properties": {"type": "object", "additionalProperties": _PROPERTY},
        "schema": {"type": "string", "readOnly": True}, "self": {"type": "string", "readOnly": True},
        **_STAMPS,
    },
}
_TAG: dict[str, Any] = {
    "name": "tag", "required": ["name"], "additionalProperties": False,
    "properties": {"name": {"type": "string", "maxLength": 255}, **_STAMPS},
}
_NAMESPACE: dict[str, Any] = {
    "name": "namespace", "required": ["namespace"], "additionalProperties": False,
    "properties": {
        "namespace": {"type": "string", "maxLength": 80, "description": "The unique namespace text."},
        "display_name": {"type": "string", "maxLength": 80,
                         "description": "The user friendly name for the namespace."},
        "description": {"type": "string", "maxLength": 500,
                        "description": "Provides a user friendly description of the namespace."},
        "visibility": {"type": "string", "enum": list(NAMESPACE_VISIBILITIES),
                       "description": "Scope of namespace accessibility."},
        "protected": {"type": "boolean", "description": "If true, namespace will not be deletable."},
        "owner": {"type": "string", "maxLength": 255, "description": "Owner of the namespace."},
        "resource_type_associations": {"type": "array", "items": _RESOURCE_TYPE},
        "properties": {"type": "object", "additionalProperties": _PROPERTY},
        "objects": {"type": "array", "items": _OBJECT},
        "tags": {"type": "array", "items": _TAG},
        "schema": {"type": "string", "readOnly": True}, "self": {"type": "string", "readOnly": True},
        **_STAMPS,
    },
}


def _collection(name: str, key: str, item: dict[str, Any], key_type: str = "array") -> dict[str, Any]:
    items = {"type": "array", "items": item} if key_type == "array" else {"type": "object",
                                                                          "additionalProperties": item}
    return {"name": name, "properties": {key: items, "schema": {"type": "string"}, "first": {"type": "string"},
                                         "next": {"type": "string"}},
            "links": [{"rel": "first", "href": "{first}"}, {"rel": "next", "href": "{next}"},
                      {"rel": "describedby", "href": "{schema}"}]}


METADEF_SCHEMAS: dict[str, dict[str, Any]] = {
    "namespace": _NAMESPACE,
    "namespaces": _collection("namespaces", "namespaces", _NAMESPACE),
    "resource_type": _RESOURCE_TYPE,
    "resource_types": _collection("resource_type_associations", "resource_type_associations", _RESOURCE_TYPE),
    "object": _OBJECT,
    "objects": _collection("objects", "objects", _OBJECT),
    "property": _PROPERTY,
    "properties": _collection("properties", "properties", _PROPERTY, key_type="object"),
    "tag": _TAG,
    "tags": _collection("tags", "tags", _TAG),
}


@service.route("/v2/schemas/metadefs/{kind}", "GET", op="schema.metadefs")
def show_metadef_schema(ctx: RequestContext) -> Reply:
    schema = METADEF_SCHEMAS.get(ctx.path["kind"])
    if schema is None:
        raise NotFound(f"No metadata definitions schema named {ctx.path['kind']}.")
    return Reply(200, schema)
