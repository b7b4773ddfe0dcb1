"""Trove 2014's security-group extension: groups per instance, rule add (one per datastore port),
Hearth's CIDR update of one rule, and delete, each checked on the cloud's real group."""

from __future__ import annotations


def test_rules_add_update_delete(hearth_api, fault_of):
    api = hearth_api.client()
    inst = hearth_api.create(api, access={"allowed_cidrs": ["10.0.0.0/8"]})
    iid = inst["id"]

    groups = api.get("/security-groups").json()["security_groups"]
    assert [g["instance_id"] for g in groups] == [iid]
    group = groups[0]
    assert group["name"] == f"SecGroup_{iid}"
    assert [(r["protocol"], r["from_port"], r["to_port"], r["cidr"]) for r in group["rules"]] == [
        ("tcp", 5432, 5432, "10.0.0.0/8")]
    # the same group by its id and by the instance id
    assert api.get(f"/security-groups/{group['id']}").json()["security_group"] == group
    assert api.get(f"/security-groups/{iid}").json()["security_group"]["id"] == group["id"]

    # add: 201 with a list, one rule per datastore port; normalised CIDR
    response = api.post("/security-group-rules", json={"security_group_rule": {
        "group_id": group["id"], "cidr": "172.16.5.4/12"}})
    assert response.status_code == 201, response.text
    rules = response.json()["security_group_rule"]
    assert [(r["protocol"], r["from_port"], r["to_port"], r["cidr"], r["security_group_id"]) for r in rules] == [
        ("tcp", 5432, 5432, "172.16.0.0/12", group["id"])]
    hearth_api.settle()
    assert hearth_api.cloud_rules(iid) == {("tcp", 5432, 5432, "10.0.0.0/8"), ("tcp", 5432, 5432, "172.16.0.0/12")}

    # a duplicate CIDR is refused, the cloud unchanged
    before = hearth_api.cloud_ids()
    fault_of(api.post("/security-group-rules", json={"security_group_rule": {"group_id": iid,
                                                                              "cidr": "172.16.0.0/12"}}),
             400, "badRequest", "already exists")
    fault_of(api.post("/security-group-rules", json={"security_group_rule": {"group_id": iid, "cidr": "nope"}}),
             400, "badRequest", "nope")
    fault_of(api.post("/security-group-rules", json={"security_group_rule": {"group_id": iid}}),
             400, "badRequest", "security_group_rule.cidr")
    assert hearth_api.cloud_ids() == before

    # update one rule's CIDR: 202 with the rule as it will be; the cloud holds the new CIDR, not the old
    rule_id = rules[0]["id"]
    response = api.put(f"/security-group-rules/{rule_id}", json={"security_group_rule": {"cidr": "192.168.0.0/16"}})
    assert response.status_code == 202, response.text
    assert response.json()["security_group_rule"]["cidr"] == "192.168.0.0/16"
    hearth_api.settle()
    assert hearth_api.cloud_rules(iid) == {("tcp", 5432, 5432, "10.0.0.0/8"), ("tcp", 5432, 5432, "192.168.0.0/16")}
    group = api.get(f"/security-groups/{iid}").json()["security_group"]
    assert {r["id"]: r["cidr"] for r in group["rules"]}[rule_id] == "192.168.0.0/16"
    assert api.get(f"/instances/{iid}").json()["instance"]["access"]["allowed_cidrs"] == [
        "10.0.0.0/8", "192.168.0.0/16"]

    # delete: 204, the cloud rule is gone
    assert api.delete(f"/security-group-rules/{rule_id}").status_code == 204
    hearth_api.settle()
    assert hearth_api.cloud_rules(iid) == {("tcp", 5432, 5432, "10.0.0.0/8")}
    fault_of(api.delete(f"/security-group-rules/{rule_id}"), 404, "itemNotFound")
    ops = api.get(f"/instances/{iid}/operations").json()["operations"]
    assert [o["state"] for o in ops] == ["succeeded"] * 4


def test_other_projects_cannot_see_or_touch_the_group(hearth_api, fault_of):
    api = hearth_api.client()
    inst = hearth_api.create(api)
    rule_id = api.get(f"/security-groups/{inst['id']}").json()["security_group"]["rules"][0]["id"]
    other = hearth_api.client(f"other-{inst['id'][:8]}")
    assert other.get("/security-groups").json()["security_groups"] == []
    fault_of(other.get(f"/security-groups/{inst['id']}"), 404, "itemNotFound")
    fault_of(other.delete(f"/security-group-rules/{rule_id}"), 404, "itemNotFound")
    fault_of(other.post("/security-group-rules", json={"security_group_rule": {"group_id": inst["id"],
                                                                                "cidr": "10.0.0.0/8"}}),
             404, "itemNotFound")
    assert hearth_api.cloud_rules(inst["id"]) == {("tcp", 5432, 5432, "0.0.0.0/0")}
