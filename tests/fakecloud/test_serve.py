"""`fakecloud serve` as a real process: clouds.yaml, answering clients, clean Ctrl-C, state across restarts,
readiness, and which delays are in force."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import openstack
import openstack.config
import pytest
import requests
import yaml

from openstack_fakecloud.cli import delays_in_force
from openstack_fakecloud.config import PROFILES, Delays, load_config

WAIT = {"interval": 0.05, "wait": 10}
FAKECLOUD = Path(sys.executable).parent / "fakecloud"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _command() -> list[str]:
    return [str(FAKECLOUD)] if FAKECLOUD.exists() else [sys.executable, "-m", "openstack_fakecloud.cli"]


@contextmanager
def serve(tmp_path: Path, state: Path) -> Iterator[tuple[subprocess.Popen, str]]:
    """Start `fakecloud serve`, wait until it answers, and always make sure it is gone afterwards."""
    port = _free_port()
    log = open(tmp_path / f"serve-{port}.log", "w")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(
        [*_command(), "serve", "--port", str(port), "--clouds-yaml", str(tmp_path / "clouds.yaml"),
         "--state", str(state)],
        stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, NO_COLOR="1", COLUMNS="200"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (tmp_path / f"serve-{port}.log").read_text()
            try:
                if requests.get(url + "/_fakecloud/health", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "fakecloud serve did not answer within 30 s"
            time.sleep(0.05)
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


def _interrupt(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGINT)
    return proc.wait(30)


def _connect(clouds_yaml: Path, cloud: str) -> openstack.connection.Connection:
    config = openstack.config.OpenStackConfig(config_files=[str(clouds_yaml)], load_envvars=False)
    return openstack.connection.Connection(config=config.get_one(cloud=cloud))


def test_serve_writes_clouds_yaml_answers_and_keeps_state_across_restarts(tmp_path):
    clouds_yaml = tmp_path / "clouds.yaml"
    mine = {"auth": {"auth_url": "https://keystone.example.com/v3", "username": "me", "password": "secret",
                     "project_name": "prod"}, "region_name": "Elsewhere"}
    clouds_yaml.write_text(yaml.safe_dump({"clouds": {"mycloud": mine}}))
    state = tmp_path / "state.json"

    with serve(tmp_path, state) as (proc, url):
        clouds = yaml.safe_load(clouds_yaml.read_text())["clouds"]
        assert clouds["mycloud"] == mine  # an existing cloud is kept as it was
        assert clouds["fakecloud"]["auth"]["auth_url"] == url + "/v3"
        assert clouds["fakecloud"]["auth"]["project_name"] == "demo"
        assert clouds["fakecloud-admin"]["auth"]["project_name"] == "admin"

        conn = _connect(clouds_yaml, "fakecloud")
        image = next(conn.image.images(name="postgresql-16"))
        server = conn.compute.create_server(name="db1", image_id=image.id, flavor_id="2", networks="auto")
        server = conn.compute.wait_for_server(server, **WAIT)
        volume = conn.block_storage.create_volume(name="pgdata", size=2)
        conn.block_storage.wait_for_status(volume, "available", **WAIT)
        conn.close()
        assert _interrupt(proc) == 0
    output = next(tmp_path.glob("serve-*.log")).read_text()
    assert "listening on" in output and "state saved" in output
    assert "Traceback" not in output
    assert state.exists()

    with serve(tmp_path, state) as (proc, url):
        assert yaml.safe_load(clouds_yaml.read_text())["clouds"]["fakecloud"]["auth"]["auth_url"] == url + "/v3"
        conn = _connect(clouds_yaml, "fakecloud")
        again = conn.compute.get_server(server.id)
        assert (again.name, again.status, again.flavor["original_name"]) == ("db1", "ACTIVE", "m1.small")
        assert again.addresses == server.addresses
        assert conn.block_storage.get_volume(volume.id).status == "available"
        conn.close()

        admin = _connect(clouds_yaml, "fakecloud-admin")
        everyone = list(admin.compute.servers(all_projects=True))
        assert [s.id for s in everyone] == [server.id]
        admin.close()
        assert _interrupt(proc) == 0


def test_serve_accepts_connections_only_once_ready_and_the_config_delays_win(tmp_path):
    """The first connection `fakecloud serve` accepts finds clouds.yaml written and gets an answer; the delays
    the --config file names are in force, --profile filling only the rest."""
    config = tmp_path / "cloud.yaml"
    config.write_text(yaml.safe_dump({"delays": {"server_boot": 1.5}}))
    clouds_yaml = tmp_path / "clouds.yaml"
    port = _free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [*_command(), "serve", "--port", str(port), "--clouds-yaml", str(clouds_yaml), "--config", str(config),
             "--profile", "realistic"],
            stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ, NO_COLOR="1", COLUMNS="200"),
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=10)
                break
            except ConnectionRefusedError:
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "fakecloud serve did not accept within 30 s"
                time.sleep(0.001)
        with sock:
            clouds = yaml.safe_load(clouds_yaml.read_text())["clouds"]  # before any request: already written
            assert clouds["fakecloud"]["auth"]["auth_url"] == f"http://127.0.0.1:{port}/v3"
            sock.sendall(b"GET /_fakecloud/ready HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.split()[1] == b"200" and json.loads(body) == {"status": "ready"}

        url = f"http://127.0.0.1:{port}"
        delays = requests.get(url + "/_fakecloud/delays", timeout=10).json()["delays"]
        realistic = PROFILES["realistic"]
        assert delays["server_boot"] == 1.5  # the file's, not the profile's 3.0
        assert delays["volume_create"] == realistic.volume_create  # the profile's, where the file is silent
        assert requests.get(url + "/_fakecloud/health", timeout=10).json()["status"] == "ok"  # liveness
        assert _interrupt(proc) == 0
        assert "server_boot 1.5 s" in log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_delays_in_force_name_by_name(tmp_path):
    """File-named delays win; then --profile, else the file's own `profile`, else zero fills the rest."""
    yaml_file = tmp_path / "cloud.yaml"
    yaml_file.write_text(yaml.safe_dump({"profile": "realistic", "delays": {"server_boot": 1.5}}))
    toml_file = tmp_path / "cloud.toml"
    toml_file.write_text("[delays]\nvolume_attach = 0.25\n")
    realistic = PROFILES["realistic"]

    from_yaml = load_config(yaml_file)
    assert delays_in_force(from_yaml, yaml_file, None) == realistic.model_copy(update={"server_boot": 1.5})
    assert delays_in_force(from_yaml, yaml_file, "zero") == Delays(server_boot=1.5)
    from_toml = load_config(toml_file)
    assert delays_in_force(from_toml, toml_file, None) == Delays(volume_attach=0.25)
    assert delays_in_force(from_toml, toml_file, "realistic") == realistic.model_copy(update={"volume_attach": 0.25})
    assert delays_in_force(load_config(None), None, "realistic") == realistic
    with pytest.raises(ValueError, match="unknown profile"):
        delays_in_force(load_config(None), None, "glacial")
