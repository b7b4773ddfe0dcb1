"""After a change fails for good: re-read the cloud and make the record say what the cloud holds.

A resize or an access change can fail half-way (the cloud did part of it, or finished it after Hearth
stopped looking). Whatever happened, the record must not lie, above all about access: a CIDR the cloud lets
in must be listed by the API. So after a terminal failure the handler calls `after_failure`, which reads the
instance through its owning engine (`describe`) and, in one transaction:

- resize flavor: records the server's flavor if the cloud finished the resize (the change completed), keeps
  the old one if the server still has it (rolled back), and marks drift when it has neither;
- resize volume: records the volume's size (volumes only grow, so what Cinder reports is the truth);
- access change: makes the rule rows exactly the group's ingress rules: rules the cloud holds are recorded
  (under the operation's rule ids where the shape matches), rows the cloud does not hold are dropped;
- when the cloud cannot be read, the instance is marked drifted with the reason (`instances.drift`), shown by
  `show` and in the events, until a later operation succeeds; it is not put in ERROR for what is unknown.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy.orm import Session

from hearth.db.models import Event, Instance, SecurityGroupRule, new_id
from hearth.engines import common
from hearth.engines.base import CloudView, EngineError, InstanceSpec, Resources, RuleSpec
from hearth.operations import OperationKind
from hearth.runtime import Runtime
from hearth.taskmanager.context import ClaimedOperation

log = logging.getLogger(__name__)

READ_BUDGET = 30.0  # seconds the re-read may take (its reads retry transient faults within it)
SETTLED_SERVER = ("ACTIVE", "SHUTOFF")


def after_failure(runtime: Runtime, op: ClaimedOperation, inst: Instance, spec: InstanceSpec,
                  current: Resources) -> bool:
    """Make the record of `inst` equal the cloud after `op` failed (`spec` and `current`: the instance as
    recorded, for its engine's `describe`). Returns whether the instance is left usable (its server settled,
    its volume attached), which operations.task_after_failure turns into the instance's task."""
    token = common.operation_deadline.set(time.monotonic() + READ_BUDGET)
    try:
        view = runtime.engine(inst.engine).describe(spec, current)
    except (EngineError, *common.CLOUD_ERRORS) as exc:
        drift = (f"the cloud could not be read after the failed {op.kind.replace('_', ' ')} "
                 f"({common.error_text(exc)}); what it holds may differ from the record")
        with runtime.sessions.begin() as session:
            _mark_drift(session, inst.id, op.id, drift)
        # Unknown is not broken: the instance stays usable with its drift shown (the status sync marks it ERROR
        # if its server turns out to be in ERROR), rather than leaving the user nothing but delete.
        return True
    finally:
        common.operation_deadline.reset(token)
    with runtime.sessions.begin() as session:
        fresh = session.get(Instance, inst.id)
        if fresh is None:
            return True
        if view.server:
            fresh.server_status = view.server.get("status") or fresh.server_status
        if op.kind == OperationKind.RESIZE_FLAVOR:
            _flavor(session, fresh, op, view)
        elif op.kind == OperationKind.RESIZE_VOLUME:
            _volume(session, fresh, op, view)
        elif op.kind == OperationKind.APPLY_RULES:
            _rules(session, fresh, op, view)
    if op.kind == OperationKind.APPLY_RULES:
        return True  # an access change touches neither the server nor the volume
    server_ok = bool(view.server) and view.server.get("status") in SETTLED_SERVER
    volume_ok = not inst.volume_id or (bool(view.volume) and view.volume.get("status") == "in-use")
    return server_ok and volume_ok


def _note(session: Session, inst: Instance, op: ClaimedOperation, message: str, level: str = "warning") -> None:
    session.add(Event(instance_id=inst.id, operation_id=op.id, level=level, message=message,
                      request_id=op.request_id))


def _mark_drift(session: Session, instance_id: str, operation_id: str, drift: str) -> None:
    inst = session.get(Instance, instance_id)
    if inst is None:
        return
    inst.drift = drift
    session.add(Event(instance_id=instance_id, operation_id=operation_id, level="error", message=f"drift: {drift}"))


def _flavor(session: Session, inst: Instance, op: ClaimedOperation, view: CloudView) -> None:
    target = str(op.params["flavor_id"])
    actual = (view.server or {}).get("flavor_id")
    if actual == target:
        inst.flavor_id = target
        inst.drift = None
        _note(session, inst, op, f"the cloud completed the resize after all: flavor {target} recorded")
    elif actual == inst.flavor_id:
        inst.drift = None
        _note(session, inst, op, f"resize rolled back: the server still has flavor {actual}", "info")
    else:
        inst.drift = (f"the server has flavor {actual or 'unknown'}, neither the recorded {inst.flavor_id} nor the "
                      f"requested {target}" if view.server else "the instance's server is missing")
        _note(session, inst, op, f"drift: {inst.drift}", "error")


def _volume(session: Session, inst: Instance, op: ClaimedOperation, view: CloudView) -> None:
    if not view.volume:
        inst.drift = "the instance's data volume is missing"
        _note(session, inst, op, f"drift: {inst.drift}", "error")
        return
    size = int(view.volume.get("size") or 0)
    inst.drift = None
    if size != inst.volume_size:
        _note(session, inst, op, f"the volume is {size} GB in the cloud: recorded {size} GB "
                                 f"(was {inst.volume_size} GB, {op.params['volume_size']} GB requested)")
        inst.volume_size = size


def _shape(protocol: str | None, from_port: int | None, to_port: int | None, cidr: str | None) -> tuple[Any, ...]:
    return common.rule_shape(RuleSpec("", protocol or "", from_port if from_port is not None else -1,
                                      to_port if to_port is not None else -1, cidr or ""))


def _rules(session: Session, inst: Instance, op: ClaimedOperation, view: CloudView) -> None:
    """The rule rows become exactly the group's ingress rules (see the module docstring)."""
    if view.security_group is None:
        live: list[dict[str, Any]] = []
    else:
        live = list(view.security_group.get("rules") or [])
    rows = list(inst.rules)
    by_cloud_id = {row.cloud_rule_id: row for row in rows if row.cloud_rule_id}
    wanted = {r["id"]: r for r in op.params.get("rules", [])}
    kept: set[str] = set()
    for rule in live:
        shape = _shape(rule.get("protocol"), rule.get("from_port"), rule.get("to_port"), rule.get("cidr"))
        row = by_cloud_id.get(rule["id"])
        if row is None or row.id in kept:
            row = next((r for r in rows if r.id not in kept and not r.cloud_rule_id
                        and _shape(r.protocol, r.from_port, r.to_port, r.cidr) == shape), None)
        if row is None:
            rule_id = next((i for i, w in wanted.items() if i not in kept and
                            _shape(w["protocol"], w["from_port"], w["to_port"], w["cidr"]) == shape), new_id())
            row = SecurityGroupRule(id=rule_id, instance_id=inst.id, protocol=rule.get("protocol") or "any",
                                    from_port=_int(rule.get("from_port")), to_port=_int(rule.get("to_port")),
                                    cidr=common.canonical_cidr(rule.get("cidr"), "IPv6" if ":" in str(rule.get("cidr"))
                                                               else "IPv4"))
            session.add(row)
            rows.append(row)
        row.cloud_rule_id = rule["id"]
        cidr = common.canonical_cidr(rule.get("cidr"), "IPv6" if ":" in str(rule.get("cidr") or "") else "IPv4")
        if row.cidr != cidr:
            row.cidr = cidr
        kept.add(row.id)
    dropped = [row for row in rows if row.id not in kept]
    for row in dropped:
        if row in inst.rules:
            inst.rules.remove(row)
        if row in session:
            session.delete(row)
    inst.drift = None
    shown = ", ".join(sorted(r["cidr"] or "any" for r in live)) or "none"
    _note(session, inst, op, f"access re-read from the cloud after the failure: the group allows {shown}")


def _int(value: Any) -> int:
    return int(value) if value is not None else -1
