"""Heat's stack lifecycle beyond create/update/delete: preview, check, cancel, abandon/adopt, export,
mark-unhealthy, and OS::Neutron::Port with servers bound to it. Outcomes are read back from the real
fakecloud servers, volumes, ports and rules (openstacksdk), or the admin inventory."""

from __future__ import annotations

import copy
import ipaddress
import json
from typing import Any

import openstack
import pytest

WAIT = {"interval": 0.05, "wait": 15}


def template(flavor: str = "m1.tiny", size: int = 1, cidr: str = "10.0.0.0/8") -> dict[str, Any]:
    return {
        "heat_template_version": "2021-04-16",
        "parameters": {"flavor": {"type": "string", "default": flavor}},
        "resources": {
            "sg": {"type": "OS::Neutron::SecurityGroup", "properties": {
                "rules": [{"protocol": "tcp", "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": cidr}]}},
            "server": {"type": "OS::Nova::Server", "properties": {
                "flavor": {"get_param": "flavor"}, "image": "cirros-0.6.2",
                "security_groups": [{"get_resource": "sg"}]}},
            "vol": {"type": "OS::Cinder::Volume", "properties": {"size": size}},
            "att": {"type": "OS::Cinder::VolumeAttachment", "properties": {
                "instance_uuid": {"get_resource": "server"}, "volume_id": {"get_resource": "vol"}}},
        },
        "outputs": {"server_id": {"value": {"get_resource": "server"}}},
    }


def create(conn: openstack.connection.Connection, name: str, tmpl: dict[str, Any], **kwargs: Any) -> Any:
    stack = conn.orchestration.create_stack(name=name, template=copy.deepcopy(tmpl), **kwargs)
    return conn.orchestration.wait_for_status(stack, "CREATE_COMPLETE", failures=["CREATE_FAILED"], **WAIT)


def wait(conn: openstack.connection.Connection, stack: Any, status: str) -> Any:
    action = status.split("_")[0]
    failures = [] if status.endswith("FAILED") else [f"{action}_FAILED"]
    return conn.orchestration.wait_for_status(stack, status, failures=failures, **WAIT)


def physical(conn: openstack.connection.Connection, stack: Any) -> dict[str, str]:
    return {r.name: r.physical_resource_id for r in conn.orchestration.resources(stack)}


def statuses(conn: openstack.connection.Connection, stack: Any) -> dict[str, str]:
    return {r.name: r.status for r in conn.orchestration.resources(stack)}


def cloud_state(fakecloud: Any) -> dict[str, Any]:
    inventory = fakecloud.control.inventory()
    inventory.pop("stacks", None)
    return inventory


# preview ------------------------------------------------------------------------------------------------
def test_create_preview_lists_resources_and_creates_nothing(fakecloud, os_conn, heat):
    before = cloud_state(fakecloud)
    preview = os_conn.orchestration.create_stack(preview=True, name="pre", template=template())
    assert preview.name == "pre" and preview.id == "None"
    response = heat.call("POST", "/stacks/preview", {"stack_name": "pre", "template": template()})
    assert response.status_code == 200
    resources = {r["resource_name"]: r for r in response.json()["stack"]["resources"]}
    assert set(resources) == {"sg", "server", "vol", "att"}
    assert resources["server"]["resource_type"] == "OS::Nova::Server"
    assert (resources["server"]["resource_action"], resources["server"]["resource_status"]) == ("INIT", "COMPLETE")
    assert resources["server"]["properties"]["flavor"] == "m1.tiny"
    assert resources["vol"]["required_by"] == ["att"]
    assert cloud_state(fakecloud) == before
    assert list(os_conn.orchestration.stacks()) == []
    bad = heat.call("POST", "/stacks/preview", {"stack_name": "pre", "template": {
        "heat_template_version": "2021-04-16", "resources": {"x": {"type": "OS::Nova::Server"}}}})
    assert bad.status_code == 400


def test_update_preview_uses_the_update_decision_and_changes_nothing(fakecloud, os_conn, heat):
    stack = create(os_conn, "app", template())
    ids = physical(os_conn, stack)
    new = template("m1.small", size=2)
    new["resources"]["extra"] = {"type": "OS::Cinder::Volume", "properties": {"size": 1}}
    del new["resources"]["att"]
    new["resources"]["server"]["properties"]["key_name"] = None  # unchanged (None on both sides)
    new["resources"]["sg"]["properties"]["name"] = "renamed"
    before = cloud_state(fakecloud)
    seq = fakecloud.control.requests(log=False)["seq"]
    response = heat.call("PUT", f"/stacks/app/{stack.id}/preview", {"template": new})
    assert response.status_code == 200, response.text
    changes = response.json()["resource_changes"]
    names = {k: sorted(r["resource_name"] for r in v) for k, v in changes.items()}
    assert names == {"added": ["extra"], "deleted": ["att"], "replaced": [], "unchanged": [],
                     "updated": ["server", "sg", "vol"]}
    updated = {r["resource_name"]: r["physical_resource_id"] for r in changes["updated"]}
    assert updated["server"] == ids["server"]
    # a non-updatable property replaces; the server that refers to the group then changes too
    replacing = template()
    replacing["resources"]["server"]["properties"]["availability_zone"] = "nova"
    changes = os_conn.orchestration.put(f"/stacks/app/{stack.id}/preview", json={"template": replacing}).json()
    names = {k: sorted(r["resource_name"] for r in v) for k, v in changes["resource_changes"].items()}
    assert names["replaced"] == ["server"] and names["updated"] == ["att"]
    assert names["unchanged"] == ["sg", "vol"]
    # nothing moved: same cloud, the only requests were Heat's
    assert cloud_state(fakecloud) == before
    services = {r["service"] for r in fakecloud.control.requests(since=seq)["requests"]}
    assert services <= {"orchestration", "identity"}
    assert physical(os_conn, stack) == ids
    assert os_conn.orchestration.get_stack(stack.id).status == "CREATE_COMPLETE"
    # and the real update does what the preview said
    os_conn.orchestration.update_stack(stack, template=replacing)
    wait(os_conn, stack, "UPDATE_COMPLETE")
    after = physical(os_conn, stack)
    assert after["server"] != ids["server"] and after["vol"] == ids["vol"]
    assert statuses(os_conn, stack)["att"] == "UPDATE_COMPLETE"  # re-attached in place, not replaced
    volume = os_conn.block_storage.get_volume(ids["vol"])
    assert [a["server_id"] for a in volume.attachments] == [after["server"]]


# check, cancel, mark unhealthy ----------------------------------------------------------------------------
def test_check_completes_then_fails_when_a_resource_is_gone(os_conn):
    stack = create(os_conn, "app", template())
    os_conn.orchestration.check_stack(stack)
    stack = wait(os_conn, stack, "CHECK_COMPLETE")
    assert set(statuses(os_conn, stack).values()) == {"CHECK_COMPLETE"}
    server_id = physical(os_conn, stack)["server"]
    server = os_conn.compute.get_server(server_id)
    os_conn.compute.delete_server(server)
    os_conn.compute.wait_for_delete(server, **WAIT)
    os_conn.orchestration.check_stack(stack)
    stack = wait(os_conn, stack, "CHECK_FAILED")
    assert stack.status_reason.startswith("Resource CHECK failed: NotFound: resources.server:")
    assert statuses(os_conn, stack)["server"] == "CHECK_FAILED"
    assert statuses(os_conn, stack)["vol"] == "CHECK_COMPLETE"  # every resource is checked
    # the next update (same template: the SDK would leave it out if unchanged on its object) replaces it
    os_conn.orchestration.update_stack(stack.id, template=template())
    wait(os_conn, stack, "UPDATE_COMPLETE")
    new_id = physical(os_conn, stack)["server"]
    assert new_id != server_id and os_conn.compute.get_server(new_id).status == "ACTIVE"


def test_converging_update_undoes_what_changed_behind_heat(os_conn, heat):
    """Heat's `converge` flag (observe reality): an update with the same template resizes a server resized in
    Nova back, deletes a rule added in Neutron and restores one deleted there; without the flag it does not."""
    stack = create(os_conn, "app", template(cidr="10.1.0.0/16"))
    ids = physical(os_conn, stack)
    os_conn.compute.resize_server(ids["server"], os_conn.compute.find_flavor("m1.small", ignore_missing=False).id)
    os_conn.compute.wait_for_server(os_conn.compute.get_server(ids["server"]), status="VERIFY_RESIZE", **WAIT)
    os_conn.compute.confirm_server_resize(ids["server"])
    os_conn.compute.wait_for_server(os_conn.compute.get_server(ids["server"]), status="ACTIVE", **WAIT)
    ingress = [r for r in os_conn.network.security_group_rules(security_group_id=ids["sg"])
               if r.direction == "ingress"]
    os_conn.network.delete_security_group_rule(ingress[0])
    os_conn.network.create_security_group_rule(security_group_id=ids["sg"], direction="ingress", protocol="tcp",
                                               port_range_min=5432, port_range_max=5432,
                                               remote_ip_prefix="0.0.0.0/0")

    def cloud() -> tuple[str, list[tuple[Any, Any]]]:
        flavor = os_conn.compute.get_server(ids["server"]).flavor["original_name"]
        rules = sorted((r.port_range_min, r.remote_ip_prefix)
                       for r in os_conn.network.security_group_rules(security_group_id=ids["sg"])
                       if r.direction == "ingress")
        return flavor, rules

    drifted = ("m1.small", [(5432, "0.0.0.0/0")])
    heat.ok("PUT", f"/stacks/app/{stack.id}", {"template": template(cidr="10.1.0.0/16")}, status=202)
    wait(os_conn, stack, "UPDATE_COMPLETE")
    assert cloud() == drifted  # a plain update compares templates only
    heat.ok("PUT", f"/stacks/app/{stack.id}", {"template": template(cidr="10.1.0.0/16"), "converge": True},
            status=202)
    wait(os_conn, stack, "UPDATE_COMPLETE")
    assert cloud() == ("m1.tiny", [(22, "10.1.0.0/16")])
    assert physical(os_conn, stack) == ids  # converged in place: nothing replaced


def test_check_fails_on_a_server_in_error(fakecloud, os_conn, heat):
    stack = create(os_conn, "app", template())
    server_id = physical(os_conn, stack)["server"]
    fakecloud.cloud.compute.servers[server_id].vm_state = "error"  # a hypervisor failure behind Heat's back
    response = heat.call("POST", f"/stacks/app/{stack.id}/actions", {"check": None})
    assert response.status_code == 200 and response.content == b""
    stack = wait(os_conn, stack, "CHECK_FAILED")
    assert stack.status_reason == ("Resource CHECK failed: Error: resources.server: 'status': expected 'ACTIVE', "
                                   "got 'ERROR'")


def test_cancel_update_rolls_back(fakecloud, os_conn, heat):
    stack = create(os_conn, "app", template())
    ids = physical(os_conn, stack)
    assert heat.call("POST", f"/stacks/app/{stack.id}/actions", {"cancel_update": None}).status_code == 400
    bigger = template()
    bigger["resources"]["second"] = {"type": "OS::Nova::Server", "properties": {
        "flavor": "m1.tiny", "image": "cirros-0.6.2"}}
    fakecloud.control.set_delays(profile="zero", server_boot=30)
    fakecloud.control.freeze()
    try:
        os_conn.orchestration.update_stack(stack, template=bigger)
        assert heat.status("app", stack.id)[0] == "UPDATE_IN_PROGRESS"
        assert len(list(os_conn.compute.servers())) == 2
        response = os_conn.orchestration.post(f"/stacks/{stack.id}/actions", json={"cancel_update": None})
        assert response.status_code == 200
        assert heat.status("app", stack.id) == ("ROLLBACK_COMPLETE", "Stack ROLLBACK completed successfully")
    finally:
        fakecloud.control.freeze(False)
    assert physical(os_conn, stack) == ids
    assert [s.id for s in os_conn.compute.servers()] == [ids["server"]]
    events = [e["resource_status"] for e in heat.call("GET", f"/stacks/app/{stack.id}/events").json()["events"]
              if e["resource_name"] == "app"]
    assert events[-4:] == ["UPDATE_IN_PROGRESS", "UPDATE_FAILED", "ROLLBACK_IN_PROGRESS", "ROLLBACK_COMPLETE"]


def test_mark_unhealthy_then_update_replaces(os_conn, heat):
    stack = create(os_conn, "app", template())
    ids = physical(os_conn, stack)
    response = heat.call("PATCH", f"/stacks/app/{stack.id}/resources/vol",
                         {"mark_unhealthy": True, "resource_status_reason": "disk is flaky"})
    assert response.status_code == 200
    vol = os_conn.orchestration.get(f"/stacks/app/{stack.id}/resources/vol").json()["resource"]
    assert (vol["resource_status"], vol["resource_status_reason"]) == ("CHECK_FAILED", "disk is flaky")
    assert heat.call("PATCH", f"/stacks/app/{stack.id}/resources/vol", {"bogus": 1}).status_code == 400
    preview = heat.call("PUT", f"/stacks/app/{stack.id}/preview", {"template": template()}).json()
    assert [r["resource_name"] for r in preview["resource_changes"]["replaced"]] == ["vol"]
    os_conn.orchestration.update_stack(stack.id, template=template())
    wait(os_conn, stack, "UPDATE_COMPLETE")
    after = physical(os_conn, stack)
    assert after["vol"] != ids["vol"] and after["server"] == ids["server"]
    with pytest.raises(openstack.exceptions.NotFoundException):
        os_conn.block_storage.find_volume(ids["vol"], ignore_missing=False)
    volume = os_conn.block_storage.get_volume(after["vol"])
    assert volume.status == "in-use" and [a["server_id"] for a in volume.attachments] == [ids["server"]]


# abandon, adopt, export -------------------------------------------------------------------------------------
def test_abandon_then_adopt_keeps_the_resources(fakecloud, os_conn, heat):
    stack = create(os_conn, "app", template())
    ids = physical(os_conn, stack)
    exported = os_conn.orchestration.export_stack(stack)
    assert exported["resources"]["server"]["resource_id"] == ids["server"]
    assert os_conn.orchestration.get_stack(stack.id).status == "CREATE_COMPLETE"
    before = cloud_state(fakecloud)
    data = os_conn.orchestration.abandon_stack(stack)
    assert (data["name"], data["id"], data["action"], data["status"]) == ("app", stack.id, "CREATE", "COMPLETE")
    assert data["template"] == template() and data["project_id"] == os_conn.current_project_id
    assert "stack_user_project_id" in data and "parameters" in data["environment"]
    server = data["resources"]["server"]
    assert (server["resource_id"], server["type"], server["status"]) == (ids["server"], "OS::Nova::Server",
                                                                          "COMPLETE")
    assert set(server) >= {"name", "action", "metadata", "resource_data"}
    assert heat.call("GET", f"/stacks/app/{stack.id}").status_code == 404  # the record is gone
    assert cloud_state(fakecloud) == before  # ... and nothing else
    # adopt the same resources, the way heatclient sends it (a JSON string, no template)
    response = heat.call("POST", "/stacks", {"stack_name": "again", "adopt_stack_data": json.dumps(data),
                                             "disable_rollback": True})
    assert response.status_code == 201
    new_id = response.json()["stack"]["id"]
    assert heat.status("again", new_id) == ("ADOPT_COMPLETE", "Stack ADOPT completed successfully")
    assert cloud_state(fakecloud) == before  # nothing created, nothing changed
    adopted = os_conn.orchestration.get(f"/stacks/again/{new_id}/resources").json()["resources"]
    assert {r["resource_name"]: r["physical_resource_id"] for r in adopted} == ids
    assert {r["resource_status"] for r in adopted} == {"ADOPT_COMPLETE"}
    # a later update works on the adopted resources: the flavor change resizes the same server
    try:
        stack = os_conn.orchestration.find_stack(new_id, ignore_missing=False)
    except openstack.exceptions.NotFoundException:
        stack = type(stack)(id=new_id, name="again")
    os_conn.orchestration.update_stack(stack, template=template("m1.small", size=2))
    wait(os_conn, stack, "UPDATE_COMPLETE")
    assert physical(os_conn, stack) == ids
    assert os_conn.compute.get_server(ids["server"]).flavor["original_name"] == "m1.small"
    assert os_conn.block_storage.get_volume(ids["vol"]).size == 2
    os_conn.orchestration.delete_stack(stack)
    os_conn.orchestration.wait_for_delete(stack, **WAIT)
    assert list(os_conn.compute.servers()) == [] and list(os_conn.block_storage.volumes()) == []


def test_adopt_of_a_missing_resource_fails(os_conn, heat):
    stack = create(os_conn, "app", template())
    data = os_conn.orchestration.abandon_stack(stack)
    data["resources"]["vol"]["resource_id"] = "c0ffee00-0000-0000-0000-000000000000"
    response = heat.call("POST", "/stacks", {"stack_name": "again", "adopt_stack_data": data})
    new_id = response.json()["stack"]["id"]
    status, reason = heat.status("again", new_id)
    assert status == "ADOPT_FAILED"
    assert reason.startswith("Resource ADOPT failed: NotFound: resources.vol:") and "could not be found" in reason
    del data["resources"]["vol"]
    response = heat.call("POST", "/stacks", {"stack_name": "third", "adopt_stack_data": data})
    assert heat.status("third", response.json()["stack"]["id"]) == (
        "ADOPT_FAILED", "Resource ADOPT failed: Error: resources.vol: Resource ID was not provided.")


# ports --------------------------------------------------------------------------------------------------
def port_template(name: str = "p1", with_sg: bool = True, ip: str | None = None) -> dict[str, Any]:
    port: dict[str, Any] = {"network": "private", "name": name}
    if with_sg:
        port["security_groups"] = [{"get_resource": "sg"}]
    if ip:
        port["fixed_ips"] = [{"subnet": "private-subnet", "ip_address": ip}]
    return {
        "heat_template_version": "2021-04-16",
        "resources": {
            "sg": {"type": "OS::Neutron::SecurityGroup", "properties": {"rules": [{"protocol": "icmp"}]}},
            "port": {"type": "OS::Neutron::Port", "properties": port},
            "server": {"type": "OS::Nova::Server", "properties": {
                "flavor": "m1.tiny", "image": "cirros-0.6.2", "networks": [{"port": {"get_resource": "port"}}]}},
        },
        "outputs": {"ips": {"value": {"get_attr": ["port", "fixed_ips"]}},
                    "mac": {"value": {"get_attr": ["port", "mac_address"]}}},
    }


def test_port_is_bound_to_the_server_and_updates_in_place(os_conn):
    stack = create(os_conn, "net", port_template())
    ids = physical(os_conn, stack)
    port = os_conn.network.get_port(ids["port"])
    assert port.device_id == ids["server"] and port.device_owner == "compute:nova"
    assert port.security_group_ids == [ids["sg"]] and port.name == "p1"
    server = os_conn.compute.get_server(ids["server"])
    assert [a["addr"] for a in server.addresses["private"]] == [port.fixed_ips[0]["ip_address"]]
    outputs = {o["output_key"]: o["output_value"] for o in stack.outputs}
    assert outputs["mac"] == port.mac_address and outputs["ips"] == port.fixed_ips
    show = os_conn.orchestration.get(f"/stacks/net/{stack.id}/resources/port").json()["resource"]
    assert show["attributes"]["show"]["id"] == port.id
    # name, security groups and fixed IPs change in place: same port, same server
    wanted = str(ipaddress.ip_network(os_conn.network.get_subnet(port.fixed_ips[0]["subnet_id"]).cidr)[200])
    os_conn.orchestration.update_stack(stack, template=port_template("p2", with_sg=False, ip=wanted))
    stack = wait(os_conn, stack, "UPDATE_COMPLETE")
    assert physical(os_conn, stack) == ids
    port = os_conn.network.get_port(ids["port"])
    default = os_conn.network.find_security_group("default", ignore_missing=False)
    assert port.name == "p2" and port.security_group_ids == [default.id]
    assert [ip["ip_address"] for ip in port.fixed_ips] == [wanted]
    assert port.device_id == ids["server"]
    os_conn.orchestration.delete_stack(stack)
    os_conn.orchestration.wait_for_delete(stack, **WAIT)
    assert list(os_conn.network.ports(device_id=ids["server"])) == []
    with pytest.raises(openstack.exceptions.NotFoundException):
        os_conn.network.find_port(ids["port"], ignore_missing=False)


def test_server_networks_auto_and_by_id(os_conn):
    network = os_conn.network.find_network("private", ignore_missing=False)
    tmpl = {"heat_template_version": "2021-04-16", "resources": {
        "auto": {"type": "OS::Nova::Server", "properties": {
            "flavor": "m1.tiny", "image": "cirros-0.6.2", "networks": [{"allocate_network": "auto"}]}},
        "byid": {"type": "OS::Nova::Server", "properties": {
            "flavor": "m1.tiny", "image": "cirros-0.6.2", "networks": [{"network": network.id}]}},
        "none": {"type": "OS::Nova::Server", "properties": {
            "flavor": "m1.tiny", "image": "cirros-0.6.2", "networks": [{"allocate_network": "none"}]}}}}
    stack = create(os_conn, "nets", tmpl)
    ids = physical(os_conn, stack)
    for name in ("auto", "byid"):
        ports = list(os_conn.network.ports(device_id=ids[name]))
        assert [p.network_id for p in ports] == [network.id]
    assert list(os_conn.network.ports(device_id=ids["none"])) == []
