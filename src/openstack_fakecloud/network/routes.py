"""Neutron v2.0 routes: what openstacksdk, the OpenStack CLI and Heat call.

Each handler takes the body out of the request, has `requests` parse it into a typed request (Neutron's
attribute checks), calls one backend method and renders a view. Meaning (does the group exist, is the
address free, is there quota) is the backend's.

openstacksdk does no discovery for the network service: it appends /v2.0 to the catalog URL. The
versions document and the resource list are served anyway, for clients that do look.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from openstack_fakecloud.errors import BadRequest, NotFound
from openstack_fakecloud.framework import Reply, RequestContext, Service
from openstack_fakecloud.network import requests, tags, views
from openstack_fakecloud.network.backend import NetworkBackend
from openstack_fakecloud.network.quotas import require_admin
from openstack_fakecloud.network.records import Router, SecurityGroup, SecurityGroupRule

service = Service("network", "/network", error_style="neutron")

V2 = "/v2.0"

# (alias, name, description): what `GET /v2.0/extensions` advertises; clients probe these.
EXTENSIONS: list[tuple[str, str, str]] = [
    ("security-group", "security-group", "The security groups extension."),
    ("stateful-security-group", "Stateful security group", "Indicates if the security group is stateful."),
    ("standard-attr-description", "standard-attr-description", "Extension to add descriptions to resources."),
    ("standard-attr-revisions", "Resource revision numbers", "Exposes revision_number on resources."),
    ("standard-attr-timestamp", "Resource timestamps", "Adds created_at and updated_at fields."),
    ("standard-attr-tag", "Tag support for resources with standard attribute", "Enables tagging of resources."),
    ("quotas", "Quota management support", "Expose functions for quotas management per project."),
    ("quota_details", "Quota details management support", "Expose functions for quotas usage statistics."),
    ("project-id", "project_id field enabled", "Extension that indicates that project_id field is enabled."),
    ("port-security", "Port Security", "Provides port security."),
    ("external-net", "Neutron external network", "Adds external network attribute to network resource."),
    ("binding", "Port Binding", "Expose port bindings of a virtual port to external application."),
    ("network-mtu", "Network MTU", "Provides MTU attribute for a network resource."),
    ("sorting", "Sorting support", "Enables sorting of resources."),
    ("pagination", "Pagination support", "Enables pagination of resources."),
    ("filter-validation", "Filter parameters validation", "Provides validation on filtering parameters."),
    ("router", "Neutron L3 Router", "Router abstraction for basic L3 forwarding between L2 Neutron networks and "
     "access to external networks via a NAT gateway."),
    ("ext-gw-mode", "Neutron L3 Configurable external gateway mode", "Extension of the router abstraction for "
     "specifying whether SNAT should occur on the external gateway"),
    ("extraroute", "Neutron Extra Route", "Extra routes configuration for L3 router"),
]

RESOURCES = ["network", "subnet", "port", "security_group", "security_group_rule", "quota", "extension", "router",
             "floatingip", "subnetpool"]


def _net(ctx: RequestContext) -> NetworkBackend:
    return ctx.cloud.network


def _body(ctx: RequestContext, key: str) -> dict[str, Any]:
    """The resource's object in the body (`{"port": {...}}`), or Neutron's 400."""
    if not isinstance(ctx.body, dict) or not isinstance(ctx.body.get(key), dict):
        raise BadRequest("Resource body required", error_type="HTTPBadRequest")
    return ctx.body[key]


def _create(ctx: RequestContext, key: str, plural: str, create: Callable[[dict[str, Any]], Any],
            render: Callable[[Any], views.View], delete: Callable[[Any], None]) -> Reply:
    """POST of one resource (`{"port": {...}}`) or Neutron's bulk form (`{"ports": [{...}, ...]}`): the bulk is
    all or nothing, so what it created is deleted again when one item fails."""
    if isinstance(ctx.body, dict) and plural in ctx.body and key not in ctx.body:
        items = ctx.body[plural]
        if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
            raise BadRequest("Resources required", error_type="HTTPBadRequest")
        created: list[Any] = []
        try:
            for item in items:
                created.append(create(item))
        except Exception:
            for record in reversed(created):
                delete(record)
            raise
        return Reply(201, {plural: [views.select(render(r), ctx.query) for r in created]})
    return _one(ctx, key, render(create(_body(ctx, key))), 201)


def _one(ctx: RequestContext, key: str, view: dict[str, Any], status: int = 200) -> Reply:
    return Reply(status, {key: views.select(view, ctx.query)})


def _list(ctx: RequestContext, records: Iterable[Any], render: Callable[[Any], views.View], key: str) -> Reply:
    url = ctx.url(f"/network{V2}/{key.replace('_', '-')}")
    return Reply(200, views.collection(records, render, ctx.query, key, url))


# discovery ------------------------------------------------------------------------------------
@service.route("", "GET", op="versions", auth=False)
@service.route("/", "GET", op="versions", auth=False)
def versions(ctx: RequestContext) -> Reply:
    href = ctx.url(f"/network{V2}/")
    return Reply(200, {"versions": [{"id": "v2.0", "status": "CURRENT", "links": [{"rel": "self", "href": href}]}]})


@service.route(V2, "GET", op="resources", auth=False)
@service.route(V2 + "/", "GET", op="resources", auth=False)
def resources(ctx: RequestContext) -> Reply:
    def entry(name: str) -> dict[str, Any]:
        collection = name.replace("_", "-") + "s"
        return {"name": name, "collection": collection,
                "links": [{"rel": "self", "href": ctx.url(f"/network{V2}/{collection}")}]}

    return Reply(200, {"resources": [entry(name) for name in RESOURCES]})


def _extension(alias: str, name: str, description: str) -> dict[str, Any]:
    return {"alias": alias, "name": name, "description": description, "links": [],
            "updated": "2013-01-20T00:00:00-00:00"}


@service.route(V2 + "/extensions", "GET", op="extension.list")
def list_extensions(ctx: RequestContext) -> Reply:
    return Reply(200, {"extensions": [_extension(*e) for e in EXTENSIONS]})


@service.route(V2 + "/extensions/{alias}", "GET", op="extension.show")
def show_extension(ctx: RequestContext) -> Reply:
    for extension in EXTENSIONS:
        if extension[0] == ctx.path["alias"]:
            return Reply(200, {"extension": _extension(*extension)})
    raise NotFound(f"Extension with alias {ctx.path['alias']} does not exist", error_type="ExtensionNotFound")


@service.route(V2 + "/agents", "GET", op="agent.list")
def list_agents(ctx: RequestContext) -> Reply:
    """fakecloud runs no Neutron agents (no L2/L3/DHCP processes to report); Neutron's policy would also show a
    non-admin none of them."""
    return _list(ctx, [], lambda a: a, "agents")


# networks and subnets -------------------------------------------------------------------------
@service.route(V2 + "/networks", "GET", op="network.list")
def list_networks(ctx: RequestContext) -> Reply:
    return _list(ctx, _net(ctx).list_networks(ctx.project_id, ctx.is_admin), views.network, "networks")


@service.route(V2 + "/networks/{id}", "GET", op="network.show")
def show_network(ctx: RequestContext) -> Reply:
    network = _net(ctx).get_network(ctx.path["id"], ctx.project_id, ctx.is_admin)
    return _one(ctx, "network", views.network(network))


@service.route(V2 + "/networks", "POST", op="network.create")
def create_network(ctx: RequestContext) -> Reply:
    net = _net(ctx)
    return _create(ctx, "network", "networks",
                   lambda b: net.create_network(ctx.project_id, ctx.is_admin, requests.parse_network(b)),
                   views.network, lambda n: net.delete_network(n.id, ctx.project_id, True))


@service.route(V2 + "/networks/{id}", "PUT", op="network.update")
def update_network(ctx: RequestContext) -> Reply:
    request = requests.parse_network_update(_body(ctx, "network"))
    network = _net(ctx).update_network(ctx.path["id"], ctx.project_id, ctx.is_admin, request)
    return _one(ctx, "network", views.network(network))


@service.route(V2 + "/networks/{id}", "DELETE", op="network.delete")
def delete_network(ctx: RequestContext) -> Reply:
    _net(ctx).delete_network(ctx.path["id"], ctx.project_id, ctx.is_admin)
    return Reply(204)


@service.route(V2 + "/subnets", "GET", op="subnet.list")
def list_subnets(ctx: RequestContext) -> Reply:
    return _list(ctx, _net(ctx).list_subnets(ctx.project_id, ctx.is_admin), views.subnet, "subnets")


@service.route(V2 + "/subnets", "POST", op="subnet.create")
def create_subnet(ctx: RequestContext) -> Reply:
    net = _net(ctx)
    return _create(ctx, "subnet", "subnets",
                   lambda b: net.create_subnet(ctx.project_id, ctx.is_admin, requests.parse_subnet(b)),
                   views.subnet, lambda s: net.delete_subnet(s.id, ctx.project_id, True))


@service.route(V2 + "/subnets/{id}", "GET", op="subnet.show")
def show_subnet(ctx: RequestContext) -> Reply:
    return _one(ctx, "subnet", views.subnet(_net(ctx).get_subnet(ctx.path["id"], ctx.project_id, ctx.is_admin)))


@service.route(V2 + "/subnets/{id}", "PUT", op="subnet.update")
def update_subnet(ctx: RequestContext) -> Reply:
    request = requests.parse_subnet_update(_body(ctx, "subnet"))
    subnet = _net(ctx).update_subnet(ctx.path["id"], ctx.project_id, ctx.is_admin, request)
    return _one(ctx, "subnet", views.subnet(subnet))


@service.route(V2 + "/subnets/{id}", "DELETE", op="subnet.delete")
def delete_subnet(ctx: RequestContext) -> Reply:
    _net(ctx).delete_subnet(ctx.path["id"], ctx.project_id, ctx.is_admin)
    return Reply(204)


# ports ----------------------------------------------------------------------------------------
@service.route(V2 + "/ports", "GET", op="port.list")
def list_ports(ctx: RequestContext) -> Reply:
    return _list(ctx, _net(ctx).list_ports(ctx.project_id, ctx.is_admin), views.port, "ports")


@service.route(V2 + "/ports/{id}", "GET", op="port.show")
def show_port(ctx: RequestContext) -> Reply:
    return _one(ctx, "port", views.port(_net(ctx).get_port(ctx.path["id"], ctx.project_id, ctx.is_admin)))


@service.route(V2 + "/ports", "POST", op="port.create")
def create_port(ctx: RequestContext) -> Reply:
    net = _net(ctx)
    return _create(ctx, "port", "ports",
                   lambda b: net.create_requested_port(ctx.project_id, ctx.is_admin, requests.parse_port(b)),
                   views.port, lambda p: net.delete_port(p.id, ctx.project_id, True))


@service.route(V2 + "/ports/{id}", "PUT", op="port.update")
def update_port(ctx: RequestContext) -> Reply:
    request = requests.parse_port_update(_body(ctx, "port"))
    port = _net(ctx).update_port(ctx.path["id"], ctx.project_id, ctx.is_admin, request)
    return _one(ctx, "port", views.port(port))


@service.route(V2 + "/ports/{id}", "DELETE", op="port.delete")
def delete_port(ctx: RequestContext) -> Reply:
    _net(ctx).delete_port(ctx.path["id"], ctx.project_id, ctx.is_admin)
    return Reply(204)


# security groups ------------------------------------------------------------------------------
def _group_view(net: NetworkBackend, group: SecurityGroup) -> views.View:
    return views.security_group(group, net.rules_of_group(group.id), net.is_default_group(group.id))


@service.route(V2 + "/security-groups", "GET", op="security_group.list")
def list_security_groups(ctx: RequestContext) -> Reply:
    net = _net(ctx)
    groups = net.list_security_groups(ctx.project_id, ctx.is_admin)
    return _list(ctx, groups, lambda g: _group_view(net, g), "security_groups")


@service.route(V2 + "/security-groups/{id}", "GET", op="security_group.show")
def show_security_group(ctx: RequestContext) -> Reply:
    net = _net(ctx)
    group = net.get_security_group(ctx.path["id"], ctx.project_id, ctx.is_admin)
    return _one(ctx, "security_group", _group_view(net, group))


@service.route(V2 + "/security-groups", "POST", op="security_group.create")
def create_security_group(ctx: RequestContext) -> Reply:
    net = _net(ctx)
    request = requests.parse_security_group(_body(ctx, "security_group"))
    group = net.create_security_group(ctx.project_id, ctx.is_admin, request)
    return _one(ctx, "security_group", _group_view(net, group), 201)


@service.route(V2 + "/security-groups/{id}", "PUT", op="security_group.update")
def update_security_group(ctx: RequestContext) -> Reply:
    net = _net(ctx)
    request = requests.parse_security_group_update(_body(ctx, "security_group"))
    group = net.update_security_group(ctx.path["id"], ctx.project_id, ctx.is_admin, request)
    return _one(ctx, "security_group", _group_view(net, group))


@service.route(V2 + "/security-groups/{id}", "DELETE", op="security_group.delete")
def delete_security_group(ctx: RequestContext) -> Reply:
    _net(ctx).delete_security_group(ctx.path["id"], ctx.project_id, ctx.is_admin)
    return Reply(204)


# security group rules -------------------------------------------------------------------------
def _rule_view(net: NetworkBackend, rule: SecurityGroupRule) -> views.View:
    return views.security_group_rule(rule, net.is_default_group(rule.security_group_id))


@service.route(V2 + "/security-group-rules", "GET", op="security_group_rule.list")
def list_security_group_rules(ctx: RequestContext) -> Reply:
    net = _net(ctx)
    group_ids = ctx.query.getlist("security_group_id") or None
    rules = net.list_security_group_rules(ctx.project_id, ctx.is_admin, group_ids)
    return _list(ctx, rules, lambda r: _rule_view(net, r), "security_group_rules")


@service.route(V2 + "/security-group-rules/{id}", "GET", op="security_group_rule.show")
def show_security_group_rule(ctx: RequestContext) -> Reply:
    net = _net(ctx)
    rule = net.get_security_group_rule(ctx.path["id"], ctx.project_id, ctx.is_admin)
    return _one(ctx, "security_group_rule", _rule_view(net, rule))


@service.route(V2 + "/security-group-rules", "POST", op="security_group_rule.create")
def create_security_group_rules(ctx: RequestContext) -> Reply:
    """One rule (`security_group_rule`) or Neutron's bulk form (`security_group_rules`, as Heat sends)."""
    net = _net(ctx)
    body = ctx.body if isinstance(ctx.body, dict) else {}
    if isinstance(body.get("security_group_rules"), list):
        bulk = requests.parse_rules(body["security_group_rules"])
        rules = net.create_security_group_rules(ctx.project_id, ctx.is_admin, bulk)
        return Reply(201, {"security_group_rules": [_rule_view(net, r) for r in rules]})
    request = requests.parse_rule(_body(ctx, "security_group_rule"))
    (rule,) = net.create_security_group_rules(ctx.project_id, ctx.is_admin, [request])
    return _one(ctx, "security_group_rule", _rule_view(net, rule), 201)


@service.route(V2 + "/security-group-rules/{id}", "PUT", op="security_group_rule.update")
def update_security_group_rule(ctx: RequestContext) -> Reply:
    net = _net(ctx)
    request = requests.parse_rule_update(_body(ctx, "security_group_rule"))
    rule = net.update_security_group_rule(ctx.path["id"], ctx.project_id, ctx.is_admin, request)
    return _one(ctx, "security_group_rule", _rule_view(net, rule))


@service.route(V2 + "/security-group-rules/{id}", "DELETE", op="security_group_rule.delete")
def delete_security_group_rule(ctx: RequestContext) -> Reply:
    _net(ctx).delete_security_group_rule(ctx.path["id"], ctx.project_id, ctx.is_admin)
    return Reply(204)


# quotas ---------------------------------------------------------------------------------------
def _quota(limits: dict[str, int], project_id: str) -> dict[str, Any]:
    return {**limits, "project_id": project_id, "tenant_id": project_id}


@service.route(V2 + "/quotas", "GET", op="quota.list")
def list_quotas(ctx: RequestContext) -> Reply:
    net = _net(ctx)
    projects = net.quota_projects() if ctx.is_admin else []
    return Reply(200, {"quotas": [_quota(net.quota_limits(p), p) for p in projects]})


@service.route(V2 + "/quotas/{project_id}", "GET", op="quota.show")
def show_quota(ctx: RequestContext) -> Reply:
    project_id = ctx.path["project_id"]
    return Reply(200, {"quota": _quota(_net(ctx).quota_limits(project_id), project_id)})


@service.route(V2 + "/quotas/{project_id}/default", "GET", op="quota.default")
def show_default_quota(ctx: RequestContext) -> Reply:
    net = _net(ctx)
    project_id = ctx.path["project_id"]
    return Reply(200, {"quota": _quota(net.quota_defaults(), project_id)})


@service.route(V2 + "/quotas/{project_id}/details", "GET", op="quota.details")
def show_quota_details(ctx: RequestContext) -> Reply:
    net = _net(ctx)
    project_id = ctx.path["project_id"]
    limits, usage = net.quota_limits(project_id), net.quota_usage(project_id)
    details: dict[str, Any] = {name: {"limit": limits[name], "used": usage[name], "reserved": 0} for name in limits}
    return Reply(200, {"quota": {**details, "project_id": project_id, "tenant_id": project_id}})


@service.route(V2 + "/quotas/{project_id}", "PUT", op="quota.update")
def update_quota(ctx: RequestContext) -> Reply:
    body = _body(ctx, "quota")
    require_admin(ctx.is_admin, "update_quota")  # Neutron checks policy before it reads the values
    limits = _net(ctx).update_quota(ctx.path["project_id"], ctx.is_admin, requests.parse_quota(body))
    return Reply(200, {"quota": limits})


@service.route(V2 + "/quotas/{project_id}", "DELETE", op="quota.delete")
def delete_quota(ctx: RequestContext) -> Reply:
    _net(ctx).reset_quota(ctx.path["project_id"], ctx.is_admin)
    return Reply(204)


# routers --------------------------------------------------------------------------------------
def _router_view(ctx: RequestContext, router: Router) -> views.View:
    return views.router(router, _net(ctx).router_gateway_port(router), ctx.is_admin)


@service.route(V2 + "/routers", "GET", op="router.list")
def list_routers(ctx: RequestContext) -> Reply:
    routers = _net(ctx).list_routers(ctx.project_id, ctx.is_admin)
    return _list(ctx, routers, lambda r: _router_view(ctx, r), "routers")


@service.route(V2 + "/routers/{id}", "GET", op="router.show")
def show_router(ctx: RequestContext) -> Reply:
    router = _net(ctx).get_router(ctx.path["id"], ctx.project_id, ctx.is_admin)
    return _one(ctx, "router", _router_view(ctx, router))


@service.route(V2 + "/routers", "POST", op="router.create")
def create_router(ctx: RequestContext) -> Reply:
    request = requests.parse_router(_body(ctx, "router"))
    router = _net(ctx).create_router(ctx.project_id, ctx.is_admin, request)
    return _one(ctx, "router", _router_view(ctx, router), 201)


@service.route(V2 + "/routers/{id}", "PUT", op="router.update")
def update_router(ctx: RequestContext) -> Reply:
    request = requests.parse_router_update(_body(ctx, "router"))
    router = _net(ctx).update_router(ctx.path["id"], ctx.project_id, ctx.is_admin, request)
    return _one(ctx, "router", _router_view(ctx, router))


@service.route(V2 + "/routers/{id}", "DELETE", op="router.delete")
def delete_router(ctx: RequestContext) -> Reply:
    _net(ctx).delete_router(ctx.path["id"], ctx.project_id, ctx.is_admin)
    return Reply(204)


@service.route(V2 + "/routers/{id}/add_router_interface", "PUT", op="router.add_interface")
def add_router_interface(ctx: RequestContext) -> Reply:
    request = requests.parse_router_interface(ctx.body)
    return Reply(200, _net(ctx).add_router_interface(ctx.path["id"], ctx.project_id, ctx.is_admin, request))


@service.route(V2 + "/routers/{id}/remove_router_interface", "PUT", op="router.remove_interface")
def remove_router_interface(ctx: RequestContext) -> Reply:
    request = requests.parse_router_interface(ctx.body)
    return Reply(200, _net(ctx).remove_router_interface(ctx.path["id"], ctx.project_id, ctx.is_admin, request))


# floating IPs ---------------------------------------------------------------------------------
@service.route(V2 + "/floatingips", "GET", op="floatingip.list")
def list_floating_ips(ctx: RequestContext) -> Reply:
    fips = _net(ctx).list_floating_ips(ctx.project_id, ctx.is_admin)
    return _list(ctx, fips, views.floating_ip, "floatingips")


@service.route(V2 + "/floatingips/{id}", "GET", op="floatingip.show")
def show_floating_ip(ctx: RequestContext) -> Reply:
    fip = _net(ctx).get_floating_ip(ctx.path["id"], ctx.project_id, ctx.is_admin)
    return _one(ctx, "floatingip", views.floating_ip(fip))


@service.route(V2 + "/floatingips", "POST", op="floatingip.create")
def create_floating_ip(ctx: RequestContext) -> Reply:
    request = requests.parse_floating_ip(_body(ctx, "floatingip"))
    fip = _net(ctx).create_floating_ip(ctx.project_id, ctx.is_admin, request)
    return _one(ctx, "floatingip", views.floating_ip(fip), 201)


@service.route(V2 + "/floatingips/{id}", "PUT", op="floatingip.update")
def update_floating_ip(ctx: RequestContext) -> Reply:
    request = requests.parse_floating_ip_update(_body(ctx, "floatingip"))
    fip = _net(ctx).update_floating_ip(ctx.path["id"], ctx.project_id, ctx.is_admin, request)
    return _one(ctx, "floatingip", views.floating_ip(fip))


@service.route(V2 + "/floatingips/{id}", "DELETE", op="floatingip.delete")
def delete_floating_ip(ctx: RequestContext) -> Reply:
    _net(ctx).delete_floating_ip(ctx.path["id"], ctx.project_id, ctx.is_admin)
    return Reply(204)


# subnet pools ---------------------------------------------------------------------------------
@service.route(V2 + "/subnetpools", "GET", op="subnetpool.list")
def list_subnetpools(ctx: RequestContext) -> Reply:
    return _list(ctx, _net(ctx).subnetpools.list(ctx.project_id, ctx.is_admin), views.subnetpool, "subnetpools")


@service.route(V2 + "/subnetpools/{id}", "GET", op="subnetpool.show")
def show_subnetpool(ctx: RequestContext) -> Reply:
    pool = _net(ctx).subnetpools.get(ctx.path["id"], ctx.project_id, ctx.is_admin)
    return _one(ctx, "subnetpool", views.subnetpool(pool))


@service.route(V2 + "/subnetpools", "POST", op="subnetpool.create")
def create_subnetpool(ctx: RequestContext) -> Reply:
    pools = _net(ctx).subnetpools
    return _create(ctx, "subnetpool", "subnetpools",
                   lambda b: pools.create(ctx.project_id, ctx.is_admin, requests.parse_subnetpool(b)),
                   views.subnetpool, lambda p: pools.delete(p.id, ctx.project_id, True))


@service.route(V2 + "/subnetpools/{id}", "PUT", op="subnetpool.update")
def update_subnetpool(ctx: RequestContext) -> Reply:
    request = requests.parse_subnetpool_update(_body(ctx, "subnetpool"))
    pool = _net(ctx).subnetpools.update(ctx.path["id"], ctx.project_id, ctx.is_admin, request)
    return _one(ctx, "subnetpool", views.subnetpool(pool))


@service.route(V2 + "/subnetpools/{id}", "DELETE", op="subnetpool.delete")
def delete_subnetpool(ctx: RequestContext) -> Reply:
    _net(ctx).subnetpools.delete(ctx.path["id"], ctx.project_id, ctx.is_admin)
    return Reply(204)


# tags (standard-attr-tag) ---------------------------------------------------------------------
_TAGS = V2 + "/{collection}/{id}/tags"


def _tagged(ctx: RequestContext, write: bool = False) -> Any:
    return tags.tagged(_net(ctx), ctx.path["collection"], ctx.path["id"], ctx.project_id, ctx.is_admin, write)


@service.route(_TAGS, "GET", op="tag.list")
def list_tags(ctx: RequestContext) -> Reply:
    return Reply(200, {"tags": list(_tagged(ctx).tags)})


@service.route(_TAGS, "PUT", op="tag.replace")
def replace_tags(ctx: RequestContext) -> Reply:
    wanted = tags.check_tags(ctx.body)
    return Reply(200, {"tags": tags.set_tags(_tagged(ctx, write=True), wanted, _net(ctx).now())})


@service.route(_TAGS, "POST", op="tag.add_all")
def add_tags(ctx: RequestContext) -> Reply:
    wanted = tags.check_tags(ctx.body)
    record = _tagged(ctx, write=True)
    tags.set_tags(record, [*record.tags, *wanted], _net(ctx).now())
    return Reply(201, {"tags": wanted})


@service.route(_TAGS, "DELETE", op="tag.delete_all")
def delete_tags(ctx: RequestContext) -> Reply:
    tags.set_tags(_tagged(ctx, write=True), [], _net(ctx).now())
    return Reply(204)


@service.route(_TAGS + "/{tag}", "GET", op="tag.check")
def check_tag(ctx: RequestContext) -> Reply:
    tags.require_tag(_tagged(ctx), tags.check_tag(ctx.path["tag"]))
    return Reply(204)


@service.route(_TAGS + "/{tag}", "PUT", op="tag.add")
def add_tag(ctx: RequestContext) -> Reply:
    tag = tags.check_tag(ctx.path["tag"])
    record = _tagged(ctx, write=True)
    tags.set_tags(record, [*record.tags, tag], _net(ctx).now())
    return Reply(201)


@service.route(_TAGS + "/{tag}", "DELETE", op="tag.delete")
def delete_tag(ctx: RequestContext) -> Reply:
    tag = tags.check_tag(ctx.path["tag"])
    record = _tagged(ctx, write=True)
    tags.require_tag(record, tag)
    tags.set_tags(record, [t for t in record.tags if t != tag], _net(ctx).now())
    return Reply(204)
