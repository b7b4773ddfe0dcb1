"""`openstack stack ...` (python-heatclient) as real subprocesses against an in-process fakecloud.

Each command costs ~1.5 s of client start-up, so the whole lifecycle is one chained test. `--wait`
polls events every 5 s; the stack-level event fakecloud writes for each finished action lets it stop
at its first poll. Outcomes are checked on the real servers, volumes and rules through openstacksdk.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openstack.exceptions
import pytest
import yaml

from openstack_fakecloud.testing import RunningCloud, running_cloud

pytestmark = pytest.mark.cli

OPENSTACK = Path(sys.executable).parent / "openstack"


def hot(flavor: str) -> dict[str, Any]:
    return {
        "heat_template_version": "2021-04-16",
        "resources": {
            "sg": {"type": "OS::Neutron::SecurityGroup", "properties": {
                "rules": [{"protocol": "tcp", "port_range_min": 22, "port_range_max": 22,
                           "remote_ip_prefix": "10.0.0.0/8"}]}},
            "server": {"type": "OS::Nova::Server", "properties": {
                "flavor": flavor, "image": "cirros-0.6.2", "security_groups": [{"get_resource": "sg"}]}},
            "vol": {"type": "OS::Cinder::Volume", "properties": {"size": 1}},
            "att": {"type": "OS::Cinder::VolumeAttachment", "properties": {
                "instance_uuid": {"get_resource": "server"}, "volume_id": {"get_resource": "vol"}}},
        },
        "outputs": {"server_id": {"value": {"get_resource": "server"}, "description": "the server"}},
    }


class CLI:
    def __init__(self, clouds_yaml: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        self.env = {**env, "OS_CLIENT_CONFIG_FILE": str(clouds_yaml), "OS_CLOUD": "fakecloud"}

    def run(self, *args: str) -> str:
        proc = subprocess.run([str(OPENSTACK), *args], env=self.env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"openstack {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}"
        return proc.stdout

    def json(self, *args: str) -> Any:
        """The command's JSON; `--wait` prints the events it saw first, so read from the JSON's start."""
        out = self.run(*args, "-f", "json")
        starts = [i for i, line in enumerate(out.splitlines()) if line.startswith(("{", "["))]
        return json.loads("\n".join(out.splitlines()[starts[0]:]))


@pytest.fixture(scope="module")
def cloud(tmp_path_factory) -> Iterator[tuple[RunningCloud, CLI, Path]]:
    if not OPENSTACK.exists():
        pytest.skip("python-openstackclient is not installed in this environment")
    work = tmp_path_factory.mktemp("heat-cli")
    with running_cloud() as fc:
        fc.control.set_delays(profile="zero")
        yield fc, CLI(fc.write_clouds_yaml(work / "clouds.yaml")), work


def test_stack_lifecycle_through_the_cli(cloud):
    fc, cli, work = cloud
    conn = fc.connect()
    (work / "v1.yaml").write_text(yaml.safe_dump(hot("m1.tiny")))
    (work / "v2.yaml").write_text(yaml.safe_dump(hot("m1.small")))

    created = cli.json("stack", "create", "--wait", "-t", str(work / "v1.yaml"), "app")
    assert created["stack_status"] == "CREATE_COMPLETE"
    resources = {r["resource_name"]: r for r in cli.json("stack", "resource", "list", "app")}
    assert {r["resource_status"] for r in resources.values()} == {"CREATE_COMPLETE"}
    ids = {name: r["physical_resource_id"] for name, r in resources.items()}
    server = conn.compute.get_server(ids["server"])
    assert server.status == "ACTIVE" and server.flavor["original_name"] == "m1.tiny"
    volume = conn.block_storage.get_volume(ids["vol"])
    assert volume.status == "in-use" and [a["server_id"] for a in volume.attachments] == [server.id]
    rules = {(r.protocol, r.port_range_min, r.remote_ip_prefix)
             for r in conn.network.security_group_rules(security_group_id=ids["sg"])}
    assert ("tcp", 22, "10.0.0.0/8") in rules

    cli.run("stack", "update", "--wait", "-t", str(work / "v2.yaml"), "app")
    assert conn.orchestration.find_stack("app", ignore_missing=False).status == "UPDATE_COMPLETE"
    assert conn.compute.get_server(ids["server"]).flavor["original_name"] == "m1.small"

    events = cli.json("stack", "event", "list", "app")
    stack_events = [e["resource_status"] for e in events if e["resource_name"] == "app"]
    assert stack_events == ["CREATE_IN_PROGRESS", "CREATE_COMPLETE", "UPDATE_IN_PROGRESS", "UPDATE_COMPLETE"]
    output = cli.json("stack", "output", "show", "app", "server_id")
    assert output["output_value"] == ids["server"]

    abandon_file = work / "abandon.json"
    cli.run("stack", "abandon", "app", "--output-file", str(abandon_file))
    data = json.loads(abandon_file.read_text())
    assert {name: r["resource_id"] for name, r in data["resources"].items()} == ids
    with pytest.raises(openstack.exceptions.NotFoundException):
        conn.orchestration.find_stack("app", ignore_missing=False)
    assert conn.compute.get_server(ids["server"]).status == "ACTIVE"  # abandoned, not deleted

    adopted = cli.run("stack", "adopt", "--wait", "--adopt-file", str(abandon_file), "again")
    assert "ADOPT_COMPLETE" in adopted
    stack_id = fc.cloud.orchestration.lookup(conn.current_project_id, "again").id
    listing = conn.orchestration.get(f"/stacks/again/{stack_id}/resources").json()["resources"]
    assert {r["resource_name"]: r["physical_resource_id"] for r in listing} == ids

    cli.run("stack", "delete", "--yes", "--wait", "again")
    assert list(conn.compute.servers()) == []
    assert list(conn.block_storage.volumes()) == []
    with pytest.raises(openstack.exceptions.NotFoundException):
        conn.network.find_security_group(ids["sg"], ignore_missing=False)
    conn.close()
