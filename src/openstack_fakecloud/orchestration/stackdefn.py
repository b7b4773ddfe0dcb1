"""A stack's definition made concrete: template + parameter values + conditions + graph + plugin types.

`prepare()` is Heat's strict validation on create/update: everything that can be checked before any
resource exists (sections, parameters, conditions, references, cycles, resource types, each property
that does not depend on another resource). `StackResolver` is what the intrinsic functions ask for
values: parameter values, physical ids, live attributes, condition results.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from openstack_fakecloud.errors import CloudError
from openstack_fakecloud.orchestration.constraints import Scope
from openstack_fakecloud.orchestration.errors import (
    HeatError,
    InvalidTemplateAttribute,
    InvalidTemplateReference,
    StackValidationFailed,
    UnknownUserParameter,
    UserParameterMissing,
)
from openstack_fakecloud.orchestration.functions import Unresolved
from openstack_fakecloud.orchestration.graph import Graph, build
from openstack_fakecloud.orchestration.model import ResourceRecord
from openstack_fakecloud.orchestration.parameters import PSEUDO, resolve_values
from openstack_fakecloud.orchestration.properties import DEFERRED, validate
from openstack_fakecloud.orchestration.resources import TYPES
from openstack_fakecloud.orchestration.resources.base import PluginContext, Resource
from openstack_fakecloud.orchestration.template import Template, parse

if TYPE_CHECKING:
    pass


@dataclass
class Prepared:
    template: Template
    values: dict[str, Any]  # typed parameter values, pseudo parameters included
    conditions: dict[str, bool]
    active: list[str]  # resources whose condition holds, in dependency order
    graph: Graph
    types: dict[str, type[Resource]]
    environment: dict[str, Any]
    files: dict[str, Any]


def plugin_class(type_name: str, environment: dict[str, Any], resource_name: str) -> type[Resource]:
    registry = environment.get("resource_registry") or {}
    seen = set()
    while isinstance(registry.get(type_name), str) and type_name not in seen:
        seen.add(type_name)
        type_name = registry[type_name]
    cls = TYPES.get(type_name)
    if cls is None:
        raise StackValidationFailed(f"The Resource Type ({type_name}) could not be found.",
                                    path=["resources", resource_name])
    return cls


class StackResolver:
    """Answers the functions for one stack. `live=False` (validation) raises Unresolved for resources."""

    def __init__(self, prepared: Prepared, identity: dict[str, str], live: bool,
                 plugins: dict[str, Resource] | None = None) -> None:
        self.prepared = prepared
        self.identity = identity
        self.live = live
        self.plugins = plugins or {}
        self._conditions: dict[str, bool] = dict(prepared.conditions)
        self._evaluating: set[str] = set()

    def param(self, name: str) -> Any:
        if name in PSEUDO:
            return self.identity[name]
        if name not in self.prepared.values:
            raise UserParameterMissing(name)
        return self.prepared.values[name]

    def _target(self, name: str) -> Resource | None:
        template = self.prepared.template
        if name not in template.resources:
            raise InvalidTemplateReference(name, "unknown")
        if name not in self.prepared.active:
            return None
        if not self.live:
            raise Unresolved(name)
        return self.plugins.get(name)

    def resource_ref(self, name: str) -> Any:
        plugin = self._target(name)
        return plugin.reference() if plugin is not None else None

    def attribute(self, name: str, attr: str | None, path: list[Any]) -> Any:
        cls = self.prepared.types.get(name)
        known = cls is None or cls.open_properties or attr in (*cls.attributes_schema, "show")
        if attr is not None and not known:
            raise InvalidTemplateAttribute(name, attr)
        plugin = self._target(name)
        if plugin is None:
            return None
        if attr is None:
            return plugin.attributes()
        value = plugin._safe(attr)
        for key in path:
            if isinstance(value, dict):
                value = value.get(key)
            elif isinstance(value, list) and str(key).isdigit() and int(key) < len(value):
                value = value[int(key)]
            else:
                return None
        return value

    def condition(self, name: str) -> bool:
        if name in self._conditions:
            return self._conditions[name]
        conditions = self.prepared.template.conditions
        if name not in conditions:
            raise StackValidationFailed(f'Invalid condition "{name}"', path=["conditions"])
        if name in self._evaluating:
            raise StackValidationFailed(f'Circular definition for condition "{name}"', path=["conditions"])
        self._evaluating.add(name)
        try:
            result = self.prepared.template.functions.condition(conditions[name], self)
        finally:
            self._evaluating.discard(name)
        self._conditions[name] = result
        return result

    def file(self, name: str) -> str:
        files = self.prepared.files
        if name not in files:
            raise StackValidationFailed(f"No content found in the \"files\" section for get_file path: {name}")
        return str(files[name])


def _environment(raw: Any) -> dict[str, Any]:
    from openstack_fakecloud.orchestration.template import load_text

    if raw in (None, ""):
        return {}
    env = raw if isinstance(raw, dict) else load_text(raw)
    allowed = ("parameters", "parameter_defaults", "resource_registry", "event_sinks", "encrypted_param_names",
               "parameter_merge_strategies")
    for key in env:
        if key not in allowed:
            raise StackValidationFailed(f"environment has wrong section \"{key}\"")
    return env


def prepare(template_body: Any, parameters: dict[str, Any], environment: Any, files: dict[str, Any] | None,
            identity: dict[str, str], scope: Scope | None, strict: bool = True) -> Prepared:
    """Parse and check everything a stack needs before its first resource is created."""
    template = parse(template_body)
    env = _environment(environment)
    supplied = {**(env.get("parameters") or {}), **(parameters or {})}
    for name in supplied:
        if name not in template.parameters:
            raise UnknownUserParameter(name)
    values = resolve_values(template.parameters, supplied, env.get("parameter_defaults") or {}, scope)
    values.update({k: identity[k] for k in PSEUDO})
    prepared = Prepared(template, values, {}, [], Graph({}), {}, env, dict(files or {}))
    resolver = StackResolver(prepared, identity, live=False)
    for name in template.conditions:
        resolver.condition(name)
    prepared.conditions = dict(resolver._conditions)
    active = []
    for name, defn in template.resources.items():
        if defn.condition is None or template.functions.condition(defn.condition, resolver):
            active.append(name)
    prepared.types = {name: plugin_class(template.resources[name].type, env, name) for name in active}
    prepared.graph = build(template, active)
    prepared.active = prepared.graph.order()
    for output in template.outputs.values():
        refs = template.functions.references(output.value)
        for ref in refs:
            if not ref.startswith("\0") and ref not in template.resources:
                raise InvalidTemplateReference(ref, output.name)
    if strict:
        for name in prepared.active:
            check_properties(prepared, name, resolver, scope)
    return prepared


def check_properties(prepared: Prepared, name: str, resolver: StackResolver, scope: Scope | None) -> dict[str, Any]:
    """Resolve and type a resource's properties; in validation, values needing resources stay DEFERRED."""
    defn = prepared.template.resources[name]
    cls = prepared.types[name]
    functions = prepared.template.functions
    raw: dict[str, Any] = {}
    for key, snippet in defn.properties.items():
        try:
            value = functions.resolve(snippet, resolver)
        except Unresolved:
            value = DEFERRED
        except StackValidationFailed as err:
            if err.path:
                raise
            raise StackValidationFailed(err.bare_message, path=["resources", name, "properties", key]) from None
        raw[key] = value
    props = validate(cls.properties_schema, raw, name, scope, cls.open_properties)
    plugin = cls(PluginContext(scope.cloud, scope.project_id, "", "", "", scope.admin) if scope else None,  # type: ignore[arg-type]
                 ResourceRecord(name, defn.type, ""))
    try:
        plugin.validate(props)
    except StackValidationFailed as err:
        if err.path:
            raise
        raise StackValidationFailed(err.bare_message, path=["resources", name]) from None
    except (HeatError, CloudError):
        raise
    except (TypeError, ValueError):
        pass  # a cross-property check that met a DEFERRED value
    return props
