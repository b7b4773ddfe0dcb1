"""Resource plugins: each module exports `resource_mapping()`, collected here into one registry."""

from __future__ import annotations

from openstack_fakecloud.orchestration.resources import (
    cinder,
    heat,
    neutron,
    neutron_floatingip,
    neutron_port,
    nova,
    testresource,
)
from openstack_fakecloud.orchestration.resources.base import Resource

_MODULES = (nova, cinder, neutron, neutron_port, neutron_floatingip, heat, testresource)


def registry() -> dict[str, type[Resource]]:
    types: dict[str, type[Resource]] = {}
    for module in _MODULES:
        types.update(module.resource_mapping())
    return types


TYPES = registry()
