"""Keystone tokens (401/403, admin), version documents, OpenAPI, flavors and datastores."""

from __future__ import annotations

import requests

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
