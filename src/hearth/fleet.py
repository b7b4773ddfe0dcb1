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

from hearth import service
from hearth.db.models import FleetMigration, Instance, Operation, OperationState, Task
from hearth.engines import common
from hearth.engines import orphans as cloud_orphans
from hearth.engines import resources as cloud_resources
from hearth.engines.base import EngineError
from hearth.operations import resources_of, spec_of
from hearth.runtime import Runtime
from hearth.service import BadRequest, _looks_like_id, shown
from hearth.taskmanager import fleet_jobs as jobs
from hearth.taskmanager import wake
from hearth.views import instance_status, timestamp

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
    return summarise(rows)


def summarise(rows: list[Instance]) -> dict[str, Any]:
    """`summary`'s figures for these instances (the whole fleet, or one tenant's in the console)."""
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
        failed = cloud_orphans.delete(conn, found, _waiter(runtime)) if remove and found else []
    except EngineError as err:
        raise service._engine_failure(err) from None
    return [o.view() for o in found], failed


def _waiter(runtime: Runtime) -> Callable[[str, Callable[[], bool]], None]:
    """The engines' own wait (common.wait_for: backoff, transient faults retried), until `still_there` is False."""

    def wait(what: str, still_there: Callable[[], bool]) -> None:
        common.wait_for(still_there, lambda there: not there, lambda _there: None, what, ORPHAN_WAIT_SECONDS,
                        runtime.settings, after_change=False)

    return wait


# --------------------------------------------------------------------------------------------------
# Fleet migrations, the API's side (the task manager's driver: taskmanager.fleet_jobs).

ACTIONS = {"pause": ({jobs.RUNNING}, jobs.PAUSED), "resume": ({jobs.PAUSED}, jobs.RUNNING),
           "cancel": ({jobs.RUNNING, jobs.PAUSED}, jobs.CANCELLED)}


def plan(runtime: Runtime, target: str, project_id: str | None, batch: int | None) -> dict[str, Any]:
    """Which instances a migration to `target` would move, and which it refuses with the reasons (reads the
    cloud for each candidate's drift; changes nothing)."""
    if target not in jobs.SOURCE:
        raise service.BadRequest(f"to: '{service.shown(target)}' is not an engine; use orchestrator or natives.")
    if batch is not None and batch < 1:
        raise service.BadRequest("batch: at least 1 instance.")
    try:
        runtime.relocation()
    except EngineError as err:
        raise service.Conflict(service._sentence(str(err))) from None
    with runtime.sessions() as session:
        query = select(Instance).where(Instance.deleted_at.is_(None), Instance.engine == jobs.SOURCE[target])
        if project_id is not None:
            query = query.where(Instance.project_id == project_id)
        candidates = list(session.scalars(query.order_by(Instance.created_at, Instance.id)))
    move: list[str] = []
    refused: list[dict[str, Any]] = []
    conn = runtime.connections.get()
    checked_at = time.time()
    try:  # every collection read once: the candidates are compared with it, not read one by one
        seen: cloud_resources.Snapshot | None = cloud_resources.snapshot(conn)
        unreadable = None
    except EngineError as err:
        seen, unreadable = None, f"the cloud could not be read: {err}"
    for inst in candidates:
        if batch is not None and len(move) >= batch:
            break
        if inst.task != Task.NONE or instance_status(inst) != "ACTIVE":
            refused.append({"id": inst.id, "reasons": [f"not idle: status {instance_status(inst)}, task {inst.task}"]})
            continue
        rules = list(inst.rules)
        if seen is None:
            found = [unreadable or "the cloud could not be read"]
        else:  # the engines' own drift check (every engine's differences), on the snapshot
            found = cloud_resources.differences(conn, spec_of(inst, rules, runtime.settings.public_network),
                                                cloud_resources.ids_of(resources_of(inst, rules)), seen=seen)
        if found:
            refused.append({"id": inst.id, "reasons": [str(reason) for reason in found]})
        else:
            move.append(inst.id)
    return {"to": target, "project": project_id, "move": move, "refused": refused, "checked_at": checked_at}


def start(runtime: Runtime, target: str, project_id: str | None, batch: int | None,
          max_in_flight: int) -> FleetMigration:
    if not 1 <= max_in_flight <= 100:
        raise service.BadRequest("max_in_flight: 1 to 100 instances at once.")
    planned = plan(runtime, target, project_id, batch)
    with runtime.sessions.begin() as session:
        job = FleetMigration(target=target, project_id=project_id, max_in_flight=max_in_flight, state=jobs.RUNNING,
                             plan=planned, progress={iid: {"state": jobs.WAITING} for iid in planned["move"]})
        session.add(job)
        session.flush()
        session.expunge(job)
    wake(runtime)  # the driver's first step now, not at its next look
    return job


def act(runtime: Runtime, job_id: str, action: str) -> FleetMigration:
    if action not in ACTIONS:
        raise service.BadRequest(f"Invalid action: {service.shown(action)}; use pause, resume or cancel.")
    allowed, new_state = ACTIONS[action]
    with runtime.sessions.begin() as session:
        job = session.get(FleetMigration, job_id) if service._looks_like_id(job_id) else None
        if job is None:
            raise service.NotFound(f"Migration {service.shown(job_id)} could not be found.")
        if job.state not in allowed:
            raise service.Conflict(f"Migration {job.id} is {job.state}; {action} needs it "
                                   f"{' or '.join(sorted(allowed))}.")
        job.state = new_state
        session.flush()
        session.expunge(job)
    wake(runtime)  # resumed: the next moves are queued now
    return job


def get(runtime: Runtime, job_id: str) -> FleetMigration:
    with runtime.sessions() as session:
        job = session.get(FleetMigration, job_id) if service._looks_like_id(job_id) else None
        if job is None:
            raise service.NotFound(f"Migration {service.shown(job_id)} could not be found.")
        return job


def all_jobs(runtime: Runtime) -> list[FleetMigration]:
    with runtime.sessions() as session:
        return list(session.scalars(select(FleetMigration).order_by(FleetMigration.created_at)))


def view(job: FleetMigration) -> dict[str, Any]:
    counts = {state: 0 for state in (jobs.WAITING, jobs.MOVING, jobs.MOVED, jobs.FAILED, jobs.REFUSED)}
    for entry in job.progress.values():
        counts[entry["state"]] = counts.get(entry["state"], 0) + 1
    return {"id": job.id, "to": job.target, "project": job.project_id, "state": job.state,
            "max_in_flight": job.max_in_flight, "counts": counts, "refused_by_plan": job.plan.get("refused", []),
            "instances": [{"id": iid, **entry} for iid, entry in job.progress.items()],
            "created": timestamp(job.created_at), "updated": timestamp(job.updated_at),
            "finished": timestamp(job.finished_at)}


