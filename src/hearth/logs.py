"""Hearth's log format: text for a terminal, or JSON lines (`log_format = "json"`) for log shippers.

fakecloud has its own formatter (openstack_fakecloud.logs): it must not import Hearth. When both run in one
process (`hearth up`), Hearth's handler formats fakecloud's lines too, extra fields included.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from hearth.request_ids import current_request_id

# what every LogRecord has; anything else on a record came from `extra=` and is a field of the JSON line
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


class RequestIdFilter(logging.Filter):
    """Stamps each record with the API request it was written for (hearth.request_ids; the task manager sets
    the operation's), unless the record names one itself, so a line can be followed to the cloud's logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = current_request_id() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the record's `extra` fields (an access
    line's method, path, status, duration_ms, request_id), so a shipper needs no parsing rules."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in line:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def json_handler() -> logging.Handler:
    """A stderr handler writing JSON lines (the text format keeps the CLI's own handler)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    return handler
