"""The id of the API request being served, for everything that runs on its behalf.

Each API request gets an id `req-<uuid4>`, or keeps a valid one its client sent in `X-OpenStack-Request-ID`
(hearth.api.middleware sets it). Code serving the request reads `current_request_id()`: the API records it
on an operation it queues, so the task manager can send it to the cloud as the global request id, and a
person can follow one request from Hearth's access log into the cloud's logs. It lives here, outside
hearth.api, so layers below the API (service, engines, task manager) can read it without importing the API.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar, Token

REQUEST_ID_HEADER = "X-OpenStack-Request-ID"

# oslo.context's rule: `req-` and a lowercase uuid; anything else a client sends is replaced, never trusted
_VALID = re.compile(r"^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

_current: ContextVar[str | None] = ContextVar("hearth_request_id", default=None)


def new_request_id() -> str:
    return "req-" + str(uuid.uuid4())


def valid_request_id(value: str | None) -> bool:
    """Whether `value` is a request id as OpenStack writes them (`req-<uuid>`), fit to log and pass on."""
    return value is not None and _VALID.match(value) is not None


def current_request_id() -> str | None:
    """The id of the API request this code runs for; None outside a request (a task manager's own work)."""
    return _current.get()


def use_request_id(value: str | None) -> Token[str | None]:
    """Make `value` the current id (for a request, or a worker resuming one); returns the token that
    `reset_request_id` takes to restore the one before."""
    return _current.set(value)


def reset_request_id(token: Token[str | None]) -> None:
    _current.reset(token)
