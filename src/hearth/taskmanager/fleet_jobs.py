"""Fleet migrations, the task manager's side: the driver that moves many instances between natives and Heat
stacks, a few at a time, durably (the API's side, planning, starting and pausing, is hearth.fleet).

A migration is planned (which instances move; which are refused and why: not idle, or drifted, with the
differences), recorded (`fleet_migrations`), then driven by `advance`, which the task manager calls every
second: it queues the adopt (to orchestrator) or release (to natives) operations of waiting instances while
fewer than `max_in_flight` are moving, and settles the ones whose operation ended. Each moved instance is
verified: the same server, volume and group ids as before, now owned by the target engine, and nothing differs
between the record and the cloud (the move compares the cloud itself at its end, in its own worker, and
records what it found in its journal: the driver reads the verdict, so verification runs in parallel).
Everything lives in the rows, so a task manager restart loses nothing;
paused, a migration lets its moving instances finish and queues no more; cancelled, the waiting ones stay.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from hearth.db.models import FleetMigration, Instance, Operation, OperationState, utcnow
from hearth.engines.base import EngineError
from hearth.engines.journal import NOTE_CHECKED_AT, NOTE_VERIFIED
from hearth.operations import OperationKind, queue_if_idle, resources_of, spec_of
from hearth.runtime import Runtime

log = logging.getLogger(__name__)

RUNNING, PAUSED, CANCELLED, FINISHED = "running", "paused", "cancelled", "finished"
SOURCE = {"orchestrator": "natives", "natives": "orchestrator"}  # target engine -> the engine instances leave
WAITING, MOVING, MOVED, FAILED, REFUSED = "waiting", "moving", "moved", "failed", "refused"


# --------------------------------------------------------------------------------------------------
# The driver.


@dataclass
class Step:
    """What one step of the driver did."""

    queued: int = 0  # operations queued (the task manager's workers should wake)
    active: bool = False  # a migration is still running or paused (the driver keeps stepping often)


def advance(runtime: Runtime) -> Step:
    """One step of every running or paused migration."""
    with runtime.sessions() as session:
        ids = list(session.scalars(select(FleetMigration.id).where(FleetMigration.state.in_((RUNNING, PAUSED)))))
    return Step(queued=sum(_advance_one(runtime, job_id) for job_id in ids), active=bool(ids))


def _advance_one(runtime: Runtime, job_id: str) -> int:
    with runtime.sessions() as session:
        job = session.get(FleetMigration, job_id)
    if job is None:
        return 0
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
    if not done and not queued and progress == job.progress:
        return 0  # nothing settled or queued: no write (every write waits its turn for the database)
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
    """Queue the instance's adopt or release, as the service layer queues one: its task moves away from NONE
    in one conditional UPDATE (an instance busy with another operation is left for a later step), in the
    transaction that checks the migration still runs and records the move."""
    kind = OperationKind.ADOPT if job.target == "orchestrator" else OperationKind.RELEASE
    with runtime.sessions.begin() as session:
        row = session.get(FleetMigration, job.id)
        if row is None or row.state != RUNNING:  # paused or cancelled since this step began: queue nothing
            return False
        inst = session.get(Instance, instance_id)
        if inst is None or inst.deleted_at is not None:
            entry.update(state=REFUSED, note="the instance was deleted")
            return False
        if inst.engine != SOURCE[job.target]:
            entry.update(state=REFUSED, note=f"it is owned by {inst.engine} now")
            return False
        ids = {"server": inst.server_id, "volume": inst.volume_id, "security_group": inst.secgroup_id}
        op = queue_if_idle(session, instance_id, kind,
                           f"{kind.value} requested by fleet migration {job.id} (to {job.target})",
                           journal={NOTE_CHECKED_AT: (job.plan or {}).get("checked_at")})
        if op is None:
            return False  # busy now (another operation): tried again at a later step
        entry.update(state=MOVING, operation_id=op.id, ids=ids)
        # recorded with the operation, so the migration never shows fewer moving than are queued
        row.progress = {**row.progress, instance_id: dict(entry)}
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
    verified = (op.journal or {}).get(NOTE_VERIFIED)
    if verified is not None:  # the move compared the cloud with the record itself, in its worker
        problems += [str(difference) for difference in verified]
    else:  # an operation of an older Hearth: compare here
        try:
            problems += runtime.engine(inst.engine).differences(
                spec_of(inst, rules, runtime.settings.public_network), resources_of(inst, rules))
        except EngineError as err:
            problems.append(f"the cloud could not be read to verify it: {err}")
    entry.update(state=MOVED if not problems else FAILED,
                 note="verified: same ids, and the cloud holds what the record says" if not problems
                 else "moved, but " + "; ".join(problems))
