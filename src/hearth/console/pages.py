"""What each console page shows, assembled from the service layer and hearth.fleet (the functions the REST
API's routes use), as plain dicts for the templates. Reads only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import func, select

from hearth import fleet, service
from hearth.db.models import Event, FleetMigration, Instance, Operation, OperationState
from hearth.engines import resources
from hearth.operations import resources_of
from hearth.runtime import Runtime
from hearth.views import instance_status, operating_status, timestamp

FLEET_ROWS = 500  # instances listed on the fleet page (the summary counts them all)
ACTIVE_ROWS = 50  # running and queued operations listed
MIGRATION_DONE = ("moved", "failed", "refused")


class Principal(Protocol):
    """The caller as the API's TokenValidator judged it (hearth.api.auth.Principal; not imported, since the
    API application imports the console)."""

    @property
    def project_id(self) -> str: ...

    @property
    def is_admin(self) -> bool: ...


def instance_row(inst: Instance) -> dict[str, Any]:
    return {"id": inst.id, "name": inst.name, "project_id": inst.project_id, "engine": inst.engine,
            "status": instance_status(inst), "operating_status": operating_status(inst) or "—",
            "datastore": f"{inst.datastore} {inst.datastore_version}", "flavor": inst.flavor_id,
            "volume": inst.volume_size, "task": inst.task, "drifted": bool(inst.drift),
            "created": timestamp(inst.created_at)}


def _operations(runtime: Runtime, project_id: str | None) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """Running and queued operations (of one project, or all): counts by state, and the oldest few."""
    with runtime.sessions() as session:
        active = Operation.state.in_(OperationState.ACTIVE)
        counted = select(Operation.state, func.count()).where(active).group_by(Operation.state)
        listed = (select(Operation, Instance.name, Instance.project_id)
                  .join(Instance, Instance.id == Operation.instance_id).where(active))
        if project_id is not None:
            counted = counted.join(Instance, Instance.id == Operation.instance_id).where(
                Instance.project_id == project_id)
            listed = listed.where(Instance.project_id == project_id)
        counts = {state: 0 for state in (OperationState.RUNNING, OperationState.QUEUED)}
        counts.update({state: n for state, n in session.execute(counted)})
        rows = session.execute(listed.order_by(Operation.created_at, Operation.id).limit(ACTIVE_ROWS)).all()
    ops = [{"id": op.id, "kind": op.kind, "state": op.state, "step": op.step or "—", "attempts": op.attempts,
            "instance_id": op.instance_id, "instance_name": name, "project_id": project,
            "created": timestamp(op.created_at)} for op, name, project in rows]
    return counts, ops


def fleet_page(runtime: Runtime, principal: Principal) -> dict[str, Any]:
    """Admin: every project (hearth.fleet); a tenant: its own project's instances (service layer)."""
    if principal.is_admin:
        summary = fleet.summary(runtime)
        rows, more = fleet.list_instances(runtime, fleet.FleetFilter(), FLEET_ROWS)
        counts, ops = _operations(runtime, None)
    else:
        rows = service.list_all_instances(runtime, principal.project_id)
        summary = fleet.summarise(rows)
        more = len(rows) > FLEET_ROWS
        rows = rows[:FLEET_ROWS]
        counts, ops = _operations(runtime, principal.project_id)
    owned = summary["by_engine"].get("orchestrator", 0)
    return {"summary": summary, "instances": [instance_row(inst) for inst in rows], "more": more,
            "operations": counts, "active": ops, "on_stacks": owned,
            "on_heat_percent": round(100 * owned / summary["instances"]) if summary["instances"] else 0}


@dataclass
class Step:
    at: datetime
    level: str
    message: str
    since_start: float  # seconds since the operation was created
    since_previous: float  # seconds since the step before (the operation's creation for the first)
    retry: bool


@dataclass
class Timeline:
    id: str
    kind: str
    state: str
    attempts: int
    retries: int
    error: str | None
    created: str | None
    started: str | None
    finished: str | None
    queued_for: float | None  # seconds between created and started (waiting for a worker, or a retry)
    took: float | None  # seconds between created and finished
    steps: list[Step] = field(default_factory=list)


def _seconds(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return max(0.0, (later - earlier).total_seconds())


def _is_retry(event: Event) -> bool:
    """A step that is a retry: the engines' and the task manager's retry events say "retrying in ..."."""
    text = event.message.lower()
    return "retrying" in text or (event.level == "warning" and "retry" in text)


def timelines(operations: list[Operation], events: list[Event]) -> list[Timeline]:
    """Each operation (newest first) with its own events in order, timed from the operation's creation."""
    by_op: dict[str, list[Event]] = {}
    for event in events:
        if event.operation_id:
            by_op.setdefault(event.operation_id, []).append(event)
    found: list[Timeline] = []
    for op in reversed(operations):
        line = Timeline(id=op.id, kind=op.kind, state=op.state, attempts=op.attempts, retries=op.retries or 0,
                        error=op.error, created=timestamp(op.created_at), started=timestamp(op.started_at),
                        finished=timestamp(op.finished_at), queued_for=_seconds(op.started_at, op.created_at),
                        took=_seconds(op.finished_at, op.created_at))
        previous = op.created_at
        for event in sorted(by_op.get(op.id, []), key=lambda e: (e.at, e.id)):
            line.steps.append(Step(at=event.at, level=event.level, message=event.message,
                                   since_start=_seconds(event.at, op.created_at) or 0.0,
                                   since_previous=_seconds(event.at, previous) or 0.0, retry=_is_retry(event)))
            previous = event.at
        found.append(line)
    return found


def cloud_resources(inst: Instance) -> list[dict[str, str]]:
    """The cloud ids Hearth recorded for the instance, one per resource kind (engines.resources.KINDS)."""
    ids = resources.ids_of(resources_of(inst, list(inst.rules)))
    found = [{"kind": kind.label, "id": ids[kind.key]} for kind in resources.KINDS if kind.key in ids]
    if inst.stack_id and not any(r["id"] == inst.stack_id for r in found):
        found.append({"kind": "stack", "id": inst.stack_id})
    for rule in inst.rules:
        if rule.cloud_rule_id:
            found.append({"kind": f"rule {rule.protocol}/{rule.from_port} from {rule.cidr}",
                          "id": rule.cloud_rule_id})
    return found


def instance_page(runtime: Runtime, principal: Principal, instance_id: str) -> dict[str, Any]:
    """One instance, its recorded cloud resources, events and operation timelines; NotFound when the caller
    may not see it."""
    owner = service.owner_project(runtime, principal.project_id, principal.is_admin, instance_id)
    inst = service.get_instance(runtime, owner, instance_id)
    events = service.list_events(runtime, owner, instance_id)
    operations = service.list_operations(runtime, owner, instance_id)
    return {"instance": instance_row(inst), "fault": inst.fault, "drift": inst.drift,
            "stack_status": inst.stack_status, "server_status": inst.server_status,
            "addresses": [dict(a) for a in inst.addresses or []],
            "resources": cloud_resources(inst), "timelines": timelines(operations, events),
            "events": [{"at": timestamp(e.at), "level": e.level, "message": e.message,
                        "operation_id": e.operation_id, "retry": _is_retry(e)} for e in reversed(events)]}


def migration_summary(job: FleetMigration) -> dict[str, Any]:
    """fleet.view with the numbers a progress bar needs."""
    view = fleet.view(job)
    total = sum(view["counts"].values())
    done = sum(view["counts"][state] for state in MIGRATION_DONE)
    view["total"] = total
    view["done"] = done
    view["percent"] = round(100 * done / total) if total else 100
    return view


def migrations_page(runtime: Runtime) -> dict[str, Any]:
    return {"migrations": [migration_summary(job) for job in reversed(fleet.all_jobs(runtime))]}


def migration_page(runtime: Runtime, migration_id: str) -> dict[str, Any]:
    job = fleet.get(runtime, migration_id)
    view = migration_summary(job)
    names: dict[str, str] = {}
    with runtime.sessions() as session:
        ids = [entry["id"] for entry in view["instances"]] + [r["id"] for r in view["refused_by_plan"]]
        if ids:
            names = dict(session.execute(select(Instance.id, Instance.name).where(Instance.id.in_(ids))).all())
    for entry in view["instances"] + view["refused_by_plan"]:
        entry["name"] = names.get(entry["id"], "")
    live = view["state"] in ("running", "paused")
    return {"migration": view, "live": live, "refresh": 2 if live else None}
