"""What Heat says about itself: resource types (list, schema, generated template) and template functions.

These answer GET /resource_types[/{type}[/template]] and GET /template_versions/{version}/functions
from the plugin registry and the function tables, in the shapes heat/engine/service.py returns.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from openstack_fakecloud.orchestration.errors import HeatError
from openstack_fakecloud.orchestration.functions import CFN_FUNCTIONS, CONDITION_FUNCTIONS, ORDER, Functions
from openstack_fakecloud.orchestration.properties import BOOLEAN, INTEGER, LIST, MAP, NUMBER, STRING, Schema
from openstack_fakecloud.orchestration.resources import TYPES
from openstack_fakecloud.orchestration.resources.base import Resource
from openstack_fakecloud.orchestration.template import ALIASES, CFN_VERSIONS

SUPPORTED = {"status": "SUPPORTED", "version": None, "message": None, "previous_status": None}
SUPPORT_STATUSES = ("UNKNOWN", "SUPPORTED", "DEPRECATED", "UNSUPPORTED", "HIDDEN")
BASE_ATTRIBUTES = {"show": "Detailed information about resource."}
HOT_PARAM_TYPES = {STRING: "string", INTEGER: "number", NUMBER: "number", BOOLEAN: "boolean", MAP: "json",
                   LIST: "comma_delimited_list"}
CFN_PARAM_TYPES = {STRING: "String", INTEGER: "Number", NUMBER: "Number", BOOLEAN: "Boolean", MAP: "Json",
                   LIST: "CommaDelimitedList"}

# The one-line description Heat's function listing shows (the first line of each function's docstring).
DESCRIPTIONS = {
    "get_param": "A function for resolving parameter references.",
    "get_resource": "A function for resolving resource references.",
    "get_attr": "A function for resolving resource attributes.",
    "str_replace": "A function for performing string substitutions.",
    "str_replace_strict": "A function for performing string substitutions.",
    "str_replace_vstrict": "A function for performing string substitutions.",
    "get_file": "A function for including a file inline.",
    "list_join": "A function for joining one or more lists of strings.",
    "map_merge": "A function for merging maps.",
    "map_replace": "A function for performing substitutions on maps.",
    "resource_facade": "A function for retrieving data in a parent provider template.",
    "repeat": "A function for iterating over a list of items.",
    "digest": "A function for performing digest operations.",
    "str_split": "A function for splitting delimited strings into a list.",
    "yaql": "A function for executing a yaql expression.",
    "equals": "A function for comparing whether two values are equal.",
    "if": "A function to return corresponding value based on condition evaluation.",
    "not": "A function that acts as a NOT operator on a condition.",
    "and": "A function that acts as an AND operator on conditions.",
    "or": "A function that acts as an OR operator on conditions.",
    "filter": "A function for filtering out values from lists.",
    "make_url": "A function for performing substitutions on maps.",
    "list_concat": "A function for extending lists.",
    "list_concat_unique": "A function for extending lists with unique items.",
    "contains": "A function for checking whether specific value is in sequence.",
    "Ref": "A function for resolving parameter references.",
    "Fn::GetAtt": "A function for resolving resource attributes.",
    "Fn::Join": "A function for joining strings.",
    "Fn::Select": "A function for selecting an item from a list or map.",
    "Fn::Split": "A function for splitting strings.",
    "Fn::Replace": "A function for performing string substitutions.",
    "Fn::Base64": "A placeholder function for converting to base64.",
    "Fn::GetAZs": "A function for retrieving the availability zones.",
    "Fn::ResourceFacade": "A function for retrieving data in a parent provider template.",
    "Fn::MemberListToMap": "A function to convert lists with enumerated keys and values to mapping.",
    "Fn::FindInMap": "A function for resolving keys in the template mappings.",
    "Fn::Equals": "A function for comparing whether two values are equal.",
    "Fn::Not": "A function that acts as a NOT operator on a condition.",
    "Fn::And": "A function that acts as an AND operator on conditions.",
    "Fn::Or": "A function that acts as an OR operator on conditions.",
}
CFN_CONDITIONS = ("Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or")


class InvalidGlobalResource(HeatError):
    """An unknown type name: Heat answers 404 with this class name."""

    status = 404
    heat_type = "InvalidGlobalResource"

    def __init__(self, type_name: str) -> None:
        super().__init__(f"There was an error loading the definition of the global resource type {type_name}.")


class TemplateVersionNotFound(HeatError):
    status = 404
    heat_type = "NotFound"

    def __init__(self, version: str) -> None:
        super().__init__(f"Template with version {version} not found")


def _plugin(type_name: str) -> type[Resource]:
    cls = TYPES.get(type_name)
    if cls is None:
        raise InvalidGlobalResource(type_name)
    return cls


def _doc(cls: type[Resource]) -> str:
    return (inspect.getdoc(cls) or "").split("\n\n")[0].replace("\n", " ")


# resource types ----------------------------------------------------------------------------------
def list_types(name: str | None, version: str | None, support_status: str | None,
               with_description: bool) -> list[Any]:
    """GET /resource_types: `name` is a regular expression matched at the start, as in Heat."""
    if support_status is not None and support_status not in SUPPORT_STATUSES:
        raise HeatError(f"Invalid support status and should be one of {SUPPORT_STATUSES}", error_type="Invalid")
    try:
        pattern = re.compile(name) if name is not None else None
    except re.error:
        return []
    names = [n for n in sorted(TYPES) if pattern is None or pattern.match(n)]
    if version is not None or support_status not in (None, "SUPPORTED"):
        names = []  # fakecloud's plugins carry no version and are all SUPPORTED
    if with_description:
        return [{"resource_type": n, "description": _doc(TYPES[n])} for n in names]
    return names


def type_schema(type_name: str, with_description: bool) -> dict[str, Any]:
    """GET /resource_types/{type}: properties, attributes (with Heat's base `show`), support status."""
    cls = _plugin(type_name)
    attributes = {**cls.attributes_schema, **BASE_ATTRIBUTES}
    result: dict[str, Any] = {
        "resource_type": type_name,
        "properties": {k: s.view() for k, s in cls.properties_schema.items()},
        "attributes": {k: {"description": d} for k, d in attributes.items()},
        "support_status": dict(SUPPORTED),
    }
    if with_description:
        result["description"] = _doc(cls)
    return result


def type_template(type_name: str, template_type: str) -> dict[str, Any]:
    """GET /resource_types/{type}/template: a provider template whose parameters mirror the properties."""
    cls = _plugin(type_name)
    hot = template_type == "hot"
    res_name = cls.__name__
    params = {k: _param(s, hot) for k, s in cls.properties_schema.items()}
    attributes = {**cls.attributes_schema, **BASE_ATTRIBUTES}
    if hot:
        props = {k: {"get_param": k} for k in cls.properties_schema}
        outputs = {k: {"description": d, "value": {"get_attr": [res_name, k]}} for k, d in attributes.items()}
        return {"heat_template_version": "2016-10-14", "description": f"Initial template of {res_name}",
                "parameters": params, "resources": {res_name: {"type": type_name, "properties": props}},
                "outputs": outputs}
    props = {k: {"Fn::Split": [",", {"Ref": k}]} if s.type == LIST else {"Ref": k}
             for k, s in cls.properties_schema.items()}
    outputs = {k: {"Description": d, "Value": {"Fn::GetAtt": [res_name, k]}} for k, d in attributes.items()}
    return {"HeatTemplateFormatVersion": "2012-12-12", "Description": f"Initial template of {res_name}",
            "Parameters": params, "Resources": {res_name: {"Type": type_name, "Properties": props}},
            "Outputs": outputs}


def _param(schema: Schema, hot: bool) -> dict[str, Any]:
    key = (lambda k: k) if hot else (lambda k: "".join(p.capitalize() for p in k.split("_")))
    param: dict[str, Any] = {key("type"): (HOT_PARAM_TYPES if hot else CFN_PARAM_TYPES)[schema.type],
                             key("description"): schema.description}
    if schema.default is not None:
        param[key("default")] = schema.default
    if hot and schema.constraints:
        param["constraints"] = [{k: v for k, v in c.view().items() if k != "description"}
                                for c in schema.constraints]
    if not hot and schema.type == BOOLEAN:
        param["AllowedValues"] = ["True", "true", "False", "false"]
    return param


# template functions --------------------------------------------------------------------------------
def template_functions(version_key: str, with_condition: bool) -> list[dict[str, str]]:
    """GET /template_versions/{version}/functions: the functions a template of that version may call."""
    kind, _, version = version_key.partition(".")
    if kind in CFN_VERSIONS and version in CFN_VERSIONS[kind]:
        names = list(CFN_FUNCTIONS) + (list(CFN_CONDITIONS) if with_condition else [])
    elif kind == "heat_template_version" and ALIASES.get(version, version) in ORDER:
        version = ALIASES.get(version, version)
        functions = Functions(version)
        names = [n for n in functions.table if version == ORDER[0] or n not in CFN_FUNCTIONS]
        if with_condition:
            names += sorted(n for v, added in CONDITION_FUNCTIONS.items() if v <= version for n in added
                            if n not in names)
    else:
        raise TemplateVersionNotFound(version_key)
    return [{"functions": n, "description": DESCRIPTIONS.get(n, "")} for n in names]
