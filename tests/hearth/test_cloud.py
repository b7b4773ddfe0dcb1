"""Cloud connections: requests' per-call environment lookups are read once, or kept where they must be."""

from __future__ import annotations

from pathlib import Path

import pytest
from keystoneauth1 import exceptions as ks_exceptions

from hearth.cloud import CloudConnections, environment_matters

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
