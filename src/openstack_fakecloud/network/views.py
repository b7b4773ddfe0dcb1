"""How Neutron renders its resources, and how it filters, selects fields of and pages collections.

Views are plain functions of the backend's records, so the admin inventory and the API share them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from openstack_fakecloud.compute.backend import HOST as COMPUTE_HOST
from openstack_fakecloud.network.records import (
    FloatingIp,
    Network,
    Port,
    Router,
    SecurityGroup,
    SecurityGroupRule,
    Subnet,
)
from openstack_fakecloud.network.subnetpools import SubnetPool

View = dict[str, Any]


def network(n: Network) -> View:
    return {
        "id": n.id, "name": n.name, "project_id": n.project_id, "tenant_id": n.project_id,
        "subnets": list(n.subnets), "shared": n.shared, "router:external": n.external, "status": n.status,
        "mtu": n.mtu, "admin_state_up": n.admin_state_up, "description": n.description,
        "port_security_enabled": True, "availability_zone_hints": [], "availability_zones": ["nova"],
        "ipv4_address_scope": None, "ipv6_address_scope": None, "is_default": n.external,
        "l2_adjacency": True, "qos_policy_id": None, "dns_domain": "", "tags": list(n.tags),
        "created_at": n.created_at, "updated_at": n.updated_at, "revision_number": n.revision_number,
    }


def subnet(s: Subnet) -> View:
    return {
        "id": s.id, "name": s.name, "network_id": s.network_id, "project_id": s.project_id,
        "tenant_id": s.project_id, "cidr": s.cidr, "ip_version": s.ip_version, "gateway_ip": s.gateway_ip,
        "enable_dhcp": s.enable_dhcp, "allocation_pools": [dict(p) for p in s.allocation_pools],
        "dns_nameservers": list(s.dns_nameservers), "host_routes": [dict(r) for r in s.host_routes],
        "ipv6_address_mode": None, "ipv6_ra_mode": None,
        "subnetpool_id": None, "service_types": [], "dns_publish_fixed_ip": False, "description": s.description,
        "tags": list(s.tags), "created_at": s.created_at, "updated_at": s.updated_at,
        "revision_number": s.revision_number,
    }


def port(p: Port) -> View:
    return {
        "id": p.id, "name": p.name, "network_id": p.network_id, "project_id": p.project_id,
        "tenant_id": p.project_id, "device_id": p.device_id, "device_owner": p.device_owner,
        "mac_address": p.mac_address, "fixed_ips": [dict(ip) for ip in p.fixed_ips],
        "security_groups": list(p.security_groups), "status": p.status, "admin_state_up": p.admin_state_up,
        "description": p.description, "port_security_enabled": p.port_security_enabled,
        "allowed_address_pairs": [], "extra_dhcp_opts": [], "binding:vnic_type": "normal",
        "binding:host_id": p.host_id or (COMPUTE_HOST if p.device_id else ""),
        "binding:vif_type": "ovs" if p.device_id or p.host_id else "unbound", "binding:vif_details": {},
        "binding:profile": {}, "dns_name": "", "dns_assignment": [],
        "propagate_uplink_status": False, "qos_policy_id": None, "tags": list(p.tags),
        "created_at": p.created_at, "updated_at": p.updated_at, "revision_number": p.revision_number,
    }


def security_group_rule(r: SecurityGroupRule, in_default_group: bool) -> View:
    return {
        "id": r.id, "security_group_id": r.security_group_id, "direction": r.direction,
        "ethertype": r.ethertype, "protocol": r.protocol, "port_range_min": r.port_range_min,
        "port_range_max": r.port_range_max, "remote_ip_prefix": r.remote_ip_prefix,
        "remote_group_id": r.remote_group_id, "remote_address_group_id": r.remote_address_group_id,
        "normalized_cidr": r.remote_ip_prefix, "description": r.description, "project_id": r.project_id,
        "tenant_id": r.project_id, "created_at": r.created_at, "updated_at": r.created_at,
        "revision_number": r.revision_number, "tags": [], "belongs_to_default_sg": in_default_group,
    }


def security_group(g: SecurityGroup, rules: Iterable[SecurityGroupRule], is_default: bool) -> View:
    return {
        "id": g.id, "name": g.name, "description": g.description, "project_id": g.project_id,
        "tenant_id": g.project_id, "stateful": g.stateful, "shared": False, "tags": list(g.tags),
        "security_group_rules": [security_group_rule(r, is_default) for r in rules],
        "created_at": g.created_at, "updated_at": g.updated_at, "revision_number": g.revision_number,
    }


def router(r: Router, gateway: Port | None, admin: bool) -> View:
    """`distributed` and `ha` are shown to admins only (Neutron's `get_router:distributed` / `:ha`)."""
    info = None
    if r.gateway_network_id is not None:
        ips = [dict(ip) for ip in gateway.fixed_ips] if gateway is not None else []
        info = {"network_id": r.gateway_network_id, "enable_snat": r.enable_snat, "external_fixed_ips": ips}
    view: View = {
        "id": r.id, "name": r.name, "description": r.description, "project_id": r.project_id,
        "tenant_id": r.project_id, "status": r.status, "admin_state_up": r.admin_state_up,
        "external_gateway_info": info, "routes": [dict(route) for route in r.routes],
        "availability_zone_hints": [], "availability_zones": ["nova"], "flavor_id": None, "tags": list(r.tags),
        "created_at": r.created_at, "updated_at": r.updated_at, "revision_number": r.revision_number,
    }
    if admin:
        view.update({"distributed": False, "ha": False})
    return view


def floating_ip(f: FloatingIp) -> View:
    return {
        "id": f.id, "floating_ip_address": f.floating_ip_address, "floating_network_id": f.floating_network_id,
        "router_id": f.router_id, "port_id": f.port_id, "fixed_ip_address": f.fixed_ip_address,
        "status": f.status, "project_id": f.project_id, "tenant_id": f.project_id, "description": f.description,
        "qos_policy_id": None, "port_forwardings": [], "tags": list(f.tags),
        "created_at": f.created_at, "updated_at": f.updated_at, "revision_number": f.revision_number,
    }


def subnetpool(p: SubnetPool) -> View:
    return {
        "id": p.id, "name": p.name, "project_id": p.project_id, "tenant_id": p.project_id,
        "prefixes": list(p.prefixes), "ip_version": p.ip_version, "min_prefixlen": p.min_prefixlen,
        "max_prefixlen": p.max_prefixlen, "default_prefixlen": p.default_prefixlen, "shared": p.shared,
        "is_default": p.is_default, "default_quota": p.default_quota, "address_scope_id": None,
        "description": p.description, "tags": list(p.tags), "created_at": p.created_at,
        "updated_at": p.updated_at, "revision_number": p.revision_number,
    }


# collections ---------------------------------------------------------------------------------
_CONTROL = frozenset({"fields", "limit", "marker", "page_reverse", "sort_key", "sort_dir", "all_tenants",
                      "all_projects"})


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _accepts(wanted: list[str], value: Any) -> bool:
    if isinstance(value, bool):
        return any(w.lower() in (("true", "1") if value else ("false", "0")) for w in wanted)
    if isinstance(value, list):  # e.g. a port's security_groups
        return any(w in value for w in wanted)
    return _text(value) in wanted


def _fixed_ips_accept(wanted: list[str], fixed_ips: list[dict[str, Any]]) -> bool:
    """A port's `fixed_ips=ip_address=X` / `fixed_ips=subnet_id=Y` filter: values of one key are OR'd, the
    keys AND'd, each met by some fixed IP of the port (Neutron's port filter)."""
    by_key: dict[str, set[str]] = {}
    for item in wanted:
        name, _, value = item.partition("=")
        by_key.setdefault(name, set()).add(value)
    return all(any(_text(ip.get(name)) in values for ip in fixed_ips) for name, values in by_key.items())


_TAG_FILTERS = ("tags", "tags-any", "not-tags", "not-tags-any")


def _tags_accept(name: str, wanted: list[str], tags: list[str]) -> bool:
    """Neutron's tag filters, each a comma-separated list: `tags` all of them, `tags-any` one of them, and
    `not-tags` / `not-tags-any` the negations."""
    asked = {t for value in wanted for t in value.split(",") if t}
    have = set(tags)
    if name == "tags":
        return asked <= have
    if name == "tags-any":
        return bool(asked & have)
    if name == "not-tags":
        return not asked <= have
    return not asked & have


def _filter_accepts(name: str, values: list[str], view: View) -> bool:
    if name in _TAG_FILTERS and "tags" in view:
        return _tags_accept(name, values, view["tags"])
    if name not in view:
        return True
    if name == "fixed_ips":
        return _fixed_ips_accept(values, view[name])
    return _accepts(values, view[name])


def collection(records: Iterable[Any], render: Callable[[Any], View], query: Any, key: str,
               base_url: str) -> View:
    """`{key: [...]}` with Neutron's filters (any attribute, repeated = OR), sort, paging and `fields`."""
    filters = {name: query.getlist(name) for name in query if name not in _CONTROL}
    views = [render(r) for r in records]
    if filters:
        views = [v for v in views if all(_filter_accepts(name, values, v) for name, values in filters.items())]
    sort_keys = query.getlist("sort_key")
    if sort_keys:
        directions = query.getlist("sort_dir")
        for index in reversed(range(len(sort_keys))):
            name = sort_keys[index]
            reverse = index < len(directions) and directions[index] == "desc"
            views.sort(key=lambda v, n=name: _text(v.get(n)), reverse=reverse)
    body: View = {}
    limit = query.get("limit")
    if limit and limit.isdigit() and int(limit) > 0:
        marker = query.get("marker")
        if marker:
            ids = [v["id"] for v in views]
            views = views[ids.index(marker) + 1:] if marker in ids else []
        size = int(limit)
        page, more = views[:size], len(views) > size
        views = page
        if more and page:
            body[f"{key}_links"] = [{"rel": "next", "href": f"{base_url}?limit={size}&marker={page[-1]['id']}"}]
    body[key] = [select(v, query) for v in views]
    return body


def select(view: View, query: Any) -> View:
    """Honour `fields=` (repeatable): only the asked-for attributes, as Neutron returns them."""
    fields = [f for f in query.getlist("fields") if f]
    if not fields:
        return view
    return {name: view[name] for name in fields if name in view}
