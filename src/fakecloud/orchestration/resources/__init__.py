"""Resource plugins: each module exports `resource_mapping()`, collected here into one registry."""

from __future__ import annotations

from fakecloud.orchestration.resources import cinder, heat, neutron, nova
from fakecloud.orchestration.resources.base import Resource

_MODULES = (nova, cinder, neutron, heat)


def registry() -> dict[str, type[Resource]]:
    types: dict[str, type[Resource]] = {}
    for module in _MODULES:
        types.update(module.resource_mapping())
    return types


TYPES = registry()
