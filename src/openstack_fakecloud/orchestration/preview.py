"""What a create or an update would do, without doing it (POST /stacks/preview, PUT .../preview).

The update preview walks the new definition in dependency order and asks `update.decide` — the
same function the engine's update uses — about each resource. A property that refers to a resource
the update would add or replace cannot be known yet, so it counts as changed (DEFERRED), exactly
as the real update would see a new physical id there. Nothing in the cloud is touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from openstack_fakecloud.orchestration.functions import Unresolved
from openstack_fakecloud.orchestration.model import INIT, ResourceRecord, Stack
from openstack_fakecloud.orchestration.properties import DEFERRED
from openstack_fakecloud.orchestration.stackdefn import Prepared, StackResolver, check_properties
from openstack_fakecloud.orchestration.update import ADD, IN_PLACE, REPLACE, UNCHANGED, decide

if TYPE_CHECKING:
    from openstack_fakecloud.orchestration.engine import Engine
    from openstack_fakecloud.orchestration.resources.base import Resource

CATEGORIES = ("added", "deleted", "replaced", "unchanged", "updated")


@dataclass
class PreviewItem:
    record: ResourceRecord
    properties: dict[str, Any] = field(default_factory=dict)
    required_by: list[str] = field(default_factory=list)


class _PendingResolver(StackResolver):
    """Live values for resources the update keeps; Unresolved for the ones it would add or replace."""

    def __init__(self, prepared: Prepared, identity: dict[str, str], plugins: dict[str, Resource],
                 pending: set[str]) -> None:
        super().__init__(prepared, identity, live=True, plugins=plugins)
        self.pending = pending

    def _target(self, name: str) -> Resource | None:
        if name in self.pending:
            raise Unresolved(name)
        return super()._target(name)


def shown(props: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if v is DEFERRED else v) for k, v in props.items()}


def create_preview(prepared: Prepared, identity: dict[str, str]) -> list[PreviewItem]:
    """Every resource of a new stack, INIT_COMPLETE, with the properties known before anything exists."""
    resolver = StackResolver(prepared, identity, live=False)
    items = []
    for name in prepared.active:
        defn = prepared.template.resources[name]
        props = check_properties(prepared, name, resolver, None)
        record = ResourceRecord(name, defn.type, "", requires=sorted(prepared.graph.requires[name]))
        items.append(PreviewItem(record, shown(props), sorted(prepared.graph.required_by.get(name, ()))))
    return items


def update_preview(engine: Engine, stack: Stack, prepared: Prepared) -> dict[str, list[PreviewItem]]:
    """The resources of `stack` sorted into Heat's five resource_changes lists for the new definition."""
    identity = {"OS::stack_id": stack.id, "OS::stack_name": stack.name, "OS::project_id": stack.project_id}
    plugins = engine.plugins(stack)
    pending: set[str] = set()
    result: dict[str, list[PreviewItem]] = {name: [] for name in CATEGORIES}
    scope = engine.context(stack).scope
    labels = {ADD: "added", UNCHANGED: "unchanged", IN_PLACE: "updated", REPLACE: "replaced"}
    for name in prepared.active:
        defn = prepared.template.resources[name]
        record = stack.resources.get(name)
        resolver = _PendingResolver(prepared, identity, plugins, pending)
        props = check_properties(prepared, name, resolver, scope)
        plugin = plugins.get(name) if record is not None and record.type == defn.type else None
        decision, _changed = decide(record, defn.type, plugin, props)
        if decision in (ADD, REPLACE):
            pending.add(name)
        shown_record = record if record is not None and decision != ADD else ResourceRecord(
            name, defn.type, "", action=INIT, requires=sorted(prepared.graph.requires[name]))
        result[labels[decision]].append(PreviewItem(shown_record, shown(props)))
    for name, record in stack.resources.items():
        if name not in prepared.active:
            result["deleted"].append(PreviewItem(record, dict(record.properties)))
    return result
