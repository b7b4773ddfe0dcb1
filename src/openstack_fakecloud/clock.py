"""Cloud time and the scheduler that moves resources through their transitions.

Every asynchronous transition (BUILD -> ACTIVE, creating -> available, ...) is a timer on this
scheduler, due at a time on the cloud's clock. The clock is real monotonic time plus an offset that
an operator can move forward, and it can be frozen: a frozen cloud only moves when told to.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

log = logging.getLogger(__name__)


class Clock:
    """Monotonic cloud time (for delays) and wall time (for timestamps), both shifted by one offset."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._frozen_at: float | None = None
        self._frozen_wall: datetime | None = None

    def now(self) -> float:
        base = self._frozen_at if self._frozen_at is not None else time.monotonic()
        return base + self._offset

    def wall(self) -> datetime:
        base = self._frozen_wall if self._frozen_wall is not None else datetime.now(UTC)
        return base + timedelta(seconds=self._offset)

    def isoformat(self) -> str:
        """Timestamp as the OpenStack services print it (seconds precision, no zone suffix)."""
        return self.wall().strftime("%Y-%m-%dT%H:%M:%S.%f")

    @property
    def frozen(self) -> bool:
        return self._frozen_at is not None

    @property
    def offset(self) -> float:
        return self._offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self._offset += seconds

    def freeze(self) -> None:
        if self._frozen_at is None:
            self._frozen_at = time.monotonic()
            self._frozen_wall = datetime.now(UTC)

    def unfreeze(self) -> None:
        if self._frozen_at is not None:
            # Keep cloud time continuous: the time spent frozen did not pass for the cloud.
            self._offset -= time.monotonic() - self._frozen_at
            self._frozen_at = None
            self._frozen_wall = None


@dataclass(order=True)
class Timer:
    due: float
    seq: int
    fn: Callable[..., Any] = field(compare=False)
    args: tuple = field(compare=False, default=())
    cancelled: bool = field(compare=False, default=False)

    def cancel(self) -> None:
        self.cancelled = True


class Scheduler:
    """Runs callbacks when the cloud clock reaches their due time, on the server's event loop."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._heap: list[Timer] = []
        self._seq = itertools.count()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._lock = threading.Lock()

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> Timer:
        timer = Timer(self.clock.now() + max(delay, 0.0), next(self._seq), fn, args)
        with self._lock:
            heapq.heappush(self._heap, timer)
        self.kick()
        return timer

    def clear(self) -> None:
        with self._lock:
            self._heap.clear()

    def pending(self) -> int:
        return sum(1 for t in self._heap if not t.cancelled)

    def kick(self) -> None:
        """Wake the run loop so it re-reads the clock and the heap (after a new timer or a clock move)."""
        loop, wake = self._loop, self._wake
        if loop is None or wake is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            wake.set()
        else:
            loop.call_soon_threadsafe(wake.set)

    def run_due(self) -> int:
        """Run every timer that is due now; returns how many ran."""
        ran = 0
        while True:
            with self._lock:
                if not self._heap or self._heap[0].due > self.clock.now():
                    return ran
                timer = heapq.heappop(self._heap)
            if timer.cancelled:
                continue
            try:
                timer.fn(*timer.args)
            except Exception:  # a broken transition must not stop the cloud
                log.exception("transition %r failed", timer.fn)
            ran += 1

    def next_delay(self) -> float | None:
        with self._lock:
            while self._heap and self._heap[0].cancelled:
                heapq.heappop(self._heap)
            if not self._heap:
                return None
            due = self._heap[0].due
        if self.clock.frozen:
            return None if due > self.clock.now() else 0.0
        return max(due - self.clock.now(), 0.0)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        while True:
            self.run_due()
            delay = self.next_delay()
            if delay == 0.0:
                await asyncio.sleep(0)
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
