"""The dependency graph of a stack's resources (heat/engine/dependencies.py, rsrc_defn.py).

Edges come from `depends_on` and from the get_resource / get_attr references in a resource's
properties and metadata (outputs add none). A reference to an undefined resource is an
InvalidTemplateReference; a cycle is a CircularDependencyException.
"""

from __future__ import annotations

from collections.abc import Iterable

from openstack_fakecloud.orchestration.errors import CircularDependencyException, InvalidTemplateReference
from openstack_fakecloud.orchestration.template import Template


class Graph:
    """`requires[name]` is what `name` needs first; `required_by` is the reverse."""

    def __init__(self, requires: dict[str, set[str]]) -> None:
        self.requires = requires
        self.required_by: dict[str, set[str]] = {name: set() for name in requires}
        for name, needs in requires.items():
            for need in needs:
                self.required_by.setdefault(need, set()).add(name)

    def order(self) -> list[str]:
        """Names in an order where each comes after what it needs (Kahn; a leftover is a cycle)."""
        waiting = {name: set(needs) for name, needs in self.requires.items()}
        ready = sorted(name for name, needs in waiting.items() if not needs)
        ordered: list[str] = []
        while ready:
            name = ready.pop(0)
            ordered.append(name)
            for user in sorted(self.required_by.get(name, ())):
                needs = waiting.get(user)
                if needs is not None and name in needs:
                    needs.discard(name)
                    if not needs:
                        ready.append(user)
        if len(ordered) != len(waiting):
            raise CircularDependencyException(self._cycle(set(waiting) - set(ordered)))
        return ordered

    def _cycle(self, left: set[str]) -> str:
        start = sorted(left)[0]
        path, seen = [start], {start}
        current = start
        while True:
            nxt = sorted(n for n in self.requires[current] if n in left)[0]
            if nxt in seen:
                cycle = path[path.index(nxt):] + [nxt]
                return " -> ".join(cycle)
            path.append(nxt)
            seen.add(nxt)
            current = nxt


def build(template: Template, active: Iterable[str]) -> Graph:
    """The graph over the active (condition-true) resources; references to inactive ones are dropped."""
    active = set(active)
    functions = template.functions
    requires: dict[str, set[str]] = {}
    for name in active:
        defn = template.resources[name]
        needs: set[str] = set()
        for ref in functions.references(defn.properties) | functions.references(defn.metadata):
            if ref.startswith("\0ref:"):
                ref = ref[5:]
                if ref not in template.resources:
                    continue  # a parameter reference
            if ref not in template.resources:
                raise InvalidTemplateReference(ref, name)
            needs.add(ref)
        for ref in defn.depends_on:
            if ref not in template.resources:
                raise InvalidTemplateReference(ref, name)
            needs.add(ref)
        requires[name] = {n for n in needs if n in active}
    for name, needs in requires.items():
        if name in needs:
            raise CircularDependencyException(f"{name} -> {name}")
    graph = Graph(requires)
    graph.order()
    return graph
