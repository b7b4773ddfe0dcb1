"""fakecloud for tests: a context manager and pytest fixtures that give a running cloud.

    with running_cloud() as fc:
        conn = fc.connect()            # openstacksdk Connection, demo project
        conn.compute.create_server(...)

As a pytest plugin (`pytest_plugins = ["openstack_fakecloud.testing"]`): `fakecloud_server` is one cloud per
session; `fakecloud` resets it before each test and yields the same handle; `os_conn` is a demo
project Connection on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import openstack
import pytest

from openstack_fakecloud.config import CloudConfig
from openstack_fakecloud.control import CloudControl
from openstack_fakecloud.server import CloudServer, cloud_entries, write_clouds_yaml


class RunningCloud:
    def __init__(self, server: CloudServer) -> None:
        self.server = server
        self.url = server.url
        self.cloud = server.cloud  # in-process state, for reading only
        self.control = CloudControl(server.url)

    def auth(self, project: str = "demo") -> dict[str, Any]:
        name = "fakecloud" if project == "demo" else f"fakecloud-{project}"
        return cloud_entries(self.url, self.cloud.config)[name]["auth"]

    def connect(self, project: str = "demo", **kwargs: Any) -> openstack.connection.Connection:
        """An openstacksdk Connection for `demo` or `admin`, talking HTTP to this cloud."""
        return openstack.connect(
            **self.auth(project),
            region_name=self.cloud.config.region,
            identity_api_version="3",
            load_yaml_config=False,
            load_envvars=False,
            **kwargs,
        )

    def write_clouds_yaml(self, path: str | Path) -> Path:
        return write_clouds_yaml(path, self.url, self.cloud.config)


@contextmanager
def running_cloud(config: CloudConfig | None = None, **server_kwargs: Any) -> Iterator[RunningCloud]:
    server = CloudServer(config, **server_kwargs).start()
    try:
        yield RunningCloud(server)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def fakecloud_server() -> Iterator[RunningCloud]:
    with running_cloud() as cloud:
        yield cloud


@pytest.fixture
def fakecloud(fakecloud_server: RunningCloud) -> Iterator[RunningCloud]:
    fakecloud_server.control.reset()
    fakecloud_server.control.set_delays(profile="zero")
    fakecloud_server.control.set_microversions(
        compute=fakecloud_server.cloud.config.compute_max_microversion,
        volume=fakecloud_server.cloud.config.volume_max_microversion,
    )
    yield fakecloud_server


@pytest.fixture
def os_conn(fakecloud: RunningCloud) -> Iterator[openstack.connection.Connection]:
    conn = fakecloud.connect()
    yield conn
    conn.close()


@pytest.fixture
def os_admin(fakecloud: RunningCloud) -> Iterator[openstack.connection.Connection]:
    conn = fakecloud.connect("admin")
    yield conn
    conn.close()
