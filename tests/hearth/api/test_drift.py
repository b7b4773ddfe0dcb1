"""Drift detection on each engine: changes made behind Hearth's back in Neutron, Cinder and Nova are found by
the check (on demand here; the task manager runs the same check periodically), shown by `show`, recorded as
events and counted by the fleet summary; undone, the drift clears."""

from __future__ import annotations

from typing import Any

import pytest

from hearth.config import Settings


@pytest.fixture(params=["natives", "orchestrator"])
def hearth_settings(request: pytest.FixtureRequest, hearth_settings: Settings) -> Settings:
    return hearth_settings.model_copy(update={"engine": request.param})


def _drift(admin: Any, iid: str) -> list[str]:
    response = admin.get(f"/mgmt/instances/{iid}/drift")
    assert response.status_code == 200, response.text
    return response.json()["drift"]


def test_changes_behind_hearths_back_are_found_and_clear_when_undone(hearth_api, os_conn, hearth_settings):
    demo, admin = hearth_api.client(), hearth_api.client("admin")
    inst = hearth_api.create(demo, "watched", access={"allowed_cidrs": ["10.0.0.0/24"]})
    iid = inst["id"]
    assert inst["engine"] == hearth_settings.engine and _drift(admin, iid) == []
    group = hearth_api.cloud_resource("security_groups", iid)

    # a rule added in Neutron: an opening the API does not show (a security matter)
    extra = os_conn.network.create_security_group_rule(
        security_group_id=group["id"], direction="ingress", ethertype="IPv4", protocol="tcp",
        port_range_min=5432, port_range_max=5432, remote_ip_prefix="0.0.0.0/0")
    found = _drift(admin, iid)
    assert any("has a rule Hearth does not record" in d and "0.0.0.0/0" in d for d in found), found
    shown = demo.get(f"/instances/{iid}").json()["instance"]
    assert "0.0.0.0/0" in shown["drift"]
    assert admin.get("/mgmt/fleet").json()["fleet"]["drifted"] == 1
    assert [i["id"] for i in admin.get("/mgmt/instances", params={"drifted": "true"}).json()["instances"]] == [iid]
    os_conn.network.delete_security_group_rule(extra)
    assert _drift(admin, iid) == []
    assert "drift" not in demo.get(f"/instances/{iid}").json()["instance"]

    # a rule deleted in Neutron
    rule = next(r for r in os_conn.network.security_group_rules(security_group_id=group["id"])
                if r.remote_ip_prefix == "10.0.0.0/24")
    os_conn.network.delete_security_group_rule(rule)
    assert any("lacks the rule" in d and "10.0.0.0/24" in d for d in _drift(admin, iid))
    os_conn.network.create_security_group_rule(
        security_group_id=group["id"], direction="ingress", ethertype="IPv4", protocol="tcp",
        port_range_min=5432, port_range_max=5432, remote_ip_prefix="10.0.0.0/24")
    assert _drift(admin, iid) == []

    # a volume extended in Cinder
    volume = os_conn.block_storage.get_volume(hearth_api.cloud_resource("volumes", iid)["id"])
    os_conn.block_storage.extend_volume(volume, 2)
    os_conn.block_storage.wait_for_status(volume, "in-use", interval=0.05, wait=30)
    assert any("is 2 GB; Hearth records 1 GB" in d for d in _drift(admin, iid))

    # a server resized in Nova
    server = os_conn.compute.get_server(hearth_api.cloud_resource("servers", iid)["id"])
    os_conn.compute.resize_server(server, "2")
    os_conn.compute.wait_for_server(server, status="VERIFY_RESIZE", interval=0.05, wait=30)
    os_conn.compute.confirm_server_resize(server)
    os_conn.compute.wait_for_server(server, status="ACTIVE", interval=0.05, wait=30)
    found = _drift(admin, iid)
    assert any("has flavor m1.small" in d for d in found), found

    messages = [e["message"] for e in demo.get(f"/instances/{iid}/events").json()["events"]]
    assert any(m.startswith("drift: the cloud differs from the record") for m in messages)
    assert "drift cleared: the cloud holds what Hearth records" in messages
