"""`/v1.0/{project_id}/instances`: create, list, show, update (name, access), delete, actions (resize, and
Hearth's admin-only adopt / release), plus Hearth's own `/events` and `/operations` for each instance.

Dry runs: `?dry_run=true` on create, update, delete and actions validates the request exactly as a real
one (it is the same service command, planned instead of recorded), then answers 200
`{"plan": {"engine", "operation", "steps": [{"action", "target", "detail"}]}}`
(natives: the ordered cloud calls; orchestrator: Heat's preview). No row is written, nothing in the
cloud changes, no operation is queued.

Ownership moves (engine = migration, or auto on a cloud with Heat; admin role only):
`POST .../instances/{id}/action {"adopt": {}}` puts a natives instance's existing resources into a Heat
stack (refused with the list of differences when the cloud drifted from Hearth's record);
`{"release": {}}` abandons its stack and hands the resources, untouched, back to natives. Both answer
202 and run as operations (status BUILD / SHUTDOWN while they run).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import JSONResponse

from hearth import service
from hearth.api.auth import Scope, project_scope
from hearth.api.errors import ApiError, responses
from hearth.api.schemas import UNSUPPORTED_CREATE, ActionBody, InstanceCreateBody, InstanceUpdateBody, PlanBody
from hearth.engines.base import PlannedStep
from hearth.views import event_view, instance_view, operation_view

router = APIRouter(tags=["instances"])

PAGE_SIZE = 20  # Trove's instances_page_size: the default page
MAX_PAGE = 1000
DryRun = Query(default=False, description="Answer with the plan (200) instead of doing it; nothing changes")
ACTIONS = ("resize", "restart", "rebuild", "reset_status", "adopt", "release", "reconcile")
DRY_RUN_PLAN: dict[int | str, dict[str, Any]] = {
    200: {"model": PlanBody, "description": "dry_run=true: the plan; nothing was recorded or changed"}}


def _owner(scope: Scope, instance_id: str) -> str:
    """The project whose instance the route acts on: the caller's; for an admin, as in Trove, the instance's
    own project when it is another's (show, delete, actions, events and operations: how operators clean up and
    follow tenants' instances)."""
    return service.owner_project(scope.runtime, scope.project_id, scope.principal.is_admin, instance_id)


def plan_response(plan: service.Plan) -> JSONResponse:
    """200 with the plan (routes that act answer 202; a dry run has done nothing)."""
    return JSONResponse({"plan": plan.view()}, status_code=200)


@router.post("/instances", summary="Create an instance (answers at once with status BUILD)",
             description="200 with the instance (status BUILD), or with `{\"plan\": ...}` for dry_run=true.",
             responses=responses(404, 503))
def create_instance(body: InstanceCreateBody, scope: Scope = Depends(project_scope),
                    dry_run: bool = DryRun) -> Any:
    req = body.instance
    unsupported = [f for f in UNSUPPORTED_CREATE if getattr(req, f) is not None]
    if unsupported:
        raise service.BadRequest(f"{unsupported[0]}: {UNSUPPORTED_CREATE[unsupported[0]]} are not supported by this "
                                 "deployment of Hearth; remove the field.")
    nic = req.nics[0].model_dump(by_alias=True, exclude_none=True) if req.nics else None
    create = service.create_instance(
        scope.runtime,
        scope.project_id,
        name=req.name,
        flavor_ref=req.flavorRef,
        volume_size=req.volume.size,
        datastore=req.datastore.type if req.datastore else None,
        datastore_version=req.datastore.version if req.datastore else None,
        allowed_cidrs=req.access.allowed_cidrs if req.access else None,
        availability_zone=req.availability_zone,
        nic=nic,
        is_public=bool(req.access.is_public) if req.access else False,
        databases=[d.model_dump(exclude_none=True) for d in req.databases or []],
        users=[u.model_dump(exclude_none=True) for u in req.users or []],
        configuration_id=req.configuration,
        volume_type=req.volume.type,
    )
    if dry_run:
        return plan_response(create.plan(scope.runtime))
    inst = create.record(scope.runtime)
    return {"instance": instance_view(inst, scope.links, scope.region)}


@router.get("/instances", summary="List instances (oldest first; `limit` and `marker` paginate)",
            responses=responses(400))
def list_instances(
    scope: Scope = Depends(project_scope),
    limit: int | None = Query(default=None, ge=1),
    marker: str | None = None,
) -> dict[str, Any]:
    size = min(limit or PAGE_SIZE, MAX_PAGE)
    rows, more = service.list_instances(scope.runtime, scope.project_id, size, marker)
    body: dict[str, Any] = {"instances": [instance_view(i, scope.links, scope.region, detail=False) for i in rows]}
    if more and rows:
        query = urlencode({"limit": size, "marker": rows[-1].id})
        body["links"] = [{"href": f"{scope.links.api}/instances?{query}", "rel": "next"}]
    return body


@router.get("/instances/detail", include_in_schema=False)
def list_instances_detail(
    scope: Scope = Depends(project_scope),
    limit: int | None = Query(default=None, ge=1),
    marker: str | None = None,
) -> dict[str, Any]:
    return list_instances(scope, limit, marker)


@router.get("/instances/{instance_id}", summary="Show an instance", responses=responses(404))
def show_instance(instance_id: str, scope: Scope = Depends(project_scope)) -> dict[str, Any]:
    inst = service.get_instance(scope.runtime, _owner(scope, instance_id), instance_id)
    return {"instance": instance_view(inst, scope.links, scope.region)}


@router.put("/instances/{instance_id}", status_code=202,
            summary="Update an instance: name, access (allowed_cidrs, is_public), configuration (attach a group, "
                    "or null to detach), datastore_version (an upgrade within the major release)",
            responses={**DRY_RUN_PLAN, **responses(404, 409, 413, 422, 503)})
def update_instance(instance_id: str, body: InstanceUpdateBody, scope: Scope = Depends(project_scope),
                    dry_run: bool = DryRun) -> Any:
    req = body.instance
    given = req.model_fields_set
    if req.replica_of is not None or req.slave_of is not None:
        raise service.BadRequest("replica_of: replicas are not supported by this deployment of Hearth.")
    cidrs = req.access.allowed_cidrs if req.access else None
    is_public = req.access.is_public if req.access else None
    access = cidrs is not None or is_public is not None
    configure = "configuration" in given
    changes = sum([access, configure, req.datastore_version is not None])
    if req.name is None and changes == 0:
        service.get_instance(scope.runtime, scope.project_id, instance_id)  # 404 before "nothing to do"
        raise service.BadRequest("Nothing to update: give instance.name, access (allowed_cidrs, is_public), "
                                 "configuration or datastore_version.")
    if changes > 1:
        service.get_instance(scope.runtime, scope.project_id, instance_id)
        raise service.BadRequest("Give one of access, configuration or datastore_version per request (each is a "
                                 "change of its own).")
    if req.datastore_version is not None:
        command: service.Command[Any] = service.upgrade_instance(scope.runtime, scope.project_id, instance_id,
                                                                 req.datastore_version)
        if dry_run:
            return plan_response(command.plan(scope.runtime))
        command.record(scope.runtime)
    elif configure:
        if dry_run:
            raise service.BadRequest("dry_run: a configuration change talks to the database only; it has no plan.")
        from hearth import datastore_service

        datastore_service.attach_configuration(scope.runtime, scope.project_id, instance_id, req.configuration)
    elif access:
        if dry_run:
            return plan_response(_update_plan(scope, instance_id, req.name, cidrs, is_public))
        service.update_access(scope.runtime, scope.project_id, instance_id, cidrs, is_public).record(scope.runtime)
    elif dry_run:
        return plan_response(_update_plan(scope, instance_id, req.name, None, None))
    if req.name is not None:
        service.rename_instance(scope.runtime, scope.project_id, instance_id, req.name)
    return Response(status_code=202)


@router.patch("/instances/{instance_id}", status_code=202, include_in_schema=False)
def patch_instance(instance_id: str, body: InstanceUpdateBody, scope: Scope = Depends(project_scope),
                   dry_run: bool = DryRun) -> Any:
    """Trove's PATCH: the same fields as PUT (troveclient sends upgrades and renames this way)."""
    return update_instance(instance_id, body, scope, dry_run)


def _update_plan(scope: Scope, instance_id: str, name: str | None, cidrs: list[str] | None,
                 is_public: bool | None) -> service.Plan:
    """An update's plan: the access change's (if any), plus the rename, which is Hearth's record only."""
    inst = service.get_instance(scope.runtime, scope.project_id, instance_id)
    if cidrs is not None or is_public is not None:
        plan = service.update_access(scope.runtime, scope.project_id, instance_id, cidrs,
                                     is_public).plan(scope.runtime)
    else:
        plan = service.Plan(engine=inst.engine, operation="rename")
    if name is not None:
        service.check_name(name)
        if name != inst.name:
            plan.steps.append(PlannedStep("rename", "Hearth's record", f"{inst.name!r} -> {name!r}; no cloud call"))
    return plan


@router.delete("/instances/{instance_id}", status_code=202, summary="Delete an instance (allowed in ERROR)",
               responses={**DRY_RUN_PLAN, **responses(404, 409, 422, 503)})
def delete_instance(instance_id: str, scope: Scope = Depends(project_scope), dry_run: bool = DryRun) -> Any:
    delete = service.delete_instance(scope.runtime, _owner(scope, instance_id), instance_id)
    if dry_run:
        return plan_response(delete.plan(scope.runtime))
    delete.record(scope.runtime)
    return Response(status_code=202)


@router.post("/instances/{instance_id}/action", status_code=202,
             summary='Actions: {"resize": {"flavorRef": id}}, {"resize": {"volume": {"size": n}}}, '
                     '{"restart": {}}, {"rebuild": {"image_id": id}}; admin only: {"adopt": {}} (into a Heat '
                     'stack), {"release": {}} (back to natives), {"reconcile": {}} (repair drift), '
                     '{"reset_status": {}} (ERROR back to idle)',
             responses={**DRY_RUN_PLAN, **responses(404, 409, 413, 422, 503)})
def instance_action(instance_id: str, body: ActionBody, scope: Scope = Depends(project_scope),
                    dry_run: bool = DryRun) -> Any:
    return _act(scope, _owner(scope, instance_id), instance_id, body, dry_run)


def _act(scope: Scope, project_id: str, instance_id: str, body: ActionBody, dry_run: bool) -> Any:
    """One action on an instance of `project_id` (the caller's, or any for the management route)."""
    given = [name for name in ACTIONS if getattr(body, name, None) is not None]
    unknown = sorted((body.model_extra or {}).keys())
    if unknown or len(given) != 1:
        service.get_instance(scope.runtime, project_id, instance_id)
        if unknown:
            raise service.BadRequest(f"Invalid instance action: {', '.join(unknown)}. Hearth supports: resize, "
                                     "restart, rebuild, reset_status, adopt, release, reconcile.")
        raise service.BadRequest("Exactly one action is required, e.g. {\"resize\": {\"flavorRef\": \"2\"}}.")
    if body.reset_status is not None:
        if scope.principal.is_admin and not dry_run:
            service.reset_status(scope.runtime, project_id, instance_id)
        else:  # Trove's clients reset before a forced delete: an owner's reset changes nothing
            service.get_instance(scope.runtime, project_id, instance_id)
        return Response(status_code=202)
    if body.adopt is not None or body.release is not None:
        if not scope.principal.is_admin:
            raise ApiError(403, f"{given[0]} moves an instance between engines and needs the admin role.")
        move = service.adopt_instance if body.adopt is not None else service.release_instance
        command: service.Command[Any] = move(scope.runtime, project_id, instance_id)
    elif body.reconcile is not None:
        if not scope.principal.is_admin:
            raise ApiError(403, "reconcile changes the cloud outside the instance's own requests and needs the "
                                "admin role.")
        command = service.reconcile_instance(scope.runtime, project_id, instance_id)
    elif body.restart is not None:
        command = service.restart_instance(scope.runtime, project_id, instance_id)
    elif body.rebuild is not None:
        command = service.rebuild_instance(scope.runtime, project_id, instance_id, body.rebuild.image_id)
    else:
        resize = body.resize
        assert resize is not None
        if (resize.flavorRef is None) == (resize.volume is None):
            service.get_instance(scope.runtime, project_id, instance_id)
            raise service.BadRequest("resize: give exactly one of flavorRef or volume.size.")
        if resize.flavorRef is not None:
            command = service.resize_flavor(scope.runtime, project_id, instance_id, resize.flavorRef)
        else:
            assert resize.volume is not None
            command = service.resize_volume(scope.runtime, project_id, instance_id, resize.volume.size)
    if dry_run:
        return plan_response(command.plan(scope.runtime))
    command.record(scope.runtime)
    return Response(status_code=202)


@router.post("/mgmt/instances/{instance_id}/action", status_code=202, include_in_schema=False)
def mgmt_instance_action(instance_id: str, body: ActionBody, scope: Scope = Depends(project_scope),
                         dry_run: bool = DryRun) -> Any:
    """Trove's management action route (admin only): the actions of /action, on any project's instance."""
    if not scope.principal.is_admin:
        raise ApiError(403, "The management API needs the admin role.")
    return _act(scope, service.instance_project(scope.runtime, instance_id), instance_id, body, dry_run)


@router.get("/instances/{instance_id}/events", summary="Hearth: the instance's event log",
            responses=responses(404))
def instance_events(instance_id: str, scope: Scope = Depends(project_scope)) -> dict[str, Any]:
    events = service.list_events(scope.runtime, _owner(scope, instance_id), instance_id)
    return {"events": [event_view(e) for e in events]}


@router.get("/instances/{instance_id}/operations", summary="Hearth: the instance's operations, oldest first",
            responses=responses(404))
def instance_operations(instance_id: str, scope: Scope = Depends(project_scope)) -> dict[str, Any]:
    ops = service.list_operations(scope.runtime, _owner(scope, instance_id), instance_id)
    return {"operations": [operation_view(o) for o in ops]}
