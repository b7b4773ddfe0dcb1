"""The OpenAPI document served by the running API tells the truth about errors: every route lists each
fault status it can answer, with Trove's body (`{"badRequest": {"code": 400, "message": "..."}}`); a wrong
method is 405 with an `Allow` header naming the methods the path has."""

from __future__ import annotations

from typing import Any

import requests

from hearth.api.errors import FAULT_NAMES, INTERNAL_FAULT

EVERY = {400, 413, 500}
PROJECT = EVERY | {401, 403, 503}
P = "/v1.0/{project_id}"
# (method, path) -> fault statuses it can answer (besides its 2xx); the dry-run routes also answer 200.
EXPECTED: dict[tuple[str, str], set[int]] = {
    ("get", "/"): EVERY,
    ("get", "/v1.0"): EVERY,
    ("get", f"{P}/flavors"): PROJECT,
    ("get", f"{P}/flavors/{{flavor_id}}"): PROJECT | {404},
    ("get", f"{P}/datastores"): PROJECT,
    ("get", f"{P}/datastores/versions/{{version_id}}"): PROJECT | {404},
    ("get", f"{P}/datastores/{{datastore}}"): PROJECT | {404},
    ("get", f"{P}/datastores/{{datastore}}/versions"): PROJECT | {404},
    ("get", f"{P}/datastores/{{datastore}}/versions/{{version}}"): PROJECT | {404},
    ("post", f"{P}/instances"): PROJECT | {404},
    ("get", f"{P}/instances"): PROJECT,
    ("get", f"{P}/instances/{{instance_id}}"): PROJECT | {404},
    ("put", f"{P}/instances/{{instance_id}}"): PROJECT | {404, 409, 422},
    ("delete", f"{P}/instances/{{instance_id}}"): PROJECT | {404, 409, 422},
    ("post", f"{P}/instances/{{instance_id}}/action"): PROJECT | {404, 409, 422},
    ("get", f"{P}/instances/{{instance_id}}/events"): PROJECT | {404},
    ("get", f"{P}/instances/{{instance_id}}/operations"): PROJECT | {404},
    ("get", f"{P}/security-groups"): PROJECT,
    ("get", f"{P}/security-groups/{{ref}}"): PROJECT | {404},
    ("post", f"{P}/security-group-rules"): PROJECT | {404, 409, 422},
    ("put", f"{P}/security-group-rules/{{rule_id}}"): PROJECT | {404, 409, 422},
    ("delete", f"{P}/security-group-rules/{{rule_id}}"): PROJECT | {404, 409, 422},
    # databases, users, root (routes_datastore): validated (400), then on the instance's database
    **{(method, f"{P}/instances/{{instance_id}}/{path}"): PROJECT | {404, 422}
       for method, path in [("get", "databases"), ("post", "databases"), ("delete", "databases/{name}"),
                            ("get", "users"), ("post", "users"), ("put", "users"), ("get", "users/{name}"),
                            ("put", "users/{name}"), ("delete", "users/{name}"), ("get", "users/{name}/databases"),
                            ("put", "users/{name}/databases"), ("delete", "users/{name}/databases/{database}"),
                            ("get", "root"), ("post", "root"), ("delete", "root"), ("get", "configuration")]},
    # configuration groups and parameters (routes_configurations)
    ("post", f"{P}/configurations"): PROJECT | {404},
    ("get", f"{P}/configurations"): PROJECT,
    ("get", f"{P}/configurations/{{configuration_id}}"): PROJECT | {404},
    ("get", f"{P}/configurations/{{configuration_id}}/instances"): PROJECT | {404},
    ("put", f"{P}/configurations/{{configuration_id}}"): PROJECT | {404, 422},
    ("patch", f"{P}/configurations/{{configuration_id}}"): PROJECT | {404, 422},
    ("delete", f"{P}/configurations/{{configuration_id}}"): PROJECT | {404, 409},
    ("get", f"{P}/datastores/versions/{{version_id}}/parameters"): PROJECT | {404},
    ("get", f"{P}/datastores/versions/{{version_id}}/parameters/{{name}}"): PROJECT | {404},
    ("get", f"{P}/datastores/{{datastore}}/versions/{{version}}/parameters"): PROJECT | {404},
    ("get", f"{P}/datastores/{{datastore}}/versions/{{version}}/parameters/{{name}}"): PROJECT | {404},
    ("get", f"{P}/limits"): PROJECT,
    # the cloud administrator's management API (routes_mgmt)
    ("get", f"{P}/mgmt/instances"): PROJECT,
    ("get", f"{P}/mgmt/instances/{{instance_id}}"): PROJECT | {404},
    ("get", f"{P}/mgmt/fleet"): PROJECT,
    ("get", f"{P}/mgmt/instances/{{instance_id}}/drift"): PROJECT | {404, 409},
    ("get", f"{P}/mgmt/orphans"): PROJECT,
    ("post", f"{P}/mgmt/migrations"): PROJECT | {409},
    ("get", f"{P}/mgmt/migrations"): PROJECT,
    ("get", f"{P}/mgmt/migrations/{{migration_id}}"): PROJECT | {404},
    ("post", f"{P}/mgmt/migrations/{{migration_id}}/action"): PROJECT | {404, 409},
    ("delete", f"{P}/mgmt/orphans"): PROJECT,
}
DRY_RUN_ROUTES = {("put", f"{P}/instances/{{instance_id}}"), ("delete", f"{P}/instances/{{instance_id}}"),
                  ("post", f"{P}/instances/{{instance_id}}/action"), ("post", f"{P}/security-group-rules"),
                  ("put", f"{P}/security-group-rules/{{rule_id}}"), ("delete", f"{P}/security-group-rules/{{rule_id}}")}


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def test_every_route_documents_its_faults_with_troves_body(hearth_api):
    response = requests.get(f"{hearth_api.url}/openapi.json", timeout=30)
    assert response.status_code == 200
    doc = response.json()
    found = {(method, path): operation for path, operations in doc["paths"].items()
             for method, operation in operations.items()}
    assert set(found) == set(EXPECTED)
    for key, operation in found.items():
        answers = operation["responses"]
        faults = {int(status) for status in answers if int(status) >= 400}
        assert faults == EXPECTED[key], (key, sorted(faults))
        for status in faults:
            name = FAULT_NAMES.get(status, INTERNAL_FAULT)
            body = _resolve(doc, answers[str(status)]["content"]["application/json"]["schema"])
            assert set(body["properties"]) == {name} and body["required"] == [name], (key, status, body)
            detail = _resolve(doc, body["properties"][name])
            assert detail["properties"]["code"]["type"] == "integer"
            assert detail["properties"]["message"]["type"] == "string"
            assert answers[str(status)]["description"]
        assert "Retry-After" in answers.get("503", {}).get("headers", {}) or 503 not in faults
        if key in DRY_RUN_ROUTES:
            plan = _resolve(doc, answers["200"]["content"]["application/json"]["schema"])
            assert set(plan["properties"]) == {"plan"}, key
    assert "HTTPValidationError" not in doc["components"]["schemas"]


def test_documented_faults_are_what_the_api_answers(hearth_api, fault_of):
    """A few answers of different statuses, read against the document's schemas."""
    doc = requests.get(f"{hearth_api.url}/openapi.json", timeout=30).json()
    api = hearth_api.client()
    answers = {
        400: api.get("/instances", params={"limit": 0}),
        401: hearth_api.client(token=False).get("/instances"),
        403: hearth_api.client("admin", as_project="demo").get("/instances"),
        404: api.get("/instances/no-such-instance"),
        413: api.post("/instances", data=b"{" + b" " * 200_000 + b"}", headers={"Content-Type": "application/json"}),
    }
    for status, response in answers.items():
        assert response.status_code == status, response.text
        (name, detail), = response.json().items()
        schema = doc["components"]["schemas"][f"{name[:1].upper()}{name[1:]}Fault"]
        assert schema["required"] == [name] and set(detail) == {"code", "message"} and detail["code"] == status


def test_a_wrong_method_is_405_with_allow(hearth_api, fault_of):
    api = hearth_api.client()
    response = api.request("POST", "/instances/0b5e3c4e-0000-4000-8000-000000000000")
    fault_of(response, 405, "badMethod", "POST", "DELETE, GET, PATCH, PUT")
    assert response.headers["Allow"] == "DELETE, GET, PATCH, PUT"
    response = api.request("DELETE", "/instances")
    fault_of(response, 405, "badMethod")
    assert response.headers["Allow"] == "GET, POST"
    response = hearth_api.client(token=False).request("POST", "/flavors")  # routing comes before the token
    assert (response.status_code, response.headers["Allow"]) == (405, "GET")
    response = requests.put(f"{hearth_api.url}/v1.0", timeout=30)
    assert (response.status_code, response.headers["Allow"]) == (405, "GET")
