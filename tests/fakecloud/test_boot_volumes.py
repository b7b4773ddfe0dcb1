"""Booting with existing volumes mapped (block_device_mapping_v2): reserved by the request, attached by the
build, detached (or deleted, per delete_on_termination) with the server, as Nova and Cinder do."""

from __future__ import annotations

import openstack.exceptions
import pytest
from test_guests import GUEST_IMAGE, _address, _connect, _console, _image_id, _open_group

WAIT = {"interval": 0.05, "wait": 30}


def _volume(conn, name: str = "data", size: int = 1):
    return conn.block_storage.wait_for_status(conn.block_storage.create_volume(name=name, size=size), "available",
                                              **WAIT)


def _cirros(fakecloud) -> str:
    return fakecloud.cloud.image.find_image("cirros-0.6.2").id


def _mapping(volume_id: str, delete: bool = False, boot_index: int | None = -1) -> dict:
    mapping = {"uuid": volume_id, "source_type": "volume", "destination_type": "volume",
               "delete_on_termination": delete}
    if boot_index is not None:
        mapping["boot_index"] = boot_index
    return mapping


def _boot(conn, image_id: str, name: str, mappings: list[dict], wait: bool = True, **attrs):
    server = conn.compute.create_server(name=name, image_id=image_id, flavor_id="1", networks="none",
                                        block_device_mapping=mappings, **attrs)
    return conn.compute.wait_for_server(server, **WAIT) if wait else server


def test_a_mapped_volume_is_attached_by_the_build_and_kept_at_delete(fakecloud, os_conn):
    volume = _volume(os_conn)
    fakecloud.control.set_delays(server_boot=0.3, volume_attach=0.3)
    server = _boot(os_conn, _cirros(fakecloud), "with-data", [_mapping(volume.id)], wait=False)
    reserved = os_conn.block_storage.get_volume(volume.id)
    assert reserved.status == "reserved"  # Nova's attachment_create at the API
    assert os_conn.compute.get_server(server.id).status == "BUILD"
    server = os_conn.compute.wait_for_server(server, **WAIT)
    volume = os_conn.block_storage.get_volume(volume.id)
    assert volume.status == "in-use"  # attached before the server was reported ACTIVE
    assert [(a["server_id"], a["device"]) for a in volume.attachments] == [(server.id, "/dev/vdb")]
    attachments = list(os_conn.compute.volume_attachments(server))
    assert [(a.volume_id, a.device) for a in attachments] == [(volume.id, "/dev/vdb")]
    assert [v.id for v in os_conn.compute.get_server(server.id).attached_volumes] == [volume.id]
    # a hot attach after it takes the next name
    other = _volume(os_conn, "more")
    assert os_conn.compute.create_volume_attachment(server, other).device == "/dev/vdc"
    os_conn.block_storage.wait_for_status(other, "in-use", **WAIT)

    os_conn.compute.delete_server(server)
    os_conn.compute.wait_for_delete(server, **WAIT)
    kept = os_conn.block_storage.get_volume(volume.id)
    assert kept.status == "available" and kept.attachments == []


def test_delete_on_termination_deletes_the_volume(fakecloud, os_conn):
    volume = _volume(os_conn)
    server = _boot(os_conn, _cirros(fakecloud), "scratch", [
        {"uuid": _cirros(fakecloud), "source_type": "image", "destination_type": "local", "boot_index": 0,
         "delete_on_termination": True},
        _mapping(volume.id, delete=True)])
    assert server.status == "ACTIVE"
    assert os_conn.block_storage.get_volume(volume.id).status == "in-use"
    attachments = list(os_conn.compute.volume_attachments(server))
    assert [(a.device, a.delete_on_termination) for a in attachments] == [("/dev/vdb", True)]
    os_conn.compute.delete_server(server)
    os_conn.compute.wait_for_delete(server, **WAIT)
    os_conn.block_storage.wait_for_delete(volume, **WAIT)


def test_a_volume_in_use_is_refused(fakecloud, os_conn):
    volume = _volume(os_conn)
    first = _boot(os_conn, _cirros(fakecloud), "first", [_mapping(volume.id, boot_index=None)])
    assert os_conn.block_storage.get_volume(volume.id).status == "in-use"
    with pytest.raises(openstack.exceptions.BadRequestException) as refused:
        _boot(os_conn, _cirros(fakecloud), "second", [_mapping(volume.id)], wait=False)
    assert refused.value.status_code == 400
    assert (f"Invalid volume: Invalid input received: Invalid volume: Volume {volume.id} status must be "
            "available or downloading (HTTP 400)") in str(refused.value)
    assert [s.name for s in os_conn.compute.servers()] == ["first"]
    with pytest.raises(openstack.exceptions.BadRequestException, match="multiple instances"):
        os_conn.compute.create_server(name="many", image_id=_cirros(fakecloud), flavor_id="1", networks="none",
                                      block_device_mapping=[_mapping(_volume(os_conn, "x").id)], max_count=2)
    os_conn.compute.delete_server(first)
    os_conn.compute.wait_for_delete(first, **WAIT)


def test_a_failed_build_releases_its_volumes(fakecloud, os_conn):
    volume = _volume(os_conn)
    fakecloud.control.add_fault(service="compute", operation="server.create", action="error_status")
    server = _boot(os_conn, _cirros(fakecloud), "doomed", [_mapping(volume.id, delete=True)], wait=False)
    os_conn.compute.wait_for_server(server, status="ERROR", **WAIT)
    freed = os_conn.block_storage.get_volume(volume.id)
    assert freed.status == "available" and freed.attachments == []
    os_conn.compute.delete_server(server)
    os_conn.compute.wait_for_delete(server, **WAIT)
    os_conn.block_storage.wait_for_delete(volume, **WAIT)  # delete_on_termination still applies


def test_boot_from_volume_attaches_the_root_volume_at_vda(fakecloud, os_conn):
    root = os_conn.block_storage.create_volume(name="root", size=1, image_id=_cirros(fakecloud))
    root = os_conn.block_storage.wait_for_status(root, "available", **WAIT)
    data = _volume(os_conn)
    server = os_conn.compute.create_server(name="bfv", flavor_id="1", networks="none", block_device_mapping=[
        _mapping(root.id, delete=True, boot_index=0), _mapping(data.id)])
    server = os_conn.compute.wait_for_server(server, **WAIT)
    devices = {a.volume_id: a.device for a in os_conn.compute.volume_attachments(server)}
    assert devices == {root.id: "/dev/vda", data.id: "/dev/vdb"}
    os_conn.compute.delete_server(server)
    os_conn.compute.wait_for_delete(server, **WAIT)
    os_conn.block_storage.wait_for_delete(root, **WAIT)
    assert os_conn.block_storage.get_volume(data.id).status == "available"


def test_a_guest_booted_with_its_data_volume_starts_once_on_it(fakecloud, os_conn):
    _open_group(os_conn)
    volume = _volume(os_conn, "pgdata")
    fakecloud.control.set_delays(server_boot=0.2, volume_attach=0.3)
    server = os_conn.compute.create_server(
        name="pg-on-volume", image_id=_image_id(os_conn, GUEST_IMAGE), flavor_id="1", networks="auto",
        security_groups=[{"name": "db-access"}], block_device_mapping=[_mapping(volume.id)])
    password = server.admin_password
    server = os_conn.compute.wait_for_server(server, **WAIT)
    assert os_conn.block_storage.get_volume(volume.id).status == "in-use"
    with _connect(_address(server), password) as db:
        assert volume.id in db.execute("SHOW data_directory").fetchone()[0]
    console = _console(os_conn, server)
    assert console.count("fakecloud: starting guest") == 1, console
    assert f"data on volume {volume.id}" in console
    os_conn.compute.delete_server(server)
    os_conn.compute.wait_for_delete(server, **WAIT)
    assert os_conn.block_storage.get_volume(volume.id).status == "available"
