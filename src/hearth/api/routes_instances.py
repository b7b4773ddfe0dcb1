"""`/v1.0/{project_id}/instances`: create, list, show, update (name, access), delete, actions (resize),
plus Hearth's own `/events` and `/operations` for each instance."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Response

from hearth import service
from hearth.api.auth import Scope, project_scope
from hearth.api.schemas import ActionBody, InstanceCreateBody, InstanceUpdateBody
from hearth.views import event_view, instance_view, operation_view

router = APIRouter(tags=["instances"])

PAGE_SIZE = 20  # Trove's instances_page_size: the default page
MAX_PAGE = 1000


@router.post("/instances", summary="Create an instance (answers at once with status BUILD)")
def create_instance(body: InstanceCreateBody, scope: Scope = Depends(project_scope)) -> dict[str, Any]:
    req = body.instance
    inst = service.create_instance(
        scope.runtime,
        scope.project_id,
        name=req.name,
        flavor_ref=req.flavorRef,
        volume_size=req.volume.size,
        datastore=req.datastore.type if req.datastore else None,
        datastore_version=req.datastore.version if req.datastore else None,
        allowed_cidrs=req.access.allowed_cidrs if req.access else None,
        availability_zone=req.availability_zone,
    )
    return {"instance": instance_view(inst, scope.links, scope.region)}


@router.get("/instances", summary="List instances (oldest first; `limit` and `marker` paginate)")
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


@router.get("/instances/{instance_id}", summary="Show an instance")
def show_instance(instance_id: str, scope: Scope = Depends(project_scope)) -> dict[str, Any]:
    inst = service.get_instance(scope.runtime, scope.project_id, instance_id)
    return {"instance": instance_view(inst, scope.links, scope.region)}


@router.put("/instances/{instance_id}", status_code=202,
            summary="Rename an instance and/or replace its allowed CIDRs (access.allowed_cidrs)")
def update_instance(instance_id: str, body: InstanceUpdateBody, scope: Scope = Depends(project_scope)) -> Response:
    req = body.instance
    cidrs = req.access.allowed_cidrs if req.access else None
    if req.name is None and cidrs is None:
        service.get_instance(scope.runtime, scope.project_id, instance_id)  # 404 before "nothing to do"
        raise service.BadRequest("Nothing to update: give instance.name and/or instance.access.allowed_cidrs.")
    if cidrs is not None:
        service.update_access(scope.runtime, scope.project_id, instance_id, cidrs)
    if req.name is not None:
        service.rename_instance(scope.runtime, scope.project_id, instance_id, req.name)
    return Response(status_code=202)


@router.delete("/instances/{instance_id}", status_code=202, summary="Delete an instance (allowed in ERROR)")
def delete_instance(instance_id: str, scope: Scope = Depends(project_scope)) -> Response:
    service.delete_instance(scope.runtime, scope.project_id, instance_id)
    return Response(status_code=202)


@router.post("/instances/{instance_id}/action", status_code=202,
             summary='Actions: {"resize": {"flavorRef": id}} or {"resize": {"volume": {"size": n}}}')
def instance_action(instance_id: str, body: ActionBody, scope: Scope = Depends(project_scope)) -> Response:
    given = [name for name in ("resize", "reset_status") if getattr(body, name, None) is not None]
    unknown = sorted((body.model_extra or {}).keys())
    if unknown or len(given) != 1:
        service.get_instance(scope.runtime, scope.project_id, instance_id)
        if unknown:
            raise service.BadRequest(f"Invalid instance action: {', '.join(unknown)}. Hearth supports: resize.")
        raise service.BadRequest("Exactly one action is required, e.g. {\"resize\": {\"flavorRef\": \"2\"}}.")
    if body.reset_status is not None:
        service.get_instance(scope.runtime, scope.project_id, instance_id)
        return Response(status_code=202)
    resize = body.resize
    assert resize is not None
    if (resize.flavorRef is None) == (resize.volume is None):
        service.get_instance(scope.runtime, scope.project_id, instance_id)
        raise service.BadRequest("resize: give exactly one of flavorRef or volume.size.")
    if resize.flavorRef is not None:
        service.resize_flavor(scope.runtime, scope.project_id, instance_id, resize.flavorRef)
    else:
        assert resize.volume is not None
        service.resize_volume(scope.runtime, scope.project_id, instance_id, resize.volume.size)
    return Response(status_code=202)


@router.get("/instances/{instance_id}/events", summary="Hearth: the instance's event log")
def instance_events(instance_id: str, scope: Scope = Depends(project_scope)) -> dict[str, Any]:
    events = service.list_events(scope.runtime, scope.project_id, instance_id)
    return {"events": [event_view(e) for e in events]}


@router.get("/instances/{instance_id}/operations", summary="Hearth: the instance's operations, oldest first")
def instance_operations(instance_id: str, scope: Scope = Depends(project_scope)) -> dict[str, Any]:
    ops = service.list_operations(scope.runtime, scope.project_id, instance_id)
    return {"operations": [operation_view(o) for o in ops]}
