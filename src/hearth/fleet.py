"""The cloud administrator's view of every tenant's instances: listing across projects with filters, and the
fleet summary (instances by engine and status, how many have drifted). Reads only; the admin-only management
routes (api/routes_mgmt.py) and `hearth admin ...` serve it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, tuple_

from hearth.db.models import Instance, Operation, OperationState
from hearth.engines import orphans as cloud_orphans
from hearth.engines.base import EngineError
from hearth.operations import resources_of
from hearth.runtime import Runtime
from hearth.service import BadRequest, _looks_like_id, shown
from hearth.views import instance_status

ENGINES = ("natives", "orchestrator")


@dataclass(frozen=True)
class FleetFilter:
    """What an administrator's listing keeps: a project, an owning engine, a Trove status, drifted or not."""

    project_id: str | None = None
    engine: str | None = None
    status: str | None = None
    drifted: bool | None = None

    def keeps(self, inst: Instance) -> bool:
        if self.status is not None and instance_status(inst) != self.status.upper():
            return False
        return self.drifted is None or bool(inst.drift) == self.drifted


def check_filter(project_id: str | None, engine: str | None, status: str | None, drifted: bool | None) -> FleetFilter:
    """A filter from query parameters; an engine Hearth does not have is a 400 naming the ones it has."""
    if engine is not None and engine not in ENGINES:
        raise BadRequest(f"engine: '{shown(engine)}' is not an engine; use one of {', '.join(ENGINES)}.")
    if project_id is not None and not _looks_like_id(project_id):
        raise BadRequest(f"project: '{shown(project_id)}' is not a project id.")
    return FleetFilter(project_id, engine, status, drifted)


def list_instances(runtime: Runtime, wanted: FleetFilter, limit: int, marker: str | None = None
                   ) -> tuple[list[Instance], bool]:
    """Every project's live instances (oldest first) that `wanted` keeps, one page after `marker`; True when
    more follow. Project and engine filter in the database; status and drift on the page's rows."""
    with runtime.sessions() as session:
        query = select(Instance).where(Instance.deleted_at.is_(None))
        if wanted.project_id is not None:
            query = query.where(Instance.project_id == wanted.project_id)
        if wanted.engine is not None:
            query = query.where(Instance.engine == wanted.engine)
        if marker:
            after = session.get(Instance, marker) if _looks_like_id(marker) else None
            if after is None:
                raise BadRequest(f"marker: instance {shown(marker)} is not in the list.")
            query = query.where(tuple_(Instance.created_at, Instance.id) > tuple_(after.created_at, after.id))
        found: list[Instance] = []
        for inst in session.scalars(query.order_by(Instance.created_at, Instance.id)):
            if wanted.keeps(inst):
                found.append(inst)
                if len(found) > limit:
                    break
    return found[:limit], len(found) > limit


def summary(runtime: Runtime) -> dict[str, Any]:
    """How the fleet stands: instances (and projects) in all, by owning engine, by Trove status, drifted."""
    with runtime.sessions() as session:
        rows = list(session.scalars(select(Instance).where(Instance.deleted_at.is_(None))))
    by_engine = Counter(inst.engine for inst in rows)
    by_status = Counter(instance_status(inst) for inst in rows)
    return {
        "instances": len(rows),
        "projects": len({inst.project_id for inst in rows}),
        "by_engine": {engine: by_engine.get(engine, 0) for engine in ENGINES},
        "by_status": dict(sorted(by_status.items())),
        "drifted": sum(1 for inst in rows if inst.drift),
        "on_heat": round(by_engine.get("orchestrator", 0) / len(rows), 3) if rows else None,
    }


ORPHAN_WAIT_SECONDS = 120.0


def orphans(runtime: Runtime, remove: bool = False) -> tuple[list[dict[str, Any]], list[str]]:
    """Cloud resources named for Hearth's instances that no live instance records (engines.orphans), and, with
    `remove`, what deleting them failed on. Instances an operation is queued or running for are left alone."""
    with runtime.sessions() as session:
        rows = list(session.scalars(select(Instance).where(Instance.deleted_at.is_(None))))
        live = {inst.id: cloud_orphans.recorded_ids(resources_of(inst, list(inst.rules)), inst.stack_id)
                for inst in rows}
        busy = set(session.scalars(select(Operation.instance_id).where(
            Operation.state.in_(OperationState.ACTIVE))))
    conn = runtime.connections.get()
    try:
        found = cloud_orphans.find(conn, live, busy)
        failed = cloud_orphans.delete(conn, found, _waiter()) if remove and found else []
    except EngineError as err:
        raise _unavailable(err) from None
    return [o.view() for o in found], failed


def _waiter() -> Callable[[str, Callable[[], bool]], None]:
    def wait(what: str, still_there: Callable[[], bool]) -> None:
        deadline = time.monotonic() + ORPHAN_WAIT_SECONDS
        while still_there():
            if time.monotonic() > deadline:
                raise EngineError(f"gave up waiting for {what} after {ORPHAN_WAIT_SECONDS:g} s")
            time.sleep(0.1)

    return wait


def _unavailable(err: EngineError) -> Exception:
    from hearth.service import _engine_failure

    return _engine_failure(err)
