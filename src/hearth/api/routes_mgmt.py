"""The cloud administrator's management API (Trove's `/mgmt` shape where it has one), admin role only:

- `GET /mgmt/instances?project=&engine=&status=&drifted=&limit=&marker=`: every project's instances, with
  their `tenant_id` (`project` filters by project id: `project_id` is the path's, the caller's own);
- `GET /mgmt/instances/{id}`: any project's instance;
- `POST /mgmt/instances/{id}/action` (routes_instances): the actions of `/action` on any project's instance;
- `GET /mgmt/instances/{id}/drift`: compare the instance with the cloud now (recorded, see taskmanager.drift);
- `GET /mgmt/fleet`: instances by engine and status, how many have drifted, the share on Heat;
- `POST /mgmt/migrations` `{"migration": {"to": "orchestrator"|"natives", "project", "batch", "max_in_flight",
  "dry_run"}}`: a fleet migration (the dry run answers its plan), `GET /mgmt/migrations[/{id}]` its progress,
  `POST /mgmt/migrations/{id}/action` `{"pause"|"resume"|"cancel": {}}` (hearth.fleet; the task manager's
  taskmanager.fleet_jobs drives it);
- `GET /mgmt/orphans`: cloud resources named for Hearth's instances that no live instance records, each with its
  age and why; `DELETE /mgmt/orphans` removes those found then.

The admin role is Keystone's verdict on the caller's token (api.auth), not a match of projects.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from hearth import fleet, service
from hearth.api.auth import Scope, project_scope
from hearth.api.errors import ApiError, responses
from hearth.views import instance_view

router = APIRouter(tags=["management"])

PAGE_SIZE = 100
MAX_PAGE = 1000


def _admin(scope: Scope = Depends(project_scope)) -> Scope:
    if not scope.principal.is_admin:
        raise ApiError(403, "The management API needs the admin role.")
    return scope


def _mgmt_view(inst: Any, scope: Scope, detail: bool = True) -> dict[str, Any]:
    view = instance_view(inst, scope.links, scope.region, detail=detail)
    view["tenant_id"] = inst.project_id
    return view


@router.get("/mgmt/instances", summary="Admin: every project's instances, filtered",
            responses=responses(400, 403))
def list_instances(
    scope: Scope = Depends(_admin),
    project: str | None = Query(default=None, description="Only this project's instances (a project id)"),
    engine: str | None = None,
    status: str | None = None,
    drifted: bool | None = None,
    limit: int | None = Query(default=None, ge=1),
    marker: str | None = None,
) -> dict[str, Any]:
    wanted = fleet.check_filter(project, engine, status, drifted)
    size = min(limit or PAGE_SIZE, MAX_PAGE)
    rows, more = fleet.list_instances(scope.runtime, wanted, size, marker)
    body: dict[str, Any] = {"instances": [_mgmt_view(inst, scope, detail=False) for inst in rows]}
    if more and rows:
        query = {k: v for k, v in (("project", project), ("engine", engine), ("status", status),
                                   ("drifted", drifted)) if v is not None}
        query.update(limit=size, marker=rows[-1].id)
        body["links"] = [{"href": f"{scope.links.api}/mgmt/instances?{urlencode(query)}", "rel": "next"}]
    return body


@router.get("/mgmt/instances/{instance_id}", summary="Admin: any project's instance",
            responses=responses(403, 404))
def show_instance(instance_id: str, scope: Scope = Depends(_admin)) -> dict[str, Any]:
    owner = service.instance_project(scope.runtime, instance_id)
    return {"instance": _mgmt_view(service.get_instance(scope.runtime, owner, instance_id), scope)}


@router.get("/mgmt/instances/{instance_id}/drift",
            summary="Admin: compare an instance with the cloud now (what differs is recorded and shown)",
            responses=responses(403, 404, 409))
def check_drift(instance_id: str, scope: Scope = Depends(_admin)) -> dict[str, Any]:
    from hearth.taskmanager.drift import check_instance

    owner = service.instance_project(scope.runtime, instance_id)
    inst = service.get_instance(scope.runtime, owner, instance_id)
    found = check_instance(scope.runtime, inst.id)
    if found is None:
        raise service.Conflict(f"Instance {inst.id} cannot be compared with the cloud now: an operation is working "
                               "on it, or the cloud did not answer; try again later.")
    return {"drift": found}


@router.get("/mgmt/fleet", summary="Admin: the fleet by engine and status, and how many instances drifted",
            responses=responses(403))
def fleet_summary(scope: Scope = Depends(_admin)) -> dict[str, Any]:
    return {"fleet": fleet.summary(scope.runtime)}


@router.get("/mgmt/orphans", summary="Admin: cloud resources named for instances that no live instance records",
            responses=responses(403, 503))
def list_orphans(scope: Scope = Depends(_admin)) -> dict[str, Any]:
    return {"orphans": fleet.orphans(scope.runtime)[0]}


@router.delete("/mgmt/orphans", summary="Admin: delete the orphans found now (answers what it deleted)",
               responses=responses(403, 503))
def delete_orphans(scope: Scope = Depends(_admin)) -> dict[str, Any]:
    found, failed = fleet.orphans(scope.runtime, remove=True)
    return {"orphans": found, "deleted": len(found) - len(failed), "failed": failed}


class MigrationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: str = Field(description="orchestrator (adopt into Heat stacks) or natives (release)")
    project: str | None = Field(default=None, max_length=64, description="Only this project's instances")
    batch: int | None = Field(default=None, ge=1, description="At most this many instances in this migration")
    max_in_flight: int = Field(default=10, ge=1, le=100, description="Instances moving at once")
    dry_run: bool = False


class MigrationBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    migration: MigrationIn


@router.post("/mgmt/migrations", status_code=202, summary="Admin: migrate the fleet (or plan it: dry_run)",
             responses=responses(400, 403, 409))
def start_migration(body: MigrationBody, scope: Scope = Depends(_admin)) -> Any:
    req = body.migration
    if req.dry_run:
        return JSONResponse({"plan": fleet.plan(scope.runtime, req.to, req.project, req.batch)})
    job = fleet.start(scope.runtime, req.to, req.project, req.batch, req.max_in_flight)
    return {"migration": fleet.view(job)}


@router.get("/mgmt/migrations", summary="Admin: the fleet migrations", responses=responses(403))
def list_migrations(scope: Scope = Depends(_admin)) -> dict[str, Any]:
    return {"migrations": [fleet.view(job) for job in fleet.all_jobs(scope.runtime)]}


@router.get("/mgmt/migrations/{migration_id}", summary="Admin: a fleet migration's progress",
            responses=responses(403, 404))
def show_migration(migration_id: str, scope: Scope = Depends(_admin)) -> dict[str, Any]:
    return {"migration": fleet.view(fleet.get(scope.runtime, migration_id))}


@router.post("/mgmt/migrations/{migration_id}/action", status_code=202,
             summary='Admin: {"pause": {}}, {"resume": {}} or {"cancel": {}}', responses=responses(400, 403, 404, 409))
def migration_action(migration_id: str, body: dict[str, Any], scope: Scope = Depends(_admin)) -> dict[str, Any]:
    if len(body) != 1:
        raise service.BadRequest('Exactly one action is required: {"pause": {}}, {"resume": {}} or {"cancel": {}}.')
    job = fleet.act(scope.runtime, migration_id, next(iter(body)))
    return {"migration": fleet.view(job)}
