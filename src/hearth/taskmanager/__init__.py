"""The task manager: worker threads that carry out the durable operations the API queues.

    tm = TaskManager(runtime)
    tm.start()            # workers + heartbeat/recovery thread
    tm.notify()           # wake idle workers now (the service layer does this after every commit)
    tm.run_until_idle(30) # tests and benchmarks: wait until no operation is queued or running
    tm.stop()

One idle worker watches for work queued by other processes: on SQLite through a signal file the API
touches (queue_signal; looked at every 10 ms, the table queried only when it changed, and every second
regardless), on PostgreSQL by querying the table every `poll_interval` (50 ms). A worker that finds work
wakes the next, so a burst spreads over the workers; in the API's own process the service layer wakes a
worker at once through `wake(runtime)`.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
import weakref

from hearth.runtime import Runtime
from hearth.taskmanager.context import ClaimedOperation, OperationContext, Superseded
from hearth.taskmanager.handlers import execute
from hearth.taskmanager.queue_signal import QueueSignal
from hearth.taskmanager.worker import active_count, claim_next, heartbeat, recover_stale

log = logging.getLogger(__name__)

__all__ = ["TaskManager", "wake"]

IDLE_WAIT = 10.0  # seconds an idle worker that is not the polling one sleeps unless woken (a safety net: the
# polling worker, on finding work, wakes the next idle worker, which becomes the poller)
SIGNAL_CHECK = 0.01  # seconds between looks at the queue signal (a stat) by the polling worker
SIGNAL_FALLBACK = 1.0  # seconds after which the polling worker queries the table even without a signal

_managers: weakref.WeakSet[TaskManager] = weakref.WeakSet()
_managers_lock = threading.Lock()


_signals: dict[str, QueueSignal | None] = {}


def _signal_of(url: str) -> QueueSignal | None:
    with _managers_lock:
        if url not in _signals:
            _signals[url] = QueueSignal.for_database(url)
        return _signals[url]


def wake(runtime: Runtime) -> None:
    """Work was queued: ring the database's queue signal (task managers in other processes) and wake the
    started task managers of this process that serve the same database."""
    url = runtime.settings.database_url
    signal = _signal_of(url)
    if signal is not None:
        signal.ring()
    with _managers_lock:
        managers = list(_managers)
    for manager in managers:
        if manager.runtime is runtime or manager.runtime.settings.database_url == url:
            manager.notify()


class TaskManager:
    def __init__(self, runtime: Runtime, workers: int | None = None, poll_interval: float = 0.05) -> None:
        self.runtime = runtime
        self.workers = workers or runtime.settings.workers
        self.poll_interval = poll_interval
        self.name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._wakeup = threading.Condition()
        self._generation = 0
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._claims: dict[str, str] = {}  # operation id -> claim token, for the operations running here
        self._claims_lock = threading.Lock()
        self.warm_connections = True  # each worker connects to the cloud as it starts (see _warm)
        # Two at a time: dozens of threads authenticating at once would starve the API of the GIL for seconds.
        self._warm_gate = threading.BoundedSemaphore(2)
        self._pollers = 0  # idle workers currently polling on poll_interval (at most one; see _work)
        self._signal = QueueSignal.for_database(runtime.settings.database_url)

    # lifecycle ------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return bool(self._threads) and not self._stopping.is_set()

    def start(self) -> TaskManager:
        if self.running:
            return self
        self._stopping.clear()
        self._recover()
        self._threads = [
            threading.Thread(target=self._work, args=(i,), name=f"hearth-worker-{i}", daemon=True)
            for i in range(self.workers)
        ]
        self._threads.append(threading.Thread(target=self._keepalive, name="hearth-heartbeat", daemon=True))
        if self.runtime.settings.status_sync_seconds > 0:
            self._threads.append(threading.Thread(target=self._sync_status, name="hearth-status-sync", daemon=True))
        for thread in self._threads:
            thread.start()
        with _managers_lock:
            _managers.add(self)
        log.info("task manager %s started with %d workers", self.name, self.workers)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking work and wait (up to `timeout`) for the running operations; any still running
        afterwards are resumed by the next task manager once their heartbeat is stale."""
        with _managers_lock:
            _managers.discard(self)
        self._stopping.set()
        self.notify(everyone=True)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = []

    def notify(self, everyone: bool = False) -> None:
        """Wake one idle worker (it wakes the next when it found work, so a burst spreads over the workers
        without every idle worker querying the table for each queued operation), or all of them."""
        with self._wakeup:
            self._generation += 1
            if everyone:
                self._wakeup.notify_all()
            else:
                self._wakeup.notify()

    def run_until_idle(self, timeout: float = 60.0) -> bool:
        """Wait until no operation is queued or running (starting the workers for the wait if this task
        manager is not started). True when idle, False when the timeout ran out first."""
        started_here = not self.running
        if started_here:
            self.start()
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                with self._claims_lock:
                    busy = bool(self._claims)
                if not busy and active_count(self.runtime) == 0:
                    return True
                time.sleep(0.02)
            return False
        finally:
            if started_here:
                self.stop()

    # threads --------------------------------------------------------------------------------------
    def _warm(self) -> None:
        """Make this worker thread's cloud Connection now (token, endpoint discovery, the proxies the engines
        use), so the first operations after a start do not each pay for it on their critical path."""
        if not self.warm_connections:
            return
        try:
            with self._warm_gate:
                self._connect_all()
        except Exception as exc:  # an unreachable cloud now is not fatal: the operation will say why
            log.debug("warming a worker's cloud connection failed: %s", exc)

    def _connect_all(self) -> None:
        """This thread's Connection with its token and the endpoints the engines use."""
        conn = self.runtime.connections.get()
        services = ["compute", "block_storage", "network", "image"]
        if self.runtime.engine_mode() != "natives":
            services.append("orchestration")
        for service in services:
            getattr(conn, service).get_endpoint()

    def _warm_engines(self) -> None:
        """Engines with threads of their own (natives) start them connected: twice the workers, as a
        provision runs up to three steps at once beside its worker."""
        try:
            for name in sorted(self.runtime.allowed_engines()):
                warm = getattr(self.runtime.engine(name), "warm", None)
                if warm is not None:
                    warm(2 * self.workers)
        except Exception as exc:  # best effort, like _warm
            log.debug("warming the engines' threads failed: %s", exc)

    def _work(self, index: int = 0) -> None:
        self._warm()
        if index == 0 and self.warm_connections:
            threading.Thread(target=self._warm_engines, name="hearth-warm", daemon=True).start()
        while not self._stopping.is_set():
            with self._wakeup:
                generation = self._generation
            try:
                op = claim_next(self.runtime, f"{self.name}/{uuid.uuid4().hex[:12]}")
            except Exception:
                log.exception("claiming an operation failed")
                op = None
            if op is None:
                with self._wakeup:
                    if self._generation == generation:  # no wake-up arrived while we looked
                        # One idle worker polls the table every poll_interval (work queued by another process
                        # is seen within that); the others sleep until woken, looking only every IDLE_WAIT:
                        # twenty idle workers each querying five times a second cost the API's CPU.
                        polling = self._pollers == 0
                        self._pollers += polling
                        try:
                            if polling:
                                self._watch(generation)
                            else:
                                self._wakeup.wait(IDLE_WAIT)
                        finally:
                            self._pollers -= polling
                continue
            self.notify()  # there may be more queued: the next idle worker looks
            self._run(op)

    def _watch(self, generation: int) -> None:
        """The polling worker's wait (holding self._wakeup): until woken, or the queue signal rang, or it is
        time to query the table anyway (see the module docstring)."""
        if self._signal is None:
            self._wakeup.wait(self.poll_interval)
            return
        deadline = time.monotonic() + SIGNAL_FALLBACK
        while time.monotonic() < deadline and not self._stopping.is_set():
            if self._wakeup.wait(SIGNAL_CHECK) or self._generation != generation or self._signal.rang():
                return

    def _run(self, op: ClaimedOperation) -> None:
        with self._claims_lock:
            self._claims[op.id] = op.claim
        try:
            execute(self.runtime, op, OperationContext(self.runtime.sessions, op))
        except Superseded as exc:
            log.warning("%s; this worker drops it", exc)
        except Exception:
            # The database failed us mid-way: stop heartbeating so another attempt resumes it later.
            log.exception("operation %s (%s) could not be completed; it will be resumed", op.id, op.kind)
        finally:
            with self._claims_lock:
                self._claims.pop(op.id, None)

    def _keepalive(self) -> None:
        settings = self.runtime.settings
        interval = max(0.05, min(settings.heartbeat_seconds, settings.stale_after_seconds / 3))
        while not self._stopping.wait(interval):
            with self._claims_lock:
                claims = dict(self._claims)
            try:
                heartbeat(self.runtime, claims)
                if self._recover():
                    self.notify()
            except Exception:
                log.exception("heartbeat/recovery pass failed")

    def _sync_status(self) -> None:
        """Keep idle instances' server status current (see status_sync); a failed pass is retried later."""
        from hearth.taskmanager.status_sync import sync_once

        while not self._stopping.wait(self.runtime.settings.status_sync_seconds):
            try:
                sync_once(self.runtime)
            except Exception:
                log.exception("status sync pass failed")

    def _recover(self) -> int:
        with self._claims_lock:
            own = set(self._claims.values())
        try:
            return recover_stale(self.runtime, own)
        except Exception:
            log.exception("recovering stale operations failed")
            return 0
