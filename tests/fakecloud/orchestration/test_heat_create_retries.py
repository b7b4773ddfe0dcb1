"""fakecloud's Heat retries a create that ends in ERROR, as upstream Heat does (`action_retry_limit`, 5).

Found by the real-Heat gate (tests/upstream_heat): a server that fails once to boot under upstream Heat is
deleted and created again, so the stack still completes; only a fault that outlasts every retry fails it.
"""

from __future__ import annotations

from openstack_fakecloud.orchestration.engine import ACTION_RETRY_LIMIT

TEMPLATE = {"heat_template_version": "2018-08-31", "resources": {"server": {"type": "OS::Nova::Server", "properties": {
    "image": "cirros-0.6.2", "flavor": "m1.tiny", "networks": [{"network": "private"}]}}}}
WAIT = {"interval": 0.05, "wait": 30}


def _events(os_conn, stack) -> list[str]:
    events = os_conn.orchestration.get(f"/stacks/{stack.name}/{stack.id}/events").json()["events"]
    return [e["resource_status"] for e in events if e["resource_name"] == "server"]


def _create(os_conn, name: str):
    stack = os_conn.orchestration.create_stack(name=name, template=TEMPLATE)
    return os_conn.orchestration.wait_for_status(stack, "CREATE_COMPLETE", failures=["CREATE_FAILED"], **WAIT)


def test_a_server_that_fails_once_is_deleted_and_created_again(fakecloud, os_conn):
    fakecloud.control.add_fault(service="compute", operation="server.create", action="error_status",
                                message="No valid host was found.", count=1)
    stack = _create(os_conn, "retry-once")
    assert stack.status == "CREATE_COMPLETE"

    servers = list(os_conn.compute.servers())
    assert [s.status for s in servers] == ["ACTIVE"]  # the failed one was deleted
    resources = os_conn.orchestration.get(f"/stacks/{stack.name}/{stack.id}/resources").json()["resources"]
    assert [r["physical_resource_id"] for r in resources] == [servers[0].id]
    assert _events(os_conn, stack) == ["CREATE_IN_PROGRESS", "CREATE_FAILED", "DELETE_IN_PROGRESS",
                                       "DELETE_COMPLETE", "CREATE_IN_PROGRESS", "CREATE_COMPLETE"]


def test_a_fault_outlasting_every_retry_fails_the_create_with_novas_reason(fakecloud, os_conn):
    fakecloud.control.add_fault(service="compute", operation="server.create", action="error_status",
                                message="No valid host was found.")
    stack = os_conn.orchestration.create_stack(name="retry-all", template=TEMPLATE)
    stack = os_conn.orchestration.wait_for_status(stack, "CREATE_FAILED", failures=["CREATE_COMPLETE"], **WAIT)

    assert "No valid host was found." in stack.status_reason
    assert fakecloud.control.faults()[0]["fired"] == 1 + ACTION_RETRY_LIMIT  # the first create and 5 retries
    assert [s.status for s in os_conn.compute.servers()] == ["ERROR"]  # only the last attempt is left
    os_conn.orchestration.delete_stack(stack)
    os_conn.orchestration.wait_for_delete(stack, **WAIT)
    assert list(os_conn.compute.servers()) == []
