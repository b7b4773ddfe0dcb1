"""Turn a subunit v2 stream (stdin) into a JSON list of per-test outcomes (stdout).

Run with the conformance virtualenv's python, which has python-subunit and testtools: this is the one place that
reads the machine format stestr records, so run.py (stdlib only) never has to scrape tempest's human output.

Each entry: {"id", "status", "duration", "reason", "traceback", "error_requests"}. ``status`` is subunit's
(success, fail, skip, xfail, uxsuccess, ...); ``reason`` is the skip reason; ``traceback`` is the failure text;
``error_requests`` are the last few HTTP requests that tempest's rest client logged with a 4xx/5xx answer (from the
captured python logging), which name the route a failure is about far more directly than the traceback does.
"""
from __future__ import annotations

import json
import re
import sys
from typing import Any

import subunit
import testtools

# tempest.lib.common.rest_client logs every call as "Request (Class:test): 404 GET http://... 0.003s".
_REQUEST_LINE = re.compile(r"Request \([^)]*\): (?P<status>\d{3}) (?P<method>[A-Z]+) (?P<url>\S+)")


def _text(details: dict[str, Any], name: str) -> str:
    """Decode one subunit attachment (bytes chunks) to text, or '' when the test did not attach it."""
    content = details.get(name)
    if content is None:
        return ""
    return b"".join(content.iter_bytes()).decode("utf-8", "replace")


def _error_requests(log: str, keep: int = 3) -> list[str]:
    """The last `keep` logged requests answered with a status >= 400, as 'STATUS METHOD URL'."""
    hits = [f"{m['status']} {m['method']} {m['url']}" for m in _REQUEST_LINE.finditer(log) if int(m["status"]) >= 400]
    return hits[-keep:]


def read(stream: Any) -> list[dict[str, Any]]:
    """All tests in the stream, in the order they finished."""
    outcomes: list[dict[str, Any]] = []

    def on_test(test: dict[str, Any]) -> None:
        timestamps = [t for t in test["timestamps"] if t is not None]
        duration = (timestamps[-1] - timestamps[0]).total_seconds() if len(timestamps) == 2 else None
        details = test["details"]
        log = "".join(_text(details, name) for name in details if name.startswith("pythonlogging"))
        failed = test["status"] not in ("success", "skip", "xfail")
        outcomes.append({
            "id": test["id"],
            "status": test["status"],
            "duration": duration,
            "reason": _text(details, "reason").strip(),
            "traceback": _text(details, "traceback") if failed else "",
            "error_requests": _error_requests(log) if failed else [],
        })

    result = testtools.StreamToDict(on_test)
    result.startTestRun()
    try:
        subunit.ByteStreamToStreamResult(stream, non_subunit_name="stdout").run(result)
    finally:
        result.stopTestRun()
    return outcomes


if __name__ == "__main__":
    json.dump(read(sys.stdin.buffer), sys.stdout)
