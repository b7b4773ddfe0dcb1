"""Cloud connections: one factory, a clouds.yaml cloud name in, openstacksdk Connections out.

openstacksdk Connections are not meant to be shared between threads, so each thread gets its own,
reused across operations (a new Connection costs four round trips: auth plus two discoveries).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import openstack
import openstack.config
from openstack.connection import Connection


class CloudConnections:
    def __init__(self, cloud: str, clouds_yaml: Path | None = None) -> None:
        self.cloud = cloud
        self.clouds_yaml = clouds_yaml
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[Connection] = []

    def _config(self) -> openstack.config.OpenStackConfig:
        files = [str(self.clouds_yaml)] if self.clouds_yaml else None
        return openstack.config.OpenStackConfig(config_files=files, load_envvars=False)

    def new(self) -> Connection:
        """A fresh Connection (not cached)."""
        region = self._config().get_one(cloud=self.cloud)
        return Connection(config=region)

    def get(self) -> Connection:
        """This thread's Connection, made on first use."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self.new()
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()


def default_clouds_yaml(home: Path) -> Path | None:
    """`hearth up` writes its clouds.yaml under HEARTH_HOME; elsewhere use openstacksdk's search path."""
    candidate = home / "clouds.yaml"
    if candidate.exists():
        return candidate
    env = os.environ.get("OS_CLIENT_CONFIG_FILE")
    return Path(env) if env else None
