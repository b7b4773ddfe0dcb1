"""The configuration-parameter schema: Trove's parameter view, and values checked and normalised."""

from __future__ import annotations

import pytest

from hearth.datastores.parameters import (
    POSTGRESQL_16,
    InvalidParameter,
    Parameter,
    parameter_view,
    schema_for,
    validate_values,
)


def _param(name: str) -> Parameter:
    return next(p for p in POSTGRESQL_16 if p.name == name)


def test_schema_per_datastore_version():
    assert schema_for("postgresql", "16") is POSTGRESQL_16
    assert schema_for("postgresql", "16.4") is POSTGRESQL_16
    assert schema_for("postgresql", "160") is None
    assert schema_for("postgresql", "15") is None
    assert schema_for("mysql", "8.0") is None
    names = [p.name for p in POSTGRESQL_16]
    assert len(names) == len(set(names)) >= 20
    assert _param("max_connections") == Parameter("max_connections", "integer", 1, 10000, True)
    restart = {p.name for p in POSTGRESQL_16 if p.restart_required}
    assert {"max_connections", "shared_buffers", "wal_buffers", "max_worker_processes"} <= restart
    assert not {"work_mem", "statement_timeout", "random_page_cost", "autovacuum", "timezone"} & restart
    assert _param("random_page_cost").type == "float" and _param("autovacuum").type == "boolean"
    assert _param("timezone").type == "string"


def test_parameter_view_is_troves_shape():
    assert parameter_view(_param("work_mem"), "v-1") == {
        "name": "work_mem", "type": "integer", "min": 64, "max": 2147483647, "restart_required": False,
        "datastore_version_id": "v-1"}
    assert parameter_view(_param("autovacuum"), "v-1") == {
        "name": "autovacuum", "type": "boolean", "restart_required": False, "datastore_version_id": "v-1"}


def test_values_are_normalised():
    assert validate_values(POSTGRESQL_16, {
        "max_connections": "200", "work_mem": 4096, "autovacuum": "ON", "log_connections": True,
        "random_page_cost": "1.5", "seq_page_cost": 1, "timezone": "UTC", "log_statement": "DDL",
        "log_min_duration_statement": -1,
    }) == {"max_connections": 200, "work_mem": 4096, "autovacuum": "on", "log_connections": "on",
           "random_page_cost": 1.5, "seq_page_cost": 1.0, "timezone": "UTC", "log_statement": "ddl",
           "log_min_duration_statement": -1}
    assert validate_values(POSTGRESQL_16, {"autovacuum": "false"}) == {"autovacuum": "off"}
    assert validate_values(POSTGRESQL_16, {}) == {}


@pytest.mark.parametrize(("values", "words"), [
    ({"max_connections": 0}, ["max_connections", "0", "1 to 10000"]),
    ({"max_connections": 10001}, ["max_connections", "10001", "1 to 10000"]),
    ({"max_connections": True}, ["max_connections", "boolean"]),
    ({"max_connections": "12.5"}, ["max_connections", "integer"]),
    ({"work_mem": "4MB"}, ["work_mem", "'4MB'", "integer"]),
    ({"random_page_cost": "nan"}, ["random_page_cost", "number"]),
    ({"random_page_cost": -1}, ["random_page_cost", "range"]),
    ({"random_page_cost": False}, ["random_page_cost", "boolean"]),
    ({"autovacuum": 1}, ["autovacuum", "boolean"]),
    ({"autovacuum": "maybe"}, ["autovacuum", "maybe"]),
    ({"log_statement": "everything"}, ["log_statement", "none, ddl, mod, all"]),
    ({"timezone": 5}, ["timezone", "string"]),
    ({"no_such": 1}, ["unknown", "no_such"]),
])
def test_invalid_values_say_what_is_allowed(values, words):
    with pytest.raises(InvalidParameter) as failure:
        validate_values(POSTGRESQL_16, values)
    for word in words:
        assert word in str(failure.value)
    assert isinstance(failure.value, ValueError)
