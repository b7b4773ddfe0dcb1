"""Hearth test fixtures: a database (SQLite file or a throwaway PostgreSQL database), a Runtime on the
session's fakecloud, and a running Hearth API (uvicorn on a free port, in a thread) with its
TaskManager in-process and the `database` service registered in fakecloud's catalog.

    def test_x(hearth_api):
        api = hearth_api.client()            # demo project, real Keystone token
        body = api.post("/instances", json={...}).json()
        hearth_api.taskmanager.run_until_idle(60)

`db_url` is parametrised over sqlite and postgresql, so every test using these fixtures runs on both.
PostgreSQL (postgresql://postgres@127.0.0.1:5432/) is skipped only when the server is unreachable and
the CI environment variable is unset.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import uvicorn
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from hearth.api.app import create_app
from hearth.config import Datastore, DatastoreVersion, Settings
from hearth.runtime import Runtime, build_runtime
from hearth.taskmanager import TaskManager
from openstack_fakecloud.testing import RunningCloud

PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
TABLES = ("events", "security_group_rules", "operations", "instances", "configurations", "fleet_migrations")


# --------------------------------------------------------------------------------------------------
# Databases


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for the whole session, dropped at the end; migrated once."""
    import psycopg

    try:
        admin = psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"PostgreSQL at {PG_SERVER} is required in CI: {exc}")
        pytest.skip(f"PostgreSQL at {PG_SERVER} is unreachable")
    name = f"hearth_test_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{PG_SERVER}/{name}"
    try:
        from hearth.db.session import upgrade

        upgrade(url)
        yield url
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hearth.sqlite'}"
    url = request.getfixturevalue("postgres_database")
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
    return url


# --------------------------------------------------------------------------------------------------
# Runtime and API


@pytest.fixture(autouse=True)
def fresh_wait_expectations() -> None:
    """Each test starts with none of the process-wide state an earlier test left: each test's cloud has its own
    delays (waits learnt in an earlier test must not set this one's pace), its own flavors, and its own
    databases (with their write gates and queue signals)."""
    from hearth.db.session import forget_write_gates
    from hearth.engines.common import forget_cloud_lookups, forget_learnt_waits
    from hearth.service import forget_flavors
    from hearth.taskmanager import forget_signals

    forget_learnt_waits()
    forget_cloud_lookups()
    forget_flavors()
    forget_signals()
    forget_write_gates()


#: Most tests are about the cloud side: their instances boot an image without a database (no guest to start
#: per instance) that Hearth does not manage. Tests of the database side (test_databases.py) use the guest.
UNMANAGED_DATASTORES = [
    Datastore(name="postgresql", default_version="16",
              versions=[DatastoreVersion(name="16", image="postgresql-16", port=5432, manage=False)]),
    Datastore(name="mysql", default_version="8.0",
              versions=[DatastoreVersion(name="8.0", image="mysql-8.0", port=3306)]),
]


@pytest.fixture
def hearth_settings(tmp_path: Path, fakecloud: RunningCloud, db_url: str) -> Settings:
    clouds_yaml = fakecloud.write_clouds_yaml(tmp_path / "clouds.yaml")
    return Settings(home=tmp_path, db_url=db_url, cloud="fakecloud", clouds_yaml=clouds_yaml, workers=4,
                    datastores=UNMANAGED_DATASTORES,
                    heartbeat_seconds=0.5, stale_after_seconds=30.0, token_cache_seconds=60.0,
                    retry_initial_seconds=0.05, retry_max_seconds=0.5)


@pytest.fixture
def hearth_runtime(hearth_settings: Settings) -> Iterator[Runtime]:
    runtime = build_runtime(hearth_settings)
    yield runtime
    runtime.close()


def free_socket(host: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.listen(128)
    return sock


class ApiServer:
    """Hearth's API under uvicorn on a background thread (bound first, so the port is known)."""

    def __init__(self, runtime: Runtime) -> None:
        self.sock = free_socket()
        host, port = self.sock.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        config = uvicorn.Config(create_app(runtime), log_level="warning", access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       name="hearth-api", daemon=True)

    def start(self, timeout: float = 30.0) -> ApiServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the Hearth API did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()


@dataclass
class Credentials:
    token: str
    project_id: str


class ApiClient:
    """requests against /v1.0/{project_id}, with a Keystone token (or none)."""

    def __init__(self, base: str, project_id: str, token: str | None) -> None:
        self.base = base.rstrip("/")
        self.project_id = project_id
        self.http = requests.Session()
        if token:
            self.http.headers["X-Auth-Token"] = token

    def url(self, path: str) -> str:
        return f"{self.base}/v1.0/{self.project_id}{path}"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.http.request(method, self.url(path), timeout=60, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)


@dataclass
class HearthApi:
    url: str
    runtime: Runtime
    taskmanager: TaskManager
    cloud: RunningCloud
    _credentials: dict[str, Credentials] = field(default_factory=dict)

    def credentials(self, project: str = "demo") -> Credentials:
        """A real Keystone token: demo/admin from the cloud's config, any other name is a new user
        (member of a new project of that name)."""
        if project not in self._credentials:
            if project in ("demo", "admin"):
                auth = self.cloud.auth(project)
            else:
                password = uuid.uuid4().hex
                self.cloud.control.add_user(project, password, project)
                auth = {"auth_url": f"{self.cloud.url}/v3", "username": project, "password": password,
                        "project_name": project, "user_domain_name": "Default",
                        "project_domain_name": "Default"}
            sess = ks_session.Session(auth=v3.Password(**auth))
            self._credentials[project] = Credentials(sess.get_token(), sess.get_project_id())
        return self._credentials[project]

    def client(self, project: str = "demo", as_project: str | None = None, token: bool = True) -> ApiClient:
        """A client for `project`'s URL; `as_project` authenticates as another project's user instead."""
        creds = self.credentials(project)
        caller = self.credentials(as_project) if as_project else creds
        return ApiClient(self.url, creds.project_id, caller.token if token else None)

    def settle(self, timeout: float = 120.0) -> None:
        assert self.taskmanager.run_until_idle(timeout), "operations did not finish"

    def create(self, api: ApiClient, name: str = "db1", settle: bool = True, **fields: Any) -> dict[str, Any]:
        """POST a create (flavor 1, 1 GB, defaults for the rest unless given) and optionally wait it out."""
        body = {"name": name, "flavorRef": "1", "volume": {"size": 1}, **fields}
        response = api.post("/instances", json={"instance": body})
        assert response.status_code == 200, response.text
        instance = response.json()["instance"]
        if settle:
            self.settle()
            instance = api.get(f"/instances/{instance['id']}").json()["instance"]
        return instance

    # the cloud's side -------------------------------------------------------------------------------
    def inventory(self) -> dict[str, list[dict[str, Any]]]:
        return self.cloud.control.inventory("demo")

    def cloud_ids(self) -> dict[str, set[str]]:
        """Every resource id the demo project has in the cloud, by kind (for "nothing changed" checks)."""
        return {kind: {r["id"] for r in items} for kind, items in self.inventory().items()}

    def leftovers(self) -> dict[str, list[str]]:
        """Cloud resources Hearth made (named hearth-...) that still exist."""
        found: dict[str, list[str]] = {}
        for kind, items in self.inventory().items():
            mine = [r.get("name") or "" for r in items if (r.get("name") or "").startswith("hearth-")]
            if mine:
                found[kind] = mine
        return found

    def cloud_resource(self, kind: str, instance_id: str) -> dict[str, Any]:
        """The one server / volume / security group named for the instance (asserts there is exactly one)."""
        names = {"servers": f"hearth-{instance_id}", "volumes": f"hearth-{instance_id}-data",
                 "security_groups": f"hearth-{instance_id}"}
        found = [r for r in self.inventory()[kind] if r.get("name") == names[kind]
                 or (kind == "servers" and str(r.get("name")).startswith(names[kind] + "-"))]
        assert len(found) == 1, f"expected one {kind} for {instance_id}, found {len(found)}"
        return found[0]

    def cloud_rules(self, instance_id: str) -> set[tuple[str, int, int, str]]:
        """The ingress rules the instance's group really holds: (protocol, from, to, cidr)."""
        group = self.cloud_resource("security_groups", instance_id)
        return {(r["protocol"], r["port_range_min"], r["port_range_max"], r["remote_ip_prefix"])
                for r in group["security_group_rules"] if r["direction"] == "ingress"}


def expect_fault(response: requests.Response, status: int, key: str, *fragments: str) -> str:
    """Assert a Trove-shaped error body; returns its message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == [key], body
    assert body[key]["code"] == status
    message = body[key]["message"]
    for fragment in fragments:
        assert fragment in message, message
    return message


@pytest.fixture
def fault_of():
    """`expect_fault` as a fixture, for test modules (they cannot import a conftest)."""
    return expect_fault


@pytest.fixture
def hearth_api(hearth_runtime: Runtime, fakecloud: RunningCloud) -> Iterator[HearthApi]:
    taskmanager = TaskManager(hearth_runtime).start()
    server = ApiServer(hearth_runtime).start()
    fakecloud.control.register_service("database", "hearth", f"{server.url}/v1.0/{{project_id}}")
    try:
        yield HearthApi(server.url, hearth_runtime, taskmanager, fakecloud)
    finally:
        server.stop()
        taskmanager.stop()



@pytest.fixture
def restart(hearth_api: HearthApi, hearth_settings: Settings) -> Iterator[Callable[[str], HearthApi]]:
    """`restart(engine)`: Hearth restarted on the same database and cloud with another engine setting (the
    earlier task managers stopped); returns its HearthApi."""
    started: list[tuple[Runtime, TaskManager, ApiServer]] = []

    def start(engine: str) -> HearthApi:
        for _, old_tm, _ in started:
            old_tm.stop()
        hearth_api.taskmanager.stop()
        runtime = build_runtime(hearth_settings.model_copy(update={"engine": engine}))
        taskmanager = TaskManager(runtime).start()
        server = ApiServer(runtime).start()
        hearth_api.cloud.control.register_service("database", "hearth", f"{server.url}/v1.0/{{project_id}}")
        started.append((runtime, taskmanager, server))
        return HearthApi(server.url, runtime, taskmanager, hearth_api.cloud)

    yield start
    for runtime, taskmanager, server in started:
        server.stop()
        taskmanager.stop()
        runtime.close()
