"""Request accounting: how many requests each service, method and route received.

Counts are cumulative until reset; a bounded log keeps the most recent requests with their
status, user agent, time, duration and request ids, so a test can ask "which writes did Hearth make to
Nova?" or "which cloud calls did this one Hearth request cause?" (`summary(request_id=...)`).
"""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import asdict, dataclass
from typing import Any

from starlette.requests import Request

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True, slots=True)
class RequestRecord:
    seq: int
    service: str
    method: str
    route: str
    path: str
    status: int
    user_agent: str
    at: float  # wall-clock time the answer was recorded (seconds since the epoch), to line requests up with logs
    request_id: str = ""  # the id the answer carried (X-OpenStack-Request-ID)
    global_request_id: str | None = None  # the caller's own X-OpenStack-Request-ID, when it sent a valid one
    duration_ms: float = 0.0  # from the request reaching its route to the answer (fault latency included)


class Accounting:
    def __init__(self, log_size: int = 20000) -> None:
        self.counts: Counter[tuple[str, str, str]] = Counter()
        self._log: deque[RequestRecord] = deque(maxlen=log_size)
        self._seq = 0
        self.writes = 0

    def record(self, service: str, method: str, route: str, status: int, request: Request, request_id: str = "",
               global_request_id: str | None = None, duration_ms: float = 0.0) -> None:
        self._seq += 1
        self.counts[(service, method, route)] += 1
        if method in WRITE_METHODS:
            self.writes += 1
        self._log.append(
            RequestRecord(
                self._seq, service, method, route, request.url.path, status,
                request.headers.get("user-agent", ""), time.time(), request_id, global_request_id,
                round(duration_ms, 3),
            )
        )

    def reset(self) -> None:
        self.counts.clear()
        self._log.clear()

    def summary(self, since: int = 0, request_id: str | None = None) -> dict[str, Any]:
        """Counts and the logged requests after `since`; with `request_id`, only the requests whose global
        (the caller's) or local (fakecloud's own) id is that one, and counts of those alone."""
        records = [r for r in self._log if r.seq > since
                   and (request_id is None or request_id in (r.request_id, r.global_request_id))]
        by_service: Counter[str] = Counter(r.service for r in records)
        return {
            "seq": self._seq,
            "total": len(records),
            "by_service": dict(by_service),
            "counts": [
                {"service": s, "method": m, "route": r, "count": c}
                for (s, m, r), c in sorted(self.counts.items())
            ]
            if since == 0 and request_id is None
            else _count(records),
            "requests": [asdict(r) for r in records],
        }


def _count(records: list[RequestRecord]) -> list[dict[str, Any]]:
    counter: Counter[tuple[str, str, str]] = Counter((r.service, r.method, r.route) for r in records)
    return [{"service": s, "method": m, "route": r, "count": c} for (s, m, r), c in sorted(counter.items())]
