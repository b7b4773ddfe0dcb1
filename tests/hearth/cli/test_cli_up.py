"""`hearth up` as a user runs it (stop with Ctrl-C, start again: everything is still there; tenants' databases
in a service project no tenant sees), and the server-side commands that need no running cloud."""

from __future__ import annotations

import json
import signal
import socket
import stat
import time
from pathlib import Path

import pytest
import requests
import yaml
from hearth_cli_support import (
    HEARTH,
    MANAGEMENT,
    START_TIMEOUT,
    Background,
    HearthUp,
    clean_env,
    cloud_resources,
    connect,
    free_port,
    ingress_cidrs,
    only,
    server_flavor_name,
    settle,
)
from openstack import exceptions as os_exceptions
from sqlalchemy import create_engine, inspect
from typer.testing import CliRunner

from hearth.cli import app
from hearth.client import HearthClient
from hearth.engines.common import META_INSTANCE, META_PROJECT
from hearth.up import SERVICE_CLOUD_NAME, SERVICE_PROJECT
from openstack_fakecloud.testing import running_cloud

NOTHING = {"servers": [], "volumes": [], "security_groups": []}


@pytest.mark.cli
def test_up_restart_keeps_instances_and_cloud_resources(tmp_path: Path) -> None:
    home = tmp_path / "home"
    up = HearthUp(home).start()
    try:
        clouds = yaml.safe_load((home / "clouds.yaml").read_text())["clouds"]
        assert clouds["fakecloud"]["auth"]["auth_url"] == f"http://127.0.0.1:{up.cloud_port}/v3"
        banner = up.output()
        assert f"OS_CLIENT_CONFIG_FILE={home / 'clouds.yaml'}" in banner
        assert "hearth instance create db1 --flavor m1.small --size 1 --wait" in banner

        with up.client() as api:
            instance_id = api.create_instance("keep", "m1.small", 1, allowed_cidrs=["10.2.0.0/24"])["id"]
            settle(api, instance_id)
        before = cloud_resources(up.control, instance_id)
        server = only(before["servers"], "server")
        volume = only(before["volumes"], "volume")
        group = only(before["security_groups"], "security group")

        assert up.stop() == 0
        assert "Hearth stopped" in up.output()
        assert (home / "fakecloud-state.json").is_file()
        assert (home / "hearth.sqlite").is_file()

        up.start()
        with up.client() as api:
            instance = api.get_instance(instance_id)
            assert (instance["name"], instance["status"], instance["volume"]["size"]) == ("keep", "ACTIVE", 1)
            assert instance["access"]["allowed_cidrs"] == ["10.2.0.0/24"]
            after = cloud_resources(up.control, instance_id)
            assert only(after["servers"], "server")["id"] == server["id"]
            assert only(after["servers"], "server")["status"] == "ACTIVE"
            kept_volume = only(after["volumes"], "volume")
            assert (kept_volume["id"], kept_volume["status"]) == (volume["id"], "in-use")
            assert [a["server_id"] for a in kept_volume["attachments"]] == [server["id"]]
            kept_group = only(after["security_groups"], "security group")
            assert kept_group["id"] == group["id"]
            assert ingress_cidrs(kept_group) == {"10.2.0.0/24"} | MANAGEMENT

            # The restarted stack carries on: grow the volume, then delete everything.
            api.resize_volume(instance_id, 2)
            settle(api, instance_id)
            assert only(cloud_resources(up.control, instance_id)["volumes"], "volume")["size"] == 2
            api.delete_instance(instance_id)
            assert settle(api, instance_id, gone_ok=True) is None
        assert cloud_resources(up.control, instance_id) == NOTHING
        assert up.stop(signal.SIGTERM) == 0  # SIGTERM shuts down as cleanly as Ctrl-C
    finally:
        up.stop()


def _first_connection(process: Background, port: int) -> socket.socket:
    """Connect to the port in a tight loop from the moment the process starts; the first accepted socket."""
    assert process.process is not None
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=30)
        except ConnectionRefusedError:
            assert process.process.poll() is None, process.output()
            assert time.monotonic() < deadline, f"port {port} did not accept within {START_TIMEOUT} s"
            time.sleep(0.001)


def _raw_get(sock: socket.socket, path: str) -> tuple[int, dict]:
    """One HTTP/1.1 GET on an already connected socket: (status, JSON body)."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


@pytest.mark.cli
def test_up_accepts_connections_only_once_it_can_answer(tmp_path: Path) -> None:
    """A script that waits for the API port and then reads clouds.yaml, or sends a request, never races
    `hearth up`: the first connection the port accepts finds clouds.yaml written and gets a real answer."""
    home = tmp_path / "home"
    up = HearthUp(home)
    Background.start(up)  # no waiting: the test does its own, as impatiently as it can
    try:
        sock = _first_connection(up, up.port)
        with sock:
            # checked before sending anything: accepting the connection already promises this
            clouds = yaml.safe_load(up.clouds_yaml.read_text())["clouds"]
            assert clouds[SERVICE_CLOUD_NAME]["auth"]["auth_url"] == f"http://127.0.0.1:{up.cloud_port}/v3"
            status, ready = _raw_get(sock, "/readyz")
        assert (status, ready["status"]) == (200, "ready"), ready
        assert ready["checks"] == {"database": "ok", "taskmanager": "running"}
        secrets = {entry["auth"]["password"] for entry in clouds.values()} | {str(home)}
        assert not any(secret in json.dumps(ready) for secret in secrets)  # no passwords, no paths

        with socket.create_connection(("127.0.0.1", up.port), timeout=30) as again:
            status, versions = _raw_get(again, "/")
        assert status == 200
        assert versions["versions"][0]["id"] == "v1.0"  # Trove's version document, unchanged
        assert requests.get(f"http://127.0.0.1:{up.port}/healthz", timeout=10).json() == {"status": "ok"}
        with up.client() as api:  # and clouds.yaml is the one to use: the API works through it at once
            assert api.list_instances() == []
        assert up.stop() == 0
    finally:
        up.stop()


@pytest.mark.cli
def test_up_cloud_config_delays_are_the_ones_in_force(tmp_path: Path) -> None:
    """`hearth up --cloud-config` with a server_boot delay boots servers in that time, not in zero (the
    profile's); the banner names the delays in force. (--profile filling the rest: tests/fakecloud/test_serve.)"""
    config = tmp_path / "cloud.yaml"
    config.write_text(yaml.safe_dump({"delays": {"server_boot": 1.5}, "quotas": {"instances": 7}}))
    up = HearthUp(tmp_path / "home")
    profile = up.args.index("--profile")
    del up.args[profile:profile + 2]  # no --profile: the file alone decides
    up.args += ["--cloud-config", str(config)]
    up.start()
    try:
        assert "server_boot 1.5 s" in up.output()
        assert "profile zero" not in up.output()

        # On fakecloud's clock, stopped: a server is still building 1.4 s in and active at 1.6 s.
        demo = connect(up.clouds_yaml, "fakecloud")
        image = next(demo.image.images(name="cirros-0.6.2"))
        up.control.freeze()
        try:
            server = demo.compute.create_server(name="timed", image_id=image.id, flavor_id="1", networks="auto")
            up.control.advance(1.4)
            assert demo.compute.get_server(server.id).status == "BUILD"
            up.control.advance(0.2)
            assert demo.compute.get_server(server.id).status == "ACTIVE"
        finally:
            up.control.freeze(False)
        demo.compute.delete_server(server.id)
        assert demo.compute.get_limits().absolute.instances == 7  # the file's quotas apply as before

        # Through Hearth, on the running clock: at least the file's boot time (zero delays take ~0.1 s).
        with up.client() as api:
            started = time.monotonic()
            instance_id = api.create_instance("timed", "m1.tiny", 1)["id"]
            settle(api, instance_id)
            assert time.monotonic() - started >= 1.5
            assert api.get_instance(instance_id)["status"] == "ACTIVE"
    finally:
        up.stop()


@pytest.mark.cli
def test_up_keeps_databases_in_a_service_project_no_tenant_sees(tmp_path: Path) -> None:
    """Users' clouds.yaml entry stays on demo; Hearth's own entry is a service user in `service`. A demo
    user's Nova, Cinder and Neutron neither list nor reach the database's server, volume and group."""
    up = HearthUp(tmp_path / "home").start()
    try:
        clouds = yaml.safe_load(up.clouds_yaml.read_text())["clouds"]
        assert clouds["fakecloud"]["auth"]["project_name"] == "demo"
        assert clouds[SERVICE_CLOUD_NAME]["auth"]["project_name"] == SERVICE_PROJECT
        assert stat.S_IMODE(up.clouds_yaml.stat().st_mode) == 0o600  # it holds the service user's password
        assert f"in project '{SERVICE_PROJECT}'" in up.output()
        demo = connect(up.clouds_yaml, "fakecloud")
        service = connect(up.clouds_yaml, SERVICE_CLOUD_NAME)
        assert service.current_project_id != demo.current_project_id

        with up.client() as api:
            instance_id = api.create_instance("isolated", "m1.tiny", 1, allowed_cidrs=["10.3.0.0/24"])["id"]
            settle(api, instance_id)
            assert api.get_instance(instance_id)["status"] == "ACTIVE"

            found = cloud_resources(up.control, instance_id)
            server = only(found["servers"], "server")
            volume = only(found["volumes"], "volume")
            group = only(found["security_groups"], "security group")
            assert cloud_resources(up.control, instance_id, "demo") == NOTHING
            # the service project holds them, tagged with the tenant's project
            tags = {META_INSTANCE: instance_id, META_PROJECT: demo.current_project_id}
            assert service.compute.get_server(server["id"]).metadata.items() >= tags.items()
            assert service.block_storage.get_volume(volume["id"]).metadata.items() >= tags.items()
            live_group = service.network.get_security_group(group["id"]).to_dict()
            assert ingress_cidrs(live_group) == {"10.3.0.0/24"} | MANAGEMENT

            # the tenant sees none of them, and cannot reach them by id either
            assert [s.name for s in demo.compute.servers() if s.name.startswith("hearth-")] == []
            assert [v.name for v in demo.block_storage.volumes() if v.name.startswith("hearth-")] == []
            assert [g.name for g in demo.network.security_groups() if g.name.startswith("hearth-")] == []
            for attempt in (lambda: demo.compute.get_server(server["id"]),
                            lambda: demo.compute.delete_server(server["id"], ignore_missing=False),
                            lambda: demo.block_storage.get_volume(volume["id"]),
                            lambda: demo.block_storage.delete_volume(volume["id"], ignore_missing=False),
                            lambda: demo.network.get_security_group(group["id"]),
                            lambda: demo.network.delete_security_group(group["id"], ignore_missing=False)):
                with pytest.raises(os_exceptions.NotFoundException):
                    attempt()
            assert api.get_instance(instance_id)["status"] == "ACTIVE"
            assert service.compute.get_server(server["id"]).status == "ACTIVE"

            api.delete_instance(instance_id)
            assert settle(api, instance_id, gone_ok=True) is None
        assert cloud_resources(up.control, instance_id) == NOTHING
    finally:
        up.stop()


@pytest.mark.cli
def test_up_on_a_home_from_before_the_service_project_keeps_its_instances_in_demo(tmp_path: Path) -> None:
    """A home whose instances were built in demo (clouds.yaml without Hearth's own entry) keeps using demo
    while they live, so Hearth does not lose them; once they are gone, the next start moves to `service`."""
    home = tmp_path / "home"
    up = HearthUp(home)
    db = f"sqlite:///{home / 'hearth.sqlite'}"
    # Such a home, made the way the earlier `hearth up` did: fakecloud with its state under home, Hearth on demo.
    with running_cloud(port=up.cloud_port, state_file=home / "fakecloud-state.json") as cloud:
        clouds_yaml = cloud.write_clouds_yaml(home / "clouds.yaml")
        port = free_port()
        cloud.control.register_service("database", "hearth", f"http://127.0.0.1:{port}/v1.0/{{project_id}}")
        serve = Background([HEARTH, "serve", "--cloud", "fakecloud", "--db", db, "--clouds-yaml", str(clouds_yaml),
                            "--port", str(port)], clean_env(HEARTH_HOME=str(home)), tmp_path / "serve.log")
        try:
            serve.start(f"http://127.0.0.1:{port}/")
            with HearthClient("fakecloud", clouds_yaml) as client:
                instance_id = client.create_instance("old", "m1.tiny", 1)["id"]
                settle(client, instance_id)
            assert serve.stop(signal.SIGTERM) == 0
        finally:
            serve.stop()

    up.start()
    try:
        assert "predates Hearth's service project" in up.output()
        assert SERVICE_CLOUD_NAME not in yaml.safe_load(up.clouds_yaml.read_text())["clouds"]
        with up.client() as api:
            assert api.get_instance(instance_id)["status"] == "ACTIVE"
            only(cloud_resources(up.control, instance_id, "demo")["servers"], "server")
            api.delete_instance(instance_id)
            assert settle(api, instance_id, gone_ok=True) is None
        assert cloud_resources(up.control, instance_id, "demo") == NOTHING

        assert up.stop() == 0
        up.start()
        assert SERVICE_CLOUD_NAME in yaml.safe_load(up.clouds_yaml.read_text())["clouds"]
        assert f"in project '{SERVICE_PROJECT}'" in up.output()
    finally:
        up.stop()


@pytest.mark.cli
def test_serve_and_taskmanager_as_separate_processes(tmp_path: Path, db_url: str) -> None:
    """`hearth serve --no-taskmanager` only records; a `hearth taskmanager` process does the work."""
    with running_cloud() as cloud:
        clouds_yaml = cloud.write_clouds_yaml(tmp_path / "clouds.yaml")
        port = free_port()
        cloud.control.register_service("database", "hearth", f"http://127.0.0.1:{port}/v1.0/{{project_id}}")
        env = clean_env(HEARTH_HOME=str(tmp_path))
        common = ["--cloud", "fakecloud", "--db", db_url, "--clouds-yaml", str(clouds_yaml)]
        api = Background([HEARTH, "serve", *common, "--port", str(port), "--no-taskmanager"], env,
                         tmp_path / "serve.log")
        worker = Background([HEARTH, "taskmanager", *common], env, tmp_path / "taskmanager.log")
        try:
            api.start(f"http://127.0.0.1:{port}/")
            worker.start()
            with HearthClient("fakecloud", clouds_yaml) as client:
                instance_id = client.create_instance("split", "m1.tiny", 1)["id"]
                settle(client, instance_id)
                assert client.get_instance(instance_id)["status"] == "ACTIVE"
                held = cloud_resources(cloud.control, instance_id, "demo")  # Hearth runs as demo here
                assert server_flavor_name(only(held["servers"], "server")) == "m1.tiny"
                assert only(held["volumes"], "volume")["status"] == "in-use"
                client.delete_instance(instance_id)
                assert settle(client, instance_id, gone_ok=True) is None
            assert cloud_resources(cloud.control, instance_id, "demo") == NOTHING
            ready = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
            assert ready.status_code == 200
            assert ready.json()["checks"] == {"database": "ok", "taskmanager": "not in this process"}
            assert api.stop(signal.SIGTERM) == 0
            assert worker.stop(signal.SIGTERM) == 0
            assert "without task manager" in api.output()
        finally:
            api.stop()
            worker.stop()


def test_db_upgrade_creates_the_schema_and_is_repeatable(tmp_path: Path, db_url: str) -> None:
    # SQLite: in a directory that does not exist yet; PostgreSQL: the session's database, already migrated.
    url = f"sqlite:///{tmp_path / 'nested' / 'hearth.sqlite'}" if db_url.startswith("sqlite") else db_url
    runner = CliRunner()
    for _ in range(2):
        result = runner.invoke(app, ["db", "upgrade", "--db", url])
        assert result.exit_code == 0, result.output
        assert "newest schema revision" in result.output
    engine = create_engine(url)
    try:
        assert {"instances", "operations", "events", "security_group_rules"} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_client_says_when_the_cloud_has_no_database_service(tmp_path: Path) -> None:
    with running_cloud() as cloud:
        cloud.write_clouds_yaml(tmp_path / "clouds.yaml")
        result = CliRunner().invoke(app, ["instance", "list", "--cloud", "fakecloud"],
                                    env={"HEARTH_HOME": str(tmp_path), "OS_CLOUD": None, "HEARTH_CONFIG": None})
    assert result.exit_code == 1
    assert "has no 'database' service in its catalog" in result.output


def test_client_says_when_the_cloud_is_unknown(tmp_path: Path) -> None:
    (tmp_path / "clouds.yaml").write_text("clouds: {}\n")
    result = CliRunner().invoke(app, ["instance", "list", "--cloud", "nowhere"],
                                env={"HEARTH_HOME": str(tmp_path), "HEARTH_CONFIG": None})
    assert result.exit_code == 1
    assert "cloud 'nowhere' not found" in result.output


def test_bad_settings_file_is_reported(tmp_path: Path) -> None:
    config = tmp_path / "hearth.toml"
    config.write_text('workers = 0\n')
    result = CliRunner().invoke(app, ["--config", str(config), "db", "upgrade", "--db",
                                      f"sqlite:///{tmp_path / 'x.sqlite'}"], env={"HEARTH_CONFIG": None})
    assert result.exit_code == 1
    assert "workers must be at least 1" in result.output
