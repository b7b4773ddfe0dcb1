"""Neutron's state: networks, subnets, ports, security groups and their rules, per-project quotas.

Every project gets, on its first use of the network service, a `default` security group (with
Neutron's four default rules) and a private network `private` with subnet `private-subnet`
(10.0.0.0/16, room for a benchmark's 10,000 servers). One shared external network `public`, owned by
admin, exists from the start.

Rules are the bulk of the state (a benchmark holds 10,000), so they are slotted records indexed by
group, and each group keeps a fingerprint table so duplicate detection never scans its rules. Ports
are indexed by device (every server GET reads a server's ports), and each subnet hands out addresses
from a cursor plus a heap of released ones, so neither a read nor an allocation scans every port.
"""

from __future__ import annotations

import functools
import heapq
import ipaddress
import itertools
import random
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from fakecloud.errors import BadRequest, CloudError, Conflict, Forbidden, NotFound, QuotaExceeded
from fakecloud.identity.backend import stable_id
from fakecloud.state import Backend

# Neutron's quota resource names -> the config field that sets their default (None: a fixed default).
QUOTA_DEFAULTS: dict[str, tuple[str | None, int]] = {
    "network": (None, 100),
    "subnet": (None, 100),
    "port": ("ports", 200),
    "router": (None, 10),
    "floatingip": (None, 50),
    "security_group": ("security_groups", 50),
    "security_group_rule": ("security_group_rules", 500),
    "rbac_policy": (None, 10),
    "subnetpool": (None, -1),
}

# IP protocol names Neutron accepts (neutron-lib IP_PROTOCOL_MAP) and their numbers.
PROTOCOLS: dict[str, int] = {
    "ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "hopopt": 0, "icmp": 1, "igmp": 2, "ip": 0,
    "ipip": 4, "ipv6-encap": 41, "ipv6-frag": 44, "ipv6-icmp": 58, "icmpv6": 58, "ipv6-nonxt": 59,
    "ipv6-opts": 60, "ipv6-route": 43, "ospf": 89, "pgm": 113, "rsvp": 46, "sctp": 132, "tcp": 6,
    "udp": 17, "udplite": 136, "vrrp": 112,
}
_NUMBER_TO_NAME = {num: name for name, num in PROTOCOLS.items() if name not in ("hopopt", "icmpv6")}
PORT_PROTOCOLS = frozenset({6, 17, 33, 132, 136})  # tcp, udp, dccp, sctp, udplite
ICMP_PROTOCOLS = frozenset({1, 58})
IPV6_ONLY_PROTOCOLS = frozenset({41, 44, 58, 59, 60, 43})
ANY_ADDRESS = frozenset({"0.0.0.0/0", "::/0"})

RULE_ATTRS = frozenset({
    "security_group_id", "direction", "ethertype", "protocol", "port_range_min", "port_range_max",
    "remote_ip_prefix", "remote_group_id", "remote_address_group_id", "description", "project_id", "tenant_id",
})
GROUP_ATTRS = frozenset({"name", "description", "stateful", "project_id", "tenant_id"})
PORT_ATTRS = frozenset({
    "network_id", "name", "description", "admin_state_up", "device_id", "device_owner", "fixed_ips",
    "security_groups", "mac_address", "project_id", "tenant_id", "port_security_enabled",
})


def new_id() -> str:
    return str(uuid.uuid4())


def dashed_stable_id(kind: str, name: str) -> str:
    return str(uuid.UUID(stable_id(kind, name)))


ADMIN_PROJECT = stable_id("project", "admin")


@dataclass(slots=True)
class Network:
    id: str
    name: str
    project_id: str
    created_at: str
    updated_at: str
    subnets: list[str] = field(default_factory=list)
    shared: bool = False
    external: bool = False  # `router:external` on the wire
    status: str = "ACTIVE"
    mtu: int = 1450
    admin_state_up: bool = True
    description: str = ""
    revision_number: int = 1


@dataclass(slots=True)
class Subnet:
    id: str
    name: str
    network_id: str
    project_id: str
    cidr: str
    gateway_ip: str | None
    pool_start: str
    pool_end: str
    created_at: str
    updated_at: str
    ip_version: int = 4
    enable_dhcp: bool = True
    description: str = ""
    revision_number: int = 0


@dataclass(slots=True)
class Port:
    id: str
    name: str
    network_id: str
    project_id: str
    device_id: str
    device_owner: str
    mac_address: str
    fixed_ips: list[dict[str, str]]
    security_groups: list[str]
    created_at: str
    updated_at: str
    status: str = "ACTIVE"
    admin_state_up: bool = True
    description: str = ""
    port_security_enabled: bool = True
    revision_number: int = 1
    # Nova made this port for a server (deleted with it); a port the user made and Nova bound is only unbound.
    created_by_nova: bool = False


@dataclass(slots=True)
class SecurityGroup:
    id: str
    name: str
    project_id: str
    description: str
    created_at: str
    updated_at: str
    stateful: bool = True
    revision_number: int = 1


@dataclass(slots=True)
class SecurityGroupRule:
    id: str
    security_group_id: str
    project_id: str
    direction: str
    ethertype: str
    protocol: str | None
    port_range_min: int | None
    port_range_max: int | None
    remote_ip_prefix: str | None
    remote_group_id: str | None
    remote_address_group_id: str | None
    description: str
    created_at: str
    revision_number: int = 0


def _protocol_key(protocol: str | None, ethertype: str) -> str:
    """A protocol's canonical name for duplicate detection ("6" and "tcp" are the same rule)."""
    if protocol is None:
        return "+"
    number = PROTOCOLS.get(protocol)
    if number is None and protocol.isdigit():
        number = int(protocol)
    if number is None:
        return protocol
    if ethertype == "IPv6" and number == 1:
        number = 58
    return _NUMBER_TO_NAME.get(number, str(number))


def rule_key(rule: SecurityGroupRule) -> tuple:
    """What makes two rules the same in Neutron's eyes (description and id do not count)."""
    prefix = None if rule.remote_ip_prefix in ANY_ADDRESS else rule.remote_ip_prefix
    return (rule.direction, rule.ethertype, _protocol_key(rule.protocol, rule.ethertype), rule.port_range_min,
            rule.port_range_max, prefix, rule.remote_group_id, rule.remote_address_group_id)


def _port_value(name: str, value: Any) -> int | None:
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


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    raise BadRequest(f"Invalid input for {name}. Reason: '{value}' cannot be converted to boolean.")


def _check_attrs(body: dict[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BadRequest(f"Unrecognized attribute(s) '{', '.join(unknown)}'", error_type="HTTPBadRequest")


class NetworkBackend(Backend):
    name = "network"

    def reset(self) -> None:
        self.networks: dict[str, Network] = {}
        self.subnets: dict[str, Subnet] = {}
        self.ports: dict[str, Port] = {}
        self.groups: dict[str, SecurityGroup] = {}
        self.rules: dict[str, SecurityGroupRule] = {}
        self.quota_overrides: dict[str, dict[str, int]] = {}
        self._random = random.Random()
        self._reindex()
        now = self.now()
        public = Network(dashed_stable_id("network", "public"), "public", ADMIN_PROJECT, now, now,
                         shared=True, external=True, mtu=1500)
        self.networks[public.id] = public
        self._add_subnet(public, dashed_stable_id("subnet", "public-subnet"), "public-subnet", "172.24.4.0/24")

    def _reindex(self) -> None:
        """Rebuild every derived index from the primary dicts (after reset or load)."""
        self._rules_by_group: dict[str, dict[str, SecurityGroupRule]] = {g: {} for g in self.groups}
        self._keys_by_group: dict[str, dict[tuple, str]] = {g: {} for g in self.groups}
        self._rule_count: Counter[str] = Counter()
        for rule in self.rules.values():
            self._index_rule(rule)
        self._default_groups: dict[str, str] = {
            g.project_id: g.id for g in self.groups.values() if g.name == "default"
        }
        self._private: dict[str, str] = {
            n.project_id: n.id for n in self.networks.values() if n.name == "private" and not n.shared
        }
        self._allocated: dict[str, set[str]] = {s: set() for s in self.subnets}
        self._cursor: dict[str, int] = {s.id: int(ipaddress.ip_address(s.pool_start)) for s in self.subnets.values()}
        self._released: dict[str, list[int]] = {s: [] for s in self.subnets}
        self._macs: set[str] = set()
        self._port_order = itertools.count()
        self._port_seq: dict[str, int] = {}
        self._ports_by_device: dict[str, dict[str, Port]] = {}
        for port in self.ports.values():
            self._index_port(port)
            self._macs.add(port.mac_address)
            for ip in port.fixed_ips:
                self._allocated.setdefault(ip["subnet_id"], set()).add(ip["ip_address"])

    def _index_port(self, port: Port) -> None:
        """Record the port under its device; the sequence keeps `ports_of_device` in creation order."""
        if port.id not in self._port_seq:
            self._port_seq[port.id] = next(self._port_order)
        self._ports_by_device.setdefault(port.device_id, {})[port.id] = port

    def _unindex_port(self, port: Port) -> None:
        ports = self._ports_by_device.get(port.device_id)
        if ports is not None:
            ports.pop(port.id, None)
            if not ports:
                del self._ports_by_device[port.device_id]

    def _set_device(self, port: Port, device_id: str) -> None:
        """The one place a stored port changes device, so the device index follows."""
        if port.device_id != device_id:
            self._unindex_port(port)
            port.device_id = device_id
            self._index_port(port)

    def _index_rule(self, rule: SecurityGroupRule) -> None:
        self._rules_by_group.setdefault(rule.security_group_id, {})[rule.id] = rule
        self._keys_by_group.setdefault(rule.security_group_id, {})[rule_key(rule)] = rule.id
        self._rule_count[rule.project_id] += 1

    def _unindex_rule(self, rule: SecurityGroupRule) -> None:
        self._rules_by_group.get(rule.security_group_id, {}).pop(rule.id, None)
        self._keys_by_group.get(rule.security_group_id, {}).pop(rule_key(rule), None)
        self._rule_count[rule.project_id] -= 1

    # per-project bootstrap ------------------------------------------------------------------
    def touch(self, project_id: str) -> None:
        """First use of Neutron by a project creates its default group and private network."""
        if project_id not in self._default_groups:
            self.default_security_group(project_id)
        if project_id not in self._private:
            self.default_network(project_id)

    def default_network(self, project_id: str) -> Network:
        """The project's own `private` network (10.0.0.0/16), created on first use."""
        network_id = self._private.get(project_id)
        if network_id in self.networks:
            return self.networks[network_id]
        now = self.now()
        network = Network(dashed_stable_id("network", f"private:{project_id}"), "private", project_id, now, now)
        self.networks[network.id] = network
        self._private[project_id] = network.id
        self._add_subnet(network, dashed_stable_id("subnet", f"private:{project_id}"), "private-subnet",
                         "10.0.0.0/16")
        return network

    def default_security_group(self, project_id: str) -> SecurityGroup:
        """The project's `default` group with Neutron's four default rules, created on first use."""
        group_id = self._default_groups.get(project_id)
        if group_id in self.groups:
            return self.groups[group_id]
        group = self._new_group(project_id, "default", "Default security group", True)
        self._default_groups[project_id] = group.id
        for ethertype in ("IPv4", "IPv6"):
            self._store_rule(self._new_rule(group, "ingress", ethertype, remote_group_id=group.id))
        return group

    # networks and subnets -------------------------------------------------------------------
    def _visible(self, owner: str, project_id: str | None, admin: bool = False) -> bool:
        return project_id is None or admin or owner == project_id

    def get_network(self, network_id: str, project_id: str | None, admin: bool = False) -> Network:
        network = self.networks.get(network_id)
        if network is None or not (network.shared or self._visible(network.project_id, project_id, admin)):
            raise NotFound(f"Network {network_id} could not be found.", error_type="NetworkNotFound")
        return network

    def list_networks(self, project_id: str, admin: bool) -> list[Network]:
        self.touch(project_id)
        return [n for n in self.networks.values() if admin or n.shared or n.project_id == project_id]

    def create_network(self, project_id: str, admin: bool, body: dict[str, Any]) -> Network:
        self.touch(project_id)
        owner = self._owner(project_id, admin, body)
        self._check_quota(owner, "network", 1)
        now = self.now()
        network = Network(new_id(), str(body.get("name") or ""), owner, now, now,
                          shared=_bool("shared", body.get("shared", False)),
                          external=_bool("router:external", body.get("router:external", False)),
                          mtu=int(body.get("mtu") or 1450),
                          admin_state_up=_bool("admin_state_up", body.get("admin_state_up", True)),
                          description=str(body.get("description") or ""))
        if (network.shared or network.external) and not admin:
            raise Forbidden("(rule:create_network:shared) is disallowed by policy")
        self.networks[network.id] = network
        return network

    def delete_network(self, network_id: str, project_id: str, admin: bool) -> None:
        network = self.get_network(network_id, project_id, admin)
        if not admin and network.project_id != project_id:
            raise Forbidden("(rule:delete_network) is disallowed by policy")
        if any(p.network_id == network.id for p in self.ports.values()):
            raise Conflict(f"Unable to complete operation on network {network.id}. There are one or more ports "
                           "still in use on the network.", error_type="NetworkInUse")
        for subnet_id in network.subnets:
            self.subnets.pop(subnet_id, None)
            self._allocated.pop(subnet_id, None)
            self._cursor.pop(subnet_id, None)
            self._released.pop(subnet_id, None)
        del self.networks[network.id]
        if self._private.get(network.project_id) == network.id:
            del self._private[network.project_id]

    def _add_subnet(self, network: Network, subnet_id: str, name: str, cidr: str,
                    gateway_ip: str | None = "") -> Subnet:
        net = ipaddress.ip_network(cidr, strict=False)
        hosts = [net.network_address + 1, net.broadcast_address - 1]
        gateway = str(hosts[0]) if gateway_ip == "" else gateway_ip
        start = hosts[0] + 1 if gateway == str(hosts[0]) else hosts[0]
        now = self.now()
        subnet = Subnet(subnet_id, name, network.id, network.project_id, str(net), gateway, str(start),
                        str(hosts[1]), now, now, ip_version=net.version)
        self.subnets[subnet.id] = subnet
        self._allocated[subnet.id] = set()
        self._cursor[subnet.id] = int(start)
        self._released[subnet.id] = []
        network.subnets.append(subnet.id)
        return subnet

    def create_subnet(self, project_id: str, admin: bool, body: dict[str, Any]) -> Subnet:
        self.touch(project_id)
        network = self.get_network(str(body.get("network_id")), project_id, admin)
        if not admin and network.project_id != project_id:
            raise Forbidden("(rule:create_subnet) is disallowed by policy")
        try:
            cidr = ipaddress.ip_network(str(body.get("cidr")), strict=True)
        except ValueError:
            raise BadRequest(f"Invalid input for cidr. Reason: '{body.get('cidr')}' is not a valid IP subnet.") \
                from None
        self._check_quota(network.project_id, "subnet", 1)
        gateway = body.get("gateway_ip", "")
        return self._add_subnet(network, new_id(), str(body.get("name") or ""), str(cidr), gateway)

    def get_subnet(self, subnet_id: str, project_id: str, admin: bool) -> Subnet:
        subnet = self.subnets.get(subnet_id)
        network = self.networks.get(subnet.network_id) if subnet else None
        if subnet is None or network is None or not (network.shared or self._visible(subnet.project_id,
                                                                                      project_id, admin)):
            raise NotFound(f"Subnet {subnet_id} could not be found.", error_type="SubnetNotFound")
        return subnet

    def list_subnets(self, project_id: str, admin: bool) -> list[Subnet]:
        self.touch(project_id)
        return [s for s in self.subnets.values()
                if admin or s.project_id == project_id or self.networks[s.network_id].shared]

    # ports ----------------------------------------------------------------------------------
    def _next_free(self, subnet: Subnet) -> str | None:
        """The lowest free pool address without scanning the ports: below the cursor every address is taken
        or on the released heap (entries taken again since are dropped here lazily); from the cursor up, the
        cursor only moves forward past taken addresses. Amortised O(1) plus O(log released) for the heap."""
        taken = self._allocated.setdefault(subnet.id, set())
        released = self._released.setdefault(subnet.id, [])
        make = ipaddress.IPv4Address if subnet.ip_version == 4 else ipaddress.IPv6Address
        while released:
            text = str(make(released[0]))
            if text not in taken:
                return text
            heapq.heappop(released)
        end = int(ipaddress.ip_address(subnet.pool_end))
        cursor = self._cursor.get(subnet.id, int(ipaddress.ip_address(subnet.pool_start)))
        while cursor <= end and str(make(cursor)) in taken:
            cursor += 1
        self._cursor[subnet.id] = cursor
        return str(make(cursor)) if cursor <= end else None

    def _take_ip(self, subnet_id: str, address: str) -> None:
        self._allocated.setdefault(subnet_id, set()).add(address)

    def _release_ip(self, subnet_id: str, address: str) -> None:
        """Free an address; one the cursor has passed goes on the heap so it is handed out again first."""
        taken = self._allocated.get(subnet_id)
        subnet = self.subnets.get(subnet_id)
        if taken is None or address not in taken:
            return
        taken.discard(address)
        if subnet is None:
            return
        number = int(ipaddress.ip_address(address))
        if int(ipaddress.ip_address(subnet.pool_start)) <= number < self._cursor.get(subnet_id, 0):
            heapq.heappush(self._released.setdefault(subnet_id, []), number)

    def _allocate(self, network: Network, requests: list[dict[str, Any]] | None) -> list[dict[str, str]]:
        """Choose and take the port's addresses; on any refusal the ones already taken are given back."""
        chosen: list[dict[str, str]] = []
        try:
            self._choose_ips(network, requests, chosen)
        except Exception:
            for ip in chosen:
                self._release_ip(ip["subnet_id"], ip["ip_address"])
            raise
        return chosen

    def _choose_ips(self, network: Network, requests: list[dict[str, Any]] | None,
                    chosen: list[dict[str, str]]) -> None:
        """Fill `chosen`, taking each address as it is picked (so a second request cannot pick it again)."""
        if not network.subnets:
            return
        wanted = requests if requests else [{"subnet_id": network.subnets[0]}]
        for item in wanted:
            subnet_id = item.get("subnet_id") or network.subnets[0]
            subnet = self.subnets.get(subnet_id)
            if subnet is None or subnet.network_id != network.id:
                raise BadRequest(f"Invalid input for operation: Failed to create port on network {network.id}, "
                                 f"because fixed_ips included invalid subnet {subnet_id}.", error_type="InvalidInput")
            taken = self._allocated.setdefault(subnet.id, set())
            address = item.get("ip_address")
            if address:
                try:
                    ip = ipaddress.ip_address(str(address))
                except ValueError:
                    raise BadRequest(f"Invalid input for ip_address. Reason: '{address}' is not a valid IP "
                                     "address.") from None
                if ip not in ipaddress.ip_network(subnet.cidr) or str(ip) == subnet.gateway_ip:
                    raise BadRequest(f"IP address {address} is not a valid IP for the specified subnet.",
                                     error_type="InvalidIpForSubnet")
                if str(ip) in taken:
                    raise Conflict(f"IP address {address} already allocated in subnet {subnet.id}",
                                   error_type="IpAddressAlreadyAllocated")
                free = str(ip)
            else:
                free = self._next_free(subnet)
                if free is None:
                    raise Conflict(f"No more IP addresses available on network {network.id}.",
                                   error_type="IpAddressGenerationFailure")
            self._take_ip(subnet.id, free)
            chosen.append({"subnet_id": subnet.id, "ip_address": free})

    def _mac(self) -> str:
        while True:
            mac = "fa:16:3e:" + ":".join(f"{self._random.randrange(256):02x}" for _ in range(3))
            if mac not in self._macs:
                return mac

    def _port_groups(self, project_id: str, group_ids: list[str]) -> list[str]:
        missing = [g for g in group_ids if g not in self.groups or self.groups[g].project_id != project_id]
        if missing:
            raise NotFound(f"Security group {', '.join(missing)} does not exist", error_type="SecurityGroupNotFound")
        return list(dict.fromkeys(group_ids))

    def create_port(
        self,
        project_id: str,
        network_id: str,
        device_id: str,
        device_owner: str = "compute:nova",
        security_group_ids: list[str] | None = None,
        fixed_ip: str | None = None,
        *,
        name: str = "",
        description: str = "",
        admin_state_up: bool = True,
        fixed_ips: list[dict[str, Any]] | None = None,
        mac_address: str | None = None,
        admin: bool = False,
        created_by_nova: bool = True,
    ) -> Port:
        """Allocate a port: next free IP of the network's first subnet, a fresh MAC, the default group.

        Nova calls this for the ports it makes for a server; POST /ports passes `created_by_nova=False`."""
        self.touch(project_id)
        network = self.get_network(network_id, project_id, admin)
        self._check_quota(project_id, "port", 1)
        if security_group_ids is None:
            groups = [self.default_security_group(project_id).id]
        else:
            groups = self._port_groups(project_id, security_group_ids)
        if fixed_ip is not None:
            fixed_ips = [{"ip_address": fixed_ip}]
        if mac_address is not None and mac_address in self._macs:
            raise Conflict(f"Unable to complete operation for network {network.id}. The mac address "
                           f"{mac_address} is in use.", error_type="MacAddressInUse")
        ips = self._allocate(network, fixed_ips)
        now = self.now()
        port = Port(new_id(), name, network.id, project_id, device_id, device_owner, mac_address or self._mac(),
                    ips, groups, now, now, status="ACTIVE" if device_id else "DOWN",
                    admin_state_up=admin_state_up, description=description, created_by_nova=created_by_nova)
        self.ports[port.id] = port
        self._index_port(port)
        self._macs.add(port.mac_address)
        return port

    def create_port_from_body(self, project_id: str, admin: bool, body: dict[str, Any]) -> Port:
        """POST /ports: Neutron's attribute checks, then `create_port`."""
        _check_attrs(body, PORT_ATTRS)
        if not body.get("network_id"):
            raise BadRequest("Failed to parse request. Required attribute 'network_id' not specified")
        owner = self._owner(project_id, admin, body)
        groups = body.get("security_groups")
        fixed_ips = body.get("fixed_ips")
        if fixed_ips is not None and not isinstance(fixed_ips, list):
            raise BadRequest(f"Invalid input for fixed_ips. Reason: Invalid data format for fixed IP: '{fixed_ips}'.")
        return self.create_port(
            owner, str(body["network_id"]), str(body.get("device_id") or ""), str(body.get("device_owner") or ""),
            list(groups) if groups is not None else None, name=str(body.get("name") or ""),
            description=str(body.get("description") or ""),
            admin_state_up=_bool("admin_state_up", body.get("admin_state_up", True)),
            fixed_ips=fixed_ips, mac_address=body.get("mac_address"), admin=admin, created_by_nova=False,
        )

    def get_port(self, port_id: str, project_id: str | None, admin: bool = False) -> Port:
        port = self.ports.get(port_id)
        if port is None or not self._visible(port.project_id, project_id, admin):
            raise NotFound(f"Port {port_id} could not be found.", error_type="PortNotFound")
        return port

    def list_ports(self, project_id: str, admin: bool) -> list[Port]:
        self.touch(project_id)
        return [p for p in self.ports.values() if admin or p.project_id == project_id]

    def update_port(self, port_id: str, project_id: str, admin: bool, body: dict[str, Any]) -> Port:
        port = self.get_port(port_id, project_id, admin)
        _check_attrs(body, PORT_ATTRS - {"network_id", "mac_address", "project_id", "tenant_id"})
        if "fixed_ips" in body:
            self.reassign_fixed_ips(port, list(body["fixed_ips"] or []))
        if "security_groups" in body:
            port.security_groups = self._port_groups(port.project_id, list(body["security_groups"] or []))
        for key in ("name", "description", "device_owner"):
            if key in body:
                setattr(port, key, str(body[key] or ""))
        if "device_id" in body:
            self._set_device(port, str(body["device_id"] or ""))
        if "admin_state_up" in body:
            port.admin_state_up = _bool("admin_state_up", body["admin_state_up"])
        if "port_security_enabled" in body:
            port.port_security_enabled = _bool("port_security_enabled", body["port_security_enabled"])
        port.updated_at = self.now()
        port.revision_number += 1
        return port

    def reassign_fixed_ips(self, port: Port, requests: list[dict[str, Any]] | None) -> None:
        """New fixed IPs for a port (None: one automatic address; []: none). The old addresses are
        given back first; if the new ones are refused (in use, outside the subnet) the old are kept."""
        network = self.get_network(port.network_id, None)
        old = list(port.fixed_ips)
        for ip in old:
            self._release_ip(ip["subnet_id"], ip["ip_address"])
        try:
            port.fixed_ips = self._allocate(network, requests) if requests != [] else []
        except CloudError:
            for ip in old:
                self._take_ip(ip["subnet_id"], ip["ip_address"])
            raise
        port.updated_at = self.now()
        port.revision_number += 1

    def delete_port(self, port_id: str, project_id: str, admin: bool) -> None:
        self._drop_port(self.get_port(port_id, project_id, admin))

    def _drop_port(self, port: Port) -> None:
        del self.ports[port.id]
        self._unindex_port(port)
        self._port_seq.pop(port.id, None)
        self._macs.discard(port.mac_address)
        for ip in port.fixed_ips:
            self._release_ip(ip["subnet_id"], ip["ip_address"])

    def ports_of_device(self, device_id: str) -> list[Port]:
        """The device's ports in creation order, read from the device index."""
        ports = self._ports_by_device.get(device_id)
        if not ports:
            return []
        return sorted(ports.values(), key=lambda p: self._port_seq[p.id])

    def delete_ports_of_device(self, device_id: str) -> None:
        """Nova deleting a server: the ports Nova made go; ports the user made and Nova bound stay, unbound."""
        for port in self.ports_of_device(device_id):
            if not port.device_owner.startswith("compute:"):
                continue
            if port.created_by_nova:
                self._drop_port(port)
            else:
                self._set_device(port, "")
                port.device_owner = ""
                port.status = "DOWN"
                port.updated_at = self.now()
                port.revision_number += 1

    def bind_port(self, port_id: str, device_id: str) -> Port:
        port = self.get_port(port_id, None)
        if port.device_id and port.device_id != device_id:
            raise Conflict(f"Port {port.id} is still in use.", error_type="PortInUse")
        self._set_device(port, device_id)
        port.device_owner = "compute:nova"
        port.status = "ACTIVE"
        port.updated_at = self.now()
        port.revision_number += 1
        return port

    def set_port_security_groups(self, port_id: str, group_ids: list[str]) -> None:
        port = self.get_port(port_id, None)
        port.security_groups = self._port_groups(port.project_id, group_ids)
        port.updated_at = self.now()
        port.revision_number += 1

    def server_addresses(self, device_id: str) -> dict[str, list[dict[str, Any]]]:
        """Nova's `addresses`: fixed IPs of the server's ports, grouped by network name."""
        addresses: dict[str, list[dict[str, Any]]] = {}
        for port in self.ports_of_device(device_id):
            network = self.networks.get(port.network_id)
            entries = addresses.setdefault(network.name if network else port.network_id, [])
            for ip in port.fixed_ips:
                version = ipaddress.ip_address(ip["ip_address"]).version
                entries.append({"addr": ip["ip_address"], "version": version, "OS-EXT-IPS:type": "fixed",
                                "OS-EXT-IPS-MAC:mac_addr": port.mac_address})
        return addresses

    # security groups ------------------------------------------------------------------------
    def _new_group(self, project_id: str, name: str, description: str, stateful: bool) -> SecurityGroup:
        now = self.now()
        group = SecurityGroup(new_id(), name, project_id, description, now, now, stateful)
        self.groups[group.id] = group
        self._rules_by_group[group.id] = {}
        self._keys_by_group[group.id] = {}
        for ethertype in ("IPv4", "IPv6"):
            self._store_rule(self._new_rule(group, "egress", ethertype))
        return group

    def _new_rule(self, group: SecurityGroup, direction: str, ethertype: str, **attrs: Any) -> SecurityGroupRule:
        return SecurityGroupRule(
            new_id(), group.id, group.project_id, direction, ethertype, attrs.get("protocol"),
            attrs.get("port_range_min"), attrs.get("port_range_max"), attrs.get("remote_ip_prefix"),
            attrs.get("remote_group_id"), attrs.get("remote_address_group_id"), attrs.get("description", ""),
            self.now(),
        )

    def _store_rule(self, rule: SecurityGroupRule) -> None:
        self.rules[rule.id] = rule
        self._index_rule(rule)

    def is_default_group(self, group_id: str) -> bool:
        group = self.groups.get(group_id)
        return group is not None and self._default_groups.get(group.project_id) == group_id

    def rules_of_group(self, group_id: str) -> list[SecurityGroupRule]:
        return list(self._rules_by_group.get(group_id, {}).values())

    def get_security_group(self, group_id: str, project_id: str | None, admin: bool = False) -> SecurityGroup:
        group = self.groups.get(group_id)
        if group is None or not self._visible(group.project_id, project_id, admin):
            raise NotFound(f"Security group {group_id} does not exist", error_type="SecurityGroupNotFound")
        return group

    def find_security_group(self, project_id: str, name_or_id: str) -> SecurityGroup:
        """By id, else by unique name within the project (what Nova does with `security_groups`)."""
        self.touch(project_id)
        group = self.groups.get(name_or_id)
        if group is not None and group.project_id == project_id:
            return group
        matches = [g for g in self.groups.values() if g.project_id == project_id and g.name == name_or_id]
        if not matches:
            raise NotFound(f"Security group {name_or_id} does not exist", error_type="SecurityGroupNotFound")
        if len(matches) > 1:
            raise Conflict(f"Multiple security_group matches found for name '{name_or_id}', use an ID to be more "
                           "specific.", error_type="NeutronClientNoUniqueMatch")
        return matches[0]

    def list_security_groups(self, project_id: str, admin: bool) -> list[SecurityGroup]:
        self.touch(project_id)
        return [g for g in self.groups.values() if admin or g.project_id == project_id]

    def create_security_group(self, project_id: str, admin: bool, body: dict[str, Any]) -> SecurityGroup:
        _check_attrs(body, GROUP_ATTRS)
        self.touch(project_id)
        owner = self._owner(project_id, admin, body)
        self.touch(owner)
        name = str(body.get("name") or "")
        if name == "default":
            raise Conflict("Default security group already exists.", error_type="SecurityGroupDefaultAlreadyExists")
        self._check_quota(owner, "security_group", 1)
        stateful = _bool("stateful", body.get("stateful", True))
        return self._new_group(owner, name, str(body.get("description") or ""), stateful)

    def update_security_group(self, group_id: str, project_id: str, admin: bool,
                              body: dict[str, Any]) -> SecurityGroup:
        group = self.get_security_group(group_id, project_id, admin)
        _check_attrs(body, GROUP_ATTRS - {"project_id", "tenant_id"})
        if "name" in body and body["name"] != group.name:
            if self.is_default_group(group.id):
                raise Conflict("Updating default security group not allowed.",
                               error_type="SecurityGroupCannotUpdateDefault")
            if body["name"] == "default":
                raise Conflict("Default security group already exists.",
                               error_type="SecurityGroupDefaultAlreadyExists")
            group.name = str(body["name"] or "")
        if "description" in body:
            group.description = str(body["description"] or "")
        if "stateful" in body:
            stateful = _bool("stateful", body["stateful"])
            if stateful != group.stateful and self.security_group_in_use(group.id):
                raise Conflict(f"Security Group {group.id} in use.", error_type="SecurityGroupInUse")
            group.stateful = stateful
        group.updated_at = self.now()
        group.revision_number += 1
        return group

    def security_group_in_use(self, group_id: str) -> bool:
        return any(group_id in p.security_groups for p in self.ports.values())

    def delete_security_group(self, group_id: str, project_id: str, admin: bool) -> None:
        group = self.get_security_group(group_id, project_id, admin)
        if self.is_default_group(group.id) and not admin:
            raise Conflict("Insufficient rights for removing default security group.",
                           error_type="SecurityGroupCannotRemoveDefault")
        if self.security_group_in_use(group.id):
            raise Conflict(f"Security Group {group.id} in use.", error_type="SecurityGroupInUse")
        for rule in list(self._rules_by_group.get(group.id, {}).values()):
            self._drop_rule(rule)
        # Rules elsewhere that allowed traffic from this group go with it (a foreign key cascade in Neutron).
        for rule in [r for r in self.rules.values() if r.remote_group_id == group.id]:
            self._drop_rule(rule)
            self._touch_group(rule.security_group_id)
        del self.groups[group.id]
        self._rules_by_group.pop(group.id, None)
        self._keys_by_group.pop(group.id, None)
        if self._default_groups.get(group.project_id) == group.id:
            del self._default_groups[group.project_id]

    def _touch_group(self, group_id: str) -> None:
        group = self.groups.get(group_id)
        if group is not None:
            group.revision_number += 1
            group.updated_at = self.now()

    # security group rules -------------------------------------------------------------------
    def _parse_rule(self, project_id: str, admin: bool, body: Any) -> SecurityGroupRule:
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
        pmin = _port_value("port_range_min", body.get("port_range_min"))
        pmax = _port_value("port_range_max", body.get("port_range_max"))
        network = _cidr(body.get("remote_ip_prefix"))
        if ethertype == "IPv6" and protocol in ("icmp", "icmpv6", "1"):
            protocol = "58" if protocol == "1" else "ipv6-icmp"
        self._validate_ports(protocol, pmin, pmax)
        if network is not None and ethertype != f"IPv{network[1]}":
            raise BadRequest(f"Conflicting value ethertype {ethertype} for CIDR {body['remote_ip_prefix']}",
                             error_type="SecurityGroupRuleParameterConflict")
        number = PROTOCOLS.get(protocol, int(protocol) if protocol and protocol.isdigit() else None)
        if number in IPV6_ONLY_PROTOCOLS and ethertype == "IPv4":
            raise BadRequest(f"Invalid ethertype {ethertype} for protocol {protocol}.",
                             error_type="SecurityGroupEthertypeConflictWithProtocol")
        remote_group_id = body.get("remote_group_id") or None
        if network is not None and remote_group_id:
            raise BadRequest("Only remote_ip_prefix or remote_group_id may be provided.",
                             error_type="SecurityGroupRemoteGroupAndRemoteIpPrefix")
        owner = self._owner(project_id, admin, body)
        if remote_group_id:
            self.get_security_group(str(remote_group_id), owner, admin)
        group = self.get_security_group(str(body["security_group_id"]), project_id, admin)
        rule = self._new_rule(
            group, direction, ethertype, protocol=protocol, port_range_min=pmin, port_range_max=pmax,
            remote_ip_prefix=network[0] if network is not None else None, remote_group_id=remote_group_id,
            remote_address_group_id=body.get("remote_address_group_id") or None,
            description=str(body.get("description") or ""),
        )
        rule.project_id = group.project_id
        return rule

    @staticmethod
    def _validate_ports(protocol: str | None, pmin: int | None, pmax: int | None) -> None:
        if pmin is None and pmax is None:
            return
        if protocol is None:
            raise BadRequest("Must also specify protocol if port range is given.",
                             error_type="SecurityGroupProtocolRequiredWithPorts")
        number = PROTOCOLS[protocol] if protocol in PROTOCOLS else int(protocol)
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

    def create_security_group_rules(self, project_id: str, admin: bool,
                                    bodies: list[Any]) -> list[SecurityGroupRule]:
        """Create one or many rules atomically: all are validated before any is stored."""
        self.touch(project_id)
        if not bodies:
            raise BadRequest("Resource body required")
        rules = [self._parse_rule(project_id, admin, body) for body in bodies]
        if len({r.security_group_id for r in rules}) > 1:
            raise BadRequest("Only allowed to update rules for one security profile at a time",
                             error_type="SecurityGroupNotSingleGroupRules")
        group_id = rules[0].security_group_id
        seen: set[tuple] = set()
        existing = self._keys_by_group.get(group_id, {})
        for rule in rules:
            key = rule_key(rule)
            if key in seen:
                raise BadRequest("Duplicate Security Group Rule in POST.",
                                 error_type="DuplicateSecurityGroupRuleInPost")
            seen.add(key)
            if key in existing:
                raise Conflict(f"Security group rule already exists. Rule id is {existing[key]}.",
                               error_type="SecurityGroupRuleExists")
        self._check_quota(rules[0].project_id, "security_group_rule", len(rules))
        for rule in rules:
            self._store_rule(rule)
        self._touch_group(group_id)
        return rules

    def get_security_group_rule(self, rule_id: str, project_id: str, admin: bool) -> SecurityGroupRule:
        rule = self.rules.get(rule_id)
        if rule is None or not self._visible(rule.project_id, project_id, admin):
            raise NotFound(f"Security group rule {rule_id} does not exist",
                           error_type="SecurityGroupRuleNotFound")
        return rule

    def list_security_group_rules(self, project_id: str, admin: bool,
                                  group_ids: list[str] | None = None) -> list[SecurityGroupRule]:
        """Visible rules; with `group_ids`, only those groups' (read from the index, not a scan)."""
        self.touch(project_id)
        if group_ids is not None:
            found: list[SecurityGroupRule] = []
            for group_id in group_ids:
                found.extend(self._rules_by_group.get(group_id, {}).values())
        else:
            found = list(self.rules.values())
        return found if admin else [r for r in found if r.project_id == project_id]

    def update_security_group_rule(self, rule_id: str, project_id: str, admin: bool,
                                   body: dict[str, Any]) -> SecurityGroupRule:
        rule = self.get_security_group_rule(rule_id, project_id, admin)
        if set(body) - {"description"}:
            raise BadRequest(f"Cannot update read-only attribute {sorted(set(body) - {'description'})[0]}")
        if "description" in body:
            rule.description = str(body["description"] or "")
            rule.revision_number += 1
        return rule

    def delete_security_group_rule(self, rule_id: str, project_id: str, admin: bool) -> None:
        rule = self.get_security_group_rule(rule_id, project_id, admin)
        self._drop_rule(rule)
        self._touch_group(rule.security_group_id)

    def _drop_rule(self, rule: SecurityGroupRule) -> None:
        del self.rules[rule.id]
        self._unindex_rule(rule)

    # quotas ---------------------------------------------------------------------------------
    def _owner(self, project_id: str, admin: bool, body: dict[str, Any]) -> str:
        """The project a new resource belongs to: the caller's, or (admin only) the body's."""
        wanted = body.get("project_id") or body.get("tenant_id")
        if not wanted or wanted == project_id:
            return project_id
        if not admin:
            raise Forbidden("Specifying 'project_id' or 'tenant_id' other than the authenticated project in "
                            "request requires admin privileges")
        return str(wanted)

    def quota_defaults(self) -> dict[str, int]:
        config = self.cloud.config.quotas
        return {name: getattr(config, attr) if attr else default for name, (attr, default) in QUOTA_DEFAULTS.items()}

    def quota_limits(self, project_id: str) -> dict[str, int]:
        return {**self.quota_defaults(), **self.quota_overrides.get(project_id, {})}

    def quota_usage(self, project_id: str) -> dict[str, int]:
        usage = dict.fromkeys(QUOTA_DEFAULTS, 0)
        usage["network"] = sum(1 for n in self.networks.values() if n.project_id == project_id)
        usage["subnet"] = sum(1 for s in self.subnets.values() if s.project_id == project_id)
        usage["port"] = sum(1 for p in self.ports.values() if p.project_id == project_id)
        usage["security_group"] = sum(1 for g in self.groups.values() if g.project_id == project_id)
        usage["security_group_rule"] = self._rule_count[project_id]
        return usage

    def _check_quota(self, project_id: str, resource: str, wanted: int) -> None:
        limit = self.quota_limits(project_id)[resource]
        if limit < 0:
            return
        if self.quota_usage_of(project_id, resource) + wanted > limit:
            raise QuotaExceeded(f"Quota exceeded for resources: ['{resource}'].", status=409,
                                error_type="OverQuota")

    def quota_usage_of(self, project_id: str, resource: str) -> int:
        if resource == "security_group_rule":
            return self._rule_count[project_id]
        return self.quota_usage(project_id)[resource]

    def update_quota(self, project_id: str, admin: bool, body: dict[str, Any]) -> dict[str, int]:
        if not admin:
            raise Forbidden("(rule:update_quota) is disallowed by policy")
        changes: dict[str, int] = {}
        for name, value in body.items():
            if name not in QUOTA_DEFAULTS:
                raise BadRequest(f"Unrecognized attribute(s) '{name}'")
            try:
                changes[name] = int(value)
            except (TypeError, ValueError):
                raise BadRequest(f"Invalid input for {name}. Reason: '{value}' is not an integer.") from None
            if changes[name] < -1:
                raise BadRequest(f"Invalid input for {name}. Reason: '{value}' should be >= -1.")
        self.quota_overrides.setdefault(project_id, {}).update(changes)
        return self.quota_limits(project_id)

    def reset_quota(self, project_id: str, admin: bool) -> None:
        if not admin:
            raise Forbidden("(rule:delete_quota) is disallowed by policy")
        self.quota_overrides.pop(project_id, None)

    # persistence ----------------------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        return {
            "networks": [asdict(n) for n in self.networks.values()],
            "subnets": [asdict(s) for s in self.subnets.values()],
            "ports": [asdict(p) for p in self.ports.values()],
            "security_groups": [asdict(g) for g in self.groups.values()],
            "security_group_rules": [asdict(r) for r in self.rules.values()],
            "quota_overrides": self.quota_overrides,
        }

    def load(self, data: dict[str, Any]) -> None:
        self.networks = {n["id"]: Network(**n) for n in data.get("networks", [])}
        self.subnets = {s["id"]: Subnet(**s) for s in data.get("subnets", [])}
        # Dumps from before `created_by_nova`: a compute-owned port is taken to be one Nova made.
        self.ports = {p["id"]: Port(**{"created_by_nova": p.get("device_owner", "").startswith("compute:"), **p})
                      for p in data.get("ports", [])}
        self.groups = {g["id"]: SecurityGroup(**g) for g in data.get("security_groups", [])}
        self.rules = {r["id"]: SecurityGroupRule(**r) for r in data.get("security_group_rules", [])}
        self.quota_overrides = dict(data.get("quota_overrides", {}))
        self._reindex()

    def inventory(self, project_id: str | None) -> dict[str, list[dict[str, Any]]]:
        from fakecloud.network import views

        def mine(owner: str) -> bool:
            return project_id is None or owner == project_id

        return {
            "networks": [views.network(n) for n in self.networks.values() if mine(n.project_id)],
            "subnets": [views.subnet(s) for s in self.subnets.values() if mine(s.project_id)],
            "ports": [views.port(p) for p in self.ports.values() if mine(p.project_id)],
            "security_groups": [views.security_group(g, self.rules_of_group(g.id), self.is_default_group(g.id))
                                for g in self.groups.values() if mine(g.project_id)],
        }
