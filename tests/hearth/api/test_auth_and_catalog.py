"""Keystone tokens (401/403, admin), version documents, OpenAPI, flavors and datastores."""

from __future__ import annotations

import time

import pytest
import requests
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3
from openstack.connection import Connection

from hearth.api.auth import TokenValidator
from hearth.api.errors import ApiError
from hearth.config import Settings
from hearth.views import datastore_id


def test_no_or_bad_token_is_401_and_changes_nothing(hearth_api, fault_of):
    before = hearth_api.cloud_ids()
    anonymous = hearth_api.client(token=False)
    body = {"instance": {"name": "db1", "flavorRef": "1", "volume": {"size": 1}}}
    fault_of(anonymous.post("/instances", json=body), 401, "unauthorized", "X-Auth-Token")
    fault_of(anonymous.get("/instances"), 401, "unauthorized")
    forged = hearth_api.client()
    forged.http.headers["X-Auth-Token"] = "gAAAAA-not-a-token"
    message = fault_of(forged.post("/instances", json=body), 401, "unauthorized", "invalid or expired")
    assert "gAAAAA" not in message
    assert hearth_api.cloud_ids() == before
    assert hearth_api.client().get("/instances").json()["instances"] == []


def test_token_of_another_project_is_403(hearth_api, fault_of):
    api = hearth_api.client()
    inst = hearth_api.create(api)
    before = hearth_api.cloud_ids()
    intruder = hearth_api.client("demo", as_project=f"intruder-{inst['id'][:8]}")
    fault_of(intruder.get("/instances"), 403, "forbidden", "not authorized")
    fault_of(intruder.get(f"/instances/{inst['id']}"), 403, "forbidden")
    fault_of(intruder.delete(f"/instances/{inst['id']}"), 403, "forbidden")
    fault_of(intruder.post(f"/instances/{inst['id']}/action", json={"resize": {"flavorRef": "2"}}), 403, "forbidden")
    assert hearth_api.cloud_ids() == before
    assert api.get(f"/instances/{inst['id']}").json()["instance"]["status"] == "ACTIVE"
    # the admin role may act on any project
    admin = hearth_api.client("demo", as_project="admin")
    assert admin.get(f"/instances/{inst['id']}").json()["instance"]["id"] == inst["id"]


def test_version_documents_and_openapi(hearth_api):
    root = requests.get(f"{hearth_api.url}/", timeout=30).json()
    assert [v["id"] for v in root["versions"]] == ["v1.0"]
    assert root["versions"][0]["status"] == "CURRENT"
    assert requests.get(f"{hearth_api.url}/v1.0", timeout=30).json()["version"]["id"] == "v1.0"
    spec = requests.get(f"{hearth_api.url}/openapi.json", timeout=30).json()
    assert "/v1.0/{project_id}/instances/{instance_id}/action" in spec["paths"]
    assert "/v1.0/{project_id}/security-group-rules" in spec["paths"]


def test_flavors_in_troves_view(hearth_api, fault_of):
    api = hearth_api.client()
    flavors = api.get("/flavors").json()["flavors"]
    tiny = next(f for f in flavors if f["name"] == "m1.tiny")
    assert (tiny["id"], tiny["str_id"], tiny["ram"], tiny["vcpus"], tiny["disk"]) == (1, "1", 512, 1, 1)
    assert api.get("/flavors/2").json()["flavor"]["name"] == "m1.small"
    fault_of(api.get("/flavors/42"), 404, "itemNotFound", "Flavor 42")


def test_datastores_with_stable_ids(hearth_api, fault_of):
    api = hearth_api.client()
    stores = api.get("/datastores").json()["datastores"]
    assert [d["name"] for d in stores] == ["postgresql", "mysql"]
    pg = stores[0]
    assert pg["default_version"] == pg["versions"][0]["id"]
    assert api.get(f"/datastores/{pg['id']}").json()["datastore"] == pg
    assert api.get("/datastores/postgresql").json()["datastore"]["id"] == pg["id"]
    versions = api.get(f"/datastores/{pg['id']}/versions").json()["versions"]
    assert [(v["name"], v["datastore"], v["active"]) for v in versions] == [("16", pg["id"], True)]
    version = api.get(f"/datastores/postgresql/versions/{versions[0]['id']}").json()["version"]
    assert version["name"] == "16"
    assert api.get(f"/datastores/versions/{versions[0]['id']}").json()["version"] == version
    assert api.get("/datastores/postgresql/versions/16").json()["version"]["id"] == versions[0]["id"]
    fault_of(api.get("/datastores/oracle"), 404, "itemNotFound", "oracle")
    fault_of(api.get("/datastores/postgresql/versions/9"), 404, "itemNotFound", "'9'")
    # ids are uuid5s of the names: the same on every Hearth, whatever its database
    assert pg["id"] == datastore_id("postgresql")


def test_token_cache_is_a_bounded_lru(hearth_runtime, fakecloud):
    """Validated tokens are cached, at most `max_entries` of them: the least recently used goes first."""
    auth = fakecloud.auth("demo")
    tokens = [ks_session.Session(auth=v3.Password(**auth)).get_token() for _ in range(3)]
    assert len(set(tokens)) == 3
    validator = TokenValidator(hearth_runtime, max_entries=2)

    def keystone_validations(action) -> int:
        seq = fakecloud.control.requests(log=False)["seq"]
        action()
        return len([r for r in fakecloud.control.requests(since=seq)["requests"]
                    if r["method"] == "GET" and r["path"].rstrip("/").endswith("/auth/tokens")])

    first, second, third = tokens
    assert keystone_validations(lambda: validator.validate(first)) == 1
    assert keystone_validations(lambda: validator.validate(second)) == 1
    principal = validator.validate(first)  # a cache hit, and now the most recently used
    assert principal.project_id == fakecloud.connect().current_project_id
    assert keystone_validations(lambda: validator.validate(first)) == 0
    assert keystone_validations(lambda: validator.validate(third)) == 1  # evicts `second`, the oldest
    assert len(validator._cache) == 2
    assert keystone_validations(lambda: validator.validate(first)) == 0
    assert keystone_validations(lambda: validator.validate(third)) == 0
    assert keystone_validations(lambda: validator.validate(second)) == 1  # evicted: asked again
    assert len(validator._cache) == 2


def test_a_revoked_token_is_401_once_the_cache_forgets_it(hearth_runtime, fakecloud):
    """Validation goes through openstacksdk's identity proxy: Keystone's 404 for a revoked token is a 401."""
    auth = fakecloud.auth("demo")
    token = ks_session.Session(auth=v3.Password(**auth)).get_token()
    validator = TokenValidator(hearth_runtime, max_entries=1)
    assert validator.validate(token).project_id
    fakecloud.connect().identity.revoke_token(token)
    validator.validate(ks_session.Session(auth=v3.Password(**auth)).get_token())  # pushes the revoked one out
    with pytest.raises(ApiError) as raised:
        validator.validate(token)
    assert raised.value.status == 401 and "invalid or expired" in raised.value.message


def test_a_revoked_token_is_refused_by_the_api_within_seconds(hearth_api, fakecloud, fault_of):
    """With the default cache (the fixture caches for 60 s), a token revoked in Keystone is a 401 within
    `token_cache_seconds`: a few seconds, not a minute."""
    default_ttl = Settings.model_fields["token_cache_seconds"].default
    assert 0 < default_ttl <= 5  # still a cache, and a short one
    runtime = hearth_api.runtime
    runtime.settings = runtime.settings.model_copy(update={"token_cache_seconds": default_ttl})
    user = ks_session.Session(auth=v3.Password(**fakecloud.auth("demo")))
    api = hearth_api.client()
    api.http.headers["X-Auth-Token"] = user.get_token()
    assert api.get("/instances").status_code == 200

    # the user logs out, through Keystone (openstacksdk, its own session: the token's user may revoke it)
    Connection(session=user, region_name=fakecloud.cloud.config.region).identity.revoke_token(user.get_token())
    revoked_at = time.monotonic()
    while (response := api.get("/instances")).status_code == 200:
        assert time.monotonic() - revoked_at < default_ttl + 2, "the revoked token is still accepted"
        time.sleep(0.2)
    fault_of(response, 401, "unauthorized", "invalid or expired")
    assert time.monotonic() - revoked_at <= default_ttl + 2
    assert hearth_api.client().get("/instances").status_code == 200  # other tokens are unaffected
