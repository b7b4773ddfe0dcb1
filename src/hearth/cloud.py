"""Cloud connections: one factory, a clouds.yaml cloud name in, openstacksdk Connections out.

openstacksdk Connections are not meant to be shared between threads, so each thread gets its own,
reused across operations (a new Connection costs four round trips: auth plus two discoveries).
"""

from __future__ import annotations

import os
import threading
import urllib.request
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
        conn = Connection(config=region)
        if not environment_matters():
            # requests re-reads proxies, CA bundles and ~/.netrc from the environment on every call (~17 % of
            # a request's client CPU); with none of them present the answer is always "nothing".
            conn.session.session.trust_env = False
        return conn

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


_REQUESTS_ENVIRONMENT = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NETRC")


def environment_matters() -> bool:
    """Whether requests would find anything in this process's environment: a proxy setting, a CA bundle
    variable or a netrc file. Checked once per Connection, so one made after such a change still honours it."""
    if urllib.request.getproxies() or any(os.environ.get(name) for name in _REQUESTS_ENVIRONMENT):
        return True
    try:
        return any(Path(f"~/{name}").expanduser().exists() for name in (".netrc", "_netrc"))
    except (OSError, RuntimeError):  # no resolvable home directory: requests would find no netrc either
        return False


def default_clouds_yaml(home: Path) -> Path | None:
    """`hearth up` writes its clouds.yaml under HEARTH_HOME; elsewhere use openstacksdk's search path."""
    candidate = home / "clouds.yaml"
    if candidate.exists():
        return candidate
    env = os.environ.get("OS_CLIENT_CONFIG_FILE")
    return Path(env) if env else None
