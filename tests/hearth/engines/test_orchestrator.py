"""The orchestrator engine: every change is a Heat stack operation, checked in fakecloud's request log
and in the cloud itself (Nova/Cinder/Neutron through openstacksdk, the stack's template through Heat)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openstack
import pytest
from openstack import exceptions as os_exceptions

from hearth.engines import build_engine, templates
from hearth.engines.base import EngineError, InstanceSpec, LocalContext, Resources, RuleSpec

PG_RULE = RuleSpec("rule-pg", "tcp", 5432, 5432, "10.0.0.0/24")
SSH_RULE = RuleSpec("rule-ssh", "tcp", 22, 22, "192.168.7.0/24")
V6_RULE = RuleSpec("rule-v6", "tcp", 5432, 5432, "2001:db8::/64")
BIGGER_FLAVOR = "3"  # m1.medium (the instances start on m1.small)
DIRECT_SERVICES = ("compute", "volume", "block-storage", "network")


@pytest.fixture
def orchestrator(settings, connections) -> Iterator[Any]:
    built = build_engine("orchestrator", settings, connections)
    yield built
    built.close()


def _writes_by_service(fakecloud: Any, seq: int) -> dict[str, list[str]]:
    """Every write request since `seq`, by service (Keystone logins aside)."""
    found: dict[str, list[str]] = {}
    for r in fakecloud.control.requests(since=seq)["requests"]:
        if r["method"] in ("POST", "PUT", "PATCH", "DELETE") and r["service"] != "identity":
            found.setdefault(r["service"], []).append(f"{r['method']} {r['route']}")
    return found


def _only_stack_writes(fakecloud: Any, seq: int) -> list[str]:
    writes = _writes_by_service(fakecloud, seq)
    assert not any(writes.get(s) for s in DIRECT_SERVICES), writes
    assert set(writes) <= {"orchestration"}, writes
    return writes.get("orchestration", [])


def _stack_template(conn: openstack.connection.Connection, spec: InstanceSpec) -> dict[str, Any]:
    stack = conn.orchestration.find_stack(templates.stack_name(spec.instance_id), ignore_missing=False)
    response = conn.orchestration.get(f"/stacks/{stack.name}/{stack.id}/template")
    assert response.status_code == 200, response.text
    return response.json()


def _stack(conn: openstack.connection.Connection, spec: InstanceSpec) -> Any:
    return conn.orchestration.find_stack(templates.stack_name(spec.instance_id), ignore_missing=False)


def _flavor_name(conn: openstack.connection.Connection, flavor_id: str) -> str:
    return conn.compute.get_flavor(flavor_id).name


def test_every_operation_is_a_stack_operation(orchestrator, make_spec, fakecloud, os_conn, cloud_state):
    spec = make_spec()
    seq = cloud_state.request_seq()
    ctx = LocalContext()
    res = orchestrator.provision(spec, ctx)
    writes = _only_stack_writes(fakecloud, seq)
    assert writes == ["POST /heat-api/v1/{project_id}/stacks"], writes
    stack = _stack(os_conn, spec)
    assert ctx.journal["stack_id"] == res.stack_id == stack.id and stack.status == "CREATE_COMPLETE"
    assert _stack_template(os_conn, spec) == templates.build(spec)
    assert os_conn.compute.get_server(res.server_id).status == "ACTIVE"
    assert cloud_state.ingress_rules(res.secgroup_id) == {("tcp", 5432, 5432, "10.0.0.0/24")}

    # resize flavor: an in-place stack update (same server)
    bigger = spec.replace(flavor_id=BIGGER_FLAVOR)
    seq = cloud_state.request_seq()
    after = orchestrator.resize_flavor(bigger, res, LocalContext())
    assert _only_stack_writes(fakecloud, seq)
    assert after.server_id == res.server_id and after.stack_id == res.stack_id
    assert os_conn.compute.get_server(res.server_id).flavor.original_name == _flavor_name(os_conn, BIGGER_FLAVOR)
    assert _stack_template(os_conn, bigger) == templates.build(bigger)
    assert _stack(os_conn, spec).status == "UPDATE_COMPLETE"

    # resize volume: grows in place, stays attached
    grown = bigger.replace(volume_size=5)
    seq = cloud_state.request_seq()
    after = orchestrator.resize_volume(grown, after, LocalContext())
    assert _only_stack_writes(fakecloud, seq)
    volume = os_conn.block_storage.get_volume(res.volume_id)
    assert after.volume_id == res.volume_id
    assert (volume.size, volume.status, [a["server_id"] for a in volume.attachments]) == (5, "in-use",
                                                                                          [res.server_id])
    assert _stack(os_conn, spec).parameters["volume_size"] in (5, "5")

    # rules: add, change a CIDR, remove; the group keeps its id
    moved = RuleSpec(PG_RULE.id, "tcp", 5432, 5432, "10.20.0.0/16")
    for rules, expected in (
        ((PG_RULE, SSH_RULE), {("tcp", 5432, 5432, "10.0.0.0/24"), ("tcp", 22, 22, "192.168.7.0/24")}),
        ((moved, SSH_RULE, V6_RULE), {("tcp", 5432, 5432, "10.20.0.0/16"), ("tcp", 22, 22, "192.168.7.0/24"),
                                      ("tcp", 5432, 5432, "2001:db8::/64")}),
        ((moved,), {("tcp", 5432, 5432, "10.20.0.0/16")}),
    ):
        desired = grown.replace(rules=rules)
        seq = cloud_state.request_seq()
        after = orchestrator.apply_rules(desired, after, LocalContext())
        assert _only_stack_writes(fakecloud, seq)
        assert after.secgroup_id == res.secgroup_id
        assert cloud_state.ingress_rules(res.secgroup_id) == expected
        assert set(after.rules) == {r.id for r in rules}
        for rule in rules:  # each Hearth rule maps to the Neutron rule Heat made for it
            cloud_rule = os_conn.network.get_security_group_rule(after.rules[rule.id].cloud_id)
            assert cloud_rule.remote_ip_prefix == rule.cidr
        assert _stack_template(os_conn, desired) == templates.build(desired)

    # delete: one stack delete, nothing left (no stack, server, volume, group or rule)
    seq = cloud_state.request_seq()
    orchestrator.delete(desired, after, LocalContext())
    writes = _only_stack_writes(fakecloud, seq)
    assert writes and all(w.startswith("DELETE") for w in writes), writes
    assert cloud_state.hearth_leftovers() == {}
    assert fakecloud.control.inventory("demo").get("stacks") == []
    with pytest.raises(os_exceptions.NotFoundException):
        os_conn.compute.get_server(res.server_id)


def test_inventory_lists_the_stack(orchestrator, make_spec, fakecloud, cloud_state):
    spec = make_spec()
    res = orchestrator.provision(spec, LocalContext())
    stacks = fakecloud.control.inventory("demo")["stacks"]
    assert [(s["id"], s["stack_name"]) for s in stacks] == [(res.stack_id, templates.stack_name(spec.instance_id))]
    assert set(cloud_state.hearth_leftovers()) >= {"servers", "volumes", "security_groups", "stacks"}
    orchestrator.delete(spec, res, LocalContext())
    assert cloud_state.hearth_leftovers() == {}


def _contract_specs(make_spec, os_conn) -> list[InstanceSpec]:
    """The specs the contract suite realises, plus the port (network) and availability-zone variants."""
    spec = make_spec()
    moved = RuleSpec(PG_RULE.id, "tcp", 5432, 5432, "10.20.0.0/16")
    network = next(iter(os_conn.network.networks()), None)
    variants = [
        spec,
        spec.replace(flavor_id=BIGGER_FLAVOR),
        spec.replace(volume_size=5),
        spec.replace(flavor_id=BIGGER_FLAVOR, volume_size=4),
        spec.replace(rules=(PG_RULE, SSH_RULE)),
        spec.replace(rules=(moved, SSH_RULE)),
        spec.replace(rules=(moved,)),
        spec.replace(rules=(PG_RULE, V6_RULE)),
        spec.replace(rules=()),
        spec.replace(rules=(SSH_RULE,), flavor_id=BIGGER_FLAVOR, volume_size=5),
        spec.replace(availability_zone="nova"),
    ]
    if network is not None:
        variants.append(spec.replace(network_id=network.id))
    return variants


def test_every_contract_template_validates(make_spec, os_conn, fakecloud, cloud_state):
    seq = cloud_state.request_seq()
    for spec in _contract_specs(make_spec, os_conn):
        result = os_conn.orchestration.validate_template(templates.build(spec))
        assert set(result.parameters) == {"flavor", "image", "volume_size", "admin_pass", "user_data"}, result
        # and the YAML rendering is the same template
        response = os_conn.orchestration.post("/validate", json={"template": templates.render(spec),
                                                                 "parameters": templates.parameters(spec)})
        assert response.status_code == 200, response.text
    assert cloud_state.writes_since(seq) == []


def test_server_fault_during_create_carries_novas_reason_and_delete_cleans_up(
        orchestrator, make_spec, fakecloud, os_conn, cloud_state):
    fakecloud.control.add_fault(service="compute", operation="server.create", action="error_status",
                                message="No valid host was found.")
    spec = make_spec()
    ctx = LocalContext()
    seq = cloud_state.request_seq()
    with pytest.raises(EngineError, match="No valid host was found") as failure:
        orchestrator.provision(spec, ctx)
    assert "CREATE_FAILED" in str(failure.value)
    _only_stack_writes(fakecloud, seq)
    # rollback is off for creates: the failed stack keeps its reason for describe, and the journal knows it
    stack = _stack(os_conn, spec)
    assert ctx.journal["stack_id"] == stack.id
    assert stack.status == "CREATE_FAILED" and "No valid host was found" in stack.status_reason
    view = orchestrator.describe(spec, Resources(stack_id=stack.id))
    assert view.stack["status"] == "CREATE_FAILED" and "No valid host" in view.stack["reason"]
    assert view.server is not None and view.server["status"] == "ERROR"

    seq = cloud_state.request_seq()
    orchestrator.delete(spec, Resources(stack_id=stack.id), ctx)
    _only_stack_writes(fakecloud, seq)
    assert cloud_state.hearth_leftovers() == {}


def test_failed_resize_rolls_back_to_the_recorded_state(orchestrator, make_spec, fakecloud, os_conn, cloud_state):
    spec = make_spec()
    res = orchestrator.provision(spec, LocalContext())
    fakecloud.control.add_fault(service="compute", operation="server.resize", action="error_status",
                                message="No valid host was found. There are not enough hosts available.")
    seq = cloud_state.request_seq()
    ctx = LocalContext()
    with pytest.raises(EngineError, match="No valid host was found") as failure:
        orchestrator.resize_flavor(spec.replace(flavor_id=BIGGER_FLAVOR), res, ctx)
    assert "rolled the stack back" in str(failure.value)
    assert ctx.events and ctx.events[-1][0] == "error"
    _only_stack_writes(fakecloud, seq)

    # the stack and the cloud are back at the spec Hearth still records
    stack = _stack(os_conn, spec)
    assert stack.status == "ROLLBACK_COMPLETE"
    assert _stack_template(os_conn, spec) == templates.build(spec)
    assert {k: str(v) for k, v in stack.parameters.items()
            if not k.startswith("OS::") and k not in templates.HIDDEN_PARAMETERS} == {
        k: str(v) for k, v in templates.parameters(spec).items()}
    server = os_conn.compute.get_server(res.server_id)
    assert server.flavor.original_name == _flavor_name(os_conn, spec.flavor_id)
    volume = os_conn.block_storage.get_volume(res.volume_id)
    assert volume.size == spec.volume_size and [a["server_id"] for a in volume.attachments] == [res.server_id]
    assert cloud_state.ingress_rules(res.secgroup_id) == {("tcp", 5432, 5432, "10.0.0.0/24")}

    orchestrator.delete(spec, res, LocalContext())
    assert cloud_state.hearth_leftovers() == {}


def test_shrinking_through_the_engine_is_refused_before_heat(orchestrator, make_spec, fakecloud, os_conn,
                                                            cloud_state):
    spec = make_spec(volume_size=3)
    res = orchestrator.provision(spec, LocalContext())
    seq = cloud_state.request_seq()
    with pytest.raises(EngineError, match="volumes can only grow"):
        orchestrator.resize_volume(spec.replace(volume_size=2), res, LocalContext())
    assert _writes_by_service(fakecloud, seq) == {}
    assert os_conn.block_storage.get_volume(res.volume_id).size == 3
    assert _stack_template(os_conn, spec) == templates.build(spec)
    orchestrator.delete(spec, res, LocalContext())
    assert cloud_state.hearth_leftovers() == {}


def test_a_resumed_provision_reuses_the_stack(orchestrator, make_spec, fakecloud, os_conn, cloud_state):
    spec = make_spec()
    first = LocalContext()
    res = orchestrator.provision(spec, first)
    for journal in (dict(first.journal), {}):  # resumed from the journal, or found by name alone
        seq = cloud_state.request_seq()
        again = orchestrator.provision(spec, LocalContext(journal))
        assert _writes_by_service(fakecloud, seq) == {}
        assert (again.stack_id, again.server_id, again.volume_id, again.secgroup_id) == (
            res.stack_id, res.server_id, res.volume_id, res.secgroup_id)
        assert again.rules.keys() == res.rules.keys()
    assert len(fakecloud.control.inventory("demo")["stacks"]) == 1
    orchestrator.delete(spec, res, LocalContext())
    assert cloud_state.hearth_leftovers() == {}


def test_describe_shows_the_stack_and_the_real_resources(orchestrator, make_spec, os_conn):
    spec = make_spec()
    res = orchestrator.provision(spec, LocalContext())
    view = orchestrator.describe(spec, Resources())  # found by name, ids from the stack's outputs
    assert view.stack["id"] == res.stack_id and view.stack["status"] == "CREATE_COMPLETE"
    assert view.server["id"] == res.server_id and view.server["flavor_id"] == spec.flavor_id
    assert view.volume["id"] == res.volume_id and view.volume["attached_to"] == [res.server_id]
    assert view.security_group["id"] == res.secgroup_id
    orchestrator.delete(spec, res, LocalContext())
    gone = orchestrator.describe(spec, res)
    assert (gone.stack, gone.server, gone.volume, gone.security_group) == (None, None, None, None)


def test_plans_come_from_heat_previews_and_write_nothing(orchestrator, make_spec, fakecloud, os_conn,
                                                         cloud_state):
    spec = make_spec()
    seq = cloud_state.request_seq()
    provision = orchestrator.plan("provision", spec, Resources())
    assert _writes_by_service(fakecloud, seq) == {"orchestration": ["POST /heat-api/v1/{project_id}/stacks/preview"]}
    assert cloud_state.writes_since(seq) == []  # the create preview changes nothing
    assert fakecloud.control.inventory("demo")["stacks"] == []
    assert provision[0].action == "stack create"
    assert {s.action for s in provision[1:]} == {"create"} and all(s.detail == "Heat create preview"
                                                                   for s in provision[1:])
    assert {s.target for s in provision[1:]} >= {f"{name} ({kind})" for name, kind in (
        (templates.SERVER, "OS::Nova::Server"), (templates.DATA_VOLUME, "OS::Cinder::Volume"),
        (templates.SECURITY_GROUP, "OS::Neutron::SecurityGroup"),
        (templates.ATTACHMENT, "OS::Cinder::VolumeAttachment"))}

    res = orchestrator.provision(spec, LocalContext())
    seq = cloud_state.request_seq()
    by_kind = {
        "resize_flavor": orchestrator.plan("resize_flavor", spec.replace(flavor_id=BIGGER_FLAVOR), res),
        "resize_volume": orchestrator.plan("resize_volume", spec.replace(volume_size=5), res),
        "apply_rules": orchestrator.plan("apply_rules", spec.replace(rules=(SSH_RULE,)), res),
        "unchanged": orchestrator.plan("apply_rules", spec, res),
        "delete": orchestrator.plan("delete", spec, res),
    }
    assert cloud_state.writes_since(seq) == []  # previews use POST/PUT but change nothing
    assert {w for ws in _writes_by_service(fakecloud, seq).values() for w in ws} <= {
        "PUT /heat-api/v1/{project_id}/stacks/{stack_name}/{stack_id}/preview"}
    assert _stack(os_conn, spec).status == "CREATE_COMPLETE"
    assert _stack_template(os_conn, spec) == templates.build(spec)

    def actions(kind: str) -> dict[str, str]:
        return {s.target.split(" ")[0]: s.action for s in by_kind[kind][1:]}

    assert by_kind["resize_flavor"][0].action == "stack update"
    assert actions("resize_flavor") == {templates.SERVER: "update in place"}  # flavor_update_policy RESIZE
    assert actions("resize_volume") == {templates.DATA_VOLUME: "update in place"}
    assert actions("apply_rules") == {templates.SECURITY_GROUP: "update in place"}
    assert [s.action for s in by_kind["unchanged"]] == ["no change"]
    assert by_kind["delete"][0].action == "stack delete"
    assert {s.target.split(" ")[0] for s in by_kind["delete"][1:]} >= {templates.SERVER, templates.DATA_VOLUME}

    orchestrator.delete(spec, res, LocalContext())
    assert cloud_state.hearth_leftovers() == {}


def test_update_of_an_instance_without_a_stack_is_refused(orchestrator, make_spec, fakecloud, cloud_state):
    spec = make_spec()
    seq = cloud_state.request_seq()
    with pytest.raises(EngineError, match="has no Heat stack"):
        orchestrator.resize_flavor(spec.replace(flavor_id=BIGGER_FLAVOR), Resources(), LocalContext())
    assert _writes_by_service(fakecloud, seq) == {}


def test_registered_by_name(settings, connections):
    from hearth.engines import available

    assert "orchestrator" in available()
    engine = build_engine("orchestrator", settings, connections)
    assert engine.name == "orchestrator"


def test_a_stack_timeout_names_the_resource_that_never_finished(orchestrator, make_spec, fakecloud, os_conn,
                                                                cloud_state):
    """Heat's own "Timed out" says nothing of what hung: the error adds the failing resource's reason."""
    from concurrent.futures import ThreadPoolExecutor

    fakecloud.control.add_fault(service="compute", operation="server.create", action="stuck")
    spec = make_spec()
    ctx = LocalContext()
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(orchestrator.provision, spec, ctx)
        stack = None
        while stack is None or stack.status != "CREATE_IN_PROGRESS" or not any(
                r.name == templates.SERVER and r.physical_resource_id for r in os_conn.orchestration.resources(stack)):
            stack = next(os_conn.orchestration.stacks(name=templates.stack_name(spec.instance_id)), None)
            assert not future.done(), future.exception()
        fakecloud.control.advance(61 * orchestrator._timeout_mins)  # past the stack's timeout_mins
        with pytest.raises(EngineError) as failure:
            future.result(timeout=30)
    message = str(failure.value)
    assert "CREATE_FAILED" in message and "Timed out" in message and "server" in message, message
    orchestrator.delete(spec, Resources(), ctx)
    assert cloud_state.hearth_leftovers() == {}


def test_retrying_a_failed_provision_lets_heat_replace_what_failed(orchestrator, make_spec, fakecloud, os_conn,
                                                                    cloud_state):
    # Heat itself re-creates a server in ERROR 5 times (action_retry_limit): the fault outlasts those 6 boots
    fakecloud.control.add_fault(service="compute", operation="server.create", action="error_status",
                                message="No valid host was found.", count=6)
    spec = make_spec()
    ctx = LocalContext()
    with pytest.raises(EngineError, match="No valid host"):
        orchestrator.provision(spec, ctx)
    failed_server = next(r.physical_resource_id for r in os_conn.orchestration.resources(_stack(os_conn, spec))
                         if r.name == templates.SERVER)

    seq = cloud_state.request_seq()
    res = orchestrator.provision(spec, LocalContext(ctx.journal))  # the task manager retries the operation
    assert _only_stack_writes(fakecloud, seq) == ["PUT /heat-api/v1/{project_id}/stacks/{stack_name}/{stack_id}"]
    assert res.stack_id == ctx.journal["stack_id"] and res.server_id != failed_server
    assert os_conn.compute.get_server(res.server_id).status == "ACTIVE"
    with pytest.raises(openstack.exceptions.NotFoundException):  # Heat removed the failed one
        os_conn.compute.find_server(failed_server, ignore_missing=False)
    assert len(fakecloud.control.inventory("demo")["stacks"]) == 1
    orchestrator.delete(spec, res, LocalContext())
    assert cloud_state.hearth_leftovers() == {}
