"""Upstream OpenStack Heat as fakecloud's orchestration service: install it, start it, stop it.

    heat = UpstreamHeat()                         # binds Heat's port now, so the catalog can name it
    config = heat.cloud_config(CloudConfig())     # + the `heat` service user, catalog -> upstream Heat
    with running_cloud(config) as cloud, heat.running(cloud.url):
        ...                                       # orchestration in the catalog is upstream Heat

Heat lives in its own virtualenv (it pins ~140 packages that must not meet Hearth's), installed once
per machine and reused while the pin is unchanged. It runs as one child process (launcher.py) bound to
127.0.0.1, with its SQLite database, config and log in a private work directory.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

import requests

from openstack_fakecloud.config import CloudConfig, UserSpec
from openstack_fakecloud.control import CloudControl
from openstack_fakecloud.server import bind
from openstack_fakecloud.upstream_heat.heatconf import write_config

HEAT_REQUIREMENT = "openstack-heat==27.0.1"
SERVICE_USER = "heat"
SERVICE_PROJECT = "service"
LAUNCHER = Path(__file__).with_name("launcher.py")


class HeatInstallError(RuntimeError):
    """pip could not install upstream Heat (usually: no network to PyPI)."""


class HeatStartError(RuntimeError):
    """Heat's process exited or did not answer in time; the message carries its log's tail."""


def default_venv() -> Path:
    """`FAKECLOUD_HEAT_VENV`, else `.heat-venv` in the current directory (the repository in `make test`)."""
    return Path(os.environ.get("FAKECLOUD_HEAT_VENV") or ".heat-venv").resolve()


def ensure_installed(venv: Path | None = None, requirement: str = HEAT_REQUIREMENT) -> Path:
    """Create the virtualenv and pip-install the pinned Heat unless this exact pin is already there."""
    venv = venv or default_venv()
    stamp = venv / ".fakecloud-heat-installed"
    python = venv / "bin" / "python"
    if python.exists() and stamp.exists() and stamp.read_text().strip() == requirement:
        return python
    log = venv.parent / f"{venv.name}-install.log"
    venv.parent.mkdir(parents=True, exist_ok=True)
    commands = [[sys.executable, "-m", "venv", "--clear", str(venv)],
                [str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
                [str(python), "-m", "pip", "install", "--quiet", requirement]]
    with log.open("w") as out:
        for command in commands:
            done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
            if done.returncode != 0:
                raise HeatInstallError(f"installing {requirement} failed ({' '.join(command[-3:])}, exit "
                                       f"{done.returncode}); see {log}:\n{_tail(log)}")
    stamp.write_text(requirement + "\n")
    return python


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class UpstreamHeat:
    """One upstream Heat process for one fakecloud; a context manager through `running(cloud_url)`."""

    def __init__(self, venv: Path | None = None, workdir: Path | None = None, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.venv = venv or default_venv()
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="fakecloud-heat-"))
        self.sock = bind(host, port)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        self.password = secrets.token_urlsafe(16)
        self.process: subprocess.Popen[bytes] | None = None
        self._stdout: IO[bytes] | None = None

    @property
    def endpoint(self) -> str:
        """The catalog URL of the orchestration service (Heat's v1 API is per project)."""
        return f"{self.url}/v1/{{project_id}}"

    @property
    def log_file(self) -> Path:
        return self.workdir / "heat.log"

    def cloud_config(self, config: CloudConfig | None = None) -> CloudConfig:
        """`config` plus Heat's service user (service + admin in project `service`) and the catalog entry."""
        config = (config or CloudConfig()).model_copy(deep=True)
        config.users = [u for u in config.users if u.name != SERVICE_USER] + [
            UserSpec(name=SERVICE_USER, password=self.password, project=SERVICE_PROJECT,
                     roles=["service", "admin"])]
        config.orchestration_url = self.endpoint
        return config

    # lifecycle ---------------------------------------------------------------------------------------
    def start(self, cloud_url: str, timeout: float = 120.0) -> UpstreamHeat:
        """Install if needed, write the config, `heat-manage db_sync`, then start and wait until it answers."""
        python = ensure_installed(self.venv)
        # The service user with this run's password (a cloud restored from a state file has an older one).
        CloudControl(cloud_url).add_user(SERVICE_USER, self.password, SERVICE_PROJECT, ["service", "admin"])
        conf = write_config(self.workdir, heat_url=self.url, keystone_url=f"{cloud_url.rstrip('/')}/v3",
                            username=SERVICE_USER, password=self.password, project=SERVICE_PROJECT)
        manage = self.venv / "bin" / "heat-manage"
        synced = subprocess.run([str(manage), "--config-file", str(conf), "db_sync"], capture_output=True,
                                text=True, check=False)
        if synced.returncode != 0:
            raise HeatStartError(f"heat-manage db_sync failed:\n{synced.stderr[-3000:]}\n{_tail(self.log_file)}")
        self._stdout = (self.workdir / "launcher.out").open("wb")
        self.process = subprocess.Popen(
            [str(python), str(LAUNCHER), "--config-file", str(conf), "--fd", str(self.sock.fileno())],
            pass_fds=(self.sock.fileno(),), stdout=self._stdout, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, cwd=self.workdir,
        )
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise HeatStartError(f"Heat exited with {self.process.returncode}:\n{self._output()}")
            try:
                if requests.get(self.url + "/", timeout=2).status_code in (200, 300):
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise HeatStartError(f"Heat did not answer on {self.url} within {timeout:.0f}s:\n{self._output()}")

    def _output(self) -> str:
        return f"{_tail(self.workdir / 'launcher.out')}\n--- heat.log ---\n{_tail(self.log_file)}"

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, then SIGKILL if it will not go; the work directory goes too unless it was given."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        self.process = None
        if self._stdout is not None:
            self._stdout.close()
            self._stdout = None
        self.sock.close()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def running(self, cloud_url: str, timeout: float = 120.0) -> _Running:
        return _Running(self, cloud_url, timeout)


class _Running:
    def __init__(self, heat: UpstreamHeat, cloud_url: str, timeout: float) -> None:
        self.heat, self.cloud_url, self.timeout = heat, cloud_url, timeout

    def __enter__(self) -> UpstreamHeat:
        try:
            return self.heat.start(self.cloud_url, self.timeout)
        except BaseException:
            self.heat.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.heat.stop()
