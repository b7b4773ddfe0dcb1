"""Running Hearth's processes: `hearth up` (fakecloud + API + task manager in one process, state under
HEARTH_HOME), and the API / task manager services that `hearth serve` and `hearth taskmanager` run
against any cloud.

Shutdown is the same everywhere: Ctrl-C or SIGTERM stops accepting requests, lets the task manager
finish or hand back its work, closes connections, and (for `up`) lets fakecloud save its state.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import shutil
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn
import yaml
from rich.console import Console
from sqlalchemy import func, inspect, select
from sqlalchemy.engine import make_url

from hearth.config import Settings
from hearth.runtime import Runtime, build_runtime
from hearth.secrets import load_or_create_key

if TYPE_CHECKING:  # fakecloud is imported only by `hearth up`, never by a production server
    from openstack_fakecloud.config import Delays

log = logging.getLogger(__name__)

CLOUD_NAME = "fakecloud"  # the clouds.yaml entry users use: user demo, project demo (a tenant)
# Hearth's own entry. Tenants' servers, volumes and groups live in a project no tenant belongs to (as in Trove
# deployments), so a tenant's Nova, Cinder or Neutron cannot list or delete another tenant's databases.
SERVICE_CLOUD_NAME = "fakecloud-hearth"
SERVICE_USER = "hearth"
SERVICE_PROJECT = "service"
# member: create servers, volumes and groups in the service project; service: validate users' tokens (Keystone's
# identity:validate_token policy allows the service role, or the token's own user); admin: put an instance's port
# on the tenant's own network (a nic) and check that network is the tenant's, which Neutron allows only an admin
# (Trove's service account is an admin for the same reason).
SERVICE_ROLES = ["admin", "member", "reader", "service"]


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt, so both signals unwind through the same `finally` blocks.

    uvicorn catches the signal to shut down gracefully, then re-raises it on the previous handler:
    this one, rather than the default that would kill the process before our cleanup runs.
    """
    previous = signal.signal(signal.SIGTERM, _interrupt) if threading.current_thread() is threading.main_thread() \
        else None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def safe_db_url(url: str) -> str:
    """The database URL with any password masked, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is shown as a placeholder, never verbatim
        return "<database url>"


def ensure_sqlite_dir(url: str) -> None:
    """A SQLite file's directory must exist before the first migration opens it."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


def bind(host: str, port: int) -> socket.socket:
    """Bind before serving, so a port of 0 resolves to a real one the catalog can name.

    The socket does not listen yet: uvicorn listens once it serves, after the runtime is built (migrations
    applied), clouds.yaml written and the task manager started, so connecting successfully means "ready".
    """
    from openstack_fakecloud.server import bind as fakecloud_bind

    return fakecloud_bind(host, port, listen=False)


def start_taskmanager(runtime: Runtime) -> Any:
    from hearth.taskmanager import TaskManager

    manager = TaskManager(runtime)
    manager.start()
    return manager


def serve_api(runtime: Runtime, sock: socket.socket, with_taskmanager: bool, access_log: bool = True) -> None:
    """Serve the API on `sock` (and run a task manager beside it) until Ctrl-C/SIGTERM."""
    from hearth.api.app import create_app
    from openstack_fakecloud.server import QuietServer

    manager = start_taskmanager(runtime) if with_taskmanager else None
    try:
        app = create_app(runtime, taskmanager=manager)
        config = uvicorn.Config(app, log_level="warning", access_log=access_log, lifespan="on",
                                timeout_keep_alive=120)
        server = QuietServer(config)
        with stop_on_signals(), contextlib.suppress(KeyboardInterrupt):
            server.run(sockets=[sock])
    finally:
        if manager is not None:
            manager.stop()
        sock.close()


def run_taskmanager(runtime: Runtime) -> None:
    """Run a task manager alone until Ctrl-C/SIGTERM (a separate process from the API)."""
    manager = start_taskmanager(runtime)
    stopped = threading.Event()
    try:
        with stop_on_signals(), contextlib.suppress(KeyboardInterrupt):
            while not stopped.wait(3600):
                pass
    finally:
        manager.stop()


@dataclass
class UpOptions:
    home: Path
    port: int = 8779
    cloud_port: int = 8780
    profile: str | None = None  # given: fills the delays cloud_config leaves unset; else the file's, else zero
    cloud_config: Path | None = None  # fakecloud YAML/TOML configuration
    heat: str = "fakecloud"  # orchestration service: fakecloud's own Heat, or "upstream" OpenStack Heat


def run_up(settings: Settings, options: UpOptions, console: Console) -> None:
    """fakecloud + Hearth API + task manager, in this process, until Ctrl-C. Hearth works as its own user in
    fakecloud's `service` project; users' clouds.yaml entry (`fakecloud`) stays on demo."""
    from openstack_fakecloud.cli import delays_in_force
    from openstack_fakecloud.config import UserSpec, load_config
    from openstack_fakecloud.control import CloudControl
    from openstack_fakecloud.server import CloudServer, write_clouds_yaml

    home = options.home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    cloud_config = load_config(options.cloud_config)
    cloud_config.delays = delays_in_force(cloud_config, options.cloud_config, options.profile)

    if options.heat not in ("fakecloud", "upstream"):
        raise ValueError(f"unknown Heat {options.heat!r}; choose fakecloud or upstream")
    heat = None
    if options.heat == "upstream":
        from openstack_fakecloud.upstream_heat import UpstreamHeat

        heat = UpstreamHeat(workdir=home / "upstream-heat")  # its stacks persist beside the cloud's state
        cloud_config = heat.cloud_config(cloud_config)

    state_file = home / "fakecloud-state.json"
    api_sock = _listen(options.port, "the Hearth API", "--port")
    port = api_sock.getsockname()[1]
    try:
        cloud = CloudServer(cloud_config, port=options.cloud_port, state_file=state_file)
    except OSError as err:
        api_sock.close()
        raise OSError(f"cannot listen on 127.0.0.1:{options.cloud_port} for fakecloud: {err.strerror or err} "
                      "(is another `hearth up` running? choose another with --cloud-port)") from None
    runtime: Runtime | None = None
    try:
        cloud.start()
        if heat is not None:
            console.print("Starting upstream OpenStack Heat (the first run installs it, about a minute)...")
            try:
                heat.start(cloud.url)
            except RuntimeError as err:  # HeatInstallError / HeatStartError: shown as a plain CLI error
                raise OSError(f"upstream Heat did not start: {err}") from None
        control = CloudControl(cloud.url)
        control.register_service("database", "hearth", f"http://127.0.0.1:{port}/v1.0/{{project_id}}")
        clouds_path = home / "clouds.yaml"
        settings = settings.model_copy(update={"home": home, "api_host": "127.0.0.1", "api_port": port})
        legacy = _instances_in_demo(clouds_path, settings.database_url)
        extra: dict[str, UserSpec] = {}
        if not legacy:
            service = UserSpec(name=SERVICE_USER, password=_service_password(clouds_path), project=SERVICE_PROJECT,
                               roles=SERVICE_ROLES)
            control.add_user(service.name, service.password, service.project, service.roles)
            extra[SERVICE_CLOUD_NAME] = service
        clouds_yaml = write_clouds_yaml(clouds_path, cloud.url, cloud_config, extra)
        settings = settings.model_copy(update={"cloud": CLOUD_NAME if legacy else SERVICE_CLOUD_NAME,
                                               "clouds_yaml": clouds_yaml})
        load_or_create_key(settings.secret_key_path)  # the key sealing stored passwords: made once, mode 0600
        runtime = build_runtime(settings)
        _banner(console, settings, cloud.url, clouds_yaml, cloud_config.delays, legacy)
        serve_api(runtime, api_sock, with_taskmanager=True, access_log=False)
    finally:
        api_sock.close()
        if runtime is not None:
            runtime.close()
        if heat is not None:
            heat.stop()
        cloud.stop()  # saves the cloud's state
    console.print(f"[bold]Hearth stopped.[/] Instances and cloud resources are kept in {home}; "
                  "`hearth up` again picks them up.", soft_wrap=True)


def _service_password(clouds_yaml: Path) -> str:
    """The service user's password: the one this home's clouds.yaml already holds (so a `hearth serve` or
    `hearth taskmanager` started from it keeps working across restarts), else a new random one."""
    if clouds_yaml.exists():
        entries = (yaml.safe_load(clouds_yaml.read_text()) or {}).get("clouds") or {}
        password = ((entries.get(SERVICE_CLOUD_NAME) or {}).get("auth") or {}).get("password")
        if isinstance(password, str) and password:
            return password
    return secrets.token_urlsafe(24)


def _instances_in_demo(clouds_yaml: Path, database_url: str) -> int:
    """Live instances of a home made before `hearth up` had a service project (its clouds.yaml has no service
    entry). Their servers, volumes and groups are in demo, where only demo's credentials find them, so such a
    home keeps using demo until they are deleted: switching would make Hearth lose them."""
    if not clouds_yaml.exists():
        return 0
    entries = (yaml.safe_load(clouds_yaml.read_text()) or {}).get("clouds") or {}
    if CLOUD_NAME not in entries or SERVICE_CLOUD_NAME in entries:
        return 0
    if database_url.startswith("sqlite:///") and not Path(database_url.removeprefix("sqlite:///")).exists():
        return 0
    from hearth.db.models import Instance
    from hearth.db.session import make_engine

    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table(Instance.__tablename__):
                return 0
            live = select(func.count()).select_from(Instance).where(Instance.deleted_at.is_(None))
            return int(conn.execute(live).scalar_one())
    finally:
        engine.dispose()


def _listen(port: int, what: str, flag: str) -> socket.socket:
    try:
        return bind("127.0.0.1", port)
    except OSError as err:
        raise OSError(f"cannot listen on 127.0.0.1:{port} for {what}: {err.strerror or err} "
                      f"(is another `hearth up` running? choose another with {flag})") from None


def _banner(console: Console, settings: Settings, cloud_url: str, clouds_yaml: Path, delays: Delays,
            legacy: int = 0) -> None:
    from openstack_fakecloud.cli import describe_delays
    from openstack_fakecloud.config import PROFILES

    def line(text: str) -> None:  # never wrapped: paths and commands must stay copy-pastable
        console.print(text, highlight=False, soft_wrap=True)

    profile = next((name for name, known in PROFILES.items() if known == delays), None)
    console.print(f"[bold green]Hearth is up[/] (engine {settings.engine}, fakecloud delays "
                  f"{f'profile {profile}' if profile else 'from --cloud-config'})")
    line(f"  delays       {describe_delays(delays)}")
    line(f"  API          {settings.api_url}/v1.0/{{project_id}}  (the 'database' service in the catalog)")
    line(f"  database     {safe_db_url(settings.database_url)}")
    line(f"  fakecloud    {cloud_url}  (admin API under /_fakecloud)")
    clouds = ", ".join([CLOUD_NAME, "fakecloud-admin"] + ([] if legacy else [SERVICE_CLOUD_NAME]))
    line(f"  clouds.yaml  {clouds_yaml}  (clouds: {clouds})")
    if legacy:
        console.print(f"[yellow]This home predates Hearth's service project: its {legacy} instance(s) have their "
                      f"servers, volumes and groups in the demo project, so Hearth keeps using demo "
                      f"({CLOUD_NAME}). Delete them (or use another --home) and restart to move to the "
                      f"{SERVICE_PROJECT!r} project.[/]", highlight=False, soft_wrap=True)
    else:
        line(f"  resources    in project {SERVICE_PROJECT!r} (user {SERVICE_USER}, cloud {SERVICE_CLOUD_NAME}), "
             "which no tenant sees in Nova, Cinder or Neutron")
    line("\nIn another terminal, create the first instance:")
    line(f"  export {_path_prefix()}OS_CLIENT_CONFIG_FILE={clouds_yaml}")
    line("  hearth instance create db1 --flavor m1.small --size 1 --wait")
    line("  openstack --os-cloud fakecloud database instance list")
    line("\nCtrl-C stops everything; `hearth up` again resumes with the same instances.\n")


def _path_prefix() -> str:
    """`PATH=...` when the `hearth` being run is not the one a new shell would find (e.g. inside .venv)."""
    bin_dir = Path(sys.executable).parent
    found = shutil.which("hearth")
    if found and Path(found).parent == bin_dir:
        return ""
    return f"PATH={bin_dir}:$PATH "
