"""The operation queue in the database: claiming, heartbeats, and resuming operations whose worker died.

Claiming takes the oldest queued operation atomically: on PostgreSQL with SELECT ... FOR UPDATE SKIP
LOCKED (workers never wait on each other's candidates); on SQLite with one UPDATE ... RETURNING of the
oldest queued row (SQLite serialises writers, so exactly one wins). Each claim gets a fresh token written
to `operations.worker`; every later write of that worker is fenced by it.

`attempts` counts claims (the first run is attempt 1); `retries` counts the claims that followed a
transient cloud fault (the handler requeued the operation with `retry_at`, its backoff: it is not claimed
before then). A running operation whose heartbeat is older than `settings.stale_after_seconds` is re-queued
(and resumed from its journal by the next claim); one whose worker went silent MAX_ATTEMPTS times
(attempts - retries) is failed instead, with the reason on the instance, which is left in the state the
one failure policy gives its kind (operations.task_after_failure; for a resize, settled by the cloud's
re-read once the failure is committed), the same as had the operation failed in its worker.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, or_, select, update

from hearth.db.models import Event, Instance, Operation, OperationState, utcnow
from hearth.operations import label_of
from hearth.runtime import Runtime
from hearth.taskmanager.context import ClaimedOperation
from hearth.taskmanager.handlers import fail_instance, reconcile_abandoned

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3


def _snapshot(op: Operation, claim: str) -> ClaimedOperation:
    return ClaimedOperation(id=op.id, instance_id=op.instance_id, kind=op.kind, params=dict(op.params or {}),
                            journal=dict(op.journal or {}), attempts=op.attempts, claim=claim, step=op.step,
                            started_at=op.started_at, retries=op.retries or 0, request_id=op.request_id)


def _claimable(now: datetime) -> ColumnElement[bool]:
    """Queued, and not waiting out a retry's backoff."""
    return and_(Operation.state == OperationState.QUEUED,
                or_(Operation.retry_at.is_(None), Operation.retry_at <= now))


def next_retry_at(runtime: Runtime) -> datetime | None:
    """When the earliest queued operation waiting out a retry's backoff becomes claimable (the task manager's
    watcher sleeps until then at most: nothing rings when a backoff expires)."""
    with runtime.db_engine.connect() as conn:
        return conn.scalar(select(func.min(Operation.retry_at))
                           .where(Operation.state == OperationState.QUEUED, Operation.retry_at > utcnow()))


def claim_next(runtime: Runtime, claim: str) -> ClaimedOperation | None:
    """Take the oldest queued operation for this worker, or None when the queue is empty."""
    if runtime.db_engine.dialect.name == "postgresql":
        return _claim_skip_locked(runtime, claim)
    return _claim_conditional(runtime, claim)


def _claim_skip_locked(runtime: Runtime, claim: str) -> ClaimedOperation | None:
    now = utcnow()
    with runtime.sessions.begin() as session:
        op = session.scalars(
            select(Operation)
            .where(_claimable(now))
            .order_by(Operation.created_at, Operation.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        ).first()
        if op is None:
            return None
        op.state = OperationState.RUNNING
        op.worker = claim
        op.heartbeat_at = now
        op.started_at = op.started_at or now
        op.attempts = (op.attempts or 0) + 1
        session.flush()
        return _snapshot(op, claim)


_SNAPSHOT_COLUMNS = (Operation.id, Operation.instance_id, Operation.kind, Operation.params, Operation.journal,
                     Operation.attempts, Operation.step, Operation.started_at, Operation.retries,
                     Operation.request_id)


def _claim_conditional(runtime: Runtime, claim: str) -> ClaimedOperation | None:
    """One UPDATE ... RETURNING of the oldest queued operation: SQLite runs it inside its single write
    transaction, so two workers never pick the same row. A plain read first keeps an idle worker's look
    at an empty queue from taking the write lock. Core statements on a pooled connection: idle workers
    look often, and an ORM session per look cost CPU."""
    engine = runtime.db_engine
    now = utcnow()
    queued = _claimable(now)
    with engine.connect() as conn:
        if conn.scalar(select(Operation.id).where(queued).limit(1)) is None:
            return None
    oldest = select(Operation.id).where(queued).order_by(Operation.created_at, Operation.id).limit(1)
    with engine.begin() as conn:
        row = conn.execute(
            update(Operation)
            .where(Operation.id == oldest.scalar_subquery(), queued)
            .values(state=OperationState.RUNNING, worker=claim, heartbeat_at=now,
                    started_at=func.coalesce(Operation.started_at, now), attempts=Operation.attempts + 1)
            .returning(*_SNAPSHOT_COLUMNS)
        ).first()
    if row is None:
        return None
    return ClaimedOperation(id=row.id, instance_id=row.instance_id, kind=row.kind, params=dict(row.params or {}),
                            journal=dict(row.journal or {}), attempts=row.attempts, claim=claim, step=row.step,
                            started_at=row.started_at, retries=row.retries or 0, request_id=row.request_id)


def heartbeat(runtime: Runtime, claims: dict[str, str]) -> None:
    """Tell everyone the operations this process runs are alive (one UPDATE per claim)."""
    if not claims:
        return
    now = utcnow()
    with runtime.sessions.begin() as session:
        for op_id, claim in claims.items():
            session.execute(
                update(Operation)
                .where(Operation.id == op_id, Operation.worker == claim, Operation.state == OperationState.RUNNING)
                .values(heartbeat_at=now)
                .execution_options(synchronize_session=False)
            )


def recover_stale(runtime: Runtime, own_claims: set[str]) -> int:
    """Re-queue running operations whose worker went silent; after MAX_ATTEMPTS give up on them
    (operation failed, instance shows the reason). Returns how many were touched."""
    cutoff = utcnow() - timedelta(seconds=runtime.settings.stale_after_seconds)
    with runtime.sessions() as session:
        stale = list(session.scalars(
            select(Operation).where(Operation.state == OperationState.RUNNING, Operation.heartbeat_at < cutoff)
        ))
    touched = 0
    abandoned: list[ClaimedOperation] = []
    for op in stale:
        if op.worker in own_claims:
            continue
        with runtime.sessions.begin() as session:
            lost = op.attempts - (op.retries or 0)  # claims whose worker went silent (this one included)
            if lost >= MAX_ATTEMPTS:
                message = (f"{label_of(op.kind)} failed: given up after its worker stopped responding "
                           f"{lost} times (last step: {op.step or 'none'})")
                values = {"state": OperationState.FAILED, "finished_at": utcnow(), "error": message}
            else:
                message = ""
                values = {"state": OperationState.QUEUED, "worker": None}
            won = session.execute(
                update(Operation)
                .where(Operation.id == op.id, Operation.worker == op.worker, Operation.state == OperationState.RUNNING,
                       Operation.heartbeat_at < cutoff)
                .values(**values)
                .execution_options(synchronize_session=False)
            ).rowcount
            if won != 1:
                continue
            touched += 1
            inst = session.get(Instance, op.instance_id)
            if message and inst is not None:
                log.warning("operation %s abandoned: %s", op.id, message)
                fail_instance(session, inst, _snapshot(op, op.worker or ""), message, usable=None,
                              journal=dict(op.journal or {}))  # not re-read yet: see reconcile_abandoned
                abandoned.append(_snapshot(op, op.worker or ""))
            else:
                log.info("operation %s (%s) re-queued after its worker went silent", op.id, op.kind)
                session.add(Event(instance_id=op.instance_id, operation_id=op.id, request_id=op.request_id,
                                  level="warning",
                                  message=f"{label_of(op.kind)}: its worker stopped responding "
                                          f"(step: {op.step or 'none'}); resuming from its journal"))
    for op in abandoned:  # after the commit: re-reading the cloud takes time
        reconcile_abandoned(runtime, op)
    return touched


def active_count(runtime: Runtime) -> int:
    with runtime.sessions() as session:
        return session.scalar(
            select(func.count()).select_from(Operation).where(Operation.state.in_(OperationState.ACTIVE))
        ) or 0
