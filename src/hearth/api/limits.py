"""Limits every request meets before any route, token check or database sees it (an ASGI middleware).

- A request body over `MAX_BODY_BYTES` is a 413 overLimit: refused from its Content-Length without
  reading it, or, for a body streamed without one (chunked), as soon as the bytes read pass the limit.
  The default is oslo.middleware's `max_request_body_size` (114688 bytes), the limit OpenStack's own APIs
  (Trove's among them) enforce; Hearth's largest legitimate body, a create with the most CIDRs accepted
  (service.MAX_ALLOWED_CIDRS, IPv6 /128s), is under half of it.
- A path with control characters (a `%00` in an id) is a 400 badRequest: no id or name has them, and a NUL
  handed to PostgreSQL fails the statement (a 500 otherwise).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from hearth.api.errors import fault
from hearth.service import UNPRINTABLE, shown

MAX_BODY_BYTES = 114_688

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class RequestLimits:
    """Refuses oversized bodies (413) and paths with control characters (400); reads a body (at most
    `max_body` bytes) before the app does, then hands it over whole."""

    def __init__(self, app: App, max_body: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        bad = UNPRINTABLE.search(path)
        if bad is not None:
            await fault(400, f"The request path has a control character ({shown(bad[0])} at position "
                             f"{bad.start()}); ids and names never do: check the URL.")(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body:
            await self._too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: nothing to answer
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        handed = False

        async def replay() -> Message:
            nonlocal handed
            if not handed:
                handed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The server (uvicorn) discards the unread rest of the body and keeps the connection: closing it with
        # bytes unread would reset it, and the client could lose the answer while still sending.
        response = fault(413, f"The request body is larger than {self.max_body} bytes, the most Hearth accepts.")
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server (h11, httptools) refuses a malformed one before we see it
    return None
