"""Natives engine specifics: cloud faults, resume from the journal, rule ordering, preflight refusals."""

from __future__ import annotations

import pytest

from hearth.engines import available, build_engine
from hearth.engines.base import EngineError, LocalContext, Resources, RuleSpec
from hearth.engines.natives import NativesEngine

PG_RULE = RuleSpec("rule-pg", "tcp", 5432, 5432, "10.0.0.0/24")


def _resources_from(journal: dict) -> Resources:
    return Resources(server_id=journal.get("server_id"), volume_id=journal.get("volume_id"),
                     secgroup_id=journal.get("secgroup_id"))


def test_registered_as_natives(settings, connections):
    assert "natives" in available()
    engine = build_engine("natives", settings, connections)
    try:
        assert isinstance(engine, NativesEngine)
    finally:
        engine.close()


def test_server_error_after_volume_exists(natives, make_spec, fakecloud, os_conn, cloud_state):
    fakecloud.control.add_fault(service="compute", operation="server.create", action="error_status",
                                message="No valid host was found.")
    spec = make_spec()
    ctx = LocalContext()
    with pytest.raises(EngineError, match="No valid host was found.") as raised:
        natives.provision(spec, ctx)
    assert ctx.journal["server_id"] in str(raised.value)

    # every resource made so far is in the journal, and really exists
    assert os_conn.compute.get_server(ctx.journal["server_id"]).status == "ERROR"
    assert os_conn.block_storage.get_volume(ctx.journal["volume_id"]).status == "available"
    assert os_conn.network.get_security_group(ctx.journal["secgroup_id"]).name == f"hearth-{spec.instance_id}"

    natives.delete(spec, _resources_from(ctx.journal), LocalContext(ctx.journal))
    assert cloud_state.hearth_leftovers() == {}


def test_volume_error_is_reported_and_cleaned_up(natives, make_spec, fakecloud, cloud_state):
    fakecloud.control.add_fault(service="volume", operation="volume.create", action="error_status")
    spec = make_spec()
    ctx = LocalContext()
    with pytest.raises(EngineError, match=r"volume .* is in status error"):
        natives.provision(spec, ctx)
    assert ctx.journal["volume_id"] and ctx.journal["secgroup_id"]
    # Once a step failed no new one starts (the server may or may not have been on its way), and every step
    # that ran finished first: whatever the failed provision made is in its journal.
    inventory = fakecloud.control.inventory("demo")
    made = {item["id"] for kind in ("servers", "volumes", "security_groups") for item in inventory[kind]
            if spec.instance_id in str(item.get("name") or "")}
    assert made and made <= {ctx.journal.get(key) for key in ("server_id", "volume_id", "secgroup_id")}

    natives.delete(spec, Resources(), LocalContext())  # a delete that knows nothing still finds them by name
    assert cloud_state.hearth_leftovers() == {}


def test_cloud_refusal_carries_the_clouds_message_and_status(natives, make_spec, fakecloud, cloud_state):
    fakecloud.control.add_fault(service="compute", operation="server.create", action="quota",
                                message="Quota exceeded for instances: Requested 1, but already used 10 of 10")
    spec = make_spec()
    ctx = LocalContext()
    with pytest.raises(EngineError) as raised:
        natives.provision(spec, ctx)
    message = str(raised.value)
    assert "creating the server failed: Quota exceeded for instances" in message
    assert "(HTTP 403)" in message
    assert "server_id" not in ctx.journal  # Nova made no server
    natives.delete(spec, _resources_from(ctx.journal), LocalContext(ctx.journal))
    assert cloud_state.hearth_leftovers() == {}


def test_failed_resize_reports_the_reason(natives, make_spec, fakecloud, os_conn):
    """fakecloud (like Nova when the compute host fails the resize) leaves the server in ERROR on its
    old flavor; the engine raises with Nova's fault message and leaves the server as Nova put it."""
    spec = make_spec()
    res = natives.provision(spec, LocalContext())
    fakecloud.control.add_fault(service="compute", operation="server.resize", action="error_status",
                                message="Resize failed: disk full on target host")
    ctx = LocalContext()
    with pytest.raises(EngineError, match="Resize failed: disk full on target host"):
        natives.resize_flavor(spec.replace(flavor_id="3"), res, ctx)

    server = os_conn.compute.get_server(res.server_id)
    assert server.status == "ERROR"
    assert server.flavor.original_name == os_conn.compute.get_flavor(spec.flavor_id).name
    assert server.fault["message"] == "Resize failed: disk full on target host"
    assert any(level == "error" for level, _ in ctx.events)


def test_refused_resize_leaves_the_server_active_on_its_old_flavor(natives, make_spec, fakecloud, os_conn):
    spec = make_spec()
    res = natives.provision(spec, LocalContext())
    fakecloud.control.add_fault(service="compute", operation="server.action", action="http_error", status=409,
                                message="Cannot 'resize' instance while it is in task_state migrating")
    with pytest.raises(EngineError, match=r"Cannot 'resize' instance.*\(HTTP 409\)"):
        natives.resize_flavor(spec.replace(flavor_id="3"), res, LocalContext())
    server = os_conn.compute.get_server(res.server_id)
    assert server.status == "ACTIVE"
    assert server.flavor.original_name == os_conn.compute.get_flavor(spec.flavor_id).name


def test_resize_resumed_while_awaiting_confirmation_is_confirmed(natives, make_spec, os_conn):
    spec = make_spec()
    res = natives.provision(spec, LocalContext())
    server = os_conn.compute.get_server(res.server_id)
    os_conn.compute.resize_server(server, "3")  # a previous attempt died right after this call
    os_conn.compute.wait_for_server(server, status="VERIFY_RESIZE", interval=0.01, wait=10)

    natives.resize_flavor(spec.replace(flavor_id="3"), res, LocalContext())
    server = os_conn.compute.get_server(res.server_id)
    assert server.status == "ACTIVE"
    assert server.flavor.original_name == os_conn.compute.get_flavor("3").name


def test_resume_reuses_the_journalled_volume(natives, make_spec, os_conn, fakecloud):
    spec = make_spec()
    # A previous attempt created the volume, recorded it, and died.
    earlier = os_conn.block_storage.create_volume(
        name=f"hearth-{spec.instance_id}-data", size=spec.volume_size,
        metadata={"hearth_instance_id": spec.instance_id, "hearth_project_id": spec.project_id})
    ctx = LocalContext({"volume_id": earlier.id})

    res = natives.provision(spec, ctx)
    assert res.volume_id == earlier.id
    volumes = fakecloud.control.inventory("demo")["volumes"]
    assert [v["id"] for v in volumes] == [earlier.id]
    assert os_conn.block_storage.get_volume(earlier.id).status == "in-use"


def test_resume_after_everything_exists_creates_nothing_new(natives, make_spec, fakecloud, cloud_state):
    spec = make_spec(rules=(PG_RULE, RuleSpec("rule-ssh", "tcp", 22, 22, "192.168.0.0/16")))
    ctx = LocalContext()
    first = natives.provision(spec, ctx)
    seq = cloud_state.request_seq()

    again = natives.provision(spec, LocalContext(ctx.journal))  # the task manager re-ran the operation
    assert (again.server_id, again.volume_id, again.secgroup_id) == (first.server_id, first.volume_id,
                                                                     first.secgroup_id)
    assert again.rules == first.rules
    assert cloud_state.writes_since(seq) == []
    inventory = fakecloud.control.inventory("demo")
    assert len(inventory["servers"]) == len(inventory["volumes"]) == 1


def test_cidr_change_creates_the_new_rule_before_deleting_the_old(natives, make_spec, fakecloud):
    spec = make_spec()
    res = natives.provision(spec, LocalContext())
    old_id = res.rules[PG_RULE.id].cloud_id
    seq = fakecloud.control.requests(log=False)["seq"]

    moved = RuleSpec(PG_RULE.id, "tcp", 5432, 5432, "172.16.0.0/12")
    after = natives.apply_rules(spec.replace(rules=(moved,)), res, LocalContext())
    new_id = after.rules[PG_RULE.id].cloud_id

    log = [r for r in fakecloud.control.requests(since=seq)["requests"] if "security-group-rules" in r["path"]]
    created = next(i for i, r in enumerate(log) if r["method"] == "POST" and r["status"] == 201)
    deleted = next(i for i, r in enumerate(log) if r["method"] == "DELETE" and r["path"].endswith(old_id))
    assert created < deleted, log
    assert new_id != old_id


def test_duplicate_rule_is_adopted(natives, make_spec, os_conn):
    spec = make_spec(rules=())
    res = natives.provision(spec, LocalContext())
    # Someone (or a crashed attempt) already opened the port: Neutron answers 409 on the create.
    existing = os_conn.network.create_security_group_rule(
        security_group_id=res.secgroup_id, direction="ingress", ether_type="IPv4", protocol="tcp",
        port_range_min=5432, port_range_max=5432, remote_ip_prefix="10.0.0.0/24")
    after = natives.apply_rules(spec.replace(rules=(PG_RULE,)), res, LocalContext())
    assert after.rules[PG_RULE.id].cloud_id == existing.id
    assert os_conn.network.get_security_group_rule(existing.id).remote_ip_prefix == "10.0.0.0/24"


def test_stale_rule_already_gone_is_fine(natives, make_spec, os_conn, cloud_state):
    spec = make_spec()
    res = natives.provision(spec, LocalContext())
    os_conn.network.delete_security_group_rule(res.rules[PG_RULE.id].cloud_id)  # deleted behind Hearth's back
    after = natives.apply_rules(spec.replace(rules=()), res, LocalContext())
    assert after.rules == {}
    assert cloud_state.ingress_rules(res.secgroup_id) == set()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"flavor_id": "no-such-flavor"}, "flavor 'no-such-flavor' does not exist"),
        ({"image_id": "no-such-image"}, "image 'no-such-image' does not exist"),
        ({"network_id": "no-such-network"}, "network 'no-such-network' does not exist"),
        ({"volume_size": 6000}, r"quota exceeded: volume gigabytes: need 6000"),
    ],
)
def test_preflight_refusals_create_nothing(natives, make_spec, cloud_state, changes, message):
    spec = make_spec(**changes)
    seq = cloud_state.request_seq()
    ctx = LocalContext()
    with pytest.raises(EngineError, match=message):
        natives.provision(spec, ctx)
    assert cloud_state.writes_since(seq) == []
    assert cloud_state.hearth_leftovers() == {}
    assert ctx.journal == {}


def test_preflight_refuses_when_compute_quota_is_used_up(natives, make_spec, os_admin, os_conn, cloud_state):
    os_admin.compute.update_quota_set(os_conn.current_project_id, instances=1, cores=3)
    spec = make_spec(flavor_id="3")  # 2 vCPUs
    natives.provision(spec, LocalContext())
    seq = cloud_state.request_seq()
    with pytest.raises(EngineError, match=r"quota exceeded: instances: need 1, 0 of 1 left; cores: need 2"):
        natives.provision(make_spec(flavor_id="3"), LocalContext())
    assert cloud_state.writes_since(seq) == []


def test_refused_extend_on_the_detach_path_reattaches_the_volume(natives, make_spec, fakecloud, os_conn):
    fakecloud.control.set_microversions(volume="3.41")
    spec = make_spec()
    res = natives.provision(spec, LocalContext())
    fakecloud.control.add_fault(service="volume", operation="volume.extend", action="http_error", status=500,
                                message="The backend could not extend the volume")
    ctx = LocalContext()
    with pytest.raises(EngineError, match=r"extending volume .* failed: The backend could not extend the volume"):
        natives.resize_volume(spec.replace(volume_size=5), res, ctx)

    # the data is back where it was: attached to the server, old size
    volume = os_conn.block_storage.get_volume(res.volume_id)
    assert volume.status == "in-use" and volume.size == spec.volume_size
    assert [a["server_id"] for a in volume.attachments] == [res.server_id]
    assert ctx.journal["volume_step"] == "extending"  # where the failed attempt stopped
    assert any("re-attached" in message for _, message in ctx.events)


def test_extend_error_in_use_is_reported(natives, make_spec, fakecloud, os_conn, cloud_state):
    spec = make_spec()
    res = natives.provision(spec, LocalContext())
    fakecloud.control.add_fault(service="volume", operation="volume.extend", action="error_status")
    with pytest.raises(EngineError, match="is in status error_extending"):
        natives.resize_volume(spec.replace(volume_size=5), res, LocalContext())
    # Cinder keeps the attachment and marks the volume; the instance shows this reason
    volume = os_conn.block_storage.get_volume(res.volume_id)
    assert volume.status == "error_extending" and volume.size == spec.volume_size
    natives.delete(spec, res, LocalContext())  # and delete still removes everything
    assert cloud_state.hearth_leftovers() == {}


def test_resize_of_a_stopped_server_keeps_it_stopped(natives, make_spec, os_conn):
    spec = make_spec()
    res = natives.provision(spec, LocalContext())
    server = os_conn.compute.get_server(res.server_id)
    os_conn.compute.stop_server(server)
    os_conn.compute.wait_for_server(server, status="SHUTOFF", interval=0.01, wait=10)

    after = natives.resize_flavor(spec.replace(flavor_id="3"), res, LocalContext())
    server = os_conn.compute.get_server(res.server_id)
    assert (server.status, after.server_status) == ("SHUTOFF", "SHUTOFF")
    assert server.flavor.original_name == os_conn.compute.get_flavor("3").name


TOKEN = "gAAAAAsecretsecretsecretsecret"


def test_failed_resize_recovery_logs_the_clouds_error_scrubbed(natives, fakecloud, os_conn):
    """The recovery after a failed resize records why it could not recover: the cloud's words, no token."""
    fakecloud.control.add_fault(service="compute", operation="server.show", action="http_error", status=500,
                                message=f"boom X-Auth-Token: {TOKEN}")
    ctx = LocalContext()
    natives._recover_resize(os_conn, "some-server", ctx, EngineError("resize of server some-server failed"))
    [(level, message)] = ctx.events
    assert level == "error" and "recovering server some-server failed too: boom" in message, message
    assert message.endswith("(HTTP 500)") and TOKEN not in message and "X-Auth-Token: ***" in message, message


def test_failed_reattach_logs_the_clouds_error_scrubbed(natives, fakecloud, os_conn):
    fakecloud.control.add_fault(service="volume", operation="volume.show", action="http_error", status=403,
                                message=f'boom "password": "hunter2" X-Auth-Token: {TOKEN}')
    ctx = LocalContext()
    natives._reattach_after_failure(os_conn, "some-volume", "some-server", ctx, EngineError("extend failed"))
    [(level, message)] = ctx.events
    assert level == "error" and "after a failed resize failed: reading volume failed: boom" in message, message
    assert TOKEN not in message and "hunter2" not in message and message.endswith("(HTTP 403)"), message


def test_reattach_the_cloud_cannot_do_now_is_left_to_the_retry(natives, fakecloud, os_conn):
    """Cinder answering 500 (transient) is no failure of the re-attach: the resumed resize attaches the volume."""
    fakecloud.control.add_fault(service="volume", operation="volume.show", action="http_error", status=500,
                                message=f'boom "password": "hunter2" X-Auth-Token: {TOKEN}')
    ctx = LocalContext()
    natives._reattach_after_failure(os_conn, "some-volume", "some-server", ctx, EngineError("extend failed"))
    [(level, message)] = ctx.events
    assert level == "warning" and "could not be re-attached yet" in message and "(HTTP 500)" in message, message
    assert TOKEN not in message and "hunter2" not in message, message
