"""Nova v2.1 routes: what openstacksdk, the OpenStack CLI and Heat send to /compute/v2.1.

Each handler parses the request (shapes and microversion rules), calls one backend method and
renders a view. Meaning (does the flavor exist, is the state right, is there quota) is the backend's.
"""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING, Any

from starlette.routing import BaseRoute

from fakecloud.compute import views
from fakecloud.compute.backend import (
    MAX_LIMIT,
    STATUSES,
    Caller,
    ComputeBackend,
    NetworkRequest,
    Server,
    ServerCreate,
    ServerQuery,
    ServerRebuild,
)
from fakecloud.errors import BadRequest, Conflict, Forbidden, NotFound
from fakecloud.framework import (
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
    from fakecloud.state import Cloud


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
    return Caller(ctx.request_id, ctx.token.user_id)


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
        try:
            query.name = re.compile(name)
        except re.error:
            query.name = re.compile(re.escape(name))
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
    return query


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
    return value


@service.route("/servers", "POST", op="server.create")
def create_server(ctx: RequestContext) -> Reply:
    body = ctx.require_body("server")
    if "name" not in body:
        raise _invalid("server", "'name' is a required property")
    name = _name(body["name"])
    flavor_ref = body.get("flavorRef")
    if not isinstance(flavor_ref, (str, int)) or flavor_ref == "":
        raise _invalid("server", "'flavorRef' is a required property")
    for key in ("min_count", "max_count"):
        count = body.get(key, 1)
        if not isinstance(count, int) or count < 1:
            raise _invalid(key, f"Value: {count!r}. It must be a positive integer")
        if count > 1:
            raise BadRequest(f"fakecloud boots one server per request ({key}={count}).")
    groups = body.get("security_groups") or []
    if not isinstance(groups, list) or not all(isinstance(g, dict) and g.get("name") for g in groups):
        raise _invalid("security_groups", "It must be a list of {'name': ...}")
    bdm = body.get("block_device_mapping_v2") or body.get("block_device_mapping") or []
    if not isinstance(bdm, list):
        raise _invalid("block_device_mapping_v2", "It must be a list")
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
        admin_pass=admin_pass,
    )
    caller = _caller(ctx)
    server, admin_pass = _backend(ctx).create_server(ctx.project_id, caller.user_id, request, caller.request_id)
    location = ctx.url(f"/compute/v2.1/servers/{server.id}")
    return Reply(202, {"server": views.server_created(ctx.cloud, server, admin_pass)}, headers={"Location": location})


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


@service.route("/servers/{id}/metadata/{key}", "DELETE", op="server.metadata.delete")
def delete_metadata_item(ctx: RequestContext) -> Reply:
    _backend(ctx).delete_metadata_item(_server(ctx), ctx.path["key"])
    return Reply(204)


# actions ------------------------------------------------------------------------------------
def _action_arg(value: Any, key: str) -> Any:
    if not isinstance(value, dict) or key not in value:
        raise _invalid(key, f"'{key}' is a required property")
    return value[key]


def _resize(backend: ComputeBackend, server: Server, value: Any, caller: Caller) -> None:
    backend.resize(server, _action_arg(value, "flavorRef"), caller)


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
    )
    password = backend.rebuild(server, rebuild, caller)
    view = views.server_updated(ctx.cloud, server, _version(ctx), ctx.is_admin)
    return Reply(202, {"server": {**view, "adminPass": password}})


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
    lines = ctx.cloud.guests.console(server.id)
    if length is not None and int(length) >= 0:
        lines = lines[-int(length):] if int(length) else []
    return Reply(200, {"output": "".join(line + "\n" for line in lines)})


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
}
# Nova answers 202 to every action here but confirmResize, which keeps its historical 204.
ACTION_STATUS = {"confirmResize": 204}
# Actions whose answer has a body: they also take the request context, and return their reply.
ANSWERING_ACTIONS = {"rebuild": _rebuild, "os-getConsoleOutput": _console_output}


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


# zones, limits, quotas, keypairs ----------------------------------------------------------
@service.route("/os-availability-zone", "GET", op="availability_zone.list")
def list_zones(ctx: RequestContext) -> Reply:
    return Reply(200, views.availability_zones(detail=False))


@service.route("/os-availability-zone/detail", "GET", op="availability_zone.list")
def list_zones_detail(ctx: RequestContext) -> Reply:
    if not ctx.is_admin:
        raise Forbidden("Policy doesn't allow os_compute_api:os-availability-zone:detail to be performed.")
    return Reply(200, views.availability_zones(detail=True))


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
    return Reply(200, {"keypairs": [{"keypair": views.keypair_view(k)} for k in keypairs]})


@service.route("/os-keypairs", "POST", op="keypair.create")
def create_keypair(ctx: RequestContext) -> Reply:
    body = ctx.require_body("keypair")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise _invalid("name", f"Value: {name!r}. A name of 1 to 255 characters is required")
    key_type = body.get("type", "ssh") if ctx.at_least("2.2") else "ssh"
    keypair, private_key = _backend(ctx).create_keypair(ctx.token.user_id, name, body.get("public_key"), key_type)
    status = 201 if ctx.at_least("2.2") else 200
    return Reply(status, {"keypair": views.keypair_view(keypair, private_key)})


@service.route("/os-keypairs/{name}", "GET", op="keypair.show")
def show_keypair(ctx: RequestContext) -> Reply:
    keypair = _backend(ctx).get_keypair(ctx.token.user_id, ctx.path["name"])
    return Reply(200, {"keypair": views.keypair_view(keypair, detail=True)})


@service.route("/os-keypairs/{name}", "DELETE", op="keypair.delete")
def delete_keypair(ctx: RequestContext) -> Reply:
    _backend(ctx).delete_keypair(ctx.token.user_id, ctx.path["name"])
    return Reply(204 if ctx.at_least("2.2") else 202)
