"""The orchestrator's stack-update wait ends on every end state, not only UPDATE_* and ROLLBACK_* ones:
a stack taken over by something else mid-update is a failure carrying Heat's reason at once, never a
wait until the operation timeout."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from hearth.engines import build_engine, templates
from hearth.engines.base import EngineError, LocalContext

BIGGER_FLAVOR = "3"


@pytest.fixture
def orchestrator(settings, connections) -> Iterator[Any]:
    built = build_engine("orchestrator", settings, connections)
    yield built
    built.close()


def test_a_stack_deleted_under_an_update_fails_the_update_with_heats_reason(orchestrator, make_spec, fakecloud,
                                                                           os_conn, cloud_state, frozen_clock):
    spec = make_spec()
    res = orchestrator.provision(spec, LocalContext())  # zero delays: done though the clock stands still
    fakecloud.control.set_delays(server_resize=60)
    # While the clock stands still the resize does not finish, so the update is still running when someone
    # deletes the stack; that delete fails too (Nova will not detach the volume of a server mid-resize), so
    # the stack neither disappears nor reaches an UPDATE_* or ROLLBACK_* end state (DELETE_IN_PROGRESS, then
    # DELETE_FAILED). Waiting for UPDATE_*/ROLLBACK_* only, the update would hang until the operation timeout.
    ctx = LocalContext()
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(orchestrator.resize_flavor, spec.replace(flavor_id=BIGGER_FLAVOR), res, ctx)
        stack = None
        while stack is None or stack.status != "UPDATE_IN_PROGRESS":
            assert not future.done(), future.exception()
            stack = next(os_conn.orchestration.stacks(name=templates.stack_name(spec.instance_id)), None)
        os_conn.orchestration.delete_stack(stack.id)
        with pytest.raises(EngineError) as failure:
            future.result(timeout=60)
    message = str(failure.value)
    assert "timed out" not in message, message
    assert message.startswith(f"resizing to flavor {BIGGER_FLAVOR} failed: stack {stack.name} update:"), message
    assert "the update was interrupted: the stack is DELETE_" in message, message
    assert "Stack DELETE started" in message or "Cannot 'detach_volume'" in message, message  # Heat's reason
    assert ctx.events[-1][0] == "error" and "interrupted" in ctx.events[-1][1]

    frozen_clock.advance(120)  # the resize ends, so Nova lets the volume go again
    orchestrator.delete(spec, res, LocalContext())  # the instance's delete still cleans everything up
    assert cloud_state.hearth_leftovers() == {}
