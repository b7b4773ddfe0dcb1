"""What heat-tempest-plugin's API tests call: OS::Heat::TestResource, resource types, template functions,
software configs and deployments, stack outputs and resource signals, over real HTTP."""

from __future__ import annotations

import time
from typing import Any

WAIT = {"interval": 0.05, "wait": 15}


def test_resource(**properties: Any) -> dict[str, Any]:
    return {"type": "OS::Heat::TestResource", "properties": properties}


test_resource.__test__ = False  # type: ignore[attr-defined]  # a template helper, not a test


def hot(resources: dict[str, Any], **sections: Any) -> dict[str, Any]:
    return {"heat_template_version": "2016-04-08", "resources": resources, **sections}


OUTPUT = {"output_value": {"value": {"get_attr": ["test", "output"]}}}
PARAM = {"test_val": {"type": "string"}}


# OS::Heat::TestResource --------------------------------------------------------------------------------
def test_test_resource_stores_its_value_and_updates_in_place(heat):
    template = hot({"test": test_resource(value={"get_param": "test_val"})}, parameters=PARAM, outputs=OUTPUT)
    path = heat.created("tr", template, parameters={"test_val": "one"})
    heat.wait(path, "CREATE_COMPLETE")
    resource = heat.ok("GET", f"{path}/resources/test")["resource"]
    physical = resource["physical_resource_id"]
    assert resource["attributes"]["output"] == "one" and physical.startswith("tr-test-")
    assert heat.ok("GET", f"{path}/outputs/output_value")["output"]["output_value"] == "one"

    heat.ok("PATCH", path, {"parameters": {"test_val": "two"}}, status=202)
    heat.wait(path, "UPDATE_COMPLETE")
    assert heat.ok("GET", f"{path}/outputs/output_value")["output"]["output_value"] == "two"
    assert heat.ok("GET", f"{path}/resources/test")["resource"]["physical_resource_id"] == physical


def test_test_resource_update_replace_makes_a_new_resource(heat):
    path = heat.created("rep", hot({"test": test_resource(value="a", update_replace=True)}))
    heat.wait(path, "CREATE_COMPLETE")
    before = heat.ok("GET", f"{path}/resources/test")["resource"]["physical_resource_id"]
    heat.ok("PUT", path, {"template": hot({"test": test_resource(value="b", update_replace=True)})}, status=202)
    heat.wait(path, "UPDATE_COMPLETE")
    resource = heat.ok("GET", f"{path}/resources/test")["resource"]
    assert resource["physical_resource_id"] != before and resource["attributes"]["output"] == "b"


def test_test_resource_fail_fails_the_create(heat):
    path = heat.created("boom", hot({"test": test_resource(fail=True)}))
    stack = heat.wait(path, "CREATE_FAILED")
    assert stack["stack_status_reason"] == ("Resource CREATE failed: ValueError: resources.test: "
                                            "Test Resource failed test")
    heat.ok("DELETE", path, status=204)
    heat.wait(path, "DELETE_COMPLETE")


def test_test_resource_waits_its_wait_secs_in_cloud_time(fakecloud, heat):
    path = heat.created("slow", hot({"test": test_resource(wait_secs=600, action_wait_secs={"delete": 0})}))
    time.sleep(0.3)
    assert heat.ok("GET", path)["stack"]["stack_status"] == "CREATE_IN_PROGRESS"
    fakecloud.control.advance(601)
    heat.wait(path, "CREATE_COMPLETE")
    heat.ok("DELETE", path, status=204)
    heat.wait(path, "DELETE_COMPLETE")


def test_test_resource_check_and_signal(heat):
    path = heat.created("sig", hot({"test": test_resource()}))
    heat.wait(path, "CREATE_COMPLETE")
    response = heat.call("POST", f"{path}/resources/test/signal", {})
    assert response.status_code == 400
    assert response.json()["error"]["message"] == ("ResourceActionNotSupported: resources.test: signal is not "
                                                   "supported for resource.")
    assert heat.call("POST", f"{path}/resources/nope/signal", {}).status_code == 404
    heat.ok("PATCH", f"{path}/resources/test", {"mark_unhealthy": True, "resource_status_reason": "gone"})
    resource = heat.ok("GET", f"{path}/resources/test")["resource"]
    assert (resource["resource_status"], resource["resource_status_reason"]) == ("CHECK_FAILED", "gone")


# resource types ------------------------------------------------------------------------------------------
def test_resource_type_list_and_filters(heat):
    types = heat.ok("GET", "/resource_types")["resource_types"]
    assert "OS::Heat::TestResource" in types and types == sorted(types)
    named = heat.ok("GET", "/resource_types", params={"name": "OS::Heat::Test"})["resource_types"]
    assert named == ["OS::Heat::TestResource"]
    described = heat.ok("GET", "/resource_types", params={"name": "OS::Heat::TestResource",
                                                          "with_description": "true"})["resource_types"]
    assert described == [{"resource_type": "OS::Heat::TestResource",
                          "description": "A resource that stores the string it was given; for testing only."}]


def test_resource_type_schema(heat):
    schema = heat.ok("GET", "/resource_types/OS::Heat::TestResource")
    assert schema["resource_type"] == "OS::Heat::TestResource"
    assert schema["support_status"]["status"] == "SUPPORTED"
    props = schema["properties"]
    assert props["wait_secs"]["default"] == 0 and props["wait_secs"]["type"] == "number"
    assert props["action_wait_secs"]["schema"]["update"]["type"] == "number"
    assert props["value"] == {"type": "string", "description": "The input string to be stored.", "required": False,
                              "update_allowed": True, "immutable": False, "default": "test_string"}
    assert set(schema["attributes"]) == {"output", "show"}
    length = heat.ok("GET", "/resource_types/OS::Heat::RandomString")["properties"]["length"]
    assert length["constraints"] == [{"range": {"min": 1, "max": 512}}]
    missing = heat.call("GET", "/resource_types/OS::Nope::Thing")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "InvalidGlobalResource"


def test_resource_type_template(heat):
    template = heat.ok("GET", "/resource_types/OS::Heat::TestResource/template", params={"template_type": "hot"})
    assert template["heat_template_version"] == "2016-10-14"
    resource = template["resources"]["TestResource"]
    assert resource["type"] == "OS::Heat::TestResource"
    assert resource["properties"]["value"] == {"get_param": "value"}
    assert template["parameters"]["action_wait_secs"]["type"] == "json"
    assert template["outputs"]["output"]["value"] == {"get_attr": ["TestResource", "output"]}
    cfn = heat.ok("GET", "/resource_types/OS::Heat::TestResource/template")
    assert cfn["HeatTemplateFormatVersion"] == "2012-12-12"
    assert cfn["Parameters"]["fail"]["AllowedValues"] == ["True", "true", "False", "false"]
    assert heat.call("GET", "/resource_types/OS::Heat::TestResource/template",
                     params={"template_type": "xml"}).status_code == 400


# template versions and functions -------------------------------------------------------------------------
def test_template_functions_per_version(heat):
    functions = heat.ok("GET", "/template_versions/heat_template_version.2016-04-08/functions")["template_functions"]
    by_name = {f["functions"]: f["description"] for f in functions}
    assert by_name["get_file"] == "A function for including a file inline."
    assert "map_merge" in by_name and "if" not in by_name and "Fn::Join" not in by_name
    pike = heat.ok("GET", "/template_versions/heat_template_version.pike/functions",
                   params={"with_condition_func": "true"})["template_functions"]
    assert {"list_concat", "if", "equals", "contains"} <= {f["functions"] for f in pike}
    missing = heat.call("GET", "/template_versions/heat_template_version.1999-01-01/functions")
    assert missing.status_code == 404


# software configs and deployments ------------------------------------------------------------------------
def test_software_config_and_deployment_lifecycle(heat):
    config = heat.ok("POST", "/software_configs", {"name": "cfg", "group": "script", "config": "#!/bin/sh\necho hi",
                                                   "inputs": [{"name": "foo"}]})["software_config"]
    assert config["group"] == "script" and config["inputs"] == [{"name": "foo", "type": "String"}]
    assert heat.ok("GET", f"/software_configs/{config['id']}")["software_config"]["config"] == "#!/bin/sh\necho hi"
    listed = heat.ok("GET", "/software_configs")["software_configs"]
    assert [(c["id"], c["group"]) for c in listed] == [(config["id"], "script")] and "config" not in listed[0]

    deployment = heat.ok("POST", "/software_deployments", {"config_id": config["id"], "server_id": "srv",
                                                           "action": "ACTION0"})["software_deployment"]
    assert (deployment["action"], deployment["server_id"], deployment["config_id"]) == ("ACTION0", "srv",
                                                                                        config["id"])
    metadata = heat.ok("GET", "/software_deployments/metadata/srv")["metadata"]
    assert [(m["id"], m["group"]) for m in metadata] == [(config["id"], "script")]
    updated = heat.ok("PUT", f"/software_deployments/{deployment['id']}",
                      {"action": "ACTION1", "status": "COMPLETE", "status_reason": "done"})["software_deployment"]
    assert (updated["action"], updated["status"], updated["status_reason"]) == ("ACTION1", "COMPLETE", "done")
    assert "updated_time" in updated
    assert [d["id"] for d in heat.ok("GET", "/software_deployments",
                                     params={"server_id": "srv"})["software_deployments"]] == [deployment["id"]]
    assert heat.ok("GET", "/software_deployments", params={"server_id": "other"})["software_deployments"] == []

    in_use = heat.call("DELETE", f"/software_configs/{config['id']}")
    assert in_use.status_code == 400
    heat.ok("DELETE", f"/software_deployments/{deployment['id']}", status=204)
    heat.ok("DELETE", f"/software_configs/{config['id']}", status=204)
    assert heat.call("GET", f"/software_configs/{config['id']}").status_code == 404
    assert heat.call("GET", f"/software_deployments/{deployment['id']}").status_code == 404


def test_software_deployment_needs_an_existing_config(heat):
    response = heat.call("POST", "/software_deployments", {"config_id": "nope", "server_id": "srv"})
    assert response.status_code == 404


def test_software_configs_via_heatclient_shapes(os_conn):
    """openstacksdk's orchestration proxy reads the same bodies."""
    config = os_conn.orchestration.create_software_config(name="sdk", group="script", config="echo")
    assert os_conn.orchestration.get_software_config(config.id).group == "script"
    os_conn.orchestration.delete_software_config(config.id)
