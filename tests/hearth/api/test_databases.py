"""Instances that are databases, end to end on both engines: a create with a nic, a public address, databases
and users; a real PostgreSQL client connecting at the listed address as that user; access that really
filters; data that survives resizes, restart and rebuild; root and configuration groups changing the real
server. Everything through the REST API, openstacksdk over HTTP to fakecloud, and psycopg to the guest.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from hearth.config import Datastore, DatastoreVersion, Settings

GUEST_DATASTORES = [Datastore(name="postgresql", default_version="16", versions=[
    DatastoreVersion(name="16", image="postgresql-16-guest", port=5432),
    DatastoreVersion(name="16.2", image="postgresql-16-guest", port=5432),
    DatastoreVersion(name="17", image="postgresql-16-guest", port=5432)])]
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
USER, PASSWORD, DATABASE = "app", "PassW0rd-app", "orders"
# Hearth's own records in the real PostgreSQL only: each test boots real databases, once per engine is enough.
pytestmark = pytest.mark.parametrize("db_url", [pytest.param("postgresql", marks=pytest.mark.postgres)],
                                     indirect=True)


def _loopback(address: str) -> str:
    """Tests dial loopback addresses only: anything else fails before a connection is attempted."""
    if ipaddress.ip_address(address) not in LOOPBACK:
        raise AssertionError(f"refusing to dial {address}: tests only connect to loopback addresses")
    return address


@pytest.fixture(params=["natives", "orchestrator"])
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def hearth_settings(tmp_path: Path, fakecloud: Any, db_url: str, engine: str) -> Settings:
    clouds_yaml = fakecloud.write_clouds_yaml(tmp_path / "clouds.yaml")
    return Settings(home=tmp_path, db_url=db_url, cloud="fakecloud", clouds_yaml=clouds_yaml, workers=4,
                    engine=engine, datastores=GUEST_DATASTORES, heartbeat_seconds=0.5, stale_after_seconds=30.0,
                    token_cache_seconds=60.0, retry_initial_seconds=0.05, retry_max_seconds=0.5,
                    health_check_seconds=0)


def _network_id(os_conn: Any) -> str:
    """The project's private network, routed to the public one (as DevStack's router1 does), so its ports can
    have floating IPs."""
    network = next(n for n in os_conn.network.networks(name="private") if n.project_id == os_conn.current_project_id)
    subnets = list(os_conn.network.subnets(network_id=network.id))
    routed = {p.fixed_ips[0]["subnet_id"] for p in os_conn.network.ports(device_owner="network:router_interface")
              if p.fixed_ips}
    if not routed & {s.id for s in subnets}:
        public = os_conn.network.find_network("public", ignore_missing=False)
        router = os_conn.network.create_router(name="router1", external_gateway_info={"network_id": public.id})
        os_conn.network.add_interface_to_router(router, subnet=subnets[0].id)
    return network.id


def _connect(address: str, user: str = USER, password: str = PASSWORD, dbname: str = DATABASE) -> psycopg.Connection:
    return psycopg.connect(host=_loopback(address), port=5432, user=user, password=password, dbname=dbname,
                           connect_timeout=5, autocommit=True)


def _refused_from(source: str, address: str) -> bool:
    """Whether a client at `source` is refused at `address`:5432 (the group's filter resets the connection)."""
    with socket.socket() as sock:
        sock.bind((_loopback(source), 0))
        sock.settimeout(5)
        try:
            sock.connect((_loopback(address), 5432))
            sock.sendall(b"\x00\x00\x00\x08\x04\xd2\x16\x2f")  # SSLRequest: a reachable server answers N or S
            return sock.recv(1) == b""
        except (ConnectionRefusedError, ConnectionResetError):
            return True


def _address(instance: dict[str, Any], kind: str) -> str:
    return next(a["address"] for a in instance["addresses"] if a["type"] == kind)


def test_a_public_instance_with_databases_and_users(hearth_api, os_conn, engine):
    api = hearth_api.client()
    network_id = _network_id(os_conn)
    inst = hearth_api.create(api, "shop", nics=[{"net-id": network_id}], access={"is_public": True},
                             databases=[{"name": DATABASE}],
                             users=[{"name": USER, "password": PASSWORD, "databases": [{"name": DATABASE}]}])
    assert (inst["status"], inst["operating_status"]) == ("ACTIVE", "HEALTHY"), inst.get("fault")
    assert inst["engine"] == engine
    assert inst["access"]["is_public"] is True
    assert 0 < inst["volume"]["used"] < 1  # GB, as the database reported it: a new cluster's few MB
    assert {a["type"] for a in inst["addresses"]} == {"private", "public"}
    assert sorted(inst["ip"]) == sorted(a["address"] for a in inst["addresses"])
    private, public = _address(inst, "private"), _address(inst, "public")
    assert ipaddress.ip_address(public) in ipaddress.ip_network("127.254.0.0/16")

    # the cloud: the port is on the nic's network, with the floating IP on it
    port = next(os_conn.network.ports(name=f"hearth-{inst['id']}-port"))
    assert port.network_id == network_id and [f["ip_address"] for f in port.fixed_ips] == [private]
    ip = next(os_conn.network.ips(floating_ip_address=public))
    assert ip.port_id == port.id

    # a real client, as the user, at both addresses: write, then read back
    with _connect(public) as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, name text)")
        conn.execute("INSERT INTO items VALUES (1, 'kettle')")
    with _connect(private) as conn:
        assert conn.execute("SELECT name FROM items").fetchall() == [("kettle",)]
    listed = api.get(f"/instances/{inst['id']}/databases").json()["databases"]
    assert DATABASE in [d["name"] for d in listed]
    users = api.get(f"/instances/{inst['id']}/users").json()["users"]
    assert [u["databases"] for u in users if u["name"] == USER] == [[{"name": DATABASE}]]

    # private: the floating IP goes, from Neutron too
    response = api.put(f"/instances/{inst['id']}", json={"instance": {"access": {"is_public": False}}})
    assert response.status_code == 202, response.text
    hearth_api.settle()
    shown = api.get(f"/instances/{inst['id']}").json()["instance"]
    assert shown["access"]["is_public"] is False
    assert [a["type"] for a in shown["addresses"]] == ["private"]
    assert list(os_conn.network.ips(floating_ip_address=public)) == []

    # delete: nothing is left in the cloud, the port and the floating IP included
    assert api.delete(f"/instances/{inst['id']}").status_code == 202
    hearth_api.settle()
    assert hearth_api.leftovers() == {}
    assert list(os_conn.network.ports(name=f"hearth-{inst['id']}-port")) == []


def test_access_filters_real_clients(hearth_api, os_conn, engine):
    api = hearth_api.client()
    inst = hearth_api.create(api, "filtered", nics=[{"net-id": _network_id(os_conn)}],
                             access={"allowed_cidrs": ["127.0.0.66/32"]}, databases=[{"name": DATABASE}],
                             users=[{"name": USER, "password": PASSWORD, "databases": [{"name": DATABASE}]}])
    assert inst["operating_status"] == "HEALTHY", inst
    assert inst["access"]["management_cidrs"] == ["127.0.0.1/32"]
    private = _address(inst, "private")
    assert not _refused_from("127.0.0.66", private)  # inside the allowed CIDR
    assert _refused_from("127.0.0.77", private)  # outside it

    response = api.put(f"/instances/{inst['id']}", json={"instance": {"access": {"allowed_cidrs": ["127.0.0.77/32"]}}})
    assert response.status_code == 202, response.text
    hearth_api.settle()
    assert _refused_from("127.0.0.66", private)
    assert not _refused_from("127.0.0.77", private)
    assert api.get(f"/instances/{inst['id']}").json()["instance"]["access"]["allowed_cidrs"] == ["127.0.0.77/32"]


def _settled(hearth_api: Any, api: Any, iid: str) -> dict[str, Any]:
    hearth_api.settle()
    shown = api.get(f"/instances/{iid}").json()["instance"]
    assert (shown["status"], shown["operating_status"]) == ("ACTIVE", "HEALTHY"), shown.get("fault")
    return shown


def test_the_data_survives_resizes_restart_rebuild_and_upgrade(hearth_api, os_conn, engine):
    api = hearth_api.client()
    inst = hearth_api.create(api, "durable", nics=[{"net-id": _network_id(os_conn)}], databases=[{"name": DATABASE}],
                             users=[{"name": USER, "password": PASSWORD, "databases": [{"name": DATABASE}]}])
    iid, private = inst["id"], _address(inst, "private")
    with _connect(private) as conn:
        conn.execute("CREATE TABLE ledger (n int)")
        conn.execute("INSERT INTO ledger VALUES (1)")
    server_id = hearth_api.cloud_resource("servers", iid)["id"]

    def survived(step: str) -> None:
        with _connect(private) as conn:
            assert conn.execute("SELECT n FROM ledger").fetchall() == [(1,)], step

    assert api.post(f"/instances/{iid}/action", json={"resize": {"flavorRef": "2"}}).status_code == 202
    assert _settled(hearth_api, api, iid)["flavor"]["id"] == "2"
    assert hearth_api.cloud_resource("servers", iid)["flavor"]["original_name"] == "m1.small"
    survived("flavor resize")

    assert api.post(f"/instances/{iid}/action", json={"resize": {"volume": {"size": 2}}}).status_code == 202
    assert _settled(hearth_api, api, iid)["volume"]["size"] == 2
    assert hearth_api.cloud_resource("volumes", iid)["size"] == 2
    survived("volume resize")

    response = api.post(f"/instances/{iid}/action", json={"restart": {}})
    assert response.status_code == 202, response.text
    assert api.get(f"/instances/{iid}").json()["instance"]["status"] in ("REBOOT", "ACTIVE")
    _settled(hearth_api, api, iid)
    survived("restart")

    image = next(os_conn.image.images(name="postgresql-16-guest"))
    response = api.post(f"/instances/{iid}/action", json={"rebuild": {"image_id": image.id}})
    assert response.status_code == 202, response.text
    _settled(hearth_api, api, iid)
    server = hearth_api.cloud_resource("servers", iid)
    assert server["id"] == server_id and server["image"]["id"] == image.id  # rebuilt in place
    survived("rebuild")

    # an upgrade within the major release keeps the data; another major release is refused, changing nothing
    response = api.request("PATCH", f"/instances/{iid}", json={"instance": {"datastore_version": "16.2"}})
    assert response.status_code == 202, response.text
    upgraded = _settled(hearth_api, api, iid)
    assert upgraded["datastore"]["version"] == "16.2"
    survived("upgrade")
    response = api.request("PATCH", f"/instances/{iid}", json={"instance": {"datastore_version": "17"}})
    assert response.status_code == 400 and "same major release" in response.json()["badRequest"]["message"]
    assert api.get(f"/instances/{iid}").json()["instance"]["datastore"]["version"] == "16.2"


def test_bad_input_changes_nothing(hearth_api, os_conn, engine):
    api = hearth_api.client()
    network_id = _network_id(os_conn)
    before = hearth_api.cloud_ids()

    def refused(fields: dict[str, Any], words: str) -> None:
        body = {"name": "bad", "flavorRef": "1", "volume": {"size": 1}, "nics": [{"net-id": network_id}], **fields}
        response = api.post("/instances", json={"instance": body})
        assert response.status_code == 400, response.text
        assert words in response.json()["badRequest"]["message"], response.json()

    refused({"users": [{"name": USER, "password": PASSWORD, "databases": [{"name": "nowhere"}]}]},
            "does not create")
    refused({"databases": [{"name": "postgres"}]}, "reserved")
    refused({"users": [{"name": "root", "password": PASSWORD}]}, "reserved")
    refused({"users": [{"name": USER, "password": "short"}]}, "password")
    refused({"users": [{"name": USER, "password": ""}]}, "password")
    refused({"replica_of": "abc"}, "replica_of")
    refused({"nics": [{"net-id": network_id, "ip_address": "10.9.9.9"}]}, "in no subnet")
    # a network of another project (made by the admin, as an operator would)
    other = hearth_api.client("other")
    admin = hearth_api.cloud.connect("admin")
    other_network = admin.network.create_network(name="elsewhere",
                                                 project_id=hearth_api.credentials("other").project_id).id
    before = hearth_api.cloud_ids()
    # Hearth's cloud account here is a project member: it cannot even see the network (an admin account sees
    # it and is told it belongs to another project); either way a 400 naming the nic's network
    refused({"nics": [{"net-id": other_network}]}, f"nics: network {other_network}")
    assert other.get("/instances").json()["instances"] == []
    assert api.get("/instances").json()["instances"] == []
    assert hearth_api.cloud_ids() == before


def test_root_and_a_configuration_group_change_the_real_server(hearth_api, os_conn, engine):
    api = hearth_api.client()
    inst = hearth_api.create(api, "tuned", nics=[{"net-id": _network_id(os_conn)}])
    iid, private = inst["id"], _address(inst, "private")

    # root: enabled once (the password shown once), a real superuser login; disabled, the login is refused
    assert api.get(f"/instances/{iid}/root").json() == {"rootEnabled": False}
    response = api.post(f"/instances/{iid}/root")
    assert response.status_code == 200, response.text
    root = response.json()["user"]
    assert root["name"] == "root" and root["password"]
    with _connect(private, "root", root["password"], "postgres") as conn:
        assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (True,)
    assert api.get(f"/instances/{iid}/root").json() == {"rootEnabled": True}
    assert api.delete(f"/instances/{iid}/root").status_code == 204
    assert api.get(f"/instances/{iid}/root").json() == {"rootEnabled": False}
    with pytest.raises(psycopg.OperationalError):
        _connect(private, "root", root["password"], "postgres")
    events = " ".join(e["message"] for e in api.get(f"/instances/{iid}/events").json()["events"])
    assert root["password"] not in events

    # a configuration group: work_mem applies at once; max_connections needs a restart, and the API says so
    body = {"configuration": {"name": "tuning", "values": {"work_mem": 8192, "max_connections": 77},
                              "datastore": {"type": "postgresql", "version": "16"}}}
    response = api.post("/configurations", json=body)
    assert response.status_code == 200, response.text
    group = response.json()["configuration"]
    response = api.put(f"/instances/{iid}", json={"instance": {"configuration": group["id"]}})
    assert response.status_code == 202, response.text
    shown = api.get(f"/instances/{iid}").json()["instance"]
    assert shown["operating_status"] == "RESTART_REQUIRED" and shown["configuration"]["id"] == group["id"]
    superuser = api.post(f"/instances/{iid}/root").json()["user"]
    with _connect(private, "root", superuser["password"], "postgres") as conn:
        assert conn.execute("SHOW work_mem").fetchone() == ("8MB",)
        assert conn.execute("SHOW max_connections").fetchone() != ("77",)
    assert api.post(f"/instances/{iid}/action", json={"restart": {}}).status_code == 202
    _settled(hearth_api, api, iid)
    with _connect(private, "root", superuser["password"], "postgres") as conn:
        assert conn.execute("SHOW max_connections").fetchone() == ("77",)
    listed = api.get(f"/configurations/{group['id']}/instances").json()["instances"]
    assert [i["id"] for i in listed] == [iid]

    # a value outside the parameter's range is refused and changes nothing
    response = api.request("PATCH", f"/configurations/{group['id']}",
                           json={"configuration": {"values": {"max_connections": 0}}})
    assert response.status_code == 400 and "max_connections" in response.json()["badRequest"]["message"]
    with _connect(private, "root", superuser["password"], "postgres") as conn:
        assert conn.execute("SHOW max_connections").fetchone() == ("77",)


def test_the_health_check_follows_the_database(hearth_api, os_conn, engine):
    from hearth.taskmanager.database import check_once

    api = hearth_api.client()
    inst = hearth_api.create(api, "watched", nics=[{"net-id": _network_id(os_conn)}])
    iid = inst["id"]
    server = os_conn.compute.get_server(hearth_api.cloud_resource("servers", iid)["id"])
    assert check_once(hearth_api.runtime) == 0  # HEALTHY already: nothing to record

    os_conn.compute.stop_server(server)
    os_conn.compute.wait_for_server(server, status="SHUTOFF", interval=0.05, wait=30)
    assert check_once(hearth_api.runtime) == 1
    assert api.get(f"/instances/{iid}").json()["instance"]["operating_status"] == "SHUTDOWN"

    os_conn.compute.start_server(server)
    os_conn.compute.wait_for_server(server, status="ACTIVE", interval=0.05, wait=30)
    deadline = time.monotonic() + 30
    while check_once(hearth_api.runtime) == 0 and time.monotonic() < deadline:
        time.sleep(0.2)  # the guest accepts connections a moment after the server is ACTIVE
    assert api.get(f"/instances/{iid}").json()["instance"]["operating_status"] == "HEALTHY"
    messages = [e["message"] for e in api.get(f"/instances/{iid}/events").json()["events"]]
    assert any(m.startswith("database is SHUTDOWN (was HEALTHY)") for m in messages)
    assert "database is HEALTHY (was SHUTDOWN)" in messages


def test_a_cidr_change_never_leaves_a_gap(hearth_api, os_conn, engine):
    """A client inside the old CIDR and one inside the new one probe in a tight loop during the change: the
    new one gets in before the old one is refused, and at no instant are both refused (make before break, on
    every engine: the stack engines update the stack twice)."""
    import threading

    api = hearth_api.client()
    inst = hearth_api.create(api, "no-gap", nics=[{"net-id": _network_id(os_conn)}],
                             access={"allowed_cidrs": ["127.0.0.66/32"]})
    private = _address(inst, "private")
    timeline: list[tuple[bool, bool]] = []  # (old client in, new client in), probe after probe
    done = threading.Event()

    def probe() -> None:
        while not done.is_set():
            timeline.append((not _refused_from("127.0.0.66", private), not _refused_from("127.0.0.77", private)))

    seq = hearth_api.cloud.control.requests(log=False)["seq"]
    prober = threading.Thread(target=probe)
    prober.start()
    try:
        response = api.put(f"/instances/{inst['id']}", json={"instance": {"access": {
            "allowed_cidrs": ["127.0.0.77/32"]}}})
        assert response.status_code == 202, response.text
        hearth_api.settle()
        time.sleep(0.2)
    finally:
        done.set()
        prober.join(30)
    assert timeline[0] == (True, False) and timeline[-1] == (False, True), (timeline[0], timeline[-1])
    assert (False, False) not in timeline  # never both refused
    first_new_in = next(i for i, (_, new) in enumerate(timeline) if new)
    first_old_out = next(i for i, (old, _) in enumerate(timeline) if not old)
    assert first_new_in <= first_old_out, timeline[first_new_in - 2:first_old_out + 2]
    if engine == "orchestrator":  # Heat drops a group's old rules before it adds new ones: two stack updates
        updates = [r for r in hearth_api.cloud.control.requests(since=seq)["requests"]
                   if r["service"] == "orchestration" and r["method"] in ("PUT", "PATCH")]
        assert len(updates) == 2, updates


@pytest.mark.parametrize("engine", ["natives"])
def test_clients_stay_connected_through_a_fleet_migration(hearth_api, restart, os_conn, engine):
    """Databases built by natives, moved onto Heat stacks by a fleet migration and back while clients use them:
    a session opened before keeps working, and new connections in a tight loop are never refused (adopt and
    release hand the resources to Heat and back without touching them)."""
    import threading

    api = hearth_api.client()
    network_id = _network_id(os_conn)
    made = [hearth_api.create(api, f"serving-{i}", settle=False, nics=[{"net-id": network_id}],
                              databases=[{"name": DATABASE}],
                              users=[{"name": USER, "password": PASSWORD, "databases": [{"name": DATABASE}]}])
            for i in range(2)]
    hearth_api.settle(300)
    addresses = [_address(api.get(f"/instances/{m['id']}").json()["instance"], "private") for m in made]
    sessions = [_connect(address) for address in addresses]
    for number, conn in enumerate(sessions):
        conn.execute("CREATE TABLE moves (n int)")
        conn.execute("INSERT INTO moves VALUES (%s)", (number,))
    failures: list[str] = []
    connects = [0]
    done = threading.Event()

    def clients() -> None:
        while not done.is_set():
            for address in addresses:
                try:
                    with _connect(address) as conn:
                        conn.execute("SELECT 1")
                    connects[0] += 1
                except psycopg.Error as err:
                    failures.append(f"{address}: {err}")

    hearth = restart("migration")
    admin = hearth.client("admin")
    client = threading.Thread(target=clients)
    client.start()
    try:
        for target in ("orchestrator", "natives"):
            started = admin.post("/mgmt/migrations", json={"migration": {"to": target, "max_in_flight": 2}})
            assert started.status_code == 202, started.text
            job_id = started.json()["migration"]["id"]
            deadline = time.monotonic() + 120
            while (job := admin.get(f"/mgmt/migrations/{job_id}").json()["migration"])["state"] != "finished":
                assert time.monotonic() < deadline, job
                time.sleep(0.1)
            assert job["counts"]["moved"] == len(made), job
            engines = {i["id"]: i["engine"] for i in admin.get("/mgmt/instances").json()["instances"]}
            assert {engines[m["id"]] for m in made} == {target}
            for number, conn in enumerate(sessions):  # the sessions opened before are still there
                assert conn.execute("SELECT n FROM moves").fetchall() == [(number,)]
    finally:
        done.set()
        client.join(30)
        for conn in sessions:
            conn.close()
    assert failures == [] and connects[0] > 0, failures[:5]
