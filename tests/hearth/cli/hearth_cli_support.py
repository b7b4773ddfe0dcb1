"""Support for the CLI tests: a real `hearth up` in a subprocess (free ports, a temporary HEARTH_HOME),
the `openstack` and `hearth` command lines run against it, and readers of the API and fakecloud's inventory."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import openstack.config
import requests
from openstack.connection import Connection

from hearth.client import HearthClient
from hearth.up import SERVICE_PROJECT
from openstack_fakecloud.control import CloudControl

BIN = Path(sys.executable).parent
HEARTH = str(BIN / "hearth")
OPENSTACK = str(BIN / "openstack")
START_TIMEOUT = 90.0  # seconds for `hearth up` to answer; a deadline for a stuck start, not a speed target


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without the caller's OpenStack/Hearth settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "HEARTH_"))}
    env.update(COLUMNS="250", NO_COLOR="1", PYTHONUNBUFFERED="1", **extra)
    return env


class Background:
    """A long-running command (server) with its output in a log file; stopped by a signal."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args = args
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, ready_url: str | None = None) -> Background:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        if ready_url:
            self.wait_until_answering(ready_url)
        return self

    def wait_until_answering(self, url: str) -> None:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.args[:2]} exited with {self.process.returncode}:\n{self.output()}")
            try:
                requests.get(url, timeout=5)
                return
            except requests.RequestException:  # not listening yet, or busy starting: ask again
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.args[:2]} did not answer within {START_TIMEOUT} s:\n{self.output()}")
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGINT) -> int | None:
        """Ctrl-C (or another signal), as a user would; returns the exit status (None: never started)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class HearthUp(Background):
    """One `hearth up` process, restartable on the same home and ports."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        self.cloud_port = free_port()
        super().__init__(
            [HEARTH, "up", "--port", str(self.port), "--cloud-port", str(self.cloud_port),
             "--home", str(home), "--profile", "zero"],
            clean_env(HEARTH_HOME=str(home), OS_CLIENT_CONFIG_FILE=str(home / "clouds.yaml")),
            home.parent / f"{home.name}-hearth-up.log",
        )

    @property
    def clouds_yaml(self) -> Path:
        return self.home / "clouds.yaml"

    @property
    def control(self) -> CloudControl:
        return CloudControl(f"http://127.0.0.1:{self.cloud_port}")

    def start(self, ready_url: str | None = None) -> HearthUp:
        super().start(ready_url or f"http://127.0.0.1:{self.port}/")
        return self

    def run(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(args, env=self.env, capture_output=True, text=True, timeout=300)
        if ok and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} exited {result.returncode}\n"
                                 f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}")
        return result

    def openstack(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(OPENSTACK, "--os-cloud", "fakecloud", *args, ok=ok)

    def hearth(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(HEARTH, *args, ok=ok)

    def client(self) -> HearthClient:
        return HearthClient("fakecloud", self.clouds_yaml)


#: Hearth's own way into every managed database (the management_cidrs setting's default): a rule in each
#: instance's group beside the user's allowed CIDRs.
MANAGEMENT = {"127.0.0.1/32"}


# reading the cloud ----------------------------------------------------------------------------
def connect(clouds_yaml: Path, cloud: str) -> Connection:
    """An openstacksdk Connection from a clouds.yaml entry, as a user (or Hearth) makes it."""
    config = openstack.config.OpenStackConfig(config_files=[str(clouds_yaml)], load_envvars=False)
    return Connection(config=config.get_one(cloud=cloud))


def cloud_resources(control: CloudControl, instance_id: str, project: str = SERVICE_PROJECT) -> dict[str, Any]:
    """What one project holds for a Hearth instance (by the names Hearth gives its resources): `hearth up`
    keeps every tenant's in its service project; pass "demo" where Hearth runs as the demo user."""
    inventory = control.inventory(project)
    stem = f"hearth-{instance_id}"
    return {
        "servers": [s for s in inventory.get("servers", [])
                    if s.get("name") == stem or str(s.get("name")).startswith(f"{stem}-")],
        "volumes": [v for v in inventory.get("volumes", []) if v.get("name") == f"{stem}-data"],
        "security_groups": [g for g in inventory.get("security_groups", []) if g.get("name") == stem],
    }


def only(items: list[dict[str, Any]], what: str) -> dict[str, Any]:
    assert len(items) == 1, f"expected exactly one {what}, found {len(items)}: {items}"
    return items[0]


def server_flavor_name(server: dict[str, Any]) -> str | None:
    flavor = server.get("flavor") or {}
    return flavor.get("original_name") or flavor.get("name")


def ingress_cidrs(group: dict[str, Any], port: int = 5432) -> set[str]:
    return {
        r.get("remote_ip_prefix")
        for r in group.get("security_group_rules") or group.get("rules") or []
        if r.get("direction") == "ingress" and r.get("port_range_min") == port
    }


def settle(client: HearthClient, instance_id: str, gone_ok: bool = False) -> dict[str, Any] | None:
    """Wait (through the API) for the instance's current operation to end; fail on a failed one."""
    return client.wait(instance_id, gone_ok=gone_ok, timeout=120)
