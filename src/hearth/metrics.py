"""Hearth's Prometheus metrics, each declared once here (prometheus_client), so the API, the task manager and
the engines count into the same registry and README's table has one source.

Labels stay bounded: kinds, engines, outcomes, services, methods, statuses and causes, never an instance,
operation or request id. What is a count of rows (the queue, the instances) is read from the database when
`/metrics` is scraped (hearth.metrics_db), not kept in step by hand, so it cannot drift from the truth. This
module imports nothing of Hearth's, so the engines (below the database layer) count into it too.

`enabled` turns the counting off (`metrics = false`: the bench compares throughput with and without).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest

if TYPE_CHECKING:
    import requests

# No `*_created` series: Prometheus does not need them, and they double the size of every scrape.
disable_created_metrics()

#: Everything Hearth counts. A registry of its own (not prometheus_client's global one), so tests and several
#: runtimes in one process read the same numbers and nothing else's.
REGISTRY = CollectorRegistry(auto_describe=True)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Operations last from milliseconds (an access change) to many minutes (a provision on a slow cloud).
OPERATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
#: A cloud request takes milliseconds; a wait on the cloud seconds to minutes.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
WAIT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)

enabled = True

OPERATIONS_STARTED = Counter("hearth_operations_started", "Operations claimed by a worker (a resumed attempt "
                             "counts again)", ["kind", "engine"], registry=REGISTRY)
OPERATIONS_FINISHED = Counter("hearth_operations_finished", "Operations that ended, by outcome: succeeded, "
                              "failed, or requeued after a transient cloud fault", ["kind", "engine", "outcome"],
                              registry=REGISTRY)
OPERATION_SECONDS = Histogram("hearth_operation_duration_seconds", "Time from an operation's claim to its end, "
                              "by outcome", ["kind", "engine", "outcome"], buckets=OPERATION_BUCKETS,
                              registry=REGISTRY)
CLOUD_WAIT_SECONDS = Histogram("hearth_cloud_wait_seconds", "Time spent waiting on the cloud for a transition "
                               "(a boot, an attach, a stack update), by wait kind", ["wait_kind"],
                               buckets=WAIT_BUCKETS, registry=REGISTRY)
RETRIES = Counter("hearth_retries", "Transient cloud faults retried (in place or by requeueing the operation), "
                  "by service and cause", ["service", "cause"], registry=REGISTRY)
CLOUD_REQUESTS = Counter("hearth_cloud_requests", "HTTP requests to the cloud, by service, method and status "
                         "(0: no answer)", ["service", "method", "status"], registry=REGISTRY)
CLOUD_REQUEST_SECONDS = Histogram("hearth_cloud_request_duration_seconds", "Latency of HTTP requests to the "
                                  "cloud", ["service", "method"], buckets=REQUEST_BUCKETS, registry=REGISTRY)
WORKERS_BUSY = Gauge("hearth_workers_busy", "Task manager workers running an operation now", registry=REGISTRY)
TOKEN_VALIDATIONS = Counter("hearth_token_validations", "Keystone token validations, by result: cached (no "
                            "call to Keystone), valid, invalid", ["result"], registry=REGISTRY)
API_REQUESTS = Counter("hearth_api_requests", "API requests answered, by method, route template and status",
                       ["method", "route", "status"], registry=REGISTRY)
API_REQUEST_SECONDS = Histogram("hearth_api_request_duration_seconds", "API request latency, by method and route "
                                "template", ["method", "route"], buckets=REQUEST_BUCKETS, registry=REGISTRY)


def label(value: object) -> str:
    """A label value: the text of a bounded vocabulary item ("" for none)."""
    return "" if value is None else str(value)


def count(metric: Counter, amount: float = 1.0, **labels: object) -> None:
    if enabled:
        (metric.labels(**{k: label(v) for k, v in labels.items()}) if labels else metric).inc(amount)


def observe(metric: Histogram, seconds: float, **labels: object) -> None:
    if enabled:
        (metric.labels(**{k: label(v) for k, v in labels.items()}) if labels else metric).observe(seconds)


def busy(delta: int) -> None:
    if enabled:
        WORKERS_BUSY.inc(delta)


# --------------------------------------------------------------------------------------------------
# Cloud requests: a response hook on the requests session under each openstacksdk Connection.


def cloud_request_hook(service_of: Callable[[str | None], str | None]) -> Callable[..., Any]:
    """A `requests` response hook counting each cloud request by service (found from its URL by `service_of`),
    method and status, with its latency (requests' own `elapsed`: send to headers received)."""

    def hook(response: requests.Response, *_args: Any, **_kwargs: Any) -> requests.Response:
        if enabled:
            request = response.request
            service = service_of(request.url) or "other"
            method = request.method or ""
            count(CLOUD_REQUESTS, service=service, method=method, status=response.status_code)
            observe(CLOUD_REQUEST_SECONDS, response.elapsed.total_seconds(), service=service, method=method)
        return response

    return hook


def no_answer(service: str | None, method: str) -> None:
    """A cloud request that got no answer (a reset, a timeout): counted with status 0."""
    count(CLOUD_REQUESTS, service=service or "other", method=method, status=0)


def exposition() -> bytes:
    """The text format Prometheus scrapes."""
    return generate_latest(REGISTRY)


