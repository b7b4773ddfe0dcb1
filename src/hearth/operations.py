"""The operation vocabulary, shared by the service layer (which queues operations and plans dry runs) and the
task manager (which runs them): what kinds there are, what each asks the engine for, and what a failure
leaves behind. Declared once here so neither side imports the other.

Per kind (`KINDS`): the task the instance shows while it runs, the label events and faults use, the
desired state it asks the engine for (`operation_spec`: the instance's, with the operation's target), whether
a failure re-reads the cloud into the record, and who owns the instance once it succeeded.

The failure policy (`task_after_failure`) is the one answer to "what state does a failed operation leave the
instance in", whether it failed in its worker (an engine error, a timeout, a crash) or was given up on after
its worker kept dying, so the same kind ends in the same state however it failed:

- provision: BUILDING_ERROR (the instance never worked; delete is the way out);
- delete: ERROR (some of its resources may be gone);
- resize flavor / volume: decided by re-reading the cloud; ERROR when the server is not settled or the volume
  not attached, NONE when they are usable (or the cloud could not be read: unknown is not broken, and the
  drift is shown). Until the re-read answered (a given-up resize is failed first, re-read after) it is ERROR;
- reconcile: as a resize (it may resize the server back, and re-attach the volume);
- access change, adopt, release: NONE. They never touch the server or the volume: a failed access change is
  re-read into the rule rows, a failed adopt is abandoned by the engine, a release only abandons the stack, so
  the database stays usable and the fault says what failed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from hearth.db.models import Event, Instance, Operation, SecurityGroupRule, Task, new_id, utcnow
from hearth.engines.base import InstanceSpec, Resources, RuleSpec


class OperationKind(StrEnum):
    """An operation's kind, as stored in `operations.kind` (and named in plans and the API's operations)."""

    PROVISION = "provision"
    RESIZE_FLAVOR = "resize_flavor"
    RESIZE_VOLUME = "resize_volume"
    APPLY_RULES = "apply_rules"
    DELETE = "delete"
    ADOPT = "adopt"
    RELEASE = "release"
    RESTART = "restart"
    REBUILD = "rebuild"  # a new image (an upgrade is one: the new datastore version's), the data volume kept
    RECONCILE = "reconcile"  # converge the cloud back to the record (drift repair)


# --------------------------------------------------------------------------------------------------
# The desired state an operation asks for.


def spec_of(inst: Instance, rules: list[SecurityGroupRule], public_network: str = "public") -> InstanceSpec:
    """The instance as recorded, as the engines' desired state (without the admin password, which only the
    task manager unseals, for the operations that hand it to the cloud)."""
    return InstanceSpec(
        instance_id=inst.id, name=inst.name, project_id=inst.project_id, flavor_id=inst.flavor_id,
        image_id=inst.image_id or "", volume_size=inst.volume_size, network_id=inst.network_id,
        availability_zone=inst.availability_zone,
        rules=tuple(RuleSpec(r.id, r.protocol, r.from_port, r.to_port, r.cidr, r.cloud_rule_id) for r in rules),
        subnet_id=inst.subnet_id, fixed_ip=inst.fixed_ip, is_public=bool(inst.is_public),
        public_network=public_network, volume_type=inst.volume_type,
    )


def resources_of(inst: Instance, rules: list[SecurityGroupRule]) -> Resources:
    """What Hearth recorded as realised in the cloud (rules only once they have a cloud id)."""
    return Resources(
        server_id=inst.server_id, volume_id=inst.volume_id, secgroup_id=inst.secgroup_id, stack_id=inst.stack_id,
        rules={r.id: RuleSpec(r.id, r.protocol, r.from_port, r.to_port, r.cidr, r.cloud_rule_id)
               for r in rules if r.cloud_rule_id},
        server_status=inst.server_status, stack_status=inst.stack_status,
        extra_ids={str(key): str(value) for key, value in (inst.extra_resource_ids or {}).items()},
    )


def target_rules(params: dict[str, Any]) -> tuple[RuleSpec, ...]:
    """An access change's target rules (its params' `rules`)."""
    return tuple(RuleSpec(r["id"], r["protocol"], int(r["from_port"]), int(r["to_port"]), r["cidr"])
                 for r in params.get("rules", []))


Target = Callable[[InstanceSpec, dict[str, Any]], InstanceSpec]


def _unchanged(spec: InstanceSpec, params: dict[str, Any]) -> InstanceSpec:
    return spec


def _flavor(spec: InstanceSpec, params: dict[str, Any]) -> InstanceSpec:
    return spec.replace(flavor_id=params["flavor_id"])


def _volume(spec: InstanceSpec, params: dict[str, Any]) -> InstanceSpec:
    return spec.replace(volume_size=int(params["volume_size"]))


def _rules(spec: InstanceSpec, params: dict[str, Any]) -> InstanceSpec:
    """An access change: the target rules, and whether the instance is public (when the change says)."""
    return spec.replace(rules=target_rules(params), is_public=bool(params.get("is_public", spec.is_public)))


def _image(spec: InstanceSpec, params: dict[str, Any]) -> InstanceSpec:
    return spec.replace(image_id=params["image_id"])


# --------------------------------------------------------------------------------------------------
# The kinds.


@dataclass(frozen=True)
class KindInfo:
    """Everything Hearth decides by an operation's kind, in one row."""

    task: str  # the Task the instance shows while the operation is queued or running
    label: str  # how events and faults name it ("resize failed: ...")
    target: Target  # the operation's params applied to the instance's desired state
    reread_on_failure: bool  # a failure may have changed the cloud half-way: re-read it into the record
    failed_task: str | None  # the Task a failure leaves; None: decided by the re-read (see task_after_failure)
    owner_after: str | None = None  # the engine owning the instance once it succeeded (the ownership moves)

    @property
    def relocates(self) -> bool:
        """Runs on the engine that moves instances between natives and Heat, not the owning one."""
        return self.owner_after is not None


KINDS: dict[str, KindInfo] = {  # keyed by OperationKind, which a stored str finds
    OperationKind.PROVISION: KindInfo(Task.BUILDING, "create", _unchanged, False, Task.BUILDING_ERROR),
    OperationKind.RESIZE_FLAVOR: KindInfo(Task.RESIZING, "resize", _flavor, True, None),
    OperationKind.RESIZE_VOLUME: KindInfo(Task.RESIZING_VOLUME, "volume resize", _volume, True, None),
    OperationKind.APPLY_RULES: KindInfo(Task.UPDATING_ACCESS, "access update", _rules, True, Task.NONE),
    OperationKind.DELETE: KindInfo(Task.DELETING, "delete", _unchanged, False, Task.ERROR),
    OperationKind.ADOPT: KindInfo(Task.ADOPTING, "adopt", _unchanged, False, Task.NONE, owner_after="orchestrator"),
    OperationKind.RELEASE: KindInfo(Task.RELEASING, "release", _unchanged, False, Task.NONE, owner_after="natives"),
    # A failed restart leaves the server as Nova has it (the status sync and the health check show it); a failed
    # rebuild may have left it without a usable image: ERROR, delete or rebuild again.
    OperationKind.RESTART: KindInfo(Task.RESTARTING, "restart", _unchanged, False, Task.NONE),
    OperationKind.REBUILD: KindInfo(Task.REBUILDING, "rebuild", _image, False, Task.ERROR),
    # A failed reconcile may have changed the cloud half-way (a resize, rules): re-read, as a failed resize does.
    OperationKind.RECONCILE: KindInfo(Task.RECONCILING, "reconcile", _unchanged, True, None),
}

#: The operations after which the database is (re)started: they end when it answers (taskmanager.database).
RESTARTS_DATABASE = frozenset({OperationKind.PROVISION, OperationKind.RESIZE_FLAVOR, OperationKind.RESTART,
                               OperationKind.REBUILD})


def kind_info(kind: str) -> KindInfo | None:
    """The row of a stored kind; None for a kind this version does not know (written by another one)."""
    return KINDS.get(kind)


def label_of(kind: str) -> str:
    """How events and faults name the kind (an unknown one by itself)."""
    found = kind_info(kind)
    return found.label if found else kind


def rereads(kind: str) -> bool:
    """Whether a failure of `kind` re-reads the cloud into the record (reconcile.after_failure)."""
    found = kind_info(kind)
    return found is not None and found.reread_on_failure


def relocates(kind: str) -> bool:
    found = kind_info(kind)
    return found is not None and found.relocates


def operation_spec(kind: str, inst: Instance, rules: list[SecurityGroupRule], params: dict[str, Any],
                   public_network: str = "public") -> InstanceSpec:
    """The desired state an operation asks the engine for: the instance's, with the operation's target
    (shared by the task manager and the dry runs, so a plan is made from exactly what would run)."""
    found = kind_info(kind)
    spec = spec_of(inst, rules, public_network)
    return found.target(spec, params) if found else spec


# --------------------------------------------------------------------------------------------------
# The failure policy.


def task_after_failure(kind: str, usable: bool | None = None) -> str:
    """The task a failed or given-up operation of `kind` leaves its instance in (see the module docstring).

    `usable` is what re-reading the cloud found (for the kinds that re-read): whether the server is settled
    and the volume attached; None when the cloud was not re-read (yet), which counts as broken for a kind
    whose failure may break the server, so a given-up resize is ERROR until its re-read says otherwise.
    An unknown kind (queued by another version of Hearth) is ERROR: nothing is known of what it did."""
    found = kind_info(kind)
    if found is None:
        return Task.ERROR
    if found.failed_task is not None:
        return found.failed_task
    return Task.NONE if usable else Task.ERROR


# --------------------------------------------------------------------------------------------------
# Queueing.


def queue_if_idle(session: Session, instance_id: str, kind: OperationKind, message: str,
                  params: dict[str, Any] | None = None, journal: dict[str, Any] | None = None) -> Operation | None:
    """In the caller's transaction: move the idle instance's task to the kind's (one conditional UPDATE, so
    only one concurrent request can) and queue the operation with an event; None when it is not idle. For
    the task manager's own requests (fleet moves, automatic repairs); the service layer queues users' own."""
    claimed = session.execute(
        update(Instance).where(Instance.id == instance_id, Instance.task == Task.NONE, Instance.deleted_at.is_(None))
        .values(task=KINDS[kind].task, updated_at=utcnow()).execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        return None
    op = Operation(id=new_id(), instance_id=instance_id, kind=kind.value, params=dict(params or {}),
                   journal=dict(journal or {}))
    session.add(op)
    session.add(Event(instance_id=instance_id, operation_id=op.id, message=message))
    return op
