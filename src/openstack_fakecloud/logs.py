"""fakecloud's logging: the access log's logger and a JSON-lines formatter for log shippers.

fakecloud must not import Hearth, so it has its own small formatter (Hearth has its own, hearth.logs).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")

#: One line per request: method, path (never the query), status, duration and the request ids; no header
#: other than the ids, so never a token.
access_log = logging.getLogger("openstack_fakecloud.access")

# what every LogRecord has; anything else on a record came from `extra=` and is a field of the JSON line
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the record's `extra` fields (an access
    line's method, path, status, duration_ms, request ids), so a shipper needs no parsing rules."""

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


def configure_logging(log_format: LogFormat = "text", level: int | str = logging.INFO) -> None:
    """The root handler `fakecloud serve` logs through: text lines for a terminal, JSON lines for shippers."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"unknown log format {log_format!r}; choose one of {', '.join(LOG_FORMATS)}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json"
                         else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
