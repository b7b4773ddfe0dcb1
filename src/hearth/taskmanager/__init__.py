"""The task manager: worker threads that carry out the durable operations the API queues.

    tm = TaskManager(runtime)
    tm.start()            # workers + heartbeat/recovery thread
    tm.notify()           # wake idle workers now (the service layer does this after every commit)
    tm.run_until_idle(30) # tests and benchmarks: wait until no operation is queued or running
    tm.stop()

Idle, nothing runs: the workers wait on a condition, and a watcher thread sleeps in the kernel on the queue
signal (queue_signal: LISTEN/NOTIFY on PostgreSQL, a Unix datagram socket on SQLite) that `wake(runtime)`
rings in the process that queued. Rung, it wakes one worker; a worker that finds work wakes the next, so a
burst spreads over the workers. In the API's own process `wake` also wakes a worker directly. The watcher
also wakes a worker when the earliest retry backoff (`retry_at`) expires, and every FALLBACK seconds
regardless, so work queued without a ring (or a lost one) is never stranded.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
import weakref
from datetime import datetime

from sqlalchemy import text

from hearth import metrics
from hearth.db.models import utcnow
from hearth.operations import relocates
from hearth.runtime import Runtime
from hearth.taskmanager.context import ClaimedOperation, OperationContext, Superseded
from hearth.taskmanager.handlers import execute
from hearth.taskmanager.queue_signal import CHANNEL, Listener, NotifyListener, QueueSignal, libpq_url
from hearth.taskmanager.worker import active_count, claim_next, heartbeat, next_retry_at, recover_stale

log = logging.getLogger(__name__)
FLEET_STEP_SECONDS = 0.2  # how often a running fleet migration is looked at besides when a move ends
FLEET_IDLE_SECONDS = 5.0  # how often the driver looks for a migration when none runs

__all__ = ["TaskManager", "wake"]

# Seconds an idle worker sleeps unless woken: only a safety net, as the watcher wakes one whenever the table
# should be looked at (rung, a backoff ended, or every FALLBACK); long, because every idle worker pays it.
IDLE_WAIT = 600.0
FALLBACK = 5.0  # seconds after which the watcher has the table looked at even without a ring

_managers: weakref.WeakSet[TaskManager] = weakref.WeakSet()
_managers_lock = threading.Lock()


_signals: dict[str, QueueSignal | None] = {}


def _signal_of(url: str) -> QueueSignal | None:
    with _managers_lock:
        if url not in _signals:
            _signals[url] = QueueSignal.for_database(url)
        return _signals[url]


def forget_signals() -> None:
    """Close and forget the queue signals of the databases this process woke (their databases were
    replaced: tests give each test a database of its own)."""
    with _managers_lock:
        signals = [signal for signal in _signals.values() if signal is not None]
        _signals.clear()
    for signal in signals:
        signal.close()


def _own_ring() -> str:
    """The NOTIFY payload of this process's rings, which its own watchers skip (its workers were woken
    directly); computed per call, as a forked process is another process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def wake(runtime: Runtime) -> None:
    """Work was queued (and committed): wake the started task managers of this process that serve the same
    database, and ring the database's queue signal for those in other processes (best effort)."""
    url = runtime.settings.database_url
    with _managers_lock:
        managers = [m for m in _managers if m.runtime is runtime or m.runtime.settings.database_url == url]
    for manager in managers:
        manager.notify()
        manager.fleet_step()  # the work may be a fleet migration, started or resumed
    if runtime.db_engine.dialect.name == "postgresql":
        try:
            with runtime.db_engine.begin() as conn:
                conn.execute(text("SELECT pg_notify(:channel, :payload)"),
                             {"channel": CHANNEL, "payload": _own_ring() if managers else ""})
        except Exception as exc:  # the fallback look finds the work a little later
            log.warning("NOTIFY %s failed: %s", CHANNEL, exc)
        return
    signal = _signal_of(url)
    if signal is not None:
        signal.ring(skip_own=bool(managers))


class TaskManager:
    def __init__(self, runtime: Runtime, workers: int | None = None) -> None:
        self.runtime = runtime
        self.workers = workers or runtime.settings.workers
        self.name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._wakeup = threading.Condition()
        self._generation = 0
        self._stopping = threading.Event()
        self._fleet_wake = threading.Event()  # a move ended, work was queued, or the manager stops
        self._threads: list[threading.Thread] = []
        self._claims: dict[str, str] = {}  # operation id -> claim token, for the operations running here
        self._claims_lock = threading.Lock()
        self._listener: Listener | None = None  # the watcher's, while started

    # lifecycle ------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return bool(self._threads) and not self._stopping.is_set()

    def start(self) -> TaskManager:
        if self.running:
            return self
        self._stopping.clear()
        self._listener = self._listen()
        self._recover()
        self._threads = [
            threading.Thread(target=self._work, args=(i,), name=f"hearth-worker-{i}", daemon=True)
            for i in range(self.workers)
        ]
        self._threads.append(threading.Thread(target=self._watch, args=(self._listener,), name="hearth-watch",
                                              daemon=True))
        self._threads.append(threading.Thread(target=self._keepalive, name="hearth-heartbeat", daemon=True))
        if self.runtime.settings.status_sync_seconds > 0:
            self._threads.append(threading.Thread(target=self._sync_status, name="hearth-status-sync", daemon=True))
        if self.runtime.settings.health_check_seconds > 0:
            self._threads.append(threading.Thread(target=self._check_health, name="hearth-health", daemon=True))
        self._threads.append(threading.Thread(target=self._drive_fleet, name="hearth-fleet", daemon=True))
        if self.runtime.settings.drift_check_seconds > 0:
            self._threads.append(threading.Thread(target=self._check_drift, name="hearth-drift", daemon=True))
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
        self.fleet_step()
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.interrupt()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = []

    def fleet_step(self) -> None:
        """Have the fleet driver look at the migrations now (one was started, resumed, or a move ended)."""
        self._fleet_wake.set()

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
        """Connect now, so the first operation after a start does not pay for it on its critical path: the
        Connections' `ready` check discovers every service the engines use (runtime.cloud_services). One thread
        is enough: the process's Connections share the token and the discovered versions (hearth.cloud), so
        every other thread's first Connection costs a few milliseconds of CPU and no round trip."""
        try:
            self.runtime.connections.get()
        except Exception as exc:  # an unreachable cloud now is not fatal: the operation will say why
            log.debug("warming the cloud connection failed: %s", exc)

    def _work(self, index: int = 0) -> None:
        if index == 0:
            self._warm()
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
                        self._wakeup.wait(IDLE_WAIT)
                continue
            self.notify()  # there may be more queued: the next idle worker looks
            self._run(op)
            listener = self._listener
            if listener is not None:  # it may have been requeued with a backoff: the watcher re-plans its sleep
                listener.interrupt()

    def _listen(self) -> Listener:
        """The watcher's listener on this database's queue signal (see queue_signal)."""
        url = self.runtime.settings.database_url
        if self.runtime.db_engine.dialect.name == "postgresql":
            return NotifyListener(libpq_url(url), ignore_payload=_own_ring())
        signal = _signal_of(url)
        if signal is None:  # in-memory SQLite: only this process queues, and wakes the workers directly
            return Listener()
        try:
            return signal.listen()
        except OSError as exc:
            log.warning("cannot listen on %s (looking at the table every %.0f s): %s", signal.directory,
                        FALLBACK, exc)
            return Listener()

    def _watch(self, listener: Listener) -> None:
        """Sleep until rung, until the earliest retry backoff expires, or FALLBACK; then wake a worker."""
        try:
            while not self._stopping.is_set():
                if listener.wait(self._sleep_for()) and not self._stopping.is_set():
                    self.notify()
        finally:
            listener.close()

    def _sleep_for(self) -> float:
        """Seconds until the watcher should have the table looked at (at most FALLBACK)."""
        try:
            due: datetime | None = next_retry_at(self.runtime)
        except Exception as exc:  # the database is away: look again at the fallback pace
            log.debug("reading the earliest retry_at failed: %s", exc)
            return FALLBACK
        if due is None:
            return FALLBACK
        return min(FALLBACK, max(0.0, (due - utcnow()).total_seconds()) + 0.005)

    def _run(self, op: ClaimedOperation) -> None:
        with self._claims_lock:
            self._claims[op.id] = op.claim
        metrics.busy(+1)
        try:
            execute(self.runtime, op, OperationContext(self.runtime.sessions, op))
        except Superseded as exc:
            log.warning("%s; this worker drops it", exc)
        except Exception:
            # The database failed us mid-way: stop heartbeating so another attempt resumes it later.
            log.exception("operation %s (%s) could not be completed; it will be resumed", op.id, op.kind)
        finally:
            metrics.busy(-1)
            with self._claims_lock:
                self._claims.pop(op.id, None)
            if relocates(op.kind):
                self.fleet_step()  # a move ended: its migration can settle it and queue the next

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

    def _check_health(self) -> None:
        """Keep idle instances' operating_status current (see taskmanager.database); failures retried later."""
        from hearth.taskmanager.database import check_once

        while not self._stopping.wait(self.runtime.settings.health_check_seconds):
            try:
                check_once(self.runtime)
            except Exception:
                log.exception("health check pass failed")

    def _drive_fleet(self) -> None:
        """Advance the fleet migrations (see taskmanager.fleet_jobs): at once when a move ends (its worker wakes
        the driver), every FLEET_STEP_SECONDS while one runs, every FLEET_IDLE_SECONDS when none does (a new one
        is also picked up when work is queued). Failures are retried at the next step."""
        from hearth.taskmanager.fleet_jobs import advance

        active = True
        while not self._stopping.is_set():
            self._fleet_wake.wait(FLEET_STEP_SECONDS if active else FLEET_IDLE_SECONDS)
            self._fleet_wake.clear()
            if self._stopping.is_set():
                return
            try:
                step = advance(self.runtime)
                active = step.active
                if step.queued:
                    self.notify()  # the moves it queued: this process's workers take them at once
            except Exception:
                log.exception("fleet migration step failed")

    def _check_drift(self) -> None:
        """Compare idle instances with the cloud (see taskmanager.drift); a failed pass is retried later."""
        from hearth.taskmanager.drift import check_once

        while not self._stopping.wait(self.runtime.settings.drift_check_seconds):
            try:
                if check_once(self.runtime).repairs:
                    self.notify()  # the reconciles it queued: this process's workers take them at once
            except Exception:
                log.exception("drift check pass failed")

    def _recover(self) -> int:
        with self._claims_lock:
            own = set(self._claims.values())
        try:
            return recover_stale(self.runtime, own)
        except Exception:
            log.exception("recovering stale operations failed")
            return 0
