"""Datastores Hearth manages over the network, with no guest agent: PostgreSQL (through psycopg), and the
configuration-parameter schemas per datastore version."""

from hearth.datastores.parameters import InvalidParameter, Parameter, parameter_view, schema_for, validate_values
from hearth.datastores.postgresql import (
    AuthFailed,
    Conflict,
    DatastoreError,
    Endpoint,
    Invalid,
    NotFound,
    PostgresManager,
    Unreachable,
    check_database_name,
    check_password,
    check_user_name,
)

__all__ = [
    "AuthFailed", "Conflict", "DatastoreError", "Endpoint", "Invalid", "InvalidParameter", "NotFound", "Parameter",
    "PostgresManager", "Unreachable", "check_database_name", "check_password", "check_user_name",
    "parameter_view", "schema_for", "validate_values",
]
