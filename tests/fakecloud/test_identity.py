"""Keystone v3 over real HTTP with keystoneauth/openstacksdk."""

import stat

import keystoneauth1.exceptions
import openstack
import openstack.config
import pytest
import requests
import yaml

from openstack_fakecloud.identity.backend import stable_id
from openstack_fakecloud.server import write_clouds_yaml


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
    from openstack_fakecloud.config import UserSpec

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


def _connect_as(fakecloud, name: str, password: str, project: str) -> openstack.connection.Connection:
    auth = dict(fakecloud.auth(), username=name, password=password, project_name=project)
    return openstack.connect(**auth, region_name=fakecloud.cloud.config.region, identity_api_version="3",
                             load_yaml_config=False, load_envvars=False)


def test_admin_creates_a_tenant_whose_user_authenticates_with_its_role(fakecloud):
    """What tempest's dynamic credentials do: project, user, role assignment, then a token as the new user."""
    admin = fakecloud.connect("admin").identity
    project = admin.create_project(name="tempest-p1", domain_id="default", description="dyn")
    with pytest.raises(openstack.exceptions.ConflictException):
        admin.create_project(name="tempest-p1", domain_id="default")
    user = admin.create_user(name="tempest-u1", password="pw-1", domain_id="default",
                             default_project_id=project.id, email="u1@example.org")
    member = admin.find_role("member", ignore_missing=False)
    admin.assign_project_role_to_user(project, user, member)
    assert admin.validate_user_has_project_role(project, user, member)
    listed = admin.get(f"/projects/{project.id}/users/{user.id}/roles").json()["roles"]
    assert [r["name"] for r in listed] == ["member"]

    identity = fakecloud.cloud.identity
    assert identity.projects[project.id].name == "tempest-p1"
    assert identity.users[user.id].roles == {project.id: ["member"]}
    assert [p.name for p in admin.projects(name="tempest-p1", domain_id="default")] == ["tempest-p1"]
    assert [u.id for u in admin.users(name="tempest-u1")] == [user.id]
    assert admin.get_user(user.id).email == "u1@example.org"

    conn = _connect_as(fakecloud, "tempest-u1", "pw-1", "tempest-p1")
    access = conn.session.auth.get_access(conn.session)
    assert access.project_id == project.id and access.user_id == user.id
    assert access.role_names == ["member"]
    assert [p.id for p in conn.identity.user_projects(user.id)] == [project.id]
    assignments = list(admin.role_assignments(user_id=user.id, scope_project_id=project.id))
    assert [(a.role["id"], a.scope["project"]["id"]) for a in assignments] == [(member.id, project.id)]

    # the new user is no admin: Keystone's admin-only calls are 403 for it
    with pytest.raises(openstack.exceptions.ForbiddenException):
        list(conn.identity.projects())
    with pytest.raises(openstack.exceptions.ForbiddenException):
        conn.identity.create_user(name="nope", password="x")


def test_role_grants_show_in_tokens_and_removal_revokes_them(fakecloud):
    admin = fakecloud.connect("admin").identity
    project = admin.create_project(name="p2", domain_id="default")
    user = admin.create_user(name="u2", password="pw-2", domain_id="default")
    with pytest.raises(keystoneauth1.exceptions.http.Unauthorized):  # no role on the project yet
        _connect_as(fakecloud, "u2", "pw-2", "p2").session.get_token()
    reader, member = admin.find_role("reader", ignore_missing=False), admin.find_role("member", ignore_missing=False)
    admin.assign_project_role_to_user(project, user, reader)
    token = _connect_as(fakecloud, "u2", "pw-2", "p2").session.get_token()
    admin.assign_project_role_to_user(project, user, member)
    url = fakecloud.url + "/v3/auth/tokens"
    admin_token = fakecloud.connect("admin").session.get_token()
    shown = requests.get(url, headers={"X-Auth-Token": admin_token, "X-Subject-Token": token}).json()["token"]
    assert sorted(r["name"] for r in shown["roles"]) == ["member", "reader"]
    assert shown["project"]["domain"] == {"id": "default", "name": "Default"}

    admin.unassign_project_role_from_user(project, user, reader)
    assert not admin.validate_user_has_project_role(project, user, reader)
    assert requests.head(url, headers={"X-Auth-Token": admin_token, "X-Subject-Token": token}).status_code == 404
    assert fakecloud.cloud.identity.users[user.id].roles == {project.id: ["member"]}

    # a new password revokes; the old one stops working, the new one works
    token = _connect_as(fakecloud, "u2", "pw-2", "p2").session.get_token()
    admin.update_user(user, password="pw-2b")
    assert requests.head(url, headers={"X-Auth-Token": admin_token, "X-Subject-Token": token}).status_code == 404
    with pytest.raises(keystoneauth1.exceptions.http.Unauthorized):
        _connect_as(fakecloud, "u2", "pw-2", "p2").session.get_token()
    token = _connect_as(fakecloud, "u2", "pw-2b", "p2").session.get_token()

    # deleting the user: its tokens stop validating
    admin.delete_user(user)
    assert requests.head(url, headers={"X-Auth-Token": admin_token, "X-Subject-Token": token}).status_code == 404
    assert user.id not in fakecloud.cloud.identity.users
    admin.delete_project(project)
    assert project.id not in fakecloud.cloud.identity.projects


def test_domains_roles_and_their_rules(fakecloud):
    admin = fakecloud.connect("admin").identity
    assert admin.get_domain("default").name == "Default"
    assert fakecloud.connect().identity.get_domain("default").id == "default"  # its own project's domain
    with pytest.raises(openstack.exceptions.ForbiddenException):
        list(fakecloud.connect().identity.domains())

    domain = admin.create_domain(name="d1", description="tenants")
    project = admin.create_project(name="demo", domain_id=domain.id)  # names are unique per domain only
    user = admin.create_user(name="demo", password="pw-d", domain_id=domain.id)
    role = admin.create_role(name="custom")
    assert admin.get_role(role.id).name == "custom"
    admin.assign_project_role_to_user(project, user, role)
    auth = dict(fakecloud.auth(), username="demo", password="pw-d", project_name="demo",
                user_domain_name="d1", project_domain_name="d1")
    conn = openstack.connect(**auth, load_yaml_config=False, load_envvars=False)
    access = conn.session.auth.get_access(conn.session)
    assert (access.project_id, access.role_names, access.user_domain_id) == (project.id, ["custom"], domain.id)
    # the seeded demo user is untouched by a namesake in another domain
    assert fakecloud.connect().current_project_id == fakecloud.cloud.identity.find_project("demo").id

    admin.delete_role(role)
    assert not fakecloud.cloud.identity.users[user.id].roles.get(project.id)
    with pytest.raises(keystoneauth1.exceptions.http.Unauthorized):  # its only role there is gone
        openstack.connect(**auth, load_yaml_config=False, load_envvars=False).session.get_token()
    with pytest.raises(openstack.exceptions.ForbiddenException):  # must be disabled first
        admin.delete_domain(domain)
    admin.update_domain(domain, enabled=False)
    admin.delete_domain(domain)
    identity = fakecloud.cloud.identity
    assert domain.id not in identity.domains
    assert project.id not in identity.projects and user.id not in identity.users


def test_identity_state_survives_dump_and_load(fakecloud):
    admin = fakecloud.connect("admin").identity
    project = admin.create_project(name="kept", domain_id="default")
    user = admin.create_user(name="kept-user", password="pw-k", domain_id="default")
    admin.assign_project_role_to_user(project, user, admin.find_role("reader", ignore_missing=False))
    identity = fakecloud.cloud.identity
    data = identity.dump()
    identity.reset()
    assert user.id not in identity.users
    identity.load(data)
    assert identity.users[user.id].roles == {project.id: ["reader"]}
    conn = _connect_as(fakecloud, "kept-user", "pw-k", "kept")
    assert conn.session.auth.get_access(conn.session).role_names == ["reader"]
    assert identity.find_project("demo").id == stable_id("project", "demo")


def _token_of(fakecloud, identity: dict, scope=None) -> requests.Response:
    auth = {"identity": identity, **({"scope": scope} if scope else {})}
    return requests.post(fakecloud.url + "/v3/auth/tokens", json={"auth": auth}, timeout=10)


def test_application_credentials_authenticate_into_their_project(fakecloud):
    """What tempest's ApplicationCredentialsV3Test does: create (secret shown once), show, list by name, a token
    with the credential, expiry as Keystone shows it, delete."""
    conn = fakecloud.connect()
    token = conn.session.get_token()
    user_id, project_id = conn.current_user_id, conn.current_project_id
    url = f"{fakecloud.url}/v3/users/{user_id}/application_credentials"
    headers = {"X-Auth-Token": token}
    created = requests.post(url, headers=headers, json={"application_credential": {"name": "ci"}}, timeout=10)
    assert created.status_code == 201
    cred = created.json()["application_credential"]
    assert cred["project_id"] == project_id and cred["secret"] and cred["unrestricted"] is False
    assert {r["name"] for r in cred["roles"]} == set(fakecloud.cloud.identity.users[user_id].roles[project_id])
    shown = requests.get(f"{url}/{cred['id']}", headers=headers, timeout=10).json()["application_credential"]
    assert "secret" not in shown and shown["name"] == "ci"
    duplicate = requests.post(url, headers=headers, json={"application_credential": {"name": "ci"}}, timeout=10)
    assert duplicate.status_code == 409
    expiring = requests.post(url, headers=headers, timeout=10, json={"application_credential": {
        "name": "later", "expires_at": "2099-01-02T03:04:05.123456"}}).json()["application_credential"]
    assert expiring["expires_at"] == "2099-01-02T03:04:05.123456"
    assert [c["name"] for c in requests.get(url, headers=headers, params={"name": "later"},
                                            timeout=10).json()["application_credentials"]] == ["later"]
    # the credential authenticates, scoped to its project, without a scope in the request
    method = {"methods": ["application_credential"],
              "application_credential": {"id": cred["id"], "secret": cred["secret"]}}
    issued = _token_of(fakecloud, method)
    assert issued.status_code == 201
    body = issued.json()["token"]
    assert body["project"]["id"] == project_id and body["application_credential"]["id"] == cred["id"]
    wrong = {**method, "application_credential": {"id": cred["id"], "secret": "nope"}}
    assert _token_of(fakecloud, wrong).status_code == 401
    # a restricted credential's token may not make more credentials; another user may not see these
    app_headers = {"X-Auth-Token": issued.headers["X-Subject-Token"]}
    more = requests.post(url, headers=app_headers, json={"application_credential": {"name": "x"}}, timeout=10)
    assert more.status_code == 403
    admin = fakecloud.connect("admin").session.get_token()
    admin_user = fakecloud.cloud.identity.validate(admin).user_id
    assert requests.post(url, headers={"X-Auth-Token": admin}, timeout=10,
                         json={"application_credential": {"name": "y"}}).status_code == 403
    assert admin_user != user_id
    assert requests.delete(f"{url}/{cred['id']}", headers=headers, timeout=10).status_code == 204
    assert _token_of(fakecloud, method).status_code == 401
    assert requests.get(f"{url}/{cred['id']}", headers=headers, timeout=10).status_code == 404


def test_application_credentials_survive_dump_and_load(fakecloud):
    conn = fakecloud.connect()
    url = f"{fakecloud.url}/v3/users/{conn.current_user_id}/application_credentials"
    cred = requests.post(url, headers={"X-Auth-Token": conn.session.get_token()}, timeout=10,
                         json={"application_credential": {"name": "kept", "secret": "s3cret"}}).json()
    identity = fakecloud.cloud.identity
    saved = identity.dump()
    identity.load(saved)
    method = {"methods": ["application_credential"],
              "application_credential": {"id": cred["application_credential"]["id"], "secret": "s3cret"}}
    assert _token_of(fakecloud, method).status_code == 201
