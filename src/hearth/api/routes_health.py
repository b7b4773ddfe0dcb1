"""Liveness and readiness for scripts and orchestrators: `GET /healthz` and `GET /readyz`.

Neither needs a token or says anything secret (no database URL, no cloud names), so a load balancer or a
Kubernetes probe can call them. Trove's version document at `/` stays as it was.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

router = APIRouter(tags=["health"])


@router.get("/healthz", include_in_schema=False)
def healthz() -> dict[str, str]:
    """Live: the process answers HTTP. Restart it if this fails; nothing else is checked, so a database
    outage does not get a healthy API process killed."""
    return {"status": "ok"}


@router.get("/readyz", include_in_schema=False)
def readyz(request: Request) -> JSONResponse:
    """Ready: the database answers and this process's task manager (if it runs one) is running; 503 names
    the check that failed, so traffic goes elsewhere until it passes again."""
    runtime = request.app.state.runtime
    checks: dict[str, Any] = {}
    try:
        with runtime.db_engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as err:  # any failure to answer is "not ready"; only the error's type is shown
        checks["database"] = f"unavailable ({type(err).__name__})"
    manager = request.app.state.taskmanager
    if manager is None:
        checks["taskmanager"] = "not in this process"
    else:
        checks["taskmanager"] = "running" if manager.running else "stopped"
    ready = checks["database"] == "ok" and checks["taskmanager"] != "stopped"
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                        status_code=200 if ready else 503)
