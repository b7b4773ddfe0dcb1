"""Heat stacks whose resources are real fakecloud servers, volumes, attachments and security groups."""

from __future__ import annotations

import copy
from typing import Any

import openstack
import pytest

WAIT = {"interval": 0.05, "wait": 15}


def full_template(flavor: str = "m1.tiny", size: int = 1, cidr: str = "10.0.0.0/8",
                  policy: str = "RESIZE") -> dict[str, Any]:
    return {
        "heat_template_version": "2021-04-16",
        "parameters": {"flavor": {"type": "string", "default": flavor}},
        "resources": {
            "sg": {"type": "OS::Neutron::SecurityGroup", "properties": {
                "description": "stack group",
                "rules": [{"protocol": "tcp", "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": cidr},
                          {"protocol": "icmp"}]}},
            "server": {"type": "OS::Nova::Server", "properties": {
                "flavor": {"get_param": "flavor"}, "image": "cirros-0.6.2", "flavor_update_policy": policy,
                "security_groups": [{"get_resource": "sg"}], "metadata": {"role": "db"}}},
            "vol": {"type": "OS::Cinder::Volume", "properties": {"size": size, "name": "data"}},
            "att": {"type": "OS::Cinder::VolumeAttachment", "properties": {
                "instance_uuid": {"get_resource": "server"}, "volume_id": {"get_resource": "vol"}}},
        },
        "outputs": {
            "ip": {"value": {"get_attr": ["server", "first_address"]}},
            "server_id": {"value": {"get_resource": "server"}},
        },
    }


def create(conn: openstack.connection.Connection, name: str, template: dict[str, Any], **kwargs: Any) -> Any:
    stack = conn.orchestration.create_stack(name=name, template=copy.deepcopy(template), **kwargs)
    return stack


def wait(conn: openstack.connection.Connection, stack: Any, status: str) -> Any:
    action = status.split("_")[0]
    failures = [f"{action}_FAILED"] if not status.endswith("FAILED") else []
    return conn.orchestration.wait_for_status(stack, status, failures=failures, **WAIT)


def physical(conn: openstack.connection.Connection, stack: Any) -> dict[str, str]:
    return {r.name: r.physical_resource_id for r in conn.orchestration.resources(stack)}


def resource(conn: openstack.connection.Connection, stack: Any, name: str) -> Any:
    return next(r for r in conn.orchestration.resources(stack) if r.name == name)


def rule_set(conn: openstack.connection.Connection, group_id: str) -> set[tuple]:
    return {(r.direction, r.ether_type, r.protocol, r.port_range_min, r.port_range_max, r.remote_ip_prefix)
            for r in conn.network.security_group_rules(security_group_id=group_id)}


def test_stack_resources_are_real_cloud_resources(os_conn):
    stack = wait(os_conn, create(os_conn, "app", full_template()), "CREATE_COMPLETE")
    ids = physical(os_conn, stack)
    server = os_conn.compute.get_server(ids["server"])
    assert server.status == "ACTIVE"
    assert server.flavor["original_name"] == "m1.tiny"
    assert server.name.startswith("app-server-")
    assert server.metadata == {"role": "db"}
    volume = os_conn.block_storage.get_volume(ids["vol"])
    assert volume.status == "in-use" and volume.size == 1 and volume.name == "data"
    assert [a["server_id"] for a in volume.attachments] == [ids["server"]]
    group = os_conn.network.get_security_group(ids["sg"])
    assert group.description == "stack group"
    assert [g["name"] for g in server.security_groups] == [group.name]
    assert ("ingress", "IPv4", "tcp", 22, 22, "10.0.0.0/8") in rule_set(os_conn, group.id)
    assert ("ingress", "IPv4", "icmp", None, None, None) in rule_set(os_conn, group.id)
    outputs = {o["output_key"]: o["output_value"] for o in stack.outputs}
    assert outputs["server_id"] == server.id
    assert outputs["ip"] == next(iter(server.addresses.values()))[0]["addr"]


def test_updates_in_place_keep_ids(os_conn):
    stack = wait(os_conn, create(os_conn, "app", full_template()), "CREATE_COMPLETE")
    before = physical(os_conn, stack)
    os_conn.orchestration.update_stack(stack, template=full_template("m1.small", 2, "192.168.0.0/16"))
    stack = wait(os_conn, stack, "UPDATE_COMPLETE")
    after = physical(os_conn, stack)
    assert after == before
    server = os_conn.compute.get_server(after["server"])
    assert server.status == "ACTIVE"
    assert server.flavor["original_name"] == "m1.small"
    volume = os_conn.block_storage.get_volume(after["vol"])
    assert volume.size == 2 and volume.status == "in-use"
    rules = rule_set(os_conn, after["sg"])
    assert ("ingress", "IPv4", "tcp", 22, 22, "192.168.0.0/16") in rules
    assert ("ingress", "IPv4", "tcp", 22, 22, "10.0.0.0/8") not in rules
    assert ("ingress", "IPv4", "icmp", None, None, None) in rules


def test_shrinking_a_volume_fails_the_update(os_conn):
    stack = wait(os_conn, create(os_conn, "app", full_template(size=2)), "CREATE_COMPLETE")
    volume_id = physical(os_conn, stack)["vol"]
    os_conn.orchestration.update_stack(stack, template=full_template(size=1))
    stack = wait(os_conn, stack, "UPDATE_FAILED")
    assert stack.status_reason == ("Resource UPDATE failed: NotSupported: resources.vol: Shrinking volume is not "
                                   "supported.")
    assert resource(os_conn, stack, "vol").status == "UPDATE_FAILED"
    assert os_conn.block_storage.get_volume(volume_id).size == 2


def test_replace_policy_gives_a_new_server(os_conn):
    stack = wait(os_conn, create(os_conn, "app", full_template(policy="REPLACE")), "CREATE_COMPLETE")
    old = physical(os_conn, stack)
    os_conn.orchestration.update_stack(stack, template=full_template("m1.small", policy="REPLACE"))
    stack = wait(os_conn, stack, "UPDATE_COMPLETE")
    new = physical(os_conn, stack)
    assert new["server"] != old["server"]
    assert new["vol"] == old["vol"]
    with pytest.raises(openstack.exceptions.NotFoundException):
        os_conn.compute.find_server(old["server"], ignore_missing=False)
    server = os_conn.compute.get_server(new["server"])
    assert server.flavor["original_name"] == "m1.small"
    volume = os_conn.block_storage.get_volume(new["vol"])
    assert [a["server_id"] for a in volume.attachments] == [new["server"]]


def test_rule_resource_change_replaces_the_rule(os_conn):
    def template(cidr: str) -> dict[str, Any]:
        return {"heat_template_version": "2018-08-31", "resources": {
            "sg": {"type": "OS::Neutron::SecurityGroup"},
            "rule": {"type": "OS::Neutron::SecurityGroupRule", "properties": {
                "security_group": {"get_resource": "sg"}, "port_range_min": 80, "port_range_max": 80,
                "remote_ip_prefix": cidr}}}}

    stack = wait(os_conn, create(os_conn, "rules", template("10.0.0.0/8")), "CREATE_COMPLETE")
    old = physical(os_conn, stack)
    os_conn.orchestration.update_stack(stack, template=template("172.16.0.0/12"))
    stack = wait(os_conn, stack, "UPDATE_COMPLETE")
    new = physical(os_conn, stack)
    assert new["sg"] == old["sg"] and new["rule"] != old["rule"]
    rules = {r.id: r.remote_ip_prefix for r in os_conn.network.security_group_rules(security_group_id=new["sg"])}
    assert rules[new["rule"]] == "172.16.0.0/12" and old["rule"] not in rules


def test_failed_create_rolls_back_when_enabled(fakecloud, os_conn):
    fakecloud.control.add_fault(service="compute", operation="server.create", action="error_status",
                                message="No valid host was found.")
    stack = create(os_conn, "app", full_template(), is_rollback_disabled=False)
    stack = wait(os_conn, stack, "ROLLBACK_COMPLETE")
    assert stack.status_reason == "Stack ROLLBACK completed successfully"
    assert list(os_conn.compute.servers()) == []
    assert list(os_conn.block_storage.volumes()) == []
    assert [g.name for g in os_conn.network.security_groups()] == ["default"]
    events = os_conn.orchestration.get(f"/stacks/app/{stack.id}/events").json()["events"]
    statuses = [e["resource_status"] for e in events if e["resource_name"] == "app"]
    assert statuses == ["CREATE_IN_PROGRESS", "CREATE_FAILED", "ROLLBACK_IN_PROGRESS", "ROLLBACK_COMPLETE"]


def test_failed_create_without_rollback_keeps_the_reason(fakecloud, os_conn):
    fakecloud.control.add_fault(service="compute", operation="server.create", action="error_status",
                                message="No valid host was found.")
    stack = wait(os_conn, create(os_conn, "app", full_template()), "CREATE_FAILED")
    expected = ('ResourceInError: resources.server: Went to status ERROR due to "Message: No valid host was found., '
                'Code: 500"')
    assert stack.status_reason == f"Resource CREATE failed: {expected}"
    server = resource(os_conn, stack, "server")
    assert server.status == "CREATE_FAILED" and server.status_reason == expected
    assert os_conn.compute.get_server(server.physical_resource_id).status == "ERROR"
    assert resource(os_conn, stack, "att").status == "INIT_COMPLETE"
    os_conn.orchestration.delete_stack(stack)
    os_conn.orchestration.wait_for_delete(stack, **WAIT)
    assert list(os_conn.compute.servers()) == []
    assert list(os_conn.block_storage.volumes()) == []


def test_delete_leaves_nothing_and_stack_stays_visible_by_id(os_conn):
    stack = wait(os_conn, create(os_conn, "app", full_template()), "CREATE_COMPLETE")
    ids = physical(os_conn, stack)
    os_conn.orchestration.delete_stack(stack)
    os_conn.orchestration.wait_for_delete(stack, **WAIT)
    with pytest.raises(openstack.exceptions.NotFoundException):
        os_conn.compute.find_server(ids["server"], ignore_missing=False)
    with pytest.raises(openstack.exceptions.NotFoundException):
        os_conn.block_storage.find_volume(ids["vol"], ignore_missing=False)
    with pytest.raises(openstack.exceptions.NotFoundException):
        os_conn.network.find_security_group(ids["sg"], ignore_missing=False)
    assert list(os_conn.orchestration.stacks()) == []
    with pytest.raises(openstack.exceptions.NotFoundException):
        os_conn.orchestration.get_stack(stack.id)  # the SDK turns DELETE_COMPLETE into not-found


def test_timeout_fails_a_stuck_create(fakecloud, os_conn):
    fakecloud.control.add_fault(service="compute", operation="server.create", action="stuck")
    fakecloud.control.freeze()
    try:
        stack = create(os_conn, "slow", full_template(), timeout_mins=1)
        fakecloud.control.advance(61)
        stack = os_conn.orchestration.get_stack(stack.id)
    finally:
        fakecloud.control.freeze(False)
    assert stack.status == "CREATE_FAILED" and stack.status_reason == "Timed out"


def test_update_rollback_restores_previous_template(fakecloud, os_conn):
    template = {"heat_template_version": "2018-08-31", "resources": {
        "vol": {"type": "OS::Cinder::Volume", "properties": {"size": 1}}}}
    stack = wait(os_conn, create(os_conn, "vols", template, is_rollback_disabled=False), "CREATE_COMPLETE")
    fakecloud.control.add_fault(service="volume", operation="volume.create", action="error_status")
    bigger = copy.deepcopy(template)
    bigger["resources"]["extra"] = {"type": "OS::Cinder::Volume", "properties": {"size": 1}}
    os_conn.orchestration.update_stack(stack, template=bigger)
    stack = wait(os_conn, stack, "ROLLBACK_COMPLETE")
    assert set(physical(os_conn, stack)) == {"vol"}
    assert [v.status for v in os_conn.block_storage.volumes()] == ["available"]


def test_stacks_survive_a_restart(tmp_path):
    from openstack_fakecloud.testing import running_cloud

    state = tmp_path / "state.json"
    with running_cloud(state_file=state) as fc:
        conn = fc.connect()
        stack = wait(conn, create(conn, "kept", full_template()), "CREATE_COMPLETE")
        ids = physical(conn, stack)
    with running_cloud(state_file=state) as fc:
        conn = fc.connect()
        stack = conn.orchestration.find_stack("kept", ignore_missing=False)
        assert stack.status == "CREATE_COMPLETE"
        assert physical(conn, stack) == ids
        assert conn.compute.get_server(ids["server"]).status == "ACTIVE"
        conn.orchestration.update_stack(stack, template=full_template(size=2))
        stack = wait(conn, stack, "UPDATE_COMPLETE")
        assert conn.block_storage.get_volume(ids["vol"]).size == 2
        conn.orchestration.delete_stack(stack)
        conn.orchestration.wait_for_delete(stack, **WAIT)
        assert list(conn.compute.servers()) == []
