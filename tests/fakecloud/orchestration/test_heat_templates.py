"""HOT validation errors, intrinsic functions and the Heat API's wire shapes, over real HTTP."""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import openstack
import pytest
import requests

from openstack_fakecloud.config import CloudConfig
from openstack_fakecloud.testing import running_cloud

WAIT = {"interval": 0.05, "wait": 15}


def hot(resources: dict[str, Any], version: str = "2021-04-16", **sections: Any) -> dict[str, Any]:
    return {"heat_template_version": version, "resources": resources, **sections}


SERVER = {"type": "OS::Nova::Server", "properties": {"flavor": "m1.tiny", "image": "cirros-0.6.2"}}


def error_of(response: requests.Response) -> tuple[str, str]:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == 400 and body["title"] == "Bad Request"
    return body["error"]["type"], body["error"]["message"]


# validation errors ------------------------------------------------------------------------------------
def test_unknown_version_lists_the_valid_ones(heat, os_conn):
    kind, message = error_of(heat.create("s", {"heat_template_version": "2012-01-01", "resources": {}}))
    assert kind == "InvalidTemplateVersion"
    assert message.startswith('The template version is invalid: "heat_template_version: 2012-01-01". '
                              '"heat_template_version" should be one of: 2013-05-23, 2014-10-16')
    assert "2021-04-16" in message and "wallaby" in message
    with pytest.raises(openstack.exceptions.BadRequestException, match="template version is invalid"):
        os_conn.orchestration.create_stack(name="s", template={"heat_template_version": "1999-01-01"})


@pytest.mark.parametrize(("template", "kind", "message"), [
    ({"heat_template_version": "2016-04-08", "conditions": {}}, "InvalidTemplateSection",
     "The template section is invalid: conditions"),
    (hot({"server": {**SERVER, "propertiez": {}}}), "StackValidationFailed",
     'resources.server: "propertiez" is not a valid keyword inside a resource definition'),
    (hot({"server": {"type": "OS::Nova::Server", "properties": {"flavr": "m1.tiny", "flavor": "m1.tiny",
                                                                "image": "cirros-0.6.2"}}}),
     "StackValidationFailed", "Property error: resources.server.properties: Unknown Property flavr"),
    (hot({"server": {"type": "OS::Nova::Server", "properties": {"image": "cirros-0.6.2"}}}),
     "StackValidationFailed", "Property error: resources.server.properties: Property flavor not assigned"),
    (hot({"vol": {"type": "OS::Cinder::Volume", "properties": {"size": "big"}}}),
     "StackValidationFailed", "Property error: resources.vol.properties.size: Value 'big' is not an integer"),
    (hot({"vol": {"type": "OS::Cinder::Volume", "properties": {"size": 0}}}),
     "StackValidationFailed", "Property error: resources.vol.properties.size: The value must be at least 1."),
    (hot({"server": {**SERVER, "properties": {**SERVER["properties"], "flavor_update_policy": "SHRINK"}}}),
     "StackValidationFailed", 'Property error: resources.server.properties.flavor_update_policy: "SHRINK" is not '
                              "an allowed value [RESIZE, REPLACE]"),
    (hot({"server": {**SERVER, "properties": {**SERVER["properties"], "flavor": "m1.huge"}}}),
     "StackValidationFailed", "Property error: resources.server.properties.flavor: Error validating value "
                              "'m1.huge': The Flavor (m1.huge) could not be found."),
    (hot({"sg": {"type": "OS::Neutron::SecurityGroup", "properties": {"rules": [{"direction": "sideways"}]}}}),
     "StackValidationFailed", 'Property error: resources.sg.properties.rules[0].direction: "sideways" is not an '
                              "allowed value [ingress, egress]"),
    (hot({"thing": {"type": "OS::Nova::Serverx"}}), "StackValidationFailed",
     "resources.thing: The Resource Type (OS::Nova::Serverx) could not be found."),
    (hot({"att": {"type": "OS::Cinder::VolumeAttachment", "properties": {
        "instance_uuid": {"get_resource": "missing"}, "volume_id": "x"}}}),
     "InvalidTemplateReference", 'The specified reference "missing" (in att) is incorrect.'),
    (hot({"a": {"type": "OS::Heat::None", "depends_on": "b"}, "b": {"type": "OS::Heat::None", "depends_on": ["a"]}}),
     "CircularDependencyException", "Circular Dependency Found: a -> b -> a"),
    (hot({"a": {"type": "OS::Heat::None", "properties": {"x": {"get_attr": ["b", "nope"]}}},
          "b": {"type": "OS::Heat::RandomString"}}),
     "InvalidTemplateAttribute", "The Referenced Attribute (b nope) is incorrect."),
    (hot({"a": {"type": "OS::Heat::None", "properties": {"x": {"get_param": "size"}}}}),
     "UserParameterMissing", "The Parameter (size) was not provided."),
    (hot({}, parameters={"size": {"type": "number", "constraints": [{"range": {"min": 1, "max": 5}}],
                                  "default": 9}}),
     "StackValidationFailed", "Parameter 'size' is invalid: The value must be in the range 1 to 5."),
    (hot({"sg": {"type": "OS::Neutron::SecurityGroup", "properties": {"name": "default"}}}),
     "StackValidationFailed", 'resources.sg: Security groups cannot be assigned the name "default".'),
])
def test_template_errors_are_400_naming_what_is_wrong(heat, template, kind, message):
    assert error_of(heat.create("bad", template)) == (kind, message)


def test_parameter_values_are_checked(heat, os_conn):
    template = hot({}, parameters={"env": {"type": "string", "constraints": [
        {"allowed_values": ["dev", "prod"], "description": "env must be dev or prod"}]},
        "name": {"type": "string", "constraints": [{"allowed_pattern": "[a-z]+"}, {"length": {"max": 4}}]}})
    assert error_of(heat.create("p", template, parameters={"env": "qa", "name": "ab"}))[1] == (
        "Parameter 'env' is invalid: env must be dev or prod")
    assert error_of(heat.create("p", template, parameters={"env": "dev", "name": "AB"}))[1] == (
        "Parameter 'name' is invalid: \"AB\" does not match pattern \"[a-z]+\"")
    assert error_of(heat.create("p", template, parameters={"env": "dev", "name": "abcdef"}))[1] == (
        "Parameter 'name' is invalid: The length must be no greater than 4.")
    assert error_of(heat.create("p", template, parameters={"env": "dev", "name": "a", "x": 1}))[1] == (
        "The Parameter (x) was not defined in template.")
    with pytest.raises(openstack.exceptions.BadRequestException, match="Parameter 'env' is invalid"):
        os_conn.orchestration.create_stack(name="p", template=template, parameters={"env": "qa", "name": "a"})


# functions ---------------------------------------------------------------------------------------------
FUNCTIONS = {
    "heat_template_version": "wallaby",
    "parameters": {
        "names": {"type": "comma_delimited_list", "default": "a,b"},
        "env": {"type": "string", "default": "prod"},
        "secret": {"type": "string", "default": "s3cret", "hidden": True},
        "port": {"type": "number", "default": 80},
    },
    "conditions": {"is_prod": {"equals": [{"get_param": "env"}, "prod"]},
                   "is_dev": {"not": "is_prod"},
                   "either": {"or": ["is_prod", "is_dev"]}},
    "resources": {
        "rand": {"type": "OS::Heat::RandomString", "properties": {"length": 12, "character_classes": [
            {"class": "digits", "min": 3}]}},
        "noop": {"type": "OS::Heat::None", "properties": {"anything": {"get_attr": ["rand", "value"]}}},
        "dev_only": {"type": "OS::Heat::None", "condition": "is_dev"},
    },
    "outputs": {
        "replaced": {"value": {"str_replace": {"template": "http://$host:$port/", "params": {
            "$host": "example.org", "$port": {"get_param": "port"}}}}},
        "joined": {"value": {"list_join": ["-", {"get_param": "names"}, ["c"]]}},
        "split": {"value": {"str_split": [",", "x,y,z", 1]}},
        "merged": {"value": {"map_merge": [{"a": 1}, {"b": 2}, {"a": 3}]}},
        "repeated": {"value": {"repeat": {"for_each": {"%n%": {"get_param": "names"}}, "template": "port-%n%"}}},
        "chosen": {"value": {"if": ["is_prod", "big", "small"]}},
        "dropped": {"value": [1, {"if": ["is_dev", 2]}, 3]},
        "concat": {"value": {"list_concat": [[1, 2], [3]]}},
        "digest": {"value": {"digest": ["sha256", "abc"]}},
        "random": {"value": {"get_attr": ["rand", "value"]}},
        "random_ref": {"value": {"get_resource": "rand"}},
        "either": {"value": {"if": ["either", "yes", "no"]}},
        "dev_ref": {"value": {"get_resource": "dev_only"}},
        "plain": {"value": {"list_joinx": ["not", "a function"]}},
        "stack": {"value": {"get_param": "OS::stack_name"}},
    },
}


def test_functions_resolve_in_outputs(os_conn):
    stack = os_conn.orchestration.create_stack(name="fn", template=copy.deepcopy(FUNCTIONS))
    stack = os_conn.orchestration.wait_for_status(stack, "CREATE_COMPLETE", failures=["CREATE_FAILED"], **WAIT)
    outputs = {o["output_key"]: o["output_value"] for o in stack.outputs}
    assert outputs["replaced"] == "http://example.org:80/"
    assert outputs["joined"] == "a-b-c"
    assert outputs["split"] == "y"
    assert outputs["merged"] == {"a": 3, "b": 2}
    assert outputs["repeated"] == ["port-a", "port-b"]
    assert outputs["chosen"] == "big"
    assert outputs["dropped"] == [1, 3]
    assert outputs["concat"] == [1, 2, 3]
    assert outputs["digest"] == hashlib.sha256(b"abc").hexdigest()
    assert len(outputs["random"]) == 12 and sum(c.isdigit() for c in outputs["random"]) >= 3
    assert outputs["random_ref"] == outputs["random"]
    assert outputs["either"] == "yes"
    assert outputs["dev_ref"] is None
    assert outputs["plain"] == {"list_joinx": ["not", "a function"]}
    assert outputs["stack"] == "fn"
    assert stack.parameters["secret"] == "******"
    assert stack.parameters["OS::stack_id"] == stack.id
    names = {r.name for r in os_conn.orchestration.resources(stack)}
    assert names == {"rand", "noop"}  # dev_only's condition is false


def test_old_version_lacks_newer_functions(heat):
    template = hot({}, version="2013-05-23", outputs={"x": {"value": {"str_split": [",", "a,b"]}}})
    response = heat.create("old", template)
    assert response.status_code == 201  # str_split is plain data before 2015-10-15
    cfn = hot({"a": {"type": "OS::Heat::None", "properties": {"x": {"Ref": "b"}}}}, version="2015-04-30")
    assert error_of(heat.create("cfn", cfn))[0] == "InvalidTemplateVersion"


# the API -------------------------------------------------------------------------------------------------
def test_create_answer_and_lookup_redirects(heat):
    created = heat.create("web", hot({"a": {"type": "OS::Heat::None"}}))
    assert created.status_code == 201
    stack_id = created.json()["stack"]["id"]
    canonical = f"{heat.base}/stacks/web/{stack_id}"
    assert created.headers["Location"] == canonical
    assert created.json()["stack"]["links"] == [{"href": canonical, "rel": "self"}]
    for method in ("GET", "PUT", "PATCH", "DELETE", "POST"):
        for ref in ("web", stack_id):
            response = heat.call(method, f"/stacks/{ref}?resolve_outputs=False", allow_redirects=False)
            assert response.status_code == 302
            assert response.headers["Location"] == canonical + "?resolve_outputs=False"
    events = heat.call("GET", "/stacks/web/events?sort_dir=asc&limit=2", allow_redirects=False)
    assert events.headers["Location"] == canonical + "/events?sort_dir=asc&limit=2"
    nested = heat.call("GET", "/stacks/web/resources/a", allow_redirects=False)
    assert nested.headers["Location"] == canonical + "/resources/a"
    missing = heat.call("GET", "/stacks/nope", allow_redirects=False)
    assert missing.status_code == 404
    assert missing.json()["error"] == {"message": "The Stack (nope) could not be found.", "type": "EntityNotFound",
                                       "traceback": None}
    assert heat.create("web", hot({})).status_code == 409


def test_show_update_patch_delete_over_the_wire(heat):
    template = hot({"r": {"type": "OS::Heat::RandomString", "properties": {"length": {"get_param": "n"}}}},
                   parameters={"n": {"type": "number", "default": 8}, "tag": {"type": "string", "default": "x"}},
                   outputs={"len": {"value": {"get_param": "n"}}, "tag": {"value": {"get_param": "tag"}}})
    stack_id = heat.create("p", template, parameters={"n": 10, "tag": "t1"}).json()["stack"]["id"]
    url = f"/stacks/p/{stack_id}"
    shown = heat.call("GET", url).json()["stack"]
    assert shown["stack_status"] == "CREATE_COMPLETE" and shown["disable_rollback"] is True
    assert {o["output_key"]: o["output_value"] for o in shown["outputs"]} == {"len": 10, "tag": "t1"}
    assert "outputs" not in heat.call("GET", url + "?resolve_outputs=False").json()["stack"]
    assert heat.call("PATCH", url, {"parameters": {"tag": "t2"}}).status_code == 202
    outputs = heat.call("GET", url).json()["stack"]["outputs"]
    assert {o["output_key"]: o["output_value"] for o in outputs} == {"len": 10, "tag": "t2"}  # n kept
    assert heat.call("PUT", url, {"template": template, "parameters": {"tag": "t3"}}).status_code == 202
    outputs = heat.call("GET", url).json()["stack"]["outputs"]
    assert {o["output_key"]: o["output_value"] for o in outputs} == {"len": 8, "tag": "t3"}  # n back to default
    assert heat.call("GET", url + "/outputs/tag").json()["output"]["output_value"] == "t3"
    assert heat.call("GET", url + "/template").json() == template
    resource = heat.call("GET", url + "/resources/r").json()["resource"]
    assert resource["resource_status"] == "UPDATE_COMPLETE" and len(resource["attributes"]["value"]) == 8
    assert heat.call("DELETE", url).status_code == 204
    deleted = heat.call("GET", url).json()["stack"]
    assert deleted["stack_status"] == "DELETE_COMPLETE"
    assert heat.call("GET", "/stacks/p", allow_redirects=False).status_code == 404
    assert heat.call("GET", f"/stacks/{stack_id}", allow_redirects=False).status_code == 302
    assert heat.call("GET", "/stacks").json()["stacks"] == []


def test_events_carry_the_stack_event_heatclient_waits_for(heat):
    stack_id = heat.create("ev", hot({"a": {"type": "OS::Heat::None"}})).json()["stack"]["id"]
    events = heat.call("GET", f"/stacks/ev/{stack_id}/events?sort_dir=asc").json()["events"]
    assert [(e["resource_name"], e["resource_status"]) for e in events] == [
        ("ev", "CREATE_IN_PROGRESS"), ("a", "CREATE_IN_PROGRESS"), ("a", "CREATE_COMPLETE"),
        ("ev", "CREATE_COMPLETE")]
    final = events[-1]
    assert final["physical_resource_id"] == stack_id
    assert final["resource_status_reason"] == "Stack CREATE completed successfully"
    stack_link = next(link["href"] for link in final["links"] if link["rel"] == "stack")
    assert stack_link.endswith(stack_id)
    newest = heat.call("GET", f"/stacks/ev/{stack_id}/events?sort_dir=desc&limit=1").json()["events"]
    assert newest == [final]
    after = heat.call("GET", f"/stacks/ev/{stack_id}/events?marker={events[1]['id']}").json()["events"]
    assert after == events[2:]
    mine = heat.call("GET", f"/stacks/ev/{stack_id}/resources/a/events").json()["events"]
    assert [e["resource_status"] for e in mine] == ["CREATE_IN_PROGRESS", "CREATE_COMPLETE"]
    one = heat.call("GET", f"/stacks/ev/{stack_id}/resources/a/events/{mine[0]['id']}").json()["event"]
    assert one["resource_type"] == "OS::Heat::None"


def test_validate_versions_and_types(fakecloud, heat):
    body = {"template": hot({"s": {"type": "OS::Nova::Server", "properties": {"flavor": 5}}},
                            description="d", parameters={"p": {"type": "string", "default": "v"}})}
    validated = heat.call("POST", "/validate", body)
    assert validated.status_code == 200  # lenient: wrong types and missing properties pass
    assert validated.json() == {"Description": "d", "Parameters": {"p": {
        "Type": "String", "Description": "", "Label": "p", "NoEcho": "false", "Default": "v"}}}
    assert error_of(heat.call("POST", "/validate", {"template": {"heat_template_version": "x"}}))[0] == (
        "InvalidTemplateVersion")
    versions = heat.call("GET", "/template_versions").json()["template_versions"]
    wallaby = next(v for v in versions if v["version"] == "heat_template_version.2021-04-16")
    assert wallaby == {"version": "heat_template_version.2021-04-16", "type": "hot",
                       "aliases": ["heat_template_version.wallaby"]}
    types = heat.call("GET", "/resource_types").json()["resource_types"]
    assert {"OS::Nova::Server", "OS::Cinder::Volume", "OS::Neutron::SecurityGroup", "OS::Heat::None"} <= set(types)
    for path in ("/heat-api", "/heat-api/"):
        root = requests.get(fakecloud.url + path, timeout=10)
        assert root.status_code == 300 and root.json()["versions"][0]["id"] == "v1.0"


def test_stacks_are_per_project(fakecloud, os_conn, os_admin, heat):
    heat.create("mine", hot({}))
    assert [s.name for s in os_conn.orchestration.stacks()] == ["mine"]
    assert list(os_admin.orchestration.stacks()) == []
    with pytest.raises(openstack.exceptions.NotFoundException):
        os_admin.orchestration.find_stack("mine", ignore_missing=False)


def test_disabled_orchestration_is_gone():
    with running_cloud(CloudConfig(disabled_services=["orchestration"])) as cloud:
        conn = cloud.connect()
        catalog = conn.session.auth.get_access(conn.session).service_catalog.catalog
        assert "orchestration" not in {entry["type"] for entry in catalog}
        assert requests.get(cloud.url + "/heat-api", timeout=10).status_code == 404
