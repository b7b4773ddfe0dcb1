"""Drift detection: does the cloud still hold what Hearth records for each idle instance?

Each instance's owning engine compares its desired state with the cloud (`ResourceEngine.differences`, reads
only, the same check adopt uses): the server's flavor and status, the volume's size and attachment, the
group's rules (missing ones, and extra ones, which are a security matter), the port's membership, and for
stacks the resources behind the stack. What differs is recorded in `instances.drift` (shown by `show`, counted
by the fleet summary) with an event when it appears, changes or clears. A periodic pass
(`drift_check_seconds`) and an on-demand check per instance (`GET /mgmt/instances/{id}/drift`) both use
`check_instance`. An instance an operation works on is never judged: its cloud is meant to differ.

With `drift_repair_rules`, the periodic pass queues a reconcile at once for a drift of the rules alone
(added or deleted in Neutron, a security matter); any other drift waits for an operator's `reconcile`,
since repairing it may resize or restart the database's server.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select, update

from hearth.db.models import Event, Instance, Task
from hearth.engines import resources
from hearth.engines.base import EngineError
from hearth.operations import OperationKind, queue_if_idle, resources_of, spec_of
from hearth.runtime import Runtime

log = logging.getLogger(__name__)


def check_instance(runtime: Runtime, instance_id: str) -> list[str] | None:
    """The instance's differences (empty: none), recorded; None when it was busy or the cloud could not say."""
    with runtime.sessions() as session:
        inst = session.get(Instance, instance_id)
        if inst is None or inst.deleted_at is not None or inst.task != Task.NONE:
            return None
        rules = list(inst.rules)
    try:
        engine = runtime.owning_engine(inst.id, inst.engine)
        found = engine.differences(spec_of(inst, rules, runtime.settings.public_network), resources_of(inst, rules))
    except EngineError as err:  # the cloud could not be read (or the engine is not allowed): unknown, not drift
        log.info("drift check of instance %s skipped: %s", inst.id, err)
        return None
    _record(runtime, inst, "; ".join(found) or None)
    return found


def _rules_only(found: list[str]) -> bool:
    """Every difference concerns the group's rules (decided by the difference's kind, never its text)."""
    return all(getattr(difference, "kind", None) == resources.RULES_KIND.key for difference in found)


def _repair(runtime: Runtime, instance_id: str, found: list[str]) -> bool:
    """Queue the automatic reconcile of a rules-only drift; False when the instance is busy meanwhile."""
    with runtime.sessions.begin() as session:
        op = queue_if_idle(session, instance_id, OperationKind.RECONCILE,
                           "reconcile queued automatically (drift_repair_rules): " + "; ".join(found))
    return op is not None


def _record(runtime: Runtime, inst: Instance, drift: str | None) -> None:
    if drift == inst.drift:
        return
    with runtime.sessions.begin() as session:
        done = session.execute(
            update(Instance).where(Instance.id == inst.id, Instance.task == Task.NONE)
            .values(drift=drift).execution_options(synchronize_session=False)).rowcount
        if done != 1:
            return  # an operation took the instance meanwhile: it decides what the cloud holds
        message = (f"drift: the cloud differs from the record: {drift}" if drift
                   else "drift cleared: the cloud holds what Hearth records")
        session.add(Event(instance_id=inst.id, level="warning" if drift else "info", message=message))


@dataclass
class Pass:
    """What one periodic pass did."""

    checked: int = 0
    repairs: int = 0  # reconciles queued (drift_repair_rules): the task manager's workers should wake


def check_once(runtime: Runtime) -> Pass:
    """One pass over every idle instance."""
    with runtime.sessions() as session:
        ids = list(session.scalars(select(Instance.id).where(Instance.deleted_at.is_(None),
                                                             Instance.task == Task.NONE)))
    done = Pass()
    for instance_id in ids:
        found = check_instance(runtime, instance_id)
        if found is None:
            continue
        done.checked += 1
        if found and runtime.settings.drift_repair_rules and _rules_only(found) and _repair(runtime, instance_id,
                                                                                             found):
            done.repairs += 1
    return done
