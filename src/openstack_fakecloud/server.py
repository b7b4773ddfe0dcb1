"""Running fakecloud: on a background thread (tests, `hearth up`) or in the foreground (`fakecloud serve`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import struct
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import uvicorn
import yaml
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from openstack_fakecloud.config import CloudConfig, UserSpec
from openstack_fakecloud.framework import DROP_CONNECTION
from openstack_fakecloud.state import Cloud


class QuietServer(uvicorn.Server):
    """A uvicorn Server that sleeps when idle. uvicorn's own wakes every 0.1 s to look for a shutdown and to
    refresh its Date header once a second: ten wake-ups a second per idle server, most of an idle `hearth up`'s
    CPU. This one ticks once a second (the Date header is still exact to the second), and a shutdown request
    (`should_exit = True`, from a signal or another thread) wakes it at once."""

    TICK = 1.0

    def __init__(self, config: uvicorn.Config) -> None:
        self._exit = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        super().__init__(config)

    @property  # type: ignore[override]  # uvicorn declares a plain attribute
    def should_exit(self) -> bool:
        return self._exit

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        self._exit = value
        loop, wake = self._loop, self._wake
        if value and loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already closed: nothing to wake
                loop.call_soon_threadsafe(wake.set)

    async def main_loop(self) -> None:
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 10) % 864000  # on_tick refreshes the Date header when counter % 10 == 0
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.TICK)
            should_exit = await self.on_tick(counter)


class _OneWriteTransport:
    """Holds what a response writes during one event-loop turn and sends it as one write.

    uvicorn writes a response's header block and its body separately; clients on keep-alive
    connections then see two segments per response. Joining them keeps each response in one write
    (with TCP_NODELAY, which asyncio sets, nothing waits on delayed ACKs either way).
    """

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data)

    def _flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending = []
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def reset(self) -> None:
        """Drop what is held and close with an RST (SO_LINGER 0), as a load balancer cutting a connection does."""
        self._pending = []
        sock = self._transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class OneWriteHttpProtocol(HttpToolsProtocol):
    """uvicorn's protocol, writing each response once, and giving each request a way to reset its connection.

    ASGI gives an app no handle on its connection, so the `disconnect` fault needs one: every request's scope
    carries `extensions["fakecloud.drop_connection"]`, a callable that marks the request's cycle disconnected
    (so nothing the app sends afterwards is written) and resets the TCP connection.
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_OneWriteTransport(transport, asyncio.get_running_loop()))  # type: ignore[arg-type]

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle.scope is self.scope:  # not for an upgrade, which starts no cycle
            extensions = self.scope.setdefault("extensions", {})  # type: ignore[typeddict-item]
            extensions[DROP_CONNECTION] = lambda: self._drop(cycle)

    def _drop(self, cycle: RequestResponseCycle) -> None:
        cycle.disconnected = True
        self.transport.reset()  # type: ignore[attr-defined]


def bind(host: str, port: int, listen: bool = True) -> socket.socket:
    """Bind first, so the catalog can name the real port (port 0 picks a free one).

    With `listen=False` the port is reserved but refuses connections until uvicorn starts serving on it
    (asyncio calls listen() after the app's lifespan startup): a client that connects as soon as the port
    accepts then always finds a server that can answer, never a backlog queue in front of one still starting.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    if listen:
        sock.listen(1024)
    sock.set_inheritable(True)
    return sock


READY_PATH = "/_fakecloud/ready"


class _Readiness:
    """Answers `GET /_fakecloud/ready`: 200 while the server serves, 503 once it is shutting down.

    The port accepts only after the lifespan startup (state loaded, scheduler running), so answering at all
    means started. It wraps the app because shutting down is the server's to know, not the cloud's;
    `/_fakecloud/health` stays the liveness answer. No token, no accounting, no faults, like the rest of
    the admin API.
    """

    def __init__(self, app: Any, stopping: Callable[[], bool]) -> None:
        self.app = app
        self.stopping = stopping

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != READY_PATH or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        ready = not self.stopping()
        body = json.dumps({"status": "ready" if ready else "stopping"}).encode()
        await send({"type": "http.response.start", "status": 200 if ready else 503,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body if scope["method"] == "GET" else b""})


class CloudServer:
    """One fakecloud on one port, served by uvicorn."""

    def __init__(
        self,
        config: CloudConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        state_file: str | Path | None = None,
    ) -> None:
        from openstack_fakecloud.app import build_app

        self.sock = bind(host, port, listen=False)  # accepts once serving: the saved state is loaded by then
        self.host, self.port = self.sock.getsockname()[:2]
        self.url = f"http://{self.host}:{self.port}"
        self.cloud = Cloud(config, base_url=self.url)
        self.app = build_app(self.cloud, state_file=state_file)
        uv_config = uvicorn.Config(
            _Readiness(self.app, stopping=lambda: self.server.should_exit), log_level="warning", access_log=False,
            lifespan="on", timeout_keep_alive=120, http=OneWriteHttpProtocol,
        )
        self.server = QuietServer(uv_config)
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


def cloud_entries(url: str, config: CloudConfig, extra: Mapping[str, UserSpec] | None = None) -> dict[str, Any]:
    """clouds.yaml entries: `fakecloud` (demo project), `fakecloud-admin` (admin project), and one per `extra`
    name (a user added at run time, e.g. `hearth up`'s service user in the `service` project)."""

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
    for name, user in (extra or {}).items():
        result[name] = entry(user.name, user.password, user.project)
    return result


def write_clouds_yaml(path: str | Path, url: str, config: CloudConfig,
                      extra: Mapping[str, UserSpec] | None = None) -> Path:
    """Add or refresh the fakecloud entries, keeping any other cloud already in the file.

    The file holds passwords (`hearth up` adds its service user's), so only its owner may read it: 0600.
    """
    path = Path(path)
    existing: dict[str, Any] = {}
    if path.exists():
        existing = yaml.safe_load(path.read_text()) or {}
    clouds = existing.setdefault("clouds", {})
    clouds.update(cloud_entries(url, config, extra))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(yaml.safe_dump(existing, sort_keys=True))
    path.chmod(0o600)  # a file created before this rule keeps its mode through O_TRUNC
    return path
