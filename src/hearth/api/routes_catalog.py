"""Flavors (read from the cloud, briefly cached) and datastores (from the settings, stable uuid5 ids)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from hearth import service
from hearth.api.auth import Scope, project_scope
from hearth.api.errors import responses
from hearth.views import datastore_view, flavor_view, version_view

router = APIRouter()


@router.get("/flavors", tags=["flavors"], summary="List the cloud's flavors (Trove's view)")
def list_flavors(scope: Scope = Depends(project_scope)) -> dict[str, Any]:
    return {"flavors": [flavor_view(f, scope.links) for f in service.list_flavors(scope.runtime)]}


@router.get("/flavors/{flavor_id}", tags=["flavors"], summary="Show a flavor", responses=responses(404))
def show_flavor(flavor_id: str, scope: Scope = Depends(project_scope)) -> dict[str, Any]:
    return {"flavor": flavor_view(service.get_flavor(scope.runtime, flavor_id), scope.links)}


@router.get("/datastores", tags=["datastores"], summary="List datastores and their versions")
def list_datastores(scope: Scope = Depends(project_scope)) -> dict[str, Any]:
    return {"datastores": [datastore_view(ds, scope.links) for ds in scope.runtime.settings.datastores]}


@router.get("/datastores/versions/{version_id}", tags=["datastores"], summary="Show a version by its id",
            responses=responses(404))
def show_version_by_id(version_id: str, scope: Scope = Depends(project_scope)) -> dict[str, Any]:
    ds, version = service.find_version_anywhere(scope.runtime, version_id)
    return {"version": version_view(ds, version, scope.links, detail=True)}


@router.get("/datastores/{datastore}", tags=["datastores"], summary="Show a datastore (by id or name)",
            responses=responses(404))
def show_datastore(datastore: str, scope: Scope = Depends(project_scope)) -> dict[str, Any]:
    return {"datastore": datastore_view(service.find_datastore(scope.runtime, datastore), scope.links)}


@router.get("/datastores/{datastore}/versions", tags=["datastores"], summary="List a datastore's versions",
            responses=responses(404))
def list_versions(datastore: str, scope: Scope = Depends(project_scope)) -> dict[str, Any]:
    ds = service.find_datastore(scope.runtime, datastore)
    return {"versions": [version_view(ds, v, scope.links, detail=True) for v in ds.versions]}


@router.get("/datastores/{datastore}/versions/{version}", tags=["datastores"],
            summary="Show a datastore version (by id or name)", responses=responses(404))
def show_version(datastore: str, version: str, scope: Scope = Depends(project_scope)) -> dict[str, Any]:
    ds = service.find_datastore(scope.runtime, datastore)
    return {"version": version_view(ds, service.find_version(ds, version), scope.links, detail=True)}
