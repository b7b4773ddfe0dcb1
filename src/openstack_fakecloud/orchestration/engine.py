"""The stack engine: runs an action's resource tasks in graph order on the cloud scheduler.

A run is a set of nodes (create / update / replace / delete one resource) with the nodes each must
wait for. Ready nodes start together (independent resources run concurrently): the plugin's
`handle_*` is called once, then `check_*_complete` is polled on scheduler ticks until it is done.
No threads and no blocking: every step is a timer, and a stale timer (the stack moved on to another
action, e.g. a delete during a create) finds its run's generation changed and does nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from openstack_fakecloud.errors import NotFound
from openstack_fakecloud.orchestration.errors import ResourceFailure, StackValidationFailed, failure_of
from openstack_fakecloud.orchestration.model import (
    ADOPT,
    CHECK,
    COMPLETE,
    CREATE,
    DELETE,
    FAILED,
    IN_PROGRESS,
    INIT,
    UPDATE,
    ResourceRecord,
    Stack,
)
from openstack_fakecloud.orchestration.resources.base import PluginContext, Resource
from openstack_fakecloud.orchestration.stackdefn import Prepared, StackResolver, check_properties, plugin_class
from openstack_fakecloud.orchestration.update import ADD, IN_PLACE, REPLACE, UNCHANGED, decide

if TYPE_CHECKING:
    from openstack_fakecloud.state import Cloud

POLL_INTERVAL = 0.05  # cloud seconds between completion checks once the first check found work left
# Heat's `action_retry_limit` default: a resource whose create ends in ERROR (ResourceInError) is deleted
# and created again up to this many times, after 2**attempt seconds (scaled by Delays.stack_retry_backoff).
ACTION_RETRY_LIMIT = 5


@dataclass
class Node:
    key: str
    mode: str  # "create", "update" (in place or replace, decided when it starts), "delete", "adopt", "check"
    name: str
    requires: set[str] = field(default_factory=set)
    state: str = "waiting"  # waiting, running, done, failed
    record: ResourceRecord | None = None  # the record a delete node removes
    plugin: Resource | None = None
    check: str = ""  # which completion check to poll: create, update, delete
    action: str = CREATE  # the resource action reported in events
    retries: int = 0  # creates retried after ResourceInError (Heat's action_retry_limit)
    retrying: bool = False  # the failed physical resource is being deleted before the next create


@dataclass
class Run:
    stack_id: str
    generation: int
    action: str  # the stack action: CREATE, UPDATE, DELETE, ROLLBACK
    prepared: Prepared | None
    nodes: dict[str, Node]
    cleanup: Callable[[], dict[str, Node]] | None = None  # update: the deletes that follow phase one
    failure: str | None = None
    finished: bool = False
    aggregate: bool = False  # check: one resource failing does not stop the others
    adopt: dict[str, Any] = field(default_factory=dict)  # adopt: the abandon data's resources by name
    converge: bool = False  # update: observe each resource's live state (Heat's `converge` flag)


class Engine:
    """Owns the runs in flight; the backend owns the stacks and asks the engine to act on them."""

    def __init__(self, cloud: Cloud, events: Callable[[Stack, ResourceRecord, str, str, str], None],
                 finished: Callable[[Stack, Run], None]) -> None:
        self.cloud = cloud
        self.runs: dict[str, Run] = {}
        self._event = events
        self._finished = finished
        self.stacks: dict[str, Stack] = {}

    # plugins ------------------------------------------------------------------------------------
    def context(self, stack: Stack) -> PluginContext:
        return PluginContext(self.cloud, stack.project_id, stack.user_id, stack.name, stack.id, stack.is_admin)

    def plugin(self, stack: Stack, record: ResourceRecord) -> Resource:
        cls = plugin_class(record.type, stack.environment, record.name)
        return cls(self.context(stack), record)

    def plugins(self, stack: Stack) -> dict[str, Resource]:
        result = {}
        for name, record in stack.resources.items():
            try:
                result[name] = self.plugin(stack, record)
            except StackValidationFailed:
                continue
        return result

    def resolver(self, stack: Stack, prepared: Prepared) -> StackResolver:
        identity = {"OS::stack_id": stack.id, "OS::stack_name": stack.name, "OS::project_id": stack.project_id}
        return StackResolver(prepared, identity, live=True, plugins=self.plugins(stack))

    # starting runs --------------------------------------------------------------------------------
    def start(self, stack: Stack, action: str, prepared: Prepared | None, nodes: dict[str, Node],
              cleanup: Callable[[], dict[str, Node]] | None = None, converge: bool = False) -> Run:
        stack.generation += 1
        run = Run(stack.id, stack.generation, action, prepared, nodes, cleanup, converge=converge)
        self.runs[stack.id] = run
        self.cloud.after("stack_overhead", self._advance, stack.id, run.generation)
        if stack.timeout_mins:
            self.cloud.scheduler.call_later(float(stack.timeout_mins) * 60, self._timeout, stack.id, run.generation)
        return run

    def create_nodes(self, stack: Stack, prepared: Prepared) -> dict[str, Node]:
        nodes = {}
        for name in prepared.active:
            defn = prepared.template.resources[name]
            stack.resources[name] = ResourceRecord(name, defn.type, str(uuid.uuid4()),
                                                   requires=sorted(prepared.graph.requires[name]))
            nodes[name] = Node(name, "create", name, set(prepared.graph.requires[name]))
        return nodes

    def adopt_nodes(self, stack: Stack, prepared: Prepared) -> dict[str, Node]:
        nodes = self.create_nodes(stack, prepared)
        for node in nodes.values():
            node.mode, node.action = "adopt", ADOPT
        return nodes

    def check_nodes(self, stack: Stack) -> dict[str, Node]:
        """Every resource is checked, independently of the others (Heat aggregates the failures)."""
        return {name: Node(name, "check", name, action=CHECK) for name in stack.resources}

    def abort(self, stack: Stack, reason: str) -> None:
        """Stop the stack's run where it stands (cancel_update): what was in flight is marked failed."""
        run = self.runs.get(stack.id)
        if run is None or run.finished:
            return
        for node in run.nodes.values():
            if node.state == "running":
                node.state = "failed"
                record = node.record if node.mode == "delete" else stack.resources.get(node.name)
                if record is not None:
                    self._event(stack, record, node.action, FAILED, f"{node.action} aborted ({reason})")
        run.finished = True

    def update_nodes(self, stack: Stack, prepared: Prepared) -> dict[str, Node]:
        return {name: Node(name, "update", name, set(prepared.graph.requires[name])) for name in prepared.active}

    def delete_nodes(self, records: list[ResourceRecord]) -> dict[str, Node]:
        """Delete nodes in reverse dependency order: a record waits for every record that required it."""
        nodes: dict[str, Node] = {}
        for index, record in enumerate(records):
            nodes[f"{record.name}#{index}"] = Node(f"{record.name}#{index}", "delete", record.name, record=record,
                                                   action=DELETE)
        by_name: dict[str, list[str]] = {}
        for key, node in nodes.items():
            by_name.setdefault(node.name, []).append(key)
        for node in nodes.values():
            assert node.record is not None
            for need in node.record.requires:
                for other in by_name.get(need, []):
                    nodes[other].requires.add(node.key)
        return nodes

    # the loop ------------------------------------------------------------------------------------
    def _live(self, stack_id: str, generation: int) -> Run | None:
        run = self.runs.get(stack_id)
        return run if run is not None and run.generation == generation and not run.finished else None

    def _advance(self, stack_id: str, generation: int) -> None:
        """Start every node whose requirements are done; finish the run when nothing is left."""
        run = self._live(stack_id, generation)
        if run is None:
            return
        stack = self.stacks[stack_id]
        progress = True
        while progress and (run.failure is None or run.aggregate):
            progress = False
            for node in list(run.nodes.values()):
                if run.failure is not None and not run.aggregate:
                    break
                if node.state == "waiting" and all(run.nodes[r].state == "done" for r in node.requires
                                                   if r in run.nodes):
                    self._launch(stack, run, node)
                    progress = True
                    if self._live(stack_id, generation) is None:
                        return
        if any(n.state == "running" for n in run.nodes.values()):
            return
        if run.failure is None and any(n.state == "waiting" for n in run.nodes.values()):
            return
        if run.failure is None and run.cleanup is not None:
            run.nodes, run.cleanup = run.cleanup(), None
            self._advance(stack_id, generation)
            return
        run.finished = True
        self._finished(stack, run)

    def _launch(self, stack: Stack, run: Run, node: Node) -> None:
        node.state = "running"
        try:
            needs_poll = self._begin(stack, run, node)
        except Exception as err:  # noqa: BLE001 - any plugin failure fails the resource, not the cloud
            self._fail(stack, run, node, err)
            return
        if needs_poll:
            self.cloud.after("stack_overhead", self._poll, stack.id, run.generation, node.key)
        else:
            self._done(stack, run, node)

    def _poll(self, stack_id: str, generation: int, key: str) -> None:
        run = self._live(stack_id, generation)
        if run is None:
            return
        stack, node = self.stacks[stack_id], run.nodes.get(key)
        if node is None or node.state != "running" or node.plugin is None:
            return
        try:
            complete = getattr(node.plugin, f"check_{node.check}_complete")()
        except Exception as err:  # noqa: BLE001
            if self._retry_create(stack, run, node, err):
                return
            self._fail(stack, run, node, err)
            self._advance(stack_id, generation)
            return
        if complete and node.retrying:
            node.retrying = False
            backoff = (2 ** node.retries) * self.cloud.delays.stack_retry_backoff
            self.cloud.scheduler.call_later(backoff, self._recreate, stack_id, generation, key)
        elif complete:
            self._done(stack, run, node)
            self._advance(stack_id, generation)
        else:
            delay = max(self.cloud.delays.stack_overhead, POLL_INTERVAL)
            self.cloud.scheduler.call_later(delay, self._poll, stack_id, generation, key)

    # create retries (Heat's action_retry_limit) ------------------------------------------------
    def _retry_create(self, stack: Stack, run: Run, node: Node, err: Exception) -> bool:
        """A create that went to ERROR: delete what was made and create it again, as Heat does."""
        failure = failure_of(err)
        if node.check != "create" or failure.kind != "ResourceInError" or node.retries >= ACTION_RETRY_LIMIT:
            return False
        assert node.plugin is not None
        record = node.plugin.record
        self._event(stack, record, node.action, FAILED, f"{failure.kind}: resources.{node.name}: {failure.message}")
        node.retries += 1
        node.retrying, node.check = True, "delete"
        self._event(stack, record, DELETE, IN_PROGRESS, "state changed")
        node.plugin.handle_delete()
        self.cloud.after("stack_overhead", self._poll, stack.id, run.generation, node.key)
        return True

    def _recreate(self, stack_id: str, generation: int, key: str) -> None:
        run = self._live(stack_id, generation)
        node = run.nodes.get(key) if run is not None else None
        if run is None or node is None or node.state != "running" or node.plugin is None:
            return
        stack, record = self.stacks[stack_id], node.plugin.record
        self._event(stack, record, DELETE, COMPLETE, "state changed")
        stack.resources[node.name] = record  # the DELETE_COMPLETE event dropped it; this is the same resource
        record.physical_id = None
        node.check = "create"
        self._event(stack, record, node.action, IN_PROGRESS, "state changed")
        try:
            node.plugin.handle_create(record.properties)
        except Exception as err:  # noqa: BLE001
            self._fail(stack, run, node, err)
            self._advance(stack_id, generation)
            return
        self.cloud.after("stack_overhead", self._poll, stack_id, generation, key)

    def _timeout(self, stack_id: str, generation: int) -> None:
        run = self._live(stack_id, generation)
        if run is None:
            return
        stack = self.stacks[stack_id]
        for node in run.nodes.values():
            if node.state == "running":
                node.state = "failed"
                record = node.record if node.mode == "delete" else stack.resources.get(node.name)
                if record is not None:
                    self._event(stack, record, node.action, FAILED, f"{node.action} aborted (Timed out)")
        run.failure = "Timed out"
        run.cleanup = None
        self._advance(stack_id, generation)

    # one node ------------------------------------------------------------------------------------
    def _begin(self, stack: Stack, run: Run, node: Node) -> bool:
        """Start a node's work; True when there is a completion check to poll."""
        if node.mode == "delete":
            return self._begin_delete(stack, node)
        if node.mode == "check":
            return self._begin_check(stack, node)
        assert run.prepared is not None
        prepared = run.prepared
        record = stack.resources.get(node.name)
        props = self._properties(stack, prepared, node.name)
        policy = prepared.template.resources[node.name].deletion_policy
        if node.mode == "adopt":
            record = self._fresh(stack, prepared, node.name, record)
            record.data["deletion_policy"] = policy
            return self._begin_adopt(stack, run, node, record, props)
        new_type = prepared.template.resources[node.name].type
        plugin = self.plugin(stack, record) if record is not None and record.type == new_type else None
        decision, changed = (ADD, set()) if node.mode == "create" else decide(record, new_type, plugin, props)
        if run.converge and decision in (UNCHANGED, IN_PLACE) and plugin is not None:
            decision, changed = self._observed(plugin, decision, changed, props)
        if decision == ADD:
            record = self._fresh(stack, prepared, node.name, record)
            record.data["deletion_policy"] = policy
            return self._begin_create(stack, node, record, props, CREATE)
        assert record is not None
        record.data["deletion_policy"] = policy
        if decision == REPLACE:
            return self._replace(stack, prepared, node, record, props)
        record.requires = sorted(prepared.graph.requires[node.name])
        if decision == UNCHANGED:
            return False
        assert plugin is not None
        old = record.properties
        node.plugin, node.check, node.action = plugin, "update", UPDATE
        self._event(stack, record, UPDATE, IN_PROGRESS, "state changed")
        plugin.handle_update(old, props, changed)
        record.properties = props
        return True

    @staticmethod
    def _observed(plugin: Resource, decision: str, changed: set[str], props: dict[str, Any]) -> tuple[str, set[str]]:
        """Observe reality (a converging update): properties whose live state differs from the template are
        applied again in place; a resource that is gone is replaced, as Heat does."""
        try:
            drifted = plugin.drifted(props)
        except NotFound:
            return REPLACE, set(props)
        if not drifted:
            return decision, changed
        return IN_PLACE, changed | drifted

    def _begin_adopt(self, stack: Stack, run: Run, node: Node, record: ResourceRecord, props: dict[str, Any]) -> bool:
        """Take over the physical resource named in the abandon data; nothing is created or changed."""
        plugin = self.plugin(stack, record)
        node.plugin, node.check, node.action = plugin, "adopt", ADOPT
        record.created_time = record.created_time or self._now()
        self._event(stack, record, ADOPT, IN_PROGRESS, "state changed")
        record.properties = props
        plugin.handle_adopt(run.adopt.get(node.name) or {})
        return True

    def _begin_check(self, stack: Stack, node: Node) -> bool:
        record = stack.resources.get(node.name)
        if record is None or record.action == INIT:
            node.state = "skipped"
            return False
        plugin = self.plugin(stack, record)
        node.plugin, node.check = plugin, "check"
        self._event(stack, record, CHECK, IN_PROGRESS, "state changed")
        plugin.handle_check()
        return True

    def _properties(self, stack: Stack, prepared: Prepared, name: str) -> dict[str, Any]:
        resolver = self.resolver(stack, prepared)
        return check_properties(prepared, name, resolver, self.context(stack).scope)

    def _fresh(self, stack: Stack, prepared: Prepared, name: str, old: ResourceRecord | None) -> ResourceRecord:
        defn = prepared.template.resources[name]
        record = old if old is not None and old.action == INIT else ResourceRecord(name, defn.type,
                                                                                     str(uuid.uuid4()))
        record.type = defn.type
        record.requires = sorted(prepared.graph.requires[name])
        stack.resources[name] = record
        return record

    def _begin_create(self, stack: Stack, node: Node, record: ResourceRecord, props: dict[str, Any],
                      action: str) -> bool:
        plugin = self.plugin(stack, record)
        node.plugin, node.check, node.action = plugin, "create", action
        record.created_time = record.created_time or self._now()
        self._event(stack, record, action, IN_PROGRESS, "state changed")
        record.properties = props
        plugin.handle_create(props)
        return True

    def _replace(self, stack: Stack, prepared: Prepared, node: Node, old: ResourceRecord,
                 props: dict[str, Any]) -> bool:
        """Create the replacement now; the old physical resource is deleted after the update's phase one."""
        stack.retired.append(old)
        self.plugin(stack, old).prepare_for_replace()
        defn = prepared.template.resources[node.name]
        record = ResourceRecord(node.name, defn.type, str(uuid.uuid4()),
                                requires=sorted(prepared.graph.requires[node.name]), created_time=self._now())
        record.data["deletion_policy"] = old.data.get("deletion_policy", "Delete")
        stack.resources[node.name] = record
        return self._begin_create(stack, node, record, props, UPDATE)

    def _begin_delete(self, stack: Stack, node: Node) -> bool:
        record = node.record
        assert record is not None
        node.action = DELETE
        if record.action == INIT or (record.physical_id is None and record.status != IN_PROGRESS):
            node.state = "skipped"
            return False
        plugin = self.plugin(stack, record)
        node.plugin, node.check = plugin, "delete"
        self._event(stack, record, DELETE, IN_PROGRESS, "state changed")
        defn_policy = record.data.get("deletion_policy", "Delete")
        if defn_policy == "Retain":
            return False
        plugin.handle_delete()
        return True

    def _done(self, stack: Stack, run: Run, node: Node) -> None:
        skipped = node.state == "skipped"
        node.state = "done"
        if node.plugin is None or skipped:
            return
        record = node.record if node.mode == "delete" else node.plugin.record
        assert record is not None
        self._event(stack, record, node.action, COMPLETE, "state changed")

    def _fail(self, stack: Stack, run: Run, node: Node, err: Exception) -> None:
        node.state = "failed"
        failure: ResourceFailure = failure_of(err)
        record = node.record if node.mode == "delete" else stack.resources.get(node.name)
        reason = f"{failure.kind}: resources.{node.name}: {failure.message}"
        if record is not None:
            self._event(stack, record, node.action, FAILED, reason)
        if run.failure is None:
            run.failure = f"Resource {node.action} failed: {reason}"

    def _now(self) -> str:
        return self.cloud.clock.wall().strftime("%Y-%m-%dT%H:%M:%SZ")
