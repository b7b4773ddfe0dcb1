"""The status sync: a server that stops, fails or vanishes outside an operation shows on the instance."""

from hearth.taskmanager.status_sync import sync_once


def _show(api, instance_id):
    return api.get(f"/instances/{instance_id}").json()["instance"]


def test_a_stopped_then_started_server_shows_on_the_instance(hearth_api, os_conn):
    api = hearth_api.client()
    instance = hearth_api.create(api)
    server_id = hearth_api.cloud_resource("servers", instance["id"])["id"]
    assert sync_once(hearth_api.runtime) == 0  # nothing changed behind Hearth's back

    os_conn.compute.stop_server(server_id)
    os_conn.compute.wait_for_server(os_conn.compute.get_server(server_id), status="SHUTOFF", interval=0.05, wait=10)
    assert sync_once(hearth_api.runtime) == 1
    assert _show(api, instance["id"])["status"] == "SHUTDOWN"

    os_conn.compute.start_server(server_id)
    os_conn.compute.wait_for_server(os_conn.compute.get_server(server_id), status="ACTIVE", interval=0.05, wait=10)
    assert sync_once(hearth_api.runtime) == 1
    shown = _show(api, instance["id"])
    assert shown["status"] == "ACTIVE"
    assert "fault" not in shown or not shown["fault"]
    events = api.get(f"/instances/{instance['id']}/events").json()["events"]
    assert any("is now SHUTOFF" in e["message"] for e in events)


def test_a_server_deleted_behind_hearths_back_is_an_error_with_a_reason_and_delete_still_cleans_up(
    hearth_api, os_conn
):
    api = hearth_api.client()
    instance = hearth_api.create(api)
    server_id = hearth_api.cloud_resource("servers", instance["id"])["id"]
    server = os_conn.compute.get_server(server_id)
    os_conn.compute.delete_server(server)
    os_conn.compute.wait_for_delete(server, interval=0.05, wait=10)

    assert sync_once(hearth_api.runtime) == 1
    shown = _show(api, instance["id"])
    assert shown["status"] == "ERROR"
    assert "no longer exists" in shown["fault"]["message"]

    assert api.delete(f"/instances/{instance['id']}").status_code == 202
    hearth_api.settle()
    assert api.get(f"/instances/{instance['id']}").status_code == 404
    assert hearth_api.leftovers() == {}


def test_an_instance_under_an_operation_is_left_to_the_operation(hearth_api, os_conn):
    api = hearth_api.client()
    instance = hearth_api.create(api)
    server_id = hearth_api.cloud_resource("servers", instance["id"])["id"]
    os_conn.compute.stop_server(server_id)
    os_conn.compute.wait_for_server(os_conn.compute.get_server(server_id), status="SHUTOFF", interval=0.05, wait=10)
    hearth_api.taskmanager.stop()  # the operation below stays queued, so the instance is busy
    try:
        response = api.post(f"/instances/{instance['id']}/action", json={"resize": {"volume": {"size": 2}}})
        assert response.status_code == 202, response.text
        assert sync_once(hearth_api.runtime) == 0
        assert _show(api, instance["id"])["status"] == "RESIZE"
    finally:
        hearth_api.taskmanager.start()
        hearth_api.settle()
