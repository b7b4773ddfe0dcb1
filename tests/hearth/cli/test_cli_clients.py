"""End to end through real command lines: python-troveclient's `openstack database ...` and the
`hearth` client, as subprocesses against a running `hearth up`. Every outcome is checked twice: in
Hearth's API and in what fakecloud really holds."""

from __future__ import annotations

import json

import pytest
from hearth_cli_support import MANAGEMENT, HearthUp, cloud_resources, ingress_cidrs, only, server_flavor_name, settle

from hearth.client import ApiError, HearthClient

pytestmark = pytest.mark.cli


def assert_gone(hearth_up: HearthUp, api: HearthClient, instance_id: str) -> None:
    with pytest.raises(ApiError) as err:
        api.get_instance(instance_id)
    assert err.value.status == 404
    assert instance_id not in [i["id"] for i in api.list_instances()]
    assert cloud_resources(hearth_up.control, instance_id) == {"servers": [], "volumes": [], "security_groups": []}


def assert_built(hearth_up: HearthUp, instance_id: str, flavor: str, size: int) -> tuple[dict, dict, dict]:
    """The server runs `flavor`, the volume has `size` GB and is attached to it, the group exists."""
    held = cloud_resources(hearth_up.control, instance_id)
    server = only(held["servers"], "server")
    volume = only(held["volumes"], "volume")
    group = only(held["security_groups"], "security group")
    assert server["status"] == "ACTIVE"
    assert server_flavor_name(server) == flavor
    assert volume["size"] == size
    assert volume["status"] == "in-use"
    assert [a["server_id"] for a in volume["attachments"]] == [server["id"]]
    return server, volume, group


def test_openstack_database_lifecycle(hearth_up: HearthUp, api: HearthClient) -> None:
    flavors = json.loads(hearth_up.openstack("database", "flavor", "list", "-f", "json").stdout)
    assert {"m1.small", "m1.medium"} <= {f["Name"] for f in flavors}

    created = json.loads(hearth_up.openstack(
        "database", "instance", "create", "db1", "--flavor", "m1.small", "--size", "1",
        "--datastore", "postgresql", "--datastore-version", "16", "-f", "json").stdout)
    instance_id = created["id"]
    assert created["name"] == "db1"
    settle(api, instance_id)
    instance = api.get_instance(instance_id)
    assert instance["status"] == "ACTIVE"
    assert str(instance["flavor"]["id"]) == "2"
    assert instance["volume"]["size"] == 1
    assert (instance["datastore"]["type"], instance["datastore"]["version"]) == ("postgresql", "16")
    server, volume, group = assert_built(hearth_up, instance_id, "m1.small", 1)

    listed = json.loads(hearth_up.openstack("database", "instance", "list", "-f", "json").stdout)
    row = only([r for r in listed if r["ID"] == instance_id], "listed instance")
    assert (row["Name"], row["Status"], row["Size"]) == ("db1", "ACTIVE", 1)

    shown = json.loads(hearth_up.openstack("database", "instance", "show", "db1", "-f", "json").stdout)
    assert (shown["id"], shown["status"], str(shown["flavor"]), shown["volume"]) == (instance_id, "ACTIVE", "2", 1)
    assert shown["datastore"] == "postgresql"

    hearth_up.openstack("database", "instance", "resize", "flavor", "db1", "m1.medium")
    settle(api, instance_id)
    assert str(api.get_instance(instance_id)["flavor"]["id"]) == "3"
    resized, same_volume, _ = assert_built(hearth_up, instance_id, "m1.medium", 1)
    assert (resized["id"], same_volume["id"]) == (server["id"], volume["id"])

    hearth_up.openstack("database", "instance", "resize", "volume", "db1", "2")
    settle(api, instance_id)
    assert api.get_instance(instance_id)["volume"]["size"] == 2
    _, grown, _ = assert_built(hearth_up, instance_id, "m1.medium", 2)
    assert grown["id"] == volume["id"]

    shrink = hearth_up.openstack("database", "instance", "resize", "volume", "db1", "1", ok=False)
    assert shrink.returncode != 0
    assert "size" in shrink.stderr.lower()
    assert api.get_instance(instance_id)["volume"]["size"] == 2
    assert assert_built(hearth_up, instance_id, "m1.medium", 2)[1]["size"] == 2

    hearth_up.openstack("database", "instance", "update", "db1",
                        "--allowed-cidr", "10.1.0.0/16", "--allowed-cidr", "192.168.5.0/24")
    settle(api, instance_id)
    assert sorted(api.get_instance(instance_id)["access"]["allowed_cidrs"]) == ["10.1.0.0/16", "192.168.5.0/24"]
    _, _, regrouped = assert_built(hearth_up, instance_id, "m1.medium", 2)
    assert regrouped["id"] == group["id"]
    assert ingress_cidrs(regrouped) == {"10.1.0.0/16", "192.168.5.0/24"} | MANAGEMENT

    hearth_up.openstack("database", "instance", "delete", "db1")
    assert settle(api, instance_id, gone_ok=True) is None
    assert_gone(hearth_up, api, instance_id)


def test_hearth_client_lifecycle(hearth_up: HearthUp, api: HearthClient) -> None:
    created = hearth_up.hearth("instance", "create", "db2", "--flavor", "m1.small", "--size", "1",
                               "--datastore", "postgresql", "--version", "16",
                               "--allowed-cidr", "10.0.0.0/24", "--wait")
    instance = only([i for i in api.list_instances() if i["name"] == "db2"], "instance named db2")
    instance_id = instance["id"]
    assert instance_id in created.stdout
    assert "ACTIVE" in created.stdout
    assert api.get_instance(instance_id)["status"] == "ACTIVE"
    _, _, group = assert_built(hearth_up, instance_id, "m1.small", 1)
    assert ingress_cidrs(group) == {"10.0.0.0/24"} | MANAGEMENT

    listed = hearth_up.hearth("instance", "list").stdout
    assert instance_id in listed and "db2" in listed

    shown = hearth_up.hearth("instance", "show", "db2").stdout
    for expected in (instance_id, "ACTIVE", "m1.small", "1 GB", "10.0.0.0/24", "postgresql 16"):
        assert expected in shown

    hearth_up.hearth("instance", "resize-flavor", "db2", "m1.medium", "--wait")
    assert str(api.get_instance(instance_id)["flavor"]["id"]) == "3"
    assert_built(hearth_up, instance_id, "m1.medium", 1)

    hearth_up.hearth("instance", "resize-volume", instance_id, "3", "--wait")
    assert api.get_instance(instance_id)["volume"]["size"] == 3
    assert_built(hearth_up, instance_id, "m1.medium", 3)

    shrink = hearth_up.hearth("instance", "resize-volume", instance_id, "2", ok=False)
    assert shrink.returncode == 1
    assert "error:" in shrink.stderr and "size" in shrink.stderr.lower()
    assert api.get_instance(instance_id)["volume"]["size"] == 3

    unknown = hearth_up.hearth("instance", "create", "db3", "--flavor", "m1.nope", "--size", "1", ok=False)
    assert unknown.returncode == 1
    assert "no flavor 'm1.nope'" in unknown.stderr
    assert "db3" not in [i["name"] for i in api.list_instances()]

    rules = api.security_group(instance_id)["rules"]
    first = only([r for r in rules if r["cidr"] == "10.0.0.0/24"], "rule for 10.0.0.0/24")
    assert first["id"] in hearth_up.hearth("secgroup", "rules", instance_id).stdout

    hearth_up.hearth("secgroup", "add-rule", instance_id, "172.16.0.0/12", "--wait")
    opened = {"10.0.0.0/24", "172.16.0.0/12"} | MANAGEMENT
    assert {r["cidr"] for r in api.security_group(instance_id)["rules"]} == opened
    assert ingress_cidrs(assert_built(hearth_up, instance_id, "m1.medium", 3)[2]) == opened

    hearth_up.hearth("secgroup", "update-rule", first["id"], "10.9.0.0/16", "--wait")
    opened = {"10.9.0.0/16", "172.16.0.0/12"} | MANAGEMENT
    assert ingress_cidrs(assert_built(hearth_up, instance_id, "m1.medium", 3)[2]) == opened

    added = only([r for r in api.security_group(instance_id)["rules"] if r["cidr"] == "172.16.0.0/12"], "rule")
    hearth_up.hearth("secgroup", "delete-rule", added["id"], "--wait")
    assert {r["cidr"] for r in api.security_group(instance_id)["rules"]} == {"10.9.0.0/16"} | MANAGEMENT
    assert ingress_cidrs(assert_built(hearth_up, instance_id, "m1.medium", 3)[2]) == {"10.9.0.0/16"} | MANAGEMENT

    events = api.events(instance_id)
    assert events
    shown_events = hearth_up.hearth("instance", "events", instance_id).stdout
    assert events[0]["message"].split()[0] in shown_events

    deleted = hearth_up.hearth("instance", "delete", "db2", "--wait")
    assert "Deleted db2" in deleted.stdout
    assert_gone(hearth_up, api, instance_id)


def test_openstack_database_makes_a_database_you_connect_to(hearth_up: HearthUp, api: HearthClient) -> None:
    """`openstack database ...` unchanged: a create with a nic, a public address, databases and users, then db,
    user, root and configuration commands; every answer checked in the database itself (psycopg)."""
    import ipaddress

    import psycopg

    network = hearth_up.openstack("network", "show", "private", "-f", "value", "-c", "id").stdout.strip()
    created = json.loads(hearth_up.openstack(
        "database", "instance", "create", "osc-db", "--flavor", "m1.small", "--size", "1",
        "--datastore", "postgresql", "--datastore-version", "16", "--nic", f"net-id={network}", "--is-public",
        "--databases", "orders", "--users", "app:PassW0rd-app", "-f", "json").stdout)
    instance_id = created["id"]
    settle(api, instance_id)
    instance = api.get_instance(instance_id)
    assert (instance["status"], instance["operating_status"]) == ("ACTIVE", "HEALTHY"), instance.get("fault")
    public = next(a["address"] for a in instance["addresses"] if a["type"] == "public")
    assert ipaddress.ip_address(public) in ipaddress.ip_network("127.0.0.0/8")  # loopback only, then dial

    users = json.loads(hearth_up.openstack("database", "user", "list", instance_id, "-f", "json").stdout)
    assert "app" in [u["Name"] for u in users]
    hearth_up.openstack("database", "user", "grant", "access", instance_id, "app", "orders")
    with psycopg.connect(host=public, port=5432, user="app", password="PassW0rd-app", dbname="orders",
                         connect_timeout=5, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (n int)")
        conn.execute("INSERT INTO t VALUES (7)")

    hearth_up.openstack("database", "db", "create", instance_id, "reports")
    dbs = json.loads(hearth_up.openstack("database", "db", "list", instance_id, "-f", "json").stdout)
    assert {"orders", "reports"} <= {d["Name"] for d in dbs}
    root = json.loads(hearth_up.openstack("database", "root", "enable", instance_id, "-f", "json").stdout)
    with psycopg.connect(host=public, port=5432, user="root", password=root["password"], dbname="orders",
                         connect_timeout=5) as conn:
        assert conn.execute("SELECT n FROM t").fetchone() == (7,)
    group = json.loads(hearth_up.openstack(
        "database", "configuration", "create", "osc-tuning", '{"work_mem": 4096}', "--datastore", "postgresql",
        "--datastore-version", "16", "-f", "json").stdout)
    hearth_up.openstack("database", "configuration", "attach", instance_id, group["id"])
    with psycopg.connect(host=public, port=5432, user="root", password=root["password"], dbname="postgres",
                         connect_timeout=5) as conn:
        assert conn.execute("SHOW work_mem").fetchone() == ("4MB",)
    hearth_up.openstack("database", "instance", "delete", instance_id)
    settle(api, instance_id, gone_ok=True)
    assert_gone(hearth_up, api, instance_id)
