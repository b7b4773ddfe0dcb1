"""The database-backed operation context an engine receives for one claimed operation.

Every `record` is written to the operation row at once, in its own short transaction, so a worker that
dies right after creating a cloud resource has already said so; `step` and `event` persist too. Writes
are fenced by the claim token: if the operation was taken over by another worker (this one was judged
dead), the next write raises `Superseded` and this worker stops touching it.

The writes are SQLAlchemy Core statements on a pooled connection, not ORM sessions: an operation makes
10-20 of them, and an ORM Session per write was a measurable share of the task manager's CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, update
from sqlalchemy.orm import Session, sessionmaker

from hearth.db.models import Event, Operation, OperationState, utcnow
from hearth.engines.base import LocalContext


class Superseded(Exception):
    """This worker's claim on the operation is gone (another worker resumed it)."""


@dataclass(frozen=True)
class ClaimedOperation:
    """A snapshot of an operation row as a worker claimed it."""

    id: str
    instance_id: str
    kind: str
    params: dict[str, Any]
    journal: dict[str, Any]
    attempts: int
    claim: str  # the token fencing this worker's writes
    step: str | None = None
    started_at: datetime | None = None  # the first claim's time: the operation's timeout counts from it
    retries: int = 0  # transient-fault requeues so far
    request_id: str | None = None  # the API request that queued it (sent to the cloud as the global request id)


def _fenced(op: ClaimedOperation, **values: Any) -> Any:
    return (update(Operation)
            .where(Operation.id == op.id, Operation.worker == op.claim, Operation.state == OperationState.RUNNING)
            .values(**values))


def fenced_update(session: Session | Connection, op: ClaimedOperation, **values: Any) -> bool:
    """Update the operation only while this claim still holds it; False when superseded."""
    statement = _fenced(op, **values)
    if isinstance(session, Session):
        statement = statement.execution_options(synchronize_session=False)
    return session.execute(statement).rowcount == 1


class OperationContext(LocalContext):
    def __init__(self, sessions: sessionmaker[Session], op: ClaimedOperation) -> None:
        super().__init__(op.journal)
        self.sessions = sessions
        self.op = op
        bind = sessions.kw.get("bind")
        self._engine: Engine | None = bind if isinstance(bind, Engine) else None

    def record(self, **values: Any) -> None:
        super().record(**values)
        self._write(journal=dict(self.journal))

    def step(self, name: str, **journal: Any) -> None:
        super().step(name, **journal)
        if journal:
            self._write(step=name[:64], journal=dict(self.journal))
        else:
            self._write(step=name[:64])

    def event(self, message: str, level: str = "info", session: Session | None = None, **journal: Any) -> None:
        """Fenced like every other write: the claim check and the insert share one transaction, so a
        superseded worker cannot add to the instance's log what its successor is now writing. With
        `session`, both are part of the caller's transaction (committed with it). `journal` entries are
        recorded in the same transaction."""
        super().event(message, level, **journal)
        row = {"instance_id": self.op.instance_id, "operation_id": self.op.id, "level": level, "message": message,
               "request_id": self.op.request_id}
        values = {"journal": dict(self.journal)} if journal else {}
        if session is not None:
            self._fence(session, **values)
            session.add(Event(**row))
            return
        if self._engine is None:
            with self.sessions.begin() as session:
                self._fence(session, **values)
                session.add(Event(**row))
            return
        with self._engine.begin() as conn:
            self._fence(conn, **values)
            conn.execute(insert(Event).values(**row))

    def _write(self, **values: Any) -> None:
        if self._engine is None:
            with self.sessions.begin() as session:
                self._fence(session, **values)
            return
        with self._engine.begin() as conn:
            self._fence(conn, **values)

    def _fence(self, session: Session | Connection, **values: Any) -> None:
        """Heartbeat (and write `values`) while this claim holds the operation; else Superseded (and the
        transaction rolls back)."""
        if not fenced_update(session, self.op, heartbeat_at=utcnow(), **values):
            raise Superseded(f"operation {self.op.id} was taken over by another worker")
