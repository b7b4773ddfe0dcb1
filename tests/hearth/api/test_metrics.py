"""`/metrics` after a scripted run with an injected fault, checked against what really happened: the
operations (their attempts and outcomes), the retry, and the cloud calls fakecloud's own request log saw.
And request ids end to end: the id a client sends is the operation's, its events', and the global request
id of every cloud call the operation made (fakecloud's request log, filtered by that id)."""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

from hearth.logs import RequestIdFilter


def scrape(hearth_api: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, keyed by name and sorted labels."""
    response = requests.get(f"{hearth_api.url}/metrics", timeout=30)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def delta(before: dict, after: dict, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def test_metrics_and_request_ids_follow_a_create_through_a_fault(hearth_api, caplog):
    caplog.set_level(logging.INFO, logger="hearth.taskmanager")
    caplog.handler.addFilter(RequestIdFilter())  # as the server commands' handlers have it (hearth.cli)
    api = hearth_api.client()
    control = hearth_api.cloud.control
    before = scrape(hearth_api)
    seq = control.requests(log=False)["seq"]
    control.add_fault(service="compute", operation="server.create", action="http_error", status=503, count=1)
    request_id = f"req-{uuid.uuid4()}"
    response = api.post("/instances", headers={"X-OpenStack-Request-ID": request_id},
                        json={"instance": {"name": "counted", "flavorRef": "1", "volume": {"size": 1}}})
    assert response.status_code == 200, response.text
    assert response.headers["X-OpenStack-Request-ID"] == request_id
    iid = response.json()["instance"]["id"]
    hearth_api.settle()
    assert api.get(f"/instances/{iid}").json()["instance"]["status"] == "ACTIVE"
    after = scrape(hearth_api)

    # the operation: claimed twice (the 503 requeued it, the retry succeeded)
    provision = {"kind": "provision", "engine": "natives"}
    assert delta(before, after, "hearth_operations_started_total", **provision) == 2
    assert delta(before, after, "hearth_operations_finished_total", outcome="requeued", **provision) == 1
    assert delta(before, after, "hearth_operations_finished_total", outcome="succeeded", **provision) == 1
    assert delta(before, after, "hearth_operations_finished_total", outcome="failed", **provision) == 0
    assert delta(before, after, "hearth_operation_duration_seconds_count", outcome="succeeded", **provision) == 1
    assert delta(before, after, "hearth_retries_total", service="compute", cause="HTTP 503") == 1

    # the cloud calls: Hearth's counts of POSTs to Nova equal what Nova saw, the refused one included
    seen = control.requests(since=seq)["requests"]
    nova_posts = Counter(r["status"] for r in seen if r["service"] == "compute" and r["method"] == "POST")
    assert nova_posts[503] == 1 and nova_posts[202] >= 1, nova_posts
    for status, number in nova_posts.items():
        assert delta(before, after, "hearth_cloud_requests_total", service="compute", method="POST",
                     status=str(status)) == number
    assert delta(before, after, "hearth_cloud_request_duration_seconds_count", service="compute",
                 method="POST") == sum(nova_posts.values())
    assert any(name == "hearth_cloud_wait_seconds_count" and value > 0 for (name, _labels), value in after.items())

    # what is read from the database at scrape time
    assert after[("hearth_queue_depth", (("state", "queued"),))] == 0
    active = sum(value for (name, labels), value in after.items() if name == "hearth_instances"
                 and dict(labels)["engine"] == "natives" and dict(labels)["status"] == "ACTIVE")
    assert active == 1
    assert after[("hearth_instances_drifted", ())] == 0
    assert delta(before, after, "hearth_api_requests_total", method="POST",
                 route="/instances", status="200") == 1
    # no instance, operation or request id is ever a label
    assert not any(iid in str(labels) or request_id in str(labels) for (_name, labels) in after)

    # request ids end to end: the operation, its events, and every cloud call it made carry the client's id
    operations = api.get(f"/instances/{iid}/operations").json()["operations"]
    assert [op["request_id"] for op in operations] == [request_id]
    events = api.get(f"/instances/{iid}/events").json()["events"]
    assert events and all(e["request_id"] == request_id for e in events if e["operation_id"]), events
    followed = control.requests(since=seq, request_id=request_id)["requests"]
    calls = {(r["service"], r["method"], r["route"]) for r in followed}
    assert ("compute", "POST", "/compute/v2.1/servers") in calls, calls
    assert any(service == "volume" and method == "POST" for service, method, _route in calls), calls
    assert all(r["global_request_id"] == request_id for r in followed)
    assert sum(1 for r in followed if r["service"] == "compute" and r["method"] == "POST") == sum(nova_posts.values())
    # and the task manager's log line about the retry names it too
    requeued = [r for r in caplog.records if "requeued" in r.getMessage()]
    assert requeued and {r.request_id for r in requeued} == {request_id}, [vars(r) for r in requeued]


def test_the_grafana_dashboard_and_the_readme_name_only_metrics_that_exist(hearth_api):
    """Every metric the shipped dashboard queries and README's table documents is one /metrics serves, and every
    metric served is documented."""
    import json
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    response = requests.get(f"{hearth_api.url}/metrics", timeout=30)
    served = {family.name for family in text_string_to_metric_families(response.text)
              if family.name.startswith("hearth_")}
    dashboard = json.loads((root / "deploy/grafana/hearth.json").read_text())
    queried = {re.sub(r"_(bucket|count|sum)$", "", name) for panel in dashboard["panels"]
               for target in panel["targets"] for name in re.findall(r"hearth_[a-z_]+", target["expr"])}
    # prometheus_client names a counter's family without `_total`
    assert {re.sub(r"_total$", "", name) for name in queried} <= served, queried
    readme = (root / "README.md").read_text()
    documented = {re.sub(r"_total$", "", name) for name in re.findall(r"^\| `(hearth_[a-z_]+)`", readme, re.M)}
    assert documented == served, (documented ^ served)
