"""Resource property schemas as data, and the validation that reads them (heat/engine/properties.py).

A plugin declares `properties_schema = {"size": Schema(INTEGER, update_allowed=True, constraints=(...))}`.
`validate` converts a resolved property map to typed values with defaults filled in, raising
StackValidationFailed("Property error: resources.<name>.properties[.<path>]: <message>") as Heat does.
Values that cannot be resolved yet (they need a resource that does not exist) are passed in as
`DEFERRED` and only checked for presence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from openstack_fakecloud.orchestration.constraints import Constraint, Scope
from openstack_fakecloud.orchestration.errors import StackValidationFailed

STRING, INTEGER, NUMBER, BOOLEAN, LIST, MAP = "String", "Integer", "Number", "Boolean", "List", "Map"
DEFERRED = object()
_TRUE = ("1", "t", "true", "on", "y", "yes")
_FALSE = ("0", "f", "false", "off", "n", "no")


@dataclass(frozen=True)
class Schema:
    type: str
    description: str = ""
    required: bool = False
    default: Any = None
    constraints: tuple[Constraint, ...] = ()
    update_allowed: bool = False
    immutable: bool = False
    schema: Any = None  # LIST: the item Schema; MAP: {key: Schema}

    def view(self) -> dict[str, Any]:
        """The schema as GET /resource_types/{type} shows it (Heat's dict(Schema))."""
        view: dict[str, Any] = {"type": self.type.lower(), "description": self.description,
                                "required": self.required, "update_allowed": self.update_allowed,
                                "immutable": self.immutable}
        if self.default is not None:
            view["default"] = self.default
        if isinstance(self.schema, Schema):
            view["schema"] = {"*": self.schema.view()}
        elif isinstance(self.schema, dict):
            view["schema"] = {key: member.view() for key, member in self.schema.items()}
        if self.constraints:
            view["constraints"] = [c.view() for c in self.constraints]
        return view


class PropertyError(ValueError):
    def __init__(self, path: list[str | int], message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def _typed(schema: Schema, value: Any, path: list[str | int], scope: Scope | None) -> Any:
    kind = schema.type
    if kind == STRING:
        if isinstance(value, dict | list):
            raise PropertyError(path, f"Value must be a string; got {value!r}")
        return value if isinstance(value, str) else str(value)
    if kind == INTEGER:
        if isinstance(value, bool):
            raise PropertyError(path, f"Value '{value}' is not an integer")
        if isinstance(value, float) and value.is_integer():
            return int(value)
        try:
            return int(value) if isinstance(value, int) else int(str(value).strip())
        except ValueError:
            raise PropertyError(path, f"Value '{value}' is not an integer") from None
    if kind == NUMBER:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
        try:
            text = str(value).strip()
            return int(text) if text.lstrip("-").isdigit() else float(text)
        except ValueError:
            raise PropertyError(path, f"Value '{value}' is not a number") from None
    if kind == BOOLEAN:
        if isinstance(value, bool):
            return value
        text = str(value).lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise PropertyError(path, f'"{value}" is not a valid boolean')
    if kind == LIST:
        if not isinstance(value, list):
            raise PropertyError(path, f'"{value!r}" is not a list')
        if isinstance(schema.schema, Schema):
            return [_value(schema.schema, item, [*path, index], scope) for index, item in enumerate(value)]
        return list(value)
    if kind == MAP:
        if not isinstance(value, dict):
            raise PropertyError(path, f'"{value}" is not a map')
        if isinstance(schema.schema, dict):
            return _members(schema.schema, value, path, scope)
        return dict(value)
    raise PropertyError(path, f"Unknown data type {kind}")


def _value(schema: Schema, value: Any, path: list[str | int], scope: Scope | None) -> Any:
    if value is DEFERRED:
        return value
    if value is None:
        return schema.default
    typed = _typed(schema, value, path, scope)
    for constraint in schema.constraints:
        try:
            constraint.check(typed, scope)
        except ValueError as err:
            raise PropertyError(path, str(err)) from None
    return typed


def _members(schemas: dict[str, Schema], data: dict[str, Any], path: list[str | int],
             scope: Scope | None) -> dict[str, Any]:
    for key in data:
        if key not in schemas:
            raise PropertyError(path, f"Unknown Property {key}")
    result: dict[str, Any] = {}
    for key, schema in schemas.items():
        if data.get(key) is not None:
            result[key] = _value(schema, data[key], [*path, key], scope)
        elif schema.default is not None:
            result[key] = schema.default
        elif schema.required:
            raise PropertyError(path, f"Property {key} not assigned")
        else:
            result[key] = None
    return result


def validate(schemas: dict[str, Schema], data: dict[str, Any], resource_name: str, scope: Scope | None,
             open_schema: bool = False) -> dict[str, Any]:
    """Typed property values with defaults; `open_schema` accepts any keys (OS::Heat::None)."""
    if open_schema:
        return dict(data)
    try:
        return _members(schemas, data, [], scope)
    except PropertyError as err:
        raise StackValidationFailed(err.message, error="Property error",
                                    path=["resources", resource_name, "properties", *err.path]) from None
