"""fakecloud's request log by request id, and its access log, seen through real clients over real HTTP.

A Hearth request's cloud calls carry its id as the global request id (X-OpenStack-Request-ID); the admin API's
`GET /requests?request_id=` must give exactly those calls, and the access log must show every call with its
ids but never the caller's token.
"""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import openstack
import pytest
import requests

from openstack_fakecloud.logs import JsonFormatter

ACCESS = "openstack_fakecloud.access"


def _global_id() -> str:
    return "req-" + str(uuid.uuid4())


def test_requests_filtered_by_global_id_are_exactly_that_callers_calls(fakecloud, os_conn):
    list(os_conn.compute.flavors())  # authenticate and discover first: the tagged calls below are API calls only
    sent = _global_id()
    tagged = os_conn.global_request(sent)
    list(tagged.compute.flavors())
    list(tagged.block_storage.volumes())
    list(os_conn.compute.servers())  # untagged: not in the filtered log

    found = fakecloud.control.requests(request_id=sent)
    calls = found["requests"]
    assert [(r["service"], r["method"]) for r in calls] == [("compute", "GET"), ("volume", "GET")]
    assert {r["global_request_id"] for r in calls} == {sent}
    assert all(r["status"] == 200 and r["duration_ms"] > 0 for r in calls)
    assert found["total"] == 2 and found["by_service"] == {"compute": 1, "volume": 1}
    assert sum(c["count"] for c in found["counts"]) == 2  # counts are of the filtered calls, not cumulative

    # fakecloud's own local id finds the one call that answered with it
    local = calls[1]["request_id"]
    assert [r["seq"] for r in fakecloud.control.requests(request_id=local)["requests"]] == [calls[1]["seq"]]
    # an id nobody sent finds nothing; `since` still applies with the filter
    assert fakecloud.control.requests(request_id=_global_id())["requests"] == []
    assert [r["seq"] for r in fakecloud.control.requests(since=calls[0]["seq"], request_id=sent)["requests"]] \
        == [calls[1]["seq"]]
    # the unfiltered log has durations too, and keeps its shape
    everything = fakecloud.control.requests()
    assert set(everything) == {"seq", "total", "by_service", "counts", "requests"}
    assert all("duration_ms" in r for r in everything["requests"])


def test_requests_since_must_be_a_number(fakecloud):
    answer = requests.get(fakecloud.url + "/_fakecloud/requests", params={"since": "x"}, timeout=10)
    assert answer.status_code == 400


def test_access_log_has_method_path_status_duration_and_ids_but_no_token(fakecloud, os_conn, caplog):
    caplog.set_level(logging.INFO, logger=ACCESS)
    token = os_conn.session.get_token()
    sent = _global_id()
    tagged = os_conn.global_request(sent)
    list(tagged.compute.flavors())
    missing = requests.get(fakecloud.url + "/compute/v2.1/servers/nope?all_tenants=1&secret=hunter2",
                           headers={"X-Auth-Token": token, "X-OpenStack-Request-ID": sent}, timeout=10)
    assert missing.status_code == 404

    lines = [r for r in caplog.records if r.name == ACCESS and getattr(r, "global_request_id", None) == sent]
    assert [(r.method, r.path, r.status) for r in lines] == [
        ("GET", "/compute/v2.1/flavors/detail", 200), ("GET", "/compute/v2.1/servers/nope", 404)]
    for record in lines:
        text = record.getMessage()
        assert record.duration_ms > 0
        assert record.request_id.startswith("req-") and record.request_id != sent
        for shown in (record.method, record.path, str(record.status), record.request_id, sent):
            assert shown in text
    assert lines[1].request_id == missing.headers["x-openstack-request-id"]
    every = "\n".join(r.getMessage() + repr(vars(r)) for r in caplog.records if r.name == ACCESS)
    assert token not in every
    assert "hunter2" not in every and "all_tenants" not in every  # the query is never logged

    # the admin API is logged too (one line per request), though it is not accounted
    fakecloud.control.health()
    assert any(r.path == "/_fakecloud/health" for r in caplog.records if r.name == ACCESS)


def test_access_log_as_json_lines(fakecloud, os_conn):
    logger = logging.getLogger(ACCESS)
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        sent = _global_id()
        list(os_conn.global_request(sent).compute.flavors())
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)

    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    mine = [line for line in lines if line["global_request_id"] == sent]
    assert len(mine) == 1
    line = mine[0]
    assert {"time", "level", "logger", "message", "method", "path", "status", "duration_ms", "request_id",
            "service"} <= set(line)
    assert (line["logger"], line["method"], line["path"], line["status"]) == (
        ACCESS, "GET", "/compute/v2.1/flavors/detail", 200)
    assert os_conn.session.get_token() not in out.getvalue()


def test_serve_log_format_json_writes_json_lines(tmp_path: Path):
    """`fakecloud serve --log-format json`: every line on stderr is one JSON object, access lines included."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    exe = Path(sys.executable).parent / "fakecloud"
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "openstack_fakecloud.cli"]
    proc = subprocess.Popen(
        [*command, "serve", "--port", str(port), "--clouds-yaml", str(tmp_path / "clouds.yaml"),
         "--log-format", "json"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=dict(os.environ, NO_COLOR="1"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, "fakecloud serve exited"
            try:
                if requests.get(url + "/_fakecloud/health", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "fakecloud serve did not answer within 30 s"
            time.sleep(0.1)
        conn = openstack.connect(auth_url=f"{url}/v3", username="demo", password="demo", project_name="demo",
                                 user_domain_name="Default", project_domain_name="Default",
                                 region_name="RegionOne", identity_api_version="3", load_yaml_config=False,
                                 load_envvars=False)
        sent = _global_id()
        list(conn.global_request(sent).compute.flavors())
        token = conn.session.get_token()
        conn.close()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()

    lines = [json.loads(line) for line in err.splitlines() if line.strip()]  # each line parses, or this fails
    access = [line for line in lines if line.get("logger") == ACCESS]
    assert any(line["global_request_id"] == sent and line["path"] == "/compute/v2.1/flavors/detail" for line in access)
    assert any(line["path"] == "/v3/auth/tokens" and line["method"] == "POST" for line in access)
    assert token not in err
    assert "demo" not in json.dumps([line for line in access if line["path"] == "/v3/auth/tokens"])  # no body


@pytest.mark.parametrize("bad", ["yaml", ""])
def test_serve_refuses_an_unknown_log_format(tmp_path: Path, bad: str):
    exe = Path(sys.executable).parent / "fakecloud"
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "openstack_fakecloud.cli"]
    done = subprocess.run([*command, "serve", "--port", "0", "--clouds-yaml", str(tmp_path / "c.yaml"),
                           "--log-format", bad], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, NO_COLOR="1", COLUMNS="200"))
    assert done.returncode != 0
    assert "log-format" in done.stderr
