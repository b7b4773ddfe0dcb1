"""PostgresManager against a real PostgreSQL 16: one fakecloud guest for the module, booted with openstacksdk,
and every effect checked the way a real client sees it (psycopg connections as the users themselves).

Every address dialled is on the loopback network (`_loopback` refuses anything else before connecting).
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest

from hearth.datastores import (
    AuthFailed,
    Conflict,
    Endpoint,
    Invalid,
    NotFound,
    PostgresManager,
    Unreachable,
    check_database_name,
    check_password,
    check_user_name,
)
from hearth.datastores.postgresql import scram_verifier
from openstack_fakecloud.testing import running_cloud

WAIT = {"interval": 0.05, "wait": 60}
PG_PORT = 5432
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


def _loopback(address: str) -> str:
    if ipaddress.ip_address(address) not in LOOPBACK:
        raise AssertionError(f"refusing to dial {address}: tests only connect to loopback addresses")
    return address


@dataclass
class Guest:
    conn: object
    server: object
    address: str
    password: str

    @property
    def manager(self) -> PostgresManager:
        return PostgresManager(Endpoint(self.address, PG_PORT, self.password), connect_timeout=3)


def _wait_accepting(manager: PostgresManager, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            manager.health()
            return
        except Unreachable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture(scope="module")
def guest() -> Iterator[Guest]:
    with running_cloud() as fc:
        fc.control.set_delays(profile="zero")
        conn = fc.connect()
        group = conn.network.create_security_group(name="db-access")
        conn.network.create_security_group_rule(
            security_group_id=group.id, direction="ingress", ethertype="IPv4", protocol="tcp",
            port_range_min=PG_PORT, port_range_max=PG_PORT, remote_ip_prefix="127.0.0.0/8")
        image = next(conn.image.images(name="postgresql-16-guest")).id
        server = conn.compute.create_server(name="pg", image_id=image, flavor_id="1", networks="auto",
                                            security_groups=[{"name": "db-access"}])
        password = server.admin_password
        server = conn.compute.wait_for_server(server, **WAIT)
        found = Guest(conn, server, _loopback(server.addresses["private"][0]["addr"]), password)
        _wait_accepting(found.manager)
        try:
            yield found
        finally:
            conn.compute.delete_server(server)
            conn.compute.wait_for_delete(server, **WAIT)
            conn.close()


def _client(guest: Guest, user: str, password: str, dbname: str = "postgres") -> psycopg.Connection:
    return psycopg.connect(host=_loopback(guest.address), port=PG_PORT, user=user, password=password,
                           dbname=dbname, connect_timeout=3, autocommit=True)


def _refused(guest: Guest, user: str, password: str, dbname: str = "postgres") -> bool:
    try:
        _client(guest, user, password, dbname).close()
    except psycopg.OperationalError:
        return True
    return False


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port nothing listens on (bound, never listening, so nobody else takes it meanwhile)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_loopback("127.0.0.1"), 0))
        yield sock.getsockname()[1]


# -- before any connection ---------------------------------------------------------------------------------


def test_names_and_passwords_are_checked_before_connecting(closed_port):
    nowhere = PostgresManager(Endpoint(_loopback("127.0.0.1"), closed_port, "irrelevant-pw"), connect_timeout=2)
    for bad in ("", "x" * 64, "has space", "semi;colon", "pg_reserved", "quote'd", None, 5):
        with pytest.raises(Invalid):
            check_database_name(bad)
        with pytest.raises(Invalid):
            check_user_name(bad)
    for reserved in ("postgres", "template0", "template1"):
        with pytest.raises(Invalid, match="reserved"):
            check_database_name(reserved)
    for reserved in ("postgres", "root"):
        with pytest.raises(Invalid, match="reserved"):
            check_user_name(reserved)
    assert check_database_name("my-db.v2_1") == "my-db.v2_1"
    for weak in ("short", "aaaaaaaaaa", "a\0bcdefgh", None):
        with pytest.raises(Invalid):
            check_password(weak)
    with pytest.raises(Invalid, match="user name"):
        check_password("alice-long", "alice-long")
    assert check_password("PassW0rd", "alice") == "PassW0rd"
    assert check_password("new_password", "alice") == "new_password"

    # Each of these is refused as Invalid, not Unreachable: nothing was dialled.
    with pytest.raises(Invalid, match="password"):
        nowhere.create_users([{"name": "ok_user", "password": "PassW0rd"}, {"name": "weak", "password": "short"}])
    with pytest.raises(Invalid, match="reserved"):
        nowhere.create_databases([{"name": "fine"}, {"name": "template1"}])
    with pytest.raises(Invalid, match="twice"):
        nowhere.create_databases([{"name": "fine"}, {"name": "fine"}])
    with pytest.raises(Invalid, match="reserved"):
        nowhere.delete_database("postgres")
    with pytest.raises(Invalid, match="reserved"):
        nowhere.delete_user("root")
    with pytest.raises(Invalid, match="character_set"):
        nowhere.create_databases([{"name": "fine", "character_set": "UTF8'; DROP"}])


def test_unreachable_servers_are_transient_errors(closed_port):
    with pytest.raises(Unreachable):
        PostgresManager(Endpoint(_loopback("127.0.0.1"), closed_port, "some-password")).health()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # a loopback address no guest has
        sock.bind((_loopback("127.254.254.254"), 0))  # its port held, never listening (a wildcard :5432 may be)
        unknown = Endpoint(_loopback("127.254.254.254"), sock.getsockname()[1], "some-password")
        with pytest.raises(Unreachable) as failure:
            PostgresManager(unknown, connect_timeout=2).health()
    assert "some-password" not in str(failure.value)


def test_scram_verifier_format():
    verifier = scram_verifier("PassW0rd", salt=b"0123456789abcdef")
    assert verifier.startswith("SCRAM-SHA-256$4096:MDEyMzQ1Njc4OWFiY2RlZg==$") and "PassW0rd" not in verifier


# -- against the guest -------------------------------------------------------------------------------------


def test_health_version_and_wrong_password(guest):
    manager = guest.manager
    manager.health()
    assert manager.server_version().startswith("16.")
    wrong = PostgresManager(Endpoint(guest.address, PG_PORT, "not-the-password"))
    with pytest.raises(AuthFailed) as failure:
        wrong.health()
    assert "not-the-password" not in str(failure.value)
    assert "not-the-password" not in repr(wrong.endpoint) and "***" in repr(wrong.endpoint)


def test_databases(guest):
    manager = guest.manager
    manager.create_databases([{"name": "app"}, {"name": "other.db", "character_set": "UTF8", "collate": "C"}])
    listed = manager.list_databases()
    assert {"name": "app", "character_set": "UTF8", "collate": "C"} in listed
    assert {d["name"] for d in listed} == {"app", "other.db"}, "postgres and the templates are not listed"
    with pytest.raises(Conflict, match="exists already"):
        manager.create_databases([{"name": "fresh"}, {"name": "app"}])
    assert "fresh" not in {d["name"] for d in manager.list_databases()}, "all validated before any is created"
    with pytest.raises(Invalid):
        manager.create_databases([{"name": "badcoll", "collate": "no_such_locale"}])
    with _client(guest, "postgres", guest.password, "app") as db:  # a second session: dropped WITH (FORCE)
        manager.create_databases([{"name": "doomed"}])
        manager.delete_database("doomed")
        assert db.execute("SELECT 1").fetchone() == (1,)
    with pytest.raises(NotFound):
        manager.delete_database("doomed")
    assert {d["name"] for d in manager.list_databases()} == {"app", "other.db"}


def test_users_connect_only_to_granted_databases(guest):
    manager = guest.manager
    manager.create_users([{"name": "alice", "password": "PassW0rd", "databases": [{"name": "app"}]}])
    assert manager.get_user("alice") == {"name": "alice", "host": "%", "databases": [{"name": "app"}]}
    assert manager.list_users() == [{"name": "alice", "host": "%", "databases": [{"name": "app"}]}]
    with _client(guest, "alice", "PassW0rd", "app") as db:
        db.execute("CREATE TABLE notes (id serial PRIMARY KEY, note text)")
        db.execute("INSERT INTO notes (note) VALUES ('hello')")
        assert db.execute("SELECT note FROM notes").fetchall() == [("hello",)]
        assert db.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (False,)
    assert _refused(guest, "alice", "PassW0rd", "other.db"), "PUBLIC cannot connect to a database Hearth made"
    assert _refused(guest, "alice", "wrong-password", "app")

    with guest.manager._session() as db:  # the server stores a verifier, never the password
        (stored,) = db.execute("SELECT rolpassword FROM pg_authid WHERE rolname = 'alice'").fetchone()
    assert stored.startswith("SCRAM-SHA-256$4096:")

    manager.grant("alice", ["other.db"])
    assert manager.user_databases("alice") == [{"name": "app"}, {"name": "other.db"}]
    with _client(guest, "alice", "PassW0rd", "other.db") as db:
        db.execute("CREATE TABLE t (x int)")  # PostgreSQL 15+: only with the schema grant
    manager.revoke("alice", "other.db")
    assert manager.user_databases("alice") == [{"name": "app"}]
    assert _refused(guest, "alice", "PassW0rd", "other.db")
    with pytest.raises(NotFound):
        manager.revoke("alice", "nonexistent")
    with pytest.raises(NotFound):
        manager.grant("nobody", ["app"])


def test_create_users_validates_all_first(guest):
    manager = guest.manager
    with pytest.raises(Conflict, match="exists already"):
        manager.create_users([{"name": "bob", "password": "PassW0rd"}, {"name": "alice", "password": "PassW0rd"}])
    with pytest.raises(NotFound, match="nonexistent"):
        manager.create_users([{"name": "bob", "password": "PassW0rd", "databases": [{"name": "nonexistent"}]}])
    with pytest.raises(Invalid):
        manager.create_users([{"name": "bob", "password": "PassW0rd", "host": "10.0.0.1"}])
    assert [u["name"] for u in manager.list_users()] == ["alice"], "nothing was created"
    with pytest.raises(NotFound):
        manager.get_user("bob")


def test_rename_keeps_the_password_and_password_changes(guest):
    manager = guest.manager
    manager.create_users([{"name": "carol", "password": "PassW0rd", "databases": [{"name": "app"}]}])
    manager.update_user("carol", new_name="carol2")
    with _client(guest, "carol2", "PassW0rd", "app") as db:
        assert db.execute("SELECT current_user").fetchone() == ("carol2",)
    assert _refused(guest, "carol", "PassW0rd", "app")
    manager.update_user("carol2", password="new_password")
    assert _refused(guest, "carol2", "PassW0rd", "app")
    _client(guest, "carol2", "new_password", "app").close()
    with pytest.raises(Conflict):
        manager.update_user("carol2", new_name="alice")
    with pytest.raises(NotFound):
        manager.update_user("nobody", password="new_password")
    manager.update_user("carol2", password="pässwörd-ß1")  # SASLprep'd as libpq does on login
    _client(guest, "carol2", "pässwörd-ß1", "app").close()
    manager.delete_user("carol2")


def test_deleting_a_user_that_owns_objects(guest):
    manager = guest.manager
    manager.create_users([{"name": "dave", "password": "PassW0rd", "databases": [{"name": "app"}]}])
    with _client(guest, "dave", "PassW0rd", "app") as db:
        db.execute("CREATE TABLE dave_things (x int)")
        db.execute("INSERT INTO dave_things VALUES (1)")
    manager.delete_user("dave")
    assert "dave" not in [u["name"] for u in manager.list_users()]
    assert _refused(guest, "dave", "PassW0rd", "app")
    with _client(guest, "postgres", guest.password, "app") as db:
        assert db.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'dave_things'").fetchone() == (
            "postgres",), "the data is kept, given to postgres"
    with pytest.raises(NotFound):
        manager.delete_user("dave")


def test_root_enable_and_disable(guest):
    manager = guest.manager
    assert not manager.root_enabled()
    manager.root_disable()  # fine when there is no root
    password = manager.root_enable()
    assert len(password) >= 16 and manager.root_enabled()
    with _client(guest, "root", password) as db:
        assert db.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (True,)
    assert "root" not in [u["name"] for u in manager.list_users()]
    manager.root_disable()
    assert not manager.root_enabled()
    assert _refused(guest, "root", password)
    assert manager.root_enable("PassW0rd") == "PassW0rd"
    _client(guest, "root", "PassW0rd").close()
    manager.root_disable()


def test_parameters_apply_and_restart_when_postgresql_says_so(guest):
    manager = guest.manager
    assert manager.apply_parameters({"work_mem": "8MB", "autovacuum": False}) is False
    with _client(guest, "postgres", guest.password) as db:
        assert db.execute("SHOW work_mem").fetchone() == ("8MB",)
        assert db.execute("SHOW autovacuum").fetchone() == ("off",)
    assert manager.current_settings(["work_mem", "max_connections"]) == {"work_mem": "8MB",
                                                                         "max_connections": "50"}
    with pytest.raises(Invalid):
        manager.apply_parameters({"no_such_parameter": 1})
    with pytest.raises(Invalid):
        manager.apply_parameters({"work_mem": "lots"})

    assert manager.apply_parameters({"max_connections": 60}) is True, "PostgreSQL says a restart is needed"
    assert manager.current_settings(["max_connections"]) == {"max_connections": "50"}, "until the restart"
    guest.conn.compute.reboot_server(guest.server, "HARD")
    guest.conn.compute.wait_for_server(guest.conn.compute.get_server(guest.server.id), status="ACTIVE", **WAIT)
    _wait_accepting(manager)
    assert manager.current_settings(["max_connections", "work_mem"]) == {"max_connections": "60",
                                                                         "work_mem": "8MB"}
    assert manager.apply_parameters({}, reset=["work_mem", "autovacuum"]) is False
    assert manager.current_settings(["work_mem", "autovacuum"]) == {"work_mem": "4MB", "autovacuum": "on"}
