"""Cloud connections: one factory, a clouds.yaml cloud name in, openstacksdk Connections out.

openstacksdk Connections are not meant to be shared between threads, so each thread gets its own,
reused across operations (a new Connection costs four round trips: auth plus two discoveries).
"""

from __future__ import annotations

import functools
import os
import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openstack
import openstack.config
import os_service_types
from keystoneauth1 import plugin as ks_plugin
from keystoneauth1 import session as ks_session
from openstack.connection import Connection

from hearth.request_ids import current_request_id


class CloudConnections:
    """`ready`, if given, is run on every new Connection before it is handed out (and cached): a Connection
    whose version discovery failed (a 5xx or reset during discovery) would otherwise be kept, and send requests
    without microversions for the rest of its life. It raises to refuse the Connection; the next `get` makes
    another."""

    def __init__(self, cloud: str, clouds_yaml: Path | None = None,
                 ready: Callable[[Connection], None] | None = None,
                 response_hooks: tuple[Callable[..., Any], ...] = ()) -> None:
        self.cloud = cloud
        self.clouds_yaml = clouds_yaml
        self.ready = ready
        #: `requests` response hooks on every Connection's HTTP session (the cloud-request metrics)
        self.response_hooks = response_hooks
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[Connection] = []
        self._auth: ks_plugin.BaseAuthPlugin | None = None  # the first Connection's, then everyone's
        self._discovery_cache: dict[str, Any] = {}  # keystoneauth's: version documents by URL
        self._loaded: openstack.config.OpenStackConfig | None = None

    def _config(self) -> openstack.config.OpenStackConfig:
        """clouds.yaml, read once until `close` (reading and merging it was a fifth of a new Connection)."""
        with self._lock:
            if self._loaded is None:
                files = [str(self.clouds_yaml)] if self.clouds_yaml else None
                self._loaded = openstack.config.OpenStackConfig(config_files=files, load_envvars=False,
                                                                session_constructor=self._session)
            return self._loaded

    def _session(self, auth: ks_plugin.BaseAuthPlugin | None = None, **options: Any) -> ks_session.Session:
        """openstacksdk's session constructor: a keystoneauth Session of its own (its HTTP pool and hooks)
        around the factory's one auth plugin and discovery cache."""
        with self._lock:
            if self._auth is None:
                self._auth = auth
            shared = self._auth
        options["discovery_cache"] = self._discovery_cache
        return ks_session.Session(auth=shared, **options)

    def new(self) -> Connection:
        """A fresh Connection (not cached), sharing the factory's token and discovered versions."""
        region = self._config().get_one(cloud=self.cloud)
        _memoise_service_types(region)
        conn = Connection(config=region)
        settle_environment(conn)
        conn.session.session.hooks["response"].extend(self.response_hooks)
        return conn

    def get(self) -> Connection:
        """This thread's Connection, made on first use, sending the current API request's id (if any) as the
        global request id (X-OpenStack-Request-ID) of every call it makes until the next `get`."""
        conn = self._get()
        # openstacksdk sends `Connection._global_request_id` with each request (what Connection(global_request_id=)
        # and Connection.global_request() set); set on the thread's own Connection, not a new one per request.
        conn._global_request_id = current_request_id()
        return conn

    def _get(self) -> Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self.new()
            if self.ready is not None:
                try:
                    self.ready(conn)
                except BaseException:
                    conn.close()
                    raise
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        """Close every Connection and forget clouds.yaml, the shared token and the discovered versions: the
        next `get` of every thread reads and connects afresh."""
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
            self._auth = None
            self._discovery_cache = {}
            self._loaded = None
        self._local = threading.local()


class _ServiceTypes(os_service_types.ServiceTypes):
    """os_service_types answers every lookup with a deep copy of its whole table, and openstacksdk looks up a
    service's aliases for each option it reads while making a proxy: two thirds of a new Connection's CPU
    (measured: 10 ms of which 6.5 in copy.deepcopy). The table never changes, so the aliases are read once."""

    def __init__(self) -> None:
        super().__init__()
        self._memo: dict[str, tuple[str, ...]] = {}

    def get_all_types(self, service_type: str) -> list[str]:
        known = self._memo.get(service_type)
        if known is None:
            known = self._memo[service_type] = tuple(super().get_all_types(service_type))
        return list(known)


@functools.cache
def _service_types() -> _ServiceTypes:
    """The process's one memoised service-type table."""
    return _ServiceTypes()


def _memoise_service_types(region: openstack.config.cloud_region.CloudRegion) -> None:
    """Give a CloudRegion the process's memoised service-type table in place of the one it made (a
    private attribute of openstacksdk's: left alone if a release renames it)."""
    if isinstance(getattr(region, "_service_type_manager", None), os_service_types.ServiceTypes):
        region._service_type_manager = _service_types()


def ca_bundle_from_environment() -> str | None:
    """The CA bundle requests would take from the environment for a verifying call, if any."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or None


def environment_matters() -> bool:
    """Whether requests must keep reading the environment on every call: a proxy setting (with its per-URL
    no_proxy rules) or a netrc file. A CA bundle variable does not count: settle_environment pins it."""
    if urllib.request.getproxies() or os.environ.get("NETRC"):
        return True
    try:
        return any(Path(f"~/{name}").expanduser().exists() for name in (".netrc", "_netrc"))
    except (OSError, RuntimeError):  # no resolvable home directory: requests would find no netrc either
        return False


def settle_environment(conn: Connection) -> None:
    """requests re-reads proxies, CA bundle variables and ~/.netrc from the environment on every call (~17 %
    of a request's client CPU). Read them once instead: a CA bundle variable becomes the session's `verify`
    (where clouds.yaml asks for the default verification), and with no proxy or netrc to honour, the
    per-call lookups are turned off. Checked per Connection, so one made after a change still sees it."""
    if environment_matters():
        return
    bundle = ca_bundle_from_environment()
    if bundle and conn.session.verify is True:
        conn.session.verify = bundle
    conn.session.session.trust_env = False


def default_clouds_yaml(home: Path) -> Path | None:
    """`hearth up` writes its clouds.yaml under HEARTH_HOME; elsewhere use openstacksdk's search path."""
    candidate = home / "clouds.yaml"
    if candidate.exists():
        return candidate
    env = os.environ.get("OS_CLIENT_CONFIG_FILE")
    return Path(env) if env else None
