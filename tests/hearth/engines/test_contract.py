"""The engine contract: what every ResourceEngine must leave in the cloud, checked in the cloud itself.

Uses only the ResourceEngine interface and LocalContext, so the orchestrator and migration engines run
the same suite by joining ENGINE_NAMES in conftest.py.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from openstack import exceptions as os_exceptions

from hearth.engines.base import CloudView, EngineError, LocalContext, PlannedStep, Resources, RuleSpec

PG_RULE = RuleSpec("rule-pg", "tcp", 5432, 5432, "10.0.0.0/24")
SSH_RULE = RuleSpec("rule-ssh", "tcp", 22, 22, "192.168.7.0/24")


@pytest.fixture
def provisioned(engine, make_spec):
    spec = make_spec()
    ctx = LocalContext()
    resources = engine.provision(spec, ctx)
    return spec, resources, ctx


def _flavor_name(os_conn, flavor_id: str) -> str:
    return os_conn.compute.get_flavor(flavor_id).name


def test_provision_builds_server_volume_and_group(provisioned, os_conn, cloud_state):
    spec, res, ctx = provisioned
    assert res.server_id and res.volume_id and res.secgroup_id

    server = os_conn.compute.get_server(res.server_id)
    assert server.status == "ACTIVE"
    assert server.flavor.original_name == _flavor_name(os_conn, spec.flavor_id)
    assert server.name == f"hearth-{spec.instance_id}-{spec.name}"
    assert server.metadata["hearth_instance_id"] == spec.instance_id
    assert server.metadata["hearth_project_id"] == spec.project_id

    volume = os_conn.block_storage.get_volume(res.volume_id)
    assert volume.status == "in-use"
    assert volume.size == spec.volume_size
    assert [a["server_id"] for a in volume.attachments] == [res.server_id]
    assert volume.name == f"hearth-{spec.instance_id}-data"
    assert volume.metadata["hearth_instance_id"] == spec.instance_id

    group = os_conn.network.get_security_group(res.secgroup_id)
    assert group.name == f"hearth-{spec.instance_id}"
    assert spec.instance_id in group.description
    assert cloud_state.ingress_rules(res.secgroup_id) == {("tcp", 5432, 5432, "10.0.0.0/24")}
    assert group.name in {g["name"] for g in server.security_groups} or res.secgroup_id in {
        g["name"] for g in server.security_groups}

    assert set(res.rules) == {PG_RULE.id}
    cloud_rule = os_conn.network.get_security_group_rule(res.rules[PG_RULE.id].cloud_id)
    assert cloud_rule.remote_ip_prefix == "10.0.0.0/24"
    # the journal knows every resource, so a crashed task manager can resume or clean up
    assert {ctx.journal["server_id"], ctx.journal["volume_id"], ctx.journal["secgroup_id"]} == {
        res.server_id, res.volume_id, res.secgroup_id}


def test_resize_flavor_keeps_server_and_changes_flavor(engine, provisioned, os_conn):
    spec, res, _ = provisioned
    bigger = spec.replace(flavor_id="3")
    after = engine.resize_flavor(bigger, res, LocalContext())

    assert after.server_id == res.server_id
    server = os_conn.compute.get_server(res.server_id)
    assert server.status == "ACTIVE"
    assert server.flavor.original_name == _flavor_name(os_conn, "3")
    volume = os_conn.block_storage.get_volume(res.volume_id)
    assert volume.status == "in-use" and [a["server_id"] for a in volume.attachments] == [res.server_id]


def test_resize_flavor_to_the_current_flavor_changes_nothing(engine, provisioned, os_conn):
    spec, res, _ = provisioned
    after = engine.resize_flavor(spec, res, LocalContext())
    assert after.server_id == res.server_id
    assert os_conn.compute.get_server(res.server_id).flavor.original_name == _flavor_name(os_conn, spec.flavor_id)


def _check_grown_and_attached(os_conn, res: Resources, size: int) -> None:
    volume = os_conn.block_storage.get_volume(res.volume_id)
    assert volume.size == size
    assert volume.status == "in-use"
    assert [a["server_id"] for a in volume.attachments] == [res.server_id]
    attachments = list(os_conn.compute.volume_attachments(res.server_id))
    assert [a.volume_id for a in attachments] == [res.volume_id]


def test_resize_volume_in_use(engine, provisioned, os_conn, cloud_state):
    spec, res, _ = provisioned
    seq = cloud_state.request_seq()
    after = engine.resize_volume(spec.replace(volume_size=5), res, LocalContext())

    assert after.volume_id == res.volume_id
    _check_grown_and_attached(os_conn, res, 5)
    writes = cloud_state.writes_since(seq)
    assert not any("os-volume_attachments" in w for w in writes), writes  # extended while attached


def test_resize_volume_detach_extend_attach_below_3_42(engine, make_spec, os_conn, fakecloud, cloud_state):
    fakecloud.control.set_microversions(volume="3.41")  # a cloud whose Cinder cannot extend in-use volumes
    spec = make_spec()
    res = engine.provision(spec, LocalContext())
    seq = cloud_state.request_seq()
    after = engine.resize_volume(spec.replace(volume_size=6), res, LocalContext())

    assert after.volume_id == res.volume_id
    _check_grown_and_attached(os_conn, res, 6)
    writes = cloud_state.writes_since(seq)
    if engine.name in ("orchestrator", "migration") and not fakecloud.cloud.config.orchestration_url:
        # fakecloud's own Heat does the volume work in-process, behind one stack update; an external
        # (upstream) Heat makes the same detach, extend, attach calls over the wire, checked below
        assert writes and all("/heat-api/" in w for w in writes), writes
        return
    detach = next(i for i, w in enumerate(writes) if w.startswith("DELETE") and "os-volume_attachments" in w)
    extend = next(i for i, w in enumerate(writes) if w.startswith("POST") and w.endswith("/action"))
    attach = max(i for i, w in enumerate(writes) if w.startswith("POST") and "os-volume_attachments" in w)
    assert detach < extend < attach, writes


def test_resize_volume_refuses_to_shrink(engine, provisioned, os_conn, cloud_state):
    spec, res, _ = provisioned
    grown = engine.resize_volume(spec.replace(volume_size=4), res, LocalContext())
    seq = cloud_state.request_seq()
    with pytest.raises(EngineError, match="grow"):
        engine.resize_volume(spec.replace(volume_size=3), grown, LocalContext())
    assert cloud_state.writes_since(seq) == []
    _check_grown_and_attached(os_conn, res, 4)


def test_apply_rules_add_change_remove(engine, provisioned, os_conn, cloud_state):
    spec, res, _ = provisioned

    # add
    with_ssh = spec.replace(rules=(PG_RULE, SSH_RULE))
    res = engine.apply_rules(with_ssh, res, LocalContext())
    assert cloud_state.ingress_rules(res.secgroup_id) == {
        ("tcp", 5432, 5432, "10.0.0.0/24"), ("tcp", 22, 22, "192.168.7.0/24")}
    assert set(res.rules) == {PG_RULE.id, SSH_RULE.id}
    assert all(rule.cloud_id for rule in res.rules.values())

    # CIDR change: a new Neutron rule, the old one gone
    old_cloud_id = res.rules[PG_RULE.id].cloud_id
    moved = RuleSpec(PG_RULE.id, "tcp", 5432, 5432, "10.20.0.0/16")
    res = engine.apply_rules(spec.replace(rules=(moved, SSH_RULE)), res, LocalContext())
    assert cloud_state.ingress_rules(res.secgroup_id) == {
        ("tcp", 5432, 5432, "10.20.0.0/16"), ("tcp", 22, 22, "192.168.7.0/24")}
    assert res.rules[PG_RULE.id].cidr == "10.20.0.0/16"
    assert res.rules[PG_RULE.id].cloud_id != old_cloud_id
    with pytest.raises(os_exceptions.NotFoundException):
        os_conn.network.get_security_group_rule(old_cloud_id)

    # remove
    ssh_cloud_id = res.rules[SSH_RULE.id].cloud_id
    res = engine.apply_rules(spec.replace(rules=(moved,)), res, LocalContext())
    assert cloud_state.ingress_rules(res.secgroup_id) == {("tcp", 5432, 5432, "10.20.0.0/16")}
    assert set(res.rules) == {PG_RULE.id}
    with pytest.raises(os_exceptions.NotFoundException):
        os_conn.network.get_security_group_rule(ssh_cloud_id)

    # converged: applying again changes nothing
    seq = cloud_state.request_seq()
    again = engine.apply_rules(spec.replace(rules=(moved,)), res, LocalContext())
    assert again.rules == res.rules
    assert cloud_state.writes_since(seq) == []


def test_apply_rules_ipv6_and_removing_every_rule(engine, provisioned, cloud_state):
    spec, res, _ = provisioned
    v6 = RuleSpec("rule-v6", "tcp", 5432, 5432, "2001:db8::/64")
    res = engine.apply_rules(spec.replace(rules=(PG_RULE, v6)), res, LocalContext())
    assert cloud_state.ingress_rules(res.secgroup_id) == {
        ("tcp", 5432, 5432, "10.0.0.0/24"), ("tcp", 5432, 5432, "2001:db8::/64")}
    res = engine.apply_rules(spec.replace(rules=()), res, LocalContext())
    assert cloud_state.ingress_rules(res.secgroup_id) == set()
    assert res.rules == {}


def test_apply_rules_recreates_a_missing_group(engine, provisioned, os_conn, cloud_state):
    spec, res, _ = provisioned
    server = os_conn.compute.get_server(res.server_id)
    os_conn.compute.remove_security_group_from_server(server, {"name": res.secgroup_id})
    os_conn.network.delete_security_group(res.secgroup_id)

    if engine.name in ("orchestrator", "migration"):  # migration builds new instances as stacks too
        # Heat cannot bring back a group deleted behind its back without replacing the server (the server
        # names the group through a property Heat only replaces), and this engine never writes around the
        # stack: it must refuse with a reason, change nothing, and still delete cleanly.
        seq = cloud_state.request_seq()
        with pytest.raises(EngineError, match="deleted outside Heat"):
            engine.apply_rules(spec, res, LocalContext())
        assert cloud_state.writes_since(seq) == []
        assert os_conn.compute.get_server(res.server_id).status == "ACTIVE"
        engine.delete(spec, res, LocalContext())
        assert cloud_state.hearth_leftovers() == {}
        return

    after = engine.apply_rules(spec, res, LocalContext())
    assert after.secgroup_id != res.secgroup_id
    assert cloud_state.ingress_rules(after.secgroup_id) == {("tcp", 5432, 5432, "10.0.0.0/24")}
    groups = {g["name"] for g in os_conn.compute.get_server(res.server_id).security_groups}
    assert groups & {after.secgroup_id, f"hearth-{spec.instance_id}"}


def test_delete_leaves_nothing(engine, provisioned, os_conn, cloud_state):
    spec, res, _ = provisioned
    engine.resize_volume(spec.replace(volume_size=3), res, LocalContext())
    engine.delete(spec, res, LocalContext())

    assert cloud_state.hearth_leftovers() == {}
    with pytest.raises(os_exceptions.NotFoundException):
        os_conn.compute.get_server(res.server_id)
    with pytest.raises(os_exceptions.NotFoundException):
        os_conn.block_storage.get_volume(res.volume_id)
    with pytest.raises(os_exceptions.NotFoundException):
        os_conn.network.get_security_group(res.secgroup_id)

    # idempotent: a second delete (a retried operation) is fine
    engine.delete(spec, res, LocalContext())
    assert cloud_state.hearth_leftovers() == {}


def test_delete_of_an_instance_that_never_reached_the_cloud(engine, make_spec, cloud_state):
    """Nothing in the cloud: the delete only looks (no write of any kind) and succeeds."""
    seq = cloud_state.request_seq()
    engine.delete(make_spec(), Resources(), LocalContext())
    assert cloud_state.writes_since(seq) == []
    assert cloud_state.hearth_leftovers() == {}


def test_delete_of_a_never_provisioned_instance_deals_with_strays_named_for_it(engine, engine_name, make_spec,
                                                                               os_conn, cloud_state):
    """A failed provision can leave resources Hearth never recorded. natives (and migration, which hands a
    stackless instance to natives) find them by name and metadata and delete them; the orchestrator never
    changes the cloud behind Heat, so it reports them by id and leaves them."""
    spec = make_spec()
    volume = os_conn.block_storage.create_volume(name=f"hearth-{spec.instance_id}-data", size=1,
                                                 metadata={"hearth_instance_id": spec.instance_id,
                                                           "hearth_project_id": spec.project_id})
    os_conn.block_storage.wait_for_status(volume, "available", interval=0.01, wait=30)
    group = os_conn.network.create_security_group(name=f"hearth-{spec.instance_id}",
                                                  description=f"Hearth instance {spec.name} ({spec.instance_id})")
    assert set(cloud_state.hearth_leftovers()) == {"volumes", "security_groups"}

    if engine_name == "orchestrator":
        with pytest.raises(EngineError) as raised:
            engine.delete(spec, Resources(), LocalContext())
        message = str(raised.value)
        assert f"volume {volume.id}" in message and f"security group {group.id}" in message, message
        assert os_conn.block_storage.get_volume(volume.id).status == "available"  # nothing deleted behind Heat
        assert os_conn.network.get_security_group(group.id).id == group.id
        os_conn.block_storage.delete_volume(volume.id)
        os_conn.network.delete_security_group(group.id)
        os_conn.block_storage.wait_for_delete(volume, interval=0.01, wait=30)
    else:
        engine.delete(spec, Resources(), LocalContext())
        with pytest.raises(os_exceptions.NotFoundException):
            os_conn.block_storage.get_volume(volume.id)
        with pytest.raises(os_exceptions.NotFoundException):
            os_conn.network.get_security_group(group.id)
    assert cloud_state.hearth_leftovers() == {}


def test_delete_finds_resources_hearth_never_recorded(engine, provisioned, cloud_state):
    spec, _res, _ = provisioned
    engine.delete(spec, Resources(), LocalContext())  # found by name and metadata alone
    assert cloud_state.hearth_leftovers() == {}


def test_describe_reads_the_cloud(engine, provisioned, os_conn):
    spec, res, _ = provisioned
    view = engine.describe(spec, res)
    assert isinstance(view, CloudView)
    assert view.server["id"] == res.server_id
    assert view.server["status"] == "ACTIVE"
    assert view.server["flavor_id"] == spec.flavor_id
    assert view.volume == {"id": res.volume_id, "status": "in-use", "size": spec.volume_size,
                           "attached_to": [res.server_id]}
    assert view.security_group["id"] == res.secgroup_id
    assert [(r["protocol"], r["from_port"], r["to_port"], r["cidr"]) for r in view.security_group["rules"]] == [
        ("tcp", 5432, 5432, "10.0.0.0/24")]

    engine.delete(spec, res, LocalContext())
    gone = engine.describe(spec, res)
    assert (gone.server, gone.volume, gone.security_group) == (None, None, None)


@pytest.mark.parametrize("kind", ["provision", "resize_flavor", "resize_volume", "apply_rules", "delete"])
def test_plan_changes_nothing(engine, provisioned, cloud_state, os_conn, kind):
    spec, res, _ = provisioned
    changed = spec.replace(flavor_id="3", volume_size=5, rules=(SSH_RULE,))
    seq = cloud_state.request_seq()
    steps = engine.plan(kind, changed, res)

    assert steps and all(isinstance(s, PlannedStep) for s in steps)
    assert cloud_state.writes_since(seq) == []
    assert os_conn.compute.get_server(res.server_id).flavor.original_name == _flavor_name(os_conn, spec.flavor_id)
    assert os_conn.block_storage.get_volume(res.volume_id).size == spec.volume_size


def test_plan_of_an_unknown_kind_is_refused(engine, make_spec):
    with pytest.raises(EngineError, match="unknown operation kind"):
        engine.plan("reboot", make_spec(), Resources())


def test_lifecycle_with_slow_cloud_transitions(engine, make_spec, fakecloud, os_conn, cloud_state):
    """Every transition takes a little cloud time, so each wait really polls an in-between status."""
    fakecloud.control.set_microversions(volume="3.41")  # the longest volume-resize path
    fakecloud.control.set_delays(server_boot=0.15, server_resize=0.1, server_confirm_resize=0.05,
                                 server_delete=0.1, volume_create=0.1, volume_attach=0.05, volume_detach=0.05,
                                 volume_extend=0.05, volume_delete=0.05)
    spec = make_spec()
    res = engine.provision(spec, LocalContext())
    assert os_conn.compute.get_server(res.server_id).status == "ACTIVE"
    assert os_conn.block_storage.get_volume(res.volume_id).status == "in-use"

    res = engine.resize_flavor(spec.replace(flavor_id="3"), res, LocalContext())
    assert os_conn.compute.get_server(res.server_id).flavor.original_name == _flavor_name(os_conn, "3")
    res = engine.resize_volume(spec.replace(flavor_id="3", volume_size=4), res, LocalContext())
    _check_grown_and_attached(os_conn, res, 4)

    engine.delete(spec, res, LocalContext())
    assert cloud_state.hearth_leftovers() == {}


def test_concurrent_operations_on_one_engine(engine, make_spec, os_conn, cloud_state):
    """One engine serves several task manager workers at once (each thread its own Connection)."""
    specs = [make_spec() for _ in range(4)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda s: engine.provision(s, LocalContext()), specs))
    assert len({r.server_id for r in results}) == len({r.volume_id for r in results}) == 4
    for res in results:
        volume = os_conn.block_storage.get_volume(res.volume_id)
        assert volume.status == "in-use" and [a["server_id"] for a in volume.attachments] == [res.server_id]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda pair: engine.delete(pair[0], pair[1], LocalContext()), zip(specs, results, strict=True)))
    assert cloud_state.hearth_leftovers() == {}
