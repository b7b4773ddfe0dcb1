"""The ASGI application: every enabled service's routes plus the admin API, on one port."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from openstack_fakecloud.framework import json_response
from openstack_fakecloud.state import Cloud

log = logging.getLogger(__name__)


def service_modules():
    """Each module exposes `service`; the key names it for `disabled_services`."""
    from openstack_fakecloud import admin
    from openstack_fakecloud.compute import routes as compute
    from openstack_fakecloud.identity import routes as identity
    from openstack_fakecloud.image import routes as image
    from openstack_fakecloud.network import routes as network
    from openstack_fakecloud.orchestration import routes as orchestration
    from openstack_fakecloud.volume import routes as volume

    return [admin, compute, volume, network, image, orchestration, identity]


def build_app(cloud: Cloud, state_file: str | Path | None = None, autosave_seconds: float = 5.0) -> Starlette:
    routes = []
    for module in service_modules():
        if module.service.name == "orchestration" and cloud.config.orchestration_url:
            continue  # the catalog sends orchestration to an external Heat (upstream_heat)
        if cloud.service_enabled(module.service.name):
            routes.extend(module.service.routes(cloud))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if state_file is not None:
            cloud.load(state_file)
        # Guest disks sit beside a saved state (they survive a restart with it); in memory they are temporary.
        cloud.guests.start(Path(state_file).with_suffix(".disks") if state_file is not None else None)
        tasks = [asyncio.create_task(cloud.scheduler.run(), name="fakecloud-scheduler")]
        if state_file is not None:
            tasks.append(asyncio.create_task(_autosave(cloud, state_file, autosave_seconds)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await cloud.guests.stop()
            if state_file is not None:
                cloud.save(state_file)

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        message = f"The resource could not be found: {request.method} {request.url.path}"
        if status == 405:
            message = f"Method {request.method} is not allowed on {request.url.path}"
        return json_response(status, {"error": {"code": status, "message": message}})

    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={404: not_found, 405: not_found})
    app.state.cloud = cloud
    return app


async def _autosave(cloud: Cloud, state_file: str | Path, every: float) -> None:
    """Save the state when something changed, so a killed process loses at most a few seconds."""
    saved_writes = cloud.accounting.writes
    while True:
        await asyncio.sleep(every)
        if cloud.accounting.writes != saved_writes:
            saved_writes = cloud.accounting.writes
            try:
                cloud.save(state_file)
            except OSError:
                log.exception("could not save fakecloud state to %s", state_file)
