"""Request ids and the access log, through the real API over HTTP.

Every answer (errors included) carries `X-OpenStack-Request-ID`: the client's valid `req-<uuid>`, else a new
one; code serving the request sees it as `hearth.request_ids.current_request_id()`; and each request writes
one `hearth.access` line with its method, path, status, duration and id, never the token or the query.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import uvicorn
from pydantic import ValidationError

from hearth.api.app import create_app
from hearth.config import Settings
from hearth.logs import JsonFormatter
from hearth.request_ids import current_request_id, valid_request_id
from hearth.runtime import Runtime

HEADER = "X-OpenStack-Request-ID"
ACCESS = "hearth.access"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """Request ids live in the API's middleware and a context variable, not in the database: SQLite is enough."""
    return f"sqlite:///{tmp_path / 'hearth.sqlite'}"

def _sent() -> str:
    return "req-" + str(uuid.uuid4())


def _access_lines(caplog: pytest.LogCaptureFixture, request_id: str, count: int = 1,
                  timeout: float = 5.0) -> list[logging.LogRecord]:
    """The access lines of one request id. A line is written once the answer is sent, so a client may read
    the answer a moment before its line exists: wait for it."""
    deadline = time.monotonic() + timeout
    while True:
        found = [r for r in caplog.records if r.name == ACCESS and getattr(r, "request_id", None) == request_id]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.01)


def test_every_answer_carries_a_request_id_and_a_valid_client_id_is_kept(hearth_api):
    api = hearth_api.client()
    listed = api.get("/instances")
    assert listed.status_code == 200
    assert valid_request_id(listed.headers[HEADER])
    assert api.get("/instances").headers[HEADER] != listed.headers[HEADER]  # one id per request

    sent = _sent()
    assert api.get("/instances", headers={HEADER: sent}).headers[HEADER] == sent
    for invalid in ("req-not-a-uuid", "hello", sent.upper(), sent + "x", "req-" + uuid.uuid4().hex):
        answered = api.get("/instances", headers={HEADER: invalid}).headers[HEADER]
        assert answered != invalid and valid_request_id(answered)


def test_error_answers_carry_the_id_too(hearth_api):
    api = hearth_api.client()
    sent = _sent()
    unauthenticated = hearth_api.client(token=False).get("/instances", headers={HEADER: sent})
    assert unauthenticated.status_code == 401 and unauthenticated.headers[HEADER] == sent
    nowhere = requests.get(hearth_api.url + "/no/such/path", headers={HEADER: sent}, timeout=30)
    assert nowhere.status_code == 404 and nowhere.headers[HEADER] == sent
    missing = api.get(f"/instances/{uuid.uuid4()}")
    assert missing.status_code == 404 and valid_request_id(missing.headers[HEADER])
    invalid_body = api.post("/instances", json={"instance": {"name": 5}}, headers={HEADER: sent})
    assert invalid_body.status_code == 400 and invalid_body.headers[HEADER] == sent  # FastAPI's validation
    too_large = api.post("/instances", data=b"x" * 200_000, headers={HEADER: sent,
                                                                      "Content-Type": "application/json"})
    assert too_large.status_code == 413 and too_large.headers[HEADER] == sent  # refused before any route


def test_access_log_line_has_the_id_and_never_the_token_or_query(hearth_api, caplog):
    caplog.set_level(logging.INFO, logger=ACCESS)
    api = hearth_api.client()
    token = hearth_api.credentials().token
    sent = _sent()
    answer = api.get("/instances?password=hunter2&limit=5", headers={HEADER: sent})
    assert answer.status_code == 200

    [line] = _access_lines(caplog, sent)
    path = f"/v1.0/{api.project_id}/instances"
    assert (line.method, line.path, line.status, line.request_id) == ("GET", path, 200, sent)
    assert line.duration_ms > 0
    text = line.getMessage()
    for shown in ("GET", path, "200", sent, "ms"):
        assert shown in text
    every = "\n".join(r.getMessage() + repr(vars(r)) for r in caplog.records if r.name == ACCESS)
    assert token not in every
    assert "hunter2" not in every and "limit=5" not in every

    unauthenticated = hearth_api.client(token=False).get("/instances")
    [refused] = _access_lines(caplog, unauthenticated.headers[HEADER])
    assert refused.status == 401


def test_access_log_as_json_lines(hearth_api):
    """`log_format = "json"` logs through JsonFormatter: each line is one JSON object with the access fields."""
    logger = logging.getLogger(ACCESS)
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    sent = _sent()
    try:
        assert hearth_api.client().get("/instances", headers={HEADER: sent}).status_code == 200
        deadline = time.monotonic() + 5
        while sent not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    lines = [json.loads(text) for text in out.getvalue().splitlines()]
    [line] = [line for line in lines if line["request_id"] == sent]
    assert (line["logger"], line["level"], line["method"], line["status"]) == (ACCESS, "INFO", "GET", 200)
    assert line["path"].endswith("/instances") and line["duration_ms"] > 0 and sent in line["message"]
    assert hearth_api.credentials().token not in out.getvalue()


def test_log_format_setting_is_text_or_json():
    assert Settings().log_format == "text"
    assert Settings(log_format="json").log_format == "json"
    with pytest.raises(ValidationError):
        Settings(log_format="xml")


# The id inside a request, and on a 500: an app with two routes only this test adds ----------------------------
@pytest.fixture
def probe_api(hearth_runtime: Runtime) -> Iterator[str]:
    """Hearth's app plus `/_probe/id` (the id code running for the request sees, on FastAPI's thread pool as
    routes run) and `/_probe/boom` (an unexpected error), served by uvicorn on a free loopback port."""
    app = create_app(hearth_runtime)

    @app.get("/_probe/id")
    def probe_id() -> dict[str, str | None]:
        return {"request_id": current_request_id()}

    @app.get("/_probe/boom")
    def probe_boom() -> None:
        raise RuntimeError("boom")

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="hearth-probe-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the probe API did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def test_code_serving_a_request_sees_its_id_and_a_500_carries_it(probe_api, caplog):
    caplog.set_level(logging.INFO, logger=ACCESS)
    sent = _sent()
    seen = requests.get(probe_api + "/_probe/id", headers={HEADER: sent}, timeout=30)
    assert seen.json() == {"request_id": sent} and seen.headers[HEADER] == sent
    fresh = requests.get(probe_api + "/_probe/id", timeout=30)
    assert fresh.json()["request_id"] == fresh.headers[HEADER]
    assert current_request_id() is None  # nothing leaks out of a request

    boom = requests.get(probe_api + "/_probe/boom", headers={HEADER: sent}, timeout=30)
    assert boom.status_code == 500 and boom.headers[HEADER] == sent
    assert [r.status for r in _access_lines(caplog, sent, count=2)] == [200, 500]
