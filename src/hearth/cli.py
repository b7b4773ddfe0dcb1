"""The `hearth` command line.

Server side: `hearth up` (everything on one machine), `hearth serve`, `hearth taskmanager`,
`hearth db upgrade`. Client side: `hearth instance ...`, `hearth database ...`, `hearth user ...`,
`hearth root ...`, `hearth config ...` and `hearth secgroup ...`, which call Hearth's REST API with the
user's Keystone token (see hearth.client), exactly as python-troveclient does.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import Progress
from rich.table import Column, Table

from hearth.client import ApiError, HearthClient, fault_message
from hearth.config import Settings, load_settings
from hearth.logs import RequestIdFilter, json_handler
from hearth.runtime import Runtime

app = typer.Typer(help="Hearth: Database-as-a-Service for OpenStack.", no_args_is_help=True)
db_app = typer.Typer(help="Hearth's own database (schema upgrades).", no_args_is_help=True)
instance_app = typer.Typer(help="Database instances (through the Hearth API).", no_args_is_help=True)
secgroup_app = typer.Typer(help="An instance's access rules (security-group extension).", no_args_is_help=True)
database_app = typer.Typer(help="An instance's databases.", no_args_is_help=True)
user_app = typer.Typer(help="An instance's database users.", no_args_is_help=True)
root_app = typer.Typer(help="An instance's root (superuser) account.", no_args_is_help=True)
config_app = typer.Typer(help="Configuration groups: datastore settings applied to instances.",
                         no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(instance_app, name="instance")
app.add_typer(database_app, name="database")
app.add_typer(user_app, name="user")
app.add_typer(root_app, name="root")
app.add_typer(config_app, name="config")
app.add_typer(secgroup_app, name="secgroup")
admin_app = typer.Typer(help="The cloud administrator's view of every project's instances (admin role).",
                        no_args_is_help=True)
app.add_typer(admin_app, name="admin")

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@app.callback()
def _root(
    config: Annotated[Path | None, typer.Option(
        "--config", envvar="HEARTH_CONFIG", help="TOML settings file (top-level keys are settings).")] = None,
) -> None:
    """Hearth commands. Settings come from flags, then HEARTH_* variables, then the TOML file."""
    if config is not None:
        if not config.is_file():
            raise fail(f"settings file {config} does not exist")
        os.environ["HEARTH_CONFIG"] = str(config)


def _settings(**overrides: Any) -> Settings:
    try:
        return load_settings(**overrides)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in err.errors())
        raise fail(f"invalid settings: {problems}") from None
    except (OSError, ValueError) as err:  # an unreadable or malformed HEARTH_CONFIG file
        raise fail(f"cannot read settings: {err}") from None


def _logging(level: str, log_format: str = "text") -> None:
    """Server commands' logging: rich text on stderr, or JSON lines (settings.log_format) for log shippers."""
    handler: logging.Handler
    if log_format == "json":
        handler = json_handler()
    else:  # every line names the request it serves, "-" outside one
        handler = RichHandler(console=err_console, show_path=False)
        handler.addFilter(RequestIdFilter())
        handler.setFormatter(logging.Formatter("%(name)s [%(request_id)s]: %(message)s", datefmt="[%X]"))
    logging.basicConfig(level=level.upper(), handlers=[handler])
    for noisy in ("keystoneauth", "openstack", "urllib3", "stevedore", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _runtime(settings: Settings) -> Runtime:
    """The composition root for a server command; an unreachable database is an error message, not a trace."""
    from hearth.runtime import build_runtime
    from hearth.up import ensure_sqlite_dir, safe_db_url

    try:
        ensure_sqlite_dir(settings.database_url)
        return build_runtime(settings)
    except Exception as err:  # connection or migration failure: name the database, never its password
        raise fail(f"could not open {safe_db_url(settings.database_url)}: {type(err).__name__}: {err}") from None


def _check_engine(settings: Settings) -> None:
    from hearth import engines

    wanted = "natives" if settings.engine == "auto" else settings.engine
    if wanted not in engines.available():
        raise fail(f"engine {settings.engine!r} is not available; available: {', '.join(engines.available())}")


# server side ---------------------------------------------------------------------------------
@app.command()
def up(
    port: Annotated[int | None, typer.Option(help="API port (default 8779, or HEARTH_API_PORT).")] = None,
    cloud_port: Annotated[int, typer.Option(help="fakecloud port.")] = 8780,
    engine: Annotated[str | None, typer.Option(help="Resource engine for new instances.")] = None,
    home: Annotated[Path | None, typer.Option(help="Where state lives (default .hearth, or HEARTH_HOME).")] = None,
    profile: Annotated[str | None, typer.Option(
        help="fakecloud delay profile: zero or realistic (default zero, or the --cloud-config file's). It sets "
             "only the delays the --cloud-config file does not name.")] = None,
    cloud_config: Annotated[Path | None, typer.Option(
        help="fakecloud YAML/TOML configuration file; the delays it names win over --profile.")] = None,
    heat: Annotated[str, typer.Option(help="Orchestration service: fakecloud's own Heat, or 'upstream' "
                                           "OpenStack Heat 27 (installed into .heat-venv on first use).")]
    = "fakecloud",
) -> None:
    """Run fakecloud, the API and the task manager in this process, state under HEARTH_HOME.

    The API port accepts connections only once clouds.yaml is written, the schema migrated and the task
    manager running (GET /readyz says the same), so scripts may wait for the port and go.
    """
    from hearth.up import UpOptions, run_up

    settings = _settings(home=home, engine=engine)
    _check_engine(settings)
    _logging(settings.log_level, settings.log_format)
    options = UpOptions(home=settings.home, port=settings.api_port if port is None else port,
                        cloud_port=cloud_port, profile=profile, cloud_config=cloud_config, heat=heat)
    try:
        run_up(settings, options, console)
    except (OSError, ValueError) as err:
        raise fail(str(err)) from None


@app.command()
def serve(
    cloud: Annotated[str | None, typer.Option(help="Cloud name in clouds.yaml.")] = None,
    db: Annotated[str | None, typer.Option(help="Database URL (SQLAlchemy form).")] = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    engine: Annotated[str | None, typer.Option(help="Resource engine for new instances.")] = None,
    clouds_yaml: Annotated[Path | None, typer.Option(help="clouds.yaml to read the cloud from.")] = None,
    taskmanager: Annotated[bool | None, typer.Option(
        "--taskmanager/--no-taskmanager", help="Run a task manager in this process too.")] = None,
) -> None:
    """Serve the API (and, by default, a task manager) against any cloud in clouds.yaml.

    The port is bound first (a busy port fails fast) but accepts connections only once the schema is migrated
    and the task manager runs; GET /healthz answers liveness and GET /readyz readiness.
    """
    from hearth.up import bind, safe_db_url, serve_api

    settings = _settings(cloud=cloud, db_url=db, api_host=host, api_port=port, engine=engine,
                         clouds_yaml=clouds_yaml, run_taskmanager_in_api=taskmanager)
    _check_engine(settings)
    _logging(settings.log_level, settings.log_format)
    try:
        sock = bind(settings.api_host, settings.api_port)
    except OSError as err:
        raise fail(f"cannot listen on {settings.api_host}:{settings.api_port}: {err}") from None
    runtime = _runtime(settings)
    tm = "with" if settings.run_taskmanager_in_api else "without"
    console.print(f"Hearth API on http://{settings.api_host}:{sock.getsockname()[1]}/v1.0 ({tm} task manager), "
                  f"cloud {settings.cloud!r}, database {safe_db_url(settings.database_url)}", highlight=False)
    try:
        serve_api(runtime, sock, with_taskmanager=settings.run_taskmanager_in_api)
    finally:
        runtime.close()


@app.command("taskmanager")
def taskmanager_command(
    cloud: Annotated[str | None, typer.Option(help="Cloud name in clouds.yaml.")] = None,
    db: Annotated[str | None, typer.Option(help="Database URL (SQLAlchemy form).")] = None,
    clouds_yaml: Annotated[Path | None, typer.Option(help="clouds.yaml to read the cloud from.")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker threads.")] = None,
) -> None:
    """Run a task manager only (as a separate process from the API)."""
    from hearth.up import run_taskmanager, safe_db_url

    settings = _settings(cloud=cloud, db_url=db, clouds_yaml=clouds_yaml, workers=workers)
    _logging(settings.log_level, settings.log_format)
    runtime = _runtime(settings)
    console.print(f"Hearth task manager ({settings.workers} workers), cloud {settings.cloud!r}, "
                  f"database {safe_db_url(settings.database_url)}", highlight=False)
    if settings.metrics and settings.metrics_port:
        import prometheus_client

        from hearth import metrics

        prometheus_client.start_http_server(settings.metrics_port, addr="127.0.0.1", registry=metrics.REGISTRY)
        console.print(f"metrics at http://127.0.0.1:{settings.metrics_port}/metrics", highlight=False)
    try:
        run_taskmanager(runtime)
    finally:
        runtime.close()


@db_app.command("upgrade")
def db_upgrade(db: Annotated[str | None, typer.Option(help="Database URL (SQLAlchemy form).")] = None) -> None:
    """Bring the database schema to the newest revision (safe to repeat)."""
    from hearth.db.session import upgrade
    from hearth.up import ensure_sqlite_dir, safe_db_url

    settings = _settings(db_url=db)
    try:
        ensure_sqlite_dir(settings.database_url)
        upgrade(settings.database_url)
    except Exception as err:  # a connection or migration failure: say which database, without its password
        raise fail(f"could not upgrade {safe_db_url(settings.database_url)}: {type(err).__name__}: {err}") from None
    console.print(f"database {safe_db_url(settings.database_url)} is at the newest schema revision", highlight=False)


# client side ---------------------------------------------------------------------------------
CloudOption = Annotated[str, typer.Option(envvar="OS_CLOUD", help="Cloud name in clouds.yaml.")]
WaitOption = Annotated[bool, typer.Option("--wait", help="Wait until the operation is over, showing progress.")]
DryRunOption = Annotated[bool, typer.Option(
    "--dry-run", help="Show what would be done (the engine's plan); change nothing.")]


# option syntax: checked before any request -------------------------------------------------
_NIC_KEYS = {"net-id": "net-id", "subnet-id": "subnet_id", "v4-fixed-ip": "ip_address", "ip-address": "ip_address"}


def parse_nic(text: str) -> dict[str, str]:
    """`net-id=X[,v4-fixed-ip=IP]` (or `subnet-id=Y`, `ip-address=IP`) -> a Trove nic (`net-id`, `subnet_id`,
    `ip_address` keys). Raises typer.BadParameter."""
    nic: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.strip().partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise typer.BadParameter(f"{part.strip()!r} is not KEY=VALUE; expected net-id=ID[,v4-fixed-ip=IP] "
                                     "or subnet-id=ID[,v4-fixed-ip=IP]")
        if key not in _NIC_KEYS:
            raise typer.BadParameter(f"unknown key {key!r}; known: {', '.join(_NIC_KEYS)}")
        wire = _NIC_KEYS[key]
        if wire in nic:
            raise typer.BadParameter(f"{key} is given twice")
        if wire == "ip_address":
            try:
                ipaddress.ip_address(value)
            except ValueError:
                raise typer.BadParameter(f"{value!r} is not an IP address") from None
        nic[wire] = value
    if "net-id" not in nic and "subnet_id" not in nic:
        raise typer.BadParameter("a nic needs net-id= or subnet-id=")
    return nic


def parse_user(text: str) -> dict[str, Any]:
    """`NAME:PASSWORD[@DB1,DB2]` -> `{"name", "password", "databases": [{"name"}]}`. The last '@' starts the
    database list (a password holding '@' ends with one: `u:p@ss@`). Messages never quote the password."""
    name, sep, rest = text.partition(":")
    name = name.strip()
    if not sep:
        raise typer.BadParameter("expected NAME:PASSWORD[@DB1,DB2] (no ':' between name and password)")
    if not name:
        raise typer.BadParameter("expected NAME:PASSWORD[@DB1,DB2] (the user's name is missing)")
    password, at, dbs = rest.rpartition("@") if "@" in rest else (rest, "", "")
    if not password:
        raise typer.BadParameter(f"expected NAME:PASSWORD[@DB1,DB2] (user {name!r} has no password)")
    databases = [db.strip() for db in dbs.split(",")] if at and dbs else []
    if any(not db for db in databases):
        raise typer.BadParameter(f"user {name!r}: empty database name in the list after '@'")
    return {"name": name, "password": password, "databases": [{"name": db} for db in databases]}


def parse_value(text: str) -> tuple[str, Any]:
    """`KEY=VALUE` of a configuration group; VALUE is read as JSON when it is (numbers, true/false), else text."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise typer.BadParameter(f"{text!r} is not KEY=VALUE")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    if isinstance(value, (dict, list)) or value is None:
        value = raw
    return key, value


def _nics_option(values: list[str] | None) -> list[dict[str, str]] | None:
    return [parse_nic(v) for v in values] if values else values


def _users_option(values: list[str] | None) -> list[dict[str, Any]] | None:
    return [parse_user(v) for v in values] if values else values


def _values_option(values: list[str] | None) -> list[str] | None:
    for v in values or []:
        parse_value(v)
    return values


def _values(values: list[str] | None) -> dict[str, Any]:
    return dict(parse_value(v) for v in values or [])


def _show_plan(plan: dict[str, Any]) -> None:
    """A dry run's plan: which engine, which operation, and its ordered steps."""
    console.print(f"[bold]dry run[/]: {escape(str(plan.get('operation')))} by the "
                  f"{escape(str(plan.get('engine')))} engine; nothing was changed", highlight=False)
    table = Table(Column("#", justify="right"), "Action", "Target", "Detail", box=None, pad_edge=False,
                  header_style="bold underline")
    for number, step in enumerate(plan.get("steps") or [], 1):
        table.add_row(str(number), escape(str(step.get("action", ""))), escape(str(step.get("target", ""))),
                      escape(str(step.get("detail", ""))))
    console.print(table)


@contextmanager
def api_client(cloud: str) -> Iterator[HearthClient]:
    """A client for `cloud` (clouds.yaml under HEARTH_HOME, else OS_CLIENT_CONFIG_FILE); API errors exit 1."""
    from hearth.cloud import default_clouds_yaml

    settings = _settings()
    try:
        with HearthClient(cloud, default_clouds_yaml(settings.home)) as client:
            yield client
    except ApiError as err:
        raise fail(str(err)) from None


def _wait(client: HearthClient, instance_id: str, label: str, known: set[str] | None,
          gone_ok: bool = False) -> dict[str, Any] | None:
    """Wait for the operations started after `known`, with a spinner showing the status and step."""
    label = escape(label)
    with err_console.status(f"{label}...") as status:

        def progress(instance: dict[str, Any] | None, operation: dict[str, Any] | None) -> None:
            if instance is None:
                return
            step = (operation or {}).get("step")
            status.update(f"{label}: [bold]{escape(str(instance.get('status')))}[/]"
                          + (f" ({escape(str(step))})" if step else ""))

        try:
            return client.wait(instance_id, known, gone_ok=gone_ok, progress=progress)
        except KeyboardInterrupt:
            status.stop()
            err_console.print(f"Stopped waiting; the operation carries on (`hearth instance show {instance_id}`).",
                              highlight=False, soft_wrap=True)
            raise typer.Exit(130) from None


def _flavor_names(client: HearthClient) -> dict[str, str]:
    try:
        return {str(f.get("str_id") or f["id"]): str(f.get("name")) for f in client.flavors()}
    except ApiError:
        return {}


def _flavor_label(instance: dict[str, Any], names: dict[str, str]) -> str:
    flavor_id = str((instance.get("flavor") or {}).get("id", ""))
    name = names.get(flavor_id)
    return f"{name} ({flavor_id})" if name else flavor_id


def _access_label(instance: dict[str, Any]) -> str:
    access = instance.get("access") or {}
    cidrs = access.get("allowed_cidrs")
    label = f"allowed from {', '.join(cidrs)}" if cidrs else "no allowed CIDRs"
    if "is_public" in access:
        label = ("public" if access["is_public"] else "private") + f", {label}"
    if access.get("management_cidrs"):
        label += f"; management from {', '.join(access['management_cidrs'])}"
    return label


_SCHEMES = {"postgresql": ("postgresql", 5432, "postgres"), "mysql": ("mysql", 3306, ""),
            "mariadb": ("mysql", 3306, "")}


def _addresses(instance: dict[str, Any]) -> list[tuple[str, str]]:
    """(address, type) of the instance, public ones first; from `addresses`, else the bare `ip` list."""
    found = [(str(a.get("address")), str(a.get("type") or "private")) for a in instance.get("addresses") or []
             if isinstance(a, dict) and a.get("address")]
    if not found:
        found = [(str(ip), "") for ip in instance.get("ip") or []]
    return sorted(found, key=lambda a: a[1] != "public")


def _addresses_label(instance: dict[str, Any]) -> str:
    return ", ".join(f"{address} ({kind})" if kind else address for address, kind in _addresses(instance))


def connection_string(instance: dict[str, Any], user: str | None = None, database: str | None = None) -> str | None:
    """`postgresql://USER@ADDRESS:PORT/DB` at the instance's public address if it has one (never a password)."""
    addresses = _addresses(instance)
    datastore = str((instance.get("datastore") or {}).get("type") or "")
    if not addresses or datastore not in _SCHEMES:
        return None
    scheme, port, default_db = _SCHEMES[datastore]
    host = addresses[0][0]
    if ":" in host:  # IPv6
        host = f"[{host}]"
    db = database or default_db
    return f"{scheme}://{user or 'USER'}@{host}:{port}" + (f"/{db}" if db else "")


def _connection(client: HearthClient, instance: dict[str, Any]) -> str | None:
    """The connection string with the instance's first user (and that user's first database) when the API
    can list them; USER otherwise."""
    if not _addresses(instance):
        return None
    user: str | None = None
    database: str | None = None
    if instance.get("status") == "ACTIVE":
        try:
            users = client.list_users(instance["id"])
            if users:
                user = str(users[0].get("name"))
                dbs = users[0].get("databases") or []
                database = str(dbs[0].get("name")) if dbs and isinstance(dbs[0], dict) else None
            if database is None:
                listed = client.list_databases(instance["id"])
                database = str(listed[0].get("name")) if listed else None
        except (ApiError, KeyError, TypeError):  # not supported (yet) or not ready: the placeholders stay
            pass
    return connection_string(instance, user, database)


def _show(client: HearthClient, instance: dict[str, Any]) -> None:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    datastore = instance.get("datastore") or {}
    volume = instance.get("volume") or {}
    size = f"{volume.get('size')} GB" if volume.get("size") is not None else "-"
    if volume.get("used") is not None:
        size += f" ({volume['used']} GB used)"
    rows = [
        ("id", instance.get("id")),
        ("name", instance.get("name")),
        ("status", instance.get("status")),
        ("operating status", instance.get("operating_status")),
        ("engine", instance.get("engine")),
        ("stack", " ".join(str(v) for v in (instance.get("stack_id"), instance.get("stack_status") and
                                             f"({instance.get('stack_status')})") if v)),
        ("datastore", " ".join(str(v) for v in (datastore.get("type"), datastore.get("version")) if v)),
        ("flavor", _flavor_label(instance, _flavor_names(client))),
        ("volume size", size),
        ("access", _access_label(instance)),
        ("configuration", (instance.get("configuration") or {}).get("id")
         if isinstance(instance.get("configuration"), dict) else instance.get("configuration")),
        ("addresses", _addresses_label(instance)),
        ("connect", _connection(client, instance)),
        ("created", instance.get("created")),
        ("updated", instance.get("updated")),
    ]
    fault = fault_message(instance)
    if fault:
        fault_at = (instance.get("fault") or {}).get("created") if isinstance(instance.get("fault"), dict) else None
        rows.append(("fault", f"[red]{escape(fault)}[/]" + (f" ({fault_at})" if fault_at else "")))
    if instance.get("drift"):
        rows.append(("drift", f"[yellow]{escape(str(instance['drift']))}[/]"))
    for key, value in rows:
        if value not in (None, ""):
            table.add_row(key, str(value) if key in ("fault", "drift") else escape(str(value)))
    console.print(table)


@instance_app.command("list")
def instance_list(cloud: CloudOption = "fakecloud") -> None:
    """List your instances."""
    with api_client(cloud) as client:
        instances = client.list_instances()
        names = _flavor_names(client) if instances else {}
    # ids are for copying: never cut; the rest may wrap on narrow terminals
    table = Table(Column("ID", no_wrap=True, min_width=36), "Name", "Datastore", Column("Status", no_wrap=True),
                  "Flavor", "GB", box=None, pad_edge=False, header_style="bold underline")
    for inst in instances:
        ds = inst.get("datastore") or {}
        flavor_id = str((inst.get("flavor") or {}).get("id", ""))
        table.add_row(inst.get("id"), escape(str(inst.get("name"))),
                      " ".join(str(v) for v in (ds.get("type"), ds.get("version")) if v),
                      inst.get("status"), names.get(flavor_id, flavor_id),
                      str((inst.get("volume") or {}).get("size", "-")))
    console.print(table)


@instance_app.command("show")
def instance_show(instance: Annotated[str, typer.Argument(help="Instance id or name.")],
                  cloud: CloudOption = "fakecloud") -> None:
    """Show an instance: status, engine, flavor, volume size, access and fault."""
    with api_client(cloud) as client:
        _show(client, client.find_instance(instance))


@instance_app.command("create")
def instance_create(
    name: Annotated[str, typer.Argument(help="Instance name.")],
    flavor: Annotated[str, typer.Option(help="Flavor name or id.")],
    size: Annotated[int, typer.Option(help="Data volume size in GB.")],
    datastore: Annotated[str | None, typer.Option(help="Datastore, e.g. postgresql.")] = None,
    version: Annotated[str | None, typer.Option(help="Datastore version, e.g. 16.")] = None,
    allowed_cidr: Annotated[list[str] | None, typer.Option(
        "--allowed-cidr", help="CIDR allowed to reach the database (repeatable).")] = None,
    nic: Annotated[list[str] | None, typer.Option(
        "--nic", callback=_nics_option, metavar="net-id=ID[,v4-fixed-ip=IP]",
        help="Network to attach: net-id=ID or subnet-id=ID, optionally with v4-fixed-ip=IP.")] = None,
    public: Annotated[bool | None, typer.Option(
        "--public/--private", help="Give the instance a public (floating) address, or keep it private.")] = None,
    database: Annotated[list[str] | None, typer.Option(
        "--database", help="Database to create (repeatable).")] = None,
    user: Annotated[list[str] | None, typer.Option(
        "--user", callback=_users_option, metavar="NAME:PASSWORD[@DB1,DB2]",
        help="User to create, with access to the listed databases (repeatable).")] = None,
    configuration: Annotated[str | None, typer.Option(
        "--configuration", help="Configuration group (id or name) to attach.")] = None,
    wait: WaitOption = False,
    dry_run: DryRunOption = False,
    cloud: CloudOption = "fakecloud",
) -> None:
    """Create an instance."""
    # the callbacks turned --nic and --user into their wire form (the annotation is what the shell gives)
    extra: dict[str, Any] = {"nics": nic, "is_public": public, "databases": database, "users": user}
    with api_client(cloud) as client:
        if configuration:
            extra["configuration"] = client.find_configuration(configuration)["id"]
        if dry_run:
            _show_plan(client.create_instance(name, flavor, size, datastore, version, allowed_cidr, dry_run=True,
                                              **extra))
            return
        created = client.create_instance(name, flavor, size, datastore, version, allowed_cidr, **extra)
        if wait:
            created = _wait(client, created["id"], f"Building {name}", known=None) or created
        else:
            created = client.get_instance(created["id"])
        _show(client, created)


@instance_app.command("resize-flavor")
def instance_resize_flavor(
    instance: Annotated[str, typer.Argument(help="Instance id or name.")],
    flavor: Annotated[str, typer.Argument(help="New flavor name or id.")],
    wait: WaitOption = False,
    dry_run: DryRunOption = False,
    cloud: CloudOption = "fakecloud",
) -> None:
    """Give the instance another flavor (same server, volume and addresses)."""
    with api_client(cloud) as client:
        found = client.find_instance(instance)
        _instance_action(client, found, f"Resizing {found.get('name')} to {flavor}",
                         lambda dry: client.resize_flavor(found["id"], flavor, dry_run=dry), wait, dry_run)


@instance_app.command("resize-volume")
def instance_resize_volume(
    instance: Annotated[str, typer.Argument(help="Instance id or name.")],
    size: Annotated[int, typer.Argument(help="New data volume size in GB (larger than today's).")],
    wait: WaitOption = False,
    dry_run: DryRunOption = False,
    cloud: CloudOption = "fakecloud",
) -> None:
    """Grow the instance's data volume."""
    with api_client(cloud) as client:
        found = client.find_instance(instance)
        _instance_action(client, found, f"Growing {found.get('name')}'s volume to {size} GB",
                         lambda dry: client.resize_volume(found["id"], size, dry_run=dry), wait, dry_run)


@instance_app.command("restart")
def instance_restart(
    instance: Annotated[str, typer.Argument(help="Instance id or name.")],
    wait: WaitOption = False,
    dry_run: DryRunOption = False,
    cloud: CloudOption = "fakecloud",
) -> None:
    """Restart the database (same server, volume and addresses)."""
    with api_client(cloud) as client:
        found = client.find_instance(instance)
        _instance_action(client, found, f"Restarting {found.get('name')}",
                         lambda dry: client.restart(found["id"], dry_run=dry), wait, dry_run)


@instance_app.command("rebuild")
def instance_rebuild(
    instance: Annotated[str, typer.Argument(help="Instance id or name.")],
    image: Annotated[str, typer.Argument(help="Id of the guest image to rebuild the server from.")],
    wait: WaitOption = False,
    dry_run: DryRunOption = False,
    cloud: CloudOption = "fakecloud",
) -> None:
    """Rebuild the instance's server from another guest image (the data volume and addresses stay)."""
    with api_client(cloud) as client:
        found = client.find_instance(instance)
        _instance_action(client, found, f"Rebuilding {found.get('name')} from {image}",
                         lambda dry: client.rebuild(found["id"], image, dry_run=dry), wait, dry_run)


@instance_app.command("upgrade")
def instance_upgrade(
    instance: Annotated[str, typer.Argument(help="Instance id or name.")],
    version: Annotated[str, typer.Argument(help="Datastore version to move to (name or id).")],
    wait: WaitOption = False,
    dry_run: DryRunOption = False,
    cloud: CloudOption = "fakecloud",
) -> None:
    """Upgrade the instance to another version of its datastore (same major version)."""
    with api_client(cloud) as client:
        found = client.find_instance(instance)
        _instance_action(client, found, f"Upgrading {found.get('name')} to {version}",
                         lambda dry: client.upgrade(found["id"], version, dry_run=dry), wait, dry_run)


def _instance_action(client: HearthClient, instance: dict[str, Any], label: str, act: Callable[[bool], Any],
                     wait: bool, dry_run: bool) -> None:
    """What every instance action shares: `--dry-run` shows the plan; otherwise act and, with `--wait`,
    follow the operation it started. `act(dry_run)` makes the API call."""
    if dry_run:
        _show_plan(act(True))
        return
    known = client.operation_ids(instance["id"]) if wait else None
    act(False)
    _after_action(client, instance, label, known)


def _after_action(client: HearthClient, instance: dict[str, Any], label: str, known: set[str] | None) -> None:
    """With `known` (the operations before the action, i.e. --wait), wait for the new one and show the result."""
    if known is not None:
        _show(client, _wait(client, instance["id"], label, known) or client.get_instance(instance["id"]))
    else:
        err_console.print(f"{label}: accepted (`hearth instance show {instance['id']}` to follow)", highlight=False)


@instance_app.command("delete")
def instance_delete(
    instance: Annotated[str, typer.Argument(help="Instance id or name.")],
    wait: WaitOption = False,
    dry_run: DryRunOption = False,
    cloud: CloudOption = "fakecloud",
) -> None:
    """Delete an instance and every cloud resource it owns."""
    with api_client(cloud) as client:
        found = client.find_instance(instance)
        if dry_run:
            _show_plan(client.delete_instance(found["id"], dry_run=True))
            return
        known = client.operation_ids(found["id"]) if wait else set()
        client.delete_instance(found["id"])
        if not wait:
            err_console.print(f"Deleting {found.get('name')} ({found['id']}): accepted", highlight=False)
            return
        left = _wait(client, found["id"], f"Deleting {found.get('name')}", known, gone_ok=True)
        if left is not None:
            raise ApiError(f"instance {found['id']} is still there ({left.get('status')}): "
                           f"{fault_message(left) or 'the delete did not finish'}")
        console.print(f"Deleted {found.get('name')} ({found['id']})", highlight=False)


def _move(instance: str, action: str, label: str, wait: bool, dry_run: bool, cloud: str) -> None:
    with api_client(cloud) as client:
        found = client.find_instance(instance)
        move = client.adopt if action == "adopt" else client.release
        _instance_action(client, found, f"{label} {found.get('name')}",
                         lambda dry: move(found["id"], dry_run=dry), wait, dry_run)


@instance_app.command("adopt")
def instance_adopt(
    instance: Annotated[str, typer.Argument(help="Instance id or name (owned by natives).")],
    wait: WaitOption = False,
    dry_run: DryRunOption = False,
    cloud: CloudOption = "fakecloud",
) -> None:
    """Admin: move an instance into a Heat stack that adopts its existing resources (engine = migration).

    Refused, with the list of differences, when the cloud no longer matches Hearth's record."""
    _move(instance, "adopt", "Adopting", wait, dry_run, cloud)


@instance_app.command("release")
def instance_release(
    instance: Annotated[str, typer.Argument(help="Instance id or name (owned by the orchestrator).")],
    wait: WaitOption = False,
    dry_run: DryRunOption = False,
    cloud: CloudOption = "fakecloud",
) -> None:
    """Admin: abandon the instance's Heat stack and hand its untouched resources back to natives."""
    _move(instance, "release", "Releasing", wait, dry_run, cloud)


@instance_app.command("events")
def instance_events(instance: Annotated[str, typer.Argument(help="Instance id or name.")],
                    cloud: CloudOption = "fakecloud") -> None:
    """The instance's event log: what Hearth did to it, and what went wrong."""
    with api_client(cloud) as client:
        events = client.events(client.find_instance(instance)["id"])
    table = Table(Column("When", no_wrap=True), "Level", "Message", box=None, pad_edge=False,
                  header_style="bold underline")
    for event in events:
        level = str(event.get("level", ""))
        style = {"error": "red", "warning": "yellow"}.get(level.lower())
        table.add_row(str(event.get("at") or event.get("created") or ""), level,
                      escape(str(event.get("message", ""))), style=style)
    console.print(table)


# security groups -----------------------------------------------------------------------------
def _rules_table(rules: list[dict[str, Any]]) -> Table:
    table = Table(Column("Rule ID", no_wrap=True, min_width=36), "Protocol", "Ports", "CIDR", box=None,
                  pad_edge=False, header_style="bold underline")
    for rule in rules:
        ports = f"{rule.get('from_port')}" if rule.get("from_port") == rule.get("to_port") \
            else f"{rule.get('from_port')}-{rule.get('to_port')}"
        table.add_row(str(rule.get("id")), str(rule.get("protocol")), ports, str(rule.get("cidr")))
    return table


def _instance_of_rule(client: HearthClient, rule_id: str) -> str | None:
    for group in client.get("/security-groups").get("security_groups", []):
        if any(r.get("id") == rule_id for r in group.get("rules") or []):
            return group.get("instance_id")
    return None


@secgroup_app.command("rules")
def secgroup_rules(target: Annotated[str, typer.Argument(help="Instance id or security group id.")],
                   cloud: CloudOption = "fakecloud") -> None:
    """Show the rules on an instance's security group."""
    with api_client(cloud) as client:
        group = client.security_group(target)
    console.print(f"security group {group.get('id')} of instance {group.get('instance_id')}",
                  highlight=False, soft_wrap=True)
    console.print(_rules_table(group.get("rules") or []))


@secgroup_app.command("add-rule")
def secgroup_add_rule(
    target: Annotated[str, typer.Argument(help="Instance id or security group id.")],
    cidr: Annotated[str, typer.Argument(help="CIDR to allow, e.g. 10.0.0.0/24.")],
    wait: WaitOption = False,
    dry_run: DryRunOption = False,
    cloud: CloudOption = "fakecloud",
) -> None:
    """Allow a CIDR to reach the instance's database port."""
    with api_client(cloud) as client:
        group = client.security_group(target)
        rules = _rule_action(client, lambda: group.get("instance_id"), f"Opening {cidr}",
                             lambda dry: client.add_rule(group["id"], cidr, dry_run=dry), wait, dry_run)
        if not dry_run:
            console.print(_rules_table(rules))


@secgroup_app.command("update-rule")
def secgroup_update_rule(
    rule_id: Annotated[str, typer.Argument(help="Rule id (see `hearth secgroup rules`).")],
    cidr: Annotated[str, typer.Argument(help="The CIDR the rule should allow instead.")],
    wait: WaitOption = False,
    dry_run: DryRunOption = False,
    cloud: CloudOption = "fakecloud",
) -> None:
    """Change a rule's CIDR. Every engine opens the new one before it closes the old one: natives creates the
    new Neutron rule first; the stack engines update the stack twice (both rules, then the new one alone)."""
    with api_client(cloud) as client:
        rule = _rule_action(client, lambda: _instance_of_rule(client, rule_id), f"Changing rule {rule_id} to {cidr}",
                            lambda dry: client.update_rule(rule_id, cidr, dry_run=dry), wait, dry_run)
        if not dry_run:
            console.print(_rules_table([rule] if rule else []))


@secgroup_app.command("delete-rule")
def secgroup_delete_rule(
    rule_id: Annotated[str, typer.Argument(help="Rule id (see `hearth secgroup rules`).")],
    wait: WaitOption = False,
    dry_run: DryRunOption = False,
    cloud: CloudOption = "fakecloud",
) -> None:
    """Remove a rule."""
    with api_client(cloud) as client:
        _rule_action(client, lambda: _instance_of_rule(client, rule_id), f"Removing rule {rule_id}",
                     lambda dry: client.delete_rule(rule_id, dry_run=dry), wait, dry_run)
    if not dry_run:
        console.print(f"Deleted rule {rule_id}", highlight=False)


def _rule_action(client: HearthClient, instance_of: Callable[[], str | None], label: str,
                 act: Callable[[bool], Any], wait: bool, dry_run: bool) -> Any:
    """What every rule command shares: `--dry-run` shows the plan (and returns None); otherwise act and, with
    `--wait`, follow the operation it started on the rule's instance. Returns the API's answer."""
    if dry_run:
        _show_plan(act(True))
        return None
    instance_id = instance_of() if wait else None
    known = client.operation_ids(instance_id) if instance_id else set()
    result = act(False)
    if instance_id:
        _wait(client, instance_id, label, known)
    return result


# databases, users, root -----------------------------------------------------------------------
InstanceArg = Annotated[str, typer.Argument(help="Instance id or name.")]


def _names_table(header: str, items: list[dict[str, Any]]) -> Table:
    table = Table(header, box=None, pad_edge=False, header_style="bold underline")
    for item in items:
        table.add_row(escape(str(item.get("name"))))
    return table


@database_app.command("list")
def database_list(instance: InstanceArg, cloud: CloudOption = "fakecloud") -> None:
    """List the instance's databases."""
    with api_client(cloud) as client:
        databases = client.list_databases(client.find_instance(instance)["id"])
    console.print(_names_table("Name", databases))


@database_app.command("create")
def database_create(
    instance: InstanceArg,
    names: Annotated[list[str], typer.Argument(help="Database name(s).")],
    cloud: CloudOption = "fakecloud",
) -> None:
    """Create databases on the instance."""
    with api_client(cloud) as client:
        found = client.find_instance(instance)
        client.create_databases(found["id"], names)
    console.print(f"Created database(s) {', '.join(names)} on {found.get('name')}", highlight=False)


@database_app.command("delete")
def database_delete(
    instance: InstanceArg,
    name: Annotated[str, typer.Argument(help="Database name.")],
    cloud: CloudOption = "fakecloud",
) -> None:
    """Drop a database of the instance."""
    with api_client(cloud) as client:
        found = client.find_instance(instance)
        client.delete_database(found["id"], name)
    console.print(f"Deleted database {name} of {found.get('name')}", highlight=False)


def _user_databases(user: dict[str, Any]) -> str:
    return ", ".join(str(d.get("name")) for d in user.get("databases") or [] if isinstance(d, dict))


@user_app.command("list")
def user_list(instance: InstanceArg, cloud: CloudOption = "fakecloud") -> None:
    """List the instance's users and the databases each may use."""
    with api_client(cloud) as client:
        users = client.list_users(client.find_instance(instance)["id"])
    table = Table("Name", "Host", "Databases", box=None, pad_edge=False, header_style="bold underline")
    for user in users:
        table.add_row(escape(str(user.get("name"))), escape(str(user.get("host") or "%")),
                      escape(_user_databases(user)))
    console.print(table)


PasswordOption = Annotated[str, typer.Option(
    prompt=True, hide_input=True, confirmation_prompt=True, help="The user's password (asked when not given).")]


@user_app.command("create")
def user_create(
    instance: InstanceArg,
    name: Annotated[str, typer.Argument(help="User name.")],
    password: PasswordOption,
    database: Annotated[list[str] | None, typer.Option(
        "--database", help="Database the user may use (repeatable).")] = None,
    cloud: CloudOption = "fakecloud",
) -> None:
    """Create a user on the instance."""
    if not password:
        raise fail("the password must not be empty")
    with api_client(cloud) as client:
        found = client.find_instance(instance)
        client.create_users(found["id"], [{"name": name, "password": password,
                                           "databases": [{"name": db} for db in database or []]}])
    console.print(f"Created user {name} on {found.get('name')}", highlight=False)


@user_app.command("show")
def user_show(
    instance: InstanceArg,
    name: Annotated[str, typer.Argument(help="User name.")],
    cloud: CloudOption = "fakecloud",
) -> None:
    """Show a user: host and databases."""
    with api_client(cloud) as client:
        user = client.get_user(client.find_instance(instance)["id"], name)
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in (("name", user.get("name")), ("host", user.get("host") or "%"),
                       ("databases", _user_databases(user))):
        table.add_row(key, escape(str(value)))
    console.print(table)


@user_app.command("update")
def user_update(
    instance: InstanceArg,
    name: Annotated[str, typer.Argument(help="User name.")],
    new_name: Annotated[str | None, typer.Option("--new-name", help="Rename the user.")] = None,
    password: Annotated[bool, typer.Option(
        "--password", help="Set a new password (asked, hidden).")] = False,
    cloud: CloudOption = "fakecloud",
) -> None:
    """Rename a user or change its password."""
    changes: dict[str, Any] = {}
    if new_name:
        changes["name"] = new_name
    if password:
        changes["password"] = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
        if not changes["password"]:
            raise fail("the password must not be empty")
    if not changes:
        raise fail("nothing to change: give --new-name and/or --password")
    with api_client(cloud) as client:
        found = client.find_instance(instance)
        client.update_user(found["id"], name, changes)
    console.print(f"Updated user {name} of {found.get('name')}", highlight=False)


@user_app.command("delete")
def user_delete(
    instance: InstanceArg,
    name: Annotated[str, typer.Argument(help="User name.")],
    cloud: CloudOption = "fakecloud",
) -> None:
    """Drop a user of the instance."""
    with api_client(cloud) as client:
        found = client.find_instance(instance)
        client.delete_user(found["id"], name)
    console.print(f"Deleted user {name} of {found.get('name')}", highlight=False)


@user_app.command("grant")
def user_grant(
    instance: InstanceArg,
    name: Annotated[str, typer.Argument(help="User name.")],
    databases: Annotated[list[str], typer.Argument(help="Database name(s).")],
    cloud: CloudOption = "fakecloud",
) -> None:
    """Let a user use databases."""
    with api_client(cloud) as client:
        found = client.find_instance(instance)
        client.grant(found["id"], name, databases)
    console.print(f"Granted {name} access to {', '.join(databases)}", highlight=False)


@user_app.command("revoke")
def user_revoke(
    instance: InstanceArg,
    name: Annotated[str, typer.Argument(help="User name.")],
    database: Annotated[str, typer.Argument(help="Database name.")],
    cloud: CloudOption = "fakecloud",
) -> None:
    """Take a user's access to a database away."""
    with api_client(cloud) as client:
        found = client.find_instance(instance)
        client.revoke(found["id"], name, database)
    console.print(f"Revoked {name}'s access to {database}", highlight=False)


@root_app.command("enable")
def root_enable(instance: InstanceArg, cloud: CloudOption = "fakecloud") -> None:
    """Enable the root user (a new password each time); prints its name and password once."""
    with api_client(cloud) as client:
        user = client.enable_root(client.find_instance(instance)["id"])
    console.print(f"root user: {escape(str(user.get('name')))}\npassword: {escape(str(user.get('password')))}",
                  highlight=False)


@root_app.command("disable")
def root_disable(instance: InstanceArg, cloud: CloudOption = "fakecloud") -> None:
    """Disable the root user."""
    with api_client(cloud) as client:
        found = client.find_instance(instance)
        client.disable_root(found["id"])
    console.print(f"root disabled on {found.get('name')}", highlight=False)


@root_app.command("show")
def root_show(instance: InstanceArg, cloud: CloudOption = "fakecloud") -> None:
    """Whether root was ever enabled on the instance."""
    with api_client(cloud) as client:
        enabled = client.root_enabled(client.find_instance(instance)["id"])
    console.print(f"root enabled: {'yes' if enabled else 'no'}", highlight=False)


# configuration groups -------------------------------------------------------------------------
ConfigArg = Annotated[str, typer.Argument(help="Configuration group id or name.")]
ValueOption = Annotated[list[str] | None, typer.Option(
    "--value", callback=_values_option, metavar="KEY=VALUE",
    help="A setting, e.g. max_connections=100 (repeatable; numbers and true/false are sent as such).")]


def _show_configuration(config: dict[str, Any]) -> None:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    rows = [("id", config.get("id")), ("name", config.get("name")), ("description", config.get("description")),
            ("datastore", " ".join(str(v) for v in (config.get("datastore_name"),
                                                    config.get("datastore_version_name")) if v)),
            ("instances", config.get("instance_count")), ("created", config.get("created")),
            ("updated", config.get("updated"))]
    for key, value in rows:
        if value not in (None, ""):
            table.add_row(key, escape(str(value)))
    console.print(table)
    values = config.get("values") or {}
    if values:
        vt = Table("Setting", "Value", box=None, pad_edge=False, header_style="bold underline")
        for key, value in sorted(values.items()):
            vt.add_row(escape(str(key)), escape(json.dumps(value) if not isinstance(value, str) else value))
        console.print(vt)


@config_app.command("create")
def config_create(
    name: Annotated[str, typer.Argument(help="Configuration group name.")],
    value: ValueOption = None,
    datastore: Annotated[str | None, typer.Option(help="Datastore, e.g. postgresql.")] = None,
    version: Annotated[str | None, typer.Option(help="Datastore version.")] = None,
    description: Annotated[str | None, typer.Option(help="Description.")] = None,
    cloud: CloudOption = "fakecloud",
) -> None:
    """Create a configuration group."""
    with api_client(cloud) as client:
        _show_configuration(client.create_configuration(name, _values(value), datastore, version, description))


@config_app.command("list")
def config_list(cloud: CloudOption = "fakecloud") -> None:
    """List your configuration groups."""
    with api_client(cloud) as client:
        configs = client.list_configurations()
    table = Table(Column("ID", no_wrap=True, min_width=36), "Name", "Datastore", "Description", box=None,
                  pad_edge=False, header_style="bold underline")
    for c in configs:
        table.add_row(str(c.get("id")), escape(str(c.get("name"))),
                      " ".join(str(v) for v in (c.get("datastore_name"), c.get("datastore_version_name")) if v),
                      escape(str(c.get("description") or "")))
    console.print(table)


@config_app.command("show")
def config_show(config: ConfigArg, cloud: CloudOption = "fakecloud") -> None:
    """Show a configuration group and its values."""
    with api_client(cloud) as client:
        _show_configuration(client.find_configuration(config))


@config_app.command("update")
def config_update(
    config: ConfigArg,
    value: ValueOption = None,
    name: Annotated[str | None, typer.Option(help="New name.")] = None,
    description: Annotated[str | None, typer.Option(help="New description.")] = None,
    cloud: CloudOption = "fakecloud",
) -> None:
    """Replace ALL the group's values with the given ones (`patch` changes some only)."""
    with api_client(cloud) as client:
        found = client.find_configuration(config)
        client.update_configuration(found["id"], _values(value), name, description)
        _show_configuration(client.get_configuration(found["id"]))


@config_app.command("patch")
def config_patch(config: ConfigArg, value: ValueOption = None, cloud: CloudOption = "fakecloud") -> None:
    """Set some values of the group; the others stay."""
    if not value:
        raise fail("nothing to change: give --value KEY=VALUE")
    with api_client(cloud) as client:
        found = client.find_configuration(config)
        client.patch_configuration(found["id"], _values(value))
        _show_configuration(client.get_configuration(found["id"]))


@config_app.command("delete")
def config_delete(config: ConfigArg, cloud: CloudOption = "fakecloud") -> None:
    """Delete a configuration group (refused while instances use it)."""
    with api_client(cloud) as client:
        found = client.find_configuration(config)
        client.delete_configuration(found["id"])
    console.print(f"Deleted configuration group {found.get('name')} ({found['id']})", highlight=False)


@config_app.command("attach")
def config_attach(
    instance: InstanceArg,
    config: ConfigArg,
    wait: WaitOption = False,
    cloud: CloudOption = "fakecloud",
) -> None:
    """Attach a configuration group to an instance."""
    with api_client(cloud) as client:
        found = client.find_instance(instance)
        group = client.find_configuration(config)
        _instance_action(client, found, f"Attaching {group.get('name')} to {found.get('name')}",
                         lambda dry: client.set_configuration(found["id"], group["id"], dry_run=dry), wait, False)


@config_app.command("detach")
def config_detach(instance: InstanceArg, wait: WaitOption = False, cloud: CloudOption = "fakecloud") -> None:
    """Detach the instance's configuration group (its settings go back to the defaults)."""
    with api_client(cloud) as client:
        found = client.find_instance(instance)
        _instance_action(client, found, f"Detaching the configuration group of {found.get('name')}",
                         lambda dry: client.set_configuration(found["id"], None, dry_run=dry), wait, False)


@config_app.command("instances")
def config_instances(config: ConfigArg, cloud: CloudOption = "fakecloud") -> None:
    """The instances a configuration group is attached to."""
    with api_client(cloud) as client:
        instances = client.configuration_instances(client.find_configuration(config)["id"])
    table = Table(Column("ID", no_wrap=True, min_width=36), "Name", box=None, pad_edge=False,
                  header_style="bold underline")
    for inst in instances:
        table.add_row(str(inst.get("id")), escape(str(inst.get("name"))))
    console.print(table)


@config_app.command("parameters")
def config_parameters(
    datastore: Annotated[str, typer.Argument(help="Datastore, e.g. postgresql.")],
    version: Annotated[str, typer.Argument(help="Datastore version (name or id).")],
    cloud: CloudOption = "fakecloud",
) -> None:
    """The settings a configuration group may hold for a datastore version, with their types and ranges."""
    with api_client(cloud) as client:
        parameters = client.configuration_parameters(datastore, version)
    table = Table("Name", "Type", "Min", "Max", "Restart", box=None, pad_edge=False, header_style="bold underline")
    for prm in parameters:
        table.add_row(escape(str(prm.get("name"))), str(prm.get("type", "")),
                      "" if prm.get("min") is None else str(prm.get("min")),
                      "" if prm.get("max") is None else str(prm.get("max")),
                      "yes" if prm.get("restart_required") else "no")
    console.print(table)


def main() -> None:
    app()


if __name__ == "__main__":
    main()


# the cloud administrator ----------------------------------------------------------------------------
@admin_app.command("list")
def admin_list(
    project: Annotated[str | None, typer.Option(help="Only this project's instances (its id).")] = None,
    engine: Annotated[str | None, typer.Option(help="Only instances this engine owns (natives, orchestrator).")] = None,
    status: Annotated[str | None, typer.Option(help="Only instances in this status (ACTIVE, ERROR, ...).")] = None,
    drifted: Annotated[bool | None, typer.Option("--drifted/--not-drifted",
                                                 help="Only instances whose cloud differs from the record "
                                                      "(or only those that do not).")] = None,
    cloud: CloudOption = "fakecloud-admin",
) -> None:
    """Every project's instances, with their project and owning engine."""
    with api_client(cloud) as client:
        instances = client.mgmt_instances(project=project, engine=engine, status=status, drifted=drifted)
    table = Table(Column("ID", no_wrap=True, min_width=36), Column("Project", no_wrap=True), "Name",
                  Column("Status", no_wrap=True), "Engine", box=None, pad_edge=False, header_style="bold underline")
    for inst in instances:
        table.add_row(inst.get("id"), str(inst.get("tenant_id")), escape(str(inst.get("name"))), inst.get("status"),
                      str(inst.get("engine")))
    console.print(table)


@admin_app.command("show")
def admin_show(instance: Annotated[str, typer.Argument(help="Instance id (any project's).")],
               cloud: CloudOption = "fakecloud-admin") -> None:
    """Any project's instance, as its owner sees it, plus its project."""
    with api_client(cloud) as client:
        found = client.mgmt_instance(instance)
        err_console.print(f"project {found.get('tenant_id')}", highlight=False)
        _show(client, found)


@admin_app.command("summary")
def admin_summary(cloud: CloudOption = "fakecloud-admin") -> None:
    """The fleet: instances by engine and by status, how many have drifted, the share on Heat."""
    with api_client(cloud) as client:
        fleet = client.fleet()
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_row("instances", str(fleet["instances"]))
    table.add_row("projects", str(fleet["projects"]))
    for engine, count in fleet["by_engine"].items():
        table.add_row(f"engine {engine}", str(count))
    for status, count in fleet["by_status"].items():
        table.add_row(f"status {status}", str(count))
    table.add_row("drifted", str(fleet["drifted"]))
    on_heat = fleet.get("on_heat")
    table.add_row("on Heat", "-" if on_heat is None else f"{100 * on_heat:.0f}%")
    console.print(table)


@admin_app.command("orphans")
def admin_orphans(
    delete: Annotated[bool, typer.Option("--delete", help="Delete them (without it nothing is deleted).")] = False,
    cloud: CloudOption = "fakecloud-admin",
) -> None:
    """Cloud resources named for Hearth's instances that no live instance records: each with its age and why."""
    with api_client(cloud) as client:
        answer = client.delete_orphans() if delete else {"orphans": client.orphans()}
    table = Table("Kind", Column("ID", no_wrap=True), Column("Age", justify="right"), "Why", box=None,
                  pad_edge=False, header_style="bold underline")
    for orphan in answer["orphans"]:
        age = orphan.get("age_seconds")
        table.add_row(orphan["kind"], orphan["id"], "-" if age is None else f"{age} s", escape(orphan["why"]))
    console.print(table)
    if delete:
        err_console.print(f"deleted {answer['deleted']}", highlight=False)
        for failure in answer["failed"]:
            err_console.print(f"[red]not deleted:[/] {escape(failure)}")
        if answer["failed"]:
            raise typer.Exit(1)


@admin_app.command("drift")
def admin_drift(instance: Annotated[str, typer.Argument(help="Instance id (any project's).")],
                cloud: CloudOption = "fakecloud-admin") -> None:
    """Compare an instance with the cloud now: what differs from Hearth's record (exit 1 when something does)."""
    with api_client(cloud) as client:
        found = client.drift(instance)
    if not found:
        console.print("no drift: the cloud holds what Hearth records")
        return
    for difference in found:
        console.print(f"- {escape(difference)}")
    raise typer.Exit(1)


@admin_app.command("reconcile")
def admin_reconcile(
    instance: Annotated[str, typer.Argument(help="Instance id (any project's).")],
    wait: WaitOption = False,
    dry_run: DryRunOption = False,
    cloud: CloudOption = "fakecloud-admin",
) -> None:
    """Repair drift: converge the cloud back to what Hearth records.

    natives applies the difference (the flavor back, missing rules created and extra ones deleted, the volume
    attached, the group on the ports); the stack engines run a Heat stack check, then a stack update with
    Heat's converge flag. A volume grown outside Hearth keeps its size (Cinder cannot shrink it): the record
    takes it. An instance whose server or volume is gone cannot be repaired: the operation fails and says so."""
    with api_client(cloud) as client:
        found = client.mgmt_instance(instance)
        _instance_action(client, found, f"Reconciling {found.get('name')}",
                         lambda dry: client.reconcile(found["id"], dry_run=dry), wait, dry_run)


@admin_app.command("reset-status")
def admin_reset_status(instance: Annotated[str, typer.Argument(help="Instance id (any project's).")],
                       cloud: CloudOption = "fakecloud-admin") -> None:
    """Trove's reset-status: an instance left in ERROR by a failed operation goes back to idle, so it can be
    reconciled or changed again (refused while an operation runs; other states are left as they are)."""
    with api_client(cloud) as client:
        client.reset_status(instance)
        found = client.mgmt_instance(instance)
    console.print(f"{found.get('name')} ({found['id']}): {found.get('status')}", highlight=False)


def _migration_table(job: dict[str, Any]) -> Table:
    table = Table(Column("Instance", no_wrap=True), "State", "Note", box=None, pad_edge=False,
                  header_style="bold underline")
    for entry in job["instances"]:
        table.add_row(entry["id"], entry["state"], escape(str(entry.get("note") or "")))
    for refused in job.get("refused_by_plan", []):
        table.add_row(refused["id"], "refused by the plan", escape("; ".join(refused["reasons"])))
    return table


@admin_app.command("migrate")
def admin_migrate(
    to: Annotated[str, typer.Option("--to", help="orchestrator (adopt into Heat stacks) or natives (release).")],
    project: Annotated[str | None, typer.Option(help="Only this project's instances (its id).")] = None,
    batch: Annotated[int | None, typer.Option(help="At most this many instances in this migration.")] = None,
    max_in_flight: Annotated[int, typer.Option(help="Instances moving at once.")] = 10,
    dry_run: DryRunOption = False,
    wait: WaitOption = False,
    cloud: CloudOption = "fakecloud-admin",
) -> None:
    """Move the fleet between natives and Heat stacks, a few at a time (durable: pause, resume, cancel)."""
    with api_client(cloud) as client:
        if dry_run:
            plan = client.migrate(to, project, batch, max_in_flight, dry_run=True)
            console.print(f"would move {len(plan['move'])} instance(s) to {to}:")
            for iid in plan["move"]:
                console.print(f"  {iid}")
            for refused in plan["refused"]:
                console.print(f"  refused {refused['id']}: {escape('; '.join(refused['reasons']))}")
            return
        job = client.migrate(to, project, batch, max_in_flight)
        err_console.print(f"migration {job['id']}: {len(job['instances'])} instance(s) to {to}", highlight=False)
        if wait:
            total = max(len(job["instances"]), 1)
            with Progress(console=err_console, transient=True) as progress:
                task = progress.add_task(f"to {to}", total=total)
                while job["state"] in ("running", "paused"):
                    counts = job["counts"]
                    progress.update(task, completed=counts["moved"] + counts["failed"] + counts["refused"],
                                    description=f"to {to} ({job['state']}, {counts['moving']} moving)")
                    time.sleep(0.5)
                    job = client.migration(job["id"])
        console.print(_migration_table(job))
        if job["counts"]["failed"]:
            raise typer.Exit(1)


@admin_app.command("migration")
def admin_migration(
    migration_id: Annotated[str, typer.Argument(help="Migration id (from hearth admin migrate).")],
    action: Annotated[str | None, typer.Argument(help="pause, resume or cancel (none: show it).")] = None,
    cloud: CloudOption = "fakecloud-admin",
) -> None:
    """Show a fleet migration's progress, or pause, resume or cancel it."""
    with api_client(cloud) as client:
        job = client.migration_action(migration_id, action) if action else client.migration(migration_id)
    err_console.print(f"migration {job['id']} to {job['to']}: {job['state']}, {job['counts']}", highlight=False)
    console.print(_migration_table(job))
