"""The admin API (/_fakecloud) through `openstack_fakecloud.control`, each effect observed by a real OpenStack client.

Faults, the clock, delay profiles, microversion caps, request accounting and inventory are what a test
suite uses fakecloud for beyond plain CRUD, so each is checked end to end: set it over HTTP, then watch
openstacksdk (or a raw request) see the consequence.
"""

from __future__ import annotations

import time

import keystoneauth1.exceptions
import openstack.exceptions
import pytest
import requests

WAIT = {"interval": 0.05, "wait": 10}


def _image_id(conn) -> str:
    return next(conn.image.images(name="cirros-0.6.2")).id


def _boot(conn, name: str, flavor: str = "1", wait: bool = True):
    server = conn.compute.create_server(name=name, image_id=_image_id(conn), flavor_id=flavor, networks="none")
    return conn.compute.wait_for_server(server, **WAIT) if wait else server


def _volume(conn, name: str, size: int = 1, wait: bool = True):
    volume = conn.block_storage.create_volume(name=name, size=size)
    return conn.block_storage.wait_for_status(volume, "available", **WAIT) if wait else volume


def _admin_call(fakecloud, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(method, fakecloud.url + "/_fakecloud" + path, timeout=10, **kwargs)


# reset --------------------------------------------------------------------------------------
def test_reset_forgets_resources_faults_and_pending_work(fakecloud, os_conn):
    _boot(os_conn, "before-reset")
    _volume(os_conn, "vol-before-reset")
    fakecloud.control.add_fault(service="compute", operation="server.create", action="http_error")
    assert fakecloud.control.inventory("demo")["servers"]

    fakecloud.control.reset()

    assert list(os_conn.compute.servers()) == []
    assert list(os_conn.block_storage.volumes()) == []
    assert fakecloud.control.faults() == []
    assert fakecloud.control.health()["pending_transitions"] == 0
    _boot(os_conn, "after-reset")  # the removed fault no longer fires


# faults -------------------------------------------------------------------------------------
def test_http_500_on_volume_create_reaches_the_sdk(fakecloud, os_conn):
    rule = fakecloud.control.add_fault(service="volume", operation="volume.create", action="http_error",
                                       status=500, message="cinder backend on fire")
    with pytest.raises(openstack.exceptions.HttpException) as err:
        os_conn.block_storage.create_volume(name="doomed", size=1)
    assert err.value.status_code == 500
    assert "cinder backend on fire" in str(err.value)
    assert list(os_conn.block_storage.volumes()) == []  # the request never reached the backend

    listed = {f["id"]: f for f in fakecloud.control.faults()}
    assert listed[rule["id"]]["fired"] == 1  # no count: the rule stays armed

    response = _admin_call(fakecloud, "DELETE", f"/faults/{rule['id']}")
    assert response.status_code == 204
    assert _admin_call(fakecloud, "DELETE", f"/faults/{rule['id']}").status_code == 404
    assert fakecloud.control.faults() == []
    assert _volume(os_conn, "works-again").status == "available"


def test_quota_fault_on_server_create_is_nova_403(fakecloud, os_conn):
    fakecloud.control.add_fault(service="compute", operation="server.create", action="quota")
    with pytest.raises(openstack.exceptions.ForbiddenException) as err:
        _boot(os_conn, "over-quota", wait=False)
    assert err.value.status_code == 403
    assert "Quota exceeded" in str(err.value)
    assert list(os_conn.compute.servers()) == []


def test_quota_fault_status_follows_the_service(fakecloud, os_conn):
    """Cinder refuses over-quota with 413, Neutron with 409: the injected quota fault does the same."""
    fakecloud.control.add_fault(service="volume", operation="volume.create", action="quota")
    fakecloud.control.add_fault(service="network", operation="security_group.create", action="quota")
    with pytest.raises(openstack.exceptions.HttpException) as cinder:
        os_conn.block_storage.create_volume(name="big", size=1)
    assert cinder.value.status_code == 413
    with pytest.raises(openstack.exceptions.ConflictException) as neutron:
        os_conn.network.create_security_group(name="sg")
    assert neutron.value.status_code == 409


def test_count_one_fault_fires_exactly_once(fakecloud, os_conn):
    rule = fakecloud.control.add_fault(service="volume", operation="volume.create", action="http_error",
                                       status=503, count=1)
    with pytest.raises(openstack.exceptions.HttpException) as err:
        os_conn.block_storage.create_volume(name="first", size=1)
    assert err.value.status_code == 503
    assert rule["id"] not in {f["id"] for f in fakecloud.control.faults()}  # spent, so removed
    assert _volume(os_conn, "second").status == "available"
    assert _volume(os_conn, "third").status == "available"


def test_count_is_only_spent_by_matching_requests(fakecloud, os_conn):
    fakecloud.control.add_fault(service="volume", operation="volume.create", action="http_error", count=2)
    list(os_conn.block_storage.volumes())  # volume.list does not match: nothing is spent
    _boot(os_conn, "unaffected")  # another service entirely
    (rule,) = fakecloud.control.faults()
    assert (rule["count"], rule["fired"]) == (2, 0)
    for _ in range(2):
        with pytest.raises(openstack.exceptions.HttpException):
            os_conn.block_storage.create_volume(name="x", size=1)
    assert fakecloud.control.faults() == []


def test_probability_zero_never_fires_and_keeps_its_count(fakecloud, os_conn):
    fakecloud.control.add_fault(service="compute", operation="server.create", action="http_error",
                                probability=0.0, count=1)
    for i in range(3):
        assert _boot(os_conn, f"lucky-{i}").status == "ACTIVE"
    (rule,) = fakecloud.control.faults()
    assert (rule["count"], rule["fired"]) == (1, 0)


def test_probability_one_always_fires(fakecloud, os_conn):
    fakecloud.control.add_fault(service="compute", operation="server.list", action="http_error",
                                status=502, probability=1.0)
    for _ in range(3):
        with pytest.raises(openstack.exceptions.HttpException) as err:
            list(os_conn.compute.servers())
        assert err.value.status_code == 502
    (rule,) = fakecloud.control.faults()
    assert rule["fired"] == 3


def test_fault_scoped_to_one_project(fakecloud, os_conn, os_admin):
    demo_id = fakecloud.cloud.identity.find_project("demo").id
    fakecloud.control.add_fault(service="compute", operation="server.list", action="http_error",
                                project_id=demo_id)
    assert list(os_admin.compute.servers()) == []  # admin's requests pass
    with pytest.raises(openstack.exceptions.HttpException):
        list(os_conn.compute.servers())


def test_invalid_fault_rules_are_refused(fakecloud):
    for rule in ({"action": "explode"}, {"action": "http_error", "probability": 1.5},
                 {"action": "http_error", "count": 0}, {"action": "http_error", "colour": "red"},
                 {"action": "disconnect", "when": "during"}, {"action": "quota", "when": "after"},
                 {"action": "stuck", "when": "after"}):
        response = _admin_call(fakecloud, "POST", "/faults", json=rule)
        assert response.status_code == 400, rule
    assert fakecloud.control.faults() == []


def test_clearing_all_faults(fakecloud, os_conn):
    fakecloud.control.add_fault(service="compute", action="http_error")
    fakecloud.control.add_fault(service="volume", action="http_error")
    fakecloud.control.clear_faults()
    assert fakecloud.control.faults() == []
    assert list(os_conn.compute.servers()) == []


def test_a_wildcard_rule_never_touches_the_admin_api(fakecloud, os_conn):
    """`*` means every OpenStack service; the admin API stays reachable, so the rule can always be removed."""
    fakecloud.control.add_fault(action="disconnect")
    with pytest.raises(keystoneauth1.exceptions.ConnectFailure):
        list(os_conn.compute.servers())
    assert fakecloud.control.health()["status"] == "ok"
    fakecloud.control.clear_faults()
    assert list(os_conn.compute.servers()) == []


def test_latency_fault_delays_the_answer(fakecloud, os_conn):
    list(os_conn.compute.flavors())  # authenticate and discover first
    fakecloud.control.add_fault(service="compute", operation="flavor.list", action="latency", latency_ms=300,
                                count=1)
    started = time.monotonic()
    flavors = list(os_conn.compute.flavors())
    elapsed = time.monotonic() - started
    assert {f.name for f in flavors} >= {"m1.tiny", "m1.small"}  # the answer itself is normal
    assert elapsed >= 0.3  # a lower bound only: the server slept at least that long
    assert fakecloud.control.faults() == []


def test_latency_combines_with_an_error_on_the_same_request(fakecloud, os_conn):
    """A degraded cloud is slow and failing at once: latency rules are drawn apart from failing ones."""
    list(os_conn.compute.flavors())
    fakecloud.control.add_fault(service="compute", action="latency", latency_ms=300)  # listed first, always fires
    fakecloud.control.add_fault(service="compute", operation="flavor.list", action="http_error", status=503,
                                count=1)
    started = time.monotonic()
    with pytest.raises(openstack.exceptions.HttpException) as err:
        list(os_conn.compute.flavors())
    assert err.value.status_code == 503
    assert time.monotonic() - started >= 0.3
    (latency,) = fakecloud.control.faults()  # the error rule is spent; the latency rule stays
    assert (latency["action"], latency["fired"]) == ("latency", 1)


def test_disconnect_resets_the_connection_without_an_answer(fakecloud, os_conn):
    """What a load balancer does: no status line, a TCP reset; keystoneauth raises ConnectFailure, unwrapped."""
    list(os_conn.block_storage.volumes())  # authenticate and discover first, so only the create meets the fault
    mark = fakecloud.control.requests(log=False)["seq"]
    fakecloud.control.add_fault(service="volume", operation="volume.create", action="disconnect", count=1)
    with pytest.raises(keystoneauth1.exceptions.ConnectionError) as err:
        os_conn.block_storage.create_volume(name="dropped", size=1)
    assert type(err.value) is keystoneauth1.exceptions.ConnectFailure  # what openstacksdk lets through
    # urllib3's words: a reset read, or (when the reset met the body upload first) end of stream without a response
    assert "Connection aborted." in str(err.value)
    assert list(os_conn.block_storage.volumes()) == []  # dropped before the handler: nothing was made
    (record, *_) = fakecloud.control.requests(since=mark)["requests"]
    assert (record["method"], record["status"]) == ("POST", 0)  # logged as "no answer"
    assert fakecloud.control.faults() == []  # count spent: the next call goes through
    assert _volume(os_conn, "after-the-drop").status == "available"


def test_disconnect_after_the_handler_leaves_the_change_made(fakecloud, os_conn):
    """`when: after`: the cloud did the work, the client never heard; a client must look before it retries."""
    list(os_conn.compute.servers())
    fakecloud.control.add_fault(service="compute", operation="server.create", action="disconnect", when="after",
                                count=1)
    with pytest.raises(keystoneauth1.exceptions.ConnectFailure):
        _boot(os_conn, "made-anyway", wait=False)
    (server,) = os_conn.compute.servers()
    assert server.name == "made-anyway"


def test_http_error_after_the_handler_leaves_the_change_made(fakecloud, os_conn):
    list(os_conn.block_storage.volumes())
    fakecloud.control.add_fault(service="volume", operation="volume.create", action="http_error", status=500,
                                when="after", count=1)
    with pytest.raises(openstack.exceptions.HttpException) as err:
        os_conn.block_storage.create_volume(name="made-anyway", size=1)
    assert err.value.status_code == 500
    assert [v.name for v in os_conn.block_storage.volumes()] == ["made-anyway"]


def test_disconnect_on_a_volume_action_suboperation(fakecloud, os_conn):
    """Cinder's action URL takes its sub-operation's faults inside the handler; a reset works there too."""
    volume = _volume(os_conn, "grow-me")
    fakecloud.control.add_fault(service="volume", operation="volume.extend", action="disconnect", count=1)
    with pytest.raises(keystoneauth1.exceptions.ConnectFailure):
        os_conn.block_storage.extend_volume(volume, 2)
    assert os_conn.block_storage.get_volume(volume.id).size == 1
    os_conn.block_storage.extend_volume(volume, 2)  # the zero-delay profile extends at once
    assert os_conn.block_storage.get_volume(volume.id).size == 2


def test_disconnect_leaves_the_server_serving_other_connections(fakecloud):
    """A raw client sees the reset as requests' ConnectionError; the next connection is answered normally."""
    fakecloud.control.add_fault(service="identity", operation="*", action="disconnect", count=1)
    with requests.Session() as http:
        with pytest.raises(requests.ConnectionError):
            http.get(fakecloud.url + "/v3", timeout=10)
        assert http.get(fakecloud.url + "/v3", timeout=10).status_code == 200


def test_error_status_fault_sends_the_server_to_error(fakecloud, os_conn):
    fakecloud.control.add_fault(service="compute", operation="server.create", action="error_status",
                                message="No valid host was found (injected).")
    server = _boot(os_conn, "unlucky", wait=False)
    with pytest.raises(openstack.exceptions.ResourceFailure):
        os_conn.compute.wait_for_server(server, **WAIT)
    shown = os_conn.compute.get_server(server.id)
    assert shown.status == "ERROR"
    assert shown.fault["code"] == 500
    assert "No valid host was found (injected)." in shown.fault["message"]


def test_error_status_fault_on_volume_create(fakecloud, os_conn):
    fakecloud.control.add_fault(service="volume", operation="volume.create", action="error_status")
    volume = os_conn.block_storage.create_volume(name="bad-disk", size=1)
    with pytest.raises(openstack.exceptions.ResourceFailure):
        os_conn.block_storage.wait_for_status(volume, "available", failures=["error"], **WAIT)
    assert os_conn.block_storage.get_volume(volume.id).status == "error"


def test_stuck_resize_stays_in_resize_even_after_advancing_the_clock(fakecloud, os_conn):
    server = _boot(os_conn, "stuck")
    fakecloud.control.add_fault(service="compute", operation="server.resize", action="stuck")
    os_conn.compute.resize_server(server, "2")
    assert os_conn.compute.get_server(server.id).status == "RESIZE"
    fakecloud.control.advance(3600)
    shown = os_conn.compute.get_server(server.id)
    assert shown.status == "RESIZE"
    assert shown.flavor["original_name"] == "m1.tiny"  # never moved to the new flavor


# clock --------------------------------------------------------------------------------------
def test_frozen_clock_holds_transitions_until_advanced(fakecloud, os_conn):
    fakecloud.control.set_delays(profile="realistic")
    frozen = fakecloud.control.freeze()
    assert frozen["frozen"] is True
    server = _boot(os_conn, "slow-boot", wait=False)
    volume = _volume(os_conn, "slow-disk", wait=False)
    assert os_conn.compute.get_server(server.id).status == "BUILD"
    assert os_conn.block_storage.get_volume(volume.id).status == "creating"

    partial = fakecloud.control.advance(2.5)  # volume_create is 2 s, server_boot 3 s
    assert partial["transitions_run"] == 1
    assert partial["offset"] >= 2.5
    assert os_conn.block_storage.get_volume(volume.id).status == "available"
    assert os_conn.compute.get_server(server.id).status == "BUILD"

    rest = fakecloud.control.advance(1)
    assert rest["transitions_run"] == 1
    assert os_conn.compute.get_server(server.id).status == "ACTIVE"
    assert fakecloud.control.freeze(False)["frozen"] is False
    assert fakecloud.control.clock()["frozen"] is False


def test_clock_refuses_to_go_backwards(fakecloud):
    assert _admin_call(fakecloud, "POST", "/clock", json={"advance": -5}).status_code == 400
    assert _admin_call(fakecloud, "POST", "/clock", json={"advance": "soon"}).status_code == 400


# delays -------------------------------------------------------------------------------------
def test_delay_profile_change(fakecloud, os_conn):
    realistic = fakecloud.control.set_delays(profile="realistic")
    assert realistic["server_boot"] == 3.0 and realistic["volume_create"] == 2.0
    merged = fakecloud.control.set_delays(volume_create=7.0)
    assert merged["volume_create"] == 7.0 and merged["server_boot"] == 3.0
    assert _admin_call(fakecloud, "GET", "/delays").json()["delays"] == merged
    assert _admin_call(fakecloud, "PUT", "/delays", json={"profile": "glacial"}).status_code == 400

    fakecloud.control.freeze()
    volume = _volume(os_conn, "seven-seconds", wait=False)
    fakecloud.control.advance(6.5)
    assert os_conn.block_storage.get_volume(volume.id).status == "creating"
    fakecloud.control.advance(1)
    assert os_conn.block_storage.get_volume(volume.id).status == "available"

    zero = fakecloud.control.set_delays(profile="zero")
    assert set(zero.values()) == {0.0}


# microversions ------------------------------------------------------------------------------
def test_microversion_caps_change_what_is_advertised_and_accepted(fakecloud, os_conn):
    caps = fakecloud.control.set_microversions(compute="2.60", volume="3.27")
    assert caps == {"compute": "2.60", "volume": "3.27"}
    compute = requests.get(fakecloud.url + "/compute/v2.1", timeout=10).json()["version"]
    assert compute["version"] == "2.60"
    volume = requests.get(fakecloud.url + "/volume/v3/", timeout=10).json()["versions"]
    assert [v["version"] for v in volume if v["id"] == "v3.0"] == ["3.27"]

    token = os_conn.session.get_token()
    url = fakecloud.url + "/volume/v3/volumes"
    above = requests.get(url, headers={"X-Auth-Token": token, "OpenStack-API-Version": "volume 3.42"}, timeout=10)
    assert above.status_code == 406
    at_cap = requests.get(url, headers={"X-Auth-Token": token, "OpenStack-API-Version": "volume latest"},
                          timeout=10)
    assert at_cap.status_code == 200
    assert at_cap.headers["OpenStack-API-Version"] == "volume 3.27"

    conn = fakecloud.connect()  # a fresh connection negotiates against the new caps
    try:
        server = _boot(conn, "capped")
        assert server.status == "ACTIVE"
        shown = requests.get(fakecloud.url + f"/compute/v2.1/servers/{server.id}", timeout=10,
                             headers={"X-Auth-Token": token, "OpenStack-API-Version": "compute latest"})
        assert shown.headers["OpenStack-API-Version"] == "compute 2.60"
    finally:
        conn.close()
    assert _admin_call(fakecloud, "PUT", "/microversions", json={"volume": "three"}).status_code == 400


def test_lowered_volume_cap_refuses_extending_an_attached_volume(fakecloud, os_conn):
    """Cinder extends in-use volumes only from 3.42: with the cap at 3.27 the SDK gets the 400."""
    fakecloud.control.set_microversions(volume="3.27")
    conn = fakecloud.connect()
    try:
        server = conn.compute.create_server(name="db", image_id=_image_id(conn), flavor_id="1", networks="none")
        conn.compute.wait_for_server(server, **WAIT)
        volume = _volume(conn, "data")
        conn.compute.create_volume_attachment(server, volume=volume)
        conn.block_storage.wait_for_status(volume, "in-use", **WAIT)
        with pytest.raises(openstack.exceptions.BadRequestException):
            conn.block_storage.extend_volume(volume, 2)
        assert conn.block_storage.get_volume(volume.id).size == 1
    finally:
        conn.close()


# request accounting -------------------------------------------------------------------------
def _count(summary: dict, service: str, method: str, route: str) -> int:
    return sum(c["count"] for c in summary["counts"]
               if (c["service"], c["method"], c["route"]) == (service, method, route))


def test_request_accounting_by_service_method_and_route(fakecloud, os_conn):
    list(os_conn.compute.servers())
    fakecloud.control.reset_requests()
    list(os_conn.compute.servers())
    list(os_conn.compute.servers())
    _volume(os_conn, "counted")

    summary = fakecloud.control.requests()
    assert _count(summary, "compute", "GET", "/compute/v2.1/servers/detail") == 2
    assert _count(summary, "volume", "POST", "/volume/v3/{project_id}/volumes") == 1
    assert _count(summary, "volume", "GET", "/volume/v3/{project_id}/volumes/{id}") >= 1
    assert summary["by_service"]["compute"] == 2
    assert all(r["service"] != "admin" for r in summary["requests"])  # the admin API is not counted
    posts = [r for r in summary["requests"] if r["method"] == "POST" and r["service"] == "volume"]
    assert len(posts) == 1 and posts[0]["status"] == 202
    assert "openstacksdk" in posts[0]["user_agent"]


def test_request_log_since(fakecloud, os_conn):
    list(os_conn.compute.servers())
    mark = fakecloud.control.requests(log=False)["seq"]
    assert "requests" not in fakecloud.control.requests(log=False)
    os_conn.network.create_security_group(name="after-mark")

    later = fakecloud.control.requests(since=mark)
    assert later["total"] == 1
    (record,) = later["requests"]
    assert (record["service"], record["method"], record["path"]) == ("network", "POST",
                                                                     "/network/v2.0/security-groups")
    assert record["status"] == 201 and record["seq"] > mark
    assert later["counts"] == [{"service": "network", "method": "POST",
                                "route": "/network/v2.0/security-groups", "count": 1}]
    assert fakecloud.control.requests(since=later["seq"])["total"] == 0


def test_failed_requests_are_logged_with_their_status(fakecloud, os_conn):
    list(os_conn.compute.servers())
    mark = fakecloud.control.requests(log=False)["seq"]
    fakecloud.control.add_fault(service="compute", operation="server.list", action="http_error", status=500,
                                count=1)
    with pytest.raises(openstack.exceptions.HttpException):
        list(os_conn.compute.servers())
    (record,) = fakecloud.control.requests(since=mark)["requests"]
    assert record["status"] == 500


# inventory ----------------------------------------------------------------------------------
def test_inventory_per_project(fakecloud, os_conn, os_admin):
    server = _boot(os_conn, "demo-server")
    demo_volume = _volume(os_conn, "demo-volume")
    admin_volume = _volume(os_admin, "admin-volume")

    demo = fakecloud.control.inventory("demo")
    assert [s["id"] for s in demo["servers"]] == [server.id]
    assert demo["servers"][0]["status"] == "ACTIVE"
    assert [v["id"] for v in demo["volumes"]] == [demo_volume.id]

    admin = fakecloud.control.inventory("admin")
    assert [v["id"] for v in admin["volumes"]] == [admin_volume.id]
    assert admin["servers"] == []

    everything = fakecloud.control.inventory()
    assert {v["id"] for v in everything["volumes"]} == {demo_volume.id, admin_volume.id}
    assert {s["id"] for s in everything["servers"]} == {server.id}

    by_id = _admin_call(fakecloud, "GET", "/inventory",
                        params={"project": fakecloud.cloud.identity.find_project("demo").id})
    assert [s["id"] for s in by_id.json()["resources"]["servers"]] == [server.id]
