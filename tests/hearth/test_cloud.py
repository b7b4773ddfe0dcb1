"""Cloud connections: requests' per-call environment lookups are read once, or kept where they must be; one
token and one discovery per process."""

from __future__ import annotations

import functools
import threading
from pathlib import Path

import pytest
from keystoneauth1 import exceptions as ks_exceptions
from openstack.connection import Connection

from hearth.cloud import CloudConnections, environment_matters
from hearth.engines.common import ensure_discovered

SERVICES = ("compute", "block_storage", "network", "image")

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                   "NO_PROXY", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NETRC")


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


def test_no_environment_means_no_lookups_and_calls_still_work(clean_environment, fakecloud, tmp_path):
    assert environment_matters() is False
    connections = CloudConnections("fakecloud", fakecloud.write_clouds_yaml(tmp_path / "clouds.yaml"))
    try:
        conn = connections.get()
        assert conn.session.session.trust_env is False
        assert conn.compute.get_flavor("1").id == "1"  # a real call through the trimmed session
    finally:
        connections.close()


def test_a_proxy_in_the_environment_is_honoured(clean_environment, fakecloud, tmp_path, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there: every call must fail
    assert environment_matters() is True
    connections = CloudConnections("fakecloud", fakecloud.write_clouds_yaml(tmp_path / "clouds.yaml"))
    try:
        conn = connections.get()
        assert conn.session.session.trust_env is True
        with pytest.raises(ks_exceptions.ConnectFailure):
            conn.compute.get_flavor("1")
    finally:
        connections.close()


def test_a_netrc_file_keeps_the_lookups(clean_environment):
    (clean_environment / ".netrc").write_text("machine example.org login a password b\n")
    assert environment_matters() is True


def test_a_ca_bundle_variable_is_pinned_once(clean_environment, fakecloud, tmp_path, monkeypatch):
    bundle = tmp_path / "bundle.pem"
    bundle.write_text("")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    assert environment_matters() is False
    connections = CloudConnections("fakecloud", fakecloud.write_clouds_yaml(tmp_path / "clouds.yaml"))
    try:
        conn = connections.get()
        assert conn.session.session.trust_env is False
        assert conn.session.verify == str(bundle)  # what requests would have taken from the environment
        assert conn.compute.get_flavor("1").id == "1"  # plain http: the bundle is not consulted
    finally:
        connections.close()


def test_a_threads_first_connection_shares_the_token_and_the_discovery(fakecloud, tmp_path):
    """Once one thread has connected and discovered, another thread's new Connection asks the cloud nothing:
    no token, no version document. Its first call is the call itself, and it works."""
    connections = CloudConnections("fakecloud", fakecloud.write_clouds_yaml(tmp_path / "clouds.yaml"),
                                   ready=functools.partial(ensure_discovered, services=SERVICES))
    try:
        first = connections.get()
        assert first.compute.get_flavor("1").id == "1"
        mark = fakecloud.control.requests(log=False)["seq"]
        seen: list[Connection] = []
        worker = threading.Thread(target=lambda: seen.append(connections.get()))
        worker.start()
        worker.join(30)
        (second,) = seen
        assert second is not first
        assert fakecloud.control.requests(since=mark)["requests"] == []  # connecting asked the cloud nothing
        assert second.compute.get_flavor("1").id == "1"
        (call,) = fakecloud.control.requests(since=mark)["requests"]
        assert (call["service"], call["method"]) == ("compute", "GET")
        assert first.session.auth is second.session.auth  # one token for both
        assert first.session.session is not second.session.session  # each its own HTTP pool
    finally:
        connections.close()


def test_a_revoked_token_is_replaced_once_for_every_connection(fakecloud, tmp_path):
    """The shared token expires or is revoked: the next call re-authenticates (keystoneauth's 401 handling)
    and the other Connections use the new token too."""
    connections = CloudConnections("fakecloud", fakecloud.write_clouds_yaml(tmp_path / "clouds.yaml"))
    try:
        first = connections.get()
        token = first.session.get_token()
        other: list[Connection] = []
        worker = threading.Thread(target=lambda: other.append(connections.get()))
        worker.start()
        worker.join(30)
        first.session.auth.invalidate()
        assert other[0].compute.get_flavor("1").id == "1"
        assert first.session.get_token() == other[0].session.get_token() != token
    finally:
        connections.close()
