"""Nova v2.1 routes: what openstacksdk, the OpenStack CLI and Heat send to /compute/v2.1.

Each handler parses the request (shapes and microversion rules), calls one backend method and
renders a view. Meaning (does the flavor exist, is the state right, is there quota) is the backend's.
"""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING, Any

from starlette.routing import BaseRoute

from openstack_fakecloud.compute import views
from openstack_fakecloud.compute.backend import (
    DISK_CONFIGS,
    GROUP_POLICIES,
    MAX_LIMIT,
    STATUSES,
    Caller,
    ComputeBackend,
    NetworkRequest,
    Server,
    ServerCreate,
    ServerQuery,
    ServerRebuild,
    normalize_ip,
    parse_time,
)
from openstack_fakecloud.errors import BadRequest, Conflict, Forbidden, NotFound
from openstack_fakecloud.framework import (
    Collection,
    Microversions,
    Reply,
    RequestContext,
    Service,
    Version,
    action_of,
    format_version,
    query_href,
)

if TYPE_CHECKING:
    from openstack_fakecloud.state import Cloud


class ComputeService(Service):
    """Nova's service plus the unversioned `/compute` versions list, which sits above the v2.1 prefix."""

    def __init__(self, root: Service, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.root = root

    def routes(self, cloud: Cloud) -> list[BaseRoute]:
        return self.root.routes(cloud) + super().routes(cloud)


REQUEST_ID_HEADER = "X-Compute-Request-Id"  # Nova's own name for the request id, besides X-OpenStack-Request-ID
root = Service("compute", "/compute", error_style="nova", request_id_header=REQUEST_ID_HEADER)
service = ComputeService(
    root, "compute", "/compute/v2.1", error_style="nova", request_id_header=REQUEST_ID_HEADER,
    microversions=Microversions("compute", (2, 1), legacy_header="X-OpenStack-Nova-API-Version"),
    max_version=lambda cloud: cloud.compute_max,
)


def _backend(ctx: RequestContext) -> ComputeBackend:
    return ctx.cloud.compute


def _version(ctx: RequestContext) -> Version:
    return ctx.microversion or (2, 1)


def _invalid(field: str, detail: str) -> BadRequest:
    return BadRequest(f"Invalid input for field/attribute {field}. {detail}")


def _caller(ctx: RequestContext) -> Caller:
    """Who an instance action records: this request's id (the one its answer's headers carry) and user."""
    assert ctx.token is not None
    return Caller(ctx.request_id, ctx.token.user_id, ctx.is_admin)


# discovery ----------------------------------------------------------------------------------
def _version_doc(ctx: RequestContext) -> dict[str, Any]:
    return {
        "id": "v2.1", "status": "CURRENT", "version": format_version(ctx.cloud.compute_max), "min_version": "2.1",
        "updated": "2013-07-23T11:33:21Z",
        "links": [{"rel": "self", "href": ctx.url("/compute/v2.1/")},
                  {"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}],
    }


@root.route("", "GET", op="versions", auth=False)
@root.route("/", "GET", op="versions", auth=False)
def versions(ctx: RequestContext) -> Reply:
    legacy = {"id": "v2.0", "status": "SUPPORTED", "version": "", "min_version": "",
              "updated": "2011-01-21T11:33:21Z", "links": [{"rel": "self", "href": ctx.url("/compute/v2/")}]}
    return Reply(200, {"versions": [legacy, _version_doc(ctx)]})


@service.route("", "GET", op="version", auth=False)
@service.route("/", "GET", op="version", auth=False)
def version(ctx: RequestContext) -> Reply:
    return Reply(200, {"version": _version_doc(ctx)})


# paging -------------------------------------------------------------------------------------
def _parse_limit(raw: str) -> int:
    try:
        limit = int(raw)
    except ValueError:
        raise BadRequest("limit param must be an integer") from None
    if limit < 0:
        raise BadRequest("limit param must be positive")
    return min(limit, MAX_LIMIT)


def _unknown_marker(marker: str) -> BadRequest:
    return BadRequest(f"marker [{marker}] not found")


def _collection(key: str, path: str) -> Collection[Any]:
    """Nova's paging: `<key>_links` to the request's own query, linked whenever a page came back full."""
    return Collection(key, _parse_limit, _unknown_marker, link_when="full", blank_marker=True,
                      next_href=lambda ctx, marker, limit: query_href(ctx, ctx.url(f"/compute/v2.1/{path}"), marker))


FLAVORS, FLAVORS_DETAIL = _collection("flavors", "flavors"), _collection("flavors", "flavors/detail")
SERVERS, SERVERS_DETAIL = _collection("servers", "servers"), _collection("servers", "servers/detail")


# flavors ------------------------------------------------------------------------------------
def _int_param(ctx: RequestContext, name: str) -> int:
    raw = ctx.query.get(name)
    if raw is None:
        return 0
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(f"Invalid {name} filter [{raw}]") from None


def _list_flavors(ctx: RequestContext, detail: bool) -> Reply:
    collection = FLAVORS_DETAIL if detail else FLAVORS
    collection.limit(ctx)  # Nova checks the limit before the filters and the marker
    flavors = _backend(ctx).list_flavors(ctx.is_admin, ctx.query.get("is_public"), _int_param(ctx, "minRam"),
                                         _int_param(ctx, "minDisk"))
    page, links = collection.page(ctx, flavors)
    render = views.flavor_detail if detail else views.flavor_brief
    return Reply(200, {"flavors": [render(ctx.cloud, f, _version(ctx)) for f in page], **links})


@service.route("/flavors", "GET", op="flavor.list")
def list_flavors(ctx: RequestContext) -> Reply:
    return _list_flavors(ctx, detail=False)


@service.route("/flavors/detail", "GET", op="flavor.list")
def list_flavors_detail(ctx: RequestContext) -> Reply:
    return _list_flavors(ctx, detail=True)


@service.route("/flavors/{id}", "GET", op="flavor.show")
def show_flavor(ctx: RequestContext) -> Reply:
    flavor = _backend(ctx).get_flavor(ctx.path["id"])
    return Reply(200, {"flavor": views.flavor_detail(ctx.cloud, flavor, _version(ctx))})


@service.route("/flavors/{id}/os-extra_specs", "GET", op="flavor.extra_specs")
def flavor_extra_specs(ctx: RequestContext) -> Reply:
    return Reply(200, {"extra_specs": dict(_backend(ctx).get_flavor(ctx.path["id"]).extra_specs)})


@service.route("/flavors", "POST", op="flavor.create")
def create_flavor(ctx: RequestContext) -> Reply:
    body = ctx.require_body("flavor")
    spec: dict[str, Any] = {}
    if not isinstance(body.get("name"), str) or not body["name"].strip():
        raise _invalid("name", "'name' is a required property")
    spec["name"] = body["name"]
    for key in ("ram", "vcpus", "disk"):
        value = body.get(key)
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or value < (0 if key == "disk" else 1):
            raise _invalid(key, f"Value: {value!r}. '{key}' must be a positive integer")
        spec[key] = value
    if body.get("id") not in (None, "auto"):
        spec["id"] = str(body["id"])
    spec["ephemeral"] = int(body.get("OS-FLV-EXT-DATA:ephemeral") or 0)
    spec["swap"] = int(body.get("swap") or 0)
    spec["is_public"] = bool(body.get("os-flavor-access:is_public", True))
    spec["rxtx_factor"] = float(body.get("rxtx_factor") or 1.0)
    spec["description"] = body.get("description")
    flavor = _backend(ctx).create_flavor(ctx.is_admin, spec)
    return Reply(200, {"flavor": views.flavor_detail(ctx.cloud, flavor, _version(ctx))})


@service.route("/flavors/{id}", "DELETE", op="flavor.delete")
def delete_flavor(ctx: RequestContext) -> Reply:
    _backend(ctx).delete_flavor(ctx.is_admin, ctx.path["id"])
    return Reply(202)


# servers ------------------------------------------------------------------------------------
def _server(ctx: RequestContext, key: str = "id"):
    return _backend(ctx).get_server(ctx.path[key], ctx.project_id, ctx.is_admin)


def _detail(ctx: RequestContext, server) -> dict[str, Any]:
    return views.server_detail(ctx.cloud, server, _version(ctx), ctx.is_admin)


def _query(ctx: RequestContext) -> ServerQuery:
    query = ServerQuery()
    params = ctx.query
    name = params.get("name")
    if name:
        query.name = _regex(name)
    statuses = params.getlist("status")
    if statuses:
        wanted = frozenset(s.upper() for s in statuses)
        if ctx.at_least("2.38") and not wanted <= STATUSES:
            raise BadRequest("Invalid status value")
        query.statuses = wanted
    if params.get("flavor"):
        query.flavor = params["flavor"]
    if params.get("image"):
        query.image = params["image"].rstrip("/").rsplit("/", 1)[-1]
    if ctx.is_admin:
        query.project_id = params.get("project_id") or params.get("tenant_id") or None
    if params.getlist("uuid"):
        query.ids = frozenset(params.getlist("uuid"))
    query.deleted = (params.get("deleted") or "false").lower() in ("true", "1", "yes")
    if params.get("reservation_id"):
        query.reservation_id = params["reservation_id"]
    for wire, key, since in (("changes-since", "changes_since", None), ("changes-before", "changes_before", "2.66")):
        raw = params.get(wire)
        if raw is not None and (since is None or ctx.at_least(since)):
            try:
                setattr(query, key, parse_time(raw))
            except ValueError:
                raise _invalid(wire, f"Value: {raw}. {raw!r} is not a 'date-time'") from None
    if query.changes_since and query.changes_before and query.changes_since > query.changes_before:
        raise BadRequest("The value of changes-since must be less than or equal to changes-before.")
    for key in ("ip", "ip6"):
        if params.get(key):
            setattr(query, key, _regex(params[key]))
    if query.ip is not None or query.ip6 is not None:
        network = ctx.cloud.network
        query.addresses = lambda server: [a for ips in network.server_addresses(server.id).values() for a in ips]
    return query


def _regex(value: str) -> re.Pattern[str]:
    """Nova's regex filters (name, ip, ip6): a pattern, or the literal text when it does not compile."""
    try:
        return re.compile(value)
    except re.error:
        return re.compile(re.escape(value))


def _list_servers(ctx: RequestContext, detail: bool) -> Reply:
    """The backend cuts the page itself (it walks its index only as far as a page needs, from a marker that
    need not match the filters), so the collection only links the next page."""
    collection = SERVERS_DETAIL if detail else SERVERS
    requested = collection.limit(ctx)
    limit = MAX_LIMIT if requested is None else requested
    all_projects = ctx.all_projects()
    page = _backend(ctx).list_servers(ctx.project_id, all_projects, _query(ctx), limit, ctx.query.get("marker"))
    if detail:
        version, admin = _version(ctx), ctx.is_admin
        servers = [views.server_detail(ctx.cloud, s, version, admin) for s in page]
    else:
        servers = [views.server_brief(ctx.cloud, s) for s in page]
    return Reply(200, {"servers": servers, **collection.links(ctx, page, limit)})


@service.route("/servers", "GET", op="server.list")
def list_servers(ctx: RequestContext) -> Reply:
    return _list_servers(ctx, detail=False)


@service.route("/servers/detail", "GET", op="server.list")
def list_servers_detail(ctx: RequestContext) -> Reply:
    return _list_servers(ctx, detail=True)


def _networks(ctx: RequestContext, body: dict[str, Any]) -> str | list[NetworkRequest] | None:
    if "networks" not in body:
        if ctx.at_least("2.37"):
            raise _invalid("server", "'networks' is a required property")
        return None
    raw = body["networks"]
    if isinstance(raw, str):
        if raw in ("auto", "none") and ctx.at_least("2.37"):
            return raw
        raise _invalid("networks", f"Value: {raw}. {raw!r} is not of type 'array'")
    if not isinstance(raw, list):
        raise _invalid("networks", f"Value: {raw!r}. It must be a list, 'auto' or 'none'")
    requests = []
    for item in raw:
        if not isinstance(item, dict) or not (item.get("uuid") or item.get("port") or item.get("fixed_ip")):
            raise BadRequest("Bad networks format: network uuid is not in proper format")
        requests.append(NetworkRequest(uuid=item.get("uuid"), port=item.get("port"),
                                       fixed_ip=item.get("fixed_ip"), tag=item.get("tag")))
    return requests


# Nova's metadata schema: keys of 1 to 255 of these characters, string values of at most 255.
_METADATA_KEY = re.compile(r"^[a-zA-Z0-9-_:. ]{1,255}$")


def _metadata(value: Any, required: bool = False) -> dict[str, str]:
    """A server's metadata, refused (400, Nova's schema messages) where Nova's schema refuses it."""
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise _invalid("metadata", f"Value: {value}. {value!r} is not of type 'object'")
    unexpected = [k for k in value if not _METADATA_KEY.search(k)]
    if unexpected:
        listed = ", ".join(repr(k) for k in unexpected)
        verb = "was" if len(unexpected) == 1 else "were"
        raise _invalid("metadata", f"Value: {value}. Additional properties are not allowed ({listed} {verb} "
                                   "unexpected)")
    for key, item in value.items():
        if not isinstance(item, str):
            raise _invalid(key, f"Value: {item}. {item!r} is not of type 'string'")
        if len(item) > 255:
            raise _invalid(key, f"Value: {item}. {item!r} is too long")
    return dict(value)


def _name(value: Any) -> str:
    """Nova's server name: a string of 1 to 255 characters, not all blank."""
    if not isinstance(value, str):
        raise _invalid("name", f"Value: {value}. {value!r} is not of type 'string'")
    if len(value) > 255:
        raise _invalid("name", f"Value: {value}. {value!r} is too long")
    if not value.strip():
        raise _invalid("name", f"Value: {value}. {value!r} does not match the name format")
    return value


def _access_ip(body: dict[str, Any], wire: str, version: int) -> str:
    """accessIPv4/accessIPv6: an address of that family (Nova's `ipv4`/`ipv6` formats); null or "" clears."""
    value = body.get(wire)
    if value is None or value == "":
        return ""
    kind = f"ipv{version}"
    try:
        valid = isinstance(value, str) and ipaddress.ip_address(value).version == version
    except ValueError:
        valid = False
    if not valid:
        raise _invalid(wire, f"Value: {value}. {value!r} is not a {kind!r}")
    return normalize_ip(value)


def _disk_config(body: dict[str, Any]) -> str | None:
    """OS-DCF:diskConfig: AUTO or MANUAL (None when the request leaves it out)."""
    value = body.get("OS-DCF:diskConfig")
    if value is None:
        return None
    if value not in DISK_CONFIGS:
        raise _invalid("OS-DCF:diskConfig", f"Value: {value}. {value!r} is not one of ['AUTO', 'MANUAL']")
    return value


def _count(body: dict[str, Any], key: str) -> int:
    """min_count / max_count: Nova's positive_integer, an int or a string of digits, at least 1."""
    raw = body.get(key, 1)
    if isinstance(raw, str) and raw.isdigit():
        raw = int(raw)
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise _invalid(key, f"Value: {raw!r}. {raw!r} is not a positive integer")
    return raw


def _flag(value: Any) -> bool:
    """Nova's boolean parameter type: JSON booleans and their usual string spellings."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "t", "true", "on", "y", "yes")
    return bool(value)


_BDM_SOURCES, _BDM_DESTINATIONS = ("volume", "image", "snapshot", "blank"), ("local", "volume")


def _block_devices(body: dict[str, Any]) -> list[dict[str, Any]]:
    """block_device_mapping_v2 entries, refused (400) where Nova's schema refuses them."""
    raw = body.get("block_device_mapping_v2") or body.get("block_device_mapping") or []
    if not isinstance(raw, list):
        raise _invalid("block_device_mapping_v2", f"Value: {raw!r}. {raw!r} is not of type 'array'")
    for entry in raw:
        if not isinstance(entry, dict):
            raise _invalid("block_device_mapping_v2", f"Value: {entry!r}. {entry!r} is not of type 'object'")
        for key, allowed in (("source_type", _BDM_SOURCES), ("destination_type", _BDM_DESTINATIONS)):
            value = entry.get(key)
            if value is not None and value not in allowed:
                raise _invalid(f"block_device_mapping_v2/{key}",
                               f"Value: {value}. {value!r} is not one of {list(allowed)}")
    return raw


def _scheduler_group(body: dict[str, Any], request: dict[str, Any]) -> str | None:
    """The `group` scheduler hint (os:scheduler_hints beside the server, or OS-SCH-HNT:scheduler_hints)."""
    hints = request.get("os:scheduler_hints") or request.get("OS-SCH-HNT:scheduler_hints") \
        or body.get("OS-SCH-HNT:scheduler_hints") or {}
    if not isinstance(hints, dict):
        raise _invalid("os:scheduler_hints", f"Value: {hints!r}. {hints!r} is not of type 'object'")
    group = hints.get("group")
    if isinstance(group, list):
        group = group[0] if group else None
    return str(group) if group else None


@service.route("/servers", "POST", op="server.create")
def create_server(ctx: RequestContext) -> Reply:
    body = ctx.require_body("server")
    if "name" not in body:
        raise _invalid("server", "'name' is a required property")
    name = _name(body["name"])
    flavor_ref = body.get("flavorRef")
    if not isinstance(flavor_ref, (str, int)) or flavor_ref == "":
        raise _invalid("server", "'flavorRef' is a required property")
    min_count = _count(body, "min_count")
    max_count = _count(body, "max_count") if "max_count" in body else min_count  # Nova's default
    groups = body.get("security_groups") or []
    if not isinstance(groups, list) or not all(isinstance(g, dict) and g.get("name") for g in groups):
        raise _invalid("security_groups", "It must be a list of {'name': ...}")
    bdm = _block_devices(body)
    image_ref = body.get("imageRef")
    if image_ref is not None and not isinstance(image_ref, str):
        raise _invalid("imageRef", f"Value: {image_ref!r}. It must be a string")
    tags = (body.get("tags") or []) if ctx.at_least("2.52") else []
    admin_pass = body.get("adminPass")
    if admin_pass is not None and not isinstance(admin_pass, str):
        raise _invalid("adminPass", f"Value: {admin_pass}. {admin_pass!r} is not of type 'string'")
    key_name = body.get("key_name")
    if key_name is not None and not isinstance(key_name, str):
        raise _invalid("key_name", f"Value: {key_name}. {key_name!r} is not of type 'string'")
    request = ServerCreate(
        name=name, flavor_ref=str(flavor_ref), image_ref=image_ref, networks=_networks(ctx, body),
        security_groups=[str(g["name"]) for g in groups], metadata=_metadata(body.get("metadata")),
        key_name=key_name, availability_zone=body.get("availability_zone"),
        user_data=body.get("user_data"), access_ipv4=_access_ip(body, "accessIPv4", 4),
        access_ipv6=_access_ip(body, "accessIPv6", 6),
        description=body.get("description") if ctx.at_least("2.19") else None,
        tags=[str(t) for t in tags], config_drive=bool(body.get("config_drive")), block_device_mapping=bdm,
        admin_pass=admin_pass, disk_config=_disk_config(body) or "MANUAL", min_count=min_count, max_count=max_count,
        group=_scheduler_group(body, ctx.body),
    )
    caller = _caller(ctx)
    servers = _backend(ctx).create_servers(ctx.project_id, caller.user_id, request, caller.request_id)
    if _flag(body.get("return_reservation_id")):
        return Reply(202, {"reservation_id": servers[0].reservation_id})
    server = servers[0]  # a multiple create answers its first server, as Nova does
    location = ctx.url(f"/compute/v2.1/servers/{server.id}")
    return Reply(202, {"server": views.server_created(ctx.cloud, server, server.admin_pass)},
                 headers={"Location": location})


@service.route("/servers/{id}", "GET", op="server.show")
def show_server(ctx: RequestContext) -> Reply:
    return Reply(200, {"server": _detail(ctx, _server(ctx))})


@service.route("/servers/{id}", "PUT", op="server.update")
def update_server(ctx: RequestContext) -> Reply:
    """Nova answers an update with the show view cut to its basic fields until 2.75 (which shows them all)."""
    body = ctx.require_body("server")
    changes: dict[str, Any] = {}
    if "name" in body:
        changes["name"] = _name(body["name"])
    for wire, key, family in (("accessIPv4", "access_ipv4", 4), ("accessIPv6", "access_ipv6", 6)):
        if wire in body:
            changes[key] = _access_ip(body, wire, family)
    if "description" in body and ctx.at_least("2.19"):
        changes["description"] = body["description"]
    if _disk_config(body) is not None:
        changes["disk_config"] = body["OS-DCF:diskConfig"]
    if "metadata" in body:  # fakecloud leniency: Nova's update schema has no metadata
        changes["metadata"] = _metadata(body["metadata"], required=True)
    server = _backend(ctx).update_server(_server(ctx), changes)
    return Reply(200, {"server": views.server_updated(ctx.cloud, server, _version(ctx), ctx.is_admin)})


@service.route("/servers/{id}", "DELETE", op="server.delete")
def delete_server(ctx: RequestContext) -> Reply:
    _backend(ctx).delete_server(_server(ctx), _caller(ctx))
    return Reply(204)


@service.route("/servers/{id}/metadata", "GET", op="server.metadata.show")
def show_metadata(ctx: RequestContext) -> Reply:
    return Reply(200, {"metadata": dict(_server(ctx).metadata)})


@service.route("/servers/{id}/metadata", "POST", "PUT", op="server.metadata.update")
def set_metadata(ctx: RequestContext) -> Reply:
    if not isinstance(ctx.body, dict) or "metadata" not in ctx.body:
        raise BadRequest("'metadata' is a required property")
    metadata = _metadata(ctx.body["metadata"], required=True)
    result = _backend(ctx).set_metadata(_server(ctx), metadata, replace_all=ctx.request.method == "PUT")
    return Reply(200, {"metadata": dict(result)})


@service.route("/servers/{id}/metadata/{key}", "GET", op="server.metadata.show")
def show_metadata_item(ctx: RequestContext) -> Reply:
    key = ctx.path["key"]
    return Reply(200, {"meta": {key: _backend(ctx).metadata_item(_server(ctx), key)}})


@service.route("/servers/{id}/metadata/{key}", "PUT", op="server.metadata.update")
def set_metadata_item(ctx: RequestContext) -> Reply:
    """Nova's PUT of one item: `meta` holds exactly that key (400 when the body and URI disagree)."""
    if not isinstance(ctx.body, dict) or "meta" not in ctx.body:
        raise _invalid("meta", "'meta' is a required property")
    meta = _metadata(ctx.body["meta"], required=True)
    if len(meta) > 1:
        raise BadRequest("Request body contains too many items")
    key = ctx.path["key"]
    if key not in meta:
        raise BadRequest("Request body and URI mismatch")
    _backend(ctx).set_metadata(_server(ctx), meta, replace_all=False)
    return Reply(200, {"meta": meta})


@service.route("/servers/{id}/metadata/{key}", "DELETE", op="server.metadata.delete")
def delete_metadata_item(ctx: RequestContext) -> Reply:
    _backend(ctx).delete_metadata_item(_server(ctx), ctx.path["key"])
    return Reply(204)


# tags (2.26) --------------------------------------------------------------------------------
_NO_ROUTE = "The resource could not be found."


def _tagged_server(ctx: RequestContext) -> Server:
    """Server tags exist from 2.26; below it Nova has no such route (404)."""
    if not ctx.at_least("2.26"):
        raise NotFound(_NO_ROUTE)
    return _server(ctx)


def _tag(value: Any) -> str:
    """Nova's tag: 1 to 60 characters, neither '/' nor ','."""
    if not isinstance(value, str) or not 1 <= len(value) <= 60 or "/" in value or "," in value:
        raise _invalid("tags", f"Value: {value!r}. {value!r} does not match the tag format (1 to 60 characters, "
                               "no '/' or ',')")
    return value


@service.route("/servers/{id}/tags", "GET", op="server.tags.list")
def list_tags(ctx: RequestContext) -> Reply:
    return Reply(200, {"tags": list(_tagged_server(ctx).tags)})


@service.route("/servers/{id}/tags", "PUT", op="server.tags.update")
def replace_tags(ctx: RequestContext) -> Reply:
    server = _tagged_server(ctx)
    if not isinstance(ctx.body, dict) or not isinstance(ctx.body.get("tags"), list):
        raise _invalid("tags", "'tags' is a required property")
    tags = _backend(ctx).replace_tags(server, [_tag(t) for t in ctx.body["tags"]])
    return Reply(200, {"tags": list(tags)})


@service.route("/servers/{id}/tags", "DELETE", op="server.tags.delete")
def delete_tags(ctx: RequestContext) -> Reply:
    _backend(ctx).delete_tags(_tagged_server(ctx))
    return Reply(204)


@service.route("/servers/{id}/tags/{tag}", "GET", op="server.tags.show")
def check_tag(ctx: RequestContext) -> Reply:
    tag = ctx.path["tag"]
    if tag not in _tagged_server(ctx).tags:
        raise NotFound(f"Tag {tag} could not be found.")
    return Reply(204)


@service.route("/servers/{id}/tags/{tag}", "PUT", op="server.tags.update")
def add_tag(ctx: RequestContext) -> Reply:
    """201 with the tag's Location when it is new, 204 when the server already had it."""
    server = _tagged_server(ctx)
    tag = _tag(ctx.path["tag"])
    if not _backend(ctx).add_tag(server, tag):
        return Reply(204)
    return Reply(201, headers={"Location": ctx.url(f"/compute/v2.1/servers/{server.id}/tags/{tag}")})


@service.route("/servers/{id}/tags/{tag}", "DELETE", op="server.tags.delete")
def delete_tag(ctx: RequestContext) -> Reply:
    _backend(ctx).delete_tag(_tagged_server(ctx), ctx.path["tag"])
    return Reply(204)


# os-server-password -------------------------------------------------------------------------
@service.route("/servers/{id}/os-server-password", "GET", op="server.password.show")
def show_password(ctx: RequestContext) -> Reply:
    """What the guest posted to the metadata service (encrypted with its key pair); "" until it does."""
    return Reply(200, {"password": _server(ctx).password})


@service.route("/servers/{id}/os-server-password", "DELETE", op="server.password.clear")
def clear_password(ctx: RequestContext) -> Reply:
    _backend(ctx).clear_password(_server(ctx))
    return Reply(204)


# actions ------------------------------------------------------------------------------------
def _action_arg(value: Any, key: str) -> Any:
    if not isinstance(value, dict) or key not in value:
        raise _invalid(key, f"'{key}' is a required property")
    return value[key]


def _resize(backend: ComputeBackend, server: Server, value: Any, caller: Caller) -> None:
    backend.resize(server, _action_arg(value, "flavorRef"), caller, _disk_config(value))


def _reboot(backend: ComputeBackend, server: Server, value: Any, caller: Caller) -> None:
    backend.reboot(server, str(_action_arg(value, "type")).upper(), caller)


def _rebuild(backend: ComputeBackend, server: Server, value: Any, caller: Caller, ctx: RequestContext) -> Reply:
    """Nova's rebuild answers the server (the update view) with its new admin password."""
    image_ref = _action_arg(value, "imageRef")
    if not isinstance(image_ref, str) or not image_ref:
        raise _invalid("imageRef", f"Value: {image_ref!r}. It must be a non-empty string")
    admin_pass = value.get("adminPass")
    if admin_pass is not None and not isinstance(admin_pass, str):
        raise _invalid("adminPass", f"Value: {admin_pass}. {admin_pass!r} is not of type 'string'")
    rebuild = ServerRebuild(
        image_ref=image_ref, admin_pass=admin_pass, name=_name(value["name"]) if "name" in value else None,
        metadata=_metadata(value["metadata"], required=True) if "metadata" in value else None,
        access_ipv4=_access_ip(value, "accessIPv4", 4) if "accessIPv4" in value else None,
        access_ipv6=_access_ip(value, "accessIPv6", 6) if "accessIPv6" in value else None,
        description=value.get("description") if ctx.at_least("2.19") and "description" in value else None,
        disk_config=_disk_config(value),
        key_name=(value["key_name"] or "") if ctx.at_least("2.54") and "key_name" in value else None,
        user_data=(value["user_data"] or "") if ctx.at_least("2.57") and "user_data" in value else None,
    )
    password = backend.rebuild(server, rebuild, caller)
    view = views.server_rebuilt(ctx.cloud, server, _version(ctx), ctx.is_admin)
    return Reply(202, {"server": {**view, "adminPass": password}})


def _lock(backend: ComputeBackend, server: Server, value: Any, caller: Caller, ctx: RequestContext) -> Reply:
    """lock: from 2.73 with an optional `locked_reason` of at most 255 characters."""
    reason = None
    if ctx.at_least("2.73") and isinstance(value, dict) and value.get("locked_reason") is not None:
        reason = value["locked_reason"]
        if not isinstance(reason, str) or len(reason) > 255:
            raise _invalid("locked_reason", f"Value: {reason!r}. It must be a string of at most 255 characters")
    backend.lock(server, caller, reason)
    return Reply(202)


def _console_output(backend: ComputeBackend, server: Server, value: Any, caller: Caller,
                    ctx: RequestContext) -> Reply:
    """The server's console: what its guest printed (fakecloud's guests write their boot and failures here)."""
    length = value.get("length") if isinstance(value, dict) else None
    if length is not None and (isinstance(length, bool) or not isinstance(length, (int, str))
                               or not str(length).lstrip("-").isdigit() or int(length) < -1):
        raise _invalid("length", f"Value: {length!r}. It must be an integer of at least -1")
    if server.vm_state not in ("active", "stopped", "resized"):
        raise Conflict(f"Cannot 'os-getConsoleOutput' instance {server.id} while it is in vm_state "
                       f"{server.vm_state}")
    output = "".join(line + "\n" for line in backend.console(server))
    if length is not None and int(length) >= 0:
        # Nova's tail: the last `length` pieces of the log split at newlines (the final one empty)
        output = "\n".join(output.split("\n")[-int(length):]) if int(length) else ""
    return Reply(200, {"output": output})


ACTIONS = {
    "resize": _resize,
    "confirmResize": lambda backend, server, value, caller: backend.confirm_resize(server, caller),
    "revertResize": lambda backend, server, value, caller: backend.revert_resize(server, caller),
    "reboot": _reboot,
    "os-stop": lambda backend, server, value, caller: backend.stop(server, caller),
    "os-start": lambda backend, server, value, caller: backend.start(server, caller),
    "addSecurityGroup": lambda backend, server, value, caller: backend.add_security_group(
        server, str(_action_arg(value, "name"))),
    "removeSecurityGroup": lambda backend, server, value, caller: backend.remove_security_group(
        server, str(_action_arg(value, "name"))),
    "unlock": lambda backend, server, value, caller: backend.unlock(server, caller),
    "forceDelete": lambda backend, server, value, caller: backend.force_delete(server, caller),
    "restore": lambda backend, server, value, caller: backend.restore(server, caller),
}
# Nova answers 202 to every action here but confirmResize, which keeps its historical 204.
ACTION_STATUS = {"confirmResize": 204}
# Actions whose answer has a body: they also take the request context, and return their reply.
ANSWERING_ACTIONS = {"rebuild": _rebuild, "os-getConsoleOutput": _console_output, "lock": _lock}


@service.route("/servers/{id}/action", "POST", op="server.action")
def server_action(ctx: RequestContext) -> Reply:
    name, handler, args = action_of(ctx.body, {**ACTIONS, **ANSWERING_ACTIONS}, "Malformed request body",
                                    ignore_extra_keys=True)
    if name in ANSWERING_ACTIONS:
        return ANSWERING_ACTIONS[name](_backend(ctx), _server(ctx), args, _caller(ctx), ctx)
    handler(_backend(ctx), _server(ctx), args, _caller(ctx))
    return Reply(ACTION_STATUS.get(name, 202))


# volume attachments -------------------------------------------------------------------------
@service.route("/servers/{id}/os-volume_attachments", "GET", op="server.volume_attachment.list")
def list_attachments(ctx: RequestContext) -> Reply:
    server = _server(ctx)
    attachments = _backend(ctx).attachments(server)
    version = _version(ctx)
    return Reply(200, {"volumeAttachments": [views.attachment_view(server, a, version) for a in attachments]})


@service.route("/servers/{id}/os-volume_attachments", "POST", op="server.volume_attachment.create")
def attach_volume(ctx: RequestContext) -> Reply:
    body = ctx.require_body("volumeAttachment")
    volume_id = body.get("volumeId")
    if not isinstance(volume_id, str) or not volume_id:
        raise _invalid("volumeAttachment", "'volumeId' is a required property")
    device = body.get("device")
    if device is not None and not isinstance(device, str):
        raise _invalid("device", f"Value: {device!r}. It must be a string or null")
    tag = body.get("tag") if ctx.at_least("2.49") else None
    delete_on_termination = bool(body.get("delete_on_termination")) if ctx.at_least("2.79") else False
    server = _server(ctx)
    attachment = _backend(ctx).attach_volume(server, volume_id, device or None, tag, delete_on_termination,
                                             _caller(ctx))
    view = views.attachment_view(server, attachment, _version(ctx), created=True)
    return Reply(200, {"volumeAttachment": view})


@service.route("/servers/{id}/os-volume_attachments/{volume_id}", "GET", op="server.volume_attachment.show")
def show_attachment(ctx: RequestContext) -> Reply:
    server = _server(ctx)
    attachment = _backend(ctx).attachment(server, ctx.path["volume_id"])
    return Reply(200, {"volumeAttachment": views.attachment_view(server, attachment, _version(ctx))})


@service.route("/servers/{id}/os-volume_attachments/{volume_id}", "DELETE", op="server.volume_attachment.delete")
def detach_volume(ctx: RequestContext) -> Reply:
    _backend(ctx).detach_volume(_server(ctx), ctx.path["volume_id"], _caller(ctx))
    return Reply(202)


# addresses and instance actions -------------------------------------------------------------
@service.route("/servers/{id}/ips", "GET", op="server.ips")
def list_ips(ctx: RequestContext) -> Reply:
    return Reply(200, {"addresses": views.addresses(ctx.cloud, _server(ctx))})


@service.route("/servers/{id}/ips/{network}", "GET", op="server.ips")
def show_ips(ctx: RequestContext) -> Reply:
    addresses = views.addresses(ctx.cloud, _server(ctx))
    label = ctx.path["network"]
    if label not in addresses:
        raise NotFound("Instance is not a member of specified network")
    return Reply(200, {label: addresses[label]})


@service.route("/servers/{id}/os-instance-actions", "GET", op="server.actions")
def list_instance_actions(ctx: RequestContext) -> Reply:
    """Newest first. From 2.21 a deleted server's history is still shown (fakecloud keeps it after purge)."""
    actions = _backend(ctx).list_actions(ctx.path["id"], ctx.project_id, ctx.is_admin, ctx.at_least("2.21"))
    return Reply(200, {"instanceActions": [views.instance_action(a, _version(ctx)) for a in actions]})


@service.route("/servers/{id}/os-instance-actions/{request_id}", "GET", op="server.actions")
def show_instance_action(ctx: RequestContext) -> Reply:
    action = _backend(ctx).get_action(ctx.path["id"], ctx.path["request_id"], ctx.project_id, ctx.is_admin,
                                      ctx.at_least("2.21"))
    view = views.instance_action(action, _version(ctx), events=True, is_admin=ctx.is_admin)
    return Reply(200, {"instanceAction": view})


# ports and security groups as Nova shows them ---------------------------------------------
@service.route("/servers/{id}/os-interface", "GET", op="server.interface.list")
def list_interfaces(ctx: RequestContext) -> Reply:
    server = _server(ctx)
    ports = ctx.cloud.network.ports_of_device(server.id)
    return Reply(200, {"interfaceAttachments": [views.interface_view(p, _version(ctx)) for p in ports]})


@service.route("/servers/{id}/os-security-groups", "GET", op="server.security_groups")
def server_security_groups(ctx: RequestContext) -> Reply:
    server = _server(ctx)
    network = ctx.cloud.network
    groups = []
    for ref in server.security_groups:
        try:
            groups.append(views.security_group_view(network.find_security_group(server.project_id, ref["id"])))
        except NotFound:
            continue  # deleted in Neutron since: Nova shows what Neutron has
    return Reply(200, {"security_groups": groups})


# server groups ------------------------------------------------------------------------------
def _group_view(ctx: RequestContext, group: Any) -> dict[str, Any]:
    return views.server_group_view(group, _version(ctx))


@service.route("/os-server-groups", "POST", op="server_group.create")
def create_server_group(ctx: RequestContext) -> Reply:
    """One policy: `policies` (a list of one) before 2.64, `policy` and `rules` from it."""
    body = ctx.require_body("server_group")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise _invalid("name", f"Value: {name!r}. 'name' must be a string of 1 to 255 characters")
    allowed = GROUP_POLICIES if ctx.at_least("2.15") else GROUP_POLICIES[:2]
    rules: dict[str, Any] = {}
    if ctx.at_least("2.64"):
        policy = body.get("policy")
        if policy not in allowed:
            raise _invalid("policy", f"Value: {policy!r}. {policy!r} is not one of {list(allowed)}")
        rules = body.get("rules") or {}
        if not isinstance(rules, dict) or set(rules) - {"max_server_per_host"}:
            raise _invalid("rules", f"Value: {rules!r}. Only 'max_server_per_host' is allowed")
        if rules and policy != "anti-affinity":
            raise BadRequest("Only anti-affinity policy supports rules.")
        limit = rules.get("max_server_per_host")
        if limit is not None and (isinstance(limit, bool) or not str(limit).isdigit() or int(limit) < 1):
            raise _invalid("rules/max_server_per_host", f"Value: {limit!r}. It must be a positive integer")
    else:
        policies = body.get("policies")
        if not isinstance(policies, list) or len(policies) != 1 or policies[0] not in allowed:
            raise _invalid("policies", f"Value: {policies!r}. It must be a list of one of {list(allowed)}")
        policy = policies[0]
    group = _backend(ctx).create_server_group(ctx.project_id, ctx.token.user_id, name, policy, rules)
    return Reply(200, {"server_group": _group_view(ctx, group)})


@service.route("/os-server-groups", "GET", op="server_group.list")
def list_server_groups(ctx: RequestContext) -> Reply:
    groups = _backend(ctx).list_server_groups(ctx.project_id, ctx.all_projects())
    offset = _int_param(ctx, "offset")
    limit = _parse_limit(ctx.query["limit"]) if ctx.query.get("limit") is not None else MAX_LIMIT
    page = groups[offset:offset + limit]
    return Reply(200, {"server_groups": [_group_view(ctx, g) for g in page]})


@service.route("/os-server-groups/{id}", "GET", op="server_group.show")
def show_server_group(ctx: RequestContext) -> Reply:
    group = _backend(ctx).get_server_group(ctx.path["id"], ctx.project_id, ctx.is_admin)
    return Reply(200, {"server_group": _group_view(ctx, group)})


@service.route("/os-server-groups/{id}", "DELETE", op="server_group.delete")
def delete_server_group(ctx: RequestContext) -> Reply:
    _backend(ctx).delete_server_group(ctx.path["id"], ctx.project_id, ctx.is_admin)
    return Reply(204)


# os-volumes: Nova's proxy to Cinder (deprecated; gone from 2.36) ----------------------------
def _volume_proxy(ctx: RequestContext) -> Any:
    if ctx.at_least("2.36"):
        raise NotFound(_NO_ROUTE)
    return ctx.cloud.volume


@service.route("/os-volumes", "POST", op="volume.create")
def create_volume(ctx: RequestContext) -> Reply:
    cinder = _volume_proxy(ctx)
    body = ctx.require_body("volume")
    size = body.get("size")
    if isinstance(size, str) and size.isdigit():
        size = int(size)
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise _invalid("size", f"Value: {size!r}. {size!r} is not a positive integer")
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise _invalid("metadata", f"Value: {metadata!r}. {metadata!r} is not of type 'object'")
    volume = cinder.create_volume(
        ctx.project_id, ctx.token.user_id, size, name=body.get("display_name"),
        description=body.get("display_description"), volume_type=body.get("volume_type"),
        availability_zone=body.get("availability_zone"), metadata={str(k): str(v) for k, v in metadata.items()},
        snapshot_id=body.get("snapshot_id"))
    return Reply(200, {"volume": views.proxied_volume(volume)})


def _list_proxied_volumes(ctx: RequestContext) -> Reply:
    volumes = _volume_proxy(ctx).list_volumes(ctx.project_id)
    offset = _int_param(ctx, "offset")
    limit = _parse_limit(ctx.query["limit"]) if ctx.query.get("limit") is not None else MAX_LIMIT
    return Reply(200, {"volumes": [views.proxied_volume(v) for v in volumes[offset:offset + limit]]})


@service.route("/os-volumes", "GET", op="volume.list")
def list_volumes(ctx: RequestContext) -> Reply:
    return _list_proxied_volumes(ctx)


@service.route("/os-volumes/detail", "GET", op="volume.list")
def list_volumes_detail(ctx: RequestContext) -> Reply:
    return _list_proxied_volumes(ctx)


@service.route("/os-volumes/", "GET", "DELETE", op="volume.show")
def volume_without_id(ctx: RequestContext) -> Reply:
    """A volume URL with an empty id: Nova has no such route (404); without this Starlette would redirect a GET
    to the list."""
    raise NotFound(_NO_ROUTE)


@service.route("/os-volumes/{id}", "GET", op="volume.show")
def show_volume(ctx: RequestContext) -> Reply:
    volume = _volume_proxy(ctx).get_volume(ctx.path["id"], ctx.project_id)
    return Reply(200, {"volume": views.proxied_volume(volume)})


@service.route("/os-volumes/{id}", "DELETE", op="volume.delete")
def delete_volume(ctx: RequestContext) -> Reply:
    _volume_proxy(ctx).delete_volume(ctx.path["id"], ctx.project_id)
    return Reply(202)


# zones, limits, quotas, keypairs ----------------------------------------------------------
@service.route("/os-availability-zone", "GET", op="availability_zone.list")
def list_zones(ctx: RequestContext) -> Reply:
    return Reply(200, views.availability_zones(detail=False))


@service.route("/os-availability-zone/detail", "GET", op="availability_zone.list")
def list_zones_detail(ctx: RequestContext) -> Reply:
    if not ctx.is_admin:
        raise Forbidden("Policy doesn't allow os_compute_api:os-availability-zone:detail to be performed.")
    return Reply(200, views.availability_zones(detail=True))


# the one hypervisor ------------------------------------------------------------------------
@service.route("/os-hypervisors", "GET", op="hypervisor.list")
def list_hypervisors(ctx: RequestContext) -> Reply:
    """fakecloud's one compute host (admin only, as Nova's policy); ids are uuids from 2.53."""
    return Reply(200, {"hypervisors": [views.hypervisor(ctx.cloud, _version(ctx), _admin(ctx, "list"))]})


@service.route("/os-hypervisors/detail", "GET", op="hypervisor.list")
def list_hypervisors_detail(ctx: RequestContext) -> Reply:
    return Reply(200, {"hypervisors": [views.hypervisor(ctx.cloud, _version(ctx), _admin(ctx, "list-detail"),
                                                        detail=True)]})


@service.route("/os-hypervisors/{id}", "GET", op="hypervisor.show")
def show_hypervisor(ctx: RequestContext) -> Reply:
    view = views.hypervisor(ctx.cloud, _version(ctx), _admin(ctx, "show"), detail=True)
    if str(view["id"]) != ctx.path["id"]:
        raise NotFound(f"Hypervisor with ID {ctx.path['id']} could not be found.")
    return Reply(200, {"hypervisor": view})


def _admin(ctx: RequestContext, rule: str) -> bool:
    if not ctx.is_admin:
        raise Forbidden(f"Policy doesn't allow os_compute_api:os-hypervisors:{rule} to be performed.")
    return True


def _target_project(ctx: RequestContext, project_id: str | None, policy: str) -> str:
    if not project_id or project_id == ctx.project_id:
        return ctx.project_id
    if not ctx.is_admin:
        raise Forbidden(f"Policy doesn't allow {policy} to be performed.")
    return project_id


@service.route("/limits", "GET", op="limits.show")
def show_limits(ctx: RequestContext) -> Reply:
    project_id = ctx.query.get("tenant_id")
    project_id = project_id if project_id and ctx.is_admin else ctx.project_id
    backend = _backend(ctx)
    return Reply(200, views.limits_view(backend.quota_limits(project_id), backend.usage(project_id), _version(ctx)))


def _quota_set(ctx: RequestContext, detail: bool) -> Reply:
    project_id = _target_project(ctx, ctx.path["project_id"], "os_compute_api:os-quota-sets:show")
    backend = _backend(ctx)
    usage = backend.usage(project_id) if detail else None
    return Reply(200, views.quota_set_view(project_id, backend.quota_limits(project_id), usage, _version(ctx)))


@service.route("/os-quota-sets/{project_id}", "GET", op="quota_set.show")
def show_quota_set(ctx: RequestContext) -> Reply:
    return _quota_set(ctx, detail=False)


@service.route("/os-quota-sets/{project_id}/detail", "GET", op="quota_set.show")
def show_quota_set_detail(ctx: RequestContext) -> Reply:
    return _quota_set(ctx, detail=True)


@service.route("/os-quota-sets/{project_id}/defaults", "GET", op="quota_set.defaults")
def show_quota_defaults(ctx: RequestContext) -> Reply:
    limits = ctx.cloud.config.quotas.model_dump()
    return Reply(200, views.quota_set_view(ctx.path["project_id"], limits, None, _version(ctx)))


@service.route("/os-quota-sets/{project_id}", "PUT", op="quota_set.update")
def update_quota_set(ctx: RequestContext) -> Reply:
    body = ctx.require_body("quota_set")
    values: dict[str, int] = {}
    for key in ("instances", "cores", "ram"):
        if key in body:
            if not isinstance(body[key], int) or body[key] < -1:
                raise _invalid(key, f"Value: {body[key]!r}. It must be an integer of at least -1")
            values[key] = body[key]
    project_id = ctx.path["project_id"]
    backend = _backend(ctx)
    backend.update_quotas(ctx.is_admin, project_id, values)
    view = views.quota_set_view(project_id, backend.quota_limits(project_id), None, _version(ctx))
    view["quota_set"].pop("id")
    return Reply(200, view)


@service.route("/os-keypairs", "GET", op="keypair.list")
def list_keypairs(ctx: RequestContext) -> Reply:
    keypairs = _backend(ctx).list_keypairs(ctx.token.user_id)
    return Reply(200, {"keypairs": [{"keypair": views.keypair_view(k, _version(ctx))} for k in keypairs]})


@service.route("/os-keypairs", "POST", op="keypair.create")
def create_keypair(ctx: RequestContext) -> Reply:
    body = ctx.require_body("keypair")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise _invalid("name", f"Value: {name!r}. A name of 1 to 255 characters is required")
    key_type = body.get("type", "ssh") if ctx.at_least("2.2") else "ssh"
    keypair, private_key = _backend(ctx).create_keypair(ctx.token.user_id, name, body.get("public_key"), key_type)
    status = 201 if ctx.at_least("2.2") else 200
    return Reply(status, {"keypair": views.keypair_view(keypair, _version(ctx), private_key, created=True)})


@service.route("/os-keypairs/{name}", "GET", op="keypair.show")
def show_keypair(ctx: RequestContext) -> Reply:
    keypair = _backend(ctx).get_keypair(ctx.token.user_id, ctx.path["name"])
    return Reply(200, {"keypair": views.keypair_view(keypair, _version(ctx), detail=True)})


@service.route("/os-keypairs/{name}", "DELETE", op="keypair.delete")
def delete_keypair(ctx: RequestContext) -> Reply:
    _backend(ctx).delete_keypair(ctx.token.user_id, ctx.path["name"])
    return Reply(204 if ctx.at_least("2.2") else 202)
