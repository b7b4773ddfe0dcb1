"""`fakecloud serve`: run the cloud in the foreground and write a clouds.yaml for it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from fakecloud.config import PROFILES, load_config

app = typer.Typer(help="fakecloud: an embedded OpenStack for tests and local runs.", no_args_is_help=True)
console = Console()


@app.callback()
def _root() -> None:
    """fakecloud commands."""


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind (keep it on loopback).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port for every service.")] = 8780,
    state: Annotated[Path | None, typer.Option(help="Keep resources in this file across restarts.")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML or TOML configuration file.")] = None,
    clouds_yaml: Annotated[Path, typer.Option(help="Where to write the clouds.yaml entries.")] = Path(
        "clouds.yaml"
    ),
    profile: Annotated[str | None, typer.Option(help=f"Delay profile: {', '.join(PROFILES)}.")] = None,
) -> None:
    """Serve Keystone, Nova, Cinder, Neutron and Glance on one port until Ctrl-C."""
    from fakecloud.server import CloudServer, write_clouds_yaml

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = load_config(config)
    if profile is not None:
        if profile not in PROFILES:
            raise typer.BadParameter(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
        cfg.delays = PROFILES[profile].model_copy()
    server = CloudServer(cfg, host=host, port=port, state_file=state)
    written = write_clouds_yaml(clouds_yaml, server.url, cfg)
    console.print(f"[bold green]fakecloud[/] listening on {server.url}")
    console.print(f"clouds.yaml: {written.resolve()} (clouds: fakecloud, fakecloud-admin)")
    console.print("try:  OS_CLOUD=fakecloud openstack server list")
    server.serve_forever()
    console.print("fakecloud stopped" + (f"; state saved to {state}" if state else ""))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
