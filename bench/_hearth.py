"""Shared plumbing for the Hearth benchmarks: fakecloud and Hearth as separate processes, a REST client,
per-process CPU and memory, and fakecloud's request accounting.

    with Stack(engine="natives", profile="zero") as stack:   # `fakecloud serve` + `hearth serve`
        api = stack.client()                                  # demo project, real Keystone token
        ids = [api.create(f"db{i}") for i in range(20)]
        api.wait_all(ids, "ACTIVE")
        stack.cpu()                                           # {"hearth": s, "fakecloud": s}

Both services run as subprocesses of the bench script (`.venv/bin/fakecloud serve`, `.venv/bin/hearth serve`
or `hearth serve --no-taskmanager` + `hearth taskmanager`), so CPU seconds and RSS can be read per process
from /proc (psutil). Their output goes to log files in the stack's temporary directory, and the last lines
are printed if a process dies or does not come up: a bench never reports a figure from a broken run.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import requests
import yaml

#: A datastore whose images run no database (fakecloud's plain `postgresql-16`), which Hearth does not manage: the
#: control plane's own figures, without a real PostgreSQL process per instance (the default boots guests).
UNMANAGED_DATASTORES = json.dumps([{"name": "postgresql", "default_version": "16", "versions": [
    {"name": "16", "image": "postgresql-16", "port": 5432, "manage": False}]}])
BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT / "src"))

from _harness import free_port  # noqa: E402

UNLIMITED_QUOTAS = {"instances": -1, "cores": -1, "ram": -1, "volumes": -1, "gigabytes": -1,
                    "security_groups": -1, "security_group_rules": -1, "ports": -1}
TERMINAL_ERRORS = {"ERROR", "FAILED"}


def registered_engines(wanted: str | None = None) -> list[str]:
    """The engines hearth.engines has registered (natives first), or the comma-separated subset asked for."""
    from hearth import engines

    found = engines.available()
    ordered = sorted(found, key=lambda name: (name != "natives", name))
    if wanted:
        asked = [w.strip() for w in wanted.split(",") if w.strip()]
        missing = [w for w in asked if w not in found]
        if missing:
            raise SystemExit(f"engine(s) not registered: {', '.join(missing)}; registered: {', '.join(found)}")
        return [name for name in ordered if name in asked]
    return ordered


class BenchError(RuntimeError):
    """A run that cannot give an honest figure."""


# --------------------------------------------------------------------------------------------------
# Processes


@dataclass
class Service:
    name: str
    proc: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def check(self) -> None:
        if not self.alive():
            raise BenchError(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")

    def cpu_seconds(self) -> float:
        times = psutil.Process(self.pid).cpu_times()
        return times.user + times.system

    def peak_rss_mb(self) -> float:
        """VmHWM: the highest resident set size the process ever had."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
        raise BenchError(f"no VmHWM for {self.name}")

    def stop(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _spawn(name: str, cmd: list[str], log: Path, env: dict[str, str] | None = None) -> Service:
    handle = log.open("wb")
    proc = subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
                            start_new_session=True)
    handle.close()
    return Service(name, proc, log)


def _wait_http(service: Service, url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        service.check()
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise BenchError(f"{service.name} did not answer {url} within {timeout:.0f}s:\n{service.tail()}")
        time.sleep(0.05)


@dataclass
class Stack:
    """fakecloud + Hearth, each its own process, on free loopback ports; SQLite unless `db_url` is given."""

    engine: str = "natives"
    profile: str = "zero"
    workers: int | None = 8  # task manager threads; None: Hearth's default (Settings.workers)
    db_url: str | None = None
    split_taskmanager: bool = False  # API and task manager as two processes
    with_hearth: bool = True  # False: fakecloud alone (the floor scripts)
    extra_env: dict[str, str] = field(default_factory=dict)
    #: HEARTH_DATASTORES: by default a datastore Hearth does not manage, so the figures are the control plane's
    #: and compare with the bare-SDK floors (which boot the same plain image); None: Hearth's default datastores,
    #: whose guest image runs a real PostgreSQL per instance (the benches that measure guests).
    datastores: str | None = UNMANAGED_DATASTORES
    cloud: Service | None = None
    api: Service | None = None
    taskmanager: Service | None = None
    tmp: Path | None = None

    # lifecycle ------------------------------------------------------------------------------------
    def __enter__(self) -> Stack:
        self.tmp = Path(tempfile.mkdtemp(prefix="hearth-bench-"))
        try:
            self.start_cloud()
            if self.with_hearth:
                self.start_hearth()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        for profiler in getattr(self, "_profilers", []):
            profiler.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                profiler.wait(30)
        for service in (self.api, self.taskmanager, self.cloud):
            if service is not None:
                service.stop()
        if self.tmp is not None and not os.environ.get("BENCH_KEEP_TMP"):
            shutil.rmtree(self.tmp, ignore_errors=True)

    @property
    def services(self) -> list[Service]:
        return [s for s in (self.api, self.taskmanager) if s is not None]

    def start_cloud(self) -> None:
        assert self.tmp is not None
        config = self.tmp / "fakecloud.yaml"
        config.write_text(yaml.safe_dump({"profile": self.profile, "quotas": UNLIMITED_QUOTAS}))
        self.cloud_port = free_port()
        self.clouds_yaml = self.tmp / "clouds.yaml"
        self.cloud = _spawn("fakecloud", [str(BIN / "fakecloud"), "serve", "--port", str(self.cloud_port),
                                          "--config", str(config), "--clouds-yaml", str(self.clouds_yaml)],
                            self.tmp / "fakecloud.log")
        self.cloud_url = f"http://127.0.0.1:{self.cloud_port}"
        _wait_http(self.cloud, f"{self.cloud_url}/_fakecloud/health")
        from openstack_fakecloud.control import CloudControl

        self.control = CloudControl(self.cloud_url)

    def hearth_env(self) -> dict[str, str]:
        assert self.tmp is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HEARTH_", "OS_"))}
        env.update(HEARTH_HOME=str(self.tmp / "home"), HEARTH_LOG_LEVEL="WARNING",
                   HEARTH_ENGINE=self.engine, HEARTH_CLOUD="fakecloud", HEARTH_CLOUDS_YAML=str(self.clouds_yaml),
                   HEARTH_DB_URL=self.db_url or f"sqlite:///{self.tmp / 'hearth.sqlite'}")
        if self.workers is not None:
            env["HEARTH_WORKERS"] = str(self.workers)
        if self.datastores is not None:
            env["HEARTH_DATASTORES"] = self.datastores
        env.update(self.extra_env)
        return env

    def start_hearth(self) -> None:
        assert self.tmp is not None
        env = self.hearth_env()
        self.api_port = free_port()
        cmd = [str(BIN / "hearth"), "serve", "--host", "127.0.0.1", "--port", str(self.api_port)]
        if self.split_taskmanager:
            cmd.append("--no-taskmanager")
        self.api = _spawn("hearth-api", cmd, self.tmp / "hearth-api.log", env)
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        _wait_http(self.api, f"{self.api_url}/")
        if self.split_taskmanager:
            self.taskmanager = _spawn("hearth-taskmanager", [str(BIN / "hearth"), "taskmanager"],
                                      self.tmp / "hearth-taskmanager.log", env)
            time.sleep(0.5)
            self.taskmanager.check()

        self._profilers = []
        if os.environ.get("BENCH_PROFILE_DIR"):  # py-spy every Hearth process (collapsed stacks) for analysis
            out = Path(os.environ["BENCH_PROFILE_DIR"])
            out.mkdir(parents=True, exist_ok=True)
            for service in self.services:
                target = out / f"{service.name}-{self.engine}-{service.pid}.txt"
                self._profilers.append(subprocess.Popen(
                    [str(BIN / "py-spy"), "record", "--pid", str(service.pid), "--format", "raw", "--rate", "50",
                     "--nonblocking", *os.environ.get("BENCH_PROFILE_FLAGS", "--gil").split(), "-o", str(target)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def check(self) -> None:
        for service in (self.cloud, *self.services):
            if service is not None:
                service.check()

    # measurements ---------------------------------------------------------------------------------
    def cpu(self) -> dict[str, float]:
        assert self.cloud is not None
        return {"hearth": sum(s.cpu_seconds() for s in self.services), "fakecloud": self.cloud.cpu_seconds()}

    def request_counts(self) -> collections.Counter[tuple[str, str, str]]:
        """fakecloud's cumulative request counts by (service, method, route)."""
        data = self.control.requests(log=False)
        return collections.Counter({(c["service"], c["method"], c["route"]): c["count"] for c in data["counts"]})

    def client(self) -> HearthClient:
        from keystoneauth1 import session as ks_session
        from keystoneauth1.identity import v3

        auth = v3.Password(auth_url=f"{self.cloud_url}/v3", username="demo", password="demo", project_name="demo",
                           user_domain_name="Default", project_domain_name="Default")
        sess = ks_session.Session(auth=auth)
        return HearthClient(self, f"{self.api_url}/v1.0/{sess.get_project_id()}", sess.get_token())


def diff_counts(after: collections.Counter, before: collections.Counter) -> collections.Counter:
    return collections.Counter({k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0) > 0})


# --------------------------------------------------------------------------------------------------
# REST client


class HearthClient:
    """requests against Hearth's /v1.0/{project_id}; every unexpected answer raises BenchError."""

    def __init__(self, stack: Stack, base: str, token: str) -> None:
        self.stack = stack
        self.base = base
        self.http = requests.Session()
        self.http.headers["X-Auth-Token"] = token

    def call(self, method: str, path: str, expect: int, **kwargs: Any) -> Any:
        response = self.http.request(method, self.base + path, timeout=120, **kwargs)
        if response.status_code != expect:
            self.stack.check()
            raise BenchError(f"{method} {path} answered {response.status_code}: {response.text[:500]}")
        return response.json() if response.content else None

    def create(self, name: str, flavor: str = "1", size: int = 1, cidrs: list[str] | None = None) -> str:
        body: dict[str, Any] = {"name": name, "flavorRef": flavor, "volume": {"size": size}}
        if cidrs is not None:
            body["access"] = {"allowed_cidrs": cidrs}
        return self.call("POST", "/instances", 200, json={"instance": body})["instance"]["id"]

    def show(self, instance_id: str) -> dict[str, Any]:
        return self.call("GET", f"/instances/{instance_id}", 200)["instance"]

    def delete(self, instance_id: str) -> None:
        self.call("DELETE", f"/instances/{instance_id}", 202)

    def resize_flavor(self, instance_id: str, flavor: str) -> None:
        self.call("POST", f"/instances/{instance_id}/action", 202, json={"resize": {"flavorRef": flavor}})

    def resize_volume(self, instance_id: str, size: int) -> None:
        self.call("POST", f"/instances/{instance_id}/action", 202, json={"resize": {"volume": {"size": size}}})

    def set_cidrs(self, instance_id: str, cidrs: list[str]) -> None:
        self.call("PUT", f"/instances/{instance_id}", 202, json={"instance": {"access": {"allowed_cidrs": cidrs}}})

    def list_all(self, limit: int = 1000) -> dict[str, dict[str, Any]]:
        """Every live instance by id (following `next` links)."""
        found: dict[str, dict[str, Any]] = {}
        path = f"/instances?limit={limit}"
        while True:
            body = self.call("GET", path, 200)
            for inst in body["instances"]:
                found[inst["id"]] = inst
            nxt = [link["href"] for link in body.get("links", []) if link.get("rel") == "next"]
            if not nxt:
                return found
            path = nxt[0].split(self.base, 1)[-1] if self.base in nxt[0] else "/instances?" + nxt[0].split("?", 1)[1]

    def wait_all(self, ids: list[str], status: str, timeout: float = 300.0, interval: float = 0.02,
                 check: Any = None) -> dict[str, float]:
        """Poll until every id shows `status` (or is gone, for status "GONE"); returns when each got there
        (perf_counter). One GET per instance while few are pending, the list once many are."""
        pending = set(ids)
        reached: dict[str, float] = {}
        deadline = time.monotonic() + timeout
        while pending:
            if len(pending) > 4:
                listed = self.list_all()
                now = time.perf_counter()
                for instance_id in list(pending):
                    inst = listed.get(instance_id)
                    self._note(instance_id, inst, status, now, pending, reached)
            else:
                for instance_id in list(pending):
                    try:
                        inst = self.show(instance_id)
                    except BenchError:
                        if status != "GONE":
                            raise
                        inst = None
                    self._note(instance_id, inst, status, time.perf_counter(), pending, reached)
            if pending:
                if time.monotonic() > deadline:
                    raise BenchError(f"{len(pending)} instance(s) did not reach {status} in {timeout:.0f}s")
                self.stack.check()
                time.sleep(interval)
        return reached

    def _note(self, instance_id: str, inst: dict[str, Any] | None, status: str, now: float, pending: set[str],
              reached: dict[str, float]) -> None:
        if status == "GONE":
            if inst is None:
                pending.discard(instance_id)
                reached[instance_id] = now
            return
        if inst is None:
            raise BenchError(f"instance {instance_id} disappeared while waiting for {status}")
        if inst["status"] in TERMINAL_ERRORS:
            fault = self.show(instance_id).get("fault")
            raise BenchError(f"instance {instance_id} went to {inst['status']} waiting for {status}: {fault}")
        if inst["status"] == status:
            pending.discard(instance_id)
            reached[instance_id] = now


@contextlib.contextmanager
def temp_postgres() -> Any:
    """A throwaway PostgreSQL database on 127.0.0.1:5432 (trust auth), dropped afterwards."""
    import uuid

    import psycopg

    server = "postgresql://postgres@127.0.0.1:5432"
    try:
        admin = psycopg.connect(f"{server}/postgres", autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        raise BenchError(f"PostgreSQL at {server} is unreachable: {exc}") from None
    name = f"hearth_bench_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{server}/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
