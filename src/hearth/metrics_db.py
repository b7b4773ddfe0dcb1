"""The gauges Prometheus reads from Hearth's database when it scrapes `/metrics`: the queue and the fleet.

Counted by a few aggregate queries at scrape time, not kept in step by hand, so they cannot drift from the
rows. Registered on hearth.metrics' registry by `watch(runtime)` (the API and the task manager each do).
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from hearth.db.models import Instance, Operation, OperationState, utcnow
from hearth.metrics import REGISTRY, label
from hearth.views import instance_status, operating_status

if TYPE_CHECKING:
    from hearth.runtime import Runtime


class DatabaseCollector(Collector):
    """The queue and the fleet, counted from the database when scraped (three aggregate queries)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily("hearth_queue_depth", "Operations queued or running, by state", labels=["state"])
        oldest = GaugeMetricFamily("hearth_queue_oldest_age_seconds", "Age of the oldest queued operation (0: none)")
        instances = GaugeMetricFamily("hearth_instances", "Live instances by engine, status and operating status",
                                      labels=["engine", "status", "operating_status"])
        drifted = GaugeMetricFamily("hearth_instances_drifted", "Live instances whose cloud differs from the record")
        live = Instance.deleted_at.is_(None)
        with self.runtime.sessions() as session:
            queue = dict(session.execute(select(Operation.state, func.count()).where(
                Operation.state.in_(OperationState.ACTIVE)).group_by(Operation.state)).all())
            first = session.scalar(select(func.min(Operation.created_at)).where(
                Operation.state == OperationState.QUEUED))
            groups = session.execute(select(Instance.engine, Instance.task, Instance.server_status,
                                            Instance.operating_status, func.count()).where(live).group_by(
                Instance.engine, Instance.task, Instance.server_status, Instance.operating_status)).all()
            drift_count = session.scalar(select(func.count()).select_from(Instance).where(
                live, Instance.drift.is_not(None))) or 0
        for name in sorted(OperationState.ACTIVE):
            depth.add_metric([name], queue.get(name, 0))
        oldest.add_metric([], max(0.0, (utcnow() - first).total_seconds()) if first is not None else 0.0)
        by_labels: dict[tuple[str, str, str], int] = {}
        for engine, task, server_status, operating, number in groups:
            row = SimpleNamespace(task=task, server_status=server_status, operating_status=operating)
            key = (label(engine), instance_status(row), label(operating_status(row)))  # type: ignore[arg-type]
            by_labels[key] = by_labels.get(key, 0) + number
        for key, number in sorted(by_labels.items()):
            instances.add_metric(list(key), number)
        drifted.add_metric([], drift_count)
        yield from (depth, oldest, instances, drifted)


_collectors: dict[int, DatabaseCollector] = {}


def watch(runtime: Runtime) -> None:
    """Count `runtime`'s database at scrape time (once per runtime; the latest one when there are several)."""
    for collector in list(_collectors.values()):
        REGISTRY.unregister(collector)
    _collectors.clear()
    collector = DatabaseCollector(runtime)
    REGISTRY.register(collector)
    _collectors[id(runtime)] = collector
