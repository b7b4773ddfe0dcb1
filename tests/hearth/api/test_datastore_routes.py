"""Databases, users, root, configuration groups, parameters, limits and the 501s of unsupported Trove routes,
through the real REST API.

These are the paths that need no guest database: every refusal that comes before Hearth connects (Trove's
400 shape, nothing changed), unknown instances (404), instances not ready (422), datastores Hearth does not
manage (400), and configuration groups, which live in Hearth's own database. Instances are rows written
straight into Hearth's database (no server in the cloud), so nothing here waits for a build.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from hearth import datastore_service, service
from hearth.db.models import Event, Instance, Task, new_id
from hearth.views import datastore_version_id


@pytest.fixture
def db_url(tmp_path) -> str:
    """SQLite only: nothing here is about the database engine (configurations are not truncated between
    PostgreSQL tests yet)."""
    return f"sqlite:///{tmp_path / 'hearth.sqlite'}"


def add_instance(hearth_api, *, datastore: str = "postgresql", version: str = "16", task: str = Task.NONE,
                 server_status: str = "ACTIVE", project: str = "demo") -> str:
    """An instance as Hearth records it once built, with no address yet (so Hearth cannot connect to it)."""
    project_id = hearth_api.credentials(project).project_id
    with hearth_api.runtime.sessions.begin() as session:
        inst = Instance(id=new_id(), project_id=project_id, name="db", engine="natives", datastore=datastore,
                        datastore_version=version, flavor_id="1", volume_size=1, port=5432, task=task,
                        server_status=server_status)
        session.add(inst)
    return inst.id


def events(hearth_api, iid: str) -> list[str]:
    with hearth_api.runtime.sessions() as session:
        return [e.message for e in session.query(Event).filter(Event.instance_id == iid)]


# --------------------------------------------------------------------------------------------------
# Databases, users, root: refusals before any connection.


@pytest.mark.parametrize(("method", "path", "body", "fragments"), [
    ("post", "/databases", {"databases": [{"name": "postgres"}]}, ["'postgres' is reserved"]),
    ("post", "/databases", {"databases": [{"name": "template1"}]}, ["reserved"]),
    ("post", "/databases", {"databases": [{"name": "pg_things"}]}, ["'pg_'"]),
    ("post", "/databases", {"databases": [{"name": "bad name;"}]}, ["Invalid database name"]),
    ("post", "/databases", {"databases": [{"name": "a"}, {"name": "a"}]}, ["named twice"]),
    ("post", "/databases", {"databases": []}, ["non-empty list"]),
    ("delete", "/databases/template0", None, ["reserved"]),
    ("post", "/users", {"users": [{"name": "app", "password": ""}]}, ["too short"]),
    ("post", "/users", {"users": [{"name": "app", "password": "short"}]}, ["too short"]),
    ("post", "/users", {"users": [{"name": "app", "password": "aaaaaaaaaa"}]}, ["single character"]),
    ("post", "/users", {"users": [{"name": "apppass1", "password": "apppass1"}]}, ["user name"]),
    ("post", "/users", {"users": [{"name": "app"}]}, ["must be a string"]),
    ("post", "/users", {"users": [{"name": "root", "password": "s3cret-pass"}]}, ["'root' is reserved"]),
    ("post", "/users", {"users": [{"name": "postgres", "password": "s3cret-pass"}]}, ["reserved"]),
    ("post", "/users", {"users": [{"name": "app", "password": "s3cret-pass", "host": "10.0.0.1"}]},
     ["not host-specific"]),
    ("post", "/users", {"users": [{"name": "app", "password": "s3cret-pass", "databases": [{"name": "postgres"}]}]},
     ["reserved"]),
    ("get", "/users/app@10.0.0.1", None, ["not host-specific"]),
    ("put", "/users/app", {"user": {"password": "x"}}, ["too short"]),
    ("put", "/users/app", {"user": {}}, ["Nothing to update"]),
    ("put", "/users/app", {"user": {"name": "postgres"}}, ["reserved"]),
    ("put", "/users", {"users": [{"name": "app", "password": "short"}]}, ["too short"]),
    ("put", "/users/app/databases", {"databases": [{"name": "template1"}]}, ["reserved"]),
    ("delete", "/users/app/databases/postgres", None, ["reserved"]),
    ("delete", "/users/postgres", None, ["reserved"]),
    ("post", "/root", {"password": "short"}, ["too short"]),
])
def test_invalid_names_and_passwords_are_400_before_connecting(hearth_api, fault_of, method, path, body, fragments):
    api = hearth_api.client()
    iid = add_instance(hearth_api)
    kwargs: dict[str, Any] = {} if body is None else {"json": body}
    fault_of(api.request(method, f"/instances/{iid}{path}", **kwargs), 400, "badRequest", *fragments)
    assert events(hearth_api, iid) == []  # nothing was changed, nothing recorded


def test_malformed_bodies_are_400(hearth_api, fault_of):
    api = hearth_api.client()
    iid = add_instance(hearth_api)
    fault_of(api.post(f"/instances/{iid}/databases", json={"database": []}), 400, "badRequest", "databases")
    fault_of(api.post(f"/instances/{iid}/users", json={"users": "app"}), 400, "badRequest", "users")
    fault_of(api.put(f"/instances/{iid}/users/app", json={}), 400, "badRequest", "user")


def test_valid_requests_reach_the_connection_step(hearth_api, fault_of):
    """A valid request on an instance Hearth cannot reach yet (no address, no password) says so (400), after
    validation: the message is about the instance, not the input."""
    api = hearth_api.client()
    iid = add_instance(hearth_api)
    response = api.post(f"/instances/{iid}/users", json={"users": [{"name": "app@%", "password": "s3cret-pass"}]})
    fault_of(response, 400, "badRequest", iid, "does not manage the database")
    fault_of(api.get(f"/instances/{iid}/databases"), 400, "badRequest", iid)
    fault_of(api.get(f"/instances/{iid}/root"), 400, "badRequest", iid)


def test_unknown_instance_is_404(hearth_api, fault_of):
    api = hearth_api.client()
    for method, path in [("get", "databases"), ("post", "databases"), ("get", "users"), ("get", "users/app"),
                         ("delete", "users/app"), ("get", "root"), ("post", "root"), ("delete", "root")]:
        body = {"databases": [{"name": "x"}]} if (method, path) == ("post", "databases") else None
        response = api.request(method, f"/instances/{new_id()}/{path}", json=body)
        fault_of(response, 404, "itemNotFound", "could not be found")


def test_another_projects_instance_is_404(hearth_api, fault_of):
    iid = add_instance(hearth_api, project="other")
    fault_of(hearth_api.client().get(f"/instances/{iid}/databases"), 404, "itemNotFound")


def test_unmanaged_datastore_is_400_saying_so(hearth_api, fault_of):
    api = hearth_api.client()
    iid = add_instance(hearth_api, datastore="mysql", version="8.0")
    fault_of(api.get(f"/instances/{iid}/users"), 400, "badRequest", "mysql", "does not manage")
    fault_of(api.post(f"/instances/{iid}/databases", json={"databases": [{"name": "x"}]}), 400, "badRequest",
             "does not manage")
    fault_of(api.post(f"/instances/{iid}/root"), 400, "badRequest", "does not manage")


@pytest.mark.parametrize(("task", "server_status", "shown"), [
    (Task.RESIZING, "ACTIVE", "RESIZE"), (Task.ERROR, "ACTIVE", "ERROR"), (Task.NONE, "SHUTOFF", "SHUTDOWN"),
])
def test_writes_on_an_instance_not_ready_are_422_in_troves_words(hearth_api, fault_of, task, server_status, shown):
    api = hearth_api.client()
    iid = add_instance(hearth_api, task=task, server_status=server_status)
    response = api.post(f"/instances/{iid}/databases", json={"databases": [{"name": "app"}]})
    fault_of(response, 422, "unprocessableEntity", f"Instance {iid} is not ready. (status was {shown})")
    fault_of(api.delete(f"/instances/{iid}/root"), 422, "unprocessableEntity", "is not ready")


# --------------------------------------------------------------------------------------------------
# Configuration groups and parameters.


def create_group(api, values: dict[str, Any], **extra: Any):
    return api.post("/configurations", json={"configuration": {"name": "tuned", "values": values, **extra}})


def test_configuration_crud(hearth_api, fault_of):
    api = hearth_api.client()
    response = create_group(api, {"work_mem": 8192, "autovacuum": True}, description="for reports",
                            datastore={"type": "postgresql", "version": "16"})
    assert response.status_code == 200, response.text
    group = response.json()["configuration"]
    vid = datastore_version_id("postgresql", "16")
    assert group["values"] == {"work_mem": 8192, "autovacuum": "on"}
    assert group["datastore_name"] == "postgresql" and group["datastore_version_name"] == "16"
    assert group["datastore_version_id"] == vid and group["instance_count"] == 0
    assert group["description"] == "for reports" and group["created"] and group["updated"]
    gid = group["id"]

    listed = api.get("/configurations").json()["configurations"]
    assert [g["id"] for g in listed] == [gid] and "values" not in listed[0]
    shown = api.get(f"/configurations/{gid}").json()["configuration"]
    assert shown["values"] == group["values"]

    assert api.request("PATCH", f"/configurations/{gid}", json={"configuration": {"values": {"lock_timeout": 500}}}
                       ).status_code == 200
    assert api.get(f"/configurations/{gid}").json()["configuration"]["values"] == {
        "work_mem": 8192, "autovacuum": "on", "lock_timeout": 500}
    assert api.put(f"/configurations/{gid}", json={"configuration": {"values": {"work_mem": 4096}}}
                   ).status_code == 202
    assert api.get(f"/configurations/{gid}").json()["configuration"]["values"] == {"work_mem": 4096}
    assert api.get(f"/configurations/{gid}/instances").json() == {"instances": []}

    assert api.delete(f"/configurations/{gid}").status_code == 202
    fault_of(api.get(f"/configurations/{gid}"), 404, "itemNotFound", gid)
    assert api.get("/configurations").json() == {"configurations": []}


@pytest.mark.parametrize(("values", "fragments"), [
    ({"max_connections": 0}, ["'max_connections'", "1 to 10000"]),
    ({"max_connections": 100000}, ["'max_connections'", "1 to 10000"]),
    ({"work_mem": "lots"}, ["'work_mem'", "integer"]),
    ({"autovacuum": "maybe"}, ["'autovacuum'", "boolean"]),
    ({"log_statement": "everything"}, ["'log_statement'", "none, ddl, mod, all"]),
    ({"no_such_parameter": 1}, ["nknown configuration parameter 'no_such_parameter'"]),
])
def test_invalid_values_are_400_naming_the_parameter(hearth_api, fault_of, values, fragments):
    api = hearth_api.client()
    fault_of(create_group(api, values), 400, "badRequest", *fragments)
    assert api.get("/configurations").json() == {"configurations": []}


def test_configuration_refusals(hearth_api, fault_of):
    api = hearth_api.client()
    fault_of(create_group(api, {}, datastore={"type": "mysql"}), 400, "badRequest", "mysql 8.0")
    fault_of(create_group(api, {}, datastore={"type": "nosql"}), 404, "itemNotFound", "nosql")
    fault_of(create_group(api, {}, datastore={"type": "postgresql", "version": "9"}), 404, "itemNotFound", "'9'")
    fault_of(api.post("/configurations", json={"configuration": {"name": "x"}}), 400, "badRequest", "values")
    fault_of(api.post("/configurations", json={"configuration": {"values": {}}}), 400, "badRequest", "name")
    gid = create_group(api, {"work_mem": 1024}).json()["configuration"]["id"]
    fault_of(api.put(f"/configurations/{gid}", json={"configuration": {"values": {"work_mem": 1}}}), 400,
             "badRequest", "'work_mem'")
    assert api.get(f"/configurations/{gid}").json()["configuration"]["values"] == {"work_mem": 1024}
    fault_of(api.get(f"/configurations/{new_id()}"), 404, "itemNotFound")
    other = hearth_api.client("other")
    fault_of(other.get(f"/configurations/{gid}"), 404, "itemNotFound")
    fault_of(other.delete(f"/configurations/{gid}"), 404, "itemNotFound")


def test_attached_group_cannot_be_deleted_and_other_datastores_cannot_attach(hearth_api, fault_of):
    api = hearth_api.client()
    runtime, project_id = hearth_api.runtime, hearth_api.credentials().project_id
    gid = create_group(api, {"work_mem": 1024}).json()["configuration"]["id"]
    mysql = add_instance(hearth_api, datastore="mysql", version="8.0")
    with pytest.raises(service.BadRequest, match="applies only to instances of its datastore version"):
        datastore_service.attach_configuration(runtime, project_id, mysql, gid)
    with pytest.raises(service.NotFound):
        datastore_service.attach_configuration(runtime, project_id, mysql, new_id())

    iid = add_instance(hearth_api)
    with runtime.sessions.begin() as session:  # as if attached earlier
        session.get(Instance, iid).configuration_id = gid
    assert api.get(f"/configurations/{gid}/instances").json() == {"instances": [{"id": iid, "name": "db"}]}
    assert api.get(f"/configurations/{gid}").json()["configuration"]["instance_count"] == 1
    fault_of(api.delete(f"/configurations/{gid}"), 409, "conflictingRequest", iid, "detach")
    second = create_group(api, {"work_mem": 2048}).json()["configuration"]["id"]
    with pytest.raises(service.BadRequest, match="already has a Configuration Group attached"):
        datastore_service.attach_configuration(runtime, project_id, iid, second)


def test_parameters(hearth_api, fault_of):
    api = hearth_api.client()
    vid = datastore_version_id("postgresql", "16")
    by_name = api.get("/datastores/postgresql/versions/16/parameters")
    assert by_name.status_code == 200, by_name.text
    params = by_name.json()["configuration-parameters"]
    assert api.get(f"/datastores/versions/{vid}/parameters").json()["configuration-parameters"] == params
    max_conn = next(p for p in params if p["name"] == "max_connections")
    assert max_conn == {"name": "max_connections", "type": "integer", "restart_required": True,
                        "datastore_version_id": vid, "min": 1, "max": 10000}
    assert api.get("/datastores/postgresql/versions/16/parameters/max_connections").json() == max_conn
    assert api.get(f"/datastores/versions/{vid}/parameters/max_connections").json() == max_conn
    fault_of(api.get("/datastores/postgresql/versions/16/parameters/nope"), 404, "itemNotFound", "nope")
    fault_of(api.get("/datastores/mysql/versions/8.0/parameters"), 400, "badRequest", "mysql 8.0")
    fault_of(api.get(f"/datastores/versions/{new_id()}/parameters"), 404, "itemNotFound")


# --------------------------------------------------------------------------------------------------
# Limits and unsupported routes.


def test_limits_in_troves_shape(hearth_api):
    body = hearth_api.client().get("/limits").json()
    absolute = [limit for limit in body["limits"] if limit["verb"] == "ABSOLUTE"]
    assert len(absolute) == 1
    for key in ("max_instances", "max_volumes", "max_backups", "max_ram"):
        assert isinstance(absolute[0][key], int), absolute


@pytest.mark.parametrize(("method", "path", "feature"), [
    ("get", "/backups", "Backups"), ("post", "/backups", "Backups"), ("get", "/backups/abc", "Backups"),
    ("get", "/clusters", "Clusters"), ("delete", "/clusters/abc", "Clusters"), ("get", "/modules", "Modules"),
    ("get", "/instances/{iid}/log", "Guest logs"), ("get", "/instances/{iid}/backups", "Backups"),
    ("get", "/instances/{iid}/modules", "Modules"), ("get", "/mgmt/hosts", "management"),
    ("get", "/datastores/postgresql/versions/16/flavors", "Flavors per datastore version"),
])
def test_unsupported_trove_routes_are_501(hearth_api, fault_of, method, path, feature):
    response = hearth_api.client().request(method, path.format(iid=new_id()))
    fault_of(response, 501, "notImplemented", feature, "not supported by this deployment of Hearth")


def test_unsupported_routes_still_need_a_token(hearth_api, fault_of):
    fault_of(hearth_api.client(token=False).get("/backups"), 401, "unauthorized")


# --------------------------------------------------------------------------------------------------
# End to end, on a real PostgreSQL: a fakecloud guest server, recorded as a built instance.

PG_PORT = 5432
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


def loopback(address: str) -> str:
    if ipaddress.ip_address(address) not in LOOPBACK:
        raise AssertionError(f"refusing to dial {address}: tests only connect to loopback addresses")
    return address


@pytest.fixture
def guest(hearth_api) -> Iterator[tuple[str, str]]:
    """A fakecloud PostgreSQL guest reachable from this host: (address, superuser password)."""
    conn = hearth_api.cloud.connect()
    group = conn.network.create_security_group(name=f"db-access-{new_id()[:8]}")
    conn.network.create_security_group_rule(
        security_group_id=group.id, direction="ingress", ethertype="IPv4", protocol="tcp",
        port_range_min=PG_PORT, port_range_max=PG_PORT, remote_ip_prefix="127.0.0.0/8")
    image = next(conn.image.images(name="postgresql-16-guest")).id
    server = conn.compute.create_server(name="pg-e2e", image_id=image, flavor_id="1", networks="auto",
                                        security_groups=[{"name": group.name}])
    password = server.admin_password
    try:
        server = conn.compute.wait_for_server(server, interval=0.05, wait=120)
        address = loopback(server.addresses["private"][0]["addr"])
        deadline = time.monotonic() + 60
        while True:
            try:
                psycopg.connect(host=address, port=PG_PORT, user="postgres", password=password,
                                dbname="postgres", connect_timeout=3).close()
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield address, password
    finally:
        conn.compute.delete_server(server)
        conn.compute.wait_for_delete(server, interval=0.05, wait=120)
        conn.network.delete_security_group(group)
        conn.close()


def managed_instance(hearth_api, address: str, password: str, port: int = PG_PORT) -> str:
    iid = add_instance(hearth_api)
    runtime = hearth_api.runtime
    with runtime.sessions.begin() as session:
        inst = session.get(Instance, iid)
        inst.addresses = [{"address": address, "type": "private", "network": "private"}]
        inst.admin_password = runtime.secrets.seal(password)
        inst.port = port
    return iid


def can_login(address: str, user: str, password: str, dbname: str = "postgres") -> bool:
    try:
        psycopg.connect(host=loopback(address), port=PG_PORT, user=user, password=password, dbname=dbname,
                        connect_timeout=3).close()
    except psycopg.OperationalError:
        return False
    return True


def test_end_to_end_databases_users_root_and_configuration(hearth_api, guest, fault_of):
    address, admin = guest
    api = hearth_api.client()
    iid = managed_instance(hearth_api, address, admin)
    base = f"/instances/{iid}"

    assert api.post(f"{base}/databases", json={"databases": [{"name": "app"}]}).status_code == 202
    assert [d["name"] for d in api.get(f"{base}/databases").json()["databases"]] == ["app"]
    fault_of(api.post(f"{base}/databases", json={"databases": [{"name": "app"}]}), 400, "badRequest", "exists")

    users = {"users": [{"name": "alice", "password": "alice-pass-1", "databases": [{"name": "app"}]}]}
    assert api.post(f"{base}/users", json=users).status_code == 202
    assert api.get(f"{base}/users").json() == {
        "users": [{"name": "alice", "host": "%", "databases": [{"name": "app"}]}]}
    assert api.get(f"{base}/users/alice@%25").json()["user"]["name"] == "alice"
    assert can_login(address, "alice", "alice-pass-1", "app")
    fault_of(api.get(f"{base}/users/nobody"), 404, "itemNotFound", "nobody")

    assert api.put(f"{base}/users/alice", json={"user": {"password": "alice-pass-2"}}).status_code == 202
    assert can_login(address, "alice", "alice-pass-2", "app") and not can_login(address, "alice", "alice-pass-1")
    assert api.delete(f"{base}/users/alice/databases/app").status_code == 202
    assert api.get(f"{base}/users/alice/databases").json() == {"databases": []}
    assert api.put(f"{base}/users/alice/databases", json={"databases": [{"name": "app"}]}).status_code == 202
    assert api.get(f"{base}/users/alice/databases").json() == {"databases": [{"name": "app"}]}

    assert api.get(f"{base}/root").json() == {"rootEnabled": False}
    enabled = api.post(f"{base}/root")
    assert enabled.status_code == 200, enabled.text
    root = enabled.json()["user"]
    assert root["name"] == "root" and can_login(address, "root", root["password"])
    assert api.get(f"{base}/root").json() == {"rootEnabled": True}
    assert api.delete(f"{base}/root").status_code == 204
    assert api.get(f"{base}/root").json() == {"rootEnabled": False}

    runtime, project_id = hearth_api.runtime, hearth_api.credentials().project_id
    gid = create_group(api, {"work_mem": 8192, "max_connections": 60}).json()["configuration"]["id"]
    datastore_service.attach_configuration(runtime, project_id, iid, gid)
    with runtime.sessions() as session:
        inst = session.get(Instance, iid)
        assert (inst.configuration_id, inst.restart_required, inst.operating_status) == (
            gid, True, "RESTART_REQUIRED")
    assert api.get(f"{base}/configuration").json()["instance"]["configuration"]["work_mem"] == "8MB"
    patched = api.request("PATCH", f"/configurations/{gid}", json={"configuration": {"values": {"work_mem": 16384}}})
    assert patched.status_code == 200, patched.text
    assert api.get(f"{base}/configuration").json()["instance"]["configuration"]["work_mem"] == "16MB"
    fault_of(api.delete(f"/configurations/{gid}"), 409, "conflictingRequest")
    datastore_service.attach_configuration(runtime, project_id, iid, None)
    assert api.get(f"{base}/configuration").json()["instance"]["configuration"]["work_mem"] == "4MB"
    assert api.delete(f"/configurations/{gid}").status_code == 202

    assert api.delete(f"{base}/users/alice").status_code == 202
    assert api.delete(f"{base}/databases/app").status_code == 202
    assert api.get(f"{base}/users").json() == {"users": []}
    assert api.get(f"{base}/databases").json() == {"databases": []}
    log = events(hearth_api, iid)
    assert "users created: alice" in log and "root enabled" in log and "database deleted: app" in log
    assert not any(secret in message for message in log
                   for secret in ("alice-pass-1", "alice-pass-2", root["password"], admin))


def test_unreachable_database_is_503_and_a_wrong_password_names_the_instance(hearth_api, guest, fault_of):
    address, admin = guest
    api = hearth_api.client()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # bound, never listening
        sock.bind((loopback("127.0.0.1"), 0))
        closed = managed_instance(hearth_api, "127.0.0.1", admin, port=sock.getsockname()[1])
        response = api.get(f"/instances/{closed}/databases")
        fault_of(response, 503, "serviceUnavailable", closed, "retry")
        assert int(response.headers["Retry-After"]) >= 1
    wrong = managed_instance(hearth_api, address, "not-the-password")
    fault_of(api.post(f"/instances/{wrong}/databases", json={"databases": [{"name": "x"}]}), 503,
             "serviceUnavailable", wrong, "credentials")
    assert events(hearth_api, wrong) == []


def test_troveclient_drives_databases_users_root_configurations_and_limits(hearth_api, guest):
    """python-troveclient, unchanged, reads every answer above in the shapes it expects."""
    from keystoneauth1 import session as ks_session
    from keystoneauth1.identity import v3
    from troveclient import exceptions as trove_exceptions
    from troveclient.v1 import client as trove_client

    trove = trove_client.Client(session=ks_session.Session(auth=v3.Password(**hearth_api.cloud.auth("demo"))),
                                region_name="RegionOne")
    address, admin = guest
    iid = managed_instance(hearth_api, address, admin)

    trove.databases.create(iid, [{"name": "shop"}])
    assert [d.name for d in trove.databases.list(iid)] == ["shop"]
    trove.users.create(iid, [{"name": "bob", "password": "bob-pass-12", "databases": [{"name": "shop"}]}])
    assert [(u.name, u.databases) for u in trove.users.list(iid)] == [("bob", [{"name": "shop"}])]
    assert trove.users.get(iid, "bob").name == "bob"
    assert [d.name for d in trove.users.list_access(iid, "bob")] == ["shop"]
    name, password = trove.root.create_instance_root(iid)
    assert name == "root" and can_login(address, "root", password)
    assert trove.root.is_instance_root_enabled(iid).rootEnabled is True
    trove.root.disable_instance_root(iid)
    with pytest.raises(trove_exceptions.BadRequest, match="reserved"):
        trove.databases.create(iid, [{"name": "postgres"}])

    group = trove.configurations.create("tc", '{"work_mem": 2048}', datastore="postgresql", datastore_version="16")
    assert trove.configurations.get(group.id).values == {"work_mem": 2048}
    assert [g.id for g in trove.configurations.list()] == [group.id]
    params = trove.configuration_parameters.parameters("postgresql", "16")
    assert "max_connections" in {p.name for p in params}
    assert trove.configuration_parameters.get_parameter("postgresql", "16", "work_mem").type == "integer"
    trove.configurations.delete(group.id)

    absolute = [limit for limit in trove.limits.list() if limit.verb == "ABSOLUTE"]
    assert len(absolute) == 1 and isinstance(absolute[0].max_instances, int)
    with pytest.raises(trove_exceptions.HttpNotImplemented, match="Backups is not supported"):
        trove.backups.list()
    trove.users.delete(iid, "bob")
    trove.databases.delete(iid, "shop")
