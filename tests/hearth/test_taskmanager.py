"""The task manager: a worker process killed mid-provision is resumed from its journal by a fresh task
manager without duplicating anything; work queued by another process's API is picked up through the queue
signal; an expiring retry backoff is picked up with nothing rung; stop/start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from hearth import service, taskmanager
from hearth.db.models import Event, Instance, Operation, OperationState, Task, utcnow
from hearth.runtime import build_runtime
from hearth.taskmanager import TaskManager
from hearth.taskmanager.context import OperationContext, Superseded
from hearth.taskmanager.worker import claim_next, recover_stale

WORKER_SCRIPT = """
import time
from hearth.config import load_settings
from hearth.runtime import build_runtime
from hearth.taskmanager import TaskManager
TaskManager(build_runtime(load_settings()), workers=1).start()
time.sleep(600)
"""

# A task manager that only the queue signal can wake: no fallback look, no worker safety net within the test.
SIGNALLED_WORKER_SCRIPT = """
import sys, time
import hearth.taskmanager as tm
from hearth.config import load_settings
from hearth.runtime import build_runtime
tm.FALLBACK = tm.IDLE_WAIT = 600.0
tm.TaskManager(build_runtime(load_settings()), workers=1).start()
print("listening", flush=True)
time.sleep(600)
"""


def _child_env(settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
    env.update(HEARTH_HOME=str(settings.home), HEARTH_DB_URL=settings.database_url, HEARTH_CLOUD=settings.cloud,
               HEARTH_CLOUDS_YAML=str(settings.clouds_yaml), HEARTH_HEARTBEAT_SECONDS="0.2")
    return env


def _create(runtime, project_id: str, name: str) -> Instance:
    """A recorded create (flavor 1, a 1 GB volume): the instance, its provision queued."""
    return service.create_instance(runtime, project_id, name=name, flavor_ref="1", volume_size=1).record(runtime)


def _operation(runtime, instance_id: str) -> Operation:
    with runtime.sessions() as session:
        return session.scalars(select(Operation).where(Operation.instance_id == instance_id)).one()


def test_killed_worker_is_resumed_from_its_journal_without_duplicates(hearth_settings, hearth_runtime, fakecloud):
    control = fakecloud.control
    control.set_delays(server_boot=5.0)
    control.freeze()  # the server stays in BUILD: the worker is mid-provision when it dies
    inst = _create(hearth_runtime, "proj-crash", "crash")
    child = subprocess.Popen([sys.executable, "-c", WORKER_SCRIPT], env=_child_env(hearth_settings))
    try:
        deadline = time.monotonic() + 60
        while not (_operation(hearth_runtime, inst.id).journal or {}).get("server_id"):
            assert child.poll() is None, "the worker process exited"
            assert time.monotonic() < deadline, "the worker never created the server"
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)

    op = _operation(hearth_runtime, inst.id)
    assert (op.state, op.attempts) == (OperationState.RUNNING, 1)
    server_id = op.journal["server_id"]
    assert {s["id"] for s in fakecloud.control.inventory("demo")["servers"]} == {server_id}
    control.freeze(False)
    control.advance(10)

    # a fresh task manager (another process, as far as the database can tell) resumes it
    fresh = build_runtime(hearth_settings.model_copy(update={"stale_after_seconds": 0.5}))
    try:
        assert TaskManager(fresh, workers=2).run_until_idle(90)
    finally:
        fresh.close()

    op = _operation(hearth_runtime, inst.id)
    assert (op.state, op.attempts, op.error) == (OperationState.SUCCEEDED, 2, None)
    with hearth_runtime.sessions() as session:
        row = session.get(Instance, inst.id)
        assert (row.task, row.server_status, row.server_id) == (Task.NONE, "ACTIVE", server_id)
        messages = [e.message for e in session.scalars(select(Event).where(Event.instance_id == inst.id))]
    assert any("resuming from its journal" in m for m in messages)
    inventory = fakecloud.control.inventory("demo")
    assert [s["id"] for s in inventory["servers"]] == [server_id]  # no second server
    volumes = [v for v in inventory["volumes"] if v["name"] == f"hearth-{inst.id}-data"]
    assert len(volumes) == 1 and volumes[0]["attachments"][0]["server_id"] == server_id
    assert len([g for g in inventory["security_groups"] if g["name"] == f"hearth-{inst.id}"]) == 1
    assert inventory["servers"][0]["status"] == "ACTIVE"


def _wait_until_succeeded(runtime, instance_id: str, child: subprocess.Popen, never: str) -> None:
    """Until the instance's operation succeeded, while the task manager process `child` stays up (90 s)."""
    deadline = time.monotonic() + 90
    while _operation(runtime, instance_id).state != OperationState.SUCCEEDED:
        assert child.poll() is None, "the worker process exited"
        assert time.monotonic() < deadline, never
        time.sleep(0.05)


def test_a_task_manager_process_takes_work_queued_before_it_started(hearth_settings, hearth_runtime, fakecloud):
    """Work queued while no task manager ran is taken by one started later in another process."""
    inst = _create(hearth_runtime, "proj-poll", "polled")
    assert _operation(hearth_runtime, inst.id).state == OperationState.QUEUED
    child = subprocess.Popen([sys.executable, "-c", WORKER_SCRIPT], env=_child_env(hearth_settings))
    try:
        _wait_until_succeeded(hearth_runtime, inst.id, child, "the polling task manager never finished the operation")
    finally:
        child.terminate()
        child.wait(30)
    inventory = fakecloud.control.inventory("demo")
    servers = [s for s in inventory["servers"] if s["name"].startswith(f"hearth-{inst.id}")]
    assert len(servers) == 1 and servers[0]["status"] == "ACTIVE"
    volumes = [v for v in inventory["volumes"] if v["name"] == f"hearth-{inst.id}-data"]
    assert len(volumes) == 1 and volumes[0]["status"] == "in-use"
    assert [a["server_id"] for a in volumes[0]["attachments"]] == [servers[0]["id"]]
    groups = [g for g in inventory["security_groups"] if g["name"] == f"hearth-{inst.id}"]
    assert len(groups) == 1
    with hearth_runtime.sessions() as session:
        row = session.get(Instance, inst.id)
        assert (row.server_id, row.volume_id, row.secgroup_id) == (servers[0]["id"], volumes[0]["id"], groups[0]["id"])


def test_work_queued_by_another_process_wakes_a_sleeping_task_manager(hearth_settings, hearth_runtime, fakecloud):
    """The task manager process sleeps on the queue signal (LISTEN/NOTIFY on PostgreSQL, its socket on SQLite),
    with its fallback look out of reach: the API's wake after the commit is what gets the operation done."""
    child = subprocess.Popen([sys.executable, "-c", SIGNALLED_WORKER_SCRIPT], env=_child_env(hearth_settings),
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "listening"
        inst = _create(hearth_runtime, "proj-wake", "woken")
        _wait_until_succeeded(hearth_runtime, inst.id, child, "the sleeping task manager never took the operation")
    finally:
        child.terminate()
        child.wait(30)
    with hearth_runtime.sessions() as session:
        assert session.get(Instance, inst.id).server_status == "ACTIVE"


def test_an_expiring_retry_backoff_is_picked_up_with_nothing_rung(hearth_runtime, fakecloud, monkeypatch):
    """Nothing rings when a requeued operation's retry_at comes due: the watcher sleeps until then."""
    monkeypatch.setattr(taskmanager, "FALLBACK", 600.0)
    monkeypatch.setattr(taskmanager, "IDLE_WAIT", 600.0)
    inst = _create(hearth_runtime, "proj-retry", "later")
    with hearth_runtime.sessions.begin() as session:
        op = session.scalars(select(Operation).where(Operation.instance_id == inst.id)).one()
        op.retry_at = utcnow() + timedelta(seconds=1.5)
    tm = TaskManager(hearth_runtime, workers=1).start()
    try:
        deadline = time.monotonic() + 60
        while _operation(hearth_runtime, inst.id).state != OperationState.SUCCEEDED:
            assert time.monotonic() < deadline, "the operation was never taken after its backoff"
            time.sleep(0.05)
    finally:
        tm.stop()


def test_wake_with_nobody_listening_is_harmless(hearth_runtime):
    inst = _create(hearth_runtime, "proj-alone", "alone")
    taskmanager.wake(hearth_runtime)  # create_instance rang once already; again, still nobody there
    assert _operation(hearth_runtime, inst.id).state == OperationState.QUEUED


def test_a_superseded_worker_can_no_longer_append_events(hearth_settings, hearth_runtime, fakecloud):
    """Events are fenced like the journal and the step: once another worker has taken the operation over,
    the old worker's event raises Superseded and nothing reaches the instance's log."""
    inst = _create(hearth_runtime, "proj-fence", "fenced")
    first = claim_next(hearth_runtime, "worker-old/1")
    assert first is not None and first.instance_id == inst.id
    old = OperationContext(hearth_runtime.sessions, first)
    old.event("written while the claim holds")

    # the old worker is judged dead: its operation is re-queued and claimed by another worker
    judge = build_runtime(hearth_settings.model_copy(update={"stale_after_seconds": 0.0}), migrate=False)
    try:
        assert recover_stale(judge, set()) == 1
        second = claim_next(judge, "worker-new/1")
    finally:
        judge.close()
    assert second is not None and second.id == first.id and second.claim != first.claim
    new = OperationContext(hearth_runtime.sessions, second)
    new.event("written by the new owner")

    with pytest.raises(Superseded):
        old.event("written after the takeover")
    with pytest.raises(Superseded):
        old.step("a late step")
    with pytest.raises(Superseded):
        old.record(server_id="late")

    with hearth_runtime.sessions() as session:
        messages = [e.message for e in session.scalars(select(Event).where(Event.instance_id == inst.id))]
        op = session.get(Operation, first.id)
        assert (op.worker, op.state) == (second.claim, OperationState.RUNNING)
        assert "server_id" not in (op.journal or {}) and op.step != "a late step"
    assert "written while the claim holds" in messages and "written by the new owner" in messages
    assert "written after the takeover" not in messages


def test_a_step_or_event_records_its_journal_entries_in_the_same_write(hearth_runtime, fakecloud):
    """step(name, **journal) and event(message, **journal) persist the entries with the step or the event
    (one transaction), as durably as record()."""
    inst = _create(hearth_runtime, "proj-journal", "journal")
    claimed = claim_next(hearth_runtime, "worker-journal/1")
    assert claimed is not None and claimed.instance_id == inst.id
    ctx = OperationContext(hearth_runtime.sessions, claimed)
    ctx.step("extending volume to 2 GB", volume_step="extending", volume_target_size=2)
    ctx.event("rule tcp 5432-5432 from 10.0.0.0/8 added", rule_ids={"rule-1": "neutron-1"})
    with hearth_runtime.sessions() as session:
        op = session.get(Operation, claimed.id)
        messages = [e.message for e in session.scalars(select(Event).where(Event.operation_id == claimed.id))]
    assert op.step == "extending volume to 2 GB"
    assert (op.journal or {}) == {"volume_step": "extending", "volume_target_size": 2,
                                  "rule_ids": {"rule-1": "neutron-1"}}
    assert "rule tcp 5432-5432 from 10.0.0.0/8 added" in messages


def test_stop_then_start_again_and_notify(hearth_runtime, fakecloud):
    tm = TaskManager(hearth_runtime, workers=2).start()
    try:
        inst = _create(hearth_runtime, "proj-tm", "a")
        assert tm.run_until_idle(60)
        tm.stop()
        assert not tm.running
        second = _create(hearth_runtime, "proj-tm", "b")
        assert _operation(hearth_runtime, second.id).state == OperationState.QUEUED  # nobody is working
        tm.start()
        tm.notify()
        assert tm.run_until_idle(60)
    finally:
        tm.stop()
    for instance_id in (inst.id, second.id):
        with hearth_runtime.sessions() as session:
            assert session.get(Instance, instance_id).server_status == "ACTIVE"
