"""Neutron L3 over real HTTP: routers (interfaces, gateway, extra routes), floating IPs, subnet updates.

Driven through openstacksdk (and a few `openstack` CLI commands); errors are checked for Neutron's status,
`NeutronError.type` and message. Addresses are read from the API, never assumed.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
from pathlib import Path

import openstack.exceptions
import pytest

from openstack_fakecloud.testing import running_cloud

WAIT = {"interval": 0.05, "wait": 10}
INTERFACE = "network:router_interface"
GATEWAY = "network:router_gateway"


def _error(excinfo) -> tuple[int, str, str]:
    body = excinfo.value.response.json()["NeutronError"]
    return excinfo.value.status_code, body["type"], body["message"]


def _public(conn):
    network = conn.network.find_network("public", ignore_missing=False)
    return network, conn.network.get_subnet(network.subnet_ids[0])


def _private(conn):
    network = conn.network.find_network("private", ignore_missing=False)
    return network, conn.network.get_subnet(network.subnet_ids[0])


def _in(address: str, subnet) -> bool:
    return ipaddress.ip_address(address) in ipaddress.ip_network(subnet.cidr)


def _network_with_subnet(conn, name: str, cidr: str, **subnet_attrs):
    network = conn.network.create_network(name=name)
    subnet = conn.network.create_subnet(network_id=network.id, ip_version=4, cidr=cidr, name=f"{name}-subnet",
                                        **subnet_attrs)
    return network, subnet


def _remove_router1(conn):
    """Take DevStack's `router1` away as a user would (its interface, then the router), so that the test's
    own router is what joins the private subnet to `public`."""
    router = conn.network.find_router("router1", ignore_missing=False)
    _, private_subnet = _private(conn)
    conn.network.remove_interface_from_router(router, subnet=private_subnet.id)
    conn.network.delete_router(router)


def _connected_router(conn, name: str = "r1"):
    """A router with its gateway on `public` and an interface on the project's private subnet (in place of
    `router1`)."""
    _remove_router1(conn)
    public, _ = _public(conn)
    _, private_subnet = _private(conn)
    router = conn.network.create_router(name=name, external_gateway_info={"network_id": public.id})
    conn.network.add_interface_to_router(router, subnet=private_subnet.id)
    return router


# routers -------------------------------------------------------------------------------------------
def test_l3_extensions_and_resources_are_advertised(os_conn):
    aliases = {e.alias for e in os_conn.network.extensions()}
    assert {"router", "ext-gw-mode", "extraroute"} <= aliases


def _new_project_connection(fakecloud, name: str):
    """A member of a project made now, as tempest's dynamic credentials are."""
    admin = fakecloud.connect("admin").identity
    project = admin.create_project(name=name, domain_id="default")
    user = admin.create_user(name=f"{name}-user", password="pw", domain_id="default", default_project_id=project.id)
    admin.assign_project_role_to_user(project, user, admin.find_role("member", ignore_missing=False))
    auth = {"auth_url": fakecloud.auth()["auth_url"], "username": user.name, "password": "pw",
            "project_name": name, "user_domain_name": "Default", "project_domain_name": "Default"}
    return openstack.connect(auth=auth, region_name=fakecloud.cloud.config.region, identity_api_version="3",
                             load_yaml_config=False, load_envvars=False)


def test_new_project_private_network_comes_with_router1(fakecloud, os_admin):
    """DevStack's demo set-up for every project: `router1` joins `private` to `public`, so a floating IP
    associates with a port on `private` with nothing else to do; the project can still take it apart."""
    conn = _new_project_connection(fakecloud, "fresh")
    public, public_subnet = _public(conn)
    private, private_subnet = _private(conn)
    (router,) = list(conn.network.routers())
    assert (router.name, router.project_id, router.status) == ("router1", conn.current_project_id, "ACTIVE")
    gateway = router.external_gateway_info
    assert gateway["network_id"] == public.id and gateway["enable_snat"] is True
    (gateway_ip,) = gateway["external_fixed_ips"]
    assert gateway_ip["subnet_id"] == public_subnet.id and _in(gateway_ip["ip_address"], public_subnet)
    ports = {p.device_owner: p for p in os_admin.network.ports(device_id=router.id)}
    assert set(ports) == {INTERFACE, GATEWAY} and ports[GATEWAY].fixed_ips == [gateway_ip]
    interface = ports[INTERFACE]
    assert interface.project_id == conn.current_project_id and interface.network_id == private.id
    assert interface.fixed_ips == [{"subnet_id": private_subnet.id, "ip_address": private_subnet.gateway_ip}]
    usage = os_admin.network.get_quota(conn.current_project_id, details=True)
    assert usage.routers["used"] == 1 and usage.ports["used"] == 1  # the interface is the project's port

    port = conn.network.create_port(network_id=private.id)
    fip = conn.network.create_ip(floating_network_id=public.id, port_id=port.id)
    assert (fip.status, fip.router_id, fip.fixed_ip_address) == ("ACTIVE", router.id, port.fixed_ips[0]["ip_address"])

    # the private network goes the way upstream wants: floating IP, ports, interface, router, then network
    with pytest.raises(openstack.exceptions.ConflictException) as exc:
        conn.network.remove_interface_from_router(router, subnet=private_subnet.id)
    assert _error(exc)[:2] == (409, "RouterInterfaceInUseByFloatingIP")
    conn.network.delete_ip(fip)
    conn.network.delete_port(port)
    with pytest.raises(openstack.exceptions.ConflictException) as exc:
        conn.network.delete_network(private)
    assert _error(exc)[:2] == (409, "NetworkInUse")
    conn.network.remove_interface_from_router(router, subnet=private_subnet.id)
    conn.network.delete_router(router)
    conn.network.delete_network(private)
    assert list(os_admin.network.ports(device_id=router.id)) == []  # the gateway port went with the router
    # as the private network is made again on the project's next use of Neutron, so is router1
    (again,) = list(conn.network.routers())
    assert again.name == "router1" and again.id != router.id
    assert _private(conn)[0].id == private.id
    conn.close()


def test_router1_survives_a_restart(tmp_path):
    state = tmp_path / "state.json"
    with running_cloud(state_file=state) as fc:
        conn = fc.connect()
        router = conn.network.find_router("router1", ignore_missing=False).to_dict()
        private, _ = _private(conn)
        ports = sorted(p.id for p in fc.connect("admin").network.ports(device_id=router["id"]))
        conn.close()
    with running_cloud(state_file=state) as fc:
        conn = fc.connect()
        assert [r.to_dict() for r in conn.network.routers()] == [router]  # restored, not made again
        assert sorted(p.id for p in fc.connect("admin").network.ports(device_id=router["id"])) == ports
        port = conn.network.create_port(network_id=private.id)
        public, _ = _public(conn)
        assert conn.network.create_ip(floating_network_id=public.id, port_id=port.id).router_id == router["id"]
        conn.close()


def test_router_lifecycle(os_conn, os_admin):
    _remove_router1(os_conn)
    public, public_subnet = _public(os_conn)
    private, private_subnet = _private(os_conn)
    router = os_conn.network.create_router(name="edge", description="to the world",
                                           external_gateway_info={"network_id": public.id})
    assert (router.name, router.description, router.status, router.is_admin_state_up) == (
        "edge", "to the world", "ACTIVE", True)
    assert router.project_id == os_conn.current_project_id and router.routes == []
    assert router.revision_number >= 1 and router.created_at and router.updated_at
    gateway = router.external_gateway_info
    assert gateway["network_id"] == public.id and gateway["enable_snat"] is True
    (gateway_ip,) = gateway["external_fixed_ips"]
    assert gateway_ip["subnet_id"] == public_subnet.id and _in(gateway_ip["ip_address"], public_subnet)
    # distributed / ha are admin-only attributes
    assert router.is_distributed is None and router.is_ha is None
    as_admin = os_admin.network.get_router(router.id)
    assert as_admin.is_distributed is False and as_admin.is_ha is False
    # the gateway port (admin sees it; it belongs to no project)
    (gw_port,) = list(os_admin.network.ports(device_id=router.id))
    assert gw_port.device_owner == GATEWAY and gw_port.fixed_ips == [gateway_ip]

    info = os_conn.network.add_interface_to_router(router, subnet=private_subnet.id)
    assert info["subnet_id"] == private_subnet.id and info["network_id"] == private.id
    port = os_conn.network.get_port(info["port_id"])
    assert (port.device_owner, port.device_id) == (INTERFACE, router.id)
    assert port.fixed_ips == [{"subnet_id": private_subnet.id, "ip_address": private_subnet.gateway_ip}]
    assert os_conn.network.get_router(router.id).revision_number > router.revision_number

    # what the router's interface holds cannot go
    with pytest.raises(openstack.exceptions.ConflictException) as exc:
        os_conn.network.delete_router(router)
    assert _error(exc) == (409, "RouterInUse", f"Router {router.id} still has ports")
    with pytest.raises(openstack.exceptions.ConflictException) as exc:
        os_conn.network.delete_subnet(private_subnet)
    assert _error(exc)[:2] == (409, "SubnetInUse")
    with pytest.raises(openstack.exceptions.ConflictException) as exc:
        os_conn.network.delete_network(private)
    assert _error(exc)[:2] == (409, "NetworkInUse")
    with pytest.raises(openstack.exceptions.ConflictException) as exc:
        os_conn.network.delete_port(port)
    assert _error(exc) == (409, "ServicePortInUse", f"Port {port.id} cannot be deleted directly via the port API: "
                                                    f"has device owner {INTERFACE}.")

    os_conn.network.remove_interface_from_router(router, subnet=private_subnet.id)
    assert list(os_conn.network.ports(device_id=router.id)) == []
    os_conn.network.delete_router(router)
    with pytest.raises(openstack.exceptions.NotFoundException):
        os_conn.network.get_router(router.id)
    assert list(os_admin.network.ports(device_id=router.id)) == []  # the gateway port went too
    # the addresses are free again: a new interface takes the gateway IP once more
    again = os_conn.network.create_router(name="again")
    info = os_conn.network.add_interface_to_router(again, subnet=private_subnet.id)
    assert os_conn.network.get_port(info["port_id"]).fixed_ips[0]["ip_address"] == private_subnet.gateway_ip


def test_router_update_and_gateway(os_conn, os_admin):
    public, _ = _public(os_conn)
    router = os_conn.network.create_router(name="plain")
    assert router.external_gateway_info is None
    router = os_conn.network.update_router(router.id, name="renamed", is_admin_state_up=False,
                                           external_gateway_info={"network_id": public.id})
    assert router.name == "renamed" and router.is_admin_state_up is False
    assert router.external_gateway_info["network_id"] == public.id
    # enable_snat and external_fixed_ips are admin's
    with pytest.raises(openstack.exceptions.ForbiddenException) as exc:
        os_conn.network.update_router(router.id, external_gateway_info={"network_id": public.id, "enable_snat": False})
    assert _error(exc)[0] == 403 and "external_gateway_info:enable_snat" in _error(exc)[2]
    with pytest.raises(openstack.exceptions.ForbiddenException):
        os_conn.network.create_router(external_gateway_info={"network_id": public.id, "enable_snat": True})
    with pytest.raises(openstack.exceptions.ForbiddenException):
        os_conn.network.create_router(distributed=False)
    updated = os_admin.network.update_router(router.id, external_gateway_info={"network_id": public.id,
                                                                            "enable_snat": False})
    assert updated.external_gateway_info["enable_snat"] is False
    # clearing the gateway removes its port
    cleared = os_conn.network.update_router(router.id, external_gateway_info={})
    assert cleared.external_gateway_info is None
    assert list(os_admin.network.ports(device_id=router.id)) == []
    # an admin may pick the gateway's address
    _, public_subnet = _public(os_conn)
    wanted = str(ipaddress.ip_network(public_subnet.cidr)[200])
    pinned = os_admin.network.update_router(router.id, external_gateway_info={
        "network_id": public.id, "external_fixed_ips": [{"subnet_id": public_subnet.id, "ip_address": wanted}]})
    assert pinned.external_gateway_info["external_fixed_ips"][0]["ip_address"] == wanted


def test_router_gateway_errors(os_conn):
    public, public_subnet = _public(os_conn)
    edge = os_conn.network.create_router(name="edge", external_gateway_info={"network_id": public.id})
    with pytest.raises(openstack.exceptions.BadRequestException) as exc:
        os_conn.network.add_interface_to_router(edge, subnet=public_subnet.id)
    assert _error(exc)[2] == f"Bad router request: Router already has a port on subnet {public_subnet.id}."
    os_conn.network.delete_router(edge)
    own, _ = _network_with_subnet(os_conn, "inside", "192.168.50.0/24")
    with pytest.raises(openstack.exceptions.BadRequestException) as exc:
        os_conn.network.create_router(external_gateway_info={"network_id": own.id})
    assert _error(exc) == (400, "BadRequest", f"Bad router request: Network {own.id} is not an external network.")
    with pytest.raises(openstack.exceptions.NotFoundException) as exc:
        os_conn.network.create_router(external_gateway_info={"network_id": "00000000-0000-0000-0000-000000000000"})
    assert _error(exc)[:2] == (404, "NetworkNotFound")
    assert [r.name for r in os_conn.network.routers()] == ["router1"]  # nothing was left behind


def test_router_interface_errors(os_conn):
    _remove_router1(os_conn)
    router = os_conn.network.create_router(name="r")
    _, private_subnet = _private(os_conn)
    os_conn.network.add_interface_to_router(router, subnet=private_subnet.id)
    with pytest.raises(openstack.exceptions.BadRequestException) as exc:
        os_conn.network.add_interface_to_router(router, subnet=private_subnet.id)
    assert _error(exc) == (400, "BadRequest",
                           f"Bad router request: Router already has a port on subnet {private_subnet.id}.")
    overlapping = str(ipaddress.ip_network(private_subnet.cidr).subnets(new_prefix=24).__next__())
    _, inner = _network_with_subnet(os_conn, "overlap", overlapping)
    with pytest.raises(openstack.exceptions.BadRequestException) as exc:
        os_conn.network.add_interface_to_router(router, subnet=inner.id)
    assert _error(exc)[2] == (f"Bad router request: Cidr {inner.cidr} of subnet {inner.id} overlaps with cidr "
                              f"{private_subnet.cidr} of subnet {private_subnet.id}.")
    _, no_gateway = _network_with_subnet(os_conn, "nogw", "192.168.60.0/24", gateway_ip=None)
    with pytest.raises(openstack.exceptions.BadRequestException) as exc:
        os_conn.network.add_interface_to_router(router, subnet=no_gateway.id)
    assert _error(exc)[2] == "Bad router request: Subnet for router interface must have a gateway IP."
    with pytest.raises(openstack.exceptions.NotFoundException) as exc:
        os_conn.network.add_interface_to_router(router, subnet="00000000-0000-0000-0000-000000000000")
    assert _error(exc)[:2] == (404, "SubnetNotFound")
    with pytest.raises(openstack.exceptions.BadRequestException) as exc:
        os_conn.network.add_interface_to_router(router)
    assert _error(exc)[2] == "Bad router request: Either subnet_id or port_id must be specified."
    both = os_conn.network.put(f"/routers/{router.id}/add_router_interface",
                               json={"subnet_id": no_gateway.id, "port_id": "x"})
    assert both.status_code == 400
    assert both.json()["NeutronError"]["message"] == "Bad router request: Cannot specify both subnet-id and port-id."
    with pytest.raises(openstack.exceptions.NotFoundException) as exc:
        os_conn.network.remove_interface_from_router(router, subnet=no_gateway.id)
    assert _error(exc) == (404, "RouterInterfaceNotFoundForSubnet",
                           f"Router {router.id} has no interface on subnet {no_gateway.id}")
    stray = os_conn.network.create_port(network_id=no_gateway.network_id)
    with pytest.raises(openstack.exceptions.NotFoundException) as exc:
        os_conn.network.remove_interface_from_router(router, port=stray.id)
    assert _error(exc) == (404, "RouterInterfaceNotFound",
                           f"Router {router.id} does not have an interface with id {stray.id}")
    with pytest.raises(openstack.exceptions.NotFoundException) as exc:
        os_conn.network.add_interface_to_router("00000000-0000-0000-0000-000000000000", subnet=inner.id)
    assert _error(exc)[:2] == (404, "RouterNotFound")


def test_router_interface_by_port(os_conn):
    router = os_conn.network.create_router(name="r")
    network, subnet = _network_with_subnet(os_conn, "app", "192.168.70.0/24")
    port = os_conn.network.create_port(network_id=network.id, fixed_ips=[{"subnet_id": subnet.id,
                                                                          "ip_address": "192.168.70.10"}])
    info = os_conn.network.add_interface_to_router(router, port=port.id)
    assert info["port_id"] == port.id and info["subnet_ids"] == [subnet.id]
    attached = os_conn.network.get_port(port.id)
    assert (attached.device_owner, attached.device_id) == (INTERFACE, router.id)
    # a port with a device is refused
    bound = os_conn.network.create_port(network_id=network.id, device_id="some-server")
    with pytest.raises(openstack.exceptions.ConflictException) as exc:
        os_conn.network.add_interface_to_router(router, port=bound.id)
    assert _error(exc)[:2] == (409, "PortInUse")
    bare = os_conn.network.create_port(network_id=os_conn.network.create_network(name="no-subnets").id)
    with pytest.raises(openstack.exceptions.BadRequestException) as exc:
        os_conn.network.add_interface_to_router(router, port=bare.id)
    assert _error(exc)[2] == "Bad router request: Router port must have at least one fixed IP."
    os_conn.network.remove_interface_from_router(router, port=port.id)
    with pytest.raises(openstack.exceptions.NotFoundException):  # Neutron deletes the port with the interface
        os_conn.network.get_port(port.id)
    os_conn.network.delete_router(router)


def test_router_quota_visibility_and_usage(fakecloud, os_conn, os_admin):
    project_id = os_conn.current_project_id
    os_admin.network.update_quota(project_id, routers=3)  # router1 counts too
    first = os_conn.network.create_router(name="one")
    os_conn.network.create_router(name="two")
    with pytest.raises(openstack.exceptions.ConflictException) as exc:
        os_conn.network.create_router(name="three")
    assert _error(exc) == (409, "OverQuota", "Quota exceeded for resources: ['router'].")
    details = os_admin.network.get_quota(project_id, details=True)
    assert details.routers == {"limit": 3, "used": 3, "reserved": 0}
    # another project sees nothing of them; admin sees them all
    admin_own = os_admin.network.create_router(name="admins")
    assert {r.name for r in os_conn.network.routers()} == {"router1", "one", "two"}
    assert {"one", "two", "admins"} <= {r.name for r in os_admin.network.routers()}
    other = fakecloud.connect("admin")  # admin's own project, used without the admin view
    assert other.network.get_router(admin_own.id).name == "admins"
    with pytest.raises(openstack.exceptions.NotFoundException) as exc:
        os_conn.network.get_router(admin_own.id)
    assert _error(exc) == (404, "RouterNotFound", f"Router {admin_own.id} could not be found")
    with pytest.raises(openstack.exceptions.NotFoundException):
        os_conn.network.delete_router(admin_own, ignore_missing=False)
    # filters, sorting and paging as other lists
    assert [r.name for r in os_conn.network.routers(name="one")] == ["one"]
    assert [r.name for r in os_conn.network.routers(sort_key="name", sort_dir="desc")] == ["two", "router1", "one"]
    pages = os_conn.network.get("/routers?limit=1&sort_key=name").json()
    assert [r["name"] for r in pages["routers"]] == ["one"] and pages["routers_links"][0]["rel"] == "next"
    os_conn.network.delete_router(first)
    other.close()


def test_extra_routes(os_conn):
    router = _connected_router(os_conn)
    _, private_subnet = _private(os_conn)
    nexthop = str(ipaddress.ip_network(private_subnet.cidr)[50])
    routes = [{"destination": "192.168.99.0/24", "nexthop": nexthop}]
    assert os_conn.network.update_router(router.id, routes=routes).routes == routes
    with pytest.raises(openstack.exceptions.BadRequestException) as exc:
        os_conn.network.update_router(router.id, routes=[{"destination": "192.168.98.0/24", "nexthop": "203.0.113.9"}])
    assert _error(exc)[:2] == (400, "InvalidRoutes") and "the nexthop is not connected with router" in _error(exc)[2]
    with pytest.raises(openstack.exceptions.ConflictException) as exc:
        os_conn.network.remove_interface_from_router(router, subnet=private_subnet.id)
    assert _error(exc)[:2] == (409, "RouterInterfaceInUseByRoute")
    os_conn.network.update_router(router.id, routes=[])
    os_conn.network.remove_interface_from_router(router, subnet=private_subnet.id)


# floating IPs ---------------------------------------------------------------------------------------
def test_floating_ip_lifecycle(fakecloud, os_conn, os_admin):
    public, public_subnet = _public(os_conn)
    private, private_subnet = _private(os_conn)
    router = _connected_router(os_conn)
    port = os_conn.network.create_port(network_id=private.id, name="db")
    fixed = port.fixed_ips[0]["ip_address"]

    fip = os_conn.network.create_ip(floating_network_id=public.id, description="for db")
    assert _in(fip.floating_ip_address, public_subnet) and fip.floating_network_id == public.id
    assert (fip.status, fip.port_id, fip.fixed_ip_address, fip.router_id) == ("DOWN", None, None, None)
    assert fip.project_id == os_conn.current_project_id and fip.description == "for db"
    # its address is held by a floating IP port on the external network
    (fip_port,) = list(os_admin.network.ports(device_id=fip.id))
    assert fip_port.device_owner == "network:floatingip" and fip_port.network_id == public.id
    assert fip_port.fixed_ips[0]["ip_address"] == fip.floating_ip_address

    fip = os_conn.network.update_ip(fip.id, port_id=port.id)
    assert (fip.status, fip.port_id, fip.fixed_ip_address, fip.router_id) == ("ACTIVE", port.id, fixed, router.id)
    assert fakecloud.cloud.network.floating_ips_of_port(port.id) == [fip.floating_ip_address]
    assert [f.id for f in os_conn.network.ips(port_id=port.id)] == [fip.id]
    assert [f.id for f in os_conn.network.ips(floating_ip_address=fip.floating_ip_address)] == [fip.id]
    assert [f.id for f in os_conn.network.ips(router_id=router.id, status="ACTIVE")] == [fip.id]
    assert [f.id for f in os_conn.network.ips(floating_network_id=public.id, project_id=fip.project_id)] == [fip.id]

    # what the floating IP needs cannot go
    with pytest.raises(openstack.exceptions.ConflictException) as exc:
        os_conn.network.remove_interface_from_router(router, subnet=private_subnet.id)
    assert _error(exc) == (409, "RouterInterfaceInUseByFloatingIP",
                           f"Router interface for subnet {private_subnet.id} on router {router.id} cannot be deleted, "
                           "as it is required by one or more floating IPs.")
    with pytest.raises(openstack.exceptions.ConflictException) as exc:
        os_conn.network.update_router(router.id, external_gateway_info={})
    assert _error(exc)[:2] == (409, "RouterExternalGatewayInUseByFloatingIp")
    with pytest.raises(openstack.exceptions.ConflictException) as exc:
        os_admin.network.delete_port(fip_port)
    assert _error(exc)[:2] == (409, "ServicePortInUse")

    # disassociate with port_id null
    fip = os_conn.network.update_ip(fip.id, port_id=None)
    assert (fip.status, fip.port_id, fip.fixed_ip_address, fip.router_id) == ("DOWN", None, None, None)
    assert fakecloud.cloud.network.floating_ips_of_port(port.id) == []

    # associate on create; deleting the port disassociates
    second = os_conn.network.create_ip(floating_network_id=public.id, port_id=port.id)
    assert (second.status, second.fixed_ip_address, second.router_id) == ("ACTIVE", fixed, router.id)
    os_conn.network.delete_port(port)
    second = os_conn.network.get_ip(second.id)
    assert (second.status, second.port_id, second.fixed_ip_address, second.router_id) == ("DOWN", None, None, None)

    os_conn.network.delete_ip(fip)
    os_conn.network.delete_ip(second)
    assert list(os_conn.network.ips()) == []
    assert list(os_admin.network.ports(device_owner="network:floatingip")) == []
    with pytest.raises(openstack.exceptions.NotFoundException) as exc:
        os_conn.network.get_ip(fip.id)
    assert _error(exc) == (404, "FloatingIPNotFound", f"Floating IP {fip.id} could not be found")
    # the router can now be taken apart
    os_conn.network.remove_interface_from_router(router, subnet=private_subnet.id)
    os_conn.network.delete_router(router)


def test_floating_ip_needs_a_router(os_conn):
    _remove_router1(os_conn)
    public, _ = _public(os_conn)
    private, private_subnet = _private(os_conn)
    port = os_conn.network.create_port(network_id=private.id)
    with pytest.raises(openstack.exceptions.NotFoundException) as exc:
        os_conn.network.create_ip(floating_network_id=public.id, port_id=port.id)
    assert _error(exc) == (404, "ExternalGatewayForFloatingIPNotFound",
                           f"External network {public.id} is not reachable from subnet {private_subnet.id}.  "
                           f"Therefore, cannot associate Port {port.id} with a Floating IP.")
    assert list(os_conn.network.ips()) == []  # a refused create keeps nothing
    fip = os_conn.network.create_ip(floating_network_id=public.id)
    with pytest.raises(openstack.exceptions.NotFoundException):
        os_conn.network.update_ip(fip.id, port_id=port.id)
    # a router without a gateway does not reach the external network either
    router = os_conn.network.create_router(name="inside-only")
    os_conn.network.add_interface_to_router(router, subnet=private_subnet.id)
    with pytest.raises(openstack.exceptions.NotFoundException):
        os_conn.network.update_ip(fip.id, port_id=port.id)
    os_conn.network.update_router(router.id, external_gateway_info={"network_id": public.id})
    assert os_conn.network.update_ip(fip.id, port_id=port.id).router_id == router.id


def test_floating_ip_errors(fakecloud, os_conn, os_admin):
    public, public_subnet = _public(os_conn)
    private, _ = _private(os_conn)
    _connected_router(os_conn)
    port = os_conn.network.create_port(network_id=private.id)
    fixed = port.fixed_ips[0]["ip_address"]
    own, _ = _network_with_subnet(os_conn, "inside", "192.168.80.0/24")
    with pytest.raises(openstack.exceptions.BadRequestException) as exc:
        os_conn.network.create_ip(floating_network_id=own.id)
    assert _error(exc) == (400, "BadRequest", f"Bad floatingip request: Network {own.id} is not a valid external "
                                              "network.")
    with pytest.raises(openstack.exceptions.NotFoundException) as exc:
        os_conn.network.create_ip(floating_network_id="00000000-0000-0000-0000-000000000000")
    assert _error(exc)[:2] == (404, "NetworkNotFound")
    # asking for an address is admin's
    wanted = str(ipaddress.ip_network(public_subnet.cidr)[250])
    with pytest.raises(openstack.exceptions.ForbiddenException) as exc:
        os_conn.network.create_ip(floating_network_id=public.id, floating_ip_address=wanted)
    assert _error(exc)[2] == "(rule:create_floatingip:floating_ip_address) is disallowed by policy"
    pinned = os_admin.network.create_ip(floating_network_id=public.id, floating_ip_address=wanted)
    assert pinned.floating_ip_address == wanted
    with pytest.raises(openstack.exceptions.ConflictException) as exc:
        os_admin.network.create_ip(floating_network_id=public.id, floating_ip_address=wanted)
    assert _error(exc)[:2] == (409, "IpAddressAlreadyAllocated")
    with pytest.raises(openstack.exceptions.BadRequestException) as exc:
        os_admin.network.create_ip(floating_network_id=public.id, floating_ip_address="203.0.113.77")
    assert _error(exc)[:2] == (400, "InvalidIpForNetwork")
    # the port's addresses
    with pytest.raises(openstack.exceptions.BadRequestException) as exc:
        os_conn.network.create_ip(floating_network_id=public.id, port_id=port.id, fixed_ip_address="192.0.2.1")
    assert _error(exc)[2] == f"Bad floatingip request: Port {port.id} does not have fixed ip 192.0.2.1."
    with pytest.raises(openstack.exceptions.NotFoundException) as exc:
        os_conn.network.create_ip(floating_network_id=public.id, port_id="00000000-0000-0000-0000-000000000000")
    assert _error(exc)[:2] == (404, "PortNotFound")
    first = os_conn.network.create_ip(floating_network_id=public.id, port_id=port.id, fixed_ip_address=fixed)
    assert first.fixed_ip_address == fixed
    other = os_conn.network.create_ip(floating_network_id=public.id)
    with pytest.raises(openstack.exceptions.ConflictException) as exc:
        os_conn.network.update_ip(other.id, port_id=port.id)
    assert _error(exc) == (409, "FloatingIPPortAlreadyAssociated",
                           f"Cannot associate floating IP {other.floating_ip_address} ({other.id}) with port {port.id} "
                           f"using fixed IP {fixed}, as that fixed IP already has a floating IP on external network "
                           f"{public.id}.")
    assert os_conn.network.get_ip(other.id).status == "DOWN"
    # read-only attributes and other projects
    with pytest.raises(openstack.exceptions.BadRequestException) as exc:
        os_conn.network.update_ip(other.id, floating_network_id=own.id)
    assert _error(exc)[2] == "Cannot update read-only attribute floating_network_id"
    with pytest.raises(openstack.exceptions.NotFoundException):
        os_conn.network.get_ip(pinned.id)
    assert pinned.id in {f.id for f in os_admin.network.ips()}
    assert {f.id for f in os_conn.network.ips()} == {first.id, other.id}
    # quota, with usage in the details
    project_id = os_conn.current_project_id
    os_admin.network.update_quota(project_id, floating_ips=2)
    with pytest.raises(openstack.exceptions.ConflictException) as exc:
        os_conn.network.create_ip(floating_network_id=public.id)
    assert _error(exc) == (409, "OverQuota", "Quota exceeded for resources: ['floatingip'].")
    assert os_admin.network.get_quota(project_id, details=True).floating_ips["used"] == 2


def test_server_deletion_disassociates_its_floating_ip(fakecloud, os_conn):
    public, _ = _public(os_conn)
    private, _ = _private(os_conn)
    router = _connected_router(os_conn)
    image = next(os_conn.image.images(name="cirros-0.6.2"))
    server = os_conn.compute.create_server(name="web", image_id=image.id, flavor_id="1",
                                           networks=[{"uuid": private.id}])
    server = os_conn.compute.wait_for_server(server, **WAIT)
    (port,) = list(os_conn.network.ports(device_id=server.id))
    fip = os_conn.network.create_ip(floating_network_id=public.id, port_id=port.id)
    assert (fip.status, fip.router_id) == ("ACTIVE", router.id)
    assert fakecloud.cloud.network.floating_ips_of_port(port.id) == [fip.floating_ip_address]
    os_conn.compute.delete_server(server)
    os_conn.compute.wait_for_delete(server, **WAIT)
    fip = os_conn.network.get_ip(fip.id)
    assert (fip.status, fip.port_id, fip.fixed_ip_address, fip.router_id) == ("DOWN", None, None, None)


# subnet updates -------------------------------------------------------------------------------------
def test_subnet_update(os_conn):
    network, subnet = _network_with_subnet(os_conn, "svc", "192.168.90.0/24")
    revision = subnet.revision_number
    updated = os_conn.network.update_subnet(
        subnet.id, name="svc-renamed", description="services", dns_nameservers=["192.0.2.53"],
        host_routes=[{"destination": "198.51.100.0/24", "nexthop": "192.168.90.254"}], is_dhcp_enabled=False,
        allocation_pools=[{"start": "192.168.90.100", "end": "192.168.90.110"}])
    assert (updated.name, updated.description, updated.is_dhcp_enabled) == ("svc-renamed", "services", False)
    assert updated.dns_nameservers == ["192.0.2.53"]
    assert updated.host_routes == [{"destination": "198.51.100.0/24", "nexthop": "192.168.90.254"}]
    assert updated.allocation_pools == [{"start": "192.168.90.100", "end": "192.168.90.110"}]
    assert updated.revision_number > revision
    # new ports come from the new pool
    port = os_conn.network.create_port(network_id=network.id)
    assert port.fixed_ips[0]["ip_address"] == "192.168.90.100"
    moved = os_conn.network.update_subnet(subnet.id, gateway_ip="192.168.90.254")
    assert moved.gateway_ip == "192.168.90.254"
    assert os_conn.network.update_subnet(subnet.id, gateway_ip=None).gateway_ip is None


def test_subnet_update_errors(os_conn):
    network, subnet = _network_with_subnet(os_conn, "svc", "192.168.91.0/24")
    with pytest.raises(openstack.exceptions.BadRequestException) as exc:
        os_conn.network.update_subnet(subnet.id, cidr="192.168.92.0/24")
    assert _error(exc)[2] == "Cannot update read-only attribute cidr"
    with pytest.raises(openstack.exceptions.BadRequestException) as exc:
        os_conn.network.update_subnet(subnet.id, allocation_pools=[{"start": "192.168.91.10", "end": "192.168.95.1"}])
    assert _error(exc)[:2] == (400, "OutOfBoundsAllocationPool")
    with pytest.raises(openstack.exceptions.ConflictException) as exc:
        os_conn.network.update_subnet(subnet.id, gateway_ip="192.168.91.20")
    assert _error(exc)[:2] == (409, "GatewayConflictWithAllocationPools")
    with pytest.raises(openstack.exceptions.BadRequestException) as exc:
        os_conn.network.update_subnet(subnet.id, gateway_ip="192.168.91.0")
    assert _error(exc)[2] == "Invalid input for operation: Gateway is not valid on subnet."
    with pytest.raises(openstack.exceptions.BadRequestException) as exc:
        os_conn.network.update_subnet(subnet.id, dns_nameservers=["not-an-ip"])
    assert _error(exc)[0] == 400
    router = os_conn.network.create_router(name="r")
    info = os_conn.network.add_interface_to_router(router, subnet=subnet.id)
    with pytest.raises(openstack.exceptions.ConflictException) as exc:
        os_conn.network.update_subnet(subnet.id, gateway_ip="192.168.91.254",
                                      allocation_pools=[{"start": "192.168.91.2", "end": "192.168.91.200"}])
    assert _error(exc) == (409, "GatewayIpInUse", f"Current gateway ip {subnet.gateway_ip} already in use by port "
                                                  f"{info['port_id']}. Unable to update.")
    assert os_conn.network.get_subnet(subnet.id).gateway_ip == subnet.gateway_ip  # refused changes nothing
    _, public_subnet = _public(os_conn)
    with pytest.raises(openstack.exceptions.ForbiddenException) as exc:
        os_conn.network.update_subnet(public_subnet.id, name="mine")
    assert _error(exc)[2] == "(rule:update_subnet) is disallowed by policy"
    with pytest.raises(openstack.exceptions.NotFoundException):
        os_conn.network.update_subnet("00000000-0000-0000-0000-000000000000", name="x")


# persistence ----------------------------------------------------------------------------------------
def test_routers_and_floating_ips_survive_a_restart(tmp_path):
    state = tmp_path / "state.json"
    with running_cloud(state_file=state) as fc:
        conn = fc.connect()
        router = _connected_router(conn)
        private, _ = _private(conn)
        public, _ = _public(conn)
        port = conn.network.create_port(network_id=private.id)
        fip = conn.network.create_ip(floating_network_id=public.id, port_id=port.id)
        before_router = conn.network.get_router(router.id).to_dict()
        conn.close()
    saved = json.loads(state.read_text())["backends"]["network"]
    assert [r["id"] for r in saved["routers"]] == [router.id]
    assert [f["id"] for f in saved["floating_ips"]] == [fip.id]

    with running_cloud(state_file=state) as fc:
        conn = fc.connect()
        assert conn.network.get_router(router.id).to_dict() == before_router
        restored = conn.network.get_ip(fip.id)
        assert (restored.floating_ip_address, restored.port_id, restored.router_id, restored.status) == (
            fip.floating_ip_address, port.id, router.id, "ACTIVE")
        assert fc.cloud.network.floating_ips_of_port(port.id) == [fip.floating_ip_address]
        # the restored addresses stay taken: a new floating IP gets another one
        assert conn.network.create_ip(floating_network_id=public.id).floating_ip_address != fip.floating_ip_address
        with pytest.raises(openstack.exceptions.ConflictException):
            conn.network.delete_router(router)
        conn.network.delete_port(port)
        assert conn.network.get_ip(fip.id).status == "DOWN"
        conn.close()


# the openstack CLI ----------------------------------------------------------------------------------
OPENSTACK = Path(sys.executable).parent / "openstack"


@pytest.mark.cli
def test_cli_router_and_floating_ip(tmp_path):
    if not OPENSTACK.exists():
        pytest.skip("python-openstackclient is not installed in this environment")
    with running_cloud() as fc:
        clouds_yaml = fc.write_clouds_yaml(tmp_path / "clouds.yaml")
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env.update(OS_CLIENT_CONFIG_FILE=str(clouds_yaml), OS_CLOUD="fakecloud")

        def osc(*args: str):
            proc = subprocess.run([str(OPENSTACK), *args], env=env, capture_output=True, text=True, timeout=120)
            assert proc.returncode == 0, proc.stderr
            return json.loads(proc.stdout) if "json" in args else proc.stdout

        conn = fc.connect()
        _remove_router1(conn)
        private, private_subnet = _private(conn)
        router = osc("router", "create", "edge", "--external-gateway", "public", "-f", "json")
        osc("router", "add", "subnet", "edge", private_subnet.id)
        port = conn.network.create_port(network_id=private.id)
        fip = osc("floating", "ip", "create", "public", "--port", port.id, "-f", "json")
        assert fip["port_id"] == port.id and fip["router_id"] == router["id"]
        shown = osc("router", "show", "edge", "-f", "json")
        public, _ = _public(conn)
        assert shown["external_gateway_info"]["network_id"] == public.id
        assert [p.device_owner for p in conn.network.ports(device_id=router["id"])] == [INTERFACE]
        osc("floating", "ip", "unset", "--port", fip["id"])
        assert conn.network.get_ip(fip["id"]).status == "DOWN"
        conn.close()


def test_admin_inventory_counts_routers_and_floating_ips(os_conn, fakecloud):
    public = os_conn.network.find_network("public", ignore_missing=False)
    router = os_conn.network.create_router(name="inv", external_gateway_info={"network_id": public.id})
    floating = os_conn.network.create_ip(floating_network_id=public.id)
    router1 = os_conn.network.find_router("router1", ignore_missing=False)
    inventory = fakecloud.control.inventory("demo")
    assert [r["id"] for r in inventory["routers"]] == [router1.id, router.id]
    assert [f["id"] for f in inventory["floating_ips"]] == [floating.id]
    os_conn.network.delete_ip(floating)
    os_conn.network.delete_router(router)
    inventory = fakecloud.control.inventory("demo")
    assert [r["id"] for r in inventory["routers"]] == [router1.id] and inventory["floating_ips"] == []
