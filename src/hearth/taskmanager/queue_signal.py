"""A cheap "work was queued" signal between the processes that share one SQLite database.

The API and a task manager in another process (`hearth serve --no-taskmanager` + `hearth taskmanager`)
share only the database. Polling the operations table often enough for a short operation to start at
once cost an idle task manager several percent of a core (a pooled connection and a query per look);
SQLite has no LISTEN/NOTIFY. SQLite also means one host, so a file next to the database serves: whoever
queues an operation appends a byte to it, and the task manager's idle poller looks at its size and
modification time (a stat, microseconds) every few milliseconds, querying the table only when they
changed (the size changes even where file times are coarser than the rings are frequent). The poller still
queries now and then without a signal, so work queued by anything that does not ring is never stranded.
PostgreSQL deployments span hosts: no file; the poller queries the table every `poll_interval`.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import make_url

MAX_SIZE = 4096  # bytes: the file starts over once it holds this many rings


class QueueSignal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen = self._stamp()

    @classmethod
    def for_database(cls, url: str) -> QueueSignal | None:
        """The signal of a SQLite database file; None for PostgreSQL or an in-memory database."""
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
            return None
        database = Path(parsed.database).resolve()
        return cls(database.with_name(database.name + ".queued"))

    def _stamp(self) -> tuple[int, int] | None:
        try:
            found = os.stat(self.path)
        except OSError:
            return None
        return found.st_mtime_ns, found.st_size

    def ring(self) -> None:
        """Say that an operation was queued (best effort: a missed ring only delays the pick-up)."""
        try:
            with open(self.path, "ab") as signal:
                signal.write(b".")
                if signal.tell() >= MAX_SIZE:
                    signal.truncate(0)
        except OSError:
            pass

    def rang(self) -> bool:
        """Whether it rang since the last time this was asked."""
        stamp = self._stamp()
        if stamp == self._seen:
            return False
        self._seen = stamp
        return True
