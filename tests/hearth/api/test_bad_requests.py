"""Bad input gets Trove's error shape, the right status and a message that says what to fix, and
changes nothing: not in the cloud (fakecloud inventory), not in Hearth (no new operation)."""

from __future__ import annotations

import threading
import uuid

import pytest


@pytest.fixture
def ready(hearth_api):
    """An ACTIVE instance (flavor 1, 2 GB) and a snapshot of the cloud to compare against."""
    api = hearth_api.client()
    inst = hearth_api.create(api, volume={"size": 2})
    assert inst["status"] == "ACTIVE"
    return api, inst


def _unchanged(hearth_api, api, before_cloud, iid=None, ops=None):
    assert hearth_api.cloud_ids() == before_cloud
    if iid is not None:
        assert len(api.get(f"/instances/{iid}/operations").json()["operations"]) == ops


CREATE_CASES = [
    ({"flavorRef": "99"}, 404, "itemNotFound", "Flavor 99"),
    ({"volume": {"size": 0}}, 400, "badRequest", "instance.volume.size"),
    ({"volume": {"size": "big"}}, 400, "badRequest", "instance.volume.size"),
    ({"volume": None}, 400, "badRequest", "instance.volume"),
    ({"name": ""}, 400, "badRequest", "instance.name"),
    ({"datastore": {"type": "oracle"}}, 404, "itemNotFound", "Datastore 'oracle'"),
    ({"datastore": {"type": "mysql", "version": "5.1"}}, 404, "itemNotFound", "version '5.1'"),
    ({"access": {"allowed_cidrs": ["10.0.0.0/33"]}}, 400, "badRequest", "allowed_cidrs", "10.0.0.0/33"),
    ({"access": {"allowed_cidrs": ["not-a-cidr"]}}, 400, "badRequest", "not-a-cidr"),
    # the datastore version here is one Hearth does not manage (see conftest): no databases or users on it
    ({"users": [{"name": "u", "password": "PassW0rd"}]}, 400, "badRequest", "databases and users",
     "does not manage"),
    ({"users": [{"name": "u"}]}, 400, "badRequest", "instance.users.0.password"),
    ({"nics": [{"net-id": "a"}, {"net-id": "b"}]}, 400, "badRequest", "instance.nics"),
    ({"nics": [{"port-id": "p"}]}, 400, "badRequest", "port-id"),
    ({"replica_of": "abc"}, 400, "badRequest", "replica_of", "not supported"),
    ({"restorePoint": {"backupRef": "b"}}, 400, "badRequest", "restorePoint", "not supported"),
    ({"volume": {"size": 6000}}, 413, "overLimit", "Quota exceeded", "gigabytes"),
]


@pytest.mark.parametrize("fields,status,key,fragments", [(c[0], c[1], c[2], c[3:]) for c in CREATE_CASES],
                         ids=[str(c[0]) for c in CREATE_CASES])
def test_create_rejects_bad_input(hearth_api, fault_of, fields, status, key, fragments):
    api = hearth_api.client()
    before = hearth_api.cloud_ids()
    body = {"name": "db1", "flavorRef": "1", "volume": {"size": 1}, **fields}
    body = {k: v for k, v in body.items() if v is not None}
    fault_of(api.post("/instances", json={"instance": body}), status, key, *fragments)
    assert api.get("/instances").json()["instances"] == []
    _unchanged(hearth_api, api, before)


def test_malformed_bodies_are_400(hearth_api, fault_of):
    api = hearth_api.client()
    fault_of(api.post("/instances", data="{not json", headers={"Content-Type": "application/json"}),
             400, "badRequest", "not valid JSON")
    fault_of(api.post("/instances", json={"name": "x"}), 400, "badRequest", "instance")
    fault_of(api.get("/instances", params={"limit": 0}), 400, "badRequest", "limit")
    fault_of(api.get("/instances", params={"marker": str(uuid.uuid4())}), 400, "badRequest", "marker")
    fault_of(api.get("/no-such-thing"), 404, "itemNotFound")


def test_volume_shrink_and_same_size_are_refused_in_troves_words(hearth_api, ready, fault_of):
    api, inst = ready
    before = hearth_api.cloud_ids()
    for size in (1, 2):
        fault_of(api.post(f"/instances/{inst['id']}/action", json={"resize": {"volume": {"size": size}}}),
                 400, "badRequest", "The new volume 'size' must be larger than the current volume size of '2'.")
    _unchanged(hearth_api, api, before, inst["id"], 1)


def test_resize_to_unknown_or_same_flavor(hearth_api, ready, fault_of):
    api, inst = ready
    before = hearth_api.cloud_ids()
    fault_of(api.post(f"/instances/{inst['id']}/action", json={"resize": {"flavorRef": "77"}}),
             404, "itemNotFound", "Flavor 77")
    fault_of(api.post(f"/instances/{inst['id']}/action", json={"resize": {"flavorRef": "1"}}),
             400, "badRequest", "must be different than the current flavor id of '1'")
    fault_of(api.post(f"/instances/{inst['id']}/action", json={"reboot": {}}), 400, "badRequest",
             "Invalid instance action: reboot")
    fault_of(api.post(f"/instances/{inst['id']}/action", json={"resize": {}}), 400, "badRequest", "flavorRef")
    _unchanged(hearth_api, api, before, inst["id"], 1)


def test_invalid_cidr_on_update_is_400(hearth_api, ready, fault_of):
    api, inst = ready
    before = hearth_api.cloud_ids()
    fault_of(api.put(f"/instances/{inst['id']}", json={"instance": {"access": {"allowed_cidrs": ["300.1.1.1/8"]}}}),
             400, "badRequest", "300.1.1.1/8", "not a valid CIDR")
    fault_of(api.put(f"/instances/{inst['id']}", json={"instance": {}}), 400, "badRequest", "Nothing to update")
    shown = api.get(f"/instances/{inst['id']}").json()["instance"]
    assert shown["access"]["allowed_cidrs"] == ["0.0.0.0/0"]
    _unchanged(hearth_api, api, before, inst["id"], 1)
    assert hearth_api.cloud_rules(inst["id"]) == {("tcp", 5432, 5432, "0.0.0.0/0")}


def test_unknown_instance_is_404_everywhere(hearth_api, fault_of):
    api = hearth_api.client()
    before = hearth_api.cloud_ids()
    missing = str(uuid.uuid4())
    fault_of(api.get(f"/instances/{missing}"), 404, "itemNotFound", missing)
    fault_of(api.delete(f"/instances/{missing}"), 404, "itemNotFound")
    fault_of(api.put(f"/instances/{missing}", json={"instance": {"name": "x"}}), 404, "itemNotFound")
    fault_of(api.post(f"/instances/{missing}/action", json={"resize": {"flavorRef": "2"}}), 404, "itemNotFound")
    fault_of(api.get(f"/instances/{missing}/events"), 404, "itemNotFound")
    fault_of(api.get(f"/security-groups/{missing}"), 404, "itemNotFound")
    fault_of(api.delete(f"/security-group-rules/{missing}"), 404, "itemNotFound")
    _unchanged(hearth_api, api, before)


def test_an_operation_while_another_runs_is_422(hearth_api, ready, fault_of):
    """The cloud is frozen so the resize stays in flight; every other change is refused meanwhile."""
    api, inst = ready
    iid = inst["id"]
    hearth_api.cloud.control.set_delays(server_resize=5.0)
    hearth_api.cloud.control.freeze()
    try:
        assert api.post(f"/instances/{iid}/action", json={"resize": {"flavorRef": "2"}}).status_code == 202
        before = hearth_api.cloud_ids()
        fault_of(api.post(f"/instances/{iid}/action", json={"resize": {"volume": {"size": 5}}}),
                 422, "unprocessableEntity", f"Instance {iid} is not ready. (status was RESIZE)")
        fault_of(api.post(f"/instances/{iid}/action", json={"resize": {"flavorRef": "3"}}), 422, "unprocessableEntity")
        fault_of(api.put(f"/instances/{iid}", json={"instance": {"access": {"allowed_cidrs": ["10.0.0.0/8"]}}}),
                 422, "unprocessableEntity")
        fault_of(api.delete(f"/instances/{iid}"), 422, "unprocessableEntity")
        fault_of(api.post("/security-group-rules", json={"security_group_rule": {"group_id": iid,
                                                                                  "cidr": "10.0.0.0/8"}}),
                 422, "unprocessableEntity")
        assert hearth_api.cloud_ids() == before
    finally:
        hearth_api.cloud.control.freeze(False)
        hearth_api.cloud.control.advance(10)
    hearth_api.settle()
    shown = api.get(f"/instances/{iid}").json()["instance"]
    assert (shown["status"], shown["flavor"]["id"], shown["volume"]["size"]) == ("ACTIVE", "2", 2)
    ops = api.get(f"/instances/{iid}/operations").json()["operations"]
    assert [o["kind"] for o in ops] == ["provision", "resize_flavor"]


def test_concurrent_requests_start_one_operation(hearth_api, ready):
    """Many simultaneous resizes of one instance: exactly one is accepted (conditional UPDATE on task)."""
    api, inst = ready
    iid = inst["id"]
    # The accepted resize must still be running when the last request arrives: its extend takes a second of
    # the cloud's clock, and the clock stands still until every request has been answered.
    hearth_api.cloud.control.set_delays(volume_extend=1.0)
    hearth_api.cloud.control.freeze()
    statuses: list[int] = []
    lock = threading.Lock()

    def resize(size: int) -> None:
        client = hearth_api.client()
        code = client.post(f"/instances/{iid}/action", json={"resize": {"volume": {"size": size}}}).status_code
        with lock:
            statuses.append(code)

    try:
        threads = [threading.Thread(target=resize, args=(3 + i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        hearth_api.cloud.control.freeze(False)
    assert sorted(statuses) == [202] + [422] * 7
    hearth_api.settle()
    ops = api.get(f"/instances/{iid}/operations").json()["operations"]
    assert [o["kind"] for o in ops] == ["provision", "resize_volume"]
    size = api.get(f"/instances/{iid}").json()["instance"]["volume"]["size"]
    assert hearth_api.cloud_resource("volumes", iid)["size"] == size == ops[1]["params"]["volume_size"]
