"""Nova v2.1 over real HTTP: openstacksdk for the flows, `requests` for raw wire checks."""

from __future__ import annotations

import ipaddress
import re
import uuid

import openstack.exceptions
import pytest
import requests

from openstack_fakecloud.config import CloudConfig, Quotas
from openstack_fakecloud.testing import running_cloud

WAIT = {"interval": 0.05, "wait": 10}


def _image_id(fakecloud, name: str = "cirros-0.6.2") -> str:
    return fakecloud.cloud.image.find_image(name).id


def _boot(conn, fakecloud, name: str, flavor: str = "1", networks="auto", wait: bool = True, **attrs):
    server = conn.compute.create_server(name=name, image_id=_image_id(fakecloud), flavor_id=flavor,
                                        networks=networks, **attrs)
    return conn.compute.wait_for_server(server, **WAIT) if wait else server


def _raw(fakecloud, conn, method: str, path: str, version: str | None = None, headers: dict | None = None,
         **kwargs) -> requests.Response:
    headers = {"X-Auth-Token": conn.session.get_token(), **(headers or {})}
    if version:
        headers["OpenStack-API-Version"] = f"compute {version}"
    return requests.request(method, fakecloud.url + "/compute/v2.1" + path, headers=headers, timeout=10, **kwargs)


# discovery and microversions ----------------------------------------------------------------
def test_discovery_with_and_without_slash(fakecloud):
    for path in ("/compute/v2.1", "/compute/v2.1/"):
        response = requests.get(fakecloud.url + path, timeout=10)
        assert response.status_code == 200
        version = response.json()["version"]
        assert (version["id"], version["version"], version["min_version"]) == ("v2.1", "2.79", "2.1")
    for path in ("/compute", "/compute/"):
        response = requests.get(fakecloud.url + path, timeout=10)
        assert response.status_code == 200
        assert "v2.1" in [v["id"] for v in response.json()["versions"]]


def test_microversion_negotiation(fakecloud, os_conn):
    too_high = _raw(fakecloud, os_conn, "GET", "/flavors", version="2.200")
    assert too_high.status_code == 406
    assert too_high.json()["notAcceptable"]["code"] == 406
    latest = _raw(fakecloud, os_conn, "GET", "/flavors", version="latest")
    assert latest.headers["OpenStack-API-Version"] == "compute 2.79"
    fakecloud.control.set_microversions(compute="2.90")
    conn = fakecloud.connect()
    try:
        server = _boot(conn, fakecloud, "mv", networks="none")
        response = _raw(fakecloud, conn, "GET", f"/servers/{server.id}", version="latest")
        assert response.headers["OpenStack-API-Version"] == "compute 2.90"
        assert response.json()["server"]["flavor"]["original_name"] == "m1.tiny"
    finally:
        conn.close()


def test_views_follow_the_microversion(fakecloud, os_conn):
    server = _boot(os_conn, fakecloud, "old-and-new", networks="none")
    old = _raw(fakecloud, os_conn, "GET", f"/servers/{server.id}", version="2.1").json()["server"]
    new = _raw(fakecloud, os_conn, "GET", f"/servers/{server.id}", version="2.79").json()["server"]
    assert old["flavor"]["id"] == "1" and "links" in old["flavor"]
    assert "tags" not in old and "locked" not in old
    assert new["flavor"]["original_name"] == "m1.tiny" and new["flavor"]["vcpus"] == 1
    assert new["tags"] == [] and new["locked"] is False
    assert isinstance(new["image"], dict) and new["image"]["id"] == _image_id(fakecloud)
    assert "OS-EXT-SRV-ATTR:host" not in new  # admin-only
    missing_networks = _raw(fakecloud, os_conn, "POST", "/servers", version="2.37",
                            json={"server": {"name": "x", "imageRef": _image_id(fakecloud), "flavorRef": "1"}})
    assert missing_networks.status_code == 400
    assert "networks" in missing_networks.json()["badRequest"]["message"]


# flavors ------------------------------------------------------------------------------------
def test_flavors_list_show_and_find_by_name(fakecloud, os_conn):
    flavor = os_conn.compute.find_flavor("m1.small", ignore_missing=False)
    assert (flavor.id, flavor.ram, flavor.vcpus, flavor.disk) == ("2", 2048, 1, 20)
    by_name = _raw(fakecloud, os_conn, "GET", "/flavors/m1.small")
    assert by_name.status_code == 404
    assert by_name.json()["itemNotFound"]["message"] == "Flavor m1.small could not be found."
    listed = _raw(fakecloud, os_conn, "GET", "/flavors/detail?is_public=None").json()["flavors"]
    assert {f["name"] for f in listed} >= {"m1.tiny", "m1.small", "m1.medium", "m1.large", "m1.xlarge"}
    big = _raw(fakecloud, os_conn, "GET", "/flavors/detail?minRam=8192").json()["flavors"]
    assert sorted(f["name"] for f in big) == ["m1.large", "m1.xlarge"]
    page = _raw(fakecloud, os_conn, "GET", "/flavors?limit=2").json()
    assert len(page["flavors"]) == 2 and page["flavors_links"][0]["rel"] == "next"


def test_admin_creates_and_deletes_a_flavor(fakecloud, os_conn, os_admin):
    flavor = os_admin.compute.create_flavor(name="c1.custom", ram=1024, vcpus=2, disk=10)
    assert os_conn.compute.find_flavor("c1.custom", ignore_missing=False).id == flavor.id
    with pytest.raises(openstack.exceptions.ForbiddenException):
        os_conn.compute.create_flavor(name="nope", ram=1, vcpus=1, disk=1)
    os_admin.compute.delete_flavor(flavor)
    with pytest.raises(openstack.exceptions.NotFoundException):
        os_conn.compute.find_flavor("c1.custom", ignore_missing=False)


# server lifecycle ---------------------------------------------------------------------------
def test_server_life_create_resize_confirm_delete(fakecloud, os_conn):
    created = _boot(os_conn, fakecloud, "life", wait=False, metadata={"role": "db"})
    assert created.admin_password
    server = os_conn.compute.wait_for_server(created, **WAIT)
    assert server.status == "ACTIVE" and server.vm_state == "active" and server.power_state == 1
    assert server.flavor.original_name == "m1.tiny"
    assert server.metadata == {"role": "db"}
    assert [a["addr"] for a in server.addresses["private"]], "a port on the project's network"
    assert server.security_groups == [{"name": "default"}]
    assert [p.device_id for p in os_conn.network.ports(device_id=server.id)] == [server.id]

    os_conn.compute.resize_server(server, "2")
    server = os_conn.compute.wait_for_server(server, status="VERIFY_RESIZE", **WAIT)
    assert server.flavor.original_name == "m1.small"
    os_conn.compute.confirm_server_resize(server)
    server = os_conn.compute.wait_for_server(server, status="ACTIVE", **WAIT)
    assert server.flavor.original_name == "m1.small" and server.flavor.ram == 2048
    assert os_conn.compute.get_limits().absolute.total_ram_used == 2048

    os_conn.compute.delete_server(server)
    os_conn.compute.wait_for_delete(server, **WAIT)
    with pytest.raises(openstack.exceptions.NotFoundException):
        os_conn.compute.get_server(server.id)
    assert list(os_conn.network.ports(device_id=server.id)) == []
    assert os_conn.compute.get_limits().absolute.instances_used == 0


def test_resize_revert_returns_the_old_flavor(fakecloud, os_conn):
    server = _boot(os_conn, fakecloud, "revert", networks="none")
    os_conn.compute.resize_server(server, "3")
    server = os_conn.compute.wait_for_server(server, status="VERIFY_RESIZE", **WAIT)
    assert server.flavor.original_name == "m1.medium"
    os_conn.compute.revert_server_resize(server)
    server = os_conn.compute.wait_for_server(server, status="ACTIVE", **WAIT)
    assert server.flavor.original_name == "m1.tiny" and server.flavor.vcpus == 1
    assert os_conn.compute.get_limits().absolute.total_cores_used == 1


def test_intermediate_states_on_a_frozen_clock(fakecloud, os_conn):
    fakecloud.control.freeze()
    try:
        fakecloud.control.set_delays(server_boot=5, server_resize=5, server_delete=5)
        server = _boot(os_conn, fakecloud, "slow", networks="none", wait=False)
        shown = os_conn.compute.get_server(server.id)
        assert (shown.status, shown.task_state) == ("BUILD", "scheduling")
        fakecloud.control.advance(5)
        assert os_conn.compute.get_server(server.id).status == "ACTIVE"

        os_conn.compute.resize_server(server, "2")
        assert os_conn.compute.get_server(server.id).status == "RESIZE"
        fakecloud.control.advance(5)
        shown = os_conn.compute.get_server(server.id)
        assert shown.status == "VERIFY_RESIZE" and shown.flavor.original_name == "m1.small"

        os_conn.compute.delete_server(server)
        shown = os_conn.compute.get_server(server.id)
        assert (shown.status, shown.task_state) == ("VERIFY_RESIZE", "deleting")
        fakecloud.control.advance(5)
        with pytest.raises(openstack.exceptions.NotFoundException):
            os_conn.compute.get_server(server.id)
    finally:
        fakecloud.control.freeze(False)


def test_power_actions(fakecloud, os_conn):
    server = _boot(os_conn, fakecloud, "power", networks="none")
    os_conn.compute.stop_server(server)
    server = os_conn.compute.wait_for_server(server, status="SHUTOFF", **WAIT)
    assert server.power_state == 4
    with pytest.raises(openstack.exceptions.ConflictException) as err:
        os_conn.compute.stop_server(server)
    assert f"Cannot 'stop' instance {server.id} while it is in vm_state stopped" in str(err.value)
    os_conn.compute.start_server(server)
    os_conn.compute.wait_for_server(server, status="ACTIVE", **WAIT)
    os_conn.compute.reboot_server(server, "HARD")
    assert os_conn.compute.wait_for_server(server, status="ACTIVE", **WAIT).power_state == 1


def test_action_errors(fakecloud, os_conn):
    server = _boot(os_conn, fakecloud, "errors", networks="none")
    with pytest.raises(openstack.exceptions.ConflictException) as err:
        os_conn.compute.confirm_server_resize(server)
    assert f"Cannot 'confirmResize' instance {server.id} while it is in vm_state active" in str(err.value)
    with pytest.raises(openstack.exceptions.BadRequestException):
        os_conn.compute.resize_server(server, "1")  # same flavor
    with pytest.raises(openstack.exceptions.BadRequestException):
        os_conn.compute.resize_server(server, "no-such-flavor")
    unknown = _raw(fakecloud, os_conn, "POST", f"/servers/{server.id}/action", json={"fly": None})
    assert unknown.status_code == 400 and "fly" in unknown.json()["badRequest"]["message"]
    missing = _raw(fakecloud, os_conn, "GET", "/servers/web-1")
    assert missing.status_code == 404
    assert missing.json()["itemNotFound"]["message"] == "Instance web-1 could not be found."
    bad_flavor = _raw(fakecloud, os_conn, "POST", "/servers", json={"server": {
        "name": "x", "imageRef": _image_id(fakecloud), "flavorRef": "404", "networks": "none"}})
    assert bad_flavor.status_code == 400
    bad_image = _raw(fakecloud, os_conn, "POST", "/servers", json={"server": {
        "name": "x", "imageRef": "no-such-image", "flavorRef": "1", "networks": "none"}})
    assert bad_image.status_code == 400


def test_security_groups_follow_the_ports(fakecloud, os_conn):
    group = os_conn.network.create_security_group(name="web")
    server = _boot(os_conn, fakecloud, "sg", security_groups=[{"name": "default"}])
    os_conn.compute.add_security_group_to_server(server, group)
    names = {g["name"] for g in os_conn.compute.get_server(server.id).security_groups}
    assert names == {"default", "web"}
    port = next(iter(os_conn.network.ports(device_id=server.id)))
    assert group.id in port.security_group_ids
    os_conn.compute.remove_security_group_from_server(server, group)
    port = os_conn.network.get_port(port.id)
    assert group.id not in port.security_group_ids
    listed = _raw(fakecloud, os_conn, "GET", f"/servers/{server.id}/os-security-groups").json()
    assert [g["name"] for g in listed["security_groups"]] == ["default"]
    interfaces = list(os_conn.compute.server_interfaces(server))
    assert [i.port_id for i in interfaces] == [port.id]


def test_boot_on_a_given_port_and_fixed_ip(fakecloud, os_conn):
    network = os_conn.network.find_network("private", ignore_missing=False)
    port = os_conn.network.create_port(network_id=network.id)
    on_port = _boot(os_conn, fakecloud, "on-port", networks=[{"port": port.id}])
    assert os_conn.network.get_port(port.id).device_id == on_port.id
    wanted = str(ipaddress.ip_network(os_conn.network.get_subnet(network.subnet_ids[0]).cidr)[77])
    pinned = _boot(os_conn, fakecloud, "pinned", networks=[{"uuid": network.id, "fixed_ip": wanted}])
    assert [a["addr"] for a in pinned.addresses["private"]] == [wanted]
    taken = _raw(fakecloud, os_conn, "POST", "/servers", json={"server": {
        "name": "x", "imageRef": _image_id(fakecloud), "flavorRef": "1", "networks": [{"port": port.id}]}})
    assert taken.status_code == 409
    unknown = _raw(fakecloud, os_conn, "POST", "/servers", json={"server": {
        "name": "x", "imageRef": _image_id(fakecloud), "flavorRef": "1", "networks": [{"uuid": "nope"}]}})
    assert unknown.status_code == 400
    assert os_conn.compute.get_limits().absolute.instances_used == 2


# listing ------------------------------------------------------------------------------------
def test_list_filters_by_name_and_status(fakecloud, os_conn):
    for name in ("web-1", "web-2", "db-1"):
        _boot(os_conn, fakecloud, name, networks="none")
    stopped = os_conn.compute.find_server("web-2", ignore_missing=False)
    os_conn.compute.stop_server(stopped)
    os_conn.compute.wait_for_server(stopped, status="SHUTOFF", **WAIT)
    assert sorted(s.name for s in os_conn.compute.servers(name="web")) == ["web-1", "web-2"]
    assert [s.name for s in os_conn.compute.servers(name="^db-")] == ["db-1"]
    assert [s.name for s in os_conn.compute.servers(status="SHUTOFF")] == ["web-2"]
    assert sorted(s.name for s in os_conn.compute.servers(status="ACTIVE")) == ["db-1", "web-1"]
    osc_style = _raw(fakecloud, os_conn, "GET", "/servers/detail?deleted=False").json()["servers"]
    assert len(osc_style) == 3
    assert [s.name for s in os_conn.compute.servers(flavor="1", name="db")] == ["db-1"]


def test_pagination_newest_first(fakecloud, os_conn):
    names = [f"page-{i}" for i in range(5)]
    for name in names:
        _boot(os_conn, fakecloud, name, networks="none", wait=False)
    first = _raw(fakecloud, os_conn, "GET", "/servers/detail?limit=2").json()
    assert [s["name"] for s in first["servers"]] == ["page-4", "page-3"]
    next_href = first["servers_links"][0]["href"]
    assert "marker=" in next_href and "limit=2" in next_href
    second = requests.get(next_href, headers={"X-Auth-Token": os_conn.session.get_token()}, timeout=10).json()
    assert [s["name"] for s in second["servers"]] == ["page-2", "page-1"]
    last_marker = second["servers"][-1]["id"]
    third = _raw(fakecloud, os_conn, "GET", f"/servers?limit=2&marker={last_marker}").json()
    assert [s["name"] for s in third["servers"]] == ["page-0"] and "servers_links" not in third
    assert [s.name for s in os_conn.compute.servers(limit=2, paginated=True)] == names[::-1]
    bad = _raw(fakecloud, os_conn, "GET", "/servers?marker=nope")
    assert bad.status_code == 400


def test_projects_are_isolated(fakecloud, os_conn, os_admin):
    secret = _boot(os_admin, fakecloud, "admin-only", networks="none")
    mine = _boot(os_conn, fakecloud, "demo-own", networks="none")
    assert [s.name for s in os_conn.compute.servers()] == ["demo-own"]
    with pytest.raises(openstack.exceptions.NotFoundException):
        os_conn.compute.get_server(secret.id)
    with pytest.raises(openstack.exceptions.NotFoundException):
        os_conn.compute.delete_server(secret, ignore_missing=False)
    assert os_admin.compute.get_server(secret.id).status == "ACTIVE"
    assert [s.name for s in os_admin.compute.servers()] == ["admin-only"]
    everyone = {s.name: s for s in os_admin.compute.servers(all_projects=True)}
    assert set(everyone) == {"admin-only", "demo-own"}
    assert everyone["demo-own"].project_id == os_conn.current_project_id
    assert everyone["demo-own"].compute_host, "admins see the OS-EXT-SRV-ATTR fields"
    assert os_conn.compute.get_server(mine.id).compute_host is None


# quotas and limits --------------------------------------------------------------------------
def test_quota_exceeded_is_nova_403():
    with running_cloud(CloudConfig(quotas=Quotas(instances=2, cores=3))) as fc:
        conn = fc.connect()
        try:
            for i in range(2):
                _boot(conn, fc, f"q-{i}", networks="none", wait=False)
            with pytest.raises(openstack.exceptions.ForbiddenException) as err:
                _boot(conn, fc, "q-2", networks="none", wait=False)
            assert err.value.status_code == 403
            assert "Quota exceeded for instances: Requested 1, but already used 2 of 2 instances" in str(err.value)
            limits = conn.compute.get_limits().absolute
            assert (limits.instances, limits.instances_used, limits.total_cores_used) == (2, 2, 2)
            server = next(iter(conn.compute.servers()))
            conn.compute.wait_for_server(server, **WAIT)
            with pytest.raises(openstack.exceptions.ForbiddenException) as err:
                conn.compute.resize_server(server, "4")  # 1 -> 4 cores: 5 of a 3-core quota
            assert "Quota exceeded for cores" in str(err.value)
            detail = _raw(fc, conn, "GET", f"/os-quota-sets/{conn.current_project_id}/detail").json()
            assert detail["quota_set"]["instances"] == {"limit": 2, "in_use": 2, "reserved": 0}
        finally:
            conn.close()


def test_admin_lowers_a_project_quota(fakecloud, os_conn, os_admin):
    os_admin.compute.update_quota_set(os_conn.current_project_id, instances=0)
    with pytest.raises(openstack.exceptions.ForbiddenException):
        _boot(os_conn, fakecloud, "none-left", networks="none", wait=False)
    assert os_conn.compute.get_quota_set(os_conn.current_project_id).instances == 0


# faults -------------------------------------------------------------------------------------
def test_create_fault_sends_server_to_error(fakecloud, os_conn):
    fakecloud.control.add_fault(service="compute", operation="server.create", action="error_status",
                                message="No valid host was found.")
    server = _boot(os_conn, fakecloud, "doomed", wait=False)
    with pytest.raises(openstack.exceptions.ResourceFailure):
        os_conn.compute.wait_for_server(server, **WAIT)
    shown = os_conn.compute.get_server(server.id)
    assert shown.status == "ERROR"
    assert shown.fault["message"] == "No valid host was found." and shown.fault["code"] == 500
    assert fakecloud.control.inventory("demo")["servers"][0]["status"] == "ERROR"


def test_stuck_resize_stays_in_resize(fakecloud, os_conn):
    server = _boot(os_conn, fakecloud, "stuck", networks="none")
    fakecloud.control.add_fault(service="compute", operation="server.resize", action="stuck")
    os_conn.compute.resize_server(server, "2")
    fakecloud.control.advance(3600)
    shown = os_conn.compute.get_server(server.id)
    assert shown.status == "RESIZE" and shown.flavor.original_name == "m1.tiny"
    with pytest.raises(openstack.exceptions.ConflictException):
        os_conn.compute.resize_server(server, "3")


def test_resize_fault_keeps_the_old_flavor(fakecloud, os_conn):
    server = _boot(os_conn, fakecloud, "resize-error", networks="none")
    fakecloud.control.add_fault(service="compute", operation="server.resize", action="error_status",
                                message="Migration pre-check error")
    os_conn.compute.resize_server(server, "2")
    shown = os_conn.compute.wait_for_server(server, status="ERROR", failures=[], **WAIT)
    assert shown.flavor.original_name == "m1.tiny"
    assert shown.fault["message"] == "Migration pre-check error"


# volumes ------------------------------------------------------------------------------------
def test_attach_and_detach_a_volume(fakecloud, os_conn):
    server = _boot(os_conn, fakecloud, "with-disk", networks="none")
    volume = os_conn.block_storage.create_volume(name="data", size=1)
    volume = os_conn.block_storage.wait_for_status(volume, "available", **WAIT)
    attachment = os_conn.compute.create_volume_attachment(server, volume)
    assert attachment.volume_id == volume.id and attachment.device == "/dev/vdb"
    volume = os_conn.block_storage.wait_for_status(volume, "in-use", **WAIT)
    assert [a["server_id"] for a in volume.attachments] == [server.id]
    assert os_conn.compute.get_volume_attachment(server, volume).device == "/dev/vdb"
    assert [v.id for v in os_conn.compute.get_server(server.id).attached_volumes] == [volume.id]
    assert [a.volume_id for a in os_conn.compute.volume_attachments(server)] == [volume.id]

    os_conn.compute.delete_volume_attachment(server, volume)
    volume = os_conn.block_storage.wait_for_status(volume, "available", **WAIT)
    assert volume.attachments == []
    with pytest.raises(openstack.exceptions.NotFoundException):
        os_conn.compute.get_volume_attachment(server, volume)


def test_deleting_a_server_frees_its_volume(fakecloud, os_conn):
    server = _boot(os_conn, fakecloud, "gone", networks="none")
    volume = os_conn.block_storage.wait_for_status(os_conn.block_storage.create_volume(size=1), "available", **WAIT)
    os_conn.compute.create_volume_attachment(server, volume)
    os_conn.block_storage.wait_for_status(volume, "in-use", **WAIT)
    os_conn.compute.delete_server(server)
    os_conn.compute.wait_for_delete(server, **WAIT)
    assert os_conn.block_storage.get_volume(volume.id).status == "available"


# misc ---------------------------------------------------------------------------------------
def test_zones_keypairs_and_metadata(fakecloud, os_conn):
    assert [z.name for z in os_conn.compute.availability_zones()] == ["nova"]
    assert list(os_conn.compute.keypairs()) == []
    keypair = os_conn.compute.create_keypair(name="mine", public_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 me@host")
    assert keypair.fingerprint and [k.name for k in os_conn.compute.keypairs()] == ["mine"]
    server = _boot(os_conn, fakecloud, "meta", networks="none", key_name="mine")
    assert server.key_name == "mine"
    os_conn.compute.set_server_metadata(server, color="blue")
    assert os_conn.compute.get_server(server.id).metadata == {"color": "blue"}
    os_conn.compute.update_server(server, name="renamed")
    assert os_conn.compute.get_server(server.id).name == "renamed"


def test_state_survives_a_restart_and_settles(fakecloud, os_conn, tmp_path):
    fakecloud.control.freeze()
    try:
        fakecloud.control.set_delays(server_boot=60)
        server = _boot(os_conn, fakecloud, "saved", networks="none", wait=False)
        assert os_conn.compute.get_server(server.id).status == "BUILD"
        state = tmp_path / "state.json"
        fakecloud.control.save(str(state))
    finally:
        fakecloud.control.freeze(False)
    with running_cloud(state_file=state) as fc:
        conn = fc.connect()
        try:
            shown = conn.compute.get_server(server.id)
            assert (shown.status, shown.name) == ("ACTIVE", "saved")
        finally:
            conn.close()


# issue 13: fidelity fixes -------------------------------------------------------------------
REQUEST_ID = re.compile(r"^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _create_raw(fakecloud, conn, version: str = "2.37", **server) -> requests.Response:
    body = {"name": "raw", "imageRef": _image_id(fakecloud), "flavorRef": "1", "networks": "none", **server}
    return _raw(fakecloud, conn, "POST", "/servers", version=version, json={"server": body})


def test_action_status_codes_follow_nova(fakecloud, os_conn):
    server = _boot(os_conn, fakecloud, "codes", networks="none")

    def act(body):
        return _raw(fakecloud, os_conn, "POST", f"/servers/{server.id}/action", json=body)

    assert act({"resize": {"flavorRef": "2"}}).status_code == 202
    os_conn.compute.wait_for_server(server, status="VERIFY_RESIZE", **WAIT)
    confirmed = act({"confirmResize": None})
    assert (confirmed.status_code, confirmed.content) == (204, b"")
    os_conn.compute.wait_for_server(server, status="ACTIVE", **WAIT)
    assert act({"resize": {"flavorRef": "3"}}).status_code == 202
    os_conn.compute.wait_for_server(server, status="VERIFY_RESIZE", **WAIT)
    assert act({"revertResize": None}).status_code == 202
    os_conn.compute.wait_for_server(server, status="ACTIVE", **WAIT)
    assert act({"os-stop": None}).status_code == 202
    os_conn.compute.wait_for_server(server, status="SHUTOFF", **WAIT)
    assert act({"os-start": None}).status_code == 202
    os_conn.compute.wait_for_server(server, status="ACTIVE", **WAIT)
    assert act({"reboot": {"type": "SOFT"}}).status_code == 202


def test_server_ips(fakecloud, os_conn):
    server = _boot(os_conn, fakecloud, "ips")
    listed = _raw(fakecloud, os_conn, "GET", f"/servers/{server.id}/ips")
    assert listed.status_code == 200
    addresses = listed.json()["addresses"]
    assert list(addresses) == ["private"]
    assert [set(a) for a in addresses["private"]] == [{"version", "addr"}]  # no OS-EXT-IPS fields here
    assert addresses["private"][0]["addr"] == server.addresses["private"][0]["addr"]
    one = _raw(fakecloud, os_conn, "GET", f"/servers/{server.id}/ips/private")
    assert one.status_code == 200 and one.json() == {"private": addresses["private"]}
    unknown = _raw(fakecloud, os_conn, "GET", f"/servers/{server.id}/ips/public")
    assert unknown.status_code == 404
    assert unknown.json()["itemNotFound"]["message"] == "Instance is not a member of specified network"
    assert _raw(fakecloud, os_conn, "GET", "/servers/nope/ips").status_code == 404


def test_instance_actions_record_each_request(fakecloud, os_conn, os_admin):
    created = _create_raw(fakecloud, os_conn)
    assert created.status_code == 202
    create_id = created.headers["x-compute-request-id"]
    server_id = created.json()["server"]["id"]
    server = os_conn.compute.wait_for_server(os_conn.compute.get_server(server_id), **WAIT)
    rebooted = _raw(fakecloud, os_conn, "POST", f"/servers/{server_id}/action", json={"reboot": {"type": "HARD"}})
    os_conn.compute.wait_for_server(server, status="ACTIVE", **WAIT)

    listed = _raw(fakecloud, os_conn, "GET", f"/servers/{server_id}/os-instance-actions").json()["instanceActions"]
    assert [a["action"] for a in listed] == ["reboot", "create"]  # newest first
    assert [a["request_id"] for a in listed] == [rebooted.headers["x-compute-request-id"], create_id]
    first = listed[1]
    assert set(first) == {"action", "instance_uuid", "request_id", "user_id", "project_id", "start_time", "message"}
    assert (first["instance_uuid"], first["project_id"], first["message"]) == (
        server_id, os_conn.current_project_id, None)
    assert first["user_id"] == os_conn.current_user_id

    path = f"/servers/{server_id}/os-instance-actions/{create_id}"
    shown = _raw(fakecloud, os_conn, "GET", path).json()["instanceAction"]
    assert shown["action"] == "create" and "events" not in shown  # before 2.51 events are admin-only
    with_events = _raw(fakecloud, os_conn, "GET", path, version="2.51").json()["instanceAction"]
    [event] = with_events["events"]
    assert event["result"] == "Success" and event["finish_time"] and "traceback" not in event
    admin_view = _raw(fakecloud, os_admin, "GET", path).json()["instanceAction"]
    assert admin_view["events"][0]["traceback"] is None
    newer = _raw(fakecloud, os_conn, "GET", path, version="2.62").json()["instanceAction"]
    assert "updated_at" in newer and newer["events"][0]["hostId"] and "host" not in newer["events"][0]

    missing = _raw(fakecloud, os_conn, "GET", f"/servers/{server_id}/os-instance-actions/req-nope")
    assert missing.status_code == 404
    assert missing.json()["itemNotFound"]["message"] == "Action req-nope not found"
    assert _raw(fakecloud, os_conn, "GET", "/servers/nope/os-instance-actions").status_code == 404

    os_conn.compute.delete_server(server)
    os_conn.compute.wait_for_delete(server, **WAIT)
    gone = _raw(fakecloud, os_conn, "GET", f"/servers/{server_id}/os-instance-actions")
    assert gone.status_code == 404  # before 2.21 a deleted server has no history to show
    kept = _raw(fakecloud, os_conn, "GET", f"/servers/{server_id}/os-instance-actions", version="2.21")
    assert [a["action"] for a in kept.json()["instanceActions"]] == ["delete", "reboot", "create"]
    other = fakecloud.connect("admin")
    try:
        assert _raw(fakecloud, other, "GET", f"/servers/{server_id}/os-instance-actions",
                    version="2.21").status_code == 200  # admins see any project's
    finally:
        other.close()


def test_instance_actions_for_resize_stop_start_and_volumes(fakecloud, os_conn):
    server = _boot(os_conn, fakecloud, "busy", networks="none")
    os_conn.compute.resize_server(server, "2")
    os_conn.compute.wait_for_server(server, status="VERIFY_RESIZE", **WAIT)
    os_conn.compute.confirm_server_resize(server)
    os_conn.compute.wait_for_server(server, status="ACTIVE", **WAIT)
    os_conn.compute.stop_server(server)
    os_conn.compute.wait_for_server(server, status="SHUTOFF", **WAIT)
    os_conn.compute.start_server(server)
    os_conn.compute.wait_for_server(server, status="ACTIVE", **WAIT)
    volume = os_conn.block_storage.wait_for_status(os_conn.block_storage.create_volume(size=1), "available", **WAIT)
    os_conn.compute.create_volume_attachment(server, volume)
    os_conn.block_storage.wait_for_status(volume, "in-use", **WAIT)
    os_conn.compute.delete_volume_attachment(server, volume)
    os_conn.block_storage.wait_for_status(volume, "available", **WAIT)
    listed = _raw(fakecloud, os_conn, "GET", f"/servers/{server.id}/os-instance-actions").json()["instanceActions"]
    assert [a["action"] for a in listed][::-1] == [
        "create", "resize", "confirmResize", "stop", "start", "attach_volume", "detach_volume"]
    refused = _raw(fakecloud, os_conn, "POST", f"/servers/{server.id}/action", json={"confirmResize": None})
    assert refused.status_code == 409
    again = _raw(fakecloud, os_conn, "GET", f"/servers/{server.id}/os-instance-actions").json()["instanceActions"]
    assert len(again) == len(listed)  # a refused request records nothing


def test_failed_work_marks_the_action(fakecloud, os_conn):
    fakecloud.control.add_fault(service="compute", operation="server.create", action="error_status")
    created = _create_raw(fakecloud, os_conn)
    server_id, request_id = created.json()["server"]["id"], created.headers["x-compute-request-id"]
    with pytest.raises(openstack.exceptions.ResourceFailure):
        os_conn.compute.wait_for_server(os_conn.compute.get_server(server_id), **WAIT)
    shown = _raw(fakecloud, os_conn, "GET", f"/servers/{server_id}/os-instance-actions/{request_id}",
                 version="2.51").json()["instanceAction"]
    assert shown["message"] == "Error" and shown["events"][0]["result"] == "Error"


def test_request_id_headers(fakecloud, os_conn):
    ok = _raw(fakecloud, os_conn, "GET", "/flavors")
    assert REQUEST_ID.match(ok.headers["x-compute-request-id"])
    assert ok.headers["x-openstack-request-id"] == ok.headers["x-compute-request-id"]
    failed = _raw(fakecloud, os_conn, "GET", "/servers/nope")
    assert failed.status_code == 404
    assert REQUEST_ID.match(failed.headers["x-compute-request-id"])
    assert failed.headers["x-openstack-request-id"] == failed.headers["x-compute-request-id"]
    assert ok.headers["x-compute-request-id"] != failed.headers["x-compute-request-id"]
    discovery = requests.get(fakecloud.url + "/compute/", timeout=10)
    assert discovery.headers["x-compute-request-id"] == discovery.headers["x-openstack-request-id"]
    # A caller's global id is kept, not echoed: the answer carries Nova's own local id.
    sent = "req-" + str(uuid.uuid4())
    answered = _raw(fakecloud, os_conn, "GET", "/flavors", headers={"X-OpenStack-Request-ID": sent})
    assert REQUEST_ID.match(answered.headers["x-compute-request-id"])
    assert answered.headers["x-compute-request-id"] != sent
    # ...and the request log ties the two: the caller's global id beside the answer's own.
    logged = [r for r in fakecloud.control.requests()["requests"]
              if r["request_id"] == answered.headers["x-compute-request-id"]]
    assert [r["global_request_id"] for r in logged] == [sent]
    # other services carry the common header only
    images = requests.get(fakecloud.url + "/image/v2/images", timeout=10,
                          headers={"X-Auth-Token": os_conn.session.get_token()})
    assert REQUEST_ID.match(images.headers["x-openstack-request-id"])
    assert "x-compute-request-id" not in images.headers


def test_update_answers_nova_update_view(fakecloud, os_conn):
    server = _boot(os_conn, fakecloud, "upd", key_name=None)
    path = f"/servers/{server.id}"
    old = _raw(fakecloud, os_conn, "PUT", path, json={"server": {"name": "upd-2", "accessIPv4": "10.1.2.3"}})
    assert old.status_code == 200
    body = old.json()["server"]
    assert (body["name"], body["accessIPv4"], body["accessIPv6"]) == ("upd-2", "10.1.2.3", "")
    for hidden in ("key_name", "security_groups", "OS-EXT-STS:vm_state", "OS-EXT-AZ:availability_zone",
                   "OS-SRV-USG:launched_at", "config_drive", "os-extended-volumes:volumes_attached"):
        assert hidden not in body
    assert [set(a) for a in body["addresses"]["private"]] == [{"version", "addr"}]
    assert {"id", "status", "tenant_id", "user_id", "metadata", "hostId", "image", "flavor", "links"} <= set(body)
    new = _raw(fakecloud, os_conn, "PUT", path, version="2.75",
               json={"server": {"accessIPv6": "2001:db8::1"}}).json()["server"]
    assert new["accessIPv6"] == "2001:db8::1" and new["key_name"] is None and new["OS-EXT-STS:vm_state"] == "active"
    assert "OS-EXT-IPS:type" in new["addresses"]["private"][0]
    assert "adminPass" not in new
    bad = _raw(fakecloud, os_conn, "PUT", path, json={"server": {"accessIPv4": "300.1.1.1"}})
    assert bad.status_code == 400 and "accessIPv4" in bad.json()["badRequest"]["message"]
    assert os_conn.compute.get_server(server.id).access_ipv4 == "10.1.2.3"


@pytest.mark.parametrize(("server", "status", "message"), [
    ({"key_name": "no-such-key"}, 400, "Invalid key_name provided."),
    ({"accessIPv4": "1.2.3"}, 400, "Invalid input for field/attribute accessIPv4."),
    ({"accessIPv4": "::1"}, 400, "Invalid input for field/attribute accessIPv4."),
    ({"accessIPv6": "1.2.3.4"}, 400, "Invalid input for field/attribute accessIPv6."),
    ({"metadata": {"k" * 256: "v"}}, 400, "Additional properties are not allowed"),
    ({"metadata": {"": "v"}}, 400, "Additional properties are not allowed"),
    ({"metadata": {"k": "v" * 256}}, 400, "is too long"),
    ({"metadata": {f"k{i}": "v" for i in range(129)}}, 403, "Maximum number of metadata items exceeds 128"),
    ({"name": "n" * 256}, 400, "Invalid input for field/attribute name."),
    ({"adminPass": 42}, 400, "Invalid input for field/attribute adminPass."),
])
def test_invalid_create_is_refused_and_creates_nothing(fakecloud, os_conn, server, status, message):
    response = _create_raw(fakecloud, os_conn, networks="auto", **server)
    assert response.status_code == status, response.text
    key = "badRequest" if status == 400 else "forbidden"
    assert message in response.json()[key]["message"]
    assert list(os_conn.compute.servers()) == []
    assert list(os_conn.network.ports(device_owner="compute:nova")) == []
    assert os_conn.compute.get_limits().absolute.instances_used == 0


def test_metadata_limits_on_the_metadata_api(fakecloud, os_conn):
    server = _boot(os_conn, fakecloud, "meta-limits", networks="none", metadata={"a": "1"})
    path = f"/servers/{server.id}/metadata"
    full = {f"k{i}": "v" for i in range(128)}
    over = _raw(fakecloud, os_conn, "POST", path, json={"metadata": full})  # merged with "a": 129 items
    assert over.status_code == 403
    assert over.json()["forbidden"]["message"] == "Maximum number of metadata items exceeds 128"
    assert _raw(fakecloud, os_conn, "PUT", path, json={"metadata": full}).status_code == 200  # replaces: 128
    long_value = _raw(fakecloud, os_conn, "PUT", path, json={"metadata": {"a": "v" * 256}})
    assert long_value.status_code == 400
    assert len(os_conn.compute.get_server(server.id).metadata) == 128


def test_admin_pass_is_returned_once_and_kept(fakecloud, os_conn):
    generated = _create_raw(fakecloud, os_conn, name="gen")
    password = generated.json()["server"]["adminPass"]
    assert isinstance(password, str) and len(password) == 12
    chosen = _create_raw(fakecloud, os_conn, name="chosen", adminPass="s3cret-Pass")
    assert chosen.json()["server"]["adminPass"] == "s3cret-Pass"
    backend = fakecloud.cloud.compute
    assert backend.servers[generated.json()["server"]["id"]].admin_pass == password
    assert backend.servers[chosen.json()["server"]["id"]].admin_pass == "s3cret-Pass"
    for server_id in (generated.json()["server"]["id"], chosen.json()["server"]["id"]):
        shown = _raw(fakecloud, os_conn, "GET", f"/servers/{server_id}", version="latest")
        assert "adminPass" not in shown.json()["server"] and "s3cret" not in shown.text
        assert password not in shown.text
    listed = _raw(fakecloud, os_conn, "GET", "/servers/detail")
    assert "adminPass" not in listed.text and "s3cret" not in listed.text and password not in listed.text


# rebuild and console ------------------------------------------------------------------------
def test_rebuild_answers_the_new_password_and_keeps_ports_and_volumes(fakecloud, os_conn):
    server = _boot(os_conn, fakecloud, "rebuilt")
    volume = os_conn.block_storage.create_volume(name="kept", size=1)
    os_conn.block_storage.wait_for_status(volume, "available", **WAIT)
    os_conn.compute.create_volume_attachment(server, volume=volume)
    os_conn.block_storage.wait_for_status(volume, "in-use", **WAIT)
    fakecloud.control.set_delays(server_rebuild=30)
    other = _image_id(fakecloud, "mysql-8.0")
    answer = _raw(fakecloud, os_conn, "POST", f"/servers/{server.id}/action",
                  json={"rebuild": {"imageRef": other, "name": "renamed", "metadata": {"k": "v"}}})
    assert answer.status_code == 202
    body = answer.json()["server"]
    assert body["adminPass"] and body["name"] == "renamed" and body["image"]["id"] == other
    assert os_conn.compute.get_server(server.id).status == "REBUILD"
    busy = _raw(fakecloud, os_conn, "POST", f"/servers/{server.id}/action", json={"reboot": {"type": "HARD"}})
    assert busy.status_code == 409
    fakecloud.control.advance(31)
    shown = os_conn.compute.wait_for_server(os_conn.compute.get_server(server.id), **WAIT)
    assert (shown.status, shown.image["id"], shown.metadata) == ("ACTIVE", other, {"k": "v"})
    assert shown.addresses == server.addresses
    assert [a.volume_id for a in os_conn.compute.volume_attachments(server)] == [volume.id]
    actions = [a.action for a in os_conn.compute.server_actions(server)]
    assert "rebuild" in actions


def test_rebuild_refuses_what_nova_refuses(fakecloud, os_conn):
    server = _boot(os_conn, fakecloud, "strict")
    missing = _raw(fakecloud, os_conn, "POST", f"/servers/{server.id}/action",
                   json={"rebuild": {"imageRef": "3f0c1f9e-0000-4000-8000-000000000000"}})
    assert missing.status_code == 400 and missing.json()["badRequest"]["message"] == "Cannot find image for rebuild"
    no_image = _raw(fakecloud, os_conn, "POST", f"/servers/{server.id}/action", json={"rebuild": {}})
    assert no_image.status_code == 400 and "imageRef" in no_image.json()["badRequest"]["message"]
    assert os_conn.compute.get_server(server.id).image["id"] == _image_id(fakecloud)


def test_console_output_shows_the_power_events_and_honours_length(fakecloud, os_conn):
    server = _boot(os_conn, fakecloud, "quiet")
    lines = os_conn.compute.get_server_console_output(server)["output"].splitlines()
    address = server.addresses["private"][0]["addr"]
    assert lines[0] == f"fakecloud: booting quiet ({server.id})"
    assert lines[-1] == "fakecloud: quiet booted (flavor m1.tiny)"
    assert any(address in line for line in lines), "the boot log names the server's address"
    os_conn.compute.stop_server(server)
    os_conn.compute.wait_for_server(server, status="SHUTOFF", **WAIT)
    # Nova's tail: the last `length` pieces of the log split at newlines, the last piece the empty one
    assert os_conn.compute.get_server_console_output(server, length=2) == {"output": "fakecloud: quiet powered off\n"}
    assert os_conn.compute.get_server_console_output(server, length=0) == {"output": ""}
    bad = _raw(fakecloud, os_conn, "POST", f"/servers/{server.id}/action",
               json={"os-getConsoleOutput": {"length": "many"}})
    assert bad.status_code == 400


# multiple create ------------------------------------------------------------------------------
def test_multiple_create_boots_each_under_one_reservation(fakecloud, os_conn, os_admin):
    created = _create_raw(fakecloud, os_conn, name="many", min_count=2)
    assert created.status_code == 202 and "reservation_id" not in created.json()
    servers = {s.name: s for s in os_conn.compute.servers(details=True)}
    assert set(servers) == {"many-1", "many-2"}
    assert created.json()["server"]["id"] in {s.id for s in servers.values()}  # the first server's create view
    for server in servers.values():
        os_conn.compute.wait_for_server(server, **WAIT)
    reserved = _create_raw(fakecloud, os_conn, name="more", min_count="1", max_count=3, return_reservation_id=True)
    assert reserved.status_code == 202 and set(reserved.json()) == {"reservation_id"}
    reservation = reserved.json()["reservation_id"]
    assert re.fullmatch(r"r-[a-z0-9]{8}", reservation)
    listed = _raw(fakecloud, os_conn, "GET", f"/servers/detail?reservation_id={reservation}").json()["servers"]
    assert sorted(s["name"] for s in listed) == ["more-1", "more-2", "more-3"]
    shown = _raw(fakecloud, os_admin, "GET", f"/servers/{listed[0]['id']}", version="2.3").json()["server"]
    assert shown["OS-EXT-SRV-ATTR:reservation_id"] == reservation
    assert sorted(s["OS-EXT-SRV-ATTR:launch_index"] for s in (
        _raw(fakecloud, os_admin, "GET", f"/servers/{s['id']}", version="2.3").json()["server"] for s in listed)) \
        == [0, 1, 2]
    for body, word in (({"min_count": 3, "max_count": 2}, "min_count"), ({"min_count": 0}, "min_count"),
                       ({"max_count": 2.5}, "max_count")):
        refused = _create_raw(fakecloud, os_conn, **body)
        assert refused.status_code == 400 and word in refused.json()["badRequest"]["message"]


def test_multiple_create_boots_what_the_quota_allows():
    with running_cloud(CloudConfig(quotas=Quotas(instances=3))) as fc:
        conn = fc.connect()
        try:
            assert _create_raw(fc, conn, name="fit", min_count=1, max_count=5).status_code == 202
            assert len(list(conn.compute.servers())) == 3
            refused = _create_raw(fc, conn, name="none", min_count=1)
            assert refused.status_code == 403 and "Quota exceeded for instances" in refused.text
        finally:
            conn.close()


# server groups ------------------------------------------------------------------------------
def test_server_groups_and_their_members(fakecloud, os_conn):
    old = _raw(fakecloud, os_conn, "POST", "/os-server-groups", version="2.1",
               json={"server_group": {"name": "near", "policies": ["affinity"]}})
    assert old.status_code == 200
    assert set(old.json()["server_group"]) == {"id", "name", "policies", "members", "metadata"}
    new = _raw(fakecloud, os_conn, "POST", "/os-server-groups", version="2.64",
               json={"server_group": {"name": "apart", "policy": "anti-affinity",
                                      "rules": {"max_server_per_host": 1}}}).json()["server_group"]
    assert (new["policy"], new["rules"], new["project_id"]) == ("anti-affinity", {"max_server_per_host": 1},
                                                               os_conn.current_project_id)
    assert "policies" not in new
    bad = _raw(fakecloud, os_conn, "POST", "/os-server-groups", version="2.64",
               json={"server_group": {"name": "x", "policy": "affinity", "rules": {"max_server_per_host": 2}}})
    assert bad.status_code == 400

    near_id = old.json()["server_group"]["id"]
    body = {"server": {"name": "member", "imageRef": _image_id(fakecloud), "flavorRef": "1", "networks": "none"},
            "os:scheduler_hints": {"group": near_id}}
    created = _raw(fakecloud, os_conn, "POST", "/servers", version="2.71", json=body).json()["server"]
    shown = _raw(fakecloud, os_conn, "GET", f"/os-server-groups/{near_id}").json()["server_group"]
    assert shown["members"] == [created["id"]]
    server = _raw(fakecloud, os_conn, "GET", f"/servers/{created['id']}", version="2.71").json()["server"]
    assert server["server_groups"] == [near_id]

    # one host: a second member of an anti-affinity group finds no valid host, as on a one-node Nova
    apart = {**body, "os:scheduler_hints": {"group": new["id"]}}
    first = _raw(fakecloud, os_conn, "POST", "/servers", version="2.71", json=apart).json()["server"]
    second = _raw(fakecloud, os_conn, "POST", "/servers", version="2.71", json=apart).json()["server"]
    assert os_conn.compute.wait_for_server(os_conn.compute.get_server(first["id"]), **WAIT).status == "ACTIVE"
    with pytest.raises(openstack.exceptions.ResourceFailure):
        os_conn.compute.wait_for_server(os_conn.compute.get_server(second["id"]), **WAIT)

    unknown = {**body, "os:scheduler_hints": {"group": str(uuid.uuid4())}}
    assert _raw(fakecloud, os_conn, "POST", "/servers", version="2.71", json=unknown).status_code == 400
    listed = _raw(fakecloud, os_conn, "GET", "/os-server-groups").json()["server_groups"]
    assert {g["id"] for g in listed} == {near_id, new["id"]}
    assert _raw(fakecloud, os_conn, "DELETE", f"/os-server-groups/{near_id}").status_code == 204
    assert _raw(fakecloud, os_conn, "GET", f"/os-server-groups/{near_id}").status_code == 404


# tags, metadata items, password -------------------------------------------------------------
def test_server_tags(fakecloud, os_conn):
    server = _boot(os_conn, fakecloud, "tagged", networks="none")
    base = f"/servers/{server.id}/tags"
    assert _raw(fakecloud, os_conn, "GET", base, version="2.25").status_code == 404  # no tags before 2.26
    added = _raw(fakecloud, os_conn, "PUT", f"{base}/blue", version="2.26")
    assert added.status_code == 201 and added.headers["Location"].endswith(f"{base}/blue")
    assert _raw(fakecloud, os_conn, "PUT", f"{base}/blue", version="2.26").status_code == 204
    assert _raw(fakecloud, os_conn, "GET", f"{base}/blue", version="2.26").status_code == 204
    assert _raw(fakecloud, os_conn, "GET", f"{base}/red", version="2.26").status_code == 404
    replaced = _raw(fakecloud, os_conn, "PUT", base, version="2.26", json={"tags": ["a", "b"]})
    assert (replaced.status_code, replaced.json()) == (200, {"tags": ["a", "b"]})
    assert _raw(fakecloud, os_conn, "PUT", base, version="2.26", json={"tags": ["a/b"]}).status_code == 400
    too_many = {"tags": [f"t{i}" for i in range(51)]}
    assert _raw(fakecloud, os_conn, "PUT", base, version="2.26", json=too_many).status_code == 400
    assert _raw(fakecloud, os_conn, "DELETE", f"{base}/a", version="2.26").status_code == 204
    assert _raw(fakecloud, os_conn, "GET", base, version="2.26").json() == {"tags": ["b"]}
    assert _raw(fakecloud, os_conn, "DELETE", base, version="2.26").status_code == 204
    assert _raw(fakecloud, os_conn, "GET", base, version="2.26").json() == {"tags": []}


def test_metadata_items_and_server_password(fakecloud, os_conn):
    server = _boot(os_conn, fakecloud, "meta", networks="none", metadata={"role": "db"})
    item = _raw(fakecloud, os_conn, "GET", f"/servers/{server.id}/metadata/role")
    assert (item.status_code, item.json()) == (200, {"meta": {"role": "db"}})
    assert _raw(fakecloud, os_conn, "GET", f"/servers/{server.id}/metadata/nope").status_code == 404
    put = _raw(fakecloud, os_conn, "PUT", f"/servers/{server.id}/metadata/tier", json={"meta": {"tier": "1"}})
    assert (put.status_code, put.json()) == (200, {"meta": {"tier": "1"}})
    mismatch = _raw(fakecloud, os_conn, "PUT", f"/servers/{server.id}/metadata/tier", json={"meta": {"x": "1"}})
    assert mismatch.status_code == 400 and "mismatch" in mismatch.json()["badRequest"]["message"]
    assert os_conn.compute.fetch_server_metadata(server).metadata == {"role": "db", "tier": "1"}
    missing = _raw(fakecloud, os_conn, "GET", f"/servers/{uuid.uuid4()}/metadata/role")
    assert missing.status_code == 404

    password = _raw(fakecloud, os_conn, "GET", f"/servers/{server.id}/os-server-password")
    assert (password.status_code, password.json()) == (200, {"password": ""})
    assert _raw(fakecloud, os_conn, "DELETE", f"/servers/{server.id}/os-server-password").status_code == 204


# disk config, access addresses, views -------------------------------------------------------
def test_disk_config_is_kept_and_changed(fakecloud, os_conn):
    created = _create_raw(fakecloud, os_conn, name="disk", **{"OS-DCF:diskConfig": "AUTO"})
    assert created.json()["server"]["OS-DCF:diskConfig"] == "AUTO"
    server_id = created.json()["server"]["id"]
    os_conn.compute.wait_for_server(os_conn.compute.get_server(server_id), **WAIT)
    updated = _raw(fakecloud, os_conn, "PUT", f"/servers/{server_id}", json={"server": {"OS-DCF:diskConfig": "MANUAL"}})
    assert updated.json()["server"]["OS-DCF:diskConfig"] == "MANUAL"
    rebuilt = _raw(fakecloud, os_conn, "POST", f"/servers/{server_id}/action",
                   json={"rebuild": {"imageRef": _image_id(fakecloud), "OS-DCF:diskConfig": "AUTO"}})
    assert rebuilt.json()["server"]["OS-DCF:diskConfig"] == "AUTO"
    os_conn.compute.wait_for_server(os_conn.compute.get_server(server_id), **WAIT)
    _raw(fakecloud, os_conn, "POST", f"/servers/{server_id}/action",
         json={"resize": {"flavorRef": "2", "OS-DCF:diskConfig": "MANUAL"}})
    os_conn.compute.wait_for_server(os_conn.compute.get_server(server_id), status="VERIFY_RESIZE", **WAIT)
    shown = _raw(fakecloud, os_conn, "GET", f"/servers/{server_id}").json()["server"]
    assert shown["OS-DCF:diskConfig"] == "MANUAL"
    bad = _create_raw(fakecloud, os_conn, **{"OS-DCF:diskConfig": "SOMETIMES"})
    assert bad.status_code == 400


def test_access_ipv6_is_stored_compressed(fakecloud, os_conn):
    created = _create_raw(fakecloud, os_conn, name="v6", accessIPv4="1.1.1.1",
                          accessIPv6="0000:0000:0000:0000:0000:babe:220.12.22.2")
    shown = _raw(fakecloud, os_conn, "GET", f"/servers/{created.json()['server']['id']}").json()["server"]
    assert (shown["accessIPv4"], shown["accessIPv6"]) == ("1.1.1.1", "::babe:dc0c:1602")


def test_views_show_progress_and_security_groups_as_nova_does(fakecloud, os_conn):
    server = _boot(os_conn, fakecloud, "views", networks="none")
    shown = _raw(fakecloud, os_conn, "GET", f"/servers/{server.id}").json()["server"]
    assert shown["progress"] == 0 and shown["security_groups"] == [{"name": "default"}]
    os_conn.compute.remove_security_group_from_server(server, {"name": "default"})
    os_conn.compute.stop_server(server)
    os_conn.compute.wait_for_server(server, status="SHUTOFF", **WAIT)
    shown = _raw(fakecloud, os_conn, "GET", f"/servers/{server.id}").json()["server"]
    assert "progress" not in shown  # only in ACTIVE, BUILD, REBUILD, RESIZE, VERIFY_RESIZE, MIGRATING
    assert "security_groups" not in shown  # Nova leaves the key out for a server in no group


def test_list_filters_by_ip_and_changes_since(fakecloud, os_conn):
    first, second = _boot(os_conn, fakecloud, "ip-a"), _boot(os_conn, fakecloud, "ip-b")
    address = os_conn.compute.get_server(second.id).addresses["private"][0]["addr"]
    found = _raw(fakecloud, os_conn, "GET", f"/servers?ip={re.escape(address)}$").json()["servers"]
    assert [s["id"] for s in found] == [second.id]
    assert len(_raw(fakecloud, os_conn, "GET", "/servers?ip=^127\\.").json()["servers"]) == 2
    assert _raw(fakecloud, os_conn, "GET", "/servers?ip6=.").json()["servers"] == []
    future = _raw(fakecloud, os_conn, "GET", "/servers?changes-since=2051-01-01T12:34:00Z").json()
    assert future["servers"] == []
    past = _raw(fakecloud, os_conn, "GET", "/servers?changes-since=2001-01-01T00:00:00Z").json()["servers"]
    assert {s["id"] for s in past} == {first.id, second.id}
    assert _raw(fakecloud, os_conn, "GET", "/servers?changes-since=2011/01/01").status_code == 400


# lock, forceDelete, restore -----------------------------------------------------------------
def test_lock_refuses_owner_actions_until_unlocked(fakecloud, os_conn, os_admin):
    server = _boot(os_conn, fakecloud, "locked", networks="none")

    def act(conn, body, version=None):
        return _raw(fakecloud, conn, "POST", f"/servers/{server.id}/action", version=version, json=body)

    assert act(os_conn, {"lock": {"locked_reason": "maintenance"}}, "2.73").status_code == 202
    shown = _raw(fakecloud, os_conn, "GET", f"/servers/{server.id}", version="2.73").json()["server"]
    assert (shown["locked"], shown["locked_reason"]) == (True, "maintenance")
    refused = act(os_conn, {"os-stop": None})
    assert refused.status_code == 409 and "is locked" in refused.json()["conflictingRequest"]["message"]
    assert _raw(fakecloud, os_conn, "DELETE", f"/servers/{server.id}").status_code == 409
    assert act(os_conn, {"unlock": None}).status_code == 202
    assert act(os_conn, {"os-stop": None}).status_code == 202
    os_conn.compute.wait_for_server(server, status="SHUTOFF", **WAIT)

    assert act(os_admin, {"lock": None}).status_code == 202  # an admin's lock: the owner may not lift it
    assert act(os_conn, {"unlock": None}).status_code == 403
    assert act(os_admin, {"os-start": None}).status_code == 202
    restore = act(os_conn, {"restore": None})
    assert restore.status_code == 409  # nothing is ever soft-deleted here
    assert act(os_admin, {"forceDelete": None}).status_code == 202
    os_conn.compute.wait_for_delete(server, **WAIT)
    assert _raw(fakecloud, os_conn, "POST", f"/servers/{uuid.uuid4()}/action",
                json={"restore": None}).status_code == 404


# keypairs and rebuild microversions ---------------------------------------------------------
def test_keypair_views_follow_the_microversion(fakecloud, os_conn):
    created = _raw(fakecloud, os_conn, "POST", "/os-keypairs", version="2.1", json={"keypair": {"name": "k1"}})
    assert created.status_code == 200
    assert set(created.json()["keypair"]) == {"name", "public_key", "fingerprint", "private_key", "user_id"}
    listed = _raw(fakecloud, os_conn, "GET", "/os-keypairs", version="2.1").json()["keypairs"]
    assert set(listed[0]["keypair"]) == {"name", "public_key", "fingerprint"}
    newer = _raw(fakecloud, os_conn, "POST", "/os-keypairs", version="2.2", json={"keypair": {"name": "k2"}})
    assert newer.status_code == 201 and newer.json()["keypair"]["type"] == "ssh"
    assert newer.json()["keypair"]["user_id"]


def test_rebuild_sets_key_name_and_user_data_from_their_microversions(fakecloud, os_conn):
    server = _boot(os_conn, fakecloud, "rekey", networks="none")
    _raw(fakecloud, os_conn, "POST", "/os-keypairs", json={"keypair": {"name": "rekey"}})
    answer = _raw(fakecloud, os_conn, "POST", f"/servers/{server.id}/action", version="2.57",
                  json={"rebuild": {"imageRef": _image_id(fakecloud), "key_name": "rekey", "user_data": "aGk="}})
    assert answer.status_code == 202
    view = answer.json()["server"]
    assert (view["key_name"], view["user_data"]) == ("rekey", "aGk=")
    os_conn.compute.wait_for_server(server, **WAIT)
    unknown = _raw(fakecloud, os_conn, "POST", f"/servers/{server.id}/action", version="2.54",
                   json={"rebuild": {"imageRef": _image_id(fakecloud), "key_name": "nope"}})
    assert unknown.status_code == 400


# block devices and volumes ------------------------------------------------------------------
def test_boot_refuses_bad_block_devices(fakecloud, os_conn):
    volume = os_conn.block_storage.create_volume(name="plain", size=1)
    volume = os_conn.block_storage.wait_for_status(volume, "available", **WAIT)
    boot = [{"boot_index": "0", "uuid": volume.id, "source_type": "volume", "destination_type": "volume"}]
    refused = _create_raw(fakecloud, os_conn, imageRef="", block_device_mapping_v2=boot)
    assert refused.status_code == 400 and "is not bootable" in refused.json()["badRequest"]["message"]
    invalid = [{"source_type": "volume", "uuid": volume.id, "destination_type": "invalid"}]
    assert _create_raw(fakecloud, os_conn, block_device_mapping_v2=invalid).status_code == 400
    assert list(os_conn.compute.servers()) == []


def test_attaching_a_volume_twice_to_one_server_is_400(fakecloud, os_conn):
    server = _boot(os_conn, fakecloud, "twice", networks="none")
    volume = os_conn.block_storage.wait_for_status(os_conn.block_storage.create_volume(size=1), "available",
                                                   **WAIT)
    os_conn.compute.create_volume_attachment(server, volume)
    again = _raw(fakecloud, os_conn, "POST", f"/servers/{server.id}/os-volume_attachments",
                 json={"volumeAttachment": {"volumeId": volume.id}})
    assert again.status_code == 400 and "already attached" in again.json()["badRequest"]["message"]


def test_os_volumes_proxies_cinder_until_2_36(fakecloud, os_conn):
    created = _raw(fakecloud, os_conn, "POST", "/os-volumes", version="2.35",
                   json={"volume": {"size": 1, "display_name": "proxied", "metadata": {"Type": "work"}}})
    assert created.status_code == 200
    volume = created.json()["volume"]
    assert (volume["displayName"], volume["size"], volume["metadata"]) == ("proxied", 1, {"Type": "work"})
    assert volume["attachments"] == [{}]
    os_conn.block_storage.wait_for_status(os_conn.block_storage.get_volume(volume["id"]), "available", **WAIT)
    shown = _raw(fakecloud, os_conn, "GET", f"/os-volumes/{volume['id']}").json()["volume"]
    assert shown["status"] == "available"
    _raw(fakecloud, os_conn, "POST", "/os-volumes", json={"volume": {"size": "2"}})
    everything = _raw(fakecloud, os_conn, "GET", "/os-volumes/detail").json()["volumes"]
    page = _raw(fakecloud, os_conn, "GET", "/os-volumes?offset=1&limit=1").json()["volumes"]
    assert len(everything) == 2 and [v["id"] for v in page] == [everything[1]["id"]]
    for size in ("#$%", "", "0", None):
        refused = _raw(fakecloud, os_conn, "POST", "/os-volumes", json={"volume": {"size": size}})
        assert refused.status_code == 400
    assert _raw(fakecloud, os_conn, "GET", "/os-volumes/").status_code == 404
    assert _raw(fakecloud, os_conn, "DELETE", "/os-volumes/").status_code == 404
    assert _raw(fakecloud, os_conn, "GET", f"/os-volumes/{uuid.uuid4()}").status_code == 404
    assert _raw(fakecloud, os_conn, "GET", "/os-volumes", version="2.36").status_code == 404
    assert _raw(fakecloud, os_conn, "DELETE", f"/os-volumes/{volume['id']}").status_code == 202


def test_hypervisors_show_the_one_host_to_admins(fakecloud, os_conn, os_admin):
    _boot(os_conn, fakecloud, "counted")
    listed = _raw(fakecloud, os_admin, "GET", "/os-hypervisors", version="2.53").json()["hypervisors"]
    assert [h["hypervisor_hostname"] for h in listed] == ["fakecloud-compute-1"]
    detail = _raw(fakecloud, os_admin, "GET", "/os-hypervisors/detail", version="2.1").json()["hypervisors"][0]
    assert detail["id"] == 1 and detail["running_vms"] == 1 and detail["vcpus_used"] == 1
    shown = _raw(fakecloud, os_admin, "GET", f"/os-hypervisors/{listed[0]['id']}", version="2.53")
    assert shown.status_code == 200 and shown.json()["hypervisor"]["state"] == "up"
    assert _raw(fakecloud, os_admin, "GET", "/os-hypervisors/nope", version="2.53").status_code == 404
    assert _raw(fakecloud, os_conn, "GET", "/os-hypervisors").status_code == 403
