"""The FastAPI application: Trove v1.0-compatible routes over the service layer.

`create_app(runtime)` is all a server needs (the CLI runs it under uvicorn, next to a TaskManager).
Routes are plain functions, so FastAPI runs them on its thread pool: each thread has its own cloud
connection (CloudConnections) and database session.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

import hearth
from hearth.api import errors, routes_catalog, routes_instances, routes_security_groups, routes_versions
from hearth.api.auth import TokenValidator
from hearth.runtime import Runtime

PROJECT_PREFIX = "/v1.0/{project_id}"


@asynccontextmanager
async def _lifespan(_app: FastAPI) -> AsyncIterator[None]:
    """Once the server is up, move everything allocated so far (modules, the app, the SDK, SQLAlchemy's
    mappers) out of the garbage collector's reach: a full collection then only walks what requests made,
    instead of pausing a request for ~100 ms about once a second while pages of instances are served."""
    gc.collect()
    gc.freeze()
    yield


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(
        lifespan=_lifespan,
        title="Hearth",
        version=hearth.__version__,
        summary="Database-as-a-Service for OpenStack, compatible with Trove's v1.0 API",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.state.tokens = TokenValidator(runtime)
    errors.install(app)
    app.include_router(routes_versions.router)
    for module in (routes_instances, routes_catalog, routes_security_groups):
        app.include_router(module.router, prefix=PROJECT_PREFIX)
    return app
