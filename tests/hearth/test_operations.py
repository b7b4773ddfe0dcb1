"""The operation vocabulary (hearth.operations) and its one failure policy: an operation that failed in its
worker and one given up on after its worker kept dying leave the instance in the same state.

The runtime has no cloud it can reach (its cloud is not in any clouds.yaml): every operation crashes or fails
in-process the moment it asks for a connection, and a resize's re-read after the failure cannot read the
cloud either (unknown is not broken: the instance stays usable, with the drift shown)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from hearth.config import Settings
from hearth.db.models import Event, Instance, Operation, OperationState, Task, utcnow
from hearth.operations import KINDS, OperationKind, kind_info, label_of, task_after_failure
from hearth.runtime import Runtime, build_runtime
from hearth.taskmanager.context import OperationContext
from hearth.taskmanager.handlers import execute
from hearth.taskmanager.worker import MAX_ATTEMPTS, claim_next, recover_stale

PARAMS: dict[str, dict[str, Any]] = {
    OperationKind.RESIZE_FLAVOR: {"flavor_id": "2"},
    OperationKind.RESIZE_VOLUME: {"volume_size": 2},
    OperationKind.APPLY_RULES: {"rules": [], "added": []},
    OperationKind.REBUILD: {"image_id": "img2"},
}
# What a failure leaves, however it failed (see hearth.operations).
AFTER_FAILURE = {
    OperationKind.PROVISION: Task.BUILDING_ERROR,
    OperationKind.DELETE: Task.ERROR,
    OperationKind.RESIZE_FLAVOR: Task.NONE,  # the re-read could not read the cloud: not known to be broken
    OperationKind.RESIZE_VOLUME: Task.NONE,
    OperationKind.APPLY_RULES: Task.NONE,
    OperationKind.ADOPT: Task.NONE,  # the resources are untouched: the instance stays with natives, usable
    OperationKind.RELEASE: Task.NONE,
    OperationKind.RESTART: Task.NONE,  # the server is as Nova has it; the health check shows the database
    OperationKind.REBUILD: Task.ERROR,  # the server may be left without a usable image
    OperationKind.RECONCILE: Task.NONE,  # as a resize: decided by the re-read, which could not read the cloud
}


@pytest.fixture
def unreachable(db_url: str, tmp_path: Path) -> Iterator[Runtime]:
    """A runtime (engine = migration, so adopt and release run) whose cloud cannot be connected to."""
    settings = Settings(home=tmp_path, db_url=db_url, cloud="nowhere", clouds_yaml=tmp_path / "clouds.yaml",
                        engine="migration", stale_after_seconds=30.0)
    runtime = build_runtime(settings)
    yield runtime
    runtime.close()


def _queue(runtime: Runtime, kind: OperationKind) -> str:
    """An instance built and idle before, now with `kind` queued (its task that kind's); the instance id."""
    owner = "orchestrator" if kind == OperationKind.RELEASE else "natives"
    with runtime.sessions.begin() as session:
        inst = Instance(project_id="p", name=f"op-{kind}", engine=owner, datastore="postgresql",
                        datastore_version="16", flavor_id="1", volume_size=1, port=5432, task=KINDS[kind].task,
                        image_id="img", server_id="srv", volume_id="vol", secgroup_id="sg", server_status="ACTIVE",
                        stack_id="stack" if owner == "orchestrator" else None)
        session.add(inst)
        session.flush()
        session.add(Operation(instance_id=inst.id, kind=kind.value, params=PARAMS.get(kind, {}), journal={}))
        return inst.id


def _fail_in_process(runtime: Runtime, instance_id: str) -> None:
    op = claim_next(runtime, "worker/1")
    assert op is not None and op.instance_id == instance_id
    execute(runtime, op, OperationContext(runtime.sessions, op))


def _abandon(runtime: Runtime, instance_id: str) -> None:
    """The operation's worker died MAX_ATTEMPTS times: the last claim went silent a minute ago."""
    op = claim_next(runtime, "worker/1")
    assert op is not None and op.instance_id == instance_id
    with runtime.sessions.begin() as session:
        session.execute(update(Operation).where(Operation.id == op.id).values(
            attempts=MAX_ATTEMPTS, step="somewhere", heartbeat_at=utcnow() - timedelta(seconds=60)))
    assert recover_stale(runtime, set()) == 1


def _outcome(runtime: Runtime, instance_id: str) -> tuple[str, str, str | None]:
    """The instance's task, its operation's state, and whether the fault is the operation's error."""
    with runtime.sessions() as session:
        inst = session.get(Instance, instance_id)
        op = session.scalars(select(Operation).where(Operation.instance_id == instance_id)).one()
        errors = [e.message for e in session.scalars(select(Event).where(Event.instance_id == instance_id,
                                                                         Event.level == "error"))]
        assert inst.fault == op.error and inst.fault_at is not None and op.error in errors
        return inst.task, op.state, op.error


def test_every_kind_is_declared_once_with_the_strings_the_database_holds():
    assert {k.value for k in OperationKind} == {"provision", "resize_flavor", "resize_volume", "apply_rules",
                                                "delete", "adopt", "release", "restart", "rebuild", "reconcile"}
    assert set(KINDS) == set(OperationKind)
    assert kind_info("adopt") is KINDS[OperationKind.ADOPT]  # a stored str finds its kind
    assert [k for k in OperationKind if KINDS[k].relocates] == [OperationKind.ADOPT, OperationKind.RELEASE]
    assert label_of("resize_flavor") == "resize" and label_of("from-a-newer-hearth") == "from-a-newer-hearth"


def test_the_failure_policy():
    # a resize is decided by the re-read, and counts as broken until the re-read answered
    for kind in (OperationKind.RESIZE_FLAVOR, OperationKind.RESIZE_VOLUME, OperationKind.RECONCILE):
        assert task_after_failure(kind) == Task.ERROR
        assert task_after_failure(kind, usable=False) == Task.ERROR
        assert task_after_failure(kind, usable=True) == Task.NONE
    # the others whatever the re-read said (if they re-read at all)
    for kind in (OperationKind.PROVISION, OperationKind.DELETE, OperationKind.APPLY_RULES, OperationKind.ADOPT,
                 OperationKind.RELEASE):
        assert {task_after_failure(kind, usable) for usable in (None, False, True)} == {AFTER_FAILURE[kind]}
    assert task_after_failure("from-a-newer-hearth") == Task.ERROR  # nothing known of what it did


@pytest.mark.parametrize("kind", list(OperationKind), ids=str)
def test_a_failed_and_an_abandoned_operation_leave_the_same_state(unreachable, kind):
    """The adopt case is the one that used to differ: crashed in its worker it ended NONE, given up on after
    its worker died three times it ended ERROR, though neither touched the instance's resources."""
    crashed, abandoned = _queue(unreachable, kind), _queue(unreachable, kind)
    _fail_in_process(unreachable, crashed)
    _abandon(unreachable, abandoned)
    crashed_task, crashed_state, crashed_error = _outcome(unreachable, crashed)
    abandoned_task, abandoned_state, abandoned_error = _outcome(unreachable, abandoned)
    assert (crashed_task, crashed_state) == (abandoned_task, abandoned_state) == (AFTER_FAILURE[kind],
                                                                                  OperationState.FAILED)
    assert crashed_error.startswith(f"{label_of(kind)} failed: ")
    assert "given up after its worker stopped responding 3 times (last step: somewhere)" in abandoned_error
