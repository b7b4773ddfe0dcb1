"""Configuration parameters per datastore version: what `/datastores/{ds}/versions/{v}/parameters` shows and
what a configuration group may set. Bounds and restart flags are PostgreSQL 16's own (`pg_settings`: min_val,
max_val, and context `postmaster` meaning a restart is required), in the parameter's base unit; Hearth narrows
max_connections to 1..10000 as Trove does.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal

ParameterType = Literal["integer", "float", "string", "boolean"]
INT_MAX = 2147483647
FLOAT_MAX = 1.79769e308
_INTEGER = re.compile(r"[+-]?\d+")
_TRUE = frozenset({"on", "true", "yes", "1"})
_FALSE = frozenset({"off", "false", "no", "0"})


class InvalidParameter(ValueError):
    """A configuration value that does not fit its parameter; the message names both and what is allowed."""


@dataclass(frozen=True)
class Parameter:
    name: str
    type: ParameterType
    min: int | float | None
    max: int | float | None
    restart_required: bool
    choices: tuple[str, ...] | None = None


def _int(name: str, low: int, high: int, restart: bool = False) -> Parameter:
    return Parameter(name, "integer", low, high, restart)


POSTGRESQL_16: tuple[Parameter, ...] = (
    _int("max_connections", 1, 10000, restart=True),
    _int("shared_buffers", 16, 1073741823, restart=True),  # 8kB pages
    _int("wal_buffers", -1, 262143, restart=True),  # 8kB pages; -1: 1/32 of shared_buffers
    _int("max_worker_processes", 0, 262143, restart=True),
    _int("max_locks_per_transaction", 10, INT_MAX, restart=True),
    _int("max_prepared_transactions", 0, 262143, restart=True),
    _int("work_mem", 64, INT_MAX),  # kB
    _int("maintenance_work_mem", 1024, INT_MAX),  # kB
    _int("temp_buffers", 100, 1073741823),  # 8kB pages
    _int("effective_cache_size", 1, INT_MAX),  # 8kB pages
    _int("effective_io_concurrency", 0, 1000),
    _int("statement_timeout", 0, INT_MAX),  # ms
    _int("lock_timeout", 0, INT_MAX),  # ms
    _int("idle_in_transaction_session_timeout", 0, INT_MAX),  # ms
    _int("deadlock_timeout", 1, INT_MAX),  # ms
    _int("log_min_duration_statement", -1, INT_MAX),  # ms; -1 disables
    _int("default_statistics_target", 1, 10000),
    _int("checkpoint_timeout", 30, 86400),  # s
    _int("max_wal_size", 2, INT_MAX),  # MB
    _int("min_wal_size", 2, INT_MAX),  # MB
    _int("max_parallel_workers", 0, 1024),
    _int("max_parallel_workers_per_gather", 0, 1024),
    _int("autovacuum_naptime", 1, 2147483),  # s
    Parameter("random_page_cost", "float", 0, FLOAT_MAX, False),
    Parameter("seq_page_cost", "float", 0, FLOAT_MAX, False),
    Parameter("checkpoint_completion_target", "float", 0, 1, False),
    Parameter("autovacuum", "boolean", None, None, False),
    Parameter("log_connections", "boolean", None, None, False),
    Parameter("timezone", "string", None, None, False),
    Parameter("log_statement", "string", None, None, False, choices=("none", "ddl", "mod", "all")),
)

_SCHEMAS: dict[str, tuple[tuple[str, tuple[Parameter, ...]], ...]] = {
    "postgresql": (("16", POSTGRESQL_16),),
}


def schema_for(datastore: str, version: str) -> tuple[Parameter, ...] | None:
    """The parameters a configuration group may set for `datastore` `version`, or None if Hearth knows none."""
    for prefix, schema in _SCHEMAS.get(datastore.lower(), ()):
        if version == prefix or version.startswith(prefix + "."):
            return schema
    return None


def _fail(p: Parameter, value: Any, allowed: str) -> InvalidParameter:
    return InvalidParameter(f"invalid value {value!r} for parameter {p.name!r}: {allowed}")


def _range(p: Parameter) -> str:
    return f"{p.min} to {p.max}"


def _normalise(p: Parameter, value: Any) -> Any:
    if p.type == "boolean":
        if isinstance(value, bool):
            return "on" if value else "off"
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return "on" if value.strip().lower() in _TRUE else "off"
        raise _fail(p, value, "expected a boolean (true/false or on/off)")
    if p.type == "string":
        if not isinstance(value, str) or "\0" in value:
            raise _fail(p, value, "expected a string")
        if p.choices is not None and value.lower() not in p.choices:
            raise _fail(p, value, f"expected one of {', '.join(p.choices)}")
        return value.lower() if p.choices is not None else value
    if isinstance(value, bool):
        raise _fail(p, value, f"expected {'an integer' if p.type == 'integer' else 'a number'}, not a boolean")
    number: int | float
    if p.type == "integer":
        if isinstance(value, int):
            number = value
        elif isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
            number = int(value.strip())
        else:
            raise _fail(p, value, f"expected an integer from {_range(p)}")
    else:
        try:
            number = float(value) if isinstance(value, int | float | str) else math.nan
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise _fail(p, value, f"expected a number from {_range(p)}")
    if (p.min is not None and number < p.min) or (p.max is not None and number > p.max):
        raise _fail(p, value, f"allowed range is {_range(p)}")
    return number


def validate_values(schema: tuple[Parameter, ...], values: dict[str, Any]) -> dict[str, Any]:
    """`values` checked against `schema` and normalised (integers, floats, "on"/"off", strings)."""
    if not isinstance(values, dict):
        raise InvalidParameter("configuration values must be an object of parameter names to values")
    by_name = {p.name: p for p in schema}
    out: dict[str, Any] = {}
    for name, value in values.items():
        p = by_name.get(name) if isinstance(name, str) else None
        if p is None:
            raise InvalidParameter(f"unknown configuration parameter {name!r}")
        out[name] = _normalise(p, value)
    return out


def parameter_view(p: Parameter, datastore_version_id: str) -> dict[str, Any]:
    """Trove's shape for one parameter (min and max only where the parameter has them, as Trove does)."""
    view: dict[str, Any] = {"name": p.name, "type": p.type, "restart_required": p.restart_required,
                            "datastore_version_id": datastore_version_id}
    if p.min is not None:
        view["min"] = p.min
    if p.max is not None:
        view["max"] = p.max
    return view
