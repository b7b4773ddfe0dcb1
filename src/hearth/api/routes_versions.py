"""Version documents: `GET /` lists the API versions, `GET /v1.0` describes the one Hearth serves."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

router = APIRouter(tags=["versions"])

UPDATED = "2012-08-01T00:00:00Z"


def _version(request: Request) -> dict[str, Any]:
    runtime = request.app.state.runtime
    root = (runtime.settings.public_url or str(request.base_url)).rstrip("/")
    return {"id": "v1.0", "status": "CURRENT", "updated": UPDATED,
            "links": [{"href": f"{root}/v1.0/", "rel": "self"}]}


@router.get("/", summary="API versions")
def versions(request: Request) -> dict[str, Any]:
    return {"versions": [_version(request)]}


@router.get("/v1.0", summary="The v1.0 API")
@router.get("/v1.0/", include_in_schema=False)
def version(request: Request) -> dict[str, Any]:
    return {"version": _version(request)}
