"""Cloud faults never leave an instance stuck without a reason, and never leak a resource."""

from __future__ import annotations

import pytest


def test_server_error_after_volume_exists_leaves_error_with_the_clouds_fault(hearth_api):
    api = hearth_api.client()
    hearth_api.cloud.control.add_fault(service="compute", operation="server.create", action="error_status",
                                       message="No valid host was found. There are not enough hosts available.",
                                       count=1)
    inst = hearth_api.create(api)
    iid = inst["id"]
    assert inst["status"] == "ERROR"
    assert "No valid host was found" in inst["fault"]["message"]
    assert inst["fault"]["created"]
    # the volume had been created: it is still there until the user deletes the instance
    assert hearth_api.cloud_resource("volumes", iid)["status"] in ("available", "in-use")
    ops = api.get(f"/instances/{iid}/operations").json()["operations"]
    assert ops[0]["state"] == "failed" and "No valid host" in ops[0]["error"]
    events = api.get(f"/instances/{iid}/events").json()["events"]
    assert events[-1]["level"] == "error"

    # an instance in ERROR refuses changes but can be deleted; deleting leaves nothing behind
    refused = api.post(f"/instances/{iid}/action", json={"resize": {"volume": {"size": 2}}})
    assert refused.status_code == 422 and "(status was ERROR)" in refused.text
    assert api.delete(f"/instances/{iid}").status_code == 202
    hearth_api.settle()
    assert api.get(f"/instances/{iid}").status_code == 404
    assert hearth_api.leftovers() == {}


def test_refused_resize_keeps_the_instance_usable_with_the_fault_shown(hearth_api):
    """Nova refuses the resize call: nothing broke, so the instance stays ACTIVE (task NONE) with a fault."""
    api = hearth_api.client()
    iid = hearth_api.create(api)["id"]
    hearth_api.cloud.control.add_fault(service="compute", operation="server.action", action="http_error",
                                       status=400, message="Resize refused: no host fits.", count=1)
    assert api.post(f"/instances/{iid}/action", json={"resize": {"flavorRef": "2"}}).status_code == 202
    hearth_api.settle()
    shown = api.get(f"/instances/{iid}").json()["instance"]
    assert (shown["status"], shown["flavor"]["id"]) == ("ACTIVE", "1")  # desired state changes only on success
    assert "Resize refused: no host fits." in shown["fault"]["message"]
    assert hearth_api.cloud_resource("servers", iid)["flavor"]["original_name"] == "m1.tiny"
    # still usable: the next operation runs and clears the fault
    assert api.post(f"/instances/{iid}/action", json={"resize": {"volume": {"size": 2}}}).status_code == 202
    hearth_api.settle()
    shown = api.get(f"/instances/{iid}").json()["instance"]
    assert (shown["status"], shown["volume"]["size"]) == ("ACTIVE", 2) and "fault" not in shown
    assert hearth_api.cloud_resource("volumes", iid)["size"] == 2


def test_resize_that_breaks_the_server_leaves_error_and_is_deletable(hearth_api):
    api = hearth_api.client()
    iid = hearth_api.create(api)["id"]
    hearth_api.cloud.control.add_fault(service="compute", operation="server.resize", action="error_status",
                                       message="Resize refused by the scheduler.", count=1)
    assert api.post(f"/instances/{iid}/action", json={"resize": {"flavorRef": "2"}}).status_code == 202
    hearth_api.settle()
    shown = api.get(f"/instances/{iid}").json()["instance"]
    assert shown["status"] == "ERROR"
    assert shown["flavor"]["id"] == "1"
    assert "Resize refused by the scheduler." in shown["fault"]["message"]
    assert hearth_api.cloud_resource("servers", iid)["status"] == "ERROR"
    assert api.delete(f"/instances/{iid}").status_code == 202
    hearth_api.settle()
    assert api.get(f"/instances/{iid}").status_code == 404
    assert hearth_api.leftovers() == {}


def test_failed_delete_shows_error_with_the_reason_and_can_be_retried(hearth_api):
    """A delete Nova refuses for good (403: not a fault of the weather) ends in ERROR with Nova's reason."""
    api = hearth_api.client()
    inst = hearth_api.create(api)
    iid = inst["id"]
    hearth_api.cloud.control.add_fault(service="compute", operation="server.delete", action="http_error",
                                       status=403, message="Compute is having a bad day.", count=10)
    assert api.delete(f"/instances/{iid}").status_code == 202
    hearth_api.settle()
    shown = api.get(f"/instances/{iid}").json()["instance"]
    assert shown["status"] == "ERROR"
    assert "delete failed" in shown["fault"]["message"]
    hearth_api.cloud.control.clear_faults()
    assert api.delete(f"/instances/{iid}").status_code == 202
    hearth_api.settle()
    assert api.get(f"/instances/{iid}").status_code == 404
    assert hearth_api.leftovers() == {}


def _row_counts(hearth_api) -> dict[str, int]:
    from sqlalchemy import func, select

    from hearth.db.models import Event, Instance, Operation, SecurityGroupRule

    with hearth_api.runtime.sessions() as session:
        return {model.__name__: session.scalar(select(func.count()).select_from(model))
                for model in (Instance, Operation, SecurityGroupRule, Event)}


@pytest.mark.parametrize("service, operation", [("compute", "limits.show"), ("volume", "limits.show")])
def test_cloud_outage_during_preflight_is_a_503_to_retry_and_creates_nothing(hearth_api, fault_of, service,
                                                                             operation):
    """Nova or Cinder answering 5xx while the API checks quota is the cloud's outage, not the user's bad input."""
    api = hearth_api.client()
    cloud_before, rows_before = hearth_api.cloud_ids(), _row_counts(hearth_api)
    hearth_api.cloud.control.add_fault(service=service, operation=operation, action="http_error", status=503,
                                       message="Service is down for maintenance")
    response = api.post("/instances", json={"instance": {"name": "db1", "flavorRef": "1", "volume": {"size": 1}}})
    message = fault_of(response, 503, "serviceUnavailable", "The cloud is unavailable", "retry",
                       "Service is down for maintenance", "(HTTP 503)")
    assert "quota" not in message.lower()
    hearth_api.taskmanager.run_until_idle(30)
    assert hearth_api.cloud_ids() == cloud_before
    assert _row_counts(hearth_api) == rows_before
    assert api.get("/instances").json()["instances"] == []


def test_cloud_outage_reaches_troveclient_as_service_unavailable(hearth_api):
    from keystoneauth1 import session as ks_session
    from keystoneauth1.identity import v3
    from troveclient import exceptions as trove_exceptions
    from troveclient.v1 import client as trove_client

    trove = trove_client.Client(session=ks_session.Session(auth=v3.Password(**hearth_api.cloud.auth("demo"))),
                                region_name="RegionOne")
    cloud_before = hearth_api.cloud_ids()
    hearth_api.cloud.control.add_fault(service="compute", operation="limits.show", action="http_error", status=500,
                                       message="Nova database connection lost")
    with pytest.raises(trove_exceptions.ClientException, match="The cloud is unavailable") as raised:
        trove.instances.create("tc-db", "1", volume={"size": 1})
    assert raised.value.http_status == 503  # troveclient's ServiceUnavailable
    assert isinstance(raised.value, trove_exceptions.ServiceUnavailable)
    assert trove.instances.list() == []
    assert hearth_api.cloud_ids() == cloud_before

