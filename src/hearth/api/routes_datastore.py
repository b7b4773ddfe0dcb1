"""Trove's database, user and root routes under `/instances/{id}` (Trove's "mysql extension", whatever the
datastore): Hearth does them on the instance's PostgreSQL directly, so each answers once it is done.

User references take Trove's `name` or `name@host` form; PostgreSQL users are not host-specific, so only
`name@%` is accepted besides the bare name. Requests are validated whole (names, passwords) before Hearth
connects: a 400 changes nothing.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from hearth import datastore_service as ds
from hearth.api.auth import Scope, project_scope
from hearth.api.errors import responses

router = APIRouter(tags=["databases, users and root"])

WRITE = responses(400, 404, 422, 500, 503)
READ = responses(400, 404, 422, 500, 503)


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class DatabasesBody(_Body):
    databases: list[Any] = Field(description='[{"name", "character_set"?, "collate"?}]')


class UsersBody(_Body):
    users: list[Any] = Field(description='[{"name", "password", "databases"?: [{"name"}]}]')


class UserUpdateBody(_Body):
    user: dict[str, Any] = Field(description='{"name"?: new name, "password"?: new password}')


class RootBody(_Body):
    password: str | None = Field(default=None, description="The root password; generated when absent")


def _accepted() -> Response:
    return Response(status_code=202)


# -- databases


@router.get("/instances/{instance_id}/databases", summary="List the instance's databases", responses=READ)
def list_databases(instance_id: str, scope: Scope = Depends(project_scope)) -> dict[str, Any]:
    return {"databases": ds.list_databases(scope.runtime, scope.project_id, instance_id)}


@router.post("/instances/{instance_id}/databases", status_code=202, summary="Create databases", responses=WRITE)
def create_databases(instance_id: str, body: DatabasesBody, scope: Scope = Depends(project_scope)) -> Response:
    ds.create_databases(scope.runtime, scope.project_id, instance_id, body.databases)
    return _accepted()


@router.delete("/instances/{instance_id}/databases/{name}", status_code=202, summary="Drop a database",
               responses=WRITE)
def delete_database(instance_id: str, name: str, scope: Scope = Depends(project_scope)) -> Response:
    ds.delete_database(scope.runtime, scope.project_id, instance_id, name)
    return _accepted()


# -- users


@router.get("/instances/{instance_id}/users", summary="List the instance's users", responses=READ)
def list_users(instance_id: str, scope: Scope = Depends(project_scope)) -> dict[str, Any]:
    return {"users": ds.list_users(scope.runtime, scope.project_id, instance_id)}


@router.post("/instances/{instance_id}/users", status_code=202, summary="Create users", responses=WRITE)
def create_users(instance_id: str, body: UsersBody, scope: Scope = Depends(project_scope)) -> Response:
    ds.create_users(scope.runtime, scope.project_id, instance_id, body.users)
    return _accepted()


@router.put("/instances/{instance_id}/users", status_code=202, summary="Change users' passwords",
            responses=WRITE)
def change_passwords(instance_id: str, body: UsersBody, scope: Scope = Depends(project_scope)) -> Response:
    ds.change_passwords(scope.runtime, scope.project_id, instance_id, body.users)
    return _accepted()


@router.get("/instances/{instance_id}/users/{name}", summary="Show a user (name or name@%)", responses=READ)
def show_user(instance_id: str, name: str, scope: Scope = Depends(project_scope)) -> dict[str, Any]:
    return {"user": ds.get_user(scope.runtime, scope.project_id, instance_id, name)}


@router.put("/instances/{instance_id}/users/{name}", status_code=202,
            summary="Rename a user and/or change its password", responses=WRITE)
def update_user(instance_id: str, name: str, body: UserUpdateBody, scope: Scope = Depends(project_scope)) -> Response:
    ds.update_user(scope.runtime, scope.project_id, instance_id, name, body.user)
    return _accepted()


@router.delete("/instances/{instance_id}/users/{name}", status_code=202, summary="Drop a user", responses=WRITE)
def delete_user(instance_id: str, name: str, scope: Scope = Depends(project_scope)) -> Response:
    ds.delete_user(scope.runtime, scope.project_id, instance_id, name)
    return _accepted()


@router.get("/instances/{instance_id}/users/{name}/databases", summary="The databases a user may use",
            responses=READ)
def user_databases(instance_id: str, name: str, scope: Scope = Depends(project_scope)) -> dict[str, Any]:
    return {"databases": ds.user_databases(scope.runtime, scope.project_id, instance_id, name)}


@router.put("/instances/{instance_id}/users/{name}/databases", status_code=202,
            summary="Grant a user access to databases", responses=WRITE)
def grant(instance_id: str, name: str, body: DatabasesBody, scope: Scope = Depends(project_scope)) -> Response:
    ds.grant(scope.runtime, scope.project_id, instance_id, name, body.databases)
    return _accepted()


@router.delete("/instances/{instance_id}/users/{name}/databases/{database}", status_code=202,
               summary="Revoke a user's access to a database", responses=WRITE)
def revoke(instance_id: str, name: str, database: str, scope: Scope = Depends(project_scope)) -> Response:
    ds.revoke(scope.runtime, scope.project_id, instance_id, name, database)
    return _accepted()


# -- configuration


@router.get("/instances/{instance_id}/configuration", summary="The instance's current parameter values",
            responses=READ)
def instance_configuration(instance_id: str, scope: Scope = Depends(project_scope)) -> dict[str, Any]:
    return {"instance": {"configuration": ds.instance_configuration(scope.runtime, scope.project_id, instance_id)}}


# -- root


@router.get("/instances/{instance_id}/root", summary="Whether root is enabled", responses=READ)
def root_show(instance_id: str, scope: Scope = Depends(project_scope)) -> dict[str, Any]:
    return {"rootEnabled": ds.root_enabled(scope.runtime, scope.project_id, instance_id)}


@router.post("/instances/{instance_id}/root", summary="Enable root (its password is shown this once)",
             responses=WRITE)
def root_enable(instance_id: str, body: RootBody | None = Body(default=None),
                scope: Scope = Depends(project_scope)) -> dict[str, Any]:
    return ds.root_enable(scope.runtime, scope.project_id, instance_id, body.password if body else None)


@router.delete("/instances/{instance_id}/root", status_code=204, response_model=None, summary="Disable root",
               responses=WRITE)
def root_disable(instance_id: str, scope: Scope = Depends(project_scope)) -> Response:
    ds.root_disable(scope.runtime, scope.project_id, instance_id)
    return Response(status_code=204)
