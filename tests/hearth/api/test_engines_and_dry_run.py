"""Engine selection, the mixed fleet, adopt/release and dry runs, through the real API on both databases.

Switching the `engine` setting is what an operator does: the API and task manager restart with the new
setting on the same database (here: a second Runtime, task manager and API server; the first task
manager is stopped so only the new setting acts). Every engine claim is checked in fakecloud's request
accounting (which services received writes) and in the cloud's inventory.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from hearth import service
from hearth.config import Settings
from hearth.db.models import Event, Instance, Operation, SecurityGroupRule
from hearth.engines.heat import read_stack
from hearth.runtime import build_runtime
from hearth.taskmanager import TaskManager
from openstack_fakecloud.config import CloudConfig
from openstack_fakecloud.testing import running_cloud

READ_ONLY_HEAT = ("/preview", "/validate")  # Heat's preview and validate are POST/PUT but change nothing


def _writes(cloud: Any, seq: int) -> dict[str, list[str]]:
    """Write requests by service since `seq` (Keystone logins and Heat previews aside)."""
    found: dict[str, list[str]] = {}
    for r in cloud.control.requests(since=seq)["requests"]:
        if r["method"] not in ("POST", "PUT", "PATCH", "DELETE") or r["service"] == "identity":
            continue
        if r["service"] == "orchestration" and r["path"].rstrip("/").endswith(READ_ONLY_HEAT):
            continue
        found.setdefault(r["service"], []).append(f"{r['method']} {r['path']}")
    return found


def _seq(cloud: Any) -> int:
    return cloud.control.requests(log=False)["seq"]


def _row_counts(runtime: Any) -> dict[str, int]:
    with runtime.sessions() as session:
        return {model.__name__: session.scalar(select(func.count()).select_from(model))
                for model in (Instance, Operation, Event, SecurityGroupRule)}


def _show(api: Any, iid: str) -> dict[str, Any]:
    response = api.get(f"/instances/{iid}")
    assert response.status_code == 200, response.text
    return response.json()["instance"]


def _act(hearth: Any, api: Any, iid: str, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post(f"/instances/{iid}/action", json=body)
    assert response.status_code == 202, response.text
    hearth.settle()
    return _show(api, iid)


def _ids(hearth: Any, iid: str) -> tuple[str, str, str]:
    return (hearth.cloud_resource("servers", iid)["id"], hearth.cloud_resource("volumes", iid)["id"],
            hearth.cloud_resource("security_groups", iid)["id"])


# --------------------------------------------------------------------------------------------------


def test_auto_picks_natives_without_heat_and_migration_with_it(hearth_settings, db_url, tmp_path):
    with_heat = build_runtime(hearth_settings.model_copy(update={"engine": "auto"}))
    try:
        assert with_heat.engine_mode() == "migration"
        assert with_heat.engine_for_new_instance() == "orchestrator"
        assert with_heat.allowed_engines() == {"natives", "orchestrator"}
    finally:
        with_heat.close()

    with running_cloud(CloudConfig(disabled_services=["orchestration"])) as no_heat:
        clouds_yaml = no_heat.write_clouds_yaml(tmp_path / "no-heat-clouds.yaml")
        settings = Settings(home=tmp_path, db_url=db_url, cloud="fakecloud", clouds_yaml=clouds_yaml, workers=2,
                            engine="auto")
        runtime = build_runtime(settings)
        try:
            assert runtime.engine_mode() == "natives"
            assert runtime.allowed_engines() == {"natives"}
            conn = no_heat.connect()
            inst = service.create_instance(runtime, conn.current_project_id, name="plain", flavor_ref="1",
                                           volume_size=1).record(runtime)
            assert isinstance(inst, Instance) and inst.engine == "natives"
            assert TaskManager(runtime).run_until_idle(60)
            built = service.get_instance(runtime, conn.current_project_id, inst.id)
            assert built.server_id and built.stack_id is None
            assert conn.compute.get_server(built.server_id).status == "ACTIVE"
            with pytest.raises(service.Conflict, match="engine = migration"):
                service.adopt_instance(runtime, conn.current_project_id, inst.id)
            service.delete_instance(runtime, conn.current_project_id, inst.id).record(runtime)
            assert TaskManager(runtime).run_until_idle(60)
            assert not [s for s in no_heat.control.inventory("demo")["servers"] if s["name"].startswith("hearth-")]
            conn.close()
        finally:
            runtime.close()


def test_mixed_fleet_then_adopt_and_release(hearth_api, restart):
    cloud = hearth_api.cloud
    old = hearth_api.create(hearth_api.client(), "old-db")
    assert old["engine"] == "natives" and old["stack_id"] is None
    old_ids = _ids(hearth_api, old["id"])

    hearth = restart("migration")
    api, admin = hearth.client(), hearth.client(as_project="admin")
    new = hearth.create(api, "new-db")
    assert new["engine"] == "orchestrator" and new["stack_id"]
    assert new["stack_status"] == "CREATE_COMPLETE"
    assert read_stack(cloud.connect(), new["stack_id"]).name == f"hearth-{new['id']}"

    # the old instance is still served by natives: direct Nova / Neutron writes, none to Heat
    seq = _seq(cloud)
    shown = _act(hearth, api, old["id"], {"resize": {"flavorRef": "2"}})
    assert (shown["status"], shown["flavor"]["id"], shown["engine"]) == ("ACTIVE", "2", "natives")
    writes = _writes(cloud, seq)
    assert "compute" in writes and "orchestration" not in writes, writes
    seq = _seq(cloud)
    assert api.put(f"/instances/{old['id']}", json={"instance": {"access": {"allowed_cidrs": ["10.1.0.0/16"]}}}
                   ).status_code == 202
    hearth.settle()
    writes = _writes(cloud, seq)
    assert set(writes) == {"network"}, writes
    assert hearth.cloud_rules(old["id"]) == {("tcp", 5432, 5432, "10.1.0.0/16")}

    # adopt: admin only; the same server, volume and group now belong to an ADOPT_COMPLETE stack
    response = api.post(f"/instances/{old['id']}/action", json={"adopt": {}})
    assert response.status_code == 403 and "admin" in response.json()["forbidden"]["message"]
    seq = _seq(cloud)
    adopted = _act(hearth, admin, old["id"], {"adopt": {}})
    assert (adopted["status"], adopted["engine"]) == ("ACTIVE", "orchestrator"), adopted
    assert adopted["stack_status"] == "ADOPT_COMPLETE"
    assert set(_writes(cloud, seq)) == {"orchestration"}  # nothing recreated
    assert _ids(hearth, old["id"]) == old_ids
    stack = read_stack(cloud.connect(), adopted["stack_id"])
    assert stack.status == "ADOPT_COMPLETE"

    # its next resize goes through Heat only
    seq = _seq(cloud)
    resized = _act(hearth, api, old["id"], {"resize": {"flavorRef": "3"}})
    assert (resized["status"], resized["flavor"]["id"]) == ("ACTIVE", "3"), resized
    assert set(_writes(cloud, seq)) == {"orchestration"}
    assert hearth.cloud_resource("servers", old["id"])["flavor"]["original_name"] == "m1.medium"
    assert _ids(hearth, old["id"]) == old_ids

    # release: non-admin refused; then the stack is abandoned and natives owns the same resources
    response = api.post(f"/instances/{old['id']}/action", json={"release": {}})
    assert response.status_code == 403
    released = _act(hearth, admin, old["id"], {"release": {}})
    assert (released["status"], released["engine"], released["stack_id"]) == ("ACTIVE", "natives", None), released
    assert read_stack(cloud.connect(), adopted["stack_id"]) is None
    assert _ids(hearth, old["id"]) == old_ids
    seq = _seq(cloud)
    grown = _act(hearth, api, old["id"], {"resize": {"volume": {"size": 2}}})
    assert grown["volume"]["size"] == 2 and "orchestration" not in _writes(cloud, seq)

    # both delete cleanly, each through its own engine
    seq = _seq(cloud)
    assert api.delete(f"/instances/{old['id']}").status_code == 202
    assert api.delete(f"/instances/{new['id']}").status_code == 202
    hearth.settle()
    assert {"compute", "orchestration"} <= set(_writes(cloud, seq))
    assert hearth.leftovers() == {}


def test_adopt_of_a_drifted_instance_is_refused_with_the_differences(hearth_api, restart, fault_of):
    inst = hearth_api.create(hearth_api.client(), "drifted")
    hearth = restart("migration")
    admin = hearth.client(as_project="admin")
    conn = hearth.cloud.connect()
    server = conn.compute.get_server(_ids(hearth, inst["id"])[0])
    conn.compute.resize_server(server, "3")  # someone resized it behind Hearth's back
    conn.compute.wait_for_server(server, status="VERIFY_RESIZE", interval=0.02, wait=30)
    conn.compute.confirm_server_resize(server)
    conn.compute.wait_for_server(server, status="ACTIVE", interval=0.02, wait=30)

    plan = admin.post(f"/instances/{inst['id']}/action?dry_run=true", json={"adopt": {}})
    assert plan.status_code == 200, plan.text
    assert [s["action"] for s in plan.json()["plan"]["steps"]] == ["refuse"]

    seq = _seq(hearth.cloud)
    shown = _act(hearth, admin, inst["id"], {"adopt": {}})
    assert (shown["status"], shown["engine"], shown["stack_id"]) == ("ACTIVE", "natives", None), shown
    message = shown["fault"]["message"]
    assert f"server {server.id} has flavor m1.medium (3); Hearth records flavor m1.tiny (1)" in message
    assert _writes(hearth.cloud, seq) == {}
    assert read_stack(conn, f"hearth-{inst['id']}") is None
    conn.close()


def test_an_instance_of_an_engine_the_setting_no_longer_allows_gets_the_way_out(hearth_api, restart, fault_of):
    hearth = restart("migration")
    stacked = hearth.create(hearth.client(), "stacked")
    assert stacked["engine"] == "orchestrator"

    natives_only = restart("natives")
    api = natives_only.client()
    shown = _show(api, stacked["id"])  # reads still work and say who owns it
    assert shown["engine"] == "orchestrator" and shown["stack_id"] == stacked["stack_id"]
    seq = _seq(hearth.cloud)
    for response in (api.post(f"/instances/{stacked['id']}/action", json={"resize": {"flavorRef": "2"}}),
                     api.delete(f"/instances/{stacked['id']}"),
                     api.post(f"/instances/{stacked['id']}/action?dry_run=true", json={"resize": {"flavorRef": "2"}})):
        fault_of(response, 409, "conflictingRequest", "owned by the orchestrator engine", "engine = migration",
                 f"hearth instance release {stacked['id']}")
    assert _writes(hearth.cloud, seq) == {}

    # the way out: migration serves it again
    again = restart("migration")
    assert again.client().delete(f"/instances/{stacked['id']}").status_code == 202
    again.settle()
    assert again.leftovers() == {}


@pytest.mark.parametrize("engine", ["natives", "migration"])
def test_dry_runs_plan_every_operation_and_change_nothing(hearth_api, restart, engine):
    hearth = restart(engine)
    api = hearth.client()
    inst = hearth.create(api, "planned")
    expected_engine = "natives" if engine == "natives" else "orchestrator"
    assert inst["engine"] == expected_engine
    rule_id = api.get(f"/security-groups/{inst['id']}").json()["security_group"]["rules"][0]["id"]
    group_id = api.get(f"/security-groups/{inst['id']}").json()["security_group"]["id"]

    before, seq = _row_counts(hearth.runtime), _seq(hearth.cloud)
    calls = {
        "provision": api.post("/instances?dry_run=true", json={"instance": {
            "name": "never", "flavorRef": "1", "volume": {"size": 1}}}),
        "resize_flavor": api.post(f"/instances/{inst['id']}/action?dry_run=true",
                                  json={"resize": {"flavorRef": "2"}}),
        "resize_volume": api.post(f"/instances/{inst['id']}/action?dry_run=true",
                                  json={"resize": {"volume": {"size": 3}}}),
        "apply_rules": api.put(f"/instances/{inst['id']}?dry_run=true",
                               json={"instance": {"access": {"allowed_cidrs": ["10.2.0.0/16"]}}}),
        "delete": api.delete(f"/instances/{inst['id']}?dry_run=true"),
    }
    rule_calls = [
        api.post("/security-group-rules?dry_run=true",
                 json={"security_group_rule": {"group_id": group_id, "cidr": "10.3.0.0/16"}}),
        api.put(f"/security-group-rules/{rule_id}?dry_run=true", json={"security_group_rule": {"cidr": "10.4.0.0/16"}}),
        api.delete(f"/security-group-rules/{rule_id}?dry_run=true"),
    ]
    for kind, response in [*calls.items(), *(("apply_rules", r) for r in rule_calls)]:
        assert response.status_code == 200, (kind, response.text)
        plan = response.json()["plan"]
        assert (plan["engine"], plan["operation"]) == (expected_engine, kind), plan
        assert plan["steps"] and all(set(s) == {"action", "target", "detail"} for s in plan["steps"]), plan

    steps = {k: [s["action"] for s in r.json()["plan"]["steps"]] for k, r in calls.items()}
    if engine == "natives":
        assert "POST /servers" in steps["provision"]
        assert steps["resize_flavor"][0] == "POST /servers/{id}/action resize"
        assert steps["delete"][0] == "DELETE /servers/{id}"
    else:
        assert steps["provision"][0] == "stack create"
        assert steps["resize_flavor"][0] == "stack update"
        assert steps["delete"][0] == "stack delete"

    assert _writes(hearth.cloud, seq) == {}
    assert _row_counts(hearth.runtime) == before
    shown = _show(api, inst["id"])
    assert (shown["status"], shown["flavor"]["id"], shown["volume"]["size"]) == ("ACTIVE", "1", 1)
    assert shown["access"]["allowed_cidrs"] == ["0.0.0.0/0"]

    # a dry run validates like the real request
    bad = api.post(f"/instances/{inst['id']}/action?dry_run=true", json={"resize": {"volume": {"size": 1}}})
    assert bad.status_code == 400
    assert _row_counts(hearth.runtime) == before


def test_adopt_and_release_carry_a_public_instances_port_and_floating_ip(hearth_api, restart):
    """A natives instance with a nic and a public address: adopt hands its own port and floating IP to the
    stack untouched, a private/public change then goes through Heat, release hands them back."""
    cloud = hearth_api.cloud
    conn = cloud.connect()
    network = next(n.id for n in conn.network.networks(name="private") if n.project_id == conn.current_project_id)
    hearth = restart("natives")
    api, admin = hearth.client(), hearth.client(as_project="admin")
    inst = hearth.create(api, "public-db", nics=[{"net-id": network}], access={"is_public": True})
    assert inst["status"] == "ACTIVE", inst.get("fault")
    public = next(a["address"] for a in inst["addresses"] if a["type"] == "public")
    port = next(conn.network.ports(name=f"hearth-{inst['id']}-port"))
    ip = next(conn.network.ips(floating_ip_address=public))
    assert ip.port_id == port.id

    hearth = restart("migration")
    api, admin = hearth.client(), hearth.client(as_project="admin")
    seq = _seq(cloud)
    adopted = _act(hearth, admin, inst["id"], {"adopt": {}})
    assert (adopted["status"], adopted["engine"]) == ("ACTIVE", "orchestrator"), adopted.get("fault")
    assert set(_writes(cloud, seq)) == {"orchestration"}  # nothing made or replaced
    stack = read_stack(conn, adopted["stack_id"])
    physical = {r.name: r.physical_resource_id for r in conn.orchestration.resources(stack)}
    assert physical["port"] == port.id and physical["floating_ip"] == ip.id

    # private through Heat: the floating IP goes, the port stays
    assert api.put(f"/instances/{inst['id']}", json={"instance": {"access": {"is_public": False}}}
                   ).status_code == 202
    hearth.settle()
    shown = _show(api, inst["id"])
    assert shown["access"]["is_public"] is False and [a["type"] for a in shown["addresses"]] == ["private"]
    assert list(conn.network.ips(floating_ip_address=public)) == []
    assert conn.network.get_port(port.id).id == port.id

    released = _act(hearth, admin, inst["id"], {"release": {}})
    assert (released["status"], released["engine"]) == ("ACTIVE", "natives"), released.get("fault")
    assert api.delete(f"/instances/{inst['id']}").status_code == 202
    hearth.settle()
    assert hearth.leftovers() == {}
    assert list(conn.network.ports(name=f"hearth-{inst['id']}-port")) == []
