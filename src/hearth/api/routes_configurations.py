"""Trove's configuration groups (`/configurations`), the configuration parameters of each datastore version,
and `/limits`.

A group holds parameter values for one datastore version, validated against that version's parameters when
given (400 naming the parameter and its allowed range). PUT replaces a group's values, PATCH merges into
them; both re-apply the values to every attached instance before saving (so a refusal changes nothing).
Attaching and detaching is `PUT /instances/{id} {"instance": {"configuration": id | null}}`.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from hearth import datastore_service as ds
from hearth import service
from hearth.api.auth import Scope, project_scope
from hearth.api.errors import responses

log = logging.getLogger(__name__)
router = APIRouter()
TAGS: list[str] = ["configurations"]

# Trove's own defaults (max_instances_per_tenant, max_volumes_per_tenant, max_backups_per_tenant), shown when
# the cloud's quota cannot be read; -1 is unlimited.
DEFAULT_LIMITS = {"max_instances": 10, "max_volumes": 40, "max_backups": 50, "max_ram": -1}


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class DatastoreRef(_Body):
    type: str | None = None
    version: str | None = None


class ConfigurationFields(_Body):
    name: Any = None
    description: Any = None
    values: Any = None
    datastore: DatastoreRef | None = None


class ConfigurationBody(_Body):
    configuration: ConfigurationFields = Field(description='{"name", "values": {...}, "description"?, '
                                                           '"datastore"?: {"type", "version"}}')


# -- groups


@router.post("/configurations", tags=TAGS, summary="Create a configuration group", responses=responses(400, 404))
def create_configuration(body: ConfigurationBody, scope: Scope = Depends(project_scope)) -> dict[str, Any]:
    req = body.configuration
    if req.values is None:
        raise service.BadRequest("configuration.values: an object of parameter names to values is required.")
    group = ds.create_configuration(scope.runtime, scope.project_id, name=req.name, values=req.values,
                                    description=req.description,
                                    datastore=req.datastore.type if req.datastore else None,
                                    datastore_version=req.datastore.version if req.datastore else None)
    return {"configuration": group.detail(scope.links)}


@router.get("/configurations", tags=TAGS, summary="List configuration groups")
def list_configurations(scope: Scope = Depends(project_scope)) -> dict[str, Any]:
    return {"configurations": [g.summary(scope.links) for g in ds.list_configurations(scope.runtime,
                                                                                      scope.project_id)]}


@router.get("/configurations/{configuration_id}", tags=TAGS, summary="Show a configuration group with its values",
            responses=responses(404))
def show_configuration(configuration_id: str, scope: Scope = Depends(project_scope)) -> dict[str, Any]:
    return {"configuration": ds.get_configuration(scope.runtime, scope.project_id, configuration_id)
            .detail(scope.links)}


@router.get("/configurations/{configuration_id}/instances", tags=TAGS,
            summary="The instances a configuration group is attached to", responses=responses(404))
def configuration_instances(configuration_id: str, scope: Scope = Depends(project_scope)) -> dict[str, Any]:
    return {"instances": ds.configuration_instances(scope.runtime, scope.project_id, configuration_id)}


def _update(configuration_id: str, body: ConfigurationBody, scope: Scope, merge: bool) -> None:
    req = body.configuration
    if req.values is None:
        raise service.BadRequest("configuration.values: an object of parameter names to values is required.")
    ds.update_configuration(scope.runtime, scope.project_id, configuration_id, values=req.values, name=req.name,
                            description=req.description, merge=merge)


@router.put("/configurations/{configuration_id}", tags=TAGS, status_code=202,
            summary="Replace a group's values (re-applied to its instances)",
            responses=responses(400, 404, 422, 500, 503))
def update_configuration(configuration_id: str, body: ConfigurationBody,
                         scope: Scope = Depends(project_scope)) -> Response:
    _update(configuration_id, body, scope, merge=False)
    return Response(status_code=202)


@router.patch("/configurations/{configuration_id}", tags=TAGS, status_code=200,
              summary="Merge values into a group (re-applied to its instances)",
              responses=responses(400, 404, 422, 500, 503))
def patch_configuration(configuration_id: str, body: ConfigurationBody,
                        scope: Scope = Depends(project_scope)) -> Response:
    _update(configuration_id, body, scope, merge=True)
    return Response(status_code=200)


@router.delete("/configurations/{configuration_id}", tags=TAGS, status_code=202,
               summary="Delete a configuration group (refused while attached)", responses=responses(404, 409))
def delete_configuration(configuration_id: str, scope: Scope = Depends(project_scope)) -> Response:
    ds.delete_configuration(scope.runtime, scope.project_id, configuration_id)
    return Response(status_code=202)


# -- parameters


@router.get("/datastores/versions/{version_id}/parameters", tags=TAGS,
            summary="A datastore version's configuration parameters (by version id)", responses=responses(400, 404))
def list_parameters_by_id(version_id: str, scope: Scope = Depends(project_scope)) -> dict[str, Any]:
    return {"configuration-parameters": ds.list_parameters(scope.runtime, None, version_id)}


@router.get("/datastores/versions/{version_id}/parameters/{name}", tags=TAGS,
            summary="One configuration parameter (by version id)", responses=responses(400, 404))
def show_parameter_by_id(version_id: str, name: str, scope: Scope = Depends(project_scope)) -> dict[str, Any]:
    return ds.get_parameter(scope.runtime, None, version_id, name)


@router.get("/datastores/{datastore}/versions/{version}/parameters", tags=TAGS,
            summary="A datastore version's configuration parameters", responses=responses(400, 404))
def list_parameters(datastore: str, version: str, scope: Scope = Depends(project_scope)) -> dict[str, Any]:
    return {"configuration-parameters": ds.list_parameters(scope.runtime, datastore, version)}


@router.get("/datastores/{datastore}/versions/{version}/parameters/{name}", tags=TAGS,
            summary="One configuration parameter", responses=responses(400, 404))
def show_parameter(datastore: str, version: str, name: str, scope: Scope = Depends(project_scope)) -> dict[str, Any]:
    return ds.get_parameter(scope.runtime, datastore, version, name)


# -- limits


@router.get("/limits", tags=["limits"], summary="Absolute limits (Trove's shape), from the cloud's quotas")
def limits(scope: Scope = Depends(project_scope)) -> dict[str, Any]:
    """Every Hearth instance lives in Hearth's own cloud project, so its Nova and Cinder quotas are what bounds
    a Hearth project too; Trove's defaults stand in when the cloud cannot say (a limits call must not fail)."""
    found = dict(DEFAULT_LIMITS)
    try:
        from hearth.engines.common import _absolute_limits

        conn = scope.runtime.connections.get()
        nova = _absolute_limits(conn.compute, "compute")
        cinder = _absolute_limits(conn.block_storage, "volume")
        for key, value in (("max_instances", nova.get("maxTotalInstances")), ("max_ram", nova.get("maxTotalRAMSize")),
                           ("max_volumes", cinder.get("maxTotalVolumes"))):
            if isinstance(value, int):
                found[key] = value
    except Exception as exc:  # the cloud cannot answer now: the defaults, not a 503
        log.info("limits: cloud quotas unavailable (%s); showing defaults", exc.__class__.__name__)
    return {"limits": [{"verb": "ABSOLUTE", **found}]}
