"""HOT parameters: their schemas, the values a request supplies, type conversion and constraints.

Follows heat/engine/hot/parameters.py: five types, the keys a parameter may carry, and the
"Parameter 'x' is invalid: ..." wrapping of constraint failures. Values are converted once, when a
stack is created or updated, and the functions read the converted values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from openstack_fakecloud.orchestration.constraints import Constraint, Scope, from_template
from openstack_fakecloud.orchestration.errors import StackValidationFailed, UserParameterMissing

TYPES = ("string", "number", "comma_delimited_list", "json", "boolean")
KEYS = ("type", "description", "default", "schema", "constraints", "hidden", "label", "immutable", "tags")
TRUE_WORDS = ("1", "t", "true", "on", "y", "yes")
FALSE_WORDS = ("0", "f", "false", "off", "n", "no")
PSEUDO = ("OS::stack_id", "OS::stack_name", "OS::project_id")


@dataclass(frozen=True)
class ParamSchema:
    name: str
    type: str
    description: str = ""
    label: str | None = None
    default: Any = None
    has_default: bool = False
    hidden: bool = False
    immutable: bool = False
    constraints: tuple[Constraint, ...] = field(default_factory=tuple)


def parse_schemas(section: Any) -> dict[str, ParamSchema]:
    """Read the `parameters` section, refusing unknown keys and types as Heat does."""
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise StackValidationFailed('The "parameters" section must be a map.')
    schemas = {}
    for name, spec in section.items():
        if not isinstance(spec, dict):
            raise StackValidationFailed(f"The Parameter ({name}) has no attributes.")
        for key in spec:
            if key not in KEYS:
                raise StackValidationFailed(f'Invalid key \'{key}\' for parameter ({name})')
        kind = spec.get("type")
        if kind is None:
            raise StackValidationFailed(f"Missing parameter type for parameter: {name}")
        if kind not in TYPES:
            raise StackValidationFailed(f"Invalid type ({kind})")
        raw_constraints = spec.get("constraints") or []
        if not isinstance(raw_constraints, list):
            raise StackValidationFailed(f"Invalid parameter constraints for parameter {name}, expected a list")
        try:
            constraints = tuple(from_template(c, kind == "number") for c in raw_constraints)
        except ValueError as err:
            raise StackValidationFailed(str(err)) from None
        schema = ParamSchema(
            name=str(name), type=kind, description=str(spec.get("description") or ""), label=spec.get("label"),
            default=spec.get("default"), has_default="default" in spec and spec["default"] is not None,
            hidden=_truthy(spec.get("hidden", False)), immutable=_truthy(spec.get("immutable", False)),
            constraints=constraints,
        )
        if schema.has_default:
            convert(schema, schema.default, None)  # a bad default is a template error
        schemas[schema.name] = schema
    return schemas


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in TRUE_WORDS)


def _typed(schema: ParamSchema, value: Any) -> Any:
    kind = schema.type
    if kind == "string":
        if isinstance(value, dict | list):
            raise ValueError(f"Value must be a string; got {value!r}")
        return "" if value is None else str(value)
    if kind == "number":
        if isinstance(value, bool):
            raise ValueError(f"Value '{value}' is not a number")
        if isinstance(value, int | float):
            return value
        text = str(value).strip()
        try:
            return int(text)
        except ValueError:
            try:
                return float(text)
            except ValueError:
                raise ValueError(f"Value '{value}' is not a number") from None
    if kind == "comma_delimited_list":
        if isinstance(value, list):
            return [str(v) for v in value]
        text = "" if value is None else str(value)
        return [item.strip() for item in text.split(",")] if text else []
    if kind == "json":
        if isinstance(value, dict | list):
            return value
        try:
            parsed = json.loads(value) if isinstance(value, str) and value else {}
        except ValueError:
            raise ValueError(f"Value must be valid JSON: {value}") from None
        if not isinstance(parsed, dict | list):
            raise ValueError(f"Value must be valid JSON: {value}")
        return parsed
    # boolean
    if isinstance(value, bool):
        return value
    text = str(value).lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise ValueError(f'Unrecognized value "{value}", acceptable values are: 0, 1, f, false, n, no, off, on, '
                     "t, true, y, yes")


def convert(schema: ParamSchema, value: Any, scope: Scope | None) -> Any:
    """The typed value, checked against the constraints; failures name the parameter."""
    try:
        typed = _typed(schema, value)
        for constraint in schema.constraints:
            constraint.check(typed, scope)
    except ValueError as err:
        raise StackValidationFailed(f"Parameter '{schema.name}' is invalid: {err}") from None
    return typed


def resolve_values(schemas: dict[str, ParamSchema], supplied: dict[str, Any], defaults: dict[str, Any],
                   scope: Scope | None) -> dict[str, Any]:
    """Every parameter's value: supplied, else environment `parameter_defaults`, else the template default."""
    values: dict[str, Any] = {}
    for name, schema in schemas.items():
        if name in supplied:
            values[name] = convert(schema, supplied[name], scope)
        elif name in defaults:
            values[name] = convert(schema, defaults[name], scope)
        elif schema.has_default:
            values[name] = convert(schema, schema.default, scope)
        else:
            raise UserParameterMissing(name)
    return values


def validate_view(schema: ParamSchema) -> dict[str, Any]:
    """A parameter as POST /validate describes it (CFN-style capitalised keys, as Heat answers)."""
    names = {"string": "String", "number": "Number", "comma_delimited_list": "CommaDelimitedList",
             "json": "Json", "boolean": "Boolean"}
    view: dict[str, Any] = {"Type": names[schema.type], "Description": schema.description,
                            "Label": schema.label or schema.name, "NoEcho": "true" if schema.hidden else "false"}
    if schema.has_default:
        view["Default"] = schema.default
    for constraint in schema.constraints:
        allowed = getattr(constraint, "allowed", None)
        if allowed is not None:
            view["AllowedValues"] = list(allowed)
    return view
