"""A parsed HOT template: version, sections, resource and output definitions, conditions.

Parsing checks the shape only (Heat's `Template.validate`): the version, the top-level sections,
the keys of each resource and output, and deletion policies. What the values mean (parameters,
properties, references) is checked by the stack that uses the template.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

import yaml

from openstack_fakecloud.orchestration.errors import (
    InvalidTemplateSection,
    InvalidTemplateVersion,
    StackValidationFailed,
)
from openstack_fakecloud.orchestration.functions import ORDER, Functions, at_least
from openstack_fakecloud.orchestration.parameters import ParamSchema, parse_schemas

ALIASES = {"newton": "2016-10-14", "ocata": "2017-02-24", "pike": "2017-09-01", "queens": "2018-03-02",
           "rocky": "2018-08-31", "wallaby": "2021-04-16"}
CFN_VERSIONS = {"AWSTemplateFormatVersion": ("2010-09-09",), "HeatTemplateFormatVersion": ("2012-12-12",)}
DELETION_POLICIES = ("Delete", "Retain", "Snapshot")


@dataclass(frozen=True)
class ResourceDefn:
    name: str
    type: str
    properties: dict[str, Any]
    metadata: dict[str, Any]
    depends_on: tuple[str, ...]
    deletion_policy: str
    update_policy: dict[str, Any]
    description: str
    condition: Any = None
    external_id: Any = None


@dataclass(frozen=True)
class OutputDefn:
    name: str
    value: Any
    description: str
    condition: Any = None


@dataclass
class Template:
    version: str
    raw: dict[str, Any]
    description: str
    parameters: dict[str, ParamSchema]
    resources: dict[str, ResourceDefn]
    outputs: dict[str, OutputDefn]
    conditions: dict[str, Any]
    functions: Functions = field(repr=False)

    @property
    def version_key(self) -> str:
        return f"heat_template_version.{self.version}"


def template_versions() -> list[dict[str, Any]]:
    """GET /template_versions: every HOT version with its aliases, and the CFN formats."""
    versions = []
    for kind, values in CFN_VERSIONS.items():
        versions += [{"version": f"{kind}.{v}", "type": "cfn", "aliases": []} for v in values]
    for v in ORDER:
        aliases = [f"heat_template_version.{a}" for a, target in ALIASES.items() if target == v]
        versions.append({"version": f"heat_template_version.{v}", "type": "hot", "aliases": aliases})
    return versions


def load_text(body: Any) -> dict[str, Any]:
    """The request's `template`: a map, or JSON/YAML text of one (dates stay strings, as in Heat's loader)."""
    if isinstance(body, dict):
        return body
    if isinstance(body, str):
        try:
            data = yaml.load(body, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
        except yaml.YAMLError as err:
            raise StackValidationFailed(f"Error parsing template: {err}") from None
        if isinstance(data, dict):
            return data
    raise StackValidationFailed("The template is not a JSON object or YAML mapping.")


class _Loader(yaml.SafeLoader):
    """YAML without timestamp conversion: `heat_template_version: 2016-10-14` stays a string."""


_Loader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.copy().items()
}


def _version(raw: dict[str, Any]) -> str:
    for kind in CFN_VERSIONS:
        if kind in raw:
            raise InvalidTemplateVersion(f'"{kind}: {raw[kind]}". CFN templates are not supported by fakecloud; '
                                         "use heat_template_version")
    if "heat_template_version" not in raw:
        raise InvalidTemplateVersion("Template version was not provided")
    value = raw["heat_template_version"]
    text = value.isoformat() if isinstance(value, datetime.date) else str(value)
    text = ALIASES.get(text, text)
    if text not in ORDER:
        available = ", ".join([*ORDER, *ALIASES])
        raise InvalidTemplateVersion(
            f'"heat_template_version: {value}". "heat_template_version" should be one of: {available}')
    return text


def parse(body: Any) -> Template:
    raw = load_text(body)
    version = _version(raw)
    sections = ["heat_template_version", "description", "parameter_groups", "parameters", "resources", "outputs"]
    if at_least(version, "2016-10-14"):
        sections.append("conditions")
    for key in raw:
        if key not in sections:
            raise InvalidTemplateSection(str(key))
    functions = Functions(version)
    resources = _resources(raw.get("resources"), version)
    outputs = _outputs(raw.get("outputs"), version)
    conditions = raw.get("conditions") or {}
    if not isinstance(conditions, dict):
        raise StackValidationFailed('The "conditions" section must be a map.')
    return Template(version=version, raw=raw, description=str(raw.get("description") or ""),
                    parameters=parse_schemas(raw.get("parameters")), resources=resources, outputs=outputs,
                    conditions=conditions, functions=functions)


def _resources(section: Any, version: str) -> dict[str, ResourceDefn]:
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise StackValidationFailed('The "resources" section must be a map.')
    keys = ["type", "properties", "metadata", "depends_on", "deletion_policy", "update_policy", "description"]
    if at_least(version, "2016-10-14"):
        keys += ["external_id", "condition"]
    result = {}
    for name, spec in section.items():
        name = str(name)
        if not isinstance(spec, dict):
            raise StackValidationFailed(f'Resource {name} is not a map', path=["resources", name])
        for key in spec:
            if key not in keys:
                raise StackValidationFailed(f'"{key}" is not a valid keyword inside a resource definition',
                                            path=["resources", name])
        kind = spec.get("type")
        if not isinstance(kind, str) or not kind:
            raise StackValidationFailed(f'Resource {name} is missing "type"' if kind is None
                                        else f"Resource {name} type type must be string", path=["resources", name])
        for key, want in (("properties", dict), ("metadata", dict), ("update_policy", dict)):
            if spec.get(key) is not None and not isinstance(spec[key], want):
                raise StackValidationFailed(f"Resource {name} {key} type must be Map", path=["resources", name])
        depends = spec.get("depends_on") or []
        if isinstance(depends, str):
            depends = [depends]
        if not isinstance(depends, list) or not all(isinstance(d, str) for d in depends):
            raise StackValidationFailed(f"Resource {name} depends_on type must be list", path=["resources", name])
        policy = str(spec.get("deletion_policy") or "Delete")
        allowed = {p: p for p in DELETION_POLICIES}
        if at_least(version, "2016-10-14"):
            allowed.update({p.lower(): p for p in DELETION_POLICIES})
        if policy not in allowed:
            raise StackValidationFailed(f'Invalid deletion policy "{policy}"', path=["resources", name])
        if spec.get("external_id") is not None and depends:
            raise StackValidationFailed(f'"external_id" can not be used together with "depends_on" in resource '
                                        f"{name}", path=["resources", name])
        result[name] = ResourceDefn(
            name=name, type=kind, properties=dict(spec.get("properties") or {}),
            metadata=dict(spec.get("metadata") or {}), depends_on=tuple(depends),
            deletion_policy=allowed[policy], update_policy=dict(spec.get("update_policy") or {}),
            description=str(spec.get("description") or ""), condition=spec.get("condition"),
            external_id=spec.get("external_id"),
        )
    return result


def _outputs(section: Any, version: str) -> dict[str, OutputDefn]:
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise StackValidationFailed('The "outputs" section must be a map.')
    keys = ["description", "value"] + (["condition"] if at_least(version, "2016-10-14") else [])
    result = {}
    for name, spec in section.items():
        if not isinstance(spec, dict):
            raise StackValidationFailed(f"Output {name} is not a map", path=["outputs", str(name)])
        for key in spec:
            if key not in keys:
                raise StackValidationFailed(f'"{key}" is not a valid keyword inside an output definition',
                                            path=["outputs", str(name)])
        if "value" not in spec:
            raise StackValidationFailed('Each output definition must contain a "value" key.',
                                        path=["outputs", str(name)])
        result[str(name)] = OutputDefn(str(name), spec["value"], str(spec.get("description") or ""),
                                       spec.get("condition"))
    return result
