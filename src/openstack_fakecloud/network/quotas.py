"""Neutron's per-project quotas: defaults from the cloud's config, admin overrides, and the check.

Usage is counted by whoever holds the resources (the backend façade), so this module needs none of
them and every store can check a quota without knowing about the others.
"""

from __future__ import annotations

from collections.abc import Callable

from openstack_fakecloud.config import Quotas as QuotaConfig
from openstack_fakecloud.errors import Forbidden, QuotaExceeded

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


def require_admin(admin: bool, rule: str) -> None:
    """Quota changes are admin-only (Neutron checks this before it reads the body)."""
    if not admin:
        raise Forbidden(f"(rule:{rule}) is disallowed by policy")


class Quotas:
    """Limits per project; `used(project_id, resource)` counts what the project holds now."""

    def __init__(self, config: Callable[[], QuotaConfig], used: Callable[[str, str], int],
                 overrides: dict[str, dict[str, int]] | None = None) -> None:
        self._config = config  # read on every check: the admin API may change the cloud's config
        self._used = used
        self.overrides: dict[str, dict[str, int]] = overrides if overrides is not None else {}

    def defaults(self) -> dict[str, int]:
        config = self._config()
        return {name: getattr(config, attr) if attr else default for name, (attr, default) in QUOTA_DEFAULTS.items()}

    def limits(self, project_id: str) -> dict[str, int]:
        return {**self.defaults(), **self.overrides.get(project_id, {})}

    def projects(self) -> list[str]:
        """Projects with overrides: what an admin's `GET /quotas` lists."""
        return sorted(self.overrides)

    def check(self, project_id: str, resource: str, wanted: int) -> None:
        """Refuse (409 OverQuota) if `wanted` more of `resource` would pass the project's limit."""
        limit = self.limits(project_id)[resource]
        if limit < 0:
            return
        if self._used(project_id, resource) + wanted > limit:
            raise QuotaExceeded(f"Quota exceeded for resources: ['{resource}'].", status=409,
                                error_type="OverQuota")

    def update(self, project_id: str, admin: bool, changes: dict[str, int]) -> dict[str, int]:
        """Set overrides (already parsed: known resource names, integers >= -1)."""
        require_admin(admin, "update_quota")
        self.overrides.setdefault(project_id, {}).update(changes)
        return self.limits(project_id)

    def reset(self, project_id: str, admin: bool) -> None:
        require_admin(admin, "delete_quota")
        self.overrides.pop(project_id, None)
