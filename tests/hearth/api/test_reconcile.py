"""Drift repair on each engine: what was changed behind Hearth's back in Neutron, Cinder and Nova (for the
orchestrator: behind Heat's back, in the stack's own resources) is found by the drift check, then undone by
an administrator's `reconcile`; the cloud itself is read afterwards. Also: the operator's reset-status, a
reconcile that cannot repair (the server is gone) failing with the reason, and the automatic repair of rule
drift (`drift_repair_rules`)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from hearth.config import Settings
from hearth.db.models import Instance, Task
from hearth.taskmanager import drift

WAIT = {"interval": 0.05, "wait": 30}
# Repairs are the cloud's business, not the database's: Hearth's records in PostgreSQL (production's) only.
pytestmark = pytest.mark.parametrize("db_url", [pytest.param("postgresql", marks=pytest.mark.postgres)],
                                     indirect=True)


@pytest.fixture(params=["natives", "orchestrator"])
def hearth_settings(request: pytest.FixtureRequest, hearth_settings: Settings) -> Settings:
    return hearth_settings.model_copy(update={"engine": request.param})


def _drift(admin: Any, iid: str) -> list[str]:
    response = admin.get(f"/mgmt/instances/{iid}/drift")
    assert response.status_code == 200, response.text
    return response.json()["drift"]


def _reconcile(hearth_api: Any, admin: Any, iid: str) -> dict[str, Any]:
    response = admin.post(f"/mgmt/instances/{iid}/action", json={"reconcile": {}})
    assert response.status_code == 202, response.text
    hearth_api.settle()
    return admin.get(f"/mgmt/instances/{iid}").json()["instance"]


def _resize_behind(os_conn: Any, server_id: str, flavor: str) -> None:
    server = os_conn.compute.get_server(server_id)
    os_conn.compute.resize_server(server, flavor)
    os_conn.compute.wait_for_server(server, status="VERIFY_RESIZE", **WAIT)
    os_conn.compute.confirm_server_resize(server)
    os_conn.compute.wait_for_server(server, status="ACTIVE", **WAIT)


def test_reconcile_undoes_rule_volume_and_flavor_drift(hearth_api, os_conn, hearth_settings):
    demo, admin = hearth_api.client(), hearth_api.client("admin")
    inst = hearth_api.create(demo, "drifting", access={"allowed_cidrs": ["10.0.0.0/24"]})
    iid = inst["id"]
    recorded_rules = hearth_api.cloud_rules(iid)
    assert ("tcp", 5432, 5432, "10.0.0.0/24") in recorded_rules
    group = hearth_api.cloud_resource("security_groups", iid)
    server_id = hearth_api.cloud_resource("servers", iid)["id"]
    volume_id = hearth_api.cloud_resource("volumes", iid)["id"]

    # behind Hearth's (and Heat's) back: a rule opened to the world, a recorded rule deleted, the volume
    # extended, the server resized
    os_conn.network.create_security_group_rule(
        security_group_id=group["id"], direction="ingress", ethertype="IPv4", protocol="tcp",
        port_range_min=5432, port_range_max=5432, remote_ip_prefix="0.0.0.0/0")
    rule = next(r for r in os_conn.network.security_group_rules(security_group_id=group["id"])
                if r.remote_ip_prefix == "10.0.0.0/24")
    os_conn.network.delete_security_group_rule(rule)
    volume = os_conn.block_storage.get_volume(volume_id)
    os_conn.block_storage.extend_volume(volume, 2)
    os_conn.block_storage.wait_for_status(volume, "in-use", **WAIT)
    _resize_behind(os_conn, server_id, "2")

    found = _drift(admin, iid)
    assert any("has a rule Hearth does not record" in d and "0.0.0.0/0" in d for d in found), found
    assert any("lacks the rule" in d and "10.0.0.0/24" in d for d in found), found
    assert any("is 2 GB; Hearth records 1 GB" in d for d in found), found
    assert any("has flavor m1.small" in d for d in found), found

    plan = admin.post(f"/mgmt/instances/{iid}/action", params={"dry_run": "true"}, json={"reconcile": {}})
    assert plan.status_code == 200, plan.text
    planned = [step["detail"] for step in plan.json()["plan"]["steps"]]
    assert all(any(d == detail for detail in planned) for d in found), (found, planned)
    assert _drift(admin, iid) == found  # the dry run changed nothing

    shown = _reconcile(hearth_api, admin, iid)
    assert shown["status"] == "ACTIVE" and "fault" not in shown and "drift" not in shown, shown

    # the cloud itself: the flavor is back, the rules are exactly the recorded ones, the grown volume is kept
    # (Cinder cannot shrink it) and the record now says so, the same resources are still there
    server = os_conn.compute.get_server(server_id)
    assert server.flavor["original_name"] == "m1.tiny" and server.status == "ACTIVE"
    assert hearth_api.cloud_rules(iid) == recorded_rules
    volume = os_conn.block_storage.get_volume(volume_id)
    assert volume.size == 2 and [a["server_id"] for a in volume.attachments] == [server_id]
    assert shown["volume"]["size"] == 2
    assert hearth_api.cloud_resource("servers", iid)["id"] == server_id
    assert _drift(admin, iid) == []
    messages = [e["message"] for e in demo.get(f"/instances/{iid}/events").json()["events"]]
    assert any("grown outside Hearth to 2 GB" in m for m in messages), messages
    assert "reconciled: the cloud holds what Hearth records" in messages
    if hearth_settings.engine == "orchestrator":
        assert any(m.startswith("Heat's check of stack") for m in messages), messages
        stack = os_conn.orchestration.find_stack(f"hearth-{iid}", ignore_missing=False)
        assert stack.status == "UPDATE_COMPLETE" and str(stack.parameters["volume_size"]) == "2"

    # the record and the cloud now agree, so the usual operations work again (a resize to the drifted flavor)
    response = demo.post(f"/instances/{iid}/action", json={"resize": {"flavorRef": "2"}})
    assert response.status_code == 202, response.text
    hearth_api.settle()
    assert os_conn.compute.get_server(server_id).flavor["original_name"] == "m1.small"
    assert _drift(admin, iid) == []


def test_reconcile_needs_admin_and_refuses_a_lost_server_with_the_reason(hearth_api, os_conn, fault_of):
    demo, admin = hearth_api.client(), hearth_api.client("admin")
    iid = hearth_api.create(demo, "lost")["id"]
    fault_of(demo.post(f"/instances/{iid}/action", json={"reconcile": {}}), 403, "forbidden", "admin role")
    server = os_conn.compute.get_server(hearth_api.cloud_resource("servers", iid)["id"])
    os_conn.compute.delete_server(server)
    os_conn.compute.wait_for_delete(server, **WAIT)

    shown = _reconcile(hearth_api, admin, iid)
    assert shown["status"] == "ERROR", shown
    assert "no longer exist" in shown["fault"]["message"] and "Delete the instance" in shown["fault"]["message"]
    # nothing was rebuilt in the lost server's place, and nothing else was touched
    assert [s for s in os_conn.compute.servers() if iid in s.name] == []
    assert os_conn.block_storage.get_volume(hearth_api.cloud_resource("volumes", iid)["id"]).status == "available"

    # the operator's way out of ERROR: reset-status (an owner's reset changes nothing), then delete
    assert demo.post(f"/instances/{iid}/action", json={"reset_status": {}}).status_code == 202
    assert demo.get(f"/instances/{iid}").json()["instance"]["status"] == "ERROR"
    assert admin.post(f"/mgmt/instances/{iid}/action", json={"reset_status": {}}).status_code == 202
    with hearth_api.runtime.sessions() as session:
        assert session.get(Instance, iid).task == Task.NONE
    assert demo.delete(f"/instances/{iid}").status_code == 202
    hearth_api.settle()
    assert hearth_api.leftovers() == {}


def test_rule_drift_is_repaired_automatically_when_enabled(hearth_api, os_conn):
    demo = hearth_api.client()
    iid = hearth_api.create(demo, "guarded", access={"allowed_cidrs": ["10.0.0.0/24"]})["id"]
    recorded_rules = hearth_api.cloud_rules(iid)
    group = hearth_api.cloud_resource("security_groups", iid)
    runtime = hearth_api.runtime
    server_id = hearth_api.cloud_resource("servers", iid)["id"]

    # off (the default): the drift is recorded, nothing is repaired
    os_conn.network.create_security_group_rule(
        security_group_id=group["id"], direction="ingress", ethertype="IPv4", protocol="tcp",
        port_range_min=5432, port_range_max=5432, remote_ip_prefix="0.0.0.0/0")
    assert drift.check_once(runtime).repairs == 0
    assert ("tcp", 5432, 5432, "0.0.0.0/0") in hearth_api.cloud_rules(iid)

    runtime.settings.drift_repair_rules = True
    try:
        # a rules-only drift is reconciled at once
        assert drift.check_once(runtime).repairs == 1
        hearth_api.settle()
        assert hearth_api.cloud_rules(iid) == recorded_rules
        assert "drift" not in demo.get(f"/instances/{iid}").json()["instance"]

        # a drift beyond the rules (the server resized) waits for an operator, rules and all
        os_conn.network.create_security_group_rule(
            security_group_id=group["id"], direction="ingress", ethertype="IPv4", protocol="tcp",
            port_range_min=5432, port_range_max=5432, remote_ip_prefix="0.0.0.0/0")
        _resize_behind(os_conn, server_id, "2")
        assert drift.check_once(runtime).repairs == 0
        deadline = time.monotonic() + 1
        while time.monotonic() < deadline:  # nothing queued: the instance stays idle
            with runtime.sessions() as session:
                assert session.get(Instance, iid).task == Task.NONE
            time.sleep(0.1)
        assert ("tcp", 5432, 5432, "0.0.0.0/0") in hearth_api.cloud_rules(iid)
    finally:
        runtime.settings.drift_repair_rules = False
