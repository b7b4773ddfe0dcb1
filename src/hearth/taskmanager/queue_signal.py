"""A "work was queued" signal between processes sharing one database, that a task manager sleeps on.

The API and a task manager in another process (`hearth serve --no-taskmanager` + `hearth taskmanager`)
share only the database. Polling the table (or a signal file) often enough for a short operation to start
at once kept an idle task manager busy; instead its watcher blocks in `select` until rung:
- PostgreSQL: `LISTEN hearth_queued` on a dedicated connection; whoever queues sends `NOTIFY` after its
  commit. Works across hosts.
- SQLite (one host by nature): each listener binds a Unix datagram socket in a directory beside the database
  (`hearth.sqlite.wake/`, or under the temporary directory when that path is too long for a socket name);
  whoever queues sends a byte to every socket there. Nobody listening costs a directory listing; a socket
  left by a killed process is removed by the first ring that finds it refused.
A ring is best effort: the watcher also looks at the table every few seconds (see taskmanager), so work
queued by anything that does not ring is never stranded. A listener can be interrupted (`interrupt()`) so
its owner recomputes how long to sleep, or stops.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import select
import socket
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

CHANNEL = "hearth_queued"
SOCKET_NAME_MAX = 103  # bytes: sun_path holds 108 on Linux, 104 on the BSDs, the final NUL included


class Listener:
    """Blocks until rung, interrupted or timed out. The base class only has the interrupt (in-memory SQLite:
    nothing else can queue)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # interrupt() from other threads never writes to a closed (reused) fd
        self._closed = False
        self._interrupt_r, self._interrupt_w = os.pipe()
        os.set_blocking(self._interrupt_r, False)
        os.set_blocking(self._interrupt_w, False)

    def _source(self) -> int | None:
        """The file descriptor that becomes readable when rung."""
        return None

    def _drain(self) -> bool:
        """Consume what made the source readable; True if it was a ring from elsewhere."""
        return False

    def wait(self, timeout: float) -> bool:
        """Sleep up to `timeout` seconds. True when the table should be looked at: rung from elsewhere, or
        the time ran out; False when interrupted (or only rung by this process, which woke its workers)."""
        source = self._source()
        poller = select.poll()  # not select.select: a busy process may hold descriptors above 1024
        poller.register(self._interrupt_r, select.POLLIN)
        if source is not None:
            poller.register(source, select.POLLIN)
        try:
            ready = {fd for fd, _ in poller.poll(max(0.0, timeout) * 1000.0)}
        except (OSError, ValueError):  # a closed source: behave as a ring, the caller looks at the table
            return True
        if not ready:
            return True
        if self._interrupt_r in ready:
            with contextlib.suppress(BlockingIOError):
                while os.read(self._interrupt_r, 512):
                    pass
        return source in ready and self._drain()

    def interrupt(self) -> None:
        """End the current (or next) wait early."""
        with self._lock, contextlib.suppress(BlockingIOError, OSError):
            if not self._closed:
                os.write(self._interrupt_w, b".")

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for fd in (self._interrupt_r, self._interrupt_w):
                with contextlib.suppress(OSError):
                    os.close(fd)


class SocketListener(Listener):
    """A Unix datagram socket in the SQLite database's wake directory."""

    def __init__(self, directory: Path) -> None:
        super().__init__()
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path = directory / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        self._sock.bind(str(self.path))

    def _source(self) -> int | None:
        return self._sock.fileno()

    def _drain(self) -> bool:
        with contextlib.suppress(BlockingIOError, OSError):
            while self._sock.recv(64):
                pass
        return True

    def close(self) -> None:
        self._sock.close()
        with contextlib.suppress(OSError):
            self.path.unlink()
        super().close()


class QueueSignal:
    """The wake directory of a SQLite database file: `ring()` from whoever queues, `listen()` for watchers."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sender.setblocking(False)  # a full receive queue means the listener is awake anyway

    @classmethod
    def for_database(cls, url: str) -> QueueSignal | None:
        """The signal of a SQLite database file; None for PostgreSQL or an in-memory database."""
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
            return None
        database = Path(parsed.database).resolve()
        directory = database.with_name(database.name + ".wake")
        if len(os.fsencode(directory)) + len("/4194304-01234567") > SOCKET_NAME_MAX:  # "/<pid>-<8 hex>" too
            digest = hashlib.sha256(os.fsencode(database)).hexdigest()[:16]
            directory = Path(tempfile.gettempdir()) / f"hearth-wake-{os.getuid()}-{digest}"
        return cls(directory)

    def close(self) -> None:
        """Close the sending socket (listeners are closed by their owners)."""
        self._sender.close()

    def ring(self, skip_own: bool = False) -> None:
        """Say that an operation was queued (best effort: a missed ring only delays the pick-up). `skip_own`:
        this process's listeners were woken directly."""
        try:
            names = os.listdir(self.directory)
        except OSError:
            return  # nobody ever listened
        own = f"{os.getpid()}-"
        for name in names:
            if skip_own and name.startswith(own):
                continue
            path = self.directory / name
            try:
                self._sender.sendto(b".", str(path))
            except ConnectionRefusedError:  # left by a process that died: nobody reads it
                with contextlib.suppress(OSError):
                    path.unlink()
            except OSError:  # gone meanwhile, or its queue is full (it will look anyway)
                pass

    def listen(self) -> SocketListener:
        return SocketListener(self.directory)


class NotifyListener(Listener):
    """`LISTEN hearth_queued` on a PostgreSQL connection of its own; reconnects on the next wait if lost."""

    def __init__(self, url: str, ignore_payload: str) -> None:
        super().__init__()
        self.url = url
        self.ignore_payload = ignore_payload  # rings of this process, which woke its workers directly
        self._conn: Any = None
        self._connect()

    def _connect(self) -> None:
        import psycopg

        try:
            self._conn = psycopg.connect(self.url, autocommit=True, connect_timeout=5)
            self._conn.execute(f"LISTEN {CHANNEL}")
        except psycopg.Error as exc:
            log.warning("cannot LISTEN for queued work (looking at the table every few seconds): %s", exc)
            self._conn = None

    def _source(self) -> int | None:
        if self._conn is None or self._conn.closed:
            self._connect()
        return None if self._conn is None else self._conn.fileno()

    def _drain(self) -> bool:
        import psycopg

        try:
            payloads = [n.payload for n in self._conn.notifies(timeout=0)]
        except psycopg.Error:  # connection lost: reconnect next time, look at the table now
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None
            return True
        return any(p != self.ignore_payload for p in payloads)

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        super().close()


def libpq_url(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as psycopg takes it (no driver suffix)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
