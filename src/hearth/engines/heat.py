"""Heat plumbing: reading, finding and waiting on stacks (once, for the orchestrator and migration engines),
and the Heat calls openstacksdk's orchestration proxy cannot make as-is, made through its own Stack resource.

openstacksdk 4.22's `Stack` has no field for what Heat's previews answer or for adopt data, so its proxy
calls silently drop them (checked against fakecloud):
- `create_stack(preview=True)` returns the stack without the previewed `resources`;
- `update_stack(stack, preview=True)` passes `preview` positionally as `Stack.commit`'s `prepend_key`,
  so it performs a *real* update instead of a preview (and `resource_changes` is dropped anyway);
- `create_stack(adopt_stack_data=...)` drops the adopt data and creates new resources instead;
- an update cannot send `converge` (Heat's observe-reality flag).

`HeatStack` is the SDK's Stack with those body fields added; the calls below are the SDK's own
`Resource.create` / `Stack.commit(preview=True)` on it, so requests, errors and microversions stay the SDK's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from openstack import resource
from openstack.connection import Connection
from openstack.orchestration.v1.stack import Stack

from hearth.config import Settings
from hearth.engines import common
from hearth.engines.base import EngineError, TransientError
from hearth.engines.common import WaitKind


class HeatStack(Stack):
    """openstacksdk's Stack plus the preview answers and the adopt request field."""

    #: Create preview: the resources Heat would create (nested stacks as nested lists).
    resources = resource.Body("resources", type=list)
    #: Update preview: {"added"|"deleted"|"replaced"|"unchanged"|"updated": [resource, ...]}.
    resource_changes = resource.Body("resource_changes", type=dict)
    #: Stack adopt: the abandon-format description of the existing resources (a JSON string).
    adopt_stack_data = resource.Body("adopt_stack_data")
    #: Stack update: observe each resource's live state ("observe reality") instead of trusting Heat's record.
    converge = resource.Body("converge", type=bool)


def preview_create(conn: Connection, **attrs: Any) -> HeatStack:
    """POST /stacks/preview: what a create would build; changes nothing."""
    return HeatStack.new(**attrs).create(conn.orchestration, base_path="/stacks/preview")


def preview_update(conn: Connection, stack: Any, **attrs: Any) -> HeatStack:
    """PUT /stacks/{name}/{id}/preview: what an update would change; changes nothing."""
    target = HeatStack.existing(id=stack.id, name=stack.name)
    for key, value in attrs.items():
        setattr(target, key, value)  # marks them dirty, so they form the request body
    return target.commit(conn.orchestration, preview=True)


def converge_stack(conn: Connection, stack: Any, **attrs: Any) -> HeatStack:
    """PUT /stacks/{name}/{id} with `converge`: an update that applies the template again wherever the live
    resources differ from it (what changed behind Heat), not only where the template changed."""
    target = HeatStack.existing(id=stack.id, name=stack.name)
    for key, value in {**attrs, "converge": True}.items():
        setattr(target, key, value)
    return target.commit(conn.orchestration)


def adopt_stack(conn: Connection, **attrs: Any) -> HeatStack:
    """POST /stacks with adopt_stack_data: Heat takes over existing resources instead of creating them."""
    return HeatStack.new(**attrs).create(conn.orchestration)


# --------------------------------------------------------------------------------------------------
# Stack plumbing shared by the orchestrator and migration engines: reading, finding, waiting on stacks.


def status(stack: Any) -> str:
    """A stack's status as text ("" when it reports none)."""
    return common.status_of(stack, missing="")


def stack_ref(stack: Any) -> str:
    """A stack's canonical path, `name/id`: Heat answers a bare id (or name) with a redirect to it, which
    would double every read."""
    return f"{stack.name}/{stack.id}"


def timeout_mins(settings: Settings) -> int:
    """Heat's own stack timeout: the operation timeout, so a stuck stack ends FAILED, not IN_PROGRESS."""
    return max(1, math.ceil(settings.operation_timeout_seconds / 60))


def outputs(stack: Any) -> dict[str, Any]:
    return {o.get("output_key"): o.get("output_value") for o in getattr(stack, "outputs", None) or []}


class PolledStack:
    """A stack as Heat's plain JSON, read like the SDK's Stack for what polling looks at (building the
    SDK resource for every poll was a large share of the task manager's CPU)."""

    __slots__ = ("data",)
    _FIELDS = {"status": "stack_status", "status_reason": "stack_status_reason", "name": "stack_name", "id": "id"}

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def __getattr__(self, name: str) -> Any:
        if name not in self._FIELDS:
            raise AttributeError(name)
        return self.data.get(self._FIELDS[name])

    def full(self) -> Stack:
        """The openstacksdk Stack of the same document."""
        return Stack.existing(**self.data)


def poll_stack(conn: Connection, ref: str, outputs: bool = False) -> PolledStack | None:
    """The stack (by `name/id`, id or name) as plain JSON, without its outputs unless asked; None once it is
    gone (404 or DELETE_COMPLETE). Not the SDK's get_stack, which reports adopted (ADOPT_COMPLETE) stacks
    as missing."""
    path = f"/stacks/{ref}" + ("" if outputs else "?resolve_outputs=False")
    data = common.read_json(conn.orchestration, path, f"reading stack {ref}", missing=(404,), key="stack")
    if data is None:
        return None
    stack = PolledStack(data)
    return None if stack.status == "DELETE_COMPLETE" else stack


def read_stack(conn: Connection, ref: str, outputs: bool = False) -> Stack | None:
    """The stack as openstacksdk's Stack (see poll_stack); None once it is gone."""
    polled = poll_stack(conn, ref, outputs)
    return polled.full() if polled is not None else None


def find_stack(conn: Connection, name: str, *ids: str | None, outputs: bool = False) -> Stack | None:
    """The live stack named `name`: by a recorded id first (a stack of another name does not count), else
    by the name."""
    for stack_id in dict.fromkeys(i for i in ids if i):
        stack = read_stack(conn, f"{name}/{stack_id}", outputs)
        if stack is not None and stack.name == name:
            return stack
    return read_stack(conn, name, outputs=outputs)


def wait_stack(conn: Connection, settings: Settings, ref: str, done: Callable[[Any], bool],
               failed: Callable[[Any], str | bool | None], what: str, kind: WaitKind,
               on_transient: Callable[[TransientError], None] | None = None) -> Stack:
    """Poll the stack as plain JSON until `done`; `failed` (given the SDK Stack) is asked only once the stack
    stopped moving. The stack disappearing meanwhile is an EngineError."""

    def fetch() -> PolledStack:
        stack = poll_stack(conn, ref)
        if stack is None:
            raise EngineError(f"stack {ref} disappeared while waiting for {what}")
        return stack

    def failed_check(stack: PolledStack) -> str | bool | None:
        return None if status(stack).endswith("_IN_PROGRESS") else failed(stack.full())

    return common.wait_for(fetch, done, failed_check, what, timeout=None, settings=settings,
                           on_transient=on_transient, kind=kind).full()


def settle(conn: Connection, settings: Settings, stack: Any) -> Any:
    """Wait out an action already in progress (a resumed operation, or Heat rolling back)."""
    if not status(stack).endswith("_IN_PROGRESS"):
        return stack
    return wait_stack(conn, settings, stack_ref(stack), lambda s: not status(s).endswith("_IN_PROGRESS"),
                      lambda _s: None, f"stack {stack.name} to finish {status(stack)}", WaitKind.STACK_SETTLE)
