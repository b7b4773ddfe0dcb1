"""`GET /metrics`: Hearth's Prometheus metrics (hearth.metrics, plus the queue and fleet gauges read from the
database at scrape time, hearth.metrics_db), in the text format Prometheus scrapes.

Like the health routes it needs no token: scrapers rarely carry one, and nothing in it is secret or
identifies an instance (labels are kinds, engines, services, statuses). Put it behind the network policy that
guards other scrape targets. A task manager running alone serves the same on `metrics_port`.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from hearth import metrics

router = APIRouter(tags=["metrics"])


@router.get("/metrics", include_in_schema=False)
def scrape() -> Response:
    return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE)
