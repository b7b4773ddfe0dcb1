"""Running fakecloud: on a background thread (tests, `hearth up`) or in the foreground (`fakecloud serve`)."""

from __future__ import annotations

import contextlib
import socket
import threading
from pathlib import Path
from typing import Any

import uvicorn
import yaml

from fakecloud.config import CloudConfig
from fakecloud.state import Cloud


def bind(host: str, port: int) -> socket.socket:
    """Bind first, so the catalog can name the real port (port 0 picks a free one)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


class CloudServer:
    """One fakecloud on one port, served by uvicorn."""

    def __init__(
        self,
        config: CloudConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        state_file: str | Path | None = None,
    ) -> None:
        from fakecloud.app import build_app

        self.sock = bind(host, port)
        self.host, self.port = self.sock.getsockname()[:2]
        self.url = f"http://{self.host}:{self.port}"
        self.cloud = Cloud(config, base_url=self.url)
        self.app = build_app(self.cloud, state_file=state_file)
        uv_config = uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan="on", timeout_keep_alive=120
        )
        self.server = uvicorn.Server(uv_config)
        self._thread: threading.Thread | None = None

    def serve_forever(self) -> None:
        """Foreground: returns when interrupted (Ctrl-C), after saving the state."""
        # uvicorn shuts down gracefully (the lifespan saves the state), then re-raises the SIGINT it caught.
        with contextlib.suppress(KeyboardInterrupt):
            self.server.run(sockets=[self.sock])

    def start(self, timeout: float = 30.0) -> CloudServer:
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, name="fakecloud", daemon=True
        )
        self._thread.start()
        waited = 0.0
        while not self.server.started:
            if not self._thread.is_alive():
                raise RuntimeError("fakecloud failed to start")
            self._thread.join(0.01)
            waited += 0.01
            if waited > timeout:
                raise TimeoutError("fakecloud did not start in time")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(30)
        self.sock.close()

    def __enter__(self) -> CloudServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def cloud_entries(url: str, config: CloudConfig) -> dict[str, Any]:
    """clouds.yaml entries: `fakecloud` (demo project) and `fakecloud-admin` (admin project)."""

    def entry(user: str, password: str, project: str) -> dict[str, Any]:
        return {
            "auth": {
                "auth_url": f"{url}/v3",
                "username": user,
                "password": password,
                "project_name": project,
                "user_domain_name": "Default",
                "project_domain_name": "Default",
            },
            "region_name": config.region,
            "identity_api_version": 3,
            "interface": "public",
        }

    users = {u.name: u for u in config.users}
    demo = users.get("demo")
    admin = users.get("admin")
    result = {}
    if demo:
        result["fakecloud"] = entry(demo.name, demo.password, demo.project)
    if admin:
        result["fakecloud-admin"] = entry(admin.name, admin.password, admin.project)
    return result


def write_clouds_yaml(path: str | Path, url: str, config: CloudConfig) -> Path:
    """Add or refresh the fakecloud entries, keeping any other cloud already in the file."""
    path = Path(path)
    existing: dict[str, Any] = {}
    if path.exists():
        existing = yaml.safe_load(path.read_text()) or {}
    clouds = existing.setdefault("clouds", {})
    clouds.update(cloud_entries(url, config))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(existing, sort_keys=True))
    return path
