"""Security groups and their rules.

Rules are the bulk of the state (a benchmark holds 10,000), so they are slotted records indexed by
group, and each group keeps a fingerprint table so duplicate detection never scans its rules.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from openstack_fakecloud.errors import BadRequest, Conflict, NotFound
from openstack_fakecloud.network.protocols import RuleKey, rule_key
from openstack_fakecloud.network.quotas import Quotas
from openstack_fakecloud.network.records import SecurityGroup, SecurityGroupRule, new_id, owner_of, visible
from openstack_fakecloud.network.requests import RuleCreate, RuleUpdate, SecurityGroupCreate, SecurityGroupUpdate


class SecurityGroups:
    """Groups, rules and their indexes; `in_use(group_id)` says whether a port still names a group."""

    def __init__(self, now: Callable[[], str], quotas: Quotas, in_use: Callable[[str], bool],
                 groups: Iterable[SecurityGroup] = (), rules: Iterable[SecurityGroupRule] = ()) -> None:
        self._now = now
        self._quotas = quotas
        self._in_use = in_use
        self.groups: dict[str, SecurityGroup] = {g.id: g for g in groups}
        self.rules: dict[str, SecurityGroupRule] = {}
        self._rules_by_group: dict[str, dict[str, SecurityGroupRule]] = {g: {} for g in self.groups}
        self._keys_by_group: dict[str, dict[RuleKey, str]] = {g: {} for g in self.groups}
        self._rule_count: Counter[str] = Counter()
        for rule in rules:
            self._store_rule(rule)
        self._default_groups: dict[str, str] = {
            g.project_id: g.id for g in self.groups.values() if g.name == "default"
        }

    # indexes -------------------------------------------------------------------------------
    def _store_rule(self, rule: SecurityGroupRule) -> None:
        self.rules[rule.id] = rule
        self._rules_by_group.setdefault(rule.security_group_id, {})[rule.id] = rule
        self._keys_by_group.setdefault(rule.security_group_id, {})[rule_key(rule)] = rule.id
        self._rule_count[rule.project_id] += 1

    def _drop_rule(self, rule: SecurityGroupRule) -> None:
        del self.rules[rule.id]
        self._rules_by_group.get(rule.security_group_id, {}).pop(rule.id, None)
        self._keys_by_group.get(rule.security_group_id, {}).pop(rule_key(rule), None)
        self._rule_count[rule.project_id] -= 1

    def rule_count(self, project_id: str) -> int:
        """The project's rules, from a counter: the rule quota is checked on every create."""
        return self._rule_count[project_id]

    def _touch_group(self, group_id: str) -> None:
        group = self.groups.get(group_id)
        if group is not None:
            group.revision_number += 1
            group.updated_at = self._now()

    # groups --------------------------------------------------------------------------------
    def has_default(self, project_id: str) -> bool:
        return project_id in self._default_groups

    def default_group(self, project_id: str) -> SecurityGroup:
        """The project's `default` group with Neutron's four default rules, created on first use."""
        group_id = self._default_groups.get(project_id)
        if group_id in self.groups:
            return self.groups[group_id]
        group = self._new_group(project_id, "default", "Default security group", True)
        self._default_groups[project_id] = group.id
        for ethertype in ("IPv4", "IPv6"):
            self._store_rule(self._new_rule(group, "ingress", ethertype, remote_group_id=group.id))
        return group

    def _new_group(self, project_id: str, name: str, description: str, stateful: bool) -> SecurityGroup:
        """A stored group with Neutron's two egress rules."""
        now = self._now()
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
            self._now(),
        )

    def is_default_group(self, group_id: str) -> bool:
        group = self.groups.get(group_id)
        return group is not None and self._default_groups.get(group.project_id) == group_id

    def rules_of_group(self, group_id: str) -> list[SecurityGroupRule]:
        return list(self._rules_by_group.get(group_id, {}).values())

    def get_group(self, group_id: str, project_id: str | None, admin: bool = False) -> SecurityGroup:
        group = self.groups.get(group_id)
        if group is None or not visible(group.project_id, project_id, admin):
            raise NotFound(f"Security group {group_id} does not exist", error_type="SecurityGroupNotFound")
        return group

    def find_group(self, project_id: str, name_or_id: str) -> SecurityGroup:
        """By id, else by unique name within the project (what Nova does with `security_groups`)."""
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

    def resolve_ids(self, project_id: str, group_ids: list[str]) -> list[str]:
        """A port's groups: each must be the project's own; repeats are dropped."""
        missing = [g for g in group_ids if g not in self.groups or self.groups[g].project_id != project_id]
        if missing:
            raise NotFound(f"Security group {', '.join(missing)} does not exist", error_type="SecurityGroupNotFound")
        return list(dict.fromkeys(group_ids))

    def list_groups(self, project_id: str, admin: bool) -> list[SecurityGroup]:
        return [g for g in self.groups.values() if admin or g.project_id == project_id]

    def create_group(self, owner: str, request: SecurityGroupCreate) -> SecurityGroup:
        if request.name == "default":
            raise Conflict("Default security group already exists.", error_type="SecurityGroupDefaultAlreadyExists")
        self._quotas.check(owner, "security_group", 1)
        return self._new_group(owner, request.name, request.description, request.stateful)

    def update_group(self, group_id: str, project_id: str, admin: bool, request: SecurityGroupUpdate) -> SecurityGroup:
        group = self.get_group(group_id, project_id, admin)
        if request.name is not None and request.name != group.name:
            if self.is_default_group(group.id):
                raise Conflict("Updating default security group not allowed.",
                               error_type="SecurityGroupCannotUpdateDefault")
            if request.name == "default":
                raise Conflict("Default security group already exists.",
                               error_type="SecurityGroupDefaultAlreadyExists")
            group.name = request.name
        if request.description is not None:
            group.description = request.description
        if request.stateful is not None:
            if request.stateful != group.stateful and self._in_use(group.id):
                raise Conflict(f"Security Group {group.id} in use.", error_type="SecurityGroupInUse")
            group.stateful = request.stateful
        group.updated_at = self._now()
        group.revision_number += 1
        return group

    def delete_group(self, group_id: str, project_id: str, admin: bool) -> None:
        group = self.get_group(group_id, project_id, admin)
        if self.is_default_group(group.id) and not admin:
            raise Conflict("Insufficient rights for removing default security group.",
                           error_type="SecurityGroupCannotRemoveDefault")
        if self._in_use(group.id):
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

    # rules ---------------------------------------------------------------------------------
    def _new_requested_rule(self, project_id: str, admin: bool, request: RuleCreate) -> SecurityGroupRule:
        """A rule for a parsed request, once its owner and groups check out (not stored yet)."""
        owner = owner_of(project_id, admin, request.project_id)
        if request.remote_group_id:
            self.get_group(request.remote_group_id, owner, admin)
        group = self.get_group(request.security_group_id, project_id, admin)
        return self._new_rule(
            group, request.direction, request.ethertype, protocol=request.protocol,
            port_range_min=request.port_range_min, port_range_max=request.port_range_max,
            remote_ip_prefix=request.remote_ip_prefix, remote_group_id=request.remote_group_id,
            remote_address_group_id=request.remote_address_group_id, description=request.description,
        )

    def create_rules(self, project_id: str, admin: bool, requests: list[RuleCreate]) -> list[SecurityGroupRule]:
        """Create one or many rules atomically: all are checked before any is stored."""
        rules = [self._new_requested_rule(project_id, admin, request) for request in requests]
        if len({r.security_group_id for r in rules}) > 1:
            raise BadRequest("Only allowed to update rules for one security profile at a time",
                             error_type="SecurityGroupNotSingleGroupRules")
        group_id = rules[0].security_group_id
        seen: set[RuleKey] = set()
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
        self._quotas.check(rules[0].project_id, "security_group_rule", len(rules))
        for rule in rules:
            self._store_rule(rule)
        self._touch_group(group_id)
        return rules

    def get_rule(self, rule_id: str, project_id: str, admin: bool) -> SecurityGroupRule:
        rule = self.rules.get(rule_id)
        if rule is None or not visible(rule.project_id, project_id, admin):
            raise NotFound(f"Security group rule {rule_id} does not exist",
                           error_type="SecurityGroupRuleNotFound")
        return rule

    def list_rules(self, project_id: str, admin: bool, group_ids: list[str] | None = None) -> list[SecurityGroupRule]:
        """Visible rules; with `group_ids`, only those groups' (read from the index, not a scan)."""
        if group_ids is not None:
            found: list[SecurityGroupRule] = []
            for group_id in group_ids:
                found.extend(self._rules_by_group.get(group_id, {}).values())
        else:
            found = list(self.rules.values())
        return found if admin else [r for r in found if r.project_id == project_id]

    def update_rule(self, rule_id: str, project_id: str, admin: bool, request: RuleUpdate) -> SecurityGroupRule:
        rule = self.get_rule(rule_id, project_id, admin)
        if request.description is not None:
            rule.description = request.description
            rule.revision_number += 1
        return rule

    def delete_rule(self, rule_id: str, project_id: str, admin: bool) -> None:
        rule = self.get_rule(rule_id, project_id, admin)
        self._drop_rule(rule)
        self._touch_group(rule.security_group_id)
