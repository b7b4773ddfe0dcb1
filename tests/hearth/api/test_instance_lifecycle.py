"""The whole life of an instance through the REST API, checked against the cloud after every step."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse


def test_create_resize_access_rename_delete(hearth_api):
    api = hearth_api.client()
    response = api.post("/instances", json={"instance": {
        "name": "orders", "flavorRef": "1", "volume": {"size": 1},
        "datastore": {"type": "postgresql", "version": "16"},
    }})
    assert response.status_code == 200, response.text
    created = response.json()["instance"]
    assert created["status"] == "BUILD"
    assert created["name"] == "orders"
    assert created["flavor"]["id"] == "1"
    assert created["volume"] == {"size": 1}
    assert created["datastore"]["type"] == "postgresql"
    assert created["access"]["allowed_cidrs"] == ["0.0.0.0/0"]  # Trove's default: the port open to all
    assert created["engine"] == "natives"
    assert {link["rel"] for link in created["links"]} == {"self", "bookmark"}
    iid = created["id"]

    hearth_api.settle()
    shown = api.get(f"/instances/{iid}").json()["instance"]
    assert shown["status"] == "ACTIVE"
    assert "fault" not in shown
    server = hearth_api.cloud_resource("servers", iid)
    volume = hearth_api.cloud_resource("volumes", iid)
    assert server["status"] == "ACTIVE"
    assert server["flavor"]["original_name"] == "m1.tiny"
    assert volume["status"] == "in-use" and volume["size"] == 1
    assert volume["attachments"][0]["server_id"] == server["id"]
    assert hearth_api.cloud_rules(iid) == {("tcp", 5432, 5432, "0.0.0.0/0")}

    # resize flavor: 202, RESIZE while it runs, the server keeps its id and really has the new flavor
    response = api.post(f"/instances/{iid}/action", json={"resize": {"flavorRef": "2"}})
    assert response.status_code == 202 and response.content == b""
    assert api.get(f"/instances/{iid}").json()["instance"]["status"] in ("RESIZE", "ACTIVE")
    hearth_api.settle()
    shown = api.get(f"/instances/{iid}").json()["instance"]
    assert (shown["status"], shown["flavor"]["id"]) == ("ACTIVE", "2")
    resized = hearth_api.cloud_resource("servers", iid)
    assert resized["id"] == server["id"]
    assert resized["flavor"]["original_name"] == "m1.small"

    # resize volume: the volume grows and stays attached
    response = api.post(f"/instances/{iid}/action", json={"resize": {"volume": {"size": 3}}})
    assert response.status_code == 202
    hearth_api.settle()
    shown = api.get(f"/instances/{iid}").json()["instance"]
    assert (shown["status"], shown["volume"]["size"]) == ("ACTIVE", 3)
    volume = hearth_api.cloud_resource("volumes", iid)
    assert volume["size"] == 3 and volume["status"] == "in-use"
    assert volume["attachments"][0]["server_id"] == server["id"]

    # PUT access.allowed_cidrs (what `openstack database instance update --allowed-cidr` sends)
    response = api.put(f"/instances/{iid}", json={"instance": {"access": {
        "allowed_cidrs": ["10.1.0.0/16", "192.168.7.9/24"]}}})
    assert response.status_code == 202, response.text
    hearth_api.settle()
    assert hearth_api.cloud_rules(iid) == {("tcp", 5432, 5432, "10.1.0.0/16"), ("tcp", 5432, 5432, "192.168.7.0/24")}
    shown = api.get(f"/instances/{iid}").json()["instance"]
    assert sorted(shown["access"]["allowed_cidrs"]) == ["10.1.0.0/16", "192.168.7.0/24"]

    # converge again to a set sharing one CIDR: exactly those remain
    api.put(f"/instances/{iid}", json={"instance": {"access": {"allowed_cidrs": ["10.1.0.0/16", "10.9.9.9/32"]}}})
    hearth_api.settle()
    assert hearth_api.cloud_rules(iid) == {("tcp", 5432, 5432, "10.1.0.0/16"), ("tcp", 5432, 5432, "10.9.9.9/32")}

    # rename: immediate, no cloud change
    before = hearth_api.cloud_ids()
    assert api.put(f"/instances/{iid}", json={"instance": {"name": "orders-main"}}).status_code == 202
    assert api.get(f"/instances/{iid}").json()["instance"]["name"] == "orders-main"
    assert hearth_api.cloud_ids() == before

    # events and operations (Hearth extras)
    ops = api.get(f"/instances/{iid}/operations").json()["operations"]
    assert [(o["kind"], o["state"]) for o in ops] == [
        ("provision", "succeeded"), ("resize_flavor", "succeeded"), ("resize_volume", "succeeded"),
        ("apply_rules", "succeeded"), ("apply_rules", "succeeded")]
    events = api.get(f"/instances/{iid}/events").json()["events"]
    assert any(e["message"] == "create succeeded" for e in events)
    assert any("renamed" in e["message"] for e in events)

    # delete: 202, SHUTDOWN or gone, then 404 and nothing left in the cloud
    response = api.delete(f"/instances/{iid}")
    assert response.status_code == 202
    hearth_api.settle()
    missing = api.get(f"/instances/{iid}")
    assert missing.status_code == 404 and "itemNotFound" in missing.json()
    assert iid not in [i["id"] for i in api.get("/instances").json()["instances"]]
    assert hearth_api.leftovers() == {}
    assert api.delete(f"/instances/{iid}").status_code == 404


def test_list_paginates_in_creation_order(hearth_api):
    api = hearth_api.client()
    ids = [hearth_api.create(api, name=f"db{i}", settle=False)["id"] for i in range(5)]
    hearth_api.settle()

    first = api.get("/instances", params={"limit": 2}).json()
    assert [i["id"] for i in first["instances"]] == ids[:2]
    next_link = next(link["href"] for link in first["links"] if link["rel"] == "next")
    marker = parse_qs(urlparse(next_link).query)["marker"][0]
    assert marker == ids[1]
    second = api.get("/instances", params={"limit": 2, "marker": marker}).json()
    assert [i["id"] for i in second["instances"]] == ids[2:4]
    last = api.get("/instances", params={"limit": 2, "marker": ids[3]}).json()
    assert [i["id"] for i in last["instances"]] == ids[4:]
    assert "links" not in last
    everything = api.get("/instances").json()["instances"]
    assert [i["id"] for i in everything] == ids
    assert all(i["status"] == "ACTIVE" for i in everything)


def test_create_with_allowed_cidrs_and_mysql(hearth_api):
    api = hearth_api.client()
    inst = hearth_api.create(api, datastore={"type": "mysql"},
                             access={"allowed_cidrs": ["10.0.0.0/8", "2001:db8::/32"]})
    assert inst["status"] == "ACTIVE"
    assert inst["datastore"] == {"type": "mysql", "version": "8.0", "version_number": "8.0"}
    assert hearth_api.cloud_rules(inst["id"]) == {("tcp", 3306, 3306, "10.0.0.0/8"),
                                                  ("tcp", 3306, 3306, "2001:db8::/32")}
