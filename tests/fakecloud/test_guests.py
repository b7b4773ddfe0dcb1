"""Guests: servers booted from a guest image run a real PostgreSQL, at their addresses, behind their groups.

Everything goes through the real path: openstacksdk over HTTP to fakecloud for the cloud, and a real
PostgreSQL client (psycopg) or the PostgreSQL wire protocol for the guest. A test chooses a client's source
address by binding to a loopback address before it connects, which is what a security group filters on.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from openstack_fakecloud.testing import RunningCloud, running_cloud

WAIT = {"interval": 0.05, "wait": 30}
GUEST_IMAGE = "postgresql-16-guest"
PG_PORT = 5432
SSL_REQUEST = struct.pack("!ii", 8, 80877103)  # PostgreSQL's SSLRequest: a real server answers b"N" or b"S"
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


def _loopback(address: str) -> str:
    """Every address a test dials must be on the loopback network: refuse anything else before connecting."""
    if ipaddress.ip_address(address) not in LOOPBACK:
        raise AssertionError(f"refusing to dial {address}: tests only connect to loopback addresses")
    return address


def _image_id(conn, name: str = GUEST_IMAGE) -> str:
    return next(conn.image.images(name=name)).id


def _open_group(conn, name: str = "db-access", cidr: str = "127.0.0.0/24"):
    group = conn.network.create_security_group(name=name)
    rule = conn.network.create_security_group_rule(
        security_group_id=group.id, direction="ingress", ethertype="IPv4", protocol="tcp",
        port_range_min=PG_PORT, port_range_max=PG_PORT, remote_ip_prefix=cidr)
    return group, rule


def _boot(conn, name: str, group_name: str = "db-access", image: str = GUEST_IMAGE, **attrs):
    server = conn.compute.create_server(name=name, image_id=_image_id(conn, image), flavor_id="1",
                                        networks="auto", security_groups=[{"name": group_name}], **attrs)
    password = server.admin_password
    server = conn.compute.wait_for_server(server, **WAIT)
    return server, password


def _address(server) -> str:
    return _loopback(server.addresses["private"][0]["addr"])


def _attach_new_volume(conn, server, size: int = 1):
    volume = conn.block_storage.create_volume(name=f"{server.name}-data", size=size)
    conn.block_storage.wait_for_status(volume, "available", **WAIT)
    conn.compute.create_volume_attachment(server, volume=volume)
    conn.block_storage.wait_for_status(volume, "in-use", **WAIT)
    return volume


def _connect(address: str, password: str, timeout: float = 30.0) -> psycopg.Connection:
    """A real client; the guest starts after its server is ACTIVE (as a VM's service does), so wait for it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return psycopg.connect(host=_loopback(address), port=PG_PORT, user="postgres", password=password,
                                   dbname="postgres", connect_timeout=3, autocommit=True)
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _rows(address: str, password: str) -> list[tuple]:
    with _connect(address, password) as db:
        return db.execute("SELECT note FROM notes ORDER BY id").fetchall()


def _probe(address: str, source: str) -> bool:
    """Whether a connection from `source` reaches a PostgreSQL server at `address` (it answers SSLRequest)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.bind((_loopback(source), 0))
        try:
            sock.connect((_loopback(address), PG_PORT))
            sock.sendall(SSL_REQUEST)
            return sock.recv(1) in (b"N", b"S")
        except (ConnectionResetError, ConnectionRefusedError, BrokenPipeError):
            return False


@contextmanager
def _session_from(address: str, source: str) -> Iterator[socket.socket]:
    """A live connection from `source`, past the SSL negotiation: the guest keeps it open while idle."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(5)
    try:
        sock.bind((_loopback(source), 0))
        sock.connect((_loopback(address), PG_PORT))
        sock.sendall(SSL_REQUEST)
        assert sock.recv(1) == b"N"
        yield sock
    finally:
        sock.close()


def _alive(sock: socket.socket) -> bool:
    """Whether the guest still holds the connection: a startup packet for a missing user gets an answer."""
    startup = b"user\0nobody-here\0database\0postgres\0\0"
    try:
        sock.sendall(struct.pack("!ii", 8 + len(startup), 196608) + startup)
        return sock.recv(1) in (b"R", b"E")
    except (ConnectionResetError, BrokenPipeError):
        return False


def _wait_until(check, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def _settle(conn, server, status: str):
    return conn.compute.wait_for_server(conn.compute.get_server(server.id), status=status, **WAIT)


def _console(conn, server) -> str:
    return conn.compute.get_server_console_output(server)["output"]


def _store(fc: RunningCloud, kind: str, ident: str) -> Path:
    disks = fc.cloud.guests.disks
    assert disks is not None
    return disks.root / kind / ident


def test_data_survives_the_server_life_and_a_restart_then_delete_removes_it(tmp_path):
    state = tmp_path / "state.json"
    with running_cloud(state_file=state) as fc:
        conn = fc.connect()
        _open_group(conn)
        server, password = _boot(conn, "pg1")
        assert password, "Nova returns the generated admin password once, in the create response"
        volume = _attach_new_volume(conn, server)
        address = _address(server)
        with _connect(address, password) as db:
            db.execute("CREATE TABLE notes (id serial PRIMARY KEY, note text)")
            db.execute("INSERT INTO notes (note) VALUES ('kept')")
        assert (_store(fc, "volumes", volume.id) / "pgdata" / "PG_VERSION").exists(), "the cluster is on the volume"
        usage = fc.control.volume_usage(volume.id)
        assert usage["size_gb"] == 1 and usage["used_bytes"] > 1 << 20, "a cluster takes some megabytes"
        (running,) = fc.control.guests()
        assert (running["server_id"], running["kind"], running["disk"]) == (
            server.id, "postgresql", {"type": "volume", "id": volume.id})
        assert running["addresses"] == [address] and running["pid"]

        conn.compute.reboot_server(server, "SOFT")
        _settle(conn, server, "ACTIVE")
        assert _rows(address, password) == [("kept",)]

        conn.compute.stop_server(server)
        _settle(conn, server, "SHUTOFF")
        assert not _probe(address, "127.0.0.1"), "a stopped server runs no database"
        conn.compute.start_server(server)
        _settle(conn, server, "ACTIVE")
        assert _rows(address, password) == [("kept",)]

        conn.compute.resize_server(server, "2")
        _settle(conn, server, "VERIFY_RESIZE")
        assert _rows(address, password) == [("kept",)]
        conn.compute.confirm_server_resize(server)
        assert _settle(conn, server, "ACTIVE").flavor["original_name"] == "m1.small"
        assert _rows(address, password) == [("kept",)]

        conn.compute.resize_server(server, "3")
        _settle(conn, server, "VERIFY_RESIZE")
        conn.compute.revert_server_resize(server)
        assert _settle(conn, server, "ACTIVE").flavor["original_name"] == "m1.small"
        assert _rows(address, password) == [("kept",)]

        rebuilt = conn.compute.rebuild_server(server, image=_image_id(conn), admin_password="n3w-Secret")
        assert rebuilt.admin_password == "n3w-Secret"
        _settle(conn, server, "ACTIVE")
        assert _rows(address, "n3w-Secret") == [("kept",)], "a rebuild keeps the data volume"
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(host=address, port=PG_PORT, user="postgres", password=password, dbname="postgres",
                            connect_timeout=3)
        password = "n3w-Secret"

        conn.compute.delete_volume_attachment(server, volume)
        conn.block_storage.wait_for_status(volume, "available", **WAIT)
        conn.block_storage.extend_volume(volume, 2)
        conn.block_storage.wait_for_status(volume, "available", **WAIT)
        assert conn.block_storage.get_volume(volume.id).size == 2
        conn.compute.create_volume_attachment(server, volume=volume)
        conn.block_storage.wait_for_status(volume, "in-use", **WAIT)
        assert _wait_until(lambda: _rows(address, password) == [("kept",)])
        with _connect(address, password) as db:
            db.execute("INSERT INTO notes (note) VALUES ('after extend')")
        conn.close()

    with running_cloud(state_file=state) as fc:
        conn = fc.connect()
        assert _rows(address, password) == [("kept",), ("after extend",)], "started again with the saved state"
        conn.compute.delete_server(server)
        conn.compute.wait_for_delete(server, **WAIT)
        assert _wait_until(lambda: not _probe(address, "127.0.0.1")), "a deleted server's database is gone"
        conn.block_storage.wait_for_status(volume, "available", **WAIT)
        assert _store(fc, "volumes", volume.id).exists(), "the volume keeps its data after the server is gone"
        conn.block_storage.delete_volume(volume)
        conn.block_storage.wait_for_delete(volume, **WAIT)
        assert not _store(fc, "volumes", volume.id).exists(), "deleting the volume deletes its data"
        assert not _store(fc, "roots", server.id).exists()
        conn.close()


def test_security_group_rules_decide_who_connects(os_conn, fakecloud):
    group, inside_rule = _open_group(os_conn, cidr="127.0.0.0/24")
    server, password = _boot(os_conn, "pg-filtered")
    address = _address(server)
    with _connect(address, password):
        pass  # the guest is up (the default client source, 127.0.0.1, is inside the rule)
    assert _probe(address, "127.0.0.9"), "a source inside the rule's CIDR gets in"
    assert not _probe(address, "127.200.0.9"), "a source outside every allowed CIDR is refused"

    with _session_from(address, "127.0.0.9") as old_session:
        # make before break: the new CIDR's rule first, then the old one goes
        outside_rule = os_conn.network.create_security_group_rule(
            security_group_id=group.id, direction="ingress", ethertype="IPv4", protocol="tcp",
            port_range_min=PG_PORT, port_range_max=PG_PORT, remote_ip_prefix="127.200.0.0/24")
        assert _probe(address, "127.200.0.9") and _probe(address, "127.0.0.9"), "both CIDRs while both rules exist"
        with _session_from(address, "127.200.0.9") as new_session:
            os_conn.network.delete_security_group_rule(inside_rule)
            assert _probe(address, "127.200.0.9"), "the new CIDR gets in"
            assert not _probe(address, "127.0.0.9"), "the old CIDR is refused at once"
            assert not _alive(old_session), "a connection the removed rule allowed is cut (conntrack deleted)"
            assert _alive(new_session), "a connection the remaining rule allows stays"
    rules = [r.remote_ip_prefix for r in os_conn.network.security_group_rules(security_group_id=group.id)
             if r.direction == "ingress"]
    assert rules == [outside_rule.remote_ip_prefix]

    os_conn.network.delete_security_group_rule(outside_rule)
    assert not _probe(address, "127.200.0.9"), "no ingress rule: nobody gets in"
    assert not _probe(address, "127.0.0.1")


def test_a_floating_ip_reaches_the_same_guest(os_conn, os_admin, fakecloud):
    _open_group(os_conn, cidr="127.0.0.1/32")
    server, password = _boot(os_conn, "pg-public")
    with _connect(_address(server), password) as db:
        db.execute("CREATE TABLE notes (id serial PRIMARY KEY, note text)")
        db.execute("INSERT INTO notes (note) VALUES ('via fixed')")
    public = os_conn.network.find_network("public", ignore_missing=False)
    private = os_conn.network.find_network("private", ignore_missing=False)
    router = os_conn.network.find_router("router1", ignore_missing=False)  # DevStack's, made with `private`
    assert router.external_gateway_info["network_id"] == public.id
    assert [p.network_id for p in os_conn.network.ports(device_id=router.id)] == [private.id]
    port = next(os_conn.network.ports(device_id=server.id))
    floating = os_conn.network.create_ip(floating_network_id=public.id, port_id=port.id)
    address = _loopback(floating.floating_ip_address)
    assert address != _address(server)
    assert _wait_until(lambda: _probe(address, "127.0.0.1"))
    assert _rows(address, password) == [("via fixed",)]
    assert not _probe(address, "127.0.0.9"), "the port's security groups filter the floating IP too"

    os_conn.network.update_ip(floating, port_id=None)
    assert _wait_until(lambda: not _probe(address, "127.0.0.1")), "a disassociated floating IP leads nowhere"
    assert _probe(_address(server), "127.0.0.1")


def test_servers_without_a_guest_run_nothing(os_conn, fakecloud):
    _open_group(os_conn)
    server, _password = _boot(os_conn, "plain", image="cirros-0.6.2")
    assert not _probe(_address(server), "127.0.0.1")
    assert fakecloud.cloud.guests.guests == {}
    console = _console(os_conn, server)
    assert "booted" in console and "postgresql" not in console, "the VM's boot, and no guest"


def test_a_guest_that_cannot_listen_says_why_and_the_cloud_carries_on(os_conn, fakecloud):
    _open_group(os_conn)
    private = os_conn.network.find_network("private", ignore_missing=False)
    port = os_conn.network.create_port(network_id=private.id)
    address = _loopback(port.fixed_ips[0]["ip_address"])
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT of earlier tests
        squatter.bind((address, PG_PORT))
        squatter.listen(1)
        server = os_conn.compute.create_server(name="squeezed", image_id=_image_id(os_conn), flavor_id="1",
                                               networks=[{"port": port.id}])
        server = os_conn.compute.wait_for_server(server, **WAIT)
        assert _wait_until(lambda: "cannot start" in _console(os_conn, server))
        console = _console(os_conn, server)
        assert f"cannot listen on {address}:{PG_PORT}" in console
        assert "address already in use" in console.lower()
        assert fakecloud.cloud.guests.guests == {}, "no guest left running without its address"
    assert os_conn.compute.get_server(server.id).status == "ACTIVE"  # the VM booted; its service did not


def test_a_guest_without_binaries_says_so(os_conn, fakecloud, monkeypatch, tmp_path):
    monkeypatch.setenv("FAKECLOUD_PG_BIN", str(tmp_path / "no-postgres-here"))
    _open_group(os_conn)
    server, _password = _boot(os_conn, "binless")
    assert _wait_until(lambda: "cannot start" in _console(os_conn, server))
    assert "PostgreSQL server binaries are missing" in _console(os_conn, server)
    assert not _probe(_address(server), "127.0.0.1")


def test_a_remote_group_rule_admits_the_addresses_of_its_members(os_conn, fakecloud):
    peers = os_conn.network.create_security_group(name="peers")
    os_conn.network.create_security_group_rule(
        security_group_id=peers.id, direction="ingress", ethertype="IPv4", protocol="tcp",
        port_range_min=PG_PORT, port_range_max=PG_PORT, remote_group_id=peers.id)
    server, password = _boot(os_conn, "pg-peers", group_name="peers")
    address = _address(server)
    private = os_conn.network.find_network("private", ignore_missing=False)
    member = os_conn.network.create_port(network_id=private.id, security_group_ids=[peers.id])
    stranger = os_conn.network.create_port(network_id=private.id)
    member_address = _loopback(member.fixed_ips[0]["ip_address"])
    assert _wait_until(lambda: _probe(address, member_address)), "a member of the remote group gets in"
    assert not _probe(address, _loopback(stranger.fixed_ips[0]["ip_address"])), "a port outside the group does not"
    assert not _probe(address, "127.0.0.1"), "nor does an address no port has"
    os_conn.network.update_port(member, security_group_ids=[])
    assert not _probe(address, member_address), "leaving the group closes the door"


def test_a_guest_whose_data_disk_is_full_says_so(os_conn, fakecloud):
    _open_group(os_conn)
    volume = os_conn.block_storage.create_volume(name="full", size=1)
    os_conn.block_storage.wait_for_status(volume, "available", **WAIT)
    filler = _store(fakecloud, "volumes", volume.id)
    filler.mkdir(parents=True, exist_ok=True)
    with open(filler / "ballast", "wb") as handle:  # what a guest that filled its disk leaves behind
        os.posix_fallocate(handle.fileno(), 0, 1 << 30)
    server, _password = _boot(os_conn, "pg-full")
    os_conn.compute.create_volume_attachment(server, volume=volume)
    os_conn.block_storage.wait_for_status(volume, "in-use", **WAIT)
    assert _wait_until(lambda: "No space left on device" in _console(os_conn, server))
    assert not _probe(_address(server), "127.0.0.1")
    assert fakecloud.control.volume_usage(volume.id)["used_bytes"] >= 1 << 30
    os_conn.compute.delete_server(server)
    os_conn.compute.wait_for_delete(server, **WAIT)
    os_conn.block_storage.delete_volume(volume)
    os_conn.block_storage.wait_for_delete(volume, **WAIT)
    assert not filler.exists()


def test_once_an_attach_is_reported_no_client_reaches_the_root_disks_database(os_conn, fakecloud):
    """The guest moves its data to a volume attached to a running server: from the moment Cinder reports the
    volume in-use, the database on the root disk takes no new connection, so whatever a client (Hearth
    setting the database up) writes next lands on the volume."""
    _open_group(os_conn)
    server, password = _boot(os_conn, "moving")
    with _connect(_address(server), password) as db:  # the root disk's cluster
        before = db.execute("SHOW data_directory").fetchone()[0]
    volume = _attach_new_volume(os_conn, server)
    with _connect(_address(server), password) as db:  # refused until the volume's cluster accepts
        after = db.execute("SHOW data_directory").fetchone()[0]
    assert after != before and volume.id in after
