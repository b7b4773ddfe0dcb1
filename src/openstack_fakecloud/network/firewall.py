"""What a port's security groups let in: the decision a hypervisor's firewall makes for each new connection.

Neutron security groups are allow lists: a packet reaching a port is accepted only if an ingress rule of one of
the port's groups matches it (ethertype, protocol, destination port range, and the source: `remote_ip_prefix`,
or `remote_group_id`, meaning any address of a port in that group). A port with port security disabled
accepts everything. The guest plane asks this for each connection to a guest, and again for every live
connection after a rule changes (Neutron's agents delete the conntrack entries a removed rule allowed).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable

from openstack_fakecloud.network.protocols import protocol_number
from openstack_fakecloud.network.records import SecurityGroupRule

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _protocol_matches(rule_protocol: str | None, protocol: str) -> bool:
    number = protocol_number(rule_protocol)
    return number is None or number == 0 or number == protocol_number(protocol)


def _port_matches(rule: SecurityGroupRule, port: int) -> bool:
    low, high = rule.port_range_min, rule.port_range_max
    if low is None:
        return True
    return low <= port <= (high if high is not None else low)


def rule_admits(rule: SecurityGroupRule, protocol: str, port: int, source: IpAddress,
                group_addresses: Callable[[str], Iterable[str]]) -> bool:
    """Whether one rule accepts a new inbound connection from `source` to `protocol`/`port`."""
    if rule.direction != "ingress" or rule.ethertype != f"IPv{source.version}":
        return False
    if not _protocol_matches(rule.protocol, protocol) or not _port_matches(rule, port):
        return False
    if rule.remote_ip_prefix is not None:
        return source in ipaddress.ip_network(rule.remote_ip_prefix, strict=False)
    if rule.remote_group_id is not None:
        return str(source) in set(group_addresses(rule.remote_group_id))
    return rule.remote_address_group_id is None  # address groups are not modelled: such a rule matches nothing


def admits(rules: Iterable[SecurityGroupRule], protocol: str, port: int, source: str,
           group_addresses: Callable[[str], Iterable[str]]) -> bool:
    """Whether any of a port's rules accepts the connection (allow-list semantics: no rule, no entry)."""
    address = ipaddress.ip_address(source)
    return any(rule_admits(rule, protocol, port, address, group_addresses) for rule in rules)
