"""A real cloud's weather: transient faults (5xx, resets, latency) on every service never fail an operation,
and a change that fails for good leaves the record equal to the cloud.

Every test drives Hearth's REST API and task manager against fakecloud over HTTP, arms fakecloud's fault
injection, and checks the cloud itself afterwards: the flavor, the volume size, the security group's rules,
and after delete, nothing left behind.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

ENGINES = ["natives", "orchestrator", "migration"]
CLOUD_SERVICES = ("compute", "volume", "network", "orchestration", "image")


@pytest.fixture(params=ENGINES)
def hearth_settings(hearth_settings, request):
    """The shared settings, with each engine in turn."""
    return hearth_settings.model_copy(update={"engine": request.param})


def accepted(send, attempts: int = 40) -> requests.Response:
    """Send a request the way a well-behaved client does: a 503 is retried after its Retry-After."""
    for _ in range(attempts):
        response = send()
        if response.status_code != 503:
            return response
        assert "Retry-After" in response.headers, response.headers
        time.sleep(min(float(response.headers["Retry-After"]), 0.2))
    raise AssertionError(f"still 503 after {attempts} tries: {response.text}")


def instance(hearth_api, api, iid: str) -> dict[str, Any]:
    return accepted(lambda: api.get(f"/instances/{iid}")).json()["instance"]


def events(hearth_api, iid: str) -> list[str]:
    from sqlalchemy import select

    from hearth.db.models import Event

    with hearth_api.runtime.sessions() as session:
        return list(session.scalars(select(Event.message).where(Event.instance_id == iid).order_by(Event.id)))


def cloud_flavor_name(hearth_api, iid: str) -> str:
    return hearth_api.cloud_resource("servers", iid)["flavor"]["original_name"]


def recorded_cidrs(api, iid: str) -> set[str]:
    return set(accepted(lambda: api.get(f"/instances/{iid}")).json()["instance"]["access"]["allowed_cidrs"])


def cloud_cidrs(hearth_api, iid: str) -> set[str]:
    return {cidr for (_protocol, _low, _high, cidr) in hearth_api.cloud_rules(iid)}


def arm_weather(hearth_api, probability: float) -> None:
    """5xx of both kinds, dropped connections and latency on every service Hearth's engines call."""
    control = hearth_api.cloud.control
    for service in CLOUD_SERVICES:
        control.add_fault(service=service, action="http_error", status=503, probability=probability,
                          message="Service Unavailable: the backend is overloaded")
        control.add_fault(service=service, action="http_error", status=500, probability=probability / 2,
                          message="Internal Server Error")
        control.add_fault(service=service, action="disconnect", probability=probability / 4)
        control.add_fault(service=service, action="latency", latency_ms=20, probability=probability)


def test_every_operation_completes_through_transient_faults_on_every_service(hearth_api):
    api = hearth_api.client()
    arm_weather(hearth_api, 0.15)
    body = {"name": "stormy", "flavorRef": "1", "volume": {"size": 1}}
    created = accepted(lambda: api.post("/instances", json={"instance": body}))
    assert created.status_code == 200, created.text
    iid = created.json()["instance"]["id"]

    hearth_api.settle(180)
    shown = instance(hearth_api, api, iid)
    assert shown["status"] == "ACTIVE", shown
    assert cloud_flavor_name(hearth_api, iid) == "m1.tiny"

    response = accepted(lambda: api.post(f"/instances/{iid}/action", json={"resize": {"flavorRef": "2"}}))
    assert response.status_code == 202, response.text
    hearth_api.settle(180)
    assert instance(hearth_api, api, iid)["flavor"]["id"] == "2"
    assert cloud_flavor_name(hearth_api, iid) == "m1.small"

    response = accepted(lambda: api.post(f"/instances/{iid}/action", json={"resize": {"volume": {"size": 3}}}))
    assert response.status_code == 202, response.text
    hearth_api.settle(180)
    assert instance(hearth_api, api, iid)["volume"]["size"] == 3
    volume = hearth_api.cloud_resource("volumes", iid)
    assert volume["size"] == 3 and volume["status"] == "in-use"

    response = accepted(lambda: api.put(f"/instances/{iid}", json={"instance": {"access": {
        "allowed_cidrs": ["10.20.0.0/16", "192.168.9.0/24"]}}}))
    assert response.status_code == 202, response.text
    hearth_api.settle(180)
    assert recorded_cidrs(api, iid) == {"10.20.0.0/16", "192.168.9.0/24"} == cloud_cidrs(hearth_api, iid)
    assert instance(hearth_api, api, iid)["status"] == "ACTIVE"

    operations = accepted(lambda: api.get(f"/instances/{iid}/operations")).json()["operations"]
    assert [o["state"] for o in operations] == ["succeeded"] * 4, operations  # none failed, none still going
    log = events(hearth_api, iid)
    retries = [e for e in log if "retrying in" in e]
    assert retries, log  # the weather is visible: "Nova answered 503: ...; retrying in 0.2 s (attempt 2)"
    assert any(" answered 50" in e or "could not be reached" in e for e in retries), retries

    assert accepted(lambda: api.delete(f"/instances/{iid}")).status_code == 202
    hearth_api.settle(180)
    hearth_api.cloud.control.clear_faults()
    assert api.get(f"/instances/{iid}").status_code == 404
    assert hearth_api.leftovers() == {}


def test_a_create_whose_answer_was_lost_is_not_repeated(hearth_api):
    """Nova makes the server and the answer is lost (a 503 after the change): the resumed provision finds that
    server by its name and tag instead of booting a second one."""
    api = hearth_api.client()
    hearth_api.cloud.control.add_fault(service="compute", operation="server.create", action="http_error",
                                       status=503, when="after", count=1)
    hearth_api.cloud.control.add_fault(service="orchestration", operation="stack.create", action="http_error",
                                       status=503, when="after", count=1)
    inst = hearth_api.create(api)
    assert inst["status"] == "ACTIVE", inst
    servers = [s for s in hearth_api.inventory()["servers"] if s["name"].startswith(f"hearth-{inst['id']}")]
    assert len(servers) == 1, servers
    stacks = [s for s in hearth_api.inventory().get("stacks", []) if inst["id"] in (s.get("stack_name") or "")]
    assert len(stacks) <= 1, stacks
    assert any("retrying in" in e for e in events(hearth_api, inst["id"]))


def test_connections_made_while_version_discovery_fails_are_not_kept(hearth_api):
    """A 503 on a service's version document makes openstacksdk fall back to no microversion (Nova then refuses
    the create's `networks: auto` with a 400) or to NotSupported: Hearth drops such a Connection and makes
    another, so the operation goes through."""
    control = hearth_api.cloud.control
    for service in ("compute", "volume", "image", "network"):
        for operation in ("version", "versions"):
            control.add_fault(service=service, operation=operation, action="http_error", status=503, count=2)
    hearth_api.runtime.connections.close()  # every thread connects again, under the faults
    api = hearth_api.client()
    created = accepted(lambda: api.post("/instances", json={"instance": {"name": "fresh", "flavorRef": "1",
                                                                         "volume": {"size": 1}}}))
    assert created.status_code == 200, created.text
    iid = created.json()["instance"]["id"]
    hearth_api.settle(120)
    shown = instance(hearth_api, api, iid)
    assert shown["status"] == "ACTIVE", shown
    assert hearth_api.cloud_resource("servers", iid)["status"] == "ACTIVE"
    # the fresh connections met the faults: some version documents failed twice (and were asked again)
    assert len(control.faults()) < 8, control.faults()
