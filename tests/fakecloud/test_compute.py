"""Nova v2.1 over real HTTP: openstacksdk for the flows, `requests` for raw wire checks."""

from __future__ import annotations

import ipaddress
import re
import uuid

import openstack.exceptions
import pytest
import requests

from fakecloud.config import CloudConfig, Quotas
from fakecloud.testing import running_cloud

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


def test_console_output_of_a_server_without_a_guest_is_empty(fakecloud, os_conn):
    server = _boot(os_conn, fakecloud, "quiet")
    assert os_conn.compute.get_server_console_output(server) == {"output": ""}
    bad = _raw(fakecloud, os_conn, "POST", f"/servers/{server.id}/action",
               json={"os-getConsoleOutput": {"length": "many"}})
    assert bad.status_code == 400
