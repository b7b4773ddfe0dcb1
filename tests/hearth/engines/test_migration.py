"""The migration engine: adopt a natives instance into a Heat stack (ids unchanged, nothing rebuilt), refuse
to adopt a drifted instance, release back to natives; checked in fakecloud itself."""

from __future__ import annotations

import pytest

from hearth.engines.base import EngineError, LocalContext, RuleSpec
from hearth.engines.heat import read_stack
from hearth.engines.migration import MigrationEngine

SSH_RULE = RuleSpec("rule-ssh", "tcp", 22, 22, "192.168.7.0/24")


@pytest.fixture
def migration(settings, connections, natives):
    engine = MigrationEngine(settings, connections, natives=natives)  # builds its own orchestrator
    yield engine
    engine.close()


@pytest.fixture
def natives_instance(natives, make_spec):
    spec = make_spec()
    return spec, natives.provision(spec, LocalContext())


def _writes_by_service(cloud_state, seq: int) -> set[str]:
    log = cloud_state.fakecloud.control.requests(since=seq)["requests"]
    return {r["service"] for r in log if r["method"] in ("POST", "PUT", "PATCH", "DELETE")
            and r["service"] != "identity" and not r["path"].rstrip("/").endswith("/preview")}


def test_adopt_keeps_every_id_and_later_changes_go_through_heat(migration, natives_instance, os_conn, cloud_state):
    spec, res = natives_instance
    seq = cloud_state.request_seq()
    ctx = LocalContext()
    adopted = migration.adopt(spec, res, ctx)

    assert _writes_by_service(cloud_state, seq) == {"orchestration"}  # only the stack adopt itself
    assert (adopted.server_id, adopted.volume_id, adopted.secgroup_id) == (res.server_id, res.volume_id,
                                                                         res.secgroup_id)
    stack = read_stack(os_conn, adopted.stack_id)  # openstacksdk's get_stack hides ADOPT_COMPLETE stacks
    assert stack.status == "ADOPT_COMPLETE" and stack.name == f"hearth-{spec.instance_id}"
    assert adopted.stack_status == "ADOPT_COMPLETE"
    physical = {r.name: r.physical_resource_id for r in os_conn.orchestration.resources(stack)}
    assert physical["server"] == res.server_id
    assert physical["data_volume"] == res.volume_id
    assert physical["security_group"] == res.secgroup_id
    assert migration.owner(adopted) is migration.orchestrator

    # the next resize is a stack update: Heat's writes only, same server, new flavor
    seq = cloud_state.request_seq()
    resized = migration.resize_flavor(spec.replace(flavor_id="3"), adopted, LocalContext())
    assert _writes_by_service(cloud_state, seq) == {"orchestration"}
    server = os_conn.compute.get_server(res.server_id)
    assert resized.server_id == res.server_id
    assert server.flavor.original_name == os_conn.compute.get_flavor("3").name
    assert read_stack(os_conn, adopted.stack_id).status == "UPDATE_COMPLETE"

    # rules too, and deleting removes everything through the stack
    with_ssh = spec.replace(flavor_id="3", rules=(*spec.rules, SSH_RULE))
    ruled = migration.apply_rules(with_ssh, resized, LocalContext())
    assert cloud_state.ingress_rules(res.secgroup_id) == {("tcp", 5432, 5432, "10.0.0.0/24"),
                                                          ("tcp", 22, 22, "192.168.7.0/24")}
    migration.delete(with_ssh, ruled, LocalContext())
    assert cloud_state.hearth_leftovers() == {}


def test_adopt_refuses_a_drifted_instance_and_changes_nothing(migration, natives_instance, os_conn, cloud_state,
                                                              fakecloud):
    spec, res = natives_instance
    server = os_conn.compute.get_server(res.server_id)
    os_conn.compute.resize_server(server, "3")  # behind Hearth's back
    os_conn.compute.wait_for_server(server, status="VERIFY_RESIZE", interval=0.02, wait=30)
    os_conn.compute.confirm_server_resize(server)
    os_conn.compute.wait_for_server(server, status="ACTIVE", interval=0.02, wait=30)
    os_conn.network.create_security_group_rule(security_group_id=res.secgroup_id, direction="ingress",
                                               protocol="tcp", port_range_min=3306, port_range_max=3306,
                                               remote_ip_prefix="10.9.0.0/16")

    seq = cloud_state.request_seq()
    with pytest.raises(EngineError) as refused:
        migration.adopt(spec, res, LocalContext())
    message = str(refused.value)
    assert f"server {res.server_id} has flavor m1.medium (3)" in message
    assert "Hearth records flavor m1.small (2)" in message
    assert "has a rule Hearth does not record: tcp 3306-3306 from 10.9.0.0/16" in message
    assert cloud_state.writes_since(seq) == []
    assert read_stack(os_conn, f"hearth-{spec.instance_id}") is None

    steps = migration.plan("adopt", spec, res)  # the dry run says the same, and writes nothing
    assert {s.action for s in steps} == {"refuse"}
    assert any("m1.medium" in s.detail for s in steps)
    assert cloud_state.writes_since(seq) == []


def test_release_hands_the_resources_back_untouched(migration, natives_instance, os_conn, cloud_state):
    spec, res = natives_instance
    adopted = migration.adopt(spec, res, LocalContext())

    steps = migration.plan("release", spec, adopted)
    assert steps[0].action == "stack abandon"

    seq = cloud_state.request_seq()
    released = migration.release(spec, adopted, LocalContext())
    assert _writes_by_service(cloud_state, seq) == {"orchestration"}  # the abandon only
    assert released.stack_id is None
    assert (released.server_id, released.volume_id, released.secgroup_id) == (res.server_id, res.volume_id,
                                                                             res.secgroup_id)
    assert read_stack(os_conn, f"hearth-{spec.instance_id}") is None
    assert os_conn.compute.get_server(res.server_id).status == "ACTIVE"
    volume = os_conn.block_storage.get_volume(res.volume_id)
    assert volume.status == "in-use" and [a["server_id"] for a in volume.attachments] == [res.server_id]
    assert migration.owner(released) is migration.natives

    # natives serves it again: direct Cinder writes
    seq = cloud_state.request_seq()
    grown = migration.resize_volume(spec.replace(volume_size=4), released, LocalContext())
    assert "volume" in _writes_by_service(cloud_state, seq)
    assert "orchestration" not in _writes_by_service(cloud_state, seq)
    assert os_conn.block_storage.get_volume(grown.volume_id).size == 4
    migration.delete(spec.replace(volume_size=4), grown, LocalContext())
    assert cloud_state.hearth_leftovers() == {}


def test_adopt_plan_lists_the_stack_adopt_and_writes_nothing(migration, natives_instance, cloud_state):
    spec, res = natives_instance
    seq = cloud_state.request_seq()
    steps = migration.plan("adopt", spec, res)
    assert steps[0].action == "stack adopt"
    assert {s.target for s in steps[1:]} >= {"server (OS::Nova::Server)", "data_volume (OS::Cinder::Volume)"}
    assert cloud_state.writes_since(seq) == []


def test_a_stack_owned_instance_cannot_be_adopted_and_a_natives_one_not_released(migration, natives_instance,
                                                                                  make_spec):
    spec, res = natives_instance
    with pytest.raises(EngineError, match="no Heat stack to release"):
        migration.release(spec, res, LocalContext())
    adopted = migration.adopt(spec, res, LocalContext())
    with pytest.raises(EngineError, match="already belongs to stack"):
        migration.adopt(spec, adopted, LocalContext())
    migration.delete(spec, adopted, LocalContext())


def test_a_fleet_plans_check_of_the_cloud_stands_for_a_move_only_while_it_is_recent():
    """A move queued by a fleet migration skips its own read of the cloud only within CHECK_TRUST_SECONDS of the
    plan's (the journal's NOTE_CHECKED_AT); an older, missing, malformed or future check is not trusted."""
    import time

    from hearth.engines.journal import NOTE_CHECKED_AT
    from hearth.engines.migration import CHECK_TRUST_SECONDS, _recent_check

    now = time.time()
    assert 0.9 < (_recent_check({NOTE_CHECKED_AT: now - 1}) or 0) < 5
    assert _recent_check({NOTE_CHECKED_AT: now - CHECK_TRUST_SECONDS - 1}) is None
    assert _recent_check({NOTE_CHECKED_AT: now + 60}) is None
    assert _recent_check({NOTE_CHECKED_AT: "yesterday"}) is None
    assert _recent_check({}) is None
