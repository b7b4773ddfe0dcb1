"""The FastAPI application: Trove v1.0-compatible routes over the service layer.

`create_app(runtime)` is all a server needs (the CLI runs it under uvicorn, next to a TaskManager).
Routes are plain functions, so FastAPI runs them on its thread pool: each thread has its own cloud
connection (CloudConnections) and database session.

The OpenAPI document (/openapi.json) lists, for every route, each status it can answer with Trove's fault
body (see `errors.responses`): every route 400 (a path with control characters), 413 (a body over
limits.MAX_BODY_BYTES) and 500; every project route 401, 403 and 503 (Keystone); and each route its own.
FastAPI's default 422 "validation error" is removed: Hearth answers those 400.

Every answer carries its request id in `X-OpenStack-Request-ID`, and each request writes one access-log line
(hearth.api.middleware).
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

import hearth
from hearth.api import (
    errors,
    middleware,
    routes_catalog,
    routes_configurations,
    routes_datastore,
    routes_health,
    routes_instances,
    routes_metrics,
    routes_mgmt,
    routes_security_groups,
    routes_unsupported,
    routes_versions,
)
from hearth.api.auth import TokenValidator
from hearth.api.limits import RequestLimits
from hearth.console import routes as console_routes
from hearth.runtime import Runtime

if TYPE_CHECKING:
    from hearth.taskmanager import TaskManager

PROJECT_PREFIX = "/v1.0/{project_id}"
EVERY_ROUTE = (400, 413, 500)  # RequestLimits (path, body size) and the unexpected
PROJECT_ROUTE = (401, 403, 503)  # auth.project_scope: no token, another project, Keystone unreachable


@asynccontextmanager
async def _lifespan(_app: FastAPI) -> AsyncIterator[None]:
    """Once the server is up, move everything allocated so far (modules, the app, the SDK, SQLAlchemy's
    mappers) out of the garbage collector's reach: a full collection then only walks what requests made,
    instead of pausing a request for ~100 ms about once a second while pages of instances are served."""
    gc.collect()
    gc.freeze()
    yield


def create_app(runtime: Runtime, taskmanager: TaskManager | None = None) -> FastAPI:
    """The API over `runtime`; `taskmanager` is the one running in this process, if any (GET /readyz
    reports it)."""
    app = FastAPI(
        lifespan=_lifespan,
        title="Hearth",
        version=hearth.__version__,
        summary="Database-as-a-Service for OpenStack, compatible with Trove's v1.0 API",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        responses=errors.responses(*EVERY_ROUTE),
    )
    app.state.runtime = runtime
    app.state.taskmanager = taskmanager
    app.state.tokens = TokenValidator(runtime)
    errors.install(app)
    app.add_middleware(RequestLimits)
    middleware.install(app)  # outermost: every answer carries X-OpenStack-Request-ID, and hearth.access logs it
    app.include_router(routes_versions.router)
    app.include_router(routes_health.router)
    app.include_router(routes_metrics.router)
    app.include_router(console_routes.router)  # the web console's pages, under /console
    # routes_unsupported last: its 501s are for Trove paths no other router serves.
    for module in (routes_instances, routes_mgmt, routes_catalog, routes_security_groups, routes_datastore,
                   routes_configurations, routes_unsupported):
        app.include_router(module.router, prefix=PROJECT_PREFIX, responses=errors.responses(*PROJECT_ROUTE))
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, without the 422 "validation error" it adds to every route with parameters (Hearth
    answers those 400 badRequest, documented instead), built once."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, summary=app.summary, description=app.description,
                         routes=app.routes)
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            answers = operation.get("responses", {})
            if "HTTPValidationError" in str(answers.get("422", "")):
                del answers["422"]
    components = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    app.openapi_schema = schema
    return schema
