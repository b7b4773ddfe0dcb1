"""The API answers by the error's type: a cloud that cannot answer now is 503 with Retry-After (dry runs
included, on both engines), a quota 413, a refusal of the request 400. Faults are fakecloud's own
injection; nothing is recorded or created by a refused request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from hearth import service
from hearth.api.errors import retry_after_header
from hearth.db.models import Event, Instance, Operation, SecurityGroupRule
from hearth.engines.base import EngineError, NotConfigured, QuotaExceeded, TransientError
from hearth.runtime import EngineNotAllowed, build_runtime
from hearth.service import DEFAULT_RETRY_AFTER
from hearth.taskmanager import TaskManager


def _rows(runtime: Any) -> dict[str, int]:
    with runtime.sessions() as session:
        return {model.__name__: session.scalar(select(func.count()).select_from(model))
                for model in (Instance, Operation, SecurityGroupRule, Event)}


def _unavailable(fault_of: Any, response: Any, *fragments: str) -> str:
    message = fault_of(response, 503, "serviceUnavailable", *fragments)
    assert response.headers["Retry-After"] == str(int(DEFAULT_RETRY_AFTER)), response.headers
    return message


@pytest.fixture
def migration(hearth_api: Any, hearth_settings: Any) -> Iterator[Any]:
    """Hearth restarted with engine = migration on the same database: new instances are Heat stacks. Built
    with the conftest's ApiServer and HearthApi, reached through a method's globals (a conftest cannot be
    imported)."""
    support = type(hearth_api).settle.__globals__
    hearth_api.taskmanager.stop()
    runtime = build_runtime(hearth_settings.model_copy(update={"engine": "migration"}))
    taskmanager = TaskManager(runtime).start()
    server = support["ApiServer"](runtime).start()
    try:
        yield support["HearthApi"](server.url, runtime, taskmanager, hearth_api.cloud)
    finally:
        server.stop()
        taskmanager.stop()
        runtime.close()


def test_dry_runs_during_a_cloud_outage_are_503_not_400(hearth_api, fault_of):
    api = hearth_api.client()
    iid = hearth_api.create(api, volume={"size": 2})["id"]
    rows, cloud = _rows(hearth_api.runtime), hearth_api.cloud_ids()
    control = hearth_api.cloud.control
    control.add_fault(service="volume", operation="limits.show", action="http_error", status=503,
                      message="Cinder is restarting")
    _unavailable(fault_of, api.post(f"/instances/{iid}/action?dry_run=true", json={"resize": {"volume": {"size": 3}}}),
                 "The cloud is unavailable", "Cinder is restarting", "(HTTP 503)", "retry")
    _unavailable(fault_of, api.post(f"/instances/{iid}/action", json={"resize": {"volume": {"size": 3}}}),
                 "Cinder is restarting")
    _unavailable(fault_of, api.post("/instances?dry_run=true", json={"instance": {
        "name": "db2", "flavorRef": "1", "volume": {"size": 1}}}), "Cinder is restarting")
    control.clear_faults()
    control.add_fault(service="network", operation="quota.details", action="http_error", status=500,
                      message="Neutron lost its database")
    _unavailable(fault_of, api.put(f"/instances/{iid}?dry_run=true",
                                   json={"instance": {"access": {"allowed_cidrs": ["10.1.0.0/16"]}}}),
                 "Neutron lost its database", "(HTTP 500)")
    control.clear_faults()
    control.add_fault(service="compute", operation="availability_zone.list", action="http_error", status=502,
                      message="Bad gateway")
    _unavailable(fault_of, api.post("/instances", json={"instance": {
        "name": "db2", "flavorRef": "1", "volume": {"size": 1}, "availability_zone": "nova"}}), "Bad gateway")
    control.clear_faults()
    control.add_fault(service="compute", operation="limits.show", action="disconnect")  # a reset, no answer
    _unavailable(fault_of, api.post("/instances", json={"instance": {
        "name": "db2", "flavorRef": "1", "volume": {"size": 1}}}), "The cloud is unavailable", "retry")
    control.clear_faults()
    assert _rows(hearth_api.runtime) == rows and hearth_api.cloud_ids() == cloud
    # the cloud back: the same requests are accepted
    assert api.post(f"/instances/{iid}/action?dry_run=true",
                    json={"resize": {"volume": {"size": 3}}}).status_code == 200


def test_an_orchestrator_dry_run_during_a_heat_outage_is_503(migration, fault_of):
    api = migration.client()
    inst = migration.create(api, "stacked")
    assert inst["engine"] == "orchestrator"
    rows = _rows(migration.runtime)
    migration.cloud.control.add_fault(service="orchestration", operation="stack.show", action="http_error",
                                      status=503, message="Heat engine is down")
    migration.cloud.control.add_fault(service="orchestration", operation="stack.preview_update",
                                      action="http_error", status=503, message="Heat engine is down")
    _unavailable(fault_of, api.post(f"/instances/{inst['id']}/action?dry_run=true",
                                    json={"resize": {"flavorRef": "2"}}), "The cloud is unavailable", "(HTTP 503)")
    _unavailable(fault_of, api.delete(f"/instances/{inst['id']}?dry_run=true"), "The cloud is unavailable")
    migration.cloud.control.clear_faults()
    assert _rows(migration.runtime) == rows
    assert api.get(f"/instances/{inst['id']}").json()["instance"]["status"] == "ACTIVE"


def test_flavor_list_during_a_nova_outage_is_503_with_retry_after(hearth_api, fault_of):
    api = hearth_api.client()
    hearth_api.cloud.control.add_fault(service="compute", operation="flavor.list", action="http_error", status=503,
                                       message="Nova API overloaded")
    _unavailable(fault_of, api.get("/flavors"), "Could not list flavors", "Nova API overloaded", "retry later")
    # python-troveclient fails on any Retry-After outside a 413 (a TypeError instead of ServiceUnavailable):
    # keystoneauth-based clients, its only transport, get the 503 without it
    response = api.get("/flavors", headers={"User-Agent": "openstacksdk/4 keystoneauth1/5.18 python-requests/2"})
    fault_of(response, 503, "serviceUnavailable", "Nova API overloaded")
    assert "Retry-After" not in response.headers
    hearth_api.cloud.control.clear_faults()
    assert [f["name"] for f in api.get("/flavors").json()["flavors"]][:2] == ["m1.tiny", "m1.small"]


@pytest.mark.parametrize(("error", "answer", "status"), [
    (EngineNotAllowed("instance x is owned by the natives engine"), service.Conflict, 409),
    (QuotaExceeded("quota exceeded: cores: need 2, 1 of 4 left"), service.OverLimit, 413),
    (TransientError("reading compute limits failed: Nova is down (HTTP 503)", status=503), service.Unavailable, 503),
    (NotConfigured("engine = auto: could not read the cloud's service catalog"), service.Unavailable, 503),
    (EngineError("flavor 'x' does not exist in the cloud"), service.BadRequest, 400),
])
def test_engine_errors_map_by_type(error, answer, status):
    """The same words under another type get another status: the type decides, never the text."""
    mapped = service._engine_failure(error)
    assert type(mapped) is answer and mapped.status == status
    disguised = service._engine_failure(EngineError(str(error)))
    assert type(disguised) is service.BadRequest


def test_the_clouds_retry_after_is_passed_on():
    mapped = service._engine_failure(TransientError("Nova is down (HTTP 503)", status=503, retry_after=12.2))
    assert isinstance(mapped, service.Unavailable) and mapped.retry_after == 12.2
    assert retry_after_header(mapped.retry_after) == {"Retry-After": "13"}
    assert retry_after_header(service.Unavailable("no hint").retry_after) == {"Retry-After": "5"}
