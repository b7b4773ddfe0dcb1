"""Nova v2.1 over real HTTP: openstacksdk for the flows, `requests` for raw wire checks."""

from __future__ import annotations

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


def _raw(fakecloud, conn, method: str, path: str, version: str | None = None, **kwargs) -> requests.Response:
    headers = {"X-Auth-Token": conn.session.get_token()}
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
    pinned = _boot(os_conn, fakecloud, "pinned", networks=[{"uuid": network.id, "fixed_ip": "10.0.0.77"}])
    assert [a["addr"] for a in pinned.addresses["private"]] == ["10.0.0.77"]
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
