"""The operation queue on a real database (SQLite file and PostgreSQL): migrations, atomic claiming in
creation order, stale-operation recovery and claim fencing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, update

from hearth.config import Settings
from hearth.db.models import Instance, Operation, OperationState, Task, utcnow
from hearth.db.session import upgrade
from hearth.runtime import Runtime, build_runtime
from hearth.taskmanager.context import OperationContext, Superseded
from hearth.taskmanager.worker import claim_next, recover_stale


@pytest.fixture
def db_runtime(db_url: str, tmp_path: Path) -> Iterator[Runtime]:
    runtime = build_runtime(Settings(home=tmp_path, db_url=db_url, cloud="unused", stale_after_seconds=30.0))
    yield runtime
    runtime.close()


def _queue(runtime: Runtime, count: int) -> list[str]:
    """`count` instances, each with one queued operation, created in order."""
    ids = []
    base = utcnow()
    with runtime.sessions.begin() as session:
        for i in range(count):
            inst = Instance(project_id="p", name=f"db{i}", engine="natives", datastore="postgresql",
                            datastore_version="16", flavor_id="1", volume_size=1, port=5432, task=Task.BUILDING)
            session.add(inst)
            session.flush()
            op = Operation(instance_id=inst.id, kind="provision", params={}, journal={},
                           created_at=base + timedelta(milliseconds=i))
            session.add(op)
            session.flush()
            ids.append(op.id)
    return ids


def test_migrations_are_idempotent_and_create_every_table(db_runtime):
    upgrade(db_runtime.settings.database_url)  # a second time: no-op
    tables = set(inspect(db_runtime.db_engine).get_table_names())
    assert {"instances", "security_group_rules", "operations", "events", "alembic_version"} <= tables


def test_claims_take_the_oldest_first(db_runtime):
    ids = _queue(db_runtime, 3)
    claimed = [claim_next(db_runtime, f"w{i}") for i in range(4)]
    assert [c.id for c in claimed[:3]] == ids
    assert claimed[3] is None
    with db_runtime.sessions() as session:
        rows = {o.id: o for o in session.scalars(select(Operation))}
    assert all(rows[i].state == OperationState.RUNNING and rows[i].attempts == 1 for i in ids)
    assert [rows[i].worker for i in ids] == ["w0", "w1", "w2"]


def test_concurrent_claimers_never_share_an_operation(db_runtime):
    ids = _queue(db_runtime, 24)
    taken: list[str] = []
    lock = threading.Lock()

    def claimer(n: int) -> None:
        while (op := claim_next(db_runtime, f"worker-{n}")) is not None:
            with lock:
                taken.append(op.id)

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(taken) == sorted(ids)  # each exactly once
    with db_runtime.sessions() as session:
        assert all(o.attempts == 1 for o in session.scalars(select(Operation)))


def test_stale_operations_are_requeued_and_old_claims_fenced(db_runtime):
    [op_id] = _queue(db_runtime, 1)
    first = claim_next(db_runtime, "dead-worker")
    ctx = OperationContext(db_runtime.sessions, first)
    ctx.record(server_id="srv-1")
    ctx.step("creating server")

    # fresh heartbeat: nothing to recover
    assert recover_stale(db_runtime, set()) == 0
    with db_runtime.sessions.begin() as session:  # the worker went silent a minute ago
        session.execute(update(Operation).values(heartbeat_at=utcnow() - timedelta(seconds=60)))
    assert recover_stale(db_runtime, set()) == 1

    second = claim_next(db_runtime, "new-worker")
    assert second.id == op_id and second.attempts == 2
    assert second.journal == {"server_id": "srv-1"}  # resumed from the journal
    with pytest.raises(Superseded):
        ctx.record(server_id="srv-2")  # the dead worker's late write is refused
    with db_runtime.sessions() as session:
        op = session.get(Operation, op_id)
        assert (op.journal, op.worker, op.step) == ({"server_id": "srv-1"}, "new-worker", "creating server")


def test_operations_are_given_up_after_three_attempts(db_runtime):
    [op_id] = _queue(db_runtime, 1)
    claim_next(db_runtime, "w")
    with db_runtime.sessions.begin() as session:
        session.execute(update(Operation).values(attempts=3, step="attaching volume",
                                                 heartbeat_at=utcnow() - timedelta(seconds=60)))
    assert recover_stale(db_runtime, set()) == 1
    with db_runtime.sessions() as session:
        op = session.get(Operation, op_id)
        inst = session.get(Instance, op.instance_id)
        assert op.state == OperationState.FAILED
        assert "given up after its worker stopped responding 3 times" in op.error and "attaching volume" in op.error
        assert inst.task == Task.BUILDING_ERROR
        assert inst.fault == op.error and inst.fault_at is not None
