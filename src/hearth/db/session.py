"""Database engines, sessions and schema upgrades (Alembic, run programmatically)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

try:
    import fcntl
except ImportError:  # not POSIX: writers of other processes meet in SQLite's busy handler, as before
    fcntl = None  # type: ignore[assignment]

MIGRATIONS = Path(__file__).parent / "migrations"


# SQLite lets one connection write at a time. A connection that finds the write lock taken is put to sleep
# by SQLite's busy handler in growing steps (1, 2, 5, 10, 15, 20, 25 ms ...), and is not woken when the lock
# is released: under the task manager's many short write transactions a writer lost tens of milliseconds per
# transaction that way. Writers therefore queue on a gate of ours first: a thread lock within the process
# (the next writer wakes the moment the previous transaction ends), then an advisory file lock beside the
# database shared by every Hearth process using it (API, task managers), tried every fraction of a millisecond.
WRITE_WAIT_SECONDS = 30.0  # as the busy timeout: after that, let SQLite decide (and report "locked")
_FILE_LOCK_POLL = (0.0002, 0.002)  # first and longest pause between tries of the file lock, seconds


class _WriteGate:
    """The write gate of one database file: its lock in this process, the holding thread, and the
    cross-process file lock (None for an in-memory database or where fcntl is missing)."""

    def __init__(self, lock_file: Path | None) -> None:
        self._lock = threading.Lock()
        self.owner: int | None = None
        self._fd: int | None = None
        if lock_file is not None and fcntl is not None:
            self._fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)

    def acquire(self) -> bool:
        """False without waiting when this thread holds it already (on another connection: waiting for
        ourselves would never end, so that statement goes to SQLite, which times out as it always did)."""
        if self.owner == threading.get_ident():
            return False
        deadline = time.monotonic() + WRITE_WAIT_SECONDS
        if not self._lock.acquire(timeout=WRITE_WAIT_SECONDS):
            return False
        if self._fd is not None and not self._lock_file(deadline):
            self._lock.release()
            return False
        self.owner = threading.get_ident()
        return True

    def _lock_file(self, deadline: float) -> bool:
        pause, longest = _FILE_LOCK_POLL
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return False
                time.sleep(pause)
                pause = min(pause * 2, longest)

    def release(self) -> None:
        self.owner = None
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._lock.release()

    def __del__(self) -> None:  # the last connection using the gate is gone: so is the lock file's descriptor
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


_gates: dict[str, _WriteGate] = {}
_gates_guard = threading.Lock()


def forget_write_gates() -> None:
    """Drop this process's record of write gates (tests: each has databases of its own). Connections still open
    keep the gate they have and close its lock file with the last of them; a new connection to the same file
    makes a new gate, which still queues behind the old one on the file lock (flock locks conflict between
    descriptors of the same process)."""
    with _gates_guard:
        _gates.clear()


def _gate(database: str) -> _WriteGate:
    """The gate of a database file, one per process (an in-memory or URI database gets no file lock)."""
    if database == ":memory:" or database.startswith("file:"):
        return _WriteGate(None)
    path = Path(database).resolve()
    with _gates_guard:
        gate = _gates.get(str(path))
        if gate is None:
            gate = _gates[str(path)] = _WriteGate(path.with_name(path.name + ".write-lock"))
        return gate


def _is_read(statement: str) -> bool:
    return statement.lstrip()[:7].upper().startswith(("SELECT", "PRAGMA", "EXPLAIN"))


class _SerialisedCursor(sqlite3.Cursor):
    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        self.connection.before_statement(sql)  # type: ignore[attr-defined]
        try:
            return super().execute(sql, parameters)
        finally:
            self.connection.after_statement()  # type: ignore[attr-defined]

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> sqlite3.Cursor:
        self.connection.before_statement(sql)  # type: ignore[attr-defined]
        try:
            return super().executemany(sql, seq_of_parameters)
        finally:
            self.connection.after_statement()  # type: ignore[attr-defined]


class SerialisedWritesConnection(sqlite3.Connection):
    """A sqlite3 connection that holds its process's write gate for the database from the statement that
    opens a write transaction until that transaction ends (commit, rollback or close)."""

    def __init__(self, database: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(database, *args, **kwargs)
        self._gate = _gate(database)
        self._holding = False

    def cursor(self, factory: Any = None) -> sqlite3.Cursor:  # type: ignore[override]
        return super().cursor(factory or _SerialisedCursor)

    def before_statement(self, sql: str) -> None:
        if not (self._holding or self.in_transaction or _is_read(sql)):
            self._holding = self._gate.acquire()

    def after_statement(self) -> None:
        if not self.in_transaction:  # autocommitted (DDL), or failed before its transaction began
            self._release()

    def _release(self) -> None:
        if self._holding:
            self._holding = False
            self._gate.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._release()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._release()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._release()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        # Pool sized for the task manager's workers plus the API's threads (SQLite's default is 5 + 10).
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30,
                                                  "factory": SerialisedWritesConnection},
                               pool_size=20, max_overflow=60)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # WAL lets readers and one writer overlap
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=True)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str) -> None:
    """Bring the schema to the newest revision (idempotent)."""
    command.upgrade(alembic_config(url), "head")
