"""Cinder v3 over real HTTP with openstacksdk (and `requests` for raw wire checks)."""

from __future__ import annotations

import openstack.exceptions
import pytest
import requests

from openstack_fakecloud.testing import running_cloud

FAST = {"interval": 0.05, "wait": 10}


def _available(conn, **attrs):
    volume = conn.block_storage.create_volume(**{"size": 1, **attrs})
    return conn.block_storage.wait_for_status(volume, "available", failures=["error"], **FAST)


def _volume_url(fakecloud, conn, path: str = "", with_project: bool = True) -> str:
    project = f"/{conn.current_project_id}" if with_project else ""
    return f"{fakecloud.url}/volume/v3{project}{path}"


def _headers(conn, version: str | None = None) -> dict[str, str]:
    headers = {"X-Auth-Token": conn.session.get_token()}
    if version:
        headers["OpenStack-API-Version"] = f"volume {version}"
    return headers


def _server(conn, name: str = "vm"):
    image = next(conn.image.images(name="cirros-0.6.2"))
    server = conn.compute.create_server(name=name, image_id=image.id, flavor_id="1", networks="none")
    return conn.compute.wait_for_server(server, **FAST)


def _attach(conn, volume, server=None) -> str:
    """Attach through Nova (Cinder records the attachment); returns the server id."""
    server = server or _server(conn)
    conn.compute.create_volume_attachment(server, volume=volume)
    conn.block_storage.wait_for_status(volume, "in-use", failures=["error_attaching"], **FAST)
    return server.id


# lifecycle ------------------------------------------------------------------------------------------
def test_volume_life(os_conn):
    storage = os_conn.block_storage
    created = storage.create_volume(size=1, name="data", description="pg data", metadata={"role": "db"})
    assert created.status == "creating"
    volume = storage.wait_for_status(created, "available", failures=["error"], **FAST)
    assert (volume.size, volume.name, volume.description) == (1, "data", "pg data")
    assert volume.metadata == {"role": "db"}
    assert volume.volume_type == "__DEFAULT__" and volume.availability_zone == "nova"
    assert volume.is_bootable is False and volume.attachments == []
    assert volume.project_id == os_conn.current_project_id

    storage.extend_volume(volume, 3)
    grown = storage.wait_for_status(storage.get_volume(volume.id), "available", failures=["error_extending"], **FAST)
    assert grown.size == 3

    storage.delete_volume(volume)
    storage.wait_for_delete(volume, **FAST)
    with pytest.raises(openstack.exceptions.NotFoundException) as err:
        storage.get_volume(volume.id)
    assert f"Volume {volume.id} could not be found." in str(err.value)


def test_create_is_202_creating_then_available_on_the_clock(fakecloud, os_conn):
    fakecloud.control.set_delays(volume_create=30)
    fakecloud.control.freeze()
    try:
        volume = os_conn.block_storage.create_volume(size=2, name="slow")
        assert os_conn.block_storage.get_volume(volume.id).status == "creating"
        fakecloud.control.advance(31)
        assert os_conn.block_storage.get_volume(volume.id).status == "available"
    finally:
        fakecloud.control.freeze(False)


def test_update_and_metadata(os_conn):
    storage = os_conn.block_storage
    volume = _available(os_conn, name="before")
    updated = storage.update_volume(volume, name="after", description="new")
    assert (updated.name, updated.description) == ("after", "new")
    storage.set_volume_metadata(volume, tier="gold")
    assert storage.get_volume(volume.id).metadata == {"tier": "gold"}
    storage.delete_volume_metadata(volume, keys=["tier"])
    assert storage.get_volume(volume.id).metadata == {}


def test_find_by_name_and_list_filters(fakecloud, os_conn):
    storage = os_conn.block_storage
    first = _available(os_conn, name="one")
    second = _available(os_conn, name="two")
    response = requests.get(_volume_url(fakecloud, os_conn, "/volumes/one"), headers=_headers(os_conn))
    assert response.status_code == 404
    assert response.json() == {"itemNotFound": {"code": 404, "message": "Volume one could not be found."}}
    assert storage.find_volume("one", ignore_missing=False).id == first.id
    assert [v.id for v in storage.volumes(name="two")] == [second.id]
    assert [v.id for v in storage.volumes()] == [second.id, first.id], "newest first"
    assert [v.id for v in storage.volumes(status="available")] == [second.id, first.id]
    assert list(storage.volumes(status="in-use")) == []


def test_limit_and_marker_give_volumes_links(fakecloud, os_conn):
    ids = [_available(os_conn, name=f"v{i}").id for i in range(3)]
    url = _volume_url(fakecloud, os_conn, "/volumes/detail")
    page = requests.get(url, params={"limit": 2}, headers=_headers(os_conn)).json()
    assert [v["id"] for v in page["volumes"]] == [ids[2], ids[1]]
    next_url = page["volumes_links"][0]["href"]
    rest = requests.get(next_url, headers=_headers(os_conn)).json()
    assert [v["id"] for v in rest["volumes"]] == [ids[0]]
    assert "volumes_links" not in rest
    assert [v.id for v in os_conn.block_storage.volumes(limit=1)] == ids[::-1], "the SDK follows the links"


def test_bad_size_is_400(fakecloud, os_conn):
    for size in (0, -1, "big"):
        response = requests.post(_volume_url(fakecloud, os_conn, "/volumes"), json={"volume": {"size": size}},
                                 headers=_headers(os_conn))
        assert response.status_code == 400
        assert "size" in response.json()["badRequest"]["message"]


# extend ---------------------------------------------------------------------------------------------
def test_shrink_or_same_size_refused(os_conn):
    volume = _available(os_conn, size=2)
    for size in (2, 1):
        with pytest.raises(openstack.exceptions.BadRequestException) as err:
            os_conn.block_storage.extend_volume(volume, size)
        assert ("Invalid input received: New size for extend must be greater than current size. "
                f"(current: 2, extend: {size}).") in str(err.value)
    assert os_conn.block_storage.get_volume(volume.id).size == 2


def test_extend_in_use_at_default_microversion(os_conn):
    storage = os_conn.block_storage
    volume = _available(os_conn)
    server_id = _attach(os_conn, volume)
    storage.extend_volume(volume, 2)
    grown = storage.wait_for_status(storage.get_volume(volume.id), "in-use", failures=["error_extending"], **FAST)
    assert grown.size == 2
    assert [a["server_id"] for a in grown.attachments] == [server_id]


IN_USE_REFUSED = "Invalid volume: Volume status must be 'available' to extend, but current status is: in-use."


def test_extend_in_use_refused_when_the_cloud_caps_at_3_41(fakecloud, os_conn):
    volume = _available(os_conn)
    _attach(os_conn, volume)
    fakecloud.control.set_microversions(volume="3.41")
    conn = fakecloud.connect()  # a fresh Connection negotiates against the new cap
    with pytest.raises(openstack.exceptions.BadRequestException) as err:
        conn.block_storage.extend_volume(volume.id, 2)
    assert IN_USE_REFUSED in str(err.value)
    shown = conn.block_storage.get_volume(volume.id)
    assert (shown.status, shown.size) == ("in-use", 1)


def test_extend_in_use_refused_when_the_client_asks_for_3_41(fakecloud, os_conn):
    volume = _available(os_conn)
    _attach(os_conn, volume)
    url = _volume_url(fakecloud, os_conn, f"/volumes/{volume.id}/action")
    response = requests.post(url, json={"os-extend": {"new_size": 2}}, headers=_headers(os_conn, "3.41"))
    assert response.status_code == 400
    assert response.json() == {"badRequest": {"code": 400, "message": IN_USE_REFUSED}}
    response = requests.post(url, json={"os-extend": {"new_size": 2}}, headers=_headers(os_conn, "3.42"))
    assert response.status_code == 202 and response.content == b""


def test_extend_fault_leaves_error_extending(fakecloud, os_conn):
    volume = _available(os_conn)
    fakecloud.control.add_fault(service="volume", operation="volume.extend", action="error_status", count=1)
    os_conn.block_storage.extend_volume(volume, 2)
    shown = os_conn.block_storage.get_volume(volume.id)
    assert (shown.status, shown.size) == ("error_extending", 1)


# faults and quotas ----------------------------------------------------------------------------------
def test_http_500_on_create(fakecloud, os_conn):
    fakecloud.control.add_fault(service="volume", operation="volume.create", action="http_error", status=500,
                                count=1)
    with pytest.raises(openstack.exceptions.HttpException) as err:
        os_conn.block_storage.create_volume(size=1, name="doomed")
    assert err.value.status_code == 500
    assert list(os_conn.block_storage.volumes()) == []
    assert _available(os_conn, name="next").status == "available", "the fault fired once"


def test_error_status_on_create(fakecloud, os_conn):
    fakecloud.control.add_fault(service="volume", operation="volume.create", action="error_status", count=1)
    volume = os_conn.block_storage.create_volume(size=1)
    with pytest.raises(openstack.exceptions.ResourceFailure):
        os_conn.block_storage.wait_for_status(volume, "available", failures=["error"], **FAST)
    assert os_conn.block_storage.get_volume(volume.id).status == "error"
    os_conn.block_storage.delete_volume(volume)
    os_conn.block_storage.wait_for_delete(volume, **FAST)


def test_stuck_create_stays_creating(fakecloud, os_conn):
    fakecloud.control.add_fault(service="volume", operation="volume.create", action="stuck", count=1)
    volume = os_conn.block_storage.create_volume(size=1)
    assert os_conn.block_storage.get_volume(volume.id).status == "creating"


def test_gigabytes_quota_is_413(fakecloud, os_conn):
    limit = fakecloud.cloud.config.quotas.gigabytes
    _available(os_conn, size=2)
    with pytest.raises(openstack.exceptions.HttpException) as err:
        os_conn.block_storage.create_volume(size=limit)
    assert err.value.status_code == 413
    assert (f"VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed gigabytes quota. "
            f"Requested {limit}G, quota is {limit}G and 2G has been consumed.") in str(err.value)


def test_volumes_quota_set_by_admin_is_413(fakecloud, os_conn, os_admin):
    demo = os_conn.current_project_id
    os_admin.block_storage.update_quota_set(demo, volumes=1, gigabytes=10)
    quotas = os_conn.block_storage.get_quota_set(demo)
    assert (quotas.volumes, quotas.gigabytes) == (1, 10)
    volume = _available(os_conn, size=4)
    with pytest.raises(openstack.exceptions.HttpException) as err:
        os_conn.block_storage.create_volume(size=1)
    assert err.value.status_code == 413
    assert "VolumeLimitExceeded: Maximum number of volumes allowed (1) exceeded for quota 'volumes'." in str(err.value)
    with pytest.raises(openstack.exceptions.HttpException) as err:
        os_conn.block_storage.extend_volume(volume, 11)
    assert err.value.status_code == 413
    assert "Requested 7G, quota is 10G and 4G has been consumed." in str(err.value)
    raw = requests.post(_volume_url(fakecloud, os_conn, "/volumes"), json={"volume": {"size": 1}},
                        headers=_headers(os_conn))
    assert raw.status_code == 413 and raw.json()["overLimit"]["code"] == 413


def test_limits_and_quota_usage(os_conn):
    _available(os_conn, size=3)
    absolute = os_conn.block_storage.get_limits().absolute
    assert (absolute.total_volumes_used, absolute.total_gigabytes_used) == (1, 3)
    assert absolute.max_total_volumes == 50
    usage = os_conn.block_storage.get_quota_set(os_conn.current_project_id, usage=True).usage
    assert (usage["volumes"], usage["gigabytes"]) == (1, 3)


def test_quota_of_another_project_is_forbidden(fakecloud, os_conn, os_admin):
    response = requests.get(_volume_url(fakecloud, os_conn, f"/os-quota-sets/{os_admin.current_project_id}"),
                            headers=_headers(os_conn))
    assert response.status_code == 403


# delete guards, isolation ---------------------------------------------------------------------------
DELETE_REFUSED = (
    "Invalid volume: Volume status must be available or error or error_restoring or error_extending or "
    "error_managing and must not be migrating, attached, belong to a group, have snapshots or be "
    "disassociated from snapshots after volume transfer."
)


def test_delete_attached_volume_refused(os_conn):
    volume = _available(os_conn)
    _attach(os_conn, volume)
    with pytest.raises(openstack.exceptions.BadRequestException) as err:
        os_conn.block_storage.delete_volume(volume, ignore_missing=False)
    assert DELETE_REFUSED in str(err.value)
    assert os_conn.block_storage.get_volume(volume.id).status == "in-use"


def test_projects_are_isolated(fakecloud, os_conn, os_admin):
    mine = _available(os_conn, name="demo-vol")
    theirs = _available(os_admin, name="admin-vol")
    assert [v.id for v in os_conn.block_storage.volumes()] == [mine.id]
    assert [v.id for v in os_admin.block_storage.volumes()] == [theirs.id]
    assert {v.id for v in os_admin.block_storage.volumes(all_projects=True)} == {mine.id, theirs.id}
    with pytest.raises(openstack.exceptions.NotFoundException):
        os_conn.block_storage.get_volume(theirs.id)
    with pytest.raises(openstack.exceptions.NotFoundException):
        os_conn.block_storage.extend_volume(theirs.id, 5)
    os_conn.block_storage.delete_volume(theirs.id)  # ignore_missing: a silent no-op for another project's volume
    assert os_admin.block_storage.get_volume(theirs.id).status == "available"
    assert os_admin.block_storage.get_volume(mine.id).host, "admins see any volume by id, with the host"
    other = requests.get(_volume_url(fakecloud, os_admin, "/volumes/detail"), headers=_headers(os_conn))
    assert other.status_code == 403, "another project's id in the URL"


def test_admin_reset_status(fakecloud, os_conn, os_admin):
    volume = _available(os_conn)
    with pytest.raises(openstack.exceptions.ForbiddenException):
        os_conn.block_storage.reset_volume_status(volume, status="error")
    os_admin.block_storage.reset_volume_status(volume.id, status="error", attach_status="detached")
    assert os_conn.block_storage.get_volume(volume.id).status == "error"


# attachments ----------------------------------------------------------------------------------------
def test_old_style_attach_and_detach_actions(os_conn):
    storage = os_conn.block_storage
    volume = _available(os_conn)
    server_id = "3f4c6a1e-9b2d-4e8f-a7c5-0d1e2f3a4b5c"
    storage.reserve_volume(volume)
    assert storage.get_volume(volume.id).status == "attaching"
    storage.unreserve_volume(volume)
    assert storage.get_volume(volume.id).status == "available"
    storage.reserve_volume(volume)
    storage.attach_volume(volume, "/dev/vdb", instance=server_id)
    attached = storage.wait_for_status(storage.get_volume(volume.id), "in-use", **FAST)
    (entry,) = attached.attachments
    assert (entry["server_id"], entry["device"], entry["volume_id"]) == (server_id, "/dev/vdb", volume.id)
    storage.begin_volume_detaching(volume)
    assert storage.get_volume(volume.id).status == "detaching"
    storage.abort_volume_detaching(volume)
    assert storage.get_volume(volume.id).status == "in-use"
    storage.begin_volume_detaching(volume)
    storage.detach_volume(volume, entry["attachment_id"])
    detached = storage.wait_for_status(storage.get_volume(volume.id), "available", **FAST)
    assert detached.attachments == []


def test_nova_attachments_show_in_cinder(os_conn):
    storage, compute = os_conn.block_storage, os_conn.compute
    server = _server(os_conn)
    first, second = _available(os_conn, name="a"), _available(os_conn, name="b")
    _attach(os_conn, first, server)
    _attach(os_conn, second, server)
    devices = {}
    for volume in (first, second):
        (entry,) = storage.get_volume(volume.id).attachments
        assert (entry["server_id"], entry["volume_id"], entry["id"]) == (server.id, volume.id, volume.id)
        devices[volume.id] = entry["device"]
    assert sorted(devices.values()) == ["/dev/vdb", "/dev/vdc"]
    assert {a.volume_id for a in compute.volume_attachments(server)} == {first.id, second.id}
    with pytest.raises(openstack.exceptions.HttpException) as err:
        compute.create_volume_attachment(server, volume=first)
    assert err.value.status_code == 400, "already attached to this server (Nova's InvalidVolume)"
    other = _server(os_conn, "other")
    with pytest.raises(openstack.exceptions.BadRequestException) as err:
        compute.create_volume_attachment(other, volume=first)
    assert f"volume {first.id} status must be available, but current status is: in-use." in str(err.value)

    compute.delete_volume_attachment(server, first.id)
    freed = storage.wait_for_status(storage.get_volume(first.id), "available", **FAST)
    assert freed.attachments == []
    compute.delete_server(server)
    compute.wait_for_delete(server, **FAST)
    released = storage.get_volume(second.id)
    assert (released.status, released.attachments) == ("available", [])


def test_attachments_api_reads_the_same_records(fakecloud, os_conn):
    volume = _available(os_conn)
    server_id = _attach(os_conn, volume)
    (attachment,) = os_conn.block_storage.attachments()
    assert (attachment.volume_id, attachment.instance, attachment.status) == (volume.id, server_id, "attached")
    shown = os_conn.block_storage.get_attachment(attachment.id)
    assert shown.instance == server_id
    old = requests.get(_volume_url(fakecloud, os_conn, "/attachments"), headers=_headers(os_conn, "3.26"))
    assert old.status_code == 404, "the attachments API starts at 3.27"


def test_every_way_of_attaching_and_detaching_shows_in_novas_view(os_conn, os_admin):
    storage, compute = os_conn.block_storage, os_conn.compute
    server = _server(os_conn)
    old_style, by_nova, reset = _available(os_conn, name="old"), _available(os_conn, name="nova"), \
        _available(os_conn, name="reset")
    storage.reserve_volume(old_style)
    storage.attach_volume(old_style, "/dev/vdd", instance=server.id)  # the reserved record gets the server
    storage.wait_for_status(storage.get_volume(old_style.id), "in-use", **FAST)
    _attach(os_conn, by_nova, server)
    _attach(os_conn, reset, server)
    assert {a.volume_id for a in compute.volume_attachments(server)} == {old_style.id, by_nova.id, reset.id}
    os_admin.block_storage.reset_volume_status(reset.id, status="available", attach_status="detached")
    assert {a.volume_id for a in compute.volume_attachments(server)} == {old_style.id, by_nova.id}
    (record,) = [a for a in storage.attachments() if a.volume_id == by_nova.id]
    assert storage.get_attachment(record.id).instance == server.id
    shown = compute.get_server(server.id)
    assert {v["id"] for v in shown.attached_volumes} == {old_style.id, by_nova.id}
    compute.delete_server(server)
    compute.wait_for_delete(server, **FAST)
    for volume in (old_style, by_nova):
        assert (storage.get_volume(volume.id).status, storage.get_volume(volume.id).attachments) == ("available", [])
    assert list(storage.attachments()) == []
    with pytest.raises(openstack.exceptions.NotFoundException):
        storage.get_attachment(record.id)


def test_attachments_survive_restart(tmp_path):
    state = tmp_path / "state.json"
    with running_cloud(state_file=state) as first:
        conn = first.connect()
        volume = _available(conn, name="kept")
        server_id = _attach(conn, volume)
        conn.close()
    with running_cloud(state_file=state) as second:
        conn = second.connect()
        assert [a.volume_id for a in conn.compute.volume_attachments(server_id)] == [volume.id]
        (record,) = conn.block_storage.attachments()
        assert conn.block_storage.get_attachment(record.id).instance == server_id
        server = conn.compute.get_server(server_id)
        conn.compute.delete_server(server)
        conn.compute.wait_for_delete(server, **FAST)
        assert conn.block_storage.get_volume(volume.id).status == "available"
        conn.close()


def test_state_survives_restart_and_settles_transitions(tmp_path):
    state = tmp_path / "state.json"
    with running_cloud(state_file=state) as first:
        conn = first.connect()
        settled = _available(conn, name="settled", size=2)
        first.control.set_delays(volume_create=100, volume_extend=100)
        conn.block_storage.extend_volume(settled, 5)
        creating = conn.block_storage.create_volume(size=1, name="creating")
        assert conn.block_storage.get_volume(settled.id).status == "extending"
        conn.close()
    with running_cloud(state_file=state) as second:
        conn = second.connect()
        grown = conn.block_storage.get_volume(settled.id)
        assert (grown.status, grown.size) == ("available", 5)
        assert conn.block_storage.get_volume(creating.id).status == "available"
        assert {v["name"] for v in second.control.inventory("demo")["volumes"]} == {"settled", "creating"}
        conn.close()


# wire: discovery, project-less paths, microversions --------------------------------------------------
@pytest.mark.parametrize("path", ["/volume", "/volume/", "/volume/v3", "/volume/v3/"])
def test_discovery_paths(fakecloud, path):
    response = requests.get(fakecloud.url + path)
    assert response.status_code in (200, 300)
    (version,) = response.json()["versions"]
    assert (version["id"], version["status"], version["version"], version["min_version"]) == (
        "v3.0", "CURRENT", "3.70", "3.0")


def test_discovery_follows_the_configured_cap(fakecloud):
    fakecloud.control.set_microversions(volume="3.41")
    assert requests.get(fakecloud.url + "/volume/v3/").json()["versions"][0]["version"] == "3.41"
    conn = fakecloud.connect()
    volume = _available(conn)
    request = fakecloud.control.requests()["requests"]
    assert any(r["path"] == "/volume/v3/" for r in request)
    assert conn.block_storage.get_volume(volume.id).id == volume.id


def test_routes_without_project_id(fakecloud, os_conn):
    volume = _available(os_conn, name="plain")
    headers = _headers(os_conn, "3.70")
    shown = requests.get(_volume_url(fakecloud, os_conn, f"/volumes/{volume.id}", with_project=False),
                         headers=headers)
    assert shown.status_code == 200
    body = shown.json()["volume"]
    assert body["name"] == "plain" and body["consumes_quota"] is True and "group_id" in body
    assert "os-vol-host-attr:host" not in body, "host is admin-only"
    assert shown.headers["OpenStack-API-Version"] == "volume 3.70"
    listed = requests.get(_volume_url(fakecloud, os_conn, "/volumes", with_project=False), headers=headers)
    assert listed.json()["volumes"][0]["id"] == volume.id
    old = requests.get(_volume_url(fakecloud, os_conn, f"/volumes/{volume.id}"), headers=_headers(os_conn, "3.0"))
    assert "consumes_quota" not in old.json()["volume"]
    too_new = requests.get(_volume_url(fakecloud, os_conn, "/volumes"), headers=_headers(os_conn, "3.71"))
    assert too_new.status_code == 406


def test_types_zones(os_conn):
    (volume_type,) = os_conn.block_storage.types()
    assert volume_type.name == "__DEFAULT__"
    assert [z.name for z in os_conn.block_storage.availability_zones()] == ["nova"]


# the views tempest checks: create/update vs show/detail, paging, filters ------------------------------
EXTENSION_KEYS = {"os-vol-tenant-attr:tenant_id", "os-vol-host-attr:host", "os-vol-mig-status-attr:migstat",
                  "os-vol-mig-status-attr:name_id", "volume_image_metadata"}


def test_create_and_update_answer_without_the_extension_attributes(fakecloud, os_conn, os_admin):
    url = _volume_url(fakecloud, os_conn, "/volumes")
    created = requests.post(url, json={"volume": {"size": 1, "name": "plain"}}, headers=_headers(os_conn))
    assert created.status_code == 202
    body = created.json()["volume"]
    assert not EXTENSION_KEYS & set(body), "Cinder's extensions extend show and detail, not create"
    assert "migration_status" not in body, "admin-only in Cinder's view"
    assert (body["name"], body["status"], body["bootable"], body["multiattach"]) == ("plain", "creating", "false",
                                                                                    False)
    volume_id = body["id"]
    os_conn.block_storage.wait_for_status(os_conn.block_storage.get_volume(volume_id), "available", **FAST)
    updated = requests.put(f"{url}/{volume_id}", json={"volume": {"name": "renamed"}}, headers=_headers(os_conn))
    assert updated.status_code == 200
    assert updated.json()["volume"]["name"] == "renamed" and not EXTENSION_KEYS & set(updated.json()["volume"])

    shown = requests.get(f"{url}/{volume_id}", headers=_headers(os_conn)).json()["volume"]
    assert shown["os-vol-tenant-attr:tenant_id"] == os_conn.current_project_id
    assert "os-vol-host-attr:host" not in shown and "migration_status" not in shown
    detail = requests.get(f"{url}/detail", headers=_headers(os_conn)).json()["volumes"]
    assert detail[0]["os-vol-tenant-attr:tenant_id"] == os_conn.current_project_id

    admin_url = _volume_url(fakecloud, os_admin, f"/volumes/{volume_id}")
    as_admin = requests.get(admin_url, headers=_headers(os_admin)).json()["volume"]
    assert as_admin["os-vol-host-attr:host"] == "fakecloud@lvm#lvm"
    assert as_admin["migration_status"] is None and as_admin["os-vol-mig-status-attr:migstat"] is None
    admin_create = requests.post(_volume_url(fakecloud, os_admin, "/volumes"), json={"volume": {"size": 1}},
                                 headers=_headers(os_admin)).json()["volume"]
    assert not EXTENSION_KEYS & set(admin_create) and admin_create["migration_status"] is None


def test_image_metadata_shows_on_show_not_on_create(fakecloud, os_conn):
    image = next(os_conn.image.images(name="cirros-0.6.2"))
    url = _volume_url(fakecloud, os_conn, "/volumes")
    created = requests.post(url, json={"volume": {"size": 1, "imageRef": image.id}}, headers=_headers(os_conn))
    assert created.status_code == 202 and "volume_image_metadata" not in created.json()["volume"]
    shown = requests.get(f"{url}/{created.json()['volume']['id']}", headers=_headers(os_conn)).json()["volume"]
    assert shown["bootable"] == "true" and shown["volume_image_metadata"]["image_id"] == image.id


def test_a_full_page_links_on_even_when_nothing_follows(fakecloud, os_conn):
    """Cinder links every full page, so a listing that divides evenly ends on an empty page (tempest pages so)."""
    ids = [_available(os_conn).id for _ in range(2)]
    url = _volume_url(fakecloud, os_conn, "/volumes")
    seen, href, pages = [], url + "?limit=1", 0
    while href:
        page = requests.get(href, headers=_headers(os_conn)).json()
        seen += [v["id"] for v in page["volumes"]]
        links = page.get("volumes_links", [])
        href, pages = (links[0]["href"] if links else None), pages + 1
    assert (seen, pages) == (ids[::-1], 3), "two full pages, each linked, then an empty one without a link"


def test_list_filters_by_availability_zone(fakecloud, os_conn):
    volume = _available(os_conn)
    url = _volume_url(fakecloud, os_conn, "/volumes/detail")
    here = requests.get(url, params={"availability_zone": "nova"}, headers=_headers(os_conn)).json()["volumes"]
    assert [v["id"] for v in here] == [volume.id]
    assert requests.get(url, params={"availability_zone": "elsewhere"},
                        headers=_headers(os_conn)).json()["volumes"] == []


# admin catalog: volume types, extra specs, access, encryption, QoS -----------------------------------
def _call(fakecloud, conn, method: str, path: str, version: str | None = "3.70", **kwargs) -> requests.Response:
    return requests.request(method, _volume_url(fakecloud, conn, path), headers=_headers(conn, version), **kwargs)


def _new_type(fakecloud, os_admin, name: str, **spec) -> dict:
    response = _call(fakecloud, os_admin, "POST", "/types", json={"volume_type": {"name": name, **spec}})
    assert response.status_code == 200, response.text
    return response.json()["volume_type"]


def test_private_volume_type_needs_access(fakecloud, os_conn, os_admin):
    kind = _new_type(fakecloud, os_admin, "gold", **{"os-volume-type-access:is_public": False,
                                                     "extra_specs": {"storage_protocol": "iSCSI"}})
    assert kind["os-volume-type-access:is_public"] is False and "qos_specs_id" not in kind
    refused = _call(fakecloud, os_conn, "POST", "/volumes", json={"volume": {"size": 1, "volume_type": kind["id"]}})
    assert refused.status_code == 404
    assert "gold" not in [t["name"] for t in _call(fakecloud, os_conn, "GET", "/types").json()["volume_types"]]
    assert _call(fakecloud, os_conn, "POST", "/types", json={"volume_type": {"name": "x"}}).status_code == 403

    project = os_conn.current_project_id
    assert _call(fakecloud, os_admin, "POST", f"/types/{kind['id']}/action",
                 json={"addProjectAccess": {"project": project}}).status_code == 202
    access = _call(fakecloud, os_admin, "GET", f"/types/{kind['id']}/os-volume-type-access").json()
    assert access == {"volume_type_access": [{"volume_type_id": kind["id"], "project_id": project}]}
    volume = _available(os_conn, volume_type="gold")
    assert (volume.volume_type, os_conn.block_storage.get_volume(volume.id).volume_type) == ("gold", "gold")

    assert _call(fakecloud, os_admin, "POST", "/types", json={"volume_type": {"name": "gold"}}).status_code == 409
    in_use = _call(fakecloud, os_admin, "DELETE", f"/types/{kind['id']}")
    assert (in_use.status_code, "still in use" in in_use.text) == (400, True)
    renamed = _call(fakecloud, os_admin, "PUT", f"/types/{kind['id']}", json={"volume_type": {"name": "platinum"}})
    assert set(renamed.json()["volume_type"]) == {"id", "name", "description", "is_public", "extra_specs"}
    assert os_conn.block_storage.get_volume(volume.id).volume_type == "platinum"
    default = _call(fakecloud, os_admin, "DELETE", "/types/7b8a9c4e-2d1f-5e3a-8b6c-0d9e1f2a3b4c")
    assert default.status_code == 400


def test_extra_specs_and_encryption(fakecloud, os_admin):
    kind = _new_type(fakecloud, os_admin, "specs", extra_specs={"a": "1"})
    base = f"/types/{kind['id']}"
    assert _call(fakecloud, os_admin, "POST", base + "/extra_specs", json={"extra_specs": {"b": "2"}}).json() == {
        "extra_specs": {"b": "2"}}
    assert _call(fakecloud, os_admin, "PUT", base + "/extra_specs/b", json={"b": "3"}).json() == {"b": "3"}
    assert _call(fakecloud, os_admin, "PUT", base + "/extra_specs/b", json={"c": "3"}).status_code == 400
    assert _call(fakecloud, os_admin, "PUT", base + "/extra_specs/b", json={"b": "3", "a": "2"}).status_code == 400
    assert _call(fakecloud, os_admin, "POST", base + "/extra_specs", json={"extra_specs": None}).status_code == 400
    assert _call(fakecloud, os_admin, "GET", base + "/extra_specs").json() == {"extra_specs": {"a": "1", "b": "3"}}
    assert _call(fakecloud, os_admin, "DELETE", base + "/extra_specs/a").status_code == 202
    assert _call(fakecloud, os_admin, "GET", base + "/extra_specs/a").status_code == 404

    spec = {"provider": "luks", "cipher": "aes-xts-plain64", "key_size": 256, "control_location": "front-end"}
    created = _call(fakecloud, os_admin, "POST", base + "/encryption", json={"encryption": spec}).json()["encryption"]
    assert {k: created[k] for k in spec} == spec and created["volume_type_id"] == kind["id"]
    update = {"key_size": 128, "control_location": "back-end"}
    assert _call(fakecloud, os_admin, "PUT", f"{base}/encryption/{created['encryption_id']}",
                 json={"encryption": update}).json() == {"encryption": update}
    assert _call(fakecloud, os_admin, "GET", base + "/encryption/key_size").json() == {"key_size": 128}
    assert _call(fakecloud, os_admin, "DELETE", f"{base}/encryption/{created['encryption_id']}").status_code == 202
    assert _call(fakecloud, os_admin, "GET", base + "/encryption").json() == {}


def test_type_no_backend_fits_ends_in_error_with_a_user_message(fakecloud, os_conn, os_admin):
    _new_type(fakecloud, os_admin, "bogus", extra_specs={"vendor_name": "Nobody"})
    volume = os_conn.block_storage.create_volume(size=1, volume_type="bogus")
    assert os_conn.block_storage.get_volume(volume.id).status == "error"
    (message,) = _call(fakecloud, os_conn, "GET", "/messages").json()["messages"]
    assert (message["resource_uuid"], message["message_level"]) == (volume.id, "ERROR")
    assert _call(fakecloud, os_conn, "GET", "/messages", version="3.0").status_code == 404
    assert _call(fakecloud, os_conn, "DELETE", f"/messages/{message['id']}").status_code == 204
    assert _call(fakecloud, os_conn, "GET", f"/messages/{message['id']}").status_code == 404


def test_retype_changes_the_type_in_place(fakecloud, os_conn, os_admin):
    _new_type(fakecloud, os_admin, "one")
    two = _new_type(fakecloud, os_admin, "two")
    volume = _available(os_conn, volume_type="one")
    url = f"/volumes/{volume.id}/action"
    assert _call(fakecloud, os_conn, "POST", url, json={"os-retype": {"new_type": "two", "migration_policy": "never"}}
                 ).status_code == 202
    shown = _call(fakecloud, os_conn, "GET", f"/volumes/{volume.id}").json()["volume"]
    assert (shown["status"], shown["volume_type"], shown["volume_type_id"]) == ("available", "two", two["id"])
    assert _call(fakecloud, os_conn, "POST", url, json={"os-retype": {"new_type": "two"}}).status_code == 400


def test_qos_specs(fakecloud, os_admin):
    created = _call(fakecloud, os_admin, "POST", "/qos-specs",
                    json={"qos_specs": {"name": "fast", "consumer": "front-end", "read_iops_sec": "2000"}}).json()
    spec = created["qos_specs"]
    assert spec["specs"] == {"read_iops_sec": "2000"} and created["links"]
    assert spec in _call(fakecloud, os_admin, "GET", "/qos-specs").json()["qos_specs"]
    base = f"/qos-specs/{spec['id']}"
    assert _call(fakecloud, os_admin, "PUT", base, json={"qos_specs": {"iops": "5"}}).json() == {
        "qos_specs": {"iops": "5"}}
    assert _call(fakecloud, os_admin, "PUT", base + "/delete_keys", json={"keys": ["iops"]}).status_code == 202
    assert "iops" not in _call(fakecloud, os_admin, "GET", base).json()["qos_specs"]["specs"]
    kind = _new_type(fakecloud, os_admin, "limited")
    assert _call(fakecloud, os_admin, "GET", f"{base}/associate?vol_type_id={kind['id']}").status_code == 202
    assert _call(fakecloud, os_admin, "GET", base + "/associations").json() == {
        "qos_associations": [{"association_type": "volume_type", "id": kind["id"], "name": "limited"}]}
    assert _call(fakecloud, os_admin, "GET", f"/types/{kind['id']}").json()["volume_type"]["qos_specs_id"] == spec["id"]
    assert _call(fakecloud, os_admin, "DELETE", base).status_code == 400, "still associated"
    assert _call(fakecloud, os_admin, "GET", base + "/disassociate_all").status_code == 202
    assert _call(fakecloud, os_admin, "DELETE", base).status_code == 202
    assert _call(fakecloud, os_admin, "GET", base).status_code == 404


def test_catalog_survives_restart(tmp_path):
    state = tmp_path / "state.json"
    with running_cloud(state_file=state) as first:
        admin = first.connect("admin")
        kind = _new_type(first, admin, "kept", extra_specs={"k": "v"})
        admin.close()
    with running_cloud(state_file=state) as second:
        admin = second.connect("admin")
        shown = _call(second, admin, "GET", f"/types/{kind['id']}").json()["volume_type"]
        assert (shown["name"], shown["extra_specs"]) == ("kept", {"k": "v"})
        admin.close()


# operator API: services, hosts, pools, capabilities, quota classes ------------------------------------
def test_services_hosts_pools_and_capabilities(fakecloud, os_conn, os_admin):
    services = _call(fakecloud, os_admin, "GET", "/os-services").json()["services"]
    assert {(s["binary"], s["host"]) for s in services} == {("cinder-scheduler", "fakecloud"),
                                                             ("cinder-volume", "fakecloud@lvm")}
    on_host = _call(fakecloud, os_admin, "GET", "/os-services?host=fakecloud&binary=cinder-volume").json()
    assert [s["host"] for s in on_host["services"]] == ["fakecloud@lvm"]
    assert _call(fakecloud, os_conn, "GET", "/os-services").status_code == 403
    disabled = _call(fakecloud, os_admin, "PUT", "/os-services/disable-log-reason",
                     json={"host": "fakecloud@lvm", "binary": "cinder-volume", "disabled_reason": "maintenance"})
    assert disabled.json()["status"] == "disabled"
    assert _call(fakecloud, os_admin, "PUT", "/os-services/enable",
                 json={"host": "nowhere", "binary": "cinder-volume"}).status_code == 404
    assert _call(fakecloud, os_admin, "PUT", "/os-services/freeze", json={"host": "nowhere"}).status_code == 400

    hosts = _call(fakecloud, os_admin, "GET", "/os-hosts").json()["hosts"]
    assert {h["service"] for h in hosts} == {"cinder-scheduler", "cinder-volume"}
    _available(os_conn, size=2)
    (total, *_) = _call(fakecloud, os_admin, "GET", "/os-hosts/fakecloud@lvm").json()["host"]
    assert (total["resource"]["project"], total["resource"]["total_volume_gb"]) == ("(total)", "2")

    (pool,) = _call(fakecloud, os_admin, "GET", "/scheduler-stats/get_pools?detail=True").json()["pools"]
    capabilities = _call(fakecloud, os_admin, "GET", f"/capabilities/{pool['name']}").json()
    for key in ("vendor_name", "volume_backend_name", "storage_protocol"):
        assert pool["capabilities"][key] == capabilities[key]


def test_quota_classes_quota_delete_and_every_quota_key(fakecloud, os_conn, os_admin):
    project = os_conn.current_project_id
    default = _call(fakecloud, os_admin, "GET", "/os-quota-class-sets/default").json()["quota_class_set"]
    assert default["id"] == "default" and default["volumes___DEFAULT__"] == -1
    changed = _call(fakecloud, os_admin, "PUT", "/os-quota-class-sets/default",
                    json={"quota_class_set": {"volumes": default["volumes"] + 1}}).json()["quota_class_set"]
    assert changed["volumes"] == default["volumes"] + 1 and "id" not in changed
    assert _call(fakecloud, os_admin, "GET", f"/os-quota-sets/{project}/defaults").json()["quota_set"]["volumes"] == (
        default["volumes"] + 1)

    wanted = {"gigabytes": 1009, "volumes": 11, "snapshots": 11, "backups": 11, "backup_gigabytes": 1009,
              "per_volume_gigabytes": 1009}
    updated = _call(fakecloud, os_admin, "PUT", f"/os-quota-sets/{project}", json={"quota_set": wanted}).json()
    assert wanted.items() <= updated["quota_set"].items()
    assert _call(fakecloud, os_admin, "PUT", f"/os-quota-sets/{project}",
                 json={"quota_set": {"bogus": 1}}).status_code == 400
    assert _call(fakecloud, os_admin, "DELETE", f"/os-quota-sets/{project}").status_code == 200
    after = _call(fakecloud, os_admin, "GET", f"/os-quota-sets/{project}").json()["quota_set"]
    assert after["volumes"] == default["volumes"] + 1


# transfers, image metadata, readonly, upload, force detach, extend attached ---------------------------
def test_transfer_moves_the_volume_and_its_quota(fakecloud, os_conn, os_admin):
    volume = _available(os_conn, size=2)
    created = _call(fakecloud, os_conn, "POST", "/volume-transfers",
                    json={"transfer": {"volume_id": volume.id, "name": "gift"}})
    assert created.status_code == 202
    transfer = created.json()["transfer"]
    assert transfer["auth_key"] and transfer["source_project_id"] == os_conn.current_project_id
    assert os_conn.block_storage.get_volume(volume.id).status == "awaiting-transfer"
    listed = _call(fakecloud, os_conn, "GET", "/os-volume-transfer/detail", version="3.0").json()["transfers"]
    assert [t["volume_id"] for t in listed] == [volume.id] and "no_snapshots" not in listed[0]
    assert _call(fakecloud, os_admin, "POST", f"/os-volume-transfer/{transfer['id']}/accept",
                 json={"accept": {"auth_key": "wrong"}}).status_code == 400
    accepted = _call(fakecloud, os_admin, "POST", f"/os-volume-transfer/{transfer['id']}/accept",
                     json={"accept": {"auth_key": transfer["auth_key"]}})
    assert accepted.status_code == 202
    moved = _call(fakecloud, os_admin, "GET", f"/volumes/{volume.id}").json()["volume"]
    assert (moved["status"], moved["os-vol-tenant-attr:tenant_id"]) == ("available", os_admin.current_project_id)
    assert _call(fakecloud, os_conn, "GET", f"/volumes/{volume.id}").status_code == 404
    usage = _call(fakecloud, os_conn, "GET", f"/os-quota-sets/{os_conn.current_project_id}?usage=true").json()
    assert usage["quota_set"]["gigabytes"]["in_use"] == 0


def test_image_metadata_actions_and_readonly_flag(fakecloud, os_conn):
    volume = _available(os_conn)
    url = f"/volumes/{volume.id}/action"
    answer = _call(fakecloud, os_conn, "POST", url, json={"os-set_image_metadata": {"metadata": {"a": "1", "b": "2"}}})
    assert answer.json() == {"metadata": {"a": "1", "b": "2"}}
    assert _call(fakecloud, os_conn, "POST", url, json={"os-unset_image_metadata": {"key": "a"}}).status_code == 200
    assert _call(fakecloud, os_conn, "POST", url, json={"os-show_image_metadata": {}}).json() == {
        "metadata": {"b": "2"}}
    assert _call(fakecloud, os_conn, "POST", url, json={"os-unset_image_metadata": {"key": "a"}}).status_code == 404
    assert os_conn.block_storage.get_volume(volume.id).metadata == {}
    _call(fakecloud, os_conn, "POST", url, json={"os-update_readonly_flag": {"readonly": True}})
    assert os_conn.block_storage.get_volume(volume.id).metadata == {"readonly": "True"}


def test_upload_to_image(fakecloud, os_conn):
    volume = _available(os_conn)
    answer = _call(fakecloud, os_conn, "POST", f"/volumes/{volume.id}/action",
                   json={"os-volume_upload_image": {"image_name": "snap", "disk_format": "qcow2"}})
    assert answer.status_code == 202
    image_id = answer.json()["os-volume_upload_image"]["image_id"]
    image = os_conn.image.wait_for_status(os_conn.image.get_image(image_id), "active", **FAST)
    assert (image.name, image.disk_format) == ("snap", "qcow2")
    assert os_conn.block_storage.wait_for_status(volume, "available", **FAST).status == "available"


def test_force_detach_then_detach_without_attachment(fakecloud, os_conn, os_admin):
    volume = _available(os_conn)
    server = _server(os_conn)
    url = f"/volumes/{volume.id}/action"
    _call(fakecloud, os_conn, "POST", url, json={"os-attach": {"instance_uuid": server.id, "mountpoint": "/dev/vdb"}})
    attached = os_conn.block_storage.wait_for_status(volume, "in-use", **FAST)
    (attachment,) = attached.attachments
    os_admin.block_storage.reset_volume_status(volume.id, status="error")
    assert _call(fakecloud, os_conn, "POST", url, json={"os-force_detach": {}}).status_code == 403
    assert _call(fakecloud, os_admin, "POST", url, json={"os-force_detach": {
        "attachment_id": attachment["attachment_id"], "connector": None}}).status_code == 202
    detached = os_conn.block_storage.get_volume(volume.id)
    assert (detached.status, detached.attachments) == ("available", [])
    assert _call(fakecloud, os_conn, "POST", url, json={"os-detach": {}}).status_code == 202


def test_extending_an_attached_volume_tells_nova(fakecloud, os_conn, os_admin):
    volume = _available(os_conn)
    server_id = _attach(os_conn, volume)
    os_conn.block_storage.extend_volume(volume, 2)
    os_conn.block_storage.wait_for_status(os_conn.block_storage.get_volume(volume.id), "in-use", **FAST)
    actions = [a.action for a in os_admin.compute.server_actions(server_id)]
    assert "extend_volume" in actions


def test_paths_that_name_no_volume_are_404(fakecloud, os_conn):
    for method in ("GET", "PUT", "DELETE"):
        assert _call(fakecloud, os_conn, method, "/volumes/", json={"volume": {}}).status_code == 404


def test_extensions_name_hosts(fakecloud, os_conn):
    names = [e["name"] for e in _call(fakecloud, os_conn, "GET", "/extensions").json()["extensions"]]
    assert "Hosts" in names


# generic volume groups ---------------------------------------------------------------------------------
def test_group_types_and_groups(fakecloud, os_conn, os_admin):
    kind = _new_type(fakecloud, os_admin, "grouped")
    made = _call(fakecloud, os_admin, "POST", "/group_types",
                 json={"group_type": {"name": "gt", "group_specs": {"k": "v"}}})
    assert made.status_code == 202
    group_type = made.json()["group_type"]
    assert _call(fakecloud, os_admin, "GET", "/group_types", version="3.10").status_code == 404
    created = _call(fakecloud, os_conn, "POST", "/groups",
                    json={"group": {"name": "g", "group_type": group_type["id"], "volume_types": [kind["id"]]}})
    group_id = created.json()["group"]["id"]
    shown = _call(fakecloud, os_conn, "GET", f"/groups/{group_id}").json()["group"]
    assert (shown["status"], shown["volume_types"], shown["volumes"]) == ("available", [kind["id"]], [])
    volume = _call(fakecloud, os_conn, "POST", "/volumes",
                   json={"volume": {"size": 1, "volume_type": kind["id"], "group_id": group_id}}).json()["volume"]
    assert volume["group_id"] == group_id
    wrong_type = _call(fakecloud, os_conn, "POST", "/volumes",
                       json={"volume": {"size": 1, "group_id": group_id}})
    assert wrong_type.status_code == 400
    assert _call(fakecloud, os_conn, "PUT", f"/groups/{group_id}",
                 json={"group": {"remove_volumes": volume["id"]}}).status_code == 202
    assert _call(fakecloud, os_conn, "GET", f"/groups/{group_id}").json()["group"]["volumes"] == []
    _call(fakecloud, os_conn, "PUT", f"/groups/{group_id}", json={"group": {"add_volumes": volume["id"]}})
    copy = _call(fakecloud, os_conn, "POST", "/groups/action",
                 json={"create-from-src": {"source_group_id": group_id, "name": "copy"}}).json()["group"]
    assert len(_call(fakecloud, os_conn, "GET", f"/groups/{copy['id']}").json()["group"]["volumes"]) == 1
    assert _call(fakecloud, os_admin, "DELETE", f"/group_types/{group_type['id']}").status_code == 400
    assert _call(fakecloud, os_conn, "POST", f"/groups/{group_id}/action",
                 json={"delete": {"delete-volumes": False}}).status_code == 400
    assert _call(fakecloud, os_conn, "POST", f"/groups/{group_id}/action",
                 json={"delete": {"delete-volumes": True}}).status_code == 202
    assert _call(fakecloud, os_conn, "GET", f"/groups/{group_id}").status_code == 404
    assert _call(fakecloud, os_conn, "GET", f"/volumes/{volume['id']}").status_code == 404
