"""IP protocol tables and Neutron's notion of "the same rule".

Shared by the request parser (what a rule may say), the security group store (duplicate detection)
and Heat's Neutron resources (reconciling a template's rules with the stored ones).
"""

from __future__ import annotations

from openstack_fakecloud.network.records import SecurityGroupRule

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

RuleKey = tuple[str, str, str, int | None, int | None, str | None, str | None, str | None]


def protocol_number(protocol: str | None) -> int | None:
    """A stored protocol (a name or a digit string) as its number; None for "any"."""
    if protocol is None:
        return None
    return PROTOCOLS.get(protocol, int(protocol) if protocol.isdigit() else None)


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


def rule_key(rule: SecurityGroupRule) -> RuleKey:
    """What makes two rules the same in Neutron's eyes (description and id do not count)."""
    prefix = None if rule.remote_ip_prefix in ANY_ADDRESS else rule.remote_ip_prefix
    return (rule.direction, rule.ethertype, _protocol_key(rule.protocol, rule.ethertype), rule.port_range_min,
            rule.port_range_max, prefix, rule.remote_group_id, rule.remote_address_group_id)
