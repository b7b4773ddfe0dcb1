"""The `openstack` CLI (python-openstackclient) against fakecloud, run as real subprocesses.

Every command authenticates, discovers and calls the services over HTTP exactly as it would against a
real cloud, using a clouds.yaml written for this module's own cloud. Each call costs ~1.5 s of client
start-up, so the flows are chained in a few tests; outcomes are read back through openstacksdk and the
admin inventory, not only from the CLI's own output.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openstack.exceptions
import pytest

from openstack_fakecloud.testing import RunningCloud, running_cloud

pytestmark = pytest.mark.cli

OPENSTACK = Path(sys.executable).parent / "openstack"
WAIT = {"interval": 0.05, "wait": 10}


class CLI:
    def __init__(self, clouds_yaml: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        self.env = {**env, "OS_CLIENT_CONFIG_FILE": str(clouds_yaml), "OS_CLOUD": "fakecloud"}

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(OPENSTACK), *args], env=self.env, capture_output=True, text=True, timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(f"openstack {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
        return proc

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "-f", "json").stdout)


@pytest.fixture(scope="module")
def cli_cloud(tmp_path_factory) -> Iterator[tuple[RunningCloud, CLI]]:
    if not OPENSTACK.exists():
        pytest.skip("python-openstackclient is not installed in this environment")
    with running_cloud() as fc:
        clouds_yaml = fc.write_clouds_yaml(tmp_path_factory.mktemp("cli") / "clouds.yaml")
        yield fc, CLI(clouds_yaml)


@pytest.fixture
def cli(cli_cloud) -> Iterator[tuple[RunningCloud, CLI, Any]]:
    fc, runner = cli_cloud
    fc.control.reset()
    conn = fc.connect()
    yield fc, runner, conn
    conn.close()


def test_server_volume_lifecycle(cli):
    fc, osc, conn = cli

    created = osc.json("server", "create", "--flavor", "m1.small", "--image", "postgresql-16", "--network",
                       "private", "--wait", "db1")
    assert created["status"] == "ACTIVE" and created["name"] == "db1"
    server = conn.compute.get_server(created["id"])
    private = conn.network.get_subnet(conn.network.find_network("private", ignore_missing=False).subnet_ids[0])
    assert ipaddress.ip_address(created["addresses"]["private"][0]) in ipaddress.ip_network(private.cidr)
    assert server.flavor["original_name"] == "m1.small"
    assert server.image["id"] == next(conn.image.images(name="postgresql-16")).id

    (row,) = osc.json("server", "list")
    assert (row["ID"], row["Name"], row["Status"], row["Image"], row["Flavor"]) == (
        server.id, "db1", "ACTIVE", "postgresql-16", "m1.small")
    assert row["Networks"] == {"private": [created["addresses"]["private"][0]]}

    osc.run("server", "resize", "--flavor", "m1.medium", "--wait", "db1")
    resized = conn.compute.get_server(server.id)
    assert resized.status == "VERIFY_RESIZE" and resized.flavor["original_name"] == "m1.medium"
    osc.run("server", "resize", "confirm", "db1")
    confirmed = conn.compute.wait_for_server(resized, **WAIT)
    assert confirmed.status == "ACTIVE" and confirmed.flavor["original_name"] == "m1.medium"

    volume = osc.json("volume", "create", "--size", "1", "vol1")
    assert (volume["name"], volume["size"]) == ("vol1", 1)
    conn.block_storage.wait_for_status(conn.block_storage.get_volume(volume["id"]), "available", **WAIT)
    attached = osc.json("server", "add", "volume", "db1", "vol1")
    assert (attached["Server ID"], attached["Volume ID"], attached["Device"]) == (server.id, volume["id"],
                                                                                 "/dev/vdb")
    disk = conn.block_storage.wait_for_status(conn.block_storage.get_volume(volume["id"]), "in-use", **WAIT)
    assert [a["server_id"] for a in disk.attachments] == [server.id]

    # OSC's SDK-based volume commands negotiate the newest microversion the server advertises (3.70 here),
    # so growing an attached volume works without --os-volume-api-version.
    osc.run("volume", "set", "--size", "2", "vol1")
    disk = conn.block_storage.get_volume(volume["id"])
    assert (disk.size, disk.status) == (2, "in-use")

    # With the cloud capped below 3.42, OSC negotiates 3.27 and refuses on its own, before any extend request.
    fc.control.set_microversions(volume="3.27")
    mark = fc.control.requests(log=False)["seq"]
    refused = osc.run("volume", "set", "--size", "3", "vol1", check=False)
    assert refused.returncode != 0
    assert "3.42 or greater is required to extend in-use volumes" in refused.stderr
    sent = fc.control.requests(since=mark)["requests"]
    assert sent and not [r for r in sent if r["method"] == "POST" and r["path"].endswith("/action")]
    fc.control.set_microversions(volume=fc.cloud.config.volume_max_microversion)  # `conn` negotiated 3.70
    assert conn.block_storage.get_volume(volume["id"]).size == 2
    osc.run("--os-volume-api-version", "3.42", "volume", "set", "--size", "3", "vol1")
    assert conn.block_storage.get_volume(volume["id"]).size == 3

    osc.run("server", "delete", "--wait", "db1")
    with pytest.raises(openstack.exceptions.NotFoundException):
        conn.compute.find_server(server.id, ignore_missing=False)
    disk = conn.block_storage.get_volume(volume["id"])
    assert (disk.status, disk.attachments) == ("available", [])
    inventory = fc.control.inventory("demo")
    assert inventory["servers"] == []
    assert [v["id"] for v in inventory["volumes"]] == [volume["id"]]
    assert not [p for p in inventory.get("ports", []) if p["device_id"] == server.id]


def test_security_group_and_rule(cli):
    fc, osc, conn = cli

    group = osc.json("security", "group", "create", "sg1")
    assert group["name"] == "sg1"
    assert {(r["direction"], r["ethertype"]) for r in group["rules"]} == {("egress", "IPv4"), ("egress", "IPv6")}

    rule = osc.json("security", "group", "rule", "create", "--remote-ip", "10.0.0.0/24", "--dst-port", "5432",
                    "--protocol", "tcp", "sg1")
    assert (rule["security_group_id"], rule["direction"], rule["protocol"]) == (group["id"], "ingress", "tcp")
    assert (rule["port_range_min"], rule["port_range_max"], rule["remote_ip_prefix"]) == (5432, 5432,
                                                                                           "10.0.0.0/24")

    stored = conn.network.get_security_group_rule(rule["id"])
    assert (stored.security_group_id, stored.ether_type, stored.port_range_min) == (group["id"], "IPv4", 5432)
    rules = {r.id for r in conn.network.security_group_rules(security_group_id=group["id"])}
    assert rule["id"] in rules and len(rules) == 3

    duplicate = osc.run("security", "group", "rule", "create", "--remote-ip", "10.0.0.0/24", "--dst-port",
                        "5432", "--protocol", "tcp", "sg1", check=False)
    assert duplicate.returncode != 0
    assert "already exists" in duplicate.stderr
