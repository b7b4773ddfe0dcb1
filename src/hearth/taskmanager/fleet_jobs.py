"""Fleet migrations: move many instances between natives and Heat stacks, a few at a time, durably.

A migration is planned (which instances move; which are refused and why: not idle, or drifted, with the
differences), recorded (`fleet_migrations`), then driven by `advance`, which the task manager calls every
second: it queues the adopt (to orchestrator) or release (to natives) operations of waiting instances while
fewer than `max_in_flight` are moving, and settles the ones whose operation ended. Each moved instance is
verified: the same server, volume and group ids as before, now owned by the target engine, and nothing differs
between the record and the cloud. Everything lives in the rows, so a task manager restart loses nothing;
paused, a migration lets its moving instances finish and queues no more; cancelled, the waiting ones stay.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from hearth import service
from hearth.db.models import FleetMigration, Instance, Operation, OperationState, Task, utcnow
from hearth.engines.base import EngineError
from hearth.operations import resources_of, spec_of
from hearth.runtime import Runtime
from hearth.views import instance_status, timestamp

log = logging.getLogger(__name__)

RUNNING, PAUSED, CANCELLED, FINISHED = "running", "paused", "cancelled", "finished"
SOURCE = {"orchestrator": "natives", "natives": "orchestrator"}  # target engine -> the engine instances leave
WAITING, MOVING, MOVED, FAILED, REFUSED = "waiting", "moving", "moved", "failed", "refused"
ACTIONS = {"pause": ({RUNNING}, PAUSED), "resume": ({PAUSED}, RUNNING), "cancel": ({RUNNING, PAUSED}, CANCELLED)}


def plan(runtime: Runtime, target: str, project_id: str | None, batch: int | None) -> dict[str, Any]:
    """Which instances a migration to `target` would move, and which it refuses with the reasons (reads the
    cloud for each candidate's drift; changes nothing)."""
    if target not in SOURCE:
        raise service.BadRequest(f"to: '{service.shown(target)}' is not an engine; use orchestrator or natives.")
    if batch is not None and batch < 1:
        raise service.BadRequest("batch: at least 1 instance.")
    try:
        runtime.relocation()
    except EngineError as err:
        raise service.Conflict(service._sentence(str(err))) from None
    with runtime.sessions() as session:
        query = select(Instance).where(Instance.deleted_at.is_(None), Instance.engine == SOURCE[target])
        if project_id is not None:
            query = query.where(Instance.project_id == project_id)
        candidates = list(session.scalars(query.order_by(Instance.created_at, Instance.id)))
    move: list[str] = []
    refused: list[dict[str, Any]] = []
    for inst in candidates:
        if batch is not None and len(move) >= batch:
            break
        if inst.task != Task.NONE or instance_status(inst) != "ACTIVE":
            refused.append({"id": inst.id, "reasons": [f"not idle: status {instance_status(inst)}, task {inst.task}"]})
            continue
        rules = list(inst.rules)
        try:
            found = runtime.engine(inst.engine).differences(spec_of(inst, rules, runtime.settings.public_network),
                                                            resources_of(inst, rules))
        except EngineError as err:
            found = [f"the cloud could not be read: {err}"]
        if found:
            refused.append({"id": inst.id, "reasons": found})
        else:
            move.append(inst.id)
    return {"to": target, "project": project_id, "move": move, "refused": refused}


def start(runtime: Runtime, target: str, project_id: str | None, batch: int | None,
          max_in_flight: int) -> FleetMigration:
    if not 1 <= max_in_flight <= 100:
        raise service.BadRequest("max_in_flight: 1 to 100 instances at once.")
    planned = plan(runtime, target, project_id, batch)
    with runtime.sessions.begin() as session:
        job = FleetMigration(target=target, project_id=project_id, max_in_flight=max_in_flight, state=RUNNING,
                             plan=planned, progress={iid: {"state": WAITING} for iid in planned["move"]})
        session.add(job)
        session.flush()
        session.expunge(job)
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
    counts = {state: 0 for state in (WAITING, MOVING, MOVED, FAILED, REFUSED)}
    for entry in job.progress.values():
        counts[entry["state"]] = counts.get(entry["state"], 0) + 1
    return {"id": job.id, "to": job.target, "project": job.project_id, "state": job.state,
            "max_in_flight": job.max_in_flight, "counts": counts, "refused_by_plan": job.plan.get("refused", []),
            "instances": [{"id": iid, **entry} for iid, entry in job.progress.items()],
            "created": timestamp(job.created_at), "updated": timestamp(job.updated_at),
            "finished": timestamp(job.finished_at)}


# --------------------------------------------------------------------------------------------------
# The driver.


def advance(runtime: Runtime) -> int:
    """One step of every running or paused migration; returns how many operations it queued."""
    with runtime.sessions() as session:
        ids = list(session.scalars(select(FleetMigration.id).where(FleetMigration.state.in_((RUNNING, PAUSED)))))
    return sum(_advance_one(runtime, job_id) for job_id in ids)


def _advance_one(runtime: Runtime, job_id: str) -> int:
    job = get(runtime, job_id)
    progress = {iid: dict(entry) for iid, entry in job.progress.items()}
    for iid, entry in progress.items():
        if entry["state"] == MOVING:
            _settle(runtime, job, iid, entry)
    queued = 0
    moving = sum(1 for e in progress.values() if e["state"] == MOVING)
    if job.state == RUNNING:
        for iid, entry in progress.items():
            if moving >= job.max_in_flight:
                break
            if entry["state"] == WAITING and _queue(runtime, job, iid, entry):
                moving += 1
                queued += 1
    done = not any(e["state"] in (WAITING, MOVING) for e in progress.values())
    with runtime.sessions.begin() as session:
        row = session.get(FleetMigration, job_id)
        if row is None:
            return queued
        row.progress = progress
        if done and row.state == RUNNING:
            row.state = FINISHED
            row.finished_at = utcnow()
    return queued


def _queue(runtime: Runtime, job: FleetMigration, instance_id: str, entry: dict[str, Any]) -> bool:
    with runtime.sessions() as session:
        inst = session.get(Instance, instance_id)
    if inst is None or inst.deleted_at is not None:
        entry.update(state=REFUSED, note="the instance was deleted")
        return False
    move = service.adopt_instance if job.target == "orchestrator" else service.release_instance
    try:
        op = move(runtime, inst.project_id, inst.id).record(runtime)
    except service.ServiceError as err:
        entry.update(state=REFUSED, note=err.message)
        return False
    entry.update(state=MOVING, operation_id=op.id,
                 ids={"server": inst.server_id, "volume": inst.volume_id, "security_group": inst.secgroup_id})
    return True


def _settle(runtime: Runtime, job: FleetMigration, instance_id: str, entry: dict[str, Any]) -> None:
    """A moving instance whose operation ended: moved and verified, or failed with the operation's error."""
    with runtime.sessions() as session:
        op = session.get(Operation, entry.get("operation_id"))
        inst = session.get(Instance, instance_id)
        if op is None or op.state in OperationState.ACTIVE:
            return
        rules = list(inst.rules) if inst is not None else []
    if op.state != OperationState.SUCCEEDED or inst is None:
        entry.update(state=FAILED, note=op.error or "the instance is gone")
        return
    ids = {"server": inst.server_id, "volume": inst.volume_id, "security_group": inst.secgroup_id}
    problems = []
    if ids != entry.get("ids"):
        problems.append(f"its ids changed: {entry.get('ids')} -> {ids}")
    if inst.engine != job.target:
        problems.append(f"it is owned by {inst.engine}, not {job.target}")
    try:
        problems += runtime.engine(inst.engine).differences(
            spec_of(inst, rules, runtime.settings.public_network), resources_of(inst, rules))
    except EngineError as err:
        problems.append(f"the cloud could not be read to verify it: {err}")
    entry.update(state=MOVED if not problems else FAILED,
                 note="verified: same ids, and the cloud holds what the record says" if not problems
                 else "moved, but " + "; ".join(problems))
