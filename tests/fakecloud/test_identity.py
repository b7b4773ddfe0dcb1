"""Keystone v3 over real HTTP with keystoneauth/openstacksdk."""

import keystoneauth1.exceptions
import openstack
import pytest
import requests


def test_sdk_authenticates_and_sees_catalog(fakecloud):
    conn = fakecloud.connect()
    token = conn.session.get_token()
    assert token
    catalog = {entry["type"] for entry in conn.session.auth.get_access(conn.session).service_catalog.catalog}
    assert {"identity", "compute", "volumev3", "block-storage", "network", "image"} <= catalog
    assert conn.current_project_id == fakecloud.cloud.identity.find_project("demo").id


def test_bad_password_is_401(fakecloud):
    auth = dict(fakecloud.auth(), password="wrong")
    conn = openstack.connect(**auth, load_yaml_config=False, load_envvars=False)
    with pytest.raises(keystoneauth1.exceptions.http.Unauthorized) as err:
        conn.session.get_token()
    assert err.value.http_status == 401


def test_discovery_with_and_without_slash(fakecloud):
    root = requests.get(fakecloud.url + "/")
    assert root.status_code == 300
    assert root.json()["versions"]["values"][0]["id"] == "v3.14"
    for path in ("/v3", "/v3/"):
        response = requests.get(fakecloud.url + path)
        assert response.status_code == 200
        assert response.json()["version"]["status"] == "stable"


def test_token_validate_and_revoke(fakecloud):
    admin = fakecloud.connect("admin").session.get_token()
    user = fakecloud.connect().session.get_token()
    url = fakecloud.url + "/v3/auth/tokens"
    shown = requests.get(url, headers={"X-Auth-Token": admin, "X-Subject-Token": user})
    assert shown.status_code == 200
    body = shown.json()["token"]
    assert body["project"]["name"] == "demo"
    assert body["catalog"], "keystonemiddleware needs the catalog in a validated token"
    assert requests.delete(url, headers={"X-Auth-Token": admin, "X-Subject-Token": user}).status_code == 204
    again = requests.get(url, headers={"X-Auth-Token": admin, "X-Subject-Token": user})
    assert again.status_code == 404


def test_request_without_token_is_401(fakecloud):
    response = requests.get(fakecloud.url + "/v3/auth/catalog")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == 401
    assert response.headers["X-OpenStack-Request-ID"].startswith("req-")


def test_expired_token_is_refused(fakecloud):
    token = fakecloud.connect().session.get_token()
    fakecloud.control.advance(fakecloud.cloud.config.token_ttl_seconds + 1)
    response = requests.get(fakecloud.url + "/v3/auth/catalog", headers={"X-Auth-Token": token})
    assert response.status_code == 401
