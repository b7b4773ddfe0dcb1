"""Keystone v3 over real HTTP with keystoneauth/openstacksdk."""

import stat

import keystoneauth1.exceptions
import openstack
import openstack.config
import pytest
import requests
import yaml

from fakecloud.server import write_clouds_yaml


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


def test_only_the_tokens_user_a_service_or_an_admin_may_revoke_it(fakecloud):
    """Keystone's identity:revoke_token policy: a tenant cannot log out another user (or a service)."""
    fakecloud.control.add_user("svc", "svc-pw", "service", ["member", "reader", "service"])
    fakecloud.control.add_user("other", "other-pw", "other")
    url = fakecloud.url + "/v3/auth/tokens"

    def token_of(name: str, password: str, project: str) -> str:
        auth = dict(fakecloud.auth(), username=name, password=password, project_name=project)
        return openstack.connect(**auth, load_yaml_config=False, load_envvars=False).session.get_token()

    demo = fakecloud.connect().session.get_token()
    other = token_of("other", "other-pw", "other")
    refused = requests.delete(url, headers={"X-Auth-Token": other, "X-Subject-Token": demo})
    assert refused.status_code == 403
    assert requests.head(url, headers={"X-Auth-Token": other, "X-Subject-Token": demo}).status_code == 200

    service = token_of("svc", "svc-pw", "service")
    assert requests.delete(url, headers={"X-Auth-Token": service, "X-Subject-Token": demo}).status_code == 204
    assert requests.head(url, headers={"X-Auth-Token": service, "X-Subject-Token": demo}).status_code == 404
    # its own user may revoke a token, with openstacksdk as a client would
    second = fakecloud.connect().session.get_token()
    fakecloud.connect().identity.revoke_token(second)
    assert requests.head(url, headers={"X-Auth-Token": service, "X-Subject-Token": second}).status_code == 404


def test_a_service_user_lives_in_a_project_no_tenant_can_scope_to(fakecloud, tmp_path):
    """What `hearth up` does: a service user in `service`, its clouds.yaml entry beside the tenants' (0600)."""
    from fakecloud.config import UserSpec

    fakecloud.control.add_user("hearth", "s3cret-pw", "service", ["member", "reader", "service"])
    service = UserSpec(name="hearth", password="s3cret-pw", project="service", roles=["member", "reader", "service"])
    path = write_clouds_yaml(tmp_path / "clouds.yaml", fakecloud.url, fakecloud.cloud.config,
                             {"fakecloud-hearth": service})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    clouds = yaml.safe_load(path.read_text())["clouds"]
    assert set(clouds) == {"fakecloud", "fakecloud-admin", "fakecloud-hearth"}
    assert clouds["fakecloud"]["auth"]["project_name"] == "demo"

    config = openstack.config.OpenStackConfig(config_files=[str(path)], load_envvars=False)
    conn = openstack.connection.Connection(config=config.get_one(cloud="fakecloud-hearth"))
    access = conn.session.auth.get_access(conn.session)
    assert access.project_name == "service"
    assert "service" in access.role_names
    assert conn.current_project_id != fakecloud.connect().current_project_id

    demo = fakecloud.connect()
    assert [p.name for p in demo.identity.user_projects(demo.current_user_id)] == ["demo"]
    as_demo_in_service = dict(fakecloud.auth(), project_name="service")
    with pytest.raises(keystoneauth1.exceptions.http.Unauthorized):
        openstack.connect(**as_demo_in_service, load_yaml_config=False, load_envvars=False).session.get_token()
