"""Trove routes this deployment of Hearth does not implement answer 501 notImplemented naming the feature,
rather than a bare 404 that reads like a missing instance or a wrong URL.

Registered after every other router, so a route Hearth does implement (now or later, e.g. the admin `mgmt`
routes) always wins over these.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Depends

from hearth.api.auth import Scope, project_scope
from hearth.api.errors import ApiError

router = APIRouter(tags=["not implemented"])

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]

# Trove path (relative to /v1.0/{project_id}) -> the feature named in the 501.
UNSUPPORTED: dict[str, str] = {
    "/backups": "Backups",
    "/backups/{rest:path}": "Backups",
    "/backup_strategies": "Backup strategies",
    "/backup_strategies/{rest:path}": "Backup strategies",
    "/instances/{instance_id}/backups": "Backups",
    "/clusters": "Clusters",
    "/clusters/{rest:path}": "Clusters",
    "/modules": "Modules",
    "/modules/{rest:path}": "Modules",
    "/instances/{instance_id}/modules": "Modules",
    "/instances/{instance_id}/modules/{rest:path}": "Modules",
    "/instances/{instance_id}/log": "Guest logs",
    "/instances/{instance_id}/replicas": "Replication",
    "/datastores/{datastore}/versions/{version}/flavors": "Flavors per datastore version",
    "/datastores/versions/{version_id}/flavors": "Flavors per datastore version",
    "/datastores/{datastore}/versions/{version}/volume-types": "Volume types per datastore version",
    "/datastores/versions/{version_id}/volume-types": "Volume types per datastore version",
    "/mgmt/{rest:path}": "This management (mgmt) route",
}


def _not_implemented(feature: str) -> Callable[..., None]:
    """A route answering 501 for `feature` (after the usual auth, so it leaks nothing to strangers)."""

    def route(scope: Scope = Depends(project_scope)) -> None:
        raise ApiError(501, f"{feature} is not supported by this deployment of Hearth.")

    return route


for _path, _feature in UNSUPPORTED.items():
    router.add_api_route(_path, _not_implemented(_feature), methods=METHODS, include_in_schema=False,
                         name=f"unsupported {_path}")
