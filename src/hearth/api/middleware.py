"""Request ids and the access log: the outermost layer of the API (a pure ASGI middleware, cheap per request).

Every answer, errors included (401, 404, 413, a 400 for a bad body, a 500), carries `X-OpenStack-Request-ID`:
the valid `req-<uuid>` the client sent, else a new one. While the request is served the id is
`hearth.request_ids.current_request_id()`. Each request then writes one line on the `hearth.access` logger:
method, path, status, duration and the id. The path only (a query string may carry secrets), never a header
(a token) nor a body.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from hearth import metrics
from hearth.request_ids import (
    REQUEST_ID_HEADER,
    new_request_id,
    reset_request_id,
    use_request_id,
    valid_request_id,
)

access_log = logging.getLogger("hearth.access")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

_HEADER = REQUEST_ID_HEADER.lower().encode()


def _sent_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == _HEADER:
            text = value.decode("latin-1")
            return text if valid_request_id(text) else None
    return None


class RequestIds:
    """Gives each HTTP request its id (answered in `X-OpenStack-Request-ID`) and logs it on `hearth.access`.

    It must wrap the whole app, outside Starlette's ServerErrorMiddleware, for a 500 to carry the id too:
    `install` puts it there."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _sent_id(scope) or new_request_id()
        header = (_HEADER, request_id.encode())
        status = 500  # what the client gets when the app fails before answering (the server answers 500)

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != _HEADER]
                headers.append(header)
                message["headers"] = headers
            await send(message)

        token = use_request_id(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            reset_request_id(token)
            seconds = time.perf_counter() - started
            if metrics.enabled:  # by the matched route's template: bounded, no ids in the labels
                route = getattr(scope.get("route"), "path", None) or "unmatched"
                method = scope.get("method", "")
                metrics.count(metrics.API_REQUESTS, method=method, route=route, status=status)
                metrics.observe(metrics.API_REQUEST_SECONDS, seconds, method=method, route=route)
            if access_log.isEnabledFor(logging.INFO):
                _log(scope, status, seconds * 1000.0, request_id)


def _log(scope: Scope, status: int, duration_ms: float, request_id: str) -> None:
    method, path = scope.get("method", ""), scope.get("path", "")
    access_log.info("%s %s %s %.1fms %s", method, path, status, duration_ms, request_id,
                    extra={"method": method, "path": path, "status": status,
                           "duration_ms": round(duration_ms, 3), "request_id": request_id})


def install(app: Any) -> None:
    """Wrap `app` (a Starlette/FastAPI application) in RequestIds, outermost.

    `add_middleware` would put it inside ServerErrorMiddleware, whose 500 answers then lack the id; wrapping
    what `build_middleware_stack` builds (which Starlette calls once, on the first request) puts it outside."""
    build = app.build_middleware_stack

    def build_with_ids() -> App:
        return RequestIds(build())

    app.build_middleware_stack = build_with_ids
