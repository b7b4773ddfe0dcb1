"""OS::Neutron::SecurityGroup (rules reconciled in place) and OS::Neutron::SecurityGroupRule."""

from __future__ import annotations

import ipaddress
from collections import Counter
from typing import Any

from openstack_fakecloud.errors import NotFound
from openstack_fakecloud.network.protocols import ANY_ADDRESS, PROTOCOLS
from openstack_fakecloud.network.requests import (
    parse_rule,
    parse_rules,
    parse_security_group,
    parse_security_group_update,
)
from openstack_fakecloud.orchestration.constraints import AllowedValues, Constraint, Custom, Range, Scope
from openstack_fakecloud.orchestration.errors import ResourcePropertyConflict, StackValidationFailed
from openstack_fakecloud.orchestration.properties import BOOLEAN, INTEGER, LIST, MAP, STRING, Schema
from openstack_fakecloud.orchestration.resources.base import Resource

PROTOCOL_NAMES = ("ah", "dccp", "egp", "esp", "gre", "icmp", "icmpv6", "igmp", "ipv6-encap", "ipv6-frag",
                  "ipv6-icmp", "ipv6-nonxt", "ipv6-opts", "ipv6-route", "ospf", "pgm", "rsvp", "sctp", "tcp",
                  "udp", "udplite", "vrrp")


class Protocol(Constraint):
    """A protocol name Heat knows, or a number 0-255."""

    def error(self, value: Any, scope: Scope | None) -> str | None:
        text = str(value)
        if text in PROTOCOL_NAMES or (text.isdigit() and 0 <= int(text) <= 255):
            return None
        return f'"{value}" is not an allowed value [{", ".join(PROTOCOL_NAMES)}] or a number between 0 and 255'


_PORT = (Range(min=0, max=65535),)
_DIRECTION = (AllowedValues(allowed=("ingress", "egress")),)
_ETHERTYPE = (AllowedValues(allowed=("IPv4", "IPv6")),)
_RULE = {
    "direction": Schema(STRING, default="ingress", constraints=_DIRECTION),
    "ethertype": Schema(STRING, default="IPv4", constraints=_ETHERTYPE),
    "protocol": Schema(STRING, constraints=(Protocol(),)),
    "port_range_min": Schema(INTEGER, constraints=_PORT),
    "port_range_max": Schema(INTEGER, constraints=_PORT),
    "remote_mode": Schema(STRING, default="remote_ip_prefix",
                          constraints=(AllowedValues(allowed=("remote_ip_prefix", "remote_group_id")),)),
    "remote_group_id": Schema(STRING, constraints=(Custom(name="neutron.security_group"),)),
    "remote_ip_prefix": Schema(STRING, constraints=(Custom(name="net_cidr"),)),
    "description": Schema(STRING),
}
DEFAULT_EGRESS = ({"direction": "egress", "ethertype": "IPv4"}, {"direction": "egress", "ethertype": "IPv6"})


def _key(direction: str, ethertype: str, protocol: Any, pmin: Any, pmax: Any, prefix: Any, group: Any) -> tuple:
    """Neutron's notion of "the same rule", with protocol numbers and catch-all prefixes normalised."""
    proto = None if protocol in (None, "", "any") else str(PROTOCOLS.get(str(protocol).lower(), protocol))
    cidr = None
    if prefix:
        cidr = str(ipaddress.ip_network(str(prefix), strict=False))
        cidr = None if cidr in ANY_ADDRESS else cidr
    return (direction, ethertype, proto, pmin, pmax, cidr, group or None)


class SecurityGroup(Resource):
    properties_schema = {
        "name": Schema(STRING, update_allowed=True),
        "description": Schema(STRING, update_allowed=True),
        "stateful": Schema(BOOLEAN, update_allowed=True),
        "rules": Schema(LIST, default=[], update_allowed=True, schema=Schema(MAP, schema=_RULE)),
    }

    def validate(self, props: dict[str, Any]) -> None:
        if props.get("name") == "default":
            raise StackValidationFailed('Security groups cannot be assigned the name "default".')

    def _body(self, rule: dict[str, Any], group_id: str) -> dict[str, Any]:
        body: dict[str, Any] = {"security_group_id": group_id, "direction": rule.get("direction") or "ingress",
                                "ethertype": rule.get("ethertype") or "IPv4"}
        for key in ("protocol", "port_range_min", "port_range_max", "description"):
            if rule.get(key) is not None:
                body[key] = rule[key]
        if rule.get("remote_mode") == "remote_group_id":
            body["remote_group_id"] = rule.get("remote_group_id") or group_id
        elif rule.get("remote_ip_prefix"):
            body["remote_ip_prefix"] = rule["remote_ip_prefix"]
        return body

    def _wanted(self, rules: list[dict[str, Any]], group_id: str) -> dict[tuple, dict[str, Any]]:
        """The rule bodies the template asks for (Heat's default egress when it names none), by what they open."""
        desired = [self._body(rule, group_id) for rule in rules]
        if not any(body["direction"] == "egress" for body in desired):
            desired += [self._body(rule, group_id) for rule in DEFAULT_EGRESS]
        wanted: dict[tuple, dict[str, Any]] = {}
        for body in desired:
            wanted.setdefault(_key(body["direction"], body["ethertype"], body.get("protocol"),
                                   body.get("port_range_min"), body.get("port_range_max"),
                                   body.get("remote_ip_prefix"), body.get("remote_group_id")), body)
        return wanted

    def _live_rules(self, group_id: str) -> list[tuple[tuple, Any]]:
        return [(_key(rule.direction, rule.ethertype, rule.protocol, rule.port_range_min, rule.port_range_max,
                      rule.remote_ip_prefix, rule.remote_group_id), rule)
                for rule in self.cloud.network.list_security_group_rules(self.ctx.project_id, False, [group_id])]

    def _reconcile(self, rules: list[dict[str, Any]]) -> None:
        """Delete the group's rules the template no longer has, create the missing ones, keep the rest."""
        network, project, group_id = self.cloud.network, self.ctx.project_id, self.record.physical_id
        assert group_id is not None
        wanted = self._wanted(rules, group_id)
        present: set[tuple] = set()
        for key, rule in self._live_rules(group_id):
            if key in wanted and key not in present:
                present.add(key)
            else:
                network.delete_security_group_rule(rule.id, project, False)
        missing = [body for key, body in wanted.items() if key not in present]
        if missing:
            network.create_security_group_rules(project, False, parse_rules(missing))

    def handle_create(self, props: dict[str, Any]) -> None:
        body: dict[str, Any] = {"name": props.get("name") or self.physical_name(),
                                "description": props.get("description") or ""}
        if props.get("stateful") is not None:
            body["stateful"] = props["stateful"]
        group = self.cloud.network.create_security_group(self.ctx.project_id, False, parse_security_group(body))
        self.record.physical_id = group.id
        self._reconcile(props.get("rules") or [])

    def handle_update(self, old: dict[str, Any], new: dict[str, Any], changed: set[str]) -> None:
        body: dict[str, Any] = {}
        if "name" in changed:
            body["name"] = new.get("name") or self.physical_name()
        if "description" in changed:
            body["description"] = new.get("description") or ""
        if "stateful" in changed and new.get("stateful") is not None:
            body["stateful"] = new["stateful"]
        if body:
            self.cloud.network.update_security_group(self.record.physical_id, self.ctx.project_id, False,
                                                     parse_security_group_update(body))
        if "rules" in changed:
            self._reconcile(new.get("rules") or [])

    def handle_delete(self) -> None:
        if not self.record.physical_id:
            return
        try:
            self.cloud.network.delete_security_group(self.record.physical_id, self.ctx.project_id, False)
        except NotFound:
            return

    def live(self) -> Any:
        return self.cloud.network.get_security_group(self.record.physical_id or "", self.ctx.project_id)

    def drifted(self, props: dict[str, Any]) -> set[str]:
        """The inline rules are observed: a rule added or deleted behind Heat is undone by a converging update."""
        group = self.live()
        live = Counter(key for key, _rule in self._live_rules(group.id))
        return set() if live == Counter(self._wanted(props.get("rules") or [], group.id)) else {"rules"}

    def show(self) -> Any:
        from openstack_fakecloud.network.views import security_group

        network = self.cloud.network
        try:
            group = network.get_security_group(self.record.physical_id or "", self.ctx.project_id)
        except NotFound:
            return None
        return security_group(group, network.rules_of_group(group.id), network.is_default_group(group.id))


class SecurityGroupRule(Resource):
    properties_schema = {
        "security_group": Schema(STRING, required=True, constraints=(Custom(name="neutron.security_group"),)),
        "description": Schema(STRING),
        "direction": Schema(STRING, default="ingress", constraints=_DIRECTION),
        "ethertype": Schema(STRING, default="IPv4", constraints=_ETHERTYPE),
        "protocol": Schema(STRING, default="tcp", constraints=(Protocol(),)),
        "port_range_min": Schema(INTEGER, constraints=_PORT),
        "port_range_max": Schema(INTEGER, constraints=_PORT),
        "remote_group": Schema(STRING, constraints=(Custom(name="neutron.security_group"),)),
        "remote_ip_prefix": Schema(STRING, constraints=(Custom(name="net_cidr"),)),
    }

    def validate(self, props: dict[str, Any]) -> None:
        if props.get("remote_group") and props.get("remote_ip_prefix"):
            raise ResourcePropertyConflict("remote_group", "remote_ip_prefix")
        pmin, pmax = props.get("port_range_min"), props.get("port_range_max")
        if (props.get("protocol") not in ("icmp", "icmpv6", "ipv6-icmp", "1", "58") and pmin is not None
                and pmax is not None and pmax < pmin):
            raise StackValidationFailed("The minimum port number must be less than or equal to the maximum port "
                                        "number.")

    def handle_create(self, props: dict[str, Any]) -> None:
        network, project = self.cloud.network, self.ctx.project_id
        group = network.find_security_group(project, props["security_group"])
        body: dict[str, Any] = {"security_group_id": group.id, "direction": props["direction"],
                                "ethertype": props["ethertype"]}
        for key in ("protocol", "port_range_min", "port_range_max", "remote_ip_prefix", "description"):
            if props.get(key) is not None:
                body[key] = props[key]
        if props.get("remote_group"):
            body["remote_group_id"] = network.find_security_group(project, props["remote_group"]).id
        rule = network.create_security_group_rules(project, False, [parse_rule(body)])[0]
        self.record.physical_id = rule.id

    def handle_delete(self) -> None:
        if not self.record.physical_id:
            return
        try:
            self.cloud.network.delete_security_group_rule(self.record.physical_id, self.ctx.project_id, False)
        except NotFound:
            return

    def live(self) -> Any:
        return self.cloud.network.get_security_group_rule(self.record.physical_id or "", self.ctx.project_id, False)

    def show(self) -> Any:
        from openstack_fakecloud.network.views import security_group_rule

        network = self.cloud.network
        try:
            rule = network.get_security_group_rule(self.record.physical_id or "", self.ctx.project_id, False)
        except NotFound:
            return None
        return security_group_rule(rule, network.is_default_group(rule.security_group_id))


def resource_mapping() -> dict[str, type[Resource]]:
    return {"OS::Neutron::SecurityGroup": SecurityGroup, "OS::Neutron::SecurityGroupRule": SecurityGroupRule}
