"""`fakecloud serve`: run the cloud in the foreground and write a clouds.yaml for it."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, cast

import typer
import yaml
from rich.console import Console

from openstack_fakecloud.config import PROFILES, CloudConfig, Delays, load_config
from openstack_fakecloud.logs import LOG_FORMATS, LogFormat, configure_logging

app = typer.Typer(help="fakecloud: an embedded OpenStack for tests and local runs.", no_args_is_help=True)
console = Console()


@app.callback()
def _root() -> None:
    """fakecloud commands."""


def delays_in_force(config: CloudConfig, path: str | Path | None, profile: str | None) -> Delays:
    """The delays a cloud started from `path` runs with: every delay the file names, then the rest from
    `profile` (given on the command line), else from the file's own `profile`, else zero.

    The file is read again for the names it gives: a loaded CloudConfig cannot tell a delay the file set from
    one its `profile` filled in, and a profile on the command line must only fill what the file leaves unset.
    """
    base = profile or config.profile or "zero"
    if base not in PROFILES:
        raise ValueError(f"unknown profile {base!r}; choose one of {', '.join(PROFILES)}")
    named: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        text = path.read_text()
        data = tomllib.loads(text) if path.suffix == ".toml" else (yaml.safe_load(text) or {})
        named = {key: getattr(config.delays, key) for key in (data.get("delays") or {})}
    return PROFILES[base].model_copy(update=named)


def describe_delays(delays: Delays) -> str:
    """The non-zero delays, for banners: `server_boot 1.5 s, volume_create 2 s`, or `none`."""
    shown = [f"{name} {value:g} s" for name, value in delays.model_dump().items() if value]
    return ", ".join(shown) or "none (every transition is immediate)"


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind (keep it on loopback).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port for every service.")] = 8780,
    state: Annotated[Path | None, typer.Option(help="Keep resources in this file across restarts.")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML or TOML configuration file.")] = None,
    clouds_yaml: Annotated[Path, typer.Option(help="Where to write the clouds.yaml entries.")] = Path(
        "clouds.yaml"
    ),
    profile: Annotated[str | None, typer.Option(
        help=f"Delay profile: {', '.join(PROFILES)}; fills the delays the --config file does not name.")] = None,
    log_format: Annotated[str | None, typer.Option(
        help=f"Log lines as {' or '.join(LOG_FORMATS)} (JSON lines for log shippers); default: the --config "
             "file's log_format, else text.")] = None,
) -> None:
    """Serve Keystone, Nova, Cinder, Neutron and Glance on one port until Ctrl-C.

    The port accepts connections only once clouds.yaml is written and the saved state is loaded, so a script
    may start using the cloud as soon as it can connect (or poll GET /_fakecloud/ready).
    """
    from openstack_fakecloud.server import CloudServer, write_clouds_yaml

    cfg = load_config(config)
    if log_format is not None and log_format not in LOG_FORMATS:
        raise typer.BadParameter(f"choose one of {', '.join(LOG_FORMATS)}", param_hint="--log-format")
    configure_logging(cast(LogFormat, log_format or cfg.log_format))  # checked just above
    try:
        cfg.delays = delays_in_force(cfg, config, profile)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    server = CloudServer(cfg, host=host, port=port, state_file=state)
    written = write_clouds_yaml(clouds_yaml, server.url, cfg)
    console.print(f"[bold green]fakecloud[/] listening on {server.url}")
    console.print(f"clouds.yaml: {written.resolve()} (clouds: fakecloud, fakecloud-admin)")
    console.print(f"delays: {describe_delays(cfg.delays)}", highlight=False)
    console.print("try:  OS_CLOUD=fakecloud openstack server list")
    server.serve_forever()
    console.print("fakecloud stopped" + (f"; state saved to {state}" if state else ""))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
