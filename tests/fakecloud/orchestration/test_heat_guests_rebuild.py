"""A database stack on the PostgreSQL guest image: Heat's admin_pass is the guest's superuser password, and an
image change rebuilds the server in place, the cluster on the attached data volume surviving it. A real
PostgreSQL client (psycopg) dials the port's fixed IP (a loopback address), as tests/fakecloud/test_guests.py
does. Guests bind 127.x.y.z:5432: do not run this concurrently with another guest test run."""

from __future__ import annotations

import copy
import ipaddress
import time

import psycopg
from test_heat_database_stack import a_free_ip, create_stack, database_template, outputs, routed_private, wait

GUEST_IMAGE = "postgresql-16-guest"
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


def _connect(address: str, password: str, timeout: float = 60.0) -> psycopg.Connection:
    if ipaddress.ip_address(address) not in LOOPBACK:
        raise AssertionError(f"refusing to dial {address}: tests only connect to loopback addresses")
    deadline = time.monotonic() + timeout
    while True:
        try:
            return psycopg.connect(host=address, port=5432, user="postgres", password=password, dbname="postgres",
                                   connect_timeout=3, autocommit=True)
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_guests_heat_admin_pass_and_rebuild_keep_the_cluster_on_the_volume(fakecloud, os_conn):
    private, subnet = routed_private(os_conn)
    ip = a_free_ip(subnet)
    template = database_template(private.id, subnet.id, ip, public=False, cidr="127.0.0.0/8")
    stack = create_stack(os_conn, template, flavor="m1.tiny", image=GUEST_IMAGE, volume_size=1,
                         admin_pass="first-Pass1")
    out = outputs(os_conn, stack)
    with _connect(ip, "first-Pass1") as db:
        db.execute("CREATE TABLE notes (id serial PRIMARY KEY, note text)")
        db.execute("INSERT INTO notes (note) VALUES ('before rebuild')")
    disks = fakecloud.cloud.guests.disks
    assert (disks.root / "volumes" / out["volume_id"] / "pgdata" / "PG_VERSION").exists(), "cluster on the volume"

    # the same image by id: a changed `image` property all the same, so Heat rebuilds (REBUILD is the default)
    image_id = next(os_conn.image.images(name=GUEST_IMAGE)).id
    os_conn.orchestration.update_stack(stack.id, template=copy.deepcopy(template), parameters={
        "flavor": "m1.tiny", "image": image_id, "volume_size": 1, "admin_pass": "second-Pass2"})
    wait(os_conn, stack, "UPDATE_COMPLETE")
    assert outputs(os_conn, stack)["server_id"] == out["server_id"]
    assert "rebuild" in [a.action for a in os_conn.compute.server_actions(out["server_id"])]
    with _connect(ip, "second-Pass2") as db:
        assert db.execute("SELECT note FROM notes").fetchall() == [("before rebuild",)]

    os_conn.orchestration.delete_stack(stack)
    os_conn.orchestration.wait_for_delete(stack, interval=0.05, wait=30)
