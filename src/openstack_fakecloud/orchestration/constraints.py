"""Value constraints shared by template parameters and resource properties (heat/engine/constraints.py).

Each constraint either passes or raises ValueError with Heat's message (or the template's own
`description` when one is given). Custom constraints that name a cloud object (`nova.flavor`,
`glance.image`, ...) look it up in the live backends, as Heat's client plugins do.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from openstack_fakecloud.errors import CloudError

if TYPE_CHECKING:
    from openstack_fakecloud.state import Cloud


@dataclass(frozen=True)
class Scope:
    """Where a custom constraint looks things up: the cloud and the stack's project."""

    cloud: Cloud
    project_id: str
    admin: bool = False  # the caller's admin role: Neutron lets an admin see (and use) every network


def _num(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"Value '{value}' is not a number")
    if isinstance(value, int | float):
        return value
    try:
        return float(str(value))
    except ValueError:
        raise ValueError(f"Value '{value}' is not a number") from None


def _fmt(number: Any) -> str:
    return str(int(number)) if isinstance(number, float) and number.is_integer() else str(number)


@dataclass(frozen=True)
class Constraint:
    description: str | None = None

    def check(self, value: Any, scope: Scope | None) -> None:
        message = self.error(value, scope)
        if message is not None:
            raise ValueError(self.description or message)

    def error(self, value: Any, scope: Scope | None) -> str | None:
        raise NotImplementedError

    def view(self) -> dict[str, Any]:
        """The HOT form (`{"range": {"min": 1}}`), as resource type schemas show it."""
        kind, spec = self.spec()
        return {kind: spec, **({"description": self.description} if self.description else {})}

    def spec(self) -> tuple[str, Any]:
        raise NotImplementedError


@dataclass(frozen=True)
class Range(Constraint):
    min: float | None = None
    max: float | None = None

    def spec(self) -> tuple[str, Any]:
        return "range", {k: v for k, v in (("min", self.min), ("max", self.max)) if v is not None}

    def error(self, value: Any, scope: Scope | None) -> str | None:
        number = _num(value)
        if (self.min is None or number >= self.min) and (self.max is None or number <= self.max):
            return None
        if self.min is not None and self.max is not None:
            return f"The value must be in the range {_fmt(self.min)} to {_fmt(self.max)}."
        if self.min is not None:
            return f"The value must be at least {_fmt(self.min)}."
        return f"The value must be no greater than {_fmt(self.max)}."


@dataclass(frozen=True)
class Length(Constraint):
    min: int | None = None
    max: int | None = None

    def spec(self) -> tuple[str, Any]:
        return "length", {k: v for k, v in (("min", self.min), ("max", self.max)) if v is not None}

    def error(self, value: Any, scope: Scope | None) -> str | None:
        size = len(value)
        if (self.min is None or size >= self.min) and (self.max is None or size <= self.max):
            return None
        if self.min is not None and self.max is not None:
            return f"The length must be in the range {self.min} to {self.max}."
        if self.min is not None:
            return f"The length must be at least {self.min}."
        return f"The length must be no greater than {self.max}."


@dataclass(frozen=True)
class Modulo(Constraint):
    step: int = 1
    offset: int = 0

    def spec(self) -> tuple[str, Any]:
        return "modulo", {"step": self.step, "offset": self.offset}

    def error(self, value: Any, scope: Scope | None) -> str | None:
        number = _num(value)
        if number % self.step == self.offset:
            return None
        return f"The values must be a multiple of {self.step} with an offset of {self.offset}."


@dataclass(frozen=True)
class AllowedValues(Constraint):
    allowed: tuple[Any, ...] = ()

    def spec(self) -> tuple[str, Any]:
        return "allowed_values", list(self.allowed)

    def error(self, value: Any, scope: Scope | None) -> str | None:
        values = value if isinstance(value, list) else [value]
        normalised = {str(a) for a in self.allowed}
        for item in values:
            if item not in self.allowed and str(item) not in normalised:
                return f'"{item}" is not an allowed value [{", ".join(str(a) for a in self.allowed)}]'
        return None


@dataclass(frozen=True)
class AllowedPattern(Constraint):
    pattern: str = ""

    def spec(self) -> tuple[str, Any]:
        return "allowed_pattern", self.pattern

    def error(self, value: Any, scope: Scope | None) -> str | None:
        match = re.match(self.pattern, str(value))
        if match is not None and match.end() == len(str(value)):
            return None
        return f'"{value}" does not match pattern "{self.pattern}"'


@dataclass(frozen=True)
class Custom(Constraint):
    name: str = ""

    def spec(self) -> tuple[str, Any]:
        return "custom_constraint", self.name

    def error(self, value: Any, scope: Scope | None) -> str | None:
        checker = CUSTOM.get(self.name)
        if checker is None or value in (None, ""):
            return None
        try:
            checker(str(value), scope)
        except (LookupError, CloudError, ValueError) as err:
            text = err.message if isinstance(err, CloudError) else str(err).strip("'\"")
            return f"Error validating value '{value}': {text}"
        return None


# custom constraints ---------------------------------------------------------------------------
def find_flavor(cloud: Cloud, name_or_id: str) -> Any:
    """Nova's flavor by id, else by unique name (what Heat's nova client plugin accepts)."""
    flavors = cloud.compute.flavors
    if name_or_id in flavors:
        return flavors[name_or_id]
    for flavor in flavors.values():
        if flavor.name == name_or_id:
            return flavor
    raise LookupError(f"The Flavor ({name_or_id}) could not be found.")


def find_image(cloud: Cloud, name_or_id: str) -> Any:
    try:
        return cloud.image.find_image(name_or_id)
    except CloudError:
        raise LookupError(f"The Image ({name_or_id}) could not be found.") from None


def find_network(cloud: Cloud, project_id: str, name_or_id: str, admin: bool = False) -> Any:
    """By id (any project's for an admin, as Neutron shows an admin every network), else by unique name among
    the networks the project sees (its own, shared and external ones)."""
    cloud.network.default_network(project_id)  # the project's own network exists once asked for
    for network in cloud.network.list_networks(project_id, admin):
        if network.id == name_or_id:
            return network
    networks = cloud.network.list_networks(project_id, False)
    named = [n for n in networks if n.name == name_or_id]
    if len(named) == 1:
        return named[0]
    if named:
        raise LookupError(f"Multiple physical resources were found with name ({name_or_id}).")
    raise LookupError(f"Unable to find network with name or id '{name_or_id}'")


def _scoped(fn: Callable[[Cloud, str, str], Any]) -> Callable[[str, Scope | None], None]:
    def check(value: str, scope: Scope | None) -> None:
        if scope is not None:
            fn(scope.cloud, scope.project_id, value)

    return check


def _unscoped(fn: Callable[[Cloud, str], Any]) -> Callable[[str, Scope | None], None]:
    def check(value: str, scope: Scope | None) -> None:
        if scope is not None:
            fn(scope.cloud, value)

    return check


def _cidr(value: str, scope: Scope | None) -> None:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(f"Invalid net cidr {value} ") from None


def _ip(value: str, scope: Scope | None) -> None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{value} is not a valid IP address") from None


def _network(value: str, scope: Scope | None) -> None:
    if scope is not None:
        find_network(scope.cloud, scope.project_id, value, scope.admin)


CUSTOM: dict[str, Callable[[str, Scope | None], None]] = {
    "nova.flavor": _unscoped(find_flavor),
    "glance.image": _unscoped(find_image),
    "neutron.network": _network,
    "neutron.security_group": _scoped(lambda cloud, project, ref: cloud.network.find_security_group(project, ref)),
    "cinder.volume": _scoped(lambda cloud, project, ref: cloud.volume.get_volume(ref, project)),
    "net_cidr": _cidr,
    "ip_addr": _ip,
}


def from_template(spec: Any, numeric: bool) -> Constraint:
    """One entry of a parameter's `constraints` list (HOT syntax)."""
    if not isinstance(spec, dict):
        raise ValueError(f"Invalid parameter constraints, expected a list of maps: {spec!r}")
    description = spec.get("description")
    kinds = [k for k in spec if k != "description"]
    if len(kinds) != 1:
        raise ValueError(f"Invalid parameter constraints: {spec!r}")
    kind, value = kinds[0], spec[kinds[0]]
    if kind == "length":
        return Length(description, (value or {}).get("min"), (value or {}).get("max"))
    if kind == "range":
        return Range(description, (value or {}).get("min"), (value or {}).get("max"))
    if kind == "modulo":
        return Modulo(description, (value or {}).get("step", 1), (value or {}).get("offset", 0))
    if kind == "allowed_values":
        if not isinstance(value, list):
            raise ValueError("allowed_values must be a list")
        return AllowedValues(description, tuple(value))
    if kind == "allowed_pattern":
        return AllowedPattern(description, str(value))
    if kind == "custom_constraint":
        return Custom(description, str(value))
    raise ValueError(f'Invalid key "{kind}" for parameter constraints')
