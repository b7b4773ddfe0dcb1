"""Errors in Trove's shape: `{"badRequest": {"code": 400, "message": "..."}}`.

Service errors carry their status; request validation errors (pydantic) become 400 badRequest naming
the field (not FastAPI's default 422); unknown routes are 404 itemNotFound; a known path with the wrong
method is 405 badMethod with an `Allow` header listing the methods the path has; anything unexpected is a
500 instanceFault that says nothing internal. Every 503 carries `Retry-After` (seconds), except to
keystoneauth-based clients (see `sends_retry_after`). Messages quote user input with control characters
escaped (see `service.shown`).

`responses(...)` describes the same bodies for the OpenAPI document (see `app.create_app`).
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, create_model
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from hearth.service import DEFAULT_RETRY_AFTER, UNPRINTABLE, ServiceError

log = logging.getLogger(__name__)

# Trove's fault names by status (trove/common/wsgi.py); anything else is an instanceFault.
FAULT_NAMES = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    422: "unprocessableEntity",
    501: "notImplemented",
    503: "serviceUnavailable",
}
INTERNAL_FAULT = "instanceFault"


class ApiError(ServiceError):
    """An error raised by the API layer itself (auth, request shape), with any status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _escape(match: Any) -> str:
    code = ord(match[0])
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def fault(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    name = FAULT_NAMES.get(status, INTERNAL_FAULT)
    # A message may quote user input: a lone surrogate would make the JSON encoder fail (a 500 instead of
    # the fault), and control characters help no reader.
    message = UNPRINTABLE.sub(_escape, message)
    return JSONResponse({name: {"code": status, "message": message}}, status_code=status, headers=headers)


# python-troveclient (every release to date, so also `openstack database ...`) builds its exception from
# any error response carrying Retry-After by passing `retry_after=` to the exception class, which only its
# 413 class accepts: a 503 with Retry-After reaches its users as a TypeError instead of ServiceUnavailable.
# Its only transport is keystoneauth, whose User-Agent always names itself, and no keystoneauth-based client
# reads Retry-After on a 503; so those are answered without it (the message still says to retry later).
NO_RETRY_AFTER_FOR = "keystoneauth1/"


def sends_retry_after(request: Request) -> bool:
    return NO_RETRY_AFTER_FOR not in request.headers.get("user-agent", "")


def retry_after_header(seconds: float | None) -> dict[str, str]:
    """`Retry-After` in whole seconds (at least 1): the cloud's own hint when known, else the default."""
    value = DEFAULT_RETRY_AFTER if seconds is None else seconds
    return {"Retry-After": str(max(math.ceil(value), 1))}


def validation_message(errors: list[Any]) -> str:
    """`instance.volume.size: Input should be a valid integer` for each problem, joined."""
    parts = []
    for error in errors:
        loc = [str(p) for p in error.get("loc", ()) if p != "body"]
        where = ".".join(loc) or "body"
        if error.get("type") == "extra_forbidden":
            parts.append(f"{where}: is not a field Hearth accepts here")
        elif error.get("type") == "json_invalid":
            parts.append("the request body is not valid JSON")
        elif error.get("type") == "missing" and loc and loc[0] in ("query", "path"):
            parts.append(f"{loc[-1]}: is required")
        else:
            parts.append(f"{where}: {error.get('msg', 'is invalid')}")
    return "Invalid request: " + "; ".join(parts) + "."


METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app serves at the request's path, found by asking the app's routes
    whether they fully match the path under each method. (Starlette's own 405 names only the methods of the
    first route that matched the path, and FastAPI makes one route per method.)"""
    base = {"type": "http", "path": request.scope.get("path", ""), "root_path": request.scope.get("root_path", "")}
    return [method for method in METHODS
            if any(route.matches({**base, "method": method})[0] == Match.FULL for route in request.app.router.routes)]


def install(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Keystone"} if exc.status == 401 else None
        if exc.status == 503 and sends_retry_after(request):
            headers = retry_after_header(getattr(exc, "retry_after", None))
        return fault(exc.status, exc.message, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return fault(400, validation_message(list(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "The request failed."
        headers = dict(exc.headers or {})
        if exc.status_code == 404:
            message = "The resource could not be found."
        elif exc.status_code == 405:
            allowed = allowed_methods(request)
            headers["Allow"] = ", ".join(allowed)
            message = f"Method {request.method} is not allowed here; this path accepts {', '.join(allowed)}."
        elif exc.status_code == 503 and sends_retry_after(request):
            headers.update(retry_after_header(None))
        return fault(exc.status_code, message, headers or None)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s: %s", request.method, request.url.path, exc.__class__.__name__,
                  exc_info=exc)
        return fault(500, "The server has either erred or is incapable of performing the requested operation.")


# --------------------------------------------------------------------------------------------------
# The same faults, for the OpenAPI document.


class FaultDetail(BaseModel):
    code: int = Field(description="The HTTP status, repeated")
    message: str = Field(description="What went wrong, and what to change before retrying")


def _fault_model(name: str) -> type[BaseModel]:
    model: type[BaseModel] = create_model(f"{name[:1].upper()}{name[1:]}Fault", **{name: (FaultDetail, ...)})
    model.__doc__ = f"Trove's fault body: one key, `{name}`."
    return model


FAULT_MODELS: dict[int, type[BaseModel]] = {
    status: _fault_model(name) for status, name in {**FAULT_NAMES, 500: INTERNAL_FAULT}.items()
}

DESCRIPTIONS = {
    400: "Bad request: the message names the field and what to fix (also: a path with control characters)",
    401: "No valid Keystone token in X-Auth-Token",
    403: "The token is for another project (and has no admin role), or the action needs the admin role",
    404: "No such instance, rule, security group, flavor or datastore in this project",
    405: "The path does not accept this method; the Allow header lists those it does",
    409: "The instance is owned by an engine the `engine` setting no longer allows (the message names the "
         "way out), or the action needs engine = migration",
    413: "A quota of the cloud (Nova, Cinder, Neutron) leaves no room for it, or the request body is too large",
    422: "The instance is not ready for it: another operation runs, or it is in ERROR",
    500: "An unexpected error; the message says nothing internal",
    503: "The cloud or its Keystone cannot answer now; nothing was changed, retry after Retry-After seconds",
}

HEADERS: dict[int, dict[str, Any]] = {
    503: {"Retry-After": {"description": "Seconds to wait before retrying (not sent to keystoneauth-based "
                                         "clients: python-troveclient fails on it)", "schema": {"type": "integer"}}},
    401: {"WWW-Authenticate": {"description": "Keystone", "schema": {"type": "string"}}},
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the fault statuses given: Trove's body schema, a description, headers."""
    found: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {"model": FAULT_MODELS[status], "description": DESCRIPTIONS[status]}
        if status in HEADERS:
            entry["headers"] = HEADERS[status]
        found[status] = entry
    return found
