"""Cloud faults never leave an instance stuck without a reason, and never leak a resource."""

from __future__ import annotations


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
    api = hearth_api.client()
    inst = hearth_api.create(api)
    iid = inst["id"]
    hearth_api.cloud.control.add_fault(service="compute", operation="server.delete", action="http_error",
                                       status=500, message="Compute is having a bad day.", count=10)
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
