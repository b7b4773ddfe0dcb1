"""Console fixtures: the console served (next to the API) by a uvicorn thread over a HearthApi's runtime, and
a real headless Chromium driven by selenium through Debian's chromedriver.

The browser is skipped, with the reason, when chromium or chromedriver is missing, except under CI=true
(.ci/run installs both): there a missing browser fails the tests instead of hiding them.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from hearth.api.app import create_app
from hearth.runtime import Runtime

CHROMIUM = ("/usr/bin/chromium", "chromium")
CHROMEDRIVER = ("/usr/bin/chromedriver", "chromedriver")


def _find(candidates: tuple[str, ...]) -> str | None:
    for name in candidates:
        found = shutil.which(name) or (name if os.path.isabs(name) and os.access(name, os.X_OK) else None)
        if found:
            return found
    return None


def console_app(runtime: Runtime) -> FastAPI:
    """The API application with the console router (included here only while app.py does not yet)."""
    from hearth.console import routes

    app = create_app(runtime)
    if not any(getattr(r, "path", "").startswith("/console") for r in app.routes):
        app.include_router(routes.router)
    return app


class ConsoleServer:
    """The API and console under uvicorn on a loopback port, on a background thread."""

    def __init__(self, runtime: Runtime) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        host, port = self.sock.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        config = uvicorn.Config(console_app(runtime), log_level="warning", access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       name="hearth-console", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the console server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()


@pytest.fixture
def serve_console() -> Iterator[Callable[[Runtime], str]]:
    """`serve_console(runtime)`: the base URL of a console over that runtime (stopped after the test)."""
    servers: list[ConsoleServer] = []

    def start(runtime: Runtime) -> str:
        servers.append(ConsoleServer(runtime))
        return servers[-1].url

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """A headless Chromium (Debian's, driven by its chromedriver; selenium downloads nothing)."""
    chromium, chromedriver = _find(CHROMIUM), _find(CHROMEDRIVER)
    in_ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as exc:  # the test extra was not installed
        if in_ci:
            pytest.fail(f"selenium is required in CI: {exc}")
        pytest.skip(f"selenium is not installed ({exc}); pip install -e '.[test]'")
    if chromium is None or chromedriver is None:
        reason = "Debian's chromium and chromium-driver packages are not installed (make browser installs them)"
        if in_ci:
            pytest.fail(f"{reason}; .ci/run installs them, so CI must have them")
        pytest.skip(reason)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1360,1000", "--no-first-run", "--no-default-browser-check",
                "--disable-extensions", "--disable-background-networking", "--disable-sync",
                f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
