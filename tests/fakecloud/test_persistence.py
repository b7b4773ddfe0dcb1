"""State files: what a cloud holds survives a restart (same ids, same relations), and in-flight work settles.

Each test runs real servers one after the other on the same state file (`running_cloud(state_file=...)`),
the way `fakecloud serve --state` restarts, and looks at the result through openstacksdk.
"""

from __future__ import annotations

import json

import openstack.exceptions
import pytest

from openstack_fakecloud.admin import inventory_of
from openstack_fakecloud.config import CloudConfig
from openstack_fakecloud.state import Cloud
from openstack_fakecloud.testing import running_cloud

WAIT = {"interval": 0.05, "wait": 10}


def _image_id(conn) -> str:
    return next(conn.image.images(name="cirros-0.6.2")).id


def test_resources_and_ids_survive_a_restart(tmp_path):
    state = tmp_path / "state.json"
    with running_cloud(state_file=state) as fc:
        conn = fc.connect()
        group = conn.network.create_security_group(name="db-access")
        rule = conn.network.create_security_group_rule(
            security_group_id=group.id, direction="ingress", ethertype="IPv4", protocol="tcp",
            port_range_min=5432, port_range_max=5432, remote_ip_prefix="10.0.0.0/24")
        server = conn.compute.create_server(name="db1", image_id=_image_id(conn), flavor_id="2", networks="auto",
                                            security_groups=[{"name": "db-access"}], metadata={"role": "primary"})
        server = conn.compute.wait_for_server(server, **WAIT)
        volume = conn.block_storage.create_volume(name="pgdata", size=3)
        conn.block_storage.wait_for_status(volume, "available", **WAIT)
        conn.compute.create_volume_attachment(server, volume=volume)
        conn.block_storage.wait_for_status(volume, "in-use", **WAIT)
        before_addresses = conn.compute.get_server(server.id).addresses
        project_id = conn.current_project_id
        conn.close()
    assert state.exists()
    saved = json.loads(state.read_text())
    assert {s["id"] for s in saved["backends"]["compute"]["servers"]} == {server.id}

    with running_cloud(state_file=state) as fc:
        conn = fc.connect()
        assert conn.current_project_id == project_id  # projects keep their ids too
        shown = conn.compute.get_server(server.id)
        assert (shown.name, shown.status, shown.flavor["original_name"]) == ("db1", "ACTIVE", "m1.small")
        assert shown.metadata == {"role": "primary"}
        assert shown.addresses == before_addresses
        assert [g["name"] for g in shown.security_groups] == ["db-access"]

        disk = conn.block_storage.get_volume(volume.id)
        assert (disk.name, disk.size, disk.status) == ("pgdata", 3, "in-use")
        assert [a["server_id"] for a in disk.attachments] == [server.id]
        assert [a.volume_id for a in conn.compute.volume_attachments(server)] == [volume.id]

        assert conn.network.get_security_group_rule(rule.id).port_range_min == 5432
        ports = list(conn.network.ports(device_id=server.id))
        assert len(ports) == 1 and group.id in ports[0].security_group_ids

        # The restored cloud keeps working: new ids do not collide and the newest server lists first.
        newer = conn.compute.create_server(name="db2", image_id=_image_id(conn), flavor_id="1", networks="none")
        conn.compute.wait_for_server(newer, **WAIT)
        assert [s.name for s in conn.compute.servers()] == ["db2", "db1"]
        conn.compute.delete_server(shown)
        conn.compute.wait_for_delete(shown, **WAIT)
        assert conn.block_storage.get_volume(volume.id).status == "available"
        conn.close()

    with running_cloud(state_file=state) as fc:
        conn = fc.connect()
        assert [s.name for s in conn.compute.servers()] == ["db2"]  # the delete was saved as well
        assert conn.block_storage.get_volume(volume.id).attachments == []
        conn.close()


def test_transitional_states_settle_on_load(tmp_path):
    """Saved mid-flight (clock frozen), everything lands where its transition would have taken it."""
    state = tmp_path / "state.json"
    with running_cloud(CloudConfig(profile="realistic"), state_file=state) as fc:
        conn = fc.connect()
        fc.control.set_delays(profile="zero")
        resized = conn.compute.create_server(name="resized", image_id=_image_id(conn), flavor_id="1",
                                             networks="none")
        conn.compute.wait_for_server(resized, **WAIT)
        doomed = conn.compute.create_server(name="doomed", image_id=_image_id(conn), flavor_id="1",
                                            networks="none")
        conn.compute.wait_for_server(doomed, **WAIT)
        gone_volume = conn.block_storage.create_volume(name="gone", size=1)
        conn.block_storage.wait_for_status(gone_volume, "available", **WAIT)

        fc.control.set_delays(profile="realistic")
        fc.control.freeze()
        booting = conn.compute.create_server(name="booting", image_id=_image_id(conn), flavor_id="1",
                                             networks="none")
        creating = conn.block_storage.create_volume(name="creating", size=1)
        conn.compute.resize_server(resized, "2")
        conn.compute.delete_server(doomed)
        conn.block_storage.delete_volume(gone_volume)
        assert conn.compute.get_server(booting.id).status == "BUILD"
        assert conn.compute.get_server(resized.id).status == "RESIZE"
        assert conn.block_storage.get_volume(creating.id).status == "creating"
        assert conn.block_storage.get_volume(gone_volume.id).status == "deleting"
        conn.close()

    with running_cloud(state_file=state) as fc:
        conn = fc.connect()
        assert conn.compute.get_server(booting.id).status == "ACTIVE"
        after_resize = conn.compute.get_server(resized.id)
        assert after_resize.status == "VERIFY_RESIZE"
        assert after_resize.flavor["original_name"] == "m1.small"
        with pytest.raises(openstack.exceptions.NotFoundException):
            conn.compute.find_server(doomed.id, ignore_missing=False)
        assert conn.block_storage.get_volume(creating.id).status == "available"
        with pytest.raises(openstack.exceptions.NotFoundException):
            conn.block_storage.find_volume(gone_volume.id, ignore_missing=False)
        # Nothing is left scheduled from before the restart; the cloud continues from settled states.
        assert fc.control.health()["pending_transitions"] == 0
        conn.compute.confirm_server_resize(after_resize)
        assert conn.compute.wait_for_server(after_resize, **WAIT).status == "ACTIVE"
        conn.close()


def test_missing_state_file_starts_fresh_and_is_written_on_stop(tmp_path):
    state = tmp_path / "nested" / "state.json"
    with running_cloud(state_file=state) as fc:
        conn = fc.connect()
        assert list(conn.compute.servers()) == []
        conn.close()
    assert json.loads(state.read_text())["format"] == 1


def test_admin_save_writes_a_loadable_snapshot(tmp_path):
    """`POST /_fakecloud/save` snapshots a running cloud; `Cloud.load` reads it back in-process."""
    snapshot = tmp_path / "snap.json"
    with running_cloud() as fc:
        conn = fc.connect()
        volume = conn.block_storage.create_volume(name="snap", size=2)
        conn.block_storage.wait_for_status(volume, "available", **WAIT)
        fc.control.save(str(snapshot))
        conn.close()
    cloud = Cloud()
    assert cloud.load(snapshot) is True
    assert cloud.volume.get_volume(volume.id, None).size == 2
    assert inventory_of(cloud, None)["volumes"][0]["id"] == volume.id
    assert Cloud().load(tmp_path / "absent.json") is False


def test_unknown_state_format_is_refused(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": 99, "backends": {}}))
    with pytest.raises(ValueError, match="unsupported state format"):
        Cloud().load(bad)
