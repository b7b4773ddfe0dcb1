"""The `hearth` command line.

Server side: `hearth up` (everything on one machine), `hearth serve`, `hearth taskmanager`,
`hearth db upgrade`. Client side: `hearth instance ...` and `hearth secgroup ...`, which call Hearth's
REST API with the user's Keystone token (see hearth.client), exactly as python-troveclient does.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.table import Column, Table

from hearth.client import ApiError, HearthClient, fault_message
from hearth.config import Settings, load_settings
from hearth.runtime import Runtime

app = typer.Typer(help="Hearth: Database-as-a-Service for OpenStack.", no_args_is_help=True)
db_app = typer.Typer(help="Hearth's own database (schema upgrades).", no_args_is_help=True)
instance_app = typer.Typer(help="Database instances (through the Hearth API).", no_args_is_help=True)
secgroup_app = typer.Typer(help="An instance's access rules (security-group extension).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(instance_app, name="instance")
app.add_typer(secgroup_app, name="secgroup")

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


def _logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(name)s: %(message)s", datefmt="[%X]",
                        handlers=[RichHandler(console=err_console, show_path=False)])
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
    _logging(settings.log_level)
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
    _logging(settings.log_level)
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
    _logging(settings.log_level)
    runtime = _runtime(settings)
    console.print(f"Hearth task manager ({settings.workers} workers), cloud {settings.cloud!r}, "
                  f"database {safe_db_url(settings.database_url)}", highlight=False)
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
    cidrs = (instance.get("access") or {}).get("allowed_cidrs")
    return f"allowed from {', '.join(cidrs)}" if cidrs else "no allowed CIDRs"


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
        ("engine", instance.get("engine")),
        ("stack", " ".join(str(v) for v in (instance.get("stack_id"), instance.get("stack_status") and
                                             f"({instance.get('stack_status')})") if v)),
        ("datastore", " ".join(str(v) for v in (datastore.get("type"), datastore.get("version")) if v)),
        ("flavor", _flavor_label(instance, _flavor_names(client))),
        ("volume size", size),
        ("access", _access_label(instance)),
        ("addresses", ", ".join(a.get("address", "") for a in instance.get("addresses") or [] if isinstance(a, dict))
         or ", ".join(instance.get("ip") or [])),
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
    wait: WaitOption = False,
    dry_run: DryRunOption = False,
    cloud: CloudOption = "fakecloud",
) -> None:
    """Create an instance."""
    with api_client(cloud) as client:
        if dry_run:
            _show_plan(client.create_instance(name, flavor, size, datastore, version, allowed_cidr, dry_run=True))
            return
        created = client.create_instance(name, flavor, size, datastore, version, allowed_cidr)
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
    """Change a rule's CIDR (the new one opens before the old one closes)."""
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
