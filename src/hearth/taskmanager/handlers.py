"""One handler per operation kind: build the engine's inputs from the database, call the engine, write
the outcome back.

Inputs: `InstanceSpec` (desired state: the instance row, its rules, and the operation's target) and
`Resources` (what Hearth recorded as realised). Outcome on success: cloud ids, server status, the new
flavor/size/rules, task NONE, fault and drift cleared.

Failures go by the error's type, never its text:
- `TransientError` (the cloud could not do it now): the operation goes back to the queue with a backoff
  (`retry_at`; exponential with jitter, Retry-After honoured) and an event saying what failed and when it is
  retried; the next claim resumes it from its journal. Only the operation's timeout, counted from its first
  claim, turns a transient fault into a failure.
- any other `EngineError` (terminal), or a crash: the fault (the engine's text) is set and the operation
  fails. A resize or access change first re-reads the cloud into the record (reconcile.after_failure). The
  instance's task is then `operations.task_after_failure`'s, the policy an operation given up on after its
  worker kept dying also follows (worker.recover_stale, then `reconcile_abandoned`).
Final writes are fenced by the claim, so a worker that was judged dead cannot overwrite a resumer.

The engine is the one that owns the instance (`instances.engine`), as long as the `engine` setting still
allows it (otherwise the operation fails with the way out). adopt and release run on the migration
engine; on success they move the instance's ownership (orchestrator + stack id, or natives and no stack).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session, lazyload

from hearth import management, metrics
from hearth.db.models import (
    Event,
    Instance,
    OperatingStatus,
    Operation,
    OperationState,
    SecurityGroupRule,
    Task,
    utcnow,
)
from hearth.engines import common, resources
from hearth.engines.base import (
    PROVISION_CLEAN,
    EngineError,
    InstanceSpec,
    NotConfigured,
    Relocation,
    ResourceEngine,
    Resources,
    TransientError,
)
from hearth.operations import (
    RESTARTS_DATABASE,
    OperationKind,
    kind_info,
    label_of,
    operation_spec,
    relocates,
    rereads,
    resources_of,
    spec_of,
    task_after_failure,
)
from hearth.request_ids import reset_request_id, use_request_id
from hearth.runtime import Runtime
from hearth.taskmanager import database, reconcile
from hearth.taskmanager.context import ClaimedOperation, OperationContext, Superseded, fenced_update

log = logging.getLogger(__name__)

RESOURCE_FIELDS = ("server_id", "volume_id", "secgroup_id", "stack_id")


@dataclass
class Job:
    """What a handler needs: the operation, the instance as loaded, the engine and its inputs."""

    op: ClaimedOperation
    inst: Instance
    engine: ResourceEngine
    spec: InstanceSpec
    current: Resources
    ctx: OperationContext


Runner = Callable[[Job], Resources | None]


def _provision(job: Job) -> Resources | None:
    return job.engine.provision(job.spec, job.ctx)


def _resize_flavor(job: Job) -> Resources | None:
    return job.engine.resize_flavor(job.spec, job.current, job.ctx)


def _resize_volume(job: Job) -> Resources | None:
    return job.engine.resize_volume(job.spec, job.current, job.ctx)


def _apply_rules(job: Job) -> Resources | None:
    return job.engine.apply_rules(job.spec, job.current, job.ctx)


def _restart(job: Job) -> Resources | None:
    return job.engine.restart(job.spec, job.current, job.ctx)


def _rebuild(job: Job) -> Resources | None:
    return job.engine.rebuild(job.spec, job.current, job.ctx)


def _reconcile(job: Job) -> Resources | None:
    return job.engine.reconcile(job.spec, job.current, job.ctx)


def _delete(job: Job) -> Resources | None:
    job.engine.delete(job.spec, job.current, job.ctx)
    return None


def _relocation(job: Job) -> Relocation:
    relocation = job.engine.relocation()
    if relocation is None:
        raise EngineError(f"{job.op.kind} needs an engine that moves instances between natives and Heat "
                          "(engine = migration)")
    return relocation


def _adopt(job: Job) -> Resources | None:
    return _relocation(job).adopt(job.spec, job.current, job.ctx)


def _release(job: Job) -> Resources | None:
    return _relocation(job).release(job.spec, job.current, job.ctx)


RUNNERS: dict[str, Runner] = {
    OperationKind.PROVISION: _provision,
    OperationKind.RESIZE_FLAVOR: _resize_flavor,
    OperationKind.RESIZE_VOLUME: _resize_volume,
    OperationKind.APPLY_RULES: _apply_rules,
    OperationKind.DELETE: _delete,
    OperationKind.ADOPT: _adopt,
    OperationKind.RELEASE: _release,
    OperationKind.RESTART: _restart,
    OperationKind.REBUILD: _rebuild,
    OperationKind.RECONCILE: _reconcile,
}


def execute(runtime: Runtime, op: ClaimedOperation, ctx: OperationContext) -> None:
    """Run one claimed operation to its end (succeeded, failed, or requeued to retry a transient fault).
    Raises only `Superseded` and database errors (the operation then stays `running` and is resumed once its
    heartbeat is stale)."""
    label = label_of(op.kind)
    with runtime.sessions.begin() as session:  # reads the instance and logs the start in one transaction
        # A delete needs no rule rows (engines delete the whole group): do not load them.
        inst = session.get(Instance, op.instance_id,
                           options=[lazyload(Instance.rules)] if op.kind == OperationKind.DELETE else None)
        if inst is None:
            raise EngineError(f"instance {op.instance_id} of operation {op.id} no longer exists")
        rules = [] if op.kind == OperationKind.DELETE else list(inst.rules)
        if op.kind == OperationKind.DELETE and _provision_was_clean(session, inst.id):
            ctx.journal[PROVISION_CLEAN] = True  # derived, not recorded: a resumed delete derives it again
        if op.retries:
            ctx.event(f"{label} resumed after a transient cloud fault (attempt {op.attempts})", session=session)
        else:
            ctx.event(f"{label} started" + (f" (attempt {op.attempts})" if op.attempts > 1 else ""),
                      session=session)
    runner = RUNNERS.get(op.kind)
    deadline = _deadline(runtime, op)
    tokens = (common.operation_deadline.set(deadline), common.retry_reporter.set(_reporter(ctx)))
    counted = _Counted(op.kind, "migration" if relocates(op.kind) else inst.engine)
    request = use_request_id(op.request_id)  # the cloud calls made for it carry the API request's id
    try:
        _run(runtime, op, ctx, inst, rules, runner, deadline, label, counted)
    finally:
        common.operation_deadline.reset(tokens[0])
        common.retry_reporter.reset(tokens[1])
        reset_request_id(request)
        counted.done()


@dataclass
class _Counted:
    """One claim of an operation, as the metrics count it (hearth.metrics): started now, ended by outcome."""

    kind: str
    engine: str
    outcome: str | None = None  # succeeded, failed, requeued; None: superseded or crashed the worker

    def __post_init__(self) -> None:
        self.started = time.monotonic()
        metrics.count(metrics.OPERATIONS_STARTED, kind=self.kind, engine=self.engine)

    def done(self) -> None:
        if self.outcome is None:
            return
        labels = {"kind": self.kind, "engine": self.engine, "outcome": self.outcome}
        metrics.count(metrics.OPERATIONS_FINISHED, **labels)
        metrics.observe(metrics.OPERATION_SECONDS, time.monotonic() - self.started, **labels)


def _run(runtime: Runtime, op: ClaimedOperation, ctx: OperationContext, inst: Instance,
         rules: list[SecurityGroupRule], runner: Runner | None, deadline: float, label: str,
         counted: _Counted) -> None:
    try:
        if runner is None:
            raise EngineError(f"unknown operation kind {op.kind!r}")
        engine = runtime.relocation()[0] if relocates(op.kind) else runtime.owning_engine(inst.id, inst.engine)
        spec = operation_spec(op.kind, inst, rules, op.params, runtime.settings.public_network)
        if inst.admin_password and op.kind != OperationKind.DELETE:
            password = runtime.secrets.open(inst.admin_password)
            spec = spec.replace(admin_password=password,
                                user_data=management.boot_user_data(runtime.settings, inst, rules, password))
        job = Job(op, inst, engine, spec, resources_of(inst, rules), ctx)
        result = runner(job)
        settled = _settle_database(runtime, job, result) if op.kind in RESTARTS_DATABASE else None
        if op.kind == OperationKind.APPLY_RULES:
            database.follow_access(runtime, inst, op.params, ctx.event)
    except Superseded:
        raise
    except (TransientError, NotConfigured) as err:
        delay = common.backoff_delay(op.retries + 1, runtime.settings.retry_initial_seconds,
                                     runtime.settings.retry_max_seconds, getattr(err, "retry_after", None))
        if time.monotonic() + delay < deadline:
            _requeue(runtime, op, ctx, err, delay)
            counted.outcome = "requeued"
            return
        timeout = runtime.settings.operation_timeout_seconds
        _fail(runtime, op, inst, rules, ctx, f"{label} failed: the cloud kept failing for the operation's "
                                            f"{timeout:g} s timeout; last: {err}")
        counted.outcome = "failed"
        return
    except EngineError as err:
        _fail(runtime, op, inst, rules, ctx, f"{label} failed: {err}")
        counted.outcome = "failed"
        return
    except Exception as exc:  # a bug or an unexpected client error: still never leave the instance stuck
        log.exception("operation %s (%s) crashed", op.id, op.kind)
        _fail(runtime, op, inst, rules, ctx, f"{label} failed: internal error ({exc.__class__.__name__}: "
                                            f"{common.scrub(str(exc))})")
        counted.outcome = "failed"
        return
    _finish_succeeded(runtime, op, result, label, settled)
    counted.outcome = "succeeded"


def _settle_database(runtime: Runtime, job: Job, result: Resources | None) -> database.Settled | None:
    """The operation restarted the server: it ends when the database answers (see taskmanager.database)."""
    current = result or job.current

    def restart() -> Resources:
        return job.engine.restart(job.spec, current, job.ctx)

    return database.settle(runtime, job.inst, job.op.kind, result, restart, job.ctx.step, job.ctx.event)


def reconcile_abandoned(runtime: Runtime, op: ClaimedOperation) -> None:
    """An operation given up on (its worker kept dying) may have changed the cloud half-way: for the kinds
    that re-read after a failure, re-read the cloud into the record as a failed one does, then settle the
    instance's task by the re-read (worker.recover_stale wrote the policy's answer for "not read yet")."""
    if not rereads(op.kind):
        return
    with runtime.sessions() as session:
        inst = session.get(Instance, op.instance_id)
        if inst is None or inst.deleted_at is not None:
            return
        rules = list(inst.rules)
    usable = reconcile.after_failure(runtime, op, inst, spec_of(inst, rules), resources_of(inst, rules))
    interim, settled = task_after_failure(op.kind), task_after_failure(op.kind, usable)
    if settled == interim:
        return
    with runtime.sessions.begin() as session:
        fresh = session.get(Instance, op.instance_id)
        if fresh is not None and fresh.task == interim:  # not moved on since (e.g. a delete from ERROR)
            fresh.task = settled


def _deadline(runtime: Runtime, op: ClaimedOperation) -> float:
    """The operation's deadline on the monotonic clock: `operation_timeout_seconds` after its first claim,
    however many retries and resumptions came between."""
    timeout = runtime.settings.operation_timeout_seconds
    if op.started_at is None:
        return time.monotonic() + timeout
    spent = (utcnow() - op.started_at).total_seconds()
    return time.monotonic() + timeout - max(spent, 0.0)


def _reporter(ctx: OperationContext) -> common.RetryReporter:
    """Retries inside the engine become warning events (engines call it from several threads at once)."""
    lock = threading.Lock()

    def report(err: TransientError, delay: float, attempt: int) -> None:
        with lock:
            ctx.event(common.retry_message(err, delay, attempt), "warning")

    return report


def _requeue(runtime: Runtime, op: ClaimedOperation, ctx: OperationContext, err: EngineError, delay: float) -> None:
    """Give the operation back to the queue, not to be claimed for `delay` seconds; the next claim resumes it
    from its journal. The instance keeps its task (still being worked on) and the event says why and when."""
    metrics.count(metrics.RETRIES, service=getattr(err, "service", None) or "hearth",
                  cause=getattr(err, "cause", None) or "not configured")
    if isinstance(err, TransientError):
        message = common.retry_message(err, delay, op.retries + 2)
    else:
        message = f"{err}; retrying in {delay:.3g} s (attempt {op.retries + 2})"
    now = utcnow()
    with runtime.sessions.begin() as session:
        if not fenced_update(session, op, state=OperationState.QUEUED, worker=None, journal=dict(ctx.journal),
                             retry_at=now + timedelta(seconds=delay), retries=op.retries + 1,
                             step=f"waiting to retry ({getattr(err, 'cause', 'not ready')})"[:64]):
            raise Superseded(f"operation {op.id} was taken over before it could be requeued")
        session.add(Event(instance_id=op.instance_id, operation_id=op.id, level="warning", message=message,
                          request_id=op.request_id))
    log.info("operation %s (%s) requeued: %s", op.id, op.kind, message)


def _fail(runtime: Runtime, op: ClaimedOperation, inst: Instance, rules: list[SecurityGroupRule],
          ctx: OperationContext, message: str) -> None:
    """Fail the operation; for a change to an existing instance, first make the record equal the cloud."""
    usable = None
    if rereads(op.kind):
        usable = reconcile.after_failure(runtime, op, inst, spec_of(inst, rules), resources_of(inst, rules))
    finish_failed(runtime, op, message, usable=usable, journal=ctx.journal)


def _provision_was_clean(session: Session, instance_id: str) -> bool:
    """The instance's provision succeeded on its first attempt (see engines.base.PROVISION_CLEAN)."""
    found = session.execute(
        select(Operation.state, Operation.attempts)
        .where(Operation.instance_id == instance_id, Operation.kind == OperationKind.PROVISION.value)
    ).all()
    return len(found) == 1 and found[0].state == OperationState.SUCCEEDED and found[0].attempts == 1


def _store_resources(inst: Instance, result: Resources, rules: list[SecurityGroupRule]) -> None:
    for name in RESOURCE_FIELDS:
        value = getattr(result, name)
        if value:
            setattr(inst, name, value)
    inst.server_status = result.server_status or inst.server_status
    inst.stack_status = result.stack_status or inst.stack_status
    if result.extra_ids:  # the kinds without a column of their own (an engine may not echo them back)
        inst.extra_resource_ids = {**(inst.extra_resource_ids or {}), **result.extra_ids}
        if "floating_ip" not in result.extra_ids and not inst.is_public:  # made private: the IP is gone
            inst.extra_resource_ids.pop("floating_ip", None)
    if result.addresses is not None:
        inst.addresses = result.addresses
    if result.volume_size is not None:
        inst.volume_size = result.volume_size
    for rule in rules:
        realised = result.rules.get(rule.id)
        if realised is not None:
            rule.cloud_rule_id = realised.cloud_id


def _finish_succeeded(runtime: Runtime, op: ClaimedOperation, result: Resources | None, label: str,
                      settled: database.Settled | None = None) -> None:
    now = utcnow()
    succeeded = {"instance_id": op.instance_id, "operation_id": op.id, "message": f"{label} succeeded",
                 "request_id": op.request_id}
    if op.kind == OperationKind.DELETE:  # a fixed set of columns: three statements, no ORM unit of work
        with runtime.db_engine.begin() as conn:
            if not fenced_update(conn, op, state=OperationState.SUCCEEDED, finished_at=now, error=None,
                                 heartbeat_at=now):
                raise Superseded(f"operation {op.id} was taken over before it could finish")
            found = conn.execute(update(Instance).where(Instance.id == op.instance_id).values(
                deleted_at=now, server_status="DELETED", task=Task.NONE, fault=None, fault_at=None)).rowcount
            if found != 1:
                raise RuntimeError(f"instance {op.instance_id} of operation {op.id} vanished")
            conn.execute(insert(Event).values(**succeeded))
        return
    with runtime.sessions.begin() as session:
        if not fenced_update(session, op, state=OperationState.SUCCEEDED, finished_at=now, error=None,
                             heartbeat_at=now):
            raise Superseded(f"operation {op.id} was taken over before it could finish")
        inst = session.get(Instance, op.instance_id)
        if inst is None:
            raise RuntimeError(f"instance {op.instance_id} of operation {op.id} vanished")
        if op.kind == OperationKind.RESIZE_FLAVOR:
            inst.flavor_id = op.params["flavor_id"]
        elif op.kind == OperationKind.RESIZE_VOLUME:
            inst.volume_size = int(op.params["volume_size"])
        elif op.kind == OperationKind.APPLY_RULES:
            _sync_rules(session, inst, op)
            if "is_public" in op.params:
                inst.is_public = bool(op.params["is_public"])
        elif op.kind == OperationKind.REBUILD:
            inst.image_id = op.params["image_id"]
            inst.datastore_version = op.params.get("datastore_version") or inst.datastore_version
        if result is not None:
            _store_resources(inst, result, list(inst.rules))
        if settled is not None:
            inst.operating_status = settled.operating_status
            inst.service_status_updated = now
            inst.restart_required = settled.restart_required
            inst.volume_used_bytes = settled.used_bytes
            if settled.restart_required:
                inst.operating_status = OperatingStatus.RESTART_REQUIRED
            if settled.bootstrapped:
                inst.bootstrap = None  # the passwords it held are now only the database's
        kind = kind_info(op.kind)
        if kind is not None and kind.owner_after is not None:
            inst.engine = kind.owner_after
            inst.stack_id = result.stack_id if result is not None else None
            inst.stack_status = result.stack_status if result is not None else None
        inst.task = Task.NONE
        inst.fault = None
        inst.fault_at = None
        inst.drift = None
        session.add(Event(**succeeded))


def _sync_rules(session: Session, inst: Instance, op: ClaimedOperation) -> None:
    """Make the rule rows match the operation's target (removed rows go, changed CIDRs are written)."""
    target = {r["id"]: r for r in op.params.get("rules", [])}
    for rule in list(inst.rules):
        wanted = target.get(rule.id)
        if wanted is None:
            inst.rules.remove(rule)
            session.delete(rule)
        elif rule.cidr != wanted["cidr"]:
            rule.cidr = wanted["cidr"]


def finish_failed(runtime: Runtime, op: ClaimedOperation, message: str, usable: bool | None,
                  journal: dict[str, Any] | None = None, fenced: bool = True) -> None:
    """Fail the operation and show why on the instance (`usable`: what the re-read found, if any)."""
    now = utcnow()
    with runtime.sessions.begin() as session:
        values = {"state": OperationState.FAILED, "finished_at": now, "error": message}
        if fenced and not fenced_update(session, op, **values):
            raise Superseded(f"operation {op.id} was taken over before it could fail")
        inst = session.get(Instance, op.instance_id)
        if inst is None:
            return
        fail_instance(session, inst, op, message, usable, journal or {})


def fail_instance(session: Session, inst: Instance, op: ClaimedOperation, message: str, usable: bool | None,
                  journal: dict[str, Any]) -> None:
    """The instance after its operation failed, however it failed: the policy's task, the fault and its
    event, the resources the engine made recorded (so a delete removes them), pending rules dropped."""
    now = utcnow()
    inst.task = task_after_failure(op.kind, usable)
    for name in RESOURCE_FIELDS:  # whatever the engine made is recorded, so a delete can remove it
        value = journal.get(name)
        if isinstance(value, str) and value and not getattr(inst, name):
            setattr(inst, name, value)
    extra = resources.with_ids(Resources(), resources.ids_of(Resources(), journal)).extra_ids
    if extra:  # and the kinds without a column of their own
        inst.extra_resource_ids = {**(inst.extra_resource_ids or {}), **extra}
    if op.kind == OperationKind.APPLY_RULES:
        added = op.params.get("added", [])
        if added:
            session.execute(delete(SecurityGroupRule).where(
                SecurityGroupRule.id.in_(added), SecurityGroupRule.cloud_rule_id.is_(None)))
    inst.fault = message
    inst.fault_at = now
    session.add(Event(instance_id=inst.id, operation_id=op.id, level="error", message=message,
                      request_id=op.request_id))
