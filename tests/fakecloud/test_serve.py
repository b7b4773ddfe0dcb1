"""`fakecloud serve` as a real process: clouds.yaml, answering clients, clean Ctrl-C, state across restarts."""

from __future__ import annotations

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
import requests
import yaml

WAIT = {"interval": 0.05, "wait": 10}
FAKECLOUD = Path(sys.executable).parent / "fakecloud"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _command() -> list[str]:
    return [str(FAKECLOUD)] if FAKECLOUD.exists() else [sys.executable, "-m", "fakecloud.cli"]


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
        image = conn.image.find_image("postgresql-16", ignore_missing=False)
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
        assert again.addresses["private"][0]["addr"].startswith("10.0.0.")
        assert conn.block_storage.get_volume(volume.id).status == "available"
        conn.close()

        admin = _connect(clouds_yaml, "fakecloud-admin")
        everyone = list(admin.compute.servers(all_projects=True))
        assert [s.id for s in everyone] == [server.id]
        admin.close()
        assert _interrupt(proc) == 0
