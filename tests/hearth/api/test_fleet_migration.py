"""Fleet migration as the cloud administrator: a mixed fleet across two projects moves onto Heat stacks a few at
a time; the dry-run plan is what then happens, a drifted instance is refused with its differences, the moved
ones keep their ids (the stack adopted them), pause holds the queue, a restarted task manager carries on, and a
migration back to natives releases them. Real Keystone tokens, the REST API, fakecloud's Heat."""

from __future__ import annotations

import time
from typing import Any

import pytest

FLEET_PER_PROJECT = 11  # 22 instances across two projects


def _wait(admin: Any, job_id: str, done: Any, timeout: float = 180.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = admin.get(f"/mgmt/migrations/{job_id}").json()["migration"]
        if done(job):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.1)


@pytest.mark.parametrize("db_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_a_mixed_fleet_moves_onto_heat_and_back(hearth_api, restart, os_conn):
    natives = restart("natives")
    demo, other = natives.client(), natives.client("other")
    instances = [natives.create(demo, f"demo-{i}", settle=False) for i in range(FLEET_PER_PROJECT)]
    instances += [natives.create(other, f"other-{i}", settle=False) for i in range(FLEET_PER_PROJECT)]
    natives.settle(300)
    ids = {i["id"] for i in instances}
    before = {iid: natives.cloud_resource("servers", iid)["id"] for iid in ids}

    # one instance drifted behind Hearth's back: a rule added in Neutron
    drifted = instances[0]["id"]
    group = natives.cloud_resource("security_groups", drifted)
    os_conn.network.create_security_group_rule(
        security_group_id=group["id"], direction="ingress", ethertype="IPv4", protocol="tcp",
        port_range_min=5432, port_range_max=5432, remote_ip_prefix="192.0.2.0/24")

    hearth = restart("migration")
    admin, demo = hearth.client("admin"), hearth.client()
    assert demo.post("/mgmt/migrations", json={"migration": {"to": "orchestrator"}}).status_code == 403
    planned = admin.post("/mgmt/migrations", json={"migration": {"to": "orchestrator", "dry_run": True}})
    assert planned.status_code == 200, planned.text
    plan = planned.json()["plan"]
    assert set(plan["move"]) == ids - {drifted}
    assert [r["id"] for r in plan["refused"]] == [drifted]
    assert any("192.0.2.0/24" in reason for reason in plan["refused"][0]["reasons"])

    started = admin.post("/mgmt/migrations", json={"migration": {"to": "orchestrator", "max_in_flight": 4}})
    assert started.status_code == 202, started.text
    job_id = started.json()["migration"]["id"]
    assert admin.post(f"/mgmt/migrations/{job_id}/action", json={"pause": {}}).json()["migration"]["state"] \
        == "paused"
    held = _wait(admin, job_id, lambda j: j["counts"]["moving"] == 0)
    assert held["state"] == "paused" and held["counts"]["moving"] == 0
    waiting = held["counts"]["waiting"]
    time.sleep(1.5)  # two driver steps: nothing more is queued while paused
    assert admin.get(f"/mgmt/migrations/{job_id}").json()["migration"]["counts"]["waiting"] == waiting

    # the task manager restarts mid-migration: the rows carry on
    hearth = restart("migration")
    admin = hearth.client("admin")
    admin.post(f"/mgmt/migrations/{job_id}/action", json={"resume": {}})
    finished = _wait(admin, job_id, lambda j: j["state"] == "finished")
    assert finished["counts"] == {"waiting": 0, "moving": 0, "moved": len(ids) - 1, "failed": 0, "refused": 0}
    assert set(i["id"] for i in finished["instances"]) == set(plan["move"])  # the plan is what happened
    assert all(i["note"].startswith("verified") for i in finished["instances"])
    listed = {i["id"]: i for i in admin.get("/mgmt/instances").json()["instances"]}
    assert {iid for iid, i in listed.items() if i["engine"] == "orchestrator"} == ids - {drifted}
    assert listed[drifted]["engine"] == "natives"
    assert {iid: hearth.cloud_resource("servers", iid)["id"] for iid in ids} == before  # same servers
    assert admin.get("/mgmt/fleet").json()["fleet"]["by_engine"] == {"natives": 1, "orchestrator": len(ids) - 1}

    # and back: release every stack-owned instance of one project
    back = admin.post("/mgmt/migrations", json={"migration": {"to": "natives", "project": demo.project_id,
                                                               "max_in_flight": 10}})
    assert back.status_code == 202, back.text
    released = _wait(admin, back.json()["migration"]["id"], lambda j: j["state"] == "finished")
    assert released["counts"]["moved"] == FLEET_PER_PROJECT - 1
    assert {i["engine"] for i in admin.get("/mgmt/instances", params={"project": demo.project_id}).json()[
        "instances"]} == {"natives"}
