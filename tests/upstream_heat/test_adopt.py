"""Adopting a natives instance into an upstream Heat stack, then living on as a stack: every step checked in
fakecloud itself (same resource ids, the new flavor, the grown attached volume, the moved rule, nothing left)."""

from __future__ import annotations

import pytest
from openstack import exceptions as os_exceptions

from hearth.engines.base import LocalContext, RuleSpec

MOVED_PG = RuleSpec("rule-pg", "tcp", 5432, 5432, "10.20.0.0/16")


@pytest.fixture
def migration(settings, connections, natives):
    from hearth.engines.migration import MigrationEngine

    engine = MigrationEngine(settings, connections, natives=natives)
    yield engine
    engine.close()


def _heat_stack(os_conn, stack_id: str) -> dict:
    """The stack as Heat shows it (raw GET: the SDK reports an ADOPT_COMPLETE stack as missing)."""
    response = os_conn.orchestration.get(f"/stacks/{stack_id}")
    assert response.status_code == 200, response.text
    return response.json()["stack"]


def test_adopt_a_natives_instance_then_resize_change_rules_and_delete(migration, natives, make_spec, os_conn,
                                                                       cloud_state):
    spec = make_spec()
    res = natives.provision(spec, LocalContext())

    adopted = migration.adopt(spec, res, LocalContext())
    assert (adopted.server_id, adopted.volume_id, adopted.secgroup_id) == (res.server_id, res.volume_id,
                                                                         res.secgroup_id)
    stack = _heat_stack(os_conn, adopted.stack_id)
    assert stack["stack_status"] == "ADOPT_COMPLETE" and stack["stack_name"] == f"hearth-{spec.instance_id}"
    physical = {r["resource_name"]: r["physical_resource_id"] for r in os_conn.orchestration.get(
        f"/stacks/{stack['stack_name']}/{adopted.stack_id}/resources").json()["resources"]}
    assert (physical["server"], physical["data_volume"], physical["security_group"]) == (
        res.server_id, res.volume_id, res.secgroup_id)
    assert os_conn.compute.get_server(res.server_id).status == "ACTIVE"  # nothing was rebuilt

    bigger = spec.replace(flavor_id="3")
    resized = migration.resize_flavor(bigger, adopted, LocalContext())
    server = os_conn.compute.get_server(res.server_id)
    assert resized.server_id == res.server_id and server.status == "ACTIVE"
    assert server.flavor.original_name == os_conn.compute.get_flavor("3").name

    grown = migration.resize_volume(bigger.replace(volume_size=4), resized, LocalContext())
    volume = os_conn.block_storage.get_volume(res.volume_id)
    assert grown.volume_id == res.volume_id
    assert (volume.size, volume.status) == (4, "in-use")
    assert [a["server_id"] for a in volume.attachments] == [res.server_id]

    final_spec = bigger.replace(volume_size=4, rules=(MOVED_PG,))
    moved = migration.apply_rules(final_spec, grown, LocalContext())
    assert cloud_state.ingress_rules(res.secgroup_id) == {("tcp", 5432, 5432, "10.20.0.0/16")}
    assert moved.rules[MOVED_PG.id].cidr == "10.20.0.0/16"

    migration.delete(final_spec, moved, LocalContext())
    assert cloud_state.hearth_leftovers() == {}
    with pytest.raises(os_exceptions.NotFoundException):
        os_conn.compute.get_server(res.server_id)
    with pytest.raises(os_exceptions.NotFoundException):
        os_conn.block_storage.get_volume(res.volume_id)
