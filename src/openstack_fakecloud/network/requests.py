"""What a Neutron request asks for, as typed objects, and how a request body becomes one.

The parsers are Neutron's attribute layer: unknown attributes, required ones, type conversion and
the checks a rule's own fields must pass, with Neutron's wire messages (which name body fields).
The backend gets only these objects, so it never sees a body. Routes call the parsers; so does Heat,
whose Neutron resources hand fakecloud the bodies a Neutron client would send.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from typing import Any

from openstack_fakecloud.errors import BadRequest
from openstack_fakecloud.network.protocols import (
    ICMP_PROTOCOLS,
    IPV6_ONLY_PROTOCOLS,
    PORT_PROTOCOLS,
    PROTOCOLS,
    protocol_number,
)
from openstack_fakecloud.network.quotas import QUOTA_DEFAULTS
from openstack_fakecloud.network.subnetpools import SubnetPoolRequest

RULE_ATTRS = frozenset({
    "security_group_id", "direction", "ethertype", "protocol", "port_range_min", "port_range_max",
    "remote_ip_prefix", "remote_group_id", "remote_address_group_id", "description", "project_id", "tenant_id",
})
GROUP_ATTRS = frozenset({"name", "description", "stateful", "project_id", "tenant_id"})
PORT_ATTRS = frozenset({
    "network_id", "name", "description", "admin_state_up", "device_id", "device_owner", "fixed_ips",
    "security_groups", "mac_address", "project_id", "tenant_id", "port_security_enabled", "binding:host_id",
})
PORT_UPDATE_ATTRS = PORT_ATTRS - {"network_id", "mac_address", "project_id", "tenant_id"}
GROUP_UPDATE_ATTRS = GROUP_ATTRS - {"project_id", "tenant_id"}


# typed requests -------------------------------------------------------------------------------
@dataclass(slots=True, frozen=True)
class NetworkCreate:
    name: str = ""
    shared: bool = False
    external: bool = False
    mtu: int = 1450
    admin_state_up: bool = True
    description: str = ""
    project_id: str | None = None  # the owner asked for (admin only), None: the caller's


@dataclass(slots=True, frozen=True)
class NetworkUpdate:
    """Only the attributes the request names; None leaves one as it is."""

    name: str | None = None
    admin_state_up: bool | None = None
    shared: bool | None = None
    external: bool | None = None
    description: str | None = None
    mtu: int | None = None


@dataclass(slots=True, frozen=True)
class SubnetCreate:
    network_id: str
    cidr: str  # normalised, e.g. "10.0.0.0/24"
    name: str = ""
    gateway_ip: str | None = ""  # "": the first host address; None: no gateway
    # (start, end) pairs of well-formed addresses; whether they fit the CIDR is the backend's. None: every
    # host address but the gateway.
    allocation_pools: tuple[tuple[str, str], ...] | None = None
    dns_nameservers: tuple[str, ...] = ()
    host_routes: tuple[tuple[str, str], ...] = ()  # (destination CIDR, nexthop)
    description: str = ""
    enable_dhcp: bool = True


@dataclass(slots=True, frozen=True)
class FixedIp:
    """One `fixed_ips` entry: a subnet (None: the network's first), an address (None: the next free)."""

    subnet_id: str | None = None
    ip_address: str | None = None


@dataclass(slots=True, frozen=True)
class PortCreate:
    network_id: str
    device_id: str = ""
    device_owner: str = ""
    security_groups: list[str] | None = None  # None: the project's default group
    fixed_ips: list[FixedIp] | None = None  # None: one address on the first subnet; []: none
    name: str = ""
    description: str = ""
    admin_state_up: bool = True
    mac_address: str | None = None
    project_id: str | None = None
    host_id: str | None = None  # `binding:host_id`: admin only (Neutron's policy)


@dataclass(slots=True, frozen=True)
class PortUpdate:
    """Only the attributes the request names; None leaves one as it is."""

    name: str | None = None
    description: str | None = None
    device_id: str | None = None
    device_owner: str | None = None
    fixed_ips: list[FixedIp] | None = None
    security_groups: list[str] | None = None
    admin_state_up: bool | None = None
    port_security_enabled: bool | None = None
    host_id: str | None = None


@dataclass(slots=True, frozen=True)
class SecurityGroupCreate:
    name: str = ""
    description: str = ""
    stateful: bool = True
    project_id: str | None = None


@dataclass(slots=True, frozen=True)
class SecurityGroupUpdate:
    name: str | None = None
    description: str | None = None
    stateful: bool | None = None


@dataclass(slots=True, frozen=True)
class RuleCreate:
    """A rule whose fields are converted and consistent; whether its groups exist is the backend's."""

    security_group_id: str
    direction: str
    ethertype: str
    protocol: str | None = None
    port_range_min: int | None = None
    port_range_max: int | None = None
    remote_ip_prefix: str | None = None  # normalised CIDR
    remote_group_id: str | None = None
    remote_address_group_id: str | None = None
    description: str = ""
    project_id: str | None = None


@dataclass(slots=True, frozen=True)
class RuleUpdate:
    description: str | None = None


# attribute conversion -------------------------------------------------------------------------
def _check_attrs(body: dict[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BadRequest(f"Unrecognized attribute(s) '{', '.join(unknown)}'", error_type="HTTPBadRequest")


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    raise BadRequest(f"Invalid input for {name}. Reason: '{value}' cannot be converted to boolean.")


def _text(value: Any) -> str:
    """Neutron's string attributes: a missing or null value is the empty string."""
    return str(value or "")


def _optional_text(value: Any) -> str | None:
    return str(value) if value else None


def _requested_owner(body: dict[str, Any]) -> str | None:
    wanted = body.get("project_id") or body.get("tenant_id")
    return str(wanted) if wanted else None


def _group_ids(value: Any) -> list[str]:
    if not isinstance(value, (list, tuple)):
        raise BadRequest(f"Invalid input for security_groups. Reason: '{value}' is not a list.")
    return [str(group) for group in value]


def _fixed_ips(value: Any) -> list[FixedIp]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise BadRequest(f"Invalid input for fixed_ips. Reason: Invalid data format for fixed IP: '{value}'.")
    return [FixedIp(_optional_text(item.get("subnet_id")), _optional_text(item.get("ip_address"))) for item in value]


# networks and subnets -------------------------------------------------------------------------
def _invalid(name: str, reason: str) -> BadRequest:
    """Neutron's attribute-validation 400, which its API layer answers as a webob HTTPBadRequest."""
    return BadRequest(f"Invalid input for {name}. Reason: {reason}", error_type="HTTPBadRequest")


def _mtu(value: Any) -> int:
    """Neutron's `mtu`: a non-negative integer (how large one may be is the backend's)."""
    try:
        mtu = int(value)
    except (TypeError, ValueError):
        raise _invalid("mtu", f"'{value}' is not an integer.") from None
    if isinstance(value, bool) or mtu < 0:
        raise _invalid("mtu", f"'{value}' should be non-negative.")
    return mtu


def parse_network(body: dict[str, Any]) -> NetworkCreate:
    mtu = _mtu(body.get("mtu") or 1450)
    return NetworkCreate(
        name=_text(body.get("name")), shared=_bool("shared", body.get("shared", False)),
        external=_bool("router:external", body.get("router:external", False)), mtu=mtu,
        admin_state_up=_bool("admin_state_up", body.get("admin_state_up", True)),
        description=_text(body.get("description")), project_id=_requested_owner(body),
    )


NETWORK_UPDATE_ATTRS = frozenset({"name", "admin_state_up", "shared", "router:external", "description", "mtu"})
# Attributes a network has but Neutron never lets a PUT change.
NETWORK_READ_ONLY = frozenset({"id", "project_id", "tenant_id", "status", "subnets", "created_at", "updated_at",
                               "revision_number", "availability_zones"})


def parse_network_update(body: dict[str, Any]) -> NetworkUpdate:
    """Neutron's PUT /networks/{id}: unknown attributes, then read-only ones, are a 400."""
    _check_attrs(body, NETWORK_UPDATE_ATTRS | NETWORK_READ_ONLY)
    read_only = sorted(set(body) & NETWORK_READ_ONLY)
    if read_only:
        raise BadRequest(f"Cannot update read-only attribute {read_only[0]}", error_type="HTTPBadRequest")

    def flag(key: str) -> bool | None:
        return _bool(key, body[key]) if key in body else None

    return NetworkUpdate(
        name=_text(body["name"]) if "name" in body else None, admin_state_up=flag("admin_state_up"),
        shared=flag("shared"), external=flag("router:external"),
        description=_text(body["description"]) if "description" in body else None,
        mtu=_mtu(body["mtu"]) if "mtu" in body else None,
    )


def _address(name: str, value: Any) -> str:
    try:
        return str(ipaddress.ip_address(str(value)))
    except ValueError:
        raise _invalid(name, f"'{value}' is not a valid IP address.") from None


def _allocation_pools(value: Any) -> tuple[tuple[str, str], ...]:
    """A list of {"start", "end"} objects, both well-formed addresses, and nothing else in them."""
    if not isinstance(value, list):
        raise _invalid("allocation_pools", f"Invalid data format for IP pool: '{value}'.")
    pools = []
    for pool in value:
        if not isinstance(pool, dict) or set(pool) != {"start", "end"}:
            raise _invalid("allocation_pools", f"Invalid data format for IP pool: '{pool}'.")
        pools.append((_address("allocation_pools", pool["start"]), _address("allocation_pools", pool["end"])))
    return tuple(pools)


def _nameservers(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _invalid("dns_nameservers", f"'{value}' is not a list.")
    seen: list[str] = []
    for item in value:
        address = _address("dns_nameservers", item)
        if address in seen:
            raise _invalid("dns_nameservers", f"Duplicate nameserver '{item}'.")
        seen.append(address)
    return tuple(seen)


def _host_routes(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list):
        raise _invalid("host_routes", f"Invalid data format for hostroute: '{value}'.")
    routes: list[tuple[str, str]] = []
    for route in value:
        if not isinstance(route, dict) or set(route) != {"destination", "nexthop"}:
            raise _invalid("host_routes", f"Invalid data format for hostroute: '{route}'.")
        parsed = _parse_cidr(str(route["destination"]))
        if parsed is None:
            raise _invalid("host_routes", f"'{route['destination']}' is not a valid IP subnet.")
        entry = (parsed[0], _address("host_routes", route["nexthop"]))
        if entry in routes:
            raise _invalid("host_routes", f"Duplicate hostroute '{route}'.")
        routes.append(entry)
    return tuple(routes)


def parse_subnet(body: dict[str, Any]) -> SubnetCreate:
    try:
        cidr = ipaddress.ip_network(str(body.get("cidr")), strict=True)
    except ValueError:
        raise BadRequest(f"Invalid input for cidr. Reason: '{body.get('cidr')}' is not a valid IP subnet.") \
            from None
    gateway = body.get("gateway_ip", "")
    if gateway not in (None, ""):
        gateway = _address("gateway_ip", gateway)
    pools = body.get("allocation_pools")
    # A missing network_id reads "None", so the answer stays "Network None could not be found."
    return SubnetCreate(network_id=str(body.get("network_id")), cidr=str(cidr), name=_text(body.get("name")),
                        gateway_ip=None if gateway is None else str(gateway),
                        allocation_pools=_allocation_pools(pools) if pools is not None else None,
                        dns_nameservers=_nameservers(body.get("dns_nameservers") or []),
                        host_routes=_host_routes(body.get("host_routes") or []),
                        description=_text(body.get("description")),
                        enable_dhcp=_bool("enable_dhcp", body.get("enable_dhcp", True)))


# ports ----------------------------------------------------------------------------------------
def parse_port(body: dict[str, Any]) -> PortCreate:
    _check_attrs(body, PORT_ATTRS)
    if not body.get("network_id"):
        raise BadRequest("Failed to parse request. Required attribute 'network_id' not specified")
    groups = body.get("security_groups")
    fixed_ips = body.get("fixed_ips")
    mac = body.get("mac_address")
    return PortCreate(
        network_id=str(body["network_id"]), device_id=_text(body.get("device_id")),
        device_owner=_text(body.get("device_owner")),
        fixed_ips=_fixed_ips(fixed_ips) if fixed_ips is not None else None,
        admin_state_up=_bool("admin_state_up", body.get("admin_state_up", True)),
        security_groups=_group_ids(groups) if groups is not None else None,
        name=_text(body.get("name")), description=_text(body.get("description")),
        mac_address=str(mac) if mac is not None else None, project_id=_requested_owner(body),
        host_id=_text(body["binding:host_id"]) if "binding:host_id" in body else None,
    )


def parse_port_update(body: dict[str, Any]) -> PortUpdate:
    _check_attrs(body, PORT_UPDATE_ATTRS)

    def text(key: str) -> str | None:
        return _text(body[key]) if key in body else None

    def flag(key: str) -> bool | None:
        return _bool(key, body[key]) if key in body else None

    return PortUpdate(
        name=text("name"), description=text("description"), device_id=text("device_id"),
        device_owner=text("device_owner"),
        fixed_ips=_fixed_ips(body["fixed_ips"] or []) if "fixed_ips" in body else None,
        security_groups=_group_ids(body["security_groups"] or []) if "security_groups" in body else None,
        admin_state_up=flag("admin_state_up"), port_security_enabled=flag("port_security_enabled"),
        host_id=text("binding:host_id"),
    )


# security groups ------------------------------------------------------------------------------
def parse_security_group(body: dict[str, Any]) -> SecurityGroupCreate:
    _check_attrs(body, GROUP_ATTRS)
    return SecurityGroupCreate(name=_text(body.get("name")), description=_text(body.get("description")),
                               stateful=_bool("stateful", body.get("stateful", True)),
                               project_id=_requested_owner(body))


def parse_security_group_update(body: dict[str, Any]) -> SecurityGroupUpdate:
    _check_attrs(body, GROUP_UPDATE_ATTRS)
    return SecurityGroupUpdate(
        name=_text(body["name"]) if "name" in body else None,
        description=_text(body["description"]) if "description" in body else None,
        stateful=_bool("stateful", body["stateful"]) if "stateful" in body else None,
    )


def _port_value(value: Any) -> int | None:
    """Neutron's convert_validate_port_value: ints or digit strings in 0..65535."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise BadRequest(f"Invalid value for port {value}.", error_type="SecurityGroupInvalidPortValue")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"Invalid value for port {value}.", error_type="SecurityGroupInvalidPortValue") from None
    if not 0 <= number <= 65535:
        raise BadRequest(f"Invalid value for port {value}.", error_type="SecurityGroupInvalidPortValue")
    return number


def _protocol(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and value.lower() == "any"):
        return None
    text = str(value).strip()
    if text.isdigit() and 0 <= int(text) <= 255:
        return text
    if text.lower() in PROTOCOLS:
        return text.lower()
    raise BadRequest(
        f"Security group rule protocol {value} not supported. Only protocol values "
        f"{sorted([*PROTOCOLS, None], key=str)} and integer representations [0 to 255] are supported.",
        error_type="SecurityGroupRuleInvalidProtocol",
    )


def _ethertype(value: Any) -> str:
    if value is None:
        return "IPv4"
    for allowed in ("IPv4", "IPv6"):
        if isinstance(value, str) and value.lower() == allowed.lower():
            return allowed
    raise BadRequest(
        f"Security group rule for ethertype '{value}' not supported. Allowed values are ['IPv4', 'IPv6'].",
        error_type="SecurityGroupRuleInvalidEtherType",
    )


@functools.lru_cache(maxsize=4096)
def _parse_cidr(text: str) -> tuple[str, int] | None:
    """(normalised CIDR, IP version), cached: bulk rule sets repeat the same few prefixes."""
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
    return str(network), network.version


def _cidr(value: Any) -> tuple[str, int] | None:
    """Neutron's remote_ip_prefix conversion: host bits cleared (10.0.0.5/24 -> 10.0.0.0/24), /32 added."""
    if value is None or value == "":
        return None
    parsed = _parse_cidr(str(value))
    if parsed is None:
        raise BadRequest(
            f"Invalid input for remote_ip_prefix. Reason: '{value}' is not a valid IP subnet.",
            error_type="HTTPBadRequest",
        )
    return parsed


def _check_port_range(protocol: str | None, pmin: int | None, pmax: int | None) -> None:
    """Neutron's port range rules: which protocols take one, and what it may hold for ICMP."""
    if pmin is None and pmax is None:
        return
    if protocol is None:
        raise BadRequest("Must also specify protocol if port range is given.",
                         error_type="SecurityGroupProtocolRequiredWithPorts")
    number = protocol_number(protocol)
    if number in PORT_PROTOCOLS:
        if pmin == 0 or pmax == 0:
            raise BadRequest("Invalid value for port 0.", error_type="SecurityGroupInvalidPortValue")
        if pmin is None or pmax is None or pmin > pmax:
            raise BadRequest("For TCP/UDP protocols, port_range_min must be <= port_range_max",
                             error_type="SecurityGroupInvalidPortRange")
    elif number in ICMP_PROTOCOLS:
        for attr, kind, value in (("port_range_min", "type", pmin), ("port_range_max", "code", pmax)):
            if value is not None and not 0 <= value <= 255:
                raise BadRequest(f"Invalid value for ICMP {kind} ({attr}) {value}. It must be 0 to 255.",
                                 error_type="SecurityGroupInvalidIcmpValue")
        if pmin is None and pmax is not None:
            raise BadRequest(f"ICMP code (port-range-max) {pmax} is provided but ICMP type (port-range-min) "
                             "is missing.", error_type="SecurityGroupMissingIcmpType")
    else:
        raise BadRequest(f"Invalid protocol {number} for port range, only supported for TCP, UDP, UDPLITE, "
                         "SCTP and DCCP.", error_type="SecurityGroupInvalidProtocolForPort")


def parse_rule(body: Any) -> RuleCreate:
    """Neutron's attribute conversion and rule validation, in Neutron's order."""
    if not isinstance(body, dict):
        raise BadRequest("Invalid input for security_group_rule: it must be an object.")
    _check_attrs(body, RULE_ATTRS)
    for required in ("security_group_id", "direction"):
        if body.get(required) in (None, ""):
            raise BadRequest(f"Failed to parse request. Required attribute '{required}' not specified",
                             error_type="HTTPBadRequest")
    direction = body["direction"]
    if direction not in ("ingress", "egress"):
        raise BadRequest(f"Invalid input for direction. Reason: '{direction}' is not in ['ingress', 'egress'].",
                         error_type="HTTPBadRequest")
    ethertype = _ethertype(body.get("ethertype"))
    protocol = _protocol(body.get("protocol"))
    pmin = _port_value(body.get("port_range_min"))
    pmax = _port_value(body.get("port_range_max"))
    network = _cidr(body.get("remote_ip_prefix"))
    if ethertype == "IPv6" and protocol in ("icmp", "icmpv6", "1"):
        protocol = "58" if protocol == "1" else "ipv6-icmp"
    _check_port_range(protocol, pmin, pmax)
    if network is not None and ethertype != f"IPv{network[1]}":
        raise BadRequest(f"Conflicting value ethertype {ethertype} for CIDR {body['remote_ip_prefix']}",
                         error_type="SecurityGroupRuleParameterConflict")
    if protocol_number(protocol) in IPV6_ONLY_PROTOCOLS and ethertype == "IPv4":
        raise BadRequest(f"Invalid ethertype {ethertype} for protocol {protocol}.",
                         error_type="SecurityGroupEthertypeConflictWithProtocol")
    remote_group_id = _optional_text(body.get("remote_group_id"))
    if network is not None and remote_group_id:
        raise BadRequest("Only remote_ip_prefix or remote_group_id may be provided.",
                         error_type="SecurityGroupRemoteGroupAndRemoteIpPrefix")
    return RuleCreate(
        security_group_id=str(body["security_group_id"]), direction=direction, ethertype=ethertype,
        protocol=protocol, port_range_min=pmin, port_range_max=pmax,
        remote_ip_prefix=network[0] if network is not None else None, remote_group_id=remote_group_id,
        remote_address_group_id=_optional_text(body.get("remote_address_group_id")),
        description=_text(body.get("description")), project_id=_requested_owner(body),
    )


def parse_rules(bodies: list[Any]) -> list[RuleCreate]:
    """A bulk create: every rule parsed before any is looked at by the backend."""
    if not bodies:
        raise BadRequest("Resource body required")
    return [parse_rule(body) for body in bodies]


def parse_rule_update(body: dict[str, Any]) -> RuleUpdate:
    read_only = sorted(set(body) - {"description"})
    if read_only:
        raise BadRequest(f"Cannot update read-only attribute {read_only[0]}")
    return RuleUpdate(description=_text(body["description"]) if "description" in body else None)


# quotas ---------------------------------------------------------------------------------------
def parse_quota(body: dict[str, Any]) -> dict[str, int]:
    """New limits by resource name; the id keys clients echo back are ignored."""
    changes: dict[str, int] = {}
    for name, value in body.items():
        if name in ("project_id", "tenant_id", "id"):
            continue
        if name not in QUOTA_DEFAULTS:
            raise BadRequest(f"Unrecognized attribute(s) '{name}'")
        try:
            changes[name] = int(value)
        except (TypeError, ValueError):
            raise BadRequest(f"Invalid input for {name}. Reason: '{value}' is not an integer.") from None
        if changes[name] < -1:
            raise BadRequest(f"Invalid input for {name}. Reason: '{value}' should be >= -1.")
    return changes


# subnet updates -------------------------------------------------------------------------------
SUBNET_UPDATE_ATTRS = frozenset({"name", "description", "gateway_ip", "allocation_pools", "dns_nameservers",
                                 "host_routes", "enable_dhcp"})
# Attributes a subnet has but Neutron never lets a PUT change.
SUBNET_READ_ONLY = frozenset({"id", "network_id", "cidr", "ip_version", "project_id", "tenant_id", "subnetpool_id",
                              "ipv6_ra_mode", "ipv6_address_mode", "prefixlen", "created_at", "updated_at",
                              "revision_number"})


@dataclass(slots=True, frozen=True)
class SubnetUpdate:
    """Only the attributes the request names; None leaves one as it is (`gateway_set`: the request names
    `gateway_ip`, whose None then removes the gateway)."""

    name: str | None = None
    description: str | None = None
    gateway_set: bool = False
    gateway_ip: str | None = None
    allocation_pools: tuple[tuple[str, str], ...] | None = None
    dns_nameservers: tuple[str, ...] | None = None
    host_routes: tuple[tuple[str, str], ...] | None = None
    enable_dhcp: bool | None = None


def _refuse_read_only(body: dict[str, Any], allowed: frozenset[str], read_only: frozenset[str]) -> None:
    """Neutron's PUT: unknown attributes, then read-only ones, are a 400."""
    _check_attrs(body, allowed | read_only)
    named = sorted(set(body) & read_only)
    if named:
        raise BadRequest(f"Cannot update read-only attribute {named[0]}", error_type="HTTPBadRequest")


def parse_subnet_update(body: dict[str, Any]) -> SubnetUpdate:
    _refuse_read_only(body, SUBNET_UPDATE_ATTRS, SUBNET_READ_ONLY)
    gateway = body.get("gateway_ip")
    pools = body.get("allocation_pools")
    return SubnetUpdate(
        name=_text(body["name"]) if "name" in body else None,
        description=_text(body["description"]) if "description" in body else None,
        gateway_set="gateway_ip" in body,
        gateway_ip=_address("gateway_ip", gateway) if gateway not in (None, "") else None,
        allocation_pools=_allocation_pools(pools) if "allocation_pools" in body else None,
        dns_nameservers=_nameservers(body["dns_nameservers"] or []) if "dns_nameservers" in body else None,
        host_routes=_host_routes(body["host_routes"] or []) if "host_routes" in body else None,
        enable_dhcp=_bool("enable_dhcp", body["enable_dhcp"]) if "enable_dhcp" in body else None,
    )


# routers --------------------------------------------------------------------------------------
ROUTER_ATTRS = frozenset({"name", "description", "admin_state_up", "external_gateway_info", "distributed", "ha",
                          "project_id", "tenant_id"})
ROUTER_UPDATE_ATTRS = frozenset({"name", "description", "admin_state_up", "external_gateway_info", "distributed",
                                 "ha", "routes"})
ROUTER_READ_ONLY = frozenset({"id", "project_id", "tenant_id", "status", "created_at", "updated_at",
                              "revision_number", "availability_zones"})
GATEWAY_ATTRS = frozenset({"network_id", "enable_snat", "external_fixed_ips"})
MAX_ROUTES = 30  # Neutron's `max_routes`


@dataclass(slots=True, frozen=True)
class GatewayInfo:
    """`external_gateway_info`; enable_snat / external_fixed_ips None: not named (both are admin's to set)."""

    network_id: str
    enable_snat: bool | None = None
    external_fixed_ips: list[FixedIp] | None = None


@dataclass(slots=True, frozen=True)
class RouterCreate:
    name: str = ""
    description: str = ""
    admin_state_up: bool = True
    gateway: GatewayInfo | None = None
    distributed: bool | None = None  # None: not named (naming one at all is admin's)
    ha: bool | None = None
    project_id: str | None = None


@dataclass(slots=True, frozen=True)
class RouterUpdate:
    """Only the attributes the request names (`gateway_set`: it names `external_gateway_info`, whose None or
    {} then clears the gateway)."""

    name: str | None = None
    description: str | None = None
    admin_state_up: bool | None = None
    gateway_set: bool = False
    gateway: GatewayInfo | None = None
    distributed: bool | None = None
    ha: bool | None = None
    routes: tuple[tuple[str, str], ...] | None = None  # (destination CIDR, nexthop)


@dataclass(slots=True, frozen=True)
class RouterInterface:
    """The body of add_router_interface / remove_router_interface."""

    subnet_id: str | None = None
    port_id: str | None = None


def _gateway(value: Any) -> GatewayInfo | None:
    """Neutron's `type:dict_or_nodata` for external_gateway_info: null or {} is no gateway."""
    if value is None or value == {}:
        return None
    if not isinstance(value, dict):
        raise _invalid("external_gateway_info", f"'{value}' is not a dictionary.")
    unknown = sorted(set(value) - GATEWAY_ATTRS)
    if unknown or not value.get("network_id"):
        raise _invalid("external_gateway_info", "Validation of dictionary's keys failed. Expected keys: "
                       f"{{'network_id'}} Provided keys: {set(value) or set()}")
    fixed = value.get("external_fixed_ips")
    return GatewayInfo(
        network_id=str(value["network_id"]),
        enable_snat=_bool("enable_snat", value["enable_snat"]) if "enable_snat" in value else None,
        external_fixed_ips=_fixed_ips(fixed) if fixed is not None else None,
    )


def parse_router(body: dict[str, Any]) -> RouterCreate:
    if "routes" in body:
        raise BadRequest("Attribute 'routes' not allowed in POST", error_type="HTTPBadRequest")
    _check_attrs(body, ROUTER_ATTRS)
    return RouterCreate(
        name=_text(body.get("name")), description=_text(body.get("description")),
        admin_state_up=_bool("admin_state_up", body.get("admin_state_up", True)),
        gateway=_gateway(body.get("external_gateway_info")),
        distributed=_bool("distributed", body["distributed"]) if body.get("distributed") is not None else None,
        ha=_bool("ha", body["ha"]) if body.get("ha") is not None else None,
        project_id=_requested_owner(body),
    )


def _routes(value: Any) -> tuple[tuple[str, str], ...]:
    """extraroute's `routes`: host-route shaped entries, at most MAX_ROUTES."""
    routes = _host_routes(value or [])
    if len(routes) > MAX_ROUTES:
        raise BadRequest(f"Invalid input for routes. Reason: Number of routes exceeds the maximum {MAX_ROUTES}.",
                         error_type="HTTPBadRequest")
    return routes


def parse_router_update(body: dict[str, Any]) -> RouterUpdate:
    _refuse_read_only(body, ROUTER_UPDATE_ATTRS, ROUTER_READ_ONLY)

    def flag(key: str) -> bool | None:
        return _bool(key, body[key]) if body.get(key) is not None else None

    return RouterUpdate(
        name=_text(body["name"]) if "name" in body else None,
        description=_text(body["description"]) if "description" in body else None,
        admin_state_up=flag("admin_state_up"), distributed=flag("distributed"), ha=flag("ha"),
        gateway_set="external_gateway_info" in body, gateway=_gateway(body.get("external_gateway_info")),
        routes=_routes(body["routes"]) if "routes" in body else None,
    )


def parse_router_interface(body: Any) -> RouterInterface:
    """Neutron's `_validate_interface_info`: a subnet or a port, not both, not neither."""
    if not isinstance(body, dict):
        body = {}
    subnet_id, port_id = _optional_text(body.get("subnet_id")), _optional_text(body.get("port_id"))
    if not subnet_id and not port_id:
        raise BadRequest("Bad router request: Either subnet_id or port_id must be specified.")
    return RouterInterface(subnet_id=subnet_id, port_id=port_id)


# floating IPs ---------------------------------------------------------------------------------
FLOATINGIP_ATTRS = frozenset({"floating_network_id", "floating_ip_address", "subnet_id", "port_id",
                              "fixed_ip_address", "description", "project_id", "tenant_id"})
FLOATINGIP_UPDATE_ATTRS = frozenset({"port_id", "fixed_ip_address", "description"})
FLOATINGIP_READ_ONLY = frozenset({"id", "floating_network_id", "floating_ip_address", "subnet_id", "router_id",
                                  "status", "project_id", "tenant_id", "created_at", "updated_at",
                                  "revision_number", "port_details", "port_forwardings"})


@dataclass(slots=True, frozen=True)
class FloatingIpCreate:
    floating_network_id: str
    floating_ip_address: str | None = None  # asking for one is admin's
    subnet_id: str | None = None
    port_id: str | None = None
    fixed_ip_address: str | None = None
    description: str = ""
    project_id: str | None = None


@dataclass(slots=True, frozen=True)
class FloatingIpUpdate:
    """`port_set`: the request names `port_id` (None then disassociates)."""

    port_set: bool = False
    port_id: str | None = None
    fixed_ip_address: str | None = None
    description: str | None = None


def parse_floating_ip(body: dict[str, Any]) -> FloatingIpCreate:
    _check_attrs(body, FLOATINGIP_ATTRS)
    if not body.get("floating_network_id"):
        raise BadRequest("Failed to parse request. Required attribute 'floating_network_id' not specified",
                         error_type="HTTPBadRequest")
    address, fixed = body.get("floating_ip_address"), body.get("fixed_ip_address")
    return FloatingIpCreate(
        floating_network_id=str(body["floating_network_id"]),
        floating_ip_address=_address("floating_ip_address", address) if address else None,
        subnet_id=_optional_text(body.get("subnet_id")), port_id=_optional_text(body.get("port_id")),
        fixed_ip_address=_address("fixed_ip_address", fixed) if fixed else None,
        description=_text(body.get("description")), project_id=_requested_owner(body),
    )


def parse_floating_ip_update(body: dict[str, Any]) -> FloatingIpUpdate:
    _refuse_read_only(body, FLOATINGIP_UPDATE_ATTRS, FLOATINGIP_READ_ONLY)
    fixed = body.get("fixed_ip_address")
    return FloatingIpUpdate(
        port_set="port_id" in body, port_id=_optional_text(body.get("port_id")),
        fixed_ip_address=_address("fixed_ip_address", fixed) if fixed else None,
        description=_text(body["description"]) if "description" in body else None,
    )


# subnet pools ---------------------------------------------------------------------------------
SUBNETPOOL_ATTRS = frozenset({
    "name", "prefixes", "min_prefixlen", "max_prefixlen", "default_prefixlen", "description", "shared",
    "is_default", "default_quota", "address_scope_id", "project_id", "tenant_id",
})
SUBNETPOOL_UPDATE_ATTRS = SUBNETPOOL_ATTRS - {"shared", "project_id", "tenant_id"}


def _prefix_length(name: str, value: Any) -> int | None:
    """A prefix length (Neutron also takes a numeric string); None when the body gives none."""
    if value is None:
        return None
    try:
        length = int(value)
    except (TypeError, ValueError):
        raise _invalid(name, f"'{value}' is not an integer") from None
    if isinstance(value, bool) or length < 0:
        raise _invalid(name, f"'{value}' should be non-negative")
    return length


def _subnetpool(body: dict[str, Any], allowed: frozenset[str], create: bool) -> SubnetPoolRequest:
    _check_attrs(body, allowed)
    if body.get("address_scope_id") is not None:
        raise BadRequest(f"Address scope {body['address_scope_id']} could not be found",
                         error_type="AddressScopeNotFound")
    prefixes = body.get("prefixes")
    if prefixes is None and create:
        raise BadRequest("Failed to parse request. Required attribute 'prefixes' not specified")
    if prefixes is not None and (not isinstance(prefixes, list) or not all(isinstance(p, str) for p in prefixes)):
        raise _invalid("prefixes", f"'{prefixes}' is not a list of CIDRs")
    quota = body.get("default_quota")
    flags = {key: _bool(key, body[key]) for key in ("shared", "is_default") if body.get(key) is not None}
    return SubnetPoolRequest(
        name=_text(body["name"]) if "name" in body else None, prefixes=prefixes,
        min_prefixlen=_prefix_length("min_prefixlen", body.get("min_prefixlen")),
        max_prefixlen=_prefix_length("max_prefixlen", body.get("max_prefixlen")),
        default_prefixlen=_prefix_length("default_prefixlen", body.get("default_prefixlen")),
        description=_text(body["description"]) if "description" in body else None,
        default_quota=_prefix_length("default_quota", quota), project_id=_requested_owner(body), **flags)


def parse_subnetpool(body: dict[str, Any]) -> SubnetPoolRequest:
    return _subnetpool(body, SUBNETPOOL_ATTRS, create=True)


def parse_subnetpool_update(body: dict[str, Any]) -> SubnetPoolRequest:
    return _subnetpool(body, SUBNETPOOL_UPDATE_ATTRS, create=False)
