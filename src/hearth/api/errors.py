"""Errors in Trove's shape: `{"badRequest": {"code": 400, "message": "..."}}`.

Service errors carry their status; request validation errors (pydantic) become 400 badRequest naming
the field (not FastAPI's default 422); unknown routes are 404 itemNotFound; anything unexpected is a
500 instanceFault that says nothing internal.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from hearth.service import ServiceError

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


class ApiError(ServiceError):
    """An error raised by the API layer itself (auth, request shape), with any status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def fault(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    name = FAULT_NAMES.get(status, "instanceFault")
    return JSONResponse({name: {"code": status, "message": message}}, status_code=status, headers=headers)


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


def install(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(_request: Request, exc: ServiceError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Keystone"} if exc.status == 401 else None
        return fault(exc.status, exc.message, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return fault(400, validation_message(list(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "The request failed."
        if exc.status_code == 404:
            message = "The resource could not be found."
        return fault(exc.status_code, message)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s: %s", request.method, request.url.path, exc.__class__.__name__,
                  exc_info=exc)
        return fault(500, "The server has either erred or is incapable of performing the requested operation.")
