"""Import rules, checked statically (ast over src/hearth and src/openstack_fakecloud; nothing is imported, < 1 s).

Every `import`/`from ... import` counts wherever it stands: at module level, inside a function or method
(a function-local import still ties the two modules together: it only moves the cycle from import time to
call time) and under `if TYPE_CHECKING:`. TYPE_CHECKING-only imports are kept apart:

- they do NOT count for cycles: they never run, so they cannot make an import cycle, and a type-only
  reference back to a module that imports you is the sanctioned way to annotate across a layer;
- they DO count for the layering rules: an engine annotated with a db model still depends on the db layer.

Rules:

1. No import cycle between hearth's parts: the first-level packages and modules (hearth.api, hearth.db,
   hearth.engines, hearth.taskmanager, hearth.service, hearth.runtime, hearth.views, ...), and none between
   the modules inside one of those packages either (CYCLE_ROOTS: hearth and fakecloud).
2. hearth.engines imports none of hearth.api, hearth.service, hearth.taskmanager, hearth.db: engines are
   the layer below them (they talk to the cloud, and know nothing of requests, operations or rows).
3. fakecloud imports nothing of hearth: it is the cloud Hearth runs against, not part of Hearth.

`importlib.import_module("...")` and other imports by string are not seen.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
ROOTS = ("hearth", "openstack_fakecloud")

CYCLE_ROOTS = ("hearth", "openstack_fakecloud")
ENGINES = "hearth.engines"
ABOVE_ENGINES = ("hearth.api", "hearth.service", "hearth.taskmanager", "hearth.db")


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module (the deepest one that exists: `from a import b` is a.b when b is a module)
    line: int
    kind: str  # "top", "local" (inside a function) or "type" (under `if TYPE_CHECKING:`)
    path: str = ""  # the importing file, relative to src/

    def where(self) -> str:
        return f"{self.source} -> {self.target} ({self.path}:{self.line}, {self.kind})"


def _module_files() -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for root in ROOTS:
        for path in sorted((SRC / root).rglob("*.py")):
            parts = list(path.relative_to(SRC).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


class _Collector(ast.NodeVisitor):
    def __init__(self, module: str, is_package: bool, known: set[str], path: str = "") -> None:
        self.module = module
        self.path = path
        self.package = module if is_package else module.rpartition(".")[0]
        self.known = known
        self.found: list[Import] = []
        self._function_depth = 0
        self._type_checking_depth = 0

    def _kind(self) -> str:
        if self._type_checking_depth:
            return "type"
        return "local" if self._function_depth else "top"

    def _add(self, target: str, line: int) -> None:
        # the deepest existing module of ours that the dotted name names
        while target and target not in self.known:
            target = target.rpartition(".")[0]
        found = Import(self.module, target, line, self._kind(), self.path)
        if target and target != self.module and found not in self.found:  # `from a import b, c`: one import
            self.found.append(found)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        self._function_depth += 1
        self.generic_visit(node)
        self._function_depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef
    visit_Lambda = visit_FunctionDef

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            self._type_checking_depth += 1
            for child in node.body:
                self.visit(child)
            self._type_checking_depth -= 1
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base_parts = self.package.split(".")
            base_parts = base_parts[: len(base_parts) - (node.level - 1)]
            base = ".".join(base_parts + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        for alias in node.names:
            candidate = f"{base}.{alias.name}"
            self._add(candidate if candidate in self.known else base, node.lineno)


def collect_imports() -> list[Import]:
    files = _module_files()
    known = set(files)
    found: list[Import] = []
    for module, path in files.items():
        collector = _Collector(module, path.name == "__init__.py", known, str(path.relative_to(SRC)))
        collector.visit(ast.parse(path.read_text(), filename=str(path)))
        found.extend(collector.found)
    return found


IMPORTS = collect_imports()


def _unit(module: str) -> str:
    """The first-level part a module belongs to: hearth.engines.common -> hearth.engines."""
    return ".".join(module.split(".")[:2])


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


# --------------------------------------------------------------------------------------------------
# Cycles


def _cycles(edges: dict[str, dict[str, list[Import]]]) -> list[list[str]]:
    """One shortest cycle per strongly connected component with more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    nodes = sorted(set(edges) | {t for targets in edges.values() for t in targets})
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, {}))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, {})))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    cycles = []
    for component in sorted(components):
        members = set(component)
        start = component[0]
        # breadth-first from start back to start, inside the component: the shortest cycle through it
        previous: dict[str, str] = {}
        frontier = [start]
        found = None
        while frontier and found is None:
            following = []
            for node in frontier:
                for child in sorted(edges.get(node, {})):
                    if child not in members:
                        continue
                    if child == start:
                        found = node
                        break
                    if child not in previous:
                        previous[child] = node
                        following.append(child)
                if found is not None:
                    break
            frontier = following
        path = [start]
        node = found
        while node != start:
            path.insert(1, node)
            node = previous[node]
        cycles.append([*path, start])
    return cycles


def _describe(cycles: list[list[str]], edges: dict[str, dict[str, list[Import]]]) -> str:
    lines = []
    for cycle in cycles:
        lines.append("cycle: " + " -> ".join(cycle))
        for source, target in zip(cycle, cycle[1:], strict=False):
            for imp in edges[source][target]:
                lines.append(f"    {imp.where()}")
    return "\n".join(lines)


def _graph(imports: list[Import], node_of) -> dict[str, dict[str, list[Import]]]:
    edges: dict[str, dict[str, list[Import]]] = defaultdict(lambda: defaultdict(list))
    for imp in imports:
        if imp.kind == "type":
            continue  # TYPE_CHECKING-only: never runs, cannot make a cycle (see the module docstring)
        source, target = node_of(imp.source), node_of(imp.target)
        if source is not None and target is not None and source != target:
            edges[source][target].append(imp)
    return edges


@pytest.mark.parametrize("root", CYCLE_ROOTS)
def test_no_import_cycle_between_parts(root: str) -> None:
    """hearth.service -> hearth.taskmanager -> hearth.service is a cycle even when each side is another module."""
    edges = _graph([i for i in IMPORTS if _within(i.source, root) and _within(i.target, root)], _unit)
    cycles = _cycles(edges)
    assert not cycles, f"import cycles between {root}'s packages/modules:\n{_describe(cycles, edges)}"


@pytest.mark.parametrize("root", CYCLE_ROOTS)
def test_no_import_cycle_inside_a_package(root: str) -> None:
    inside = [i for i in IMPORTS if _within(i.source, root) and _unit(i.source) == _unit(i.target)]
    edges = _graph(inside, lambda module: module)
    cycles = _cycles(edges)
    assert not cycles, f"import cycles between modules of one package:\n{_describe(cycles, edges)}"


# --------------------------------------------------------------------------------------------------
# Layers


def test_engines_import_nothing_above_them() -> None:
    wrong = [i for i in IMPORTS if _within(i.source, ENGINES) and any(_within(i.target, up) for up in ABOVE_ENGINES)]
    assert not wrong, (f"{ENGINES} must not import {', '.join(ABOVE_ENGINES)} (TYPE_CHECKING imports included):\n"
                       + "\n".join(f"    {i.where()}" for i in wrong))


def test_fakecloud_imports_nothing_of_hearth() -> None:
    wrong = [i for i in IMPORTS if _within(i.source, "openstack_fakecloud") and _within(i.target, "hearth")]
    assert not wrong, "fakecloud must not import hearth:\n" + "\n".join(f"    {i.where()}" for i in wrong)


# --------------------------------------------------------------------------------------------------
# The checker itself


def test_the_collector_sees_every_kind_of_import() -> None:
    source = (
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "import hearth.config\n"
        "from hearth.engines import common, build_engine\n"
        "from . import views\n"
        "from .db.models import Instance\n"
        "if TYPE_CHECKING:\n"
        "    from hearth.runtime import Runtime\n"
        "def later():\n"
        "    import hearth.taskmanager\n"
    )
    known = {"hearth", "hearth.config", "hearth.engines", "hearth.engines.common", "hearth.views", "hearth.db",
             "hearth.db.models", "hearth.runtime", "hearth.taskmanager", "hearth.service"}
    collector = _Collector("hearth.service", False, known)
    collector.visit(ast.parse(source))
    assert [(i.target, i.kind) for i in collector.found] == [
        ("hearth.config", "top"), ("hearth.engines.common", "top"), ("hearth.engines", "top"),
        ("hearth.views", "top"), ("hearth.db.models", "top"), ("hearth.runtime", "type"),
        ("hearth.taskmanager", "local")]


def test_the_cycle_finder_names_the_path() -> None:
    imp = Import("a", "b", 1, "top")
    edges = {"a": {"b": [imp]}, "b": {"c": [imp]}, "c": {"a": [imp], "d": [imp]}, "d": {}}
    assert _cycles(edges) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b": [imp]}, "b": {}}) == []
