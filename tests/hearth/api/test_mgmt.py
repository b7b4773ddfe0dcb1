"""The cloud administrator's management API: every project's instances in one view, filtered; any instance
shown and acted on; the fleet summary. Everyone else gets 403, and a project's own manager cannot reach
another project's instances. Real Keystone tokens from fakecloud, the real REST API."""

from __future__ import annotations

import uuid

import requests
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3


def _token(hearth_api, user: str, project: str, roles: list[str]) -> tuple[str, str]:
    """A user with `roles` on `project` (made now), and its token and project id."""
    password = uuid.uuid4().hex
    hearth_api.cloud.control.add_user(user, password, project, roles)
    sess = ks_session.Session(auth=v3.Password(
        auth_url=f"{hearth_api.cloud.url}/v3", username=user, password=password, project_name=project,
        user_domain_name="Default", project_domain_name="Default"))
    return sess.get_token(), sess.get_project_id()


def test_an_administrator_sees_and_acts_on_every_project(hearth_api, fault_of):
    demo, other, admin = hearth_api.client(), hearth_api.client("other"), hearth_api.client("admin")
    mine = hearth_api.create(demo, "demo-db")
    theirs = hearth_api.create(other, "other-db")
    demo_project, other_project = demo.project_id, other.project_id

    listed = admin.get("/mgmt/instances").json()["instances"]
    assert {(i["id"], i["tenant_id"]) for i in listed} == {(mine["id"], demo_project),
                                                           (theirs["id"], other_project)}
    only_other = admin.get("/mgmt/instances", params={"project": other_project}).json()["instances"]
    assert [i["id"] for i in only_other] == [theirs["id"]]
    assert admin.get("/mgmt/instances", params={"engine": "orchestrator"}).json()["instances"] == []
    assert len(admin.get("/mgmt/instances", params={"status": "ACTIVE", "drifted": "false"}).json()["instances"]) == 2
    fault_of(admin.get("/mgmt/instances", params={"engine": "heat"}), 400, "badRequest", "natives, orchestrator")
    page = admin.get("/mgmt/instances", params={"limit": 1}).json()
    assert len(page["instances"]) == 1 and "marker=" in page["links"][0]["href"]

    shown = admin.get(f"/mgmt/instances/{theirs['id']}").json()["instance"]
    assert (shown["name"], shown["tenant_id"]) == ("other-db", other_project)
    assert admin.post(f"/mgmt/instances/{theirs['id']}/action", json={"reset_status": {}}).status_code == 202
    fleet = admin.get("/mgmt/fleet").json()["fleet"]
    assert fleet == {"instances": 2, "projects": 2, "by_engine": {"natives": 2, "orchestrator": 0},
                     "by_status": {"ACTIVE": 2}, "drifted": 0, "on_heat": 0.0}

    # an administrator deletes another project's instance, which is gone for its owner too
    assert admin.delete(f"/instances/{theirs['id']}").status_code == 202
    hearth_api.settle()
    assert other.get(f"/instances/{theirs['id']}").status_code == 404
    assert [i["id"] for i in admin.get("/mgmt/instances").json()["instances"]] == [mine["id"]]


def test_everyone_else_is_refused(hearth_api, fault_of):
    demo, other = hearth_api.client(), hearth_api.client("other")
    theirs = hearth_api.create(other, "other-db", settle=False)
    for path in ("/mgmt/instances", f"/mgmt/instances/{theirs['id']}", "/mgmt/fleet"):
        fault_of(demo.get(path), 403, "forbidden", "admin role")
    fault_of(demo.post(f"/mgmt/instances/{theirs['id']}/action", json={"reset_status": {}}), 403, "forbidden")

    # the manager of project "team" (Keystone's project-admin role) is no cloud administrator
    token, project = _token(hearth_api, "team-boss", "team", ["manager", "member", "reader"])
    base = f"{hearth_api.url}/v1.0"
    assert requests.get(f"{base}/{project}/mgmt/instances", headers={"X-Auth-Token": token},
                        timeout=30).status_code == 403
    assert requests.get(f"{base}/{other.project_id}/instances/{theirs['id']}", headers={"X-Auth-Token": token},
                        timeout=30).status_code == 403
    assert requests.get(f"{base}/{project}/instances/{theirs['id']}", headers={"X-Auth-Token": token},
                        timeout=30).status_code == 404
    hearth_api.settle()


def test_orphans_are_listed_with_why_and_removed_on_request(hearth_api, os_conn, fault_of):
    from hearth.db.models import Instance, utcnow

    demo, admin = hearth_api.client(), hearth_api.client("admin")
    live = hearth_api.create(demo, "live-db")
    gone = hearth_api.create(demo, "gone-db")
    kept = {kind: hearth_api.cloud_resource(kind, live["id"])["id"] for kind in ("servers", "volumes",
                                                                                  "security_groups")}
    gone_ids = {kind: hearth_api.cloud_resource(kind, gone["id"])["id"] for kind in ("servers", "volumes",
                                                                                      "security_groups")}
    # an instance row marked deleted by hand: its resources stay in the cloud
    with hearth_api.runtime.sessions.begin() as session:
        session.get(Instance, gone["id"]).deleted_at = utcnow()
    # what a provision that crashed before recording anything leaves: named for an instance Hearth never had
    lost = str(uuid.uuid4())
    lost_volume = os_conn.block_storage.create_volume(name=f"hearth-{lost}-data", size=1)
    lost_group = os_conn.network.create_security_group(name=f"hearth-{lost}")
    # a second volume named for the live instance (an earlier attempt's), which it does not record
    extra = os_conn.block_storage.create_volume(name=f"hearth-{live['id']}-data", size=1)
    os_conn.block_storage.wait_for_status(extra, "available", interval=0.05, wait=30)
    os_conn.block_storage.wait_for_status(lost_volume, "available", interval=0.05, wait=30)

    fault_of(demo.get("/mgmt/orphans"), 403, "forbidden")
    found = admin.get("/mgmt/orphans").json()["orphans"]
    by_id = {o["id"]: o for o in found}
    assert set(by_id) == {*gone_ids.values(), lost_volume.id, lost_group.id, extra.id}, found
    assert "does not exist" in by_id[lost_volume.id]["why"] and by_id[lost_volume.id]["instance_id"] == lost
    assert f"records {kept['volumes']} as its volume" in by_id[extra.id]["why"]
    assert all(o["age_seconds"] is not None and o["age_seconds"] >= 0 for o in found)
    assert hearth_api.cloud_ids()["volumes"] >= {lost_volume.id, extra.id}  # listing deleted nothing

    removed = admin.delete("/mgmt/orphans").json()
    assert (removed["deleted"], removed["failed"]) == (len(by_id), [])
    ids = hearth_api.cloud_ids()
    assert not set(by_id) & set().union(*ids.values())
    assert {kind: hearth_api.cloud_resource(kind, live["id"])["id"] for kind in kept} == kept  # untouched
    assert admin.get("/mgmt/orphans").json()["orphans"] == []
    assert demo.get(f"/instances/{live['id']}").json()["instance"]["status"] == "ACTIVE"
