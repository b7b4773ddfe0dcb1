"""The one-stack-per-database template Hearth's orchestrator sends: a port with a fixed IP on the project's
network, a server with admin_pass on it, a data volume, and (for a public instance) a floating IP on the port.
Checked against what fakecloud's Nova, Neutron and Cinder report (openstacksdk over HTTP)."""

from __future__ import annotations

import copy
import ipaddress
from typing import Any

import openstack
import pytest

WAIT = {"interval": 0.05, "wait": 20}
PASSWORD = "s3cret-Pass"


def database_template(network_id: str, subnet_id: str, ip: str, public: bool = True,
                      cidr: str = "127.0.0.0/8") -> dict[str, Any]:
    template: dict[str, Any] = {
        "heat_template_version": "2021-04-16",
        "parameters": {
            "flavor": {"type": "string"},
            "image": {"type": "string"},
            "volume_size": {"type": "number"},
            "admin_pass": {"type": "string", "hidden": True, "default": ""},
        },
        "resources": {
            "security_group": {"type": "OS::Neutron::SecurityGroup", "properties": {"rules": [
                {"protocol": "tcp", "port_range_min": 5432, "port_range_max": 5432, "remote_ip_prefix": cidr}]}},
            "data_volume": {"type": "OS::Cinder::Volume", "properties": {"size": {"get_param": "volume_size"}}},
            "port": {"type": "OS::Neutron::Port", "properties": {
                "name": "db-port", "network": network_id,
                "fixed_ips": [{"subnet": subnet_id, "ip_address": ip}],
                "security_groups": [{"get_resource": "security_group"}]}},
            "server": {"type": "OS::Nova::Server", "properties": {
                "name": "db", "flavor": {"get_param": "flavor"}, "flavor_update_policy": "RESIZE",
                "image": {"get_param": "image"}, "admin_pass": {"get_param": "admin_pass"},
                "metadata": {"hearth_instance": "db"}, "networks": [{"port": {"get_resource": "port"}}]}},
            "data_volume_attachment": {"type": "OS::Cinder::VolumeAttachment", "properties": {
                "instance_uuid": {"get_resource": "server"}, "volume_id": {"get_resource": "data_volume"}}},
        },
        "outputs": {
            "server_id": {"value": {"get_resource": "server"}},
            "volume_id": {"value": {"get_resource": "data_volume"}},
            "security_group_id": {"value": {"get_resource": "security_group"}},
            "port_id": {"value": {"get_resource": "port"}},
        },
    }
    if public:
        template["resources"]["floating_ip"] = {"type": "OS::Neutron::FloatingIP", "properties": {
            "floating_network": "public", "port_id": {"get_resource": "port"}}}
        template["outputs"]["floating_ip_id"] = {"value": {"get_resource": "floating_ip"}}
    return template


def routed_private(conn: openstack.connection.Connection) -> tuple[Any, Any]:
    """The project's `private` network, routed to `public` (Neutron needs that for a floating IP) by the
    `router1` it comes with, as on DevStack."""
    public = conn.network.find_network("public", ignore_missing=False)
    private = conn.network.find_network("private", ignore_missing=False)
    subnet = conn.network.get_subnet(private.subnet_ids[0])
    router = conn.network.find_router("router1", ignore_missing=False)
    assert router.external_gateway_info["network_id"] == public.id
    assert [ip["subnet_id"] for p in conn.network.ports(device_id=router.id, device_owner="network:router_interface")
            for ip in p.fixed_ips] == [subnet.id]
    return private, subnet


def a_free_ip(subnet: Any, offset: int = 50) -> str:
    return str(ipaddress.ip_network(subnet.cidr)[offset])


def gone(get: Any, ident: str) -> bool:
    try:
        get(ident)
    except openstack.exceptions.NotFoundException:
        return True
    return False


def outputs(conn: openstack.connection.Connection, stack: Any) -> dict[str, Any]:
    stack = conn.orchestration.get_stack(stack.id)
    return {o["output_key"]: o["output_value"] for o in stack.outputs}


def wait(conn: openstack.connection.Connection, stack: Any, status: str) -> Any:
    action = status.split("_")[0]
    return conn.orchestration.wait_for_status(stack, status, failures=[f"{action}_FAILED"], **WAIT)


def create_stack(conn: openstack.connection.Connection, template: dict[str, Any], **params: Any) -> Any:
    stack = conn.orchestration.create_stack(name="db", template=copy.deepcopy(template), parameters=params)
    return wait(conn, stack, "CREATE_COMPLETE")


def test_resource_types_list_the_floating_ip_plugins(heat):
    types = set(heat.ok("GET", "/resource_types")["resource_types"])
    assert {"OS::Neutron::FloatingIP", "OS::Neutron::FloatingIPAssociation"} <= types
    schema = heat.ok("GET", "/resource_types/OS::Neutron::FloatingIP")
    assert schema["properties"]["floating_network"]["required"] is True
    assert schema["properties"]["port_id"]["update_allowed"] is True
    assert "floating_ip_address" in schema["attributes"]


def test_database_stack_floating_ip_admin_pass_and_rebuild_in_place(fakecloud, os_conn):
    private, subnet = routed_private(os_conn)
    ip = a_free_ip(subnet)
    template = database_template(private.id, subnet.id, ip)
    stack = create_stack(os_conn, template, flavor="m1.tiny", image="cirros-0.6.2", volume_size=1,
                         admin_pass=PASSWORD)
    out = outputs(os_conn, stack)

    server = os_conn.compute.get_server(out["server_id"])
    assert fakecloud.cloud.compute.get_server(server.id, server.project_id).admin_pass == PASSWORD
    port = os_conn.network.get_port(out["port_id"])
    assert port.device_id == server.id and port.fixed_ips[0]["ip_address"] == ip
    fip = os_conn.network.get_ip(out["floating_ip_id"])
    assert fip.port_id == port.id and fip.fixed_ip_address == ip and fip.status == "ACTIVE"
    assert fip.floating_network_id == os_conn.network.find_network("public", ignore_missing=False).id
    attrs = {r.name: r for r in os_conn.orchestration.resources(stack)}
    assert attrs["floating_ip"].physical_resource_id == fip.id

    # image change, image_update_policy REBUILD (the default): the same server, rebuilt, with its port and volume
    new_image = next(os_conn.image.images(name="postgresql-16"))  # find_image warns whatever it is given
    os_conn.orchestration.update_stack(stack.id, template=copy.deepcopy(template), parameters={
        "flavor": "m1.tiny", "image": "postgresql-16", "volume_size": 1, "admin_pass": "n3w-Pass"})
    wait(os_conn, stack, "UPDATE_COMPLETE")
    after = outputs(os_conn, stack)
    assert after["server_id"] == server.id and after["port_id"] == port.id
    rebuilt = os_conn.compute.get_server(server.id)
    assert rebuilt.status == "ACTIVE" and rebuilt.image["id"] == new_image.id
    assert fakecloud.cloud.compute.get_server(server.id, server.project_id).admin_pass == "n3w-Pass"
    actions = [a.action for a in os_conn.compute.server_actions(server.id)]
    assert "rebuild" in actions
    assert [a.volume_id for a in os_conn.compute.volume_attachments(server.id)] == [out["volume_id"]]
    assert os_conn.block_storage.get_volume(out["volume_id"]).status == "in-use"
    assert os_conn.network.get_ip(fip.id).port_id == port.id

    # the instance goes private: the floating IP resource leaves the template and is deleted
    private_template = database_template(private.id, subnet.id, ip, public=False)
    os_conn.orchestration.update_stack(stack.id, template=copy.deepcopy(private_template), parameters={
        "flavor": "m1.tiny", "image": "postgresql-16", "volume_size": 1, "admin_pass": "n3w-Pass"})
    wait(os_conn, stack, "UPDATE_COMPLETE")
    assert gone(os_conn.network.get_ip, fip.id)
    assert os_conn.compute.get_server(server.id).status == "ACTIVE"
    assert "floating_ip_id" not in outputs(os_conn, stack)

    os_conn.orchestration.delete_stack(stack)
    os_conn.orchestration.wait_for_delete(stack, **WAIT)
    assert gone(os_conn.network.get_port, port.id)


def test_image_update_policy_replace_replaces_the_server(os_conn):
    private, subnet = routed_private(os_conn)
    template = database_template(private.id, subnet.id, a_free_ip(subnet), public=False)
    template["resources"]["server"]["properties"]["image_update_policy"] = "REPLACE"
    stack = create_stack(os_conn, template, flavor="m1.tiny", image="cirros-0.6.2", volume_size=1)
    before = outputs(os_conn, stack)["server_id"]
    os_conn.orchestration.update_stack(stack.id, template=copy.deepcopy(template), parameters={
        "flavor": "m1.tiny", "image": "mysql-8.0", "volume_size": 1})
    wait(os_conn, stack, "UPDATE_COMPLETE")
    assert outputs(os_conn, stack)["server_id"] != before


def test_floating_ip_port_change_reassociates_and_association_resource(os_conn):
    private, subnet = routed_private(os_conn)
    template = {
        "heat_template_version": "2021-04-16",
        "parameters": {"which": {"type": "string", "default": "a"}},
        "conditions": {"on_a": {"equals": [{"get_param": "which"}, "a"]}},
        "resources": {
            "a": {"type": "OS::Neutron::Port", "properties": {"network": private.id}},
            "b": {"type": "OS::Neutron::Port", "properties": {"network": private.id}},
            "c": {"type": "OS::Neutron::Port", "properties": {"network": private.id}},
            "fip": {"type": "OS::Neutron::FloatingIP", "properties": {
                "floating_network": "public",
                "port_id": {"if": ["on_a", {"get_resource": "a"}, {"get_resource": "b"}]}}},
            "fip2": {"type": "OS::Neutron::FloatingIP", "properties": {"floating_network": "public"}},
            "assoc": {"type": "OS::Neutron::FloatingIPAssociation", "properties": {
                "floatingip_id": {"get_resource": "fip2"}, "port_id": {"get_resource": "c"}}},
        },
        "outputs": {"address": {"value": {"get_attr": ["fip", "floating_ip_address"]}},
                    "a": {"value": {"get_resource": "a"}}, "b": {"value": {"get_resource": "b"}},
                    "c": {"value": {"get_resource": "c"}},
                    "fip": {"value": {"get_resource": "fip"}}, "fip2": {"value": {"get_resource": "fip2"}}},
    }
    stack = os_conn.orchestration.create_stack(name="fips", template=copy.deepcopy(template))
    wait(os_conn, stack, "CREATE_COMPLETE")
    out = outputs(os_conn, stack)
    fip = os_conn.network.get_ip(out["fip"])
    assert fip.port_id == out["a"] and out["address"] == fip.floating_ip_address
    assert os_conn.network.get_ip(out["fip2"]).port_id == out["c"]

    os_conn.orchestration.update_stack(stack.id, template=copy.deepcopy(template), parameters={"which": "b"})
    wait(os_conn, stack, "UPDATE_COMPLETE")
    assert outputs(os_conn, stack)["fip"] == fip.id, "a port_id change updates the floating IP in place"
    assert os_conn.network.get_ip(fip.id).port_id == out["b"]

    del template["resources"]["assoc"]
    os_conn.orchestration.update_stack(stack.id, template=copy.deepcopy(template), parameters={"which": "b"})
    wait(os_conn, stack, "UPDATE_COMPLETE")
    assert os_conn.network.get_ip(out["fip2"]).port_id is None, "deleting the association disassociates"

    os_conn.orchestration.delete_stack(stack)
    os_conn.orchestration.wait_for_delete(stack, **WAIT)
    assert gone(os_conn.network.get_ip, fip.id) and gone(os_conn.network.get_ip, out["fip2"])


def test_floating_ip_without_a_router_fails_as_neutron_says(os_conn):
    private = os_conn.network.find_network("private", ignore_missing=False)
    router1 = os_conn.network.find_router("router1", ignore_missing=False)  # taken away, as a user would
    os_conn.network.remove_interface_from_router(router1, subnet=private.subnet_ids[0])
    os_conn.network.delete_router(router1)
    template = {
        "heat_template_version": "2021-04-16",
        "resources": {
            "port": {"type": "OS::Neutron::Port", "properties": {"network": private.id}},
            "fip": {"type": "OS::Neutron::FloatingIP", "properties": {
                "floating_network": "public", "port_id": {"get_resource": "port"}}},
        },
    }
    stack = os_conn.orchestration.create_stack(name="unrouted", template=template)
    stack = os_conn.orchestration.wait_for_status(stack, "CREATE_FAILED", failures=["CREATE_COMPLETE"], **WAIT)
    assert "is not reachable from subnet" in stack.status_reason


def test_an_admin_stack_puts_the_database_on_another_projects_network(os_conn, os_admin):
    """Hearth's service user is admin: its stack (in its own project) puts the port on the tenant's network, as
    Neutron lets an admin do; a non-admin's stack cannot even name that network."""
    private, subnet = routed_private(os_conn)
    ip = a_free_ip(subnet, 70)
    template = database_template(private.id, subnet.id, ip)
    stack = create_stack(os_admin, template, flavor="m1.tiny", image="cirros-0.6.2", volume_size=1,
                         admin_pass=PASSWORD)
    out = outputs(os_admin, stack)
    port = os_admin.network.get_port(out["port_id"])
    assert port.network_id == private.id and port.project_id == os_admin.current_project_id
    assert port.fixed_ips[0]["ip_address"] == ip and port.device_id == out["server_id"]
    assert os_admin.network.get_ip(out["floating_ip_id"]).port_id == port.id
    assert os_admin.compute.get_server(out["server_id"]).status == "ACTIVE"

    other = os_admin.network.find_network("private", ignore_missing=False, project_id=os_admin.current_project_id)
    other_subnet = os_admin.network.get_subnet(other.subnet_ids[0])
    refused = database_template(other.id, other_subnet.id, a_free_ip(other_subnet), public=False)
    with pytest.raises(openstack.exceptions.BadRequestException, match="Unable to find network"):
        os_conn.orchestration.create_stack(name="nope", template=refused, parameters={
            "flavor": "m1.tiny", "image": "cirros-0.6.2", "volume_size": 1})

    os_admin.orchestration.delete_stack(stack)
    os_admin.orchestration.wait_for_delete(stack, **WAIT)
