"""The service layer: one function per user command.

Each command validates its input against the cloud and the settings, then records the change in ONE
transaction: the desired state plus a queued `Operation` row. Two concurrent commands on one instance
cannot both start an operation: the instance's `task` moves away from NONE through a conditional UPDATE
whose row count decides the winner. The task manager is woken after the commit.

Desired-state rules: an instance's flavor and volume size change only when the operation succeeds (the
operation's params carry the target); new access rules are inserted at once with `cloud_rule_id` NULL
(pending) and removed again if the operation fails; removed or re-pointed rules change on success.

Default access (no `access.allowed_cidrs` on create): the datastore port is opened to 0.0.0.0/0, as
Trove does. An explicit empty list means no access rule at all.

Engines: a new instance is owned by `runtime.engine_for_new_instance()`; every later command checks
the instance's owner is still allowed by the `engine` setting (409 naming the way out otherwise).
`adopt_instance` / `release_instance` move an instance between natives and a Heat stack (engine =
migration only).

Commands are values: every mutating command function validates its input (raising any refusal) and returns
a `Command`, whose `plan(runtime)` is the dry run (a `Plan`: the owning engine's `plan`, writing nothing to
the database or the cloud) and whose `record(runtime)` does it. A dry run is the same command planned. The
operation vocabulary (kinds, the task each shows, the spec each asks for) is `hearth.operations`'.

Engine errors become statuses by their type, never their text (`_engine_failure`): EngineNotAllowed 409,
QuotaExceeded 413, TransientError or NotConfigured 503 (with Retry-After), any other EngineError 400.
Before a command is accepted, the cloud's quotas must hold what it adds (create: server, volume, security
group, its rules and port; resizes: the growth; access changes: the new rules), so a change is refused
with 413 at once rather than by the cloud halfway through its operation. Input never reaches the database
or the cloud with control characters, beyond its bounds (MAX_NAME, MAX_VOLUME_GB, MAX_ALLOWED_CIDRS), or
echoed raw in a message (`shown`).
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.orm import Session

from hearth.config import Datastore, DatastoreVersion
from hearth.db.models import (
    Event,
    Instance,
    OperatingStatus,
    Operation,
    OperationState,
    SecurityGroupRule,
    Task,
    new_id,
    utcnow,
)
from hearth.engines.base import (
    EngineError,
    InstanceSpec,
    NotConfigured,
    PlannedStep,
    QuotaExceeded,
    Resources,
    RuleSpec,
    TransientError,
)
from hearth.management import is_managed, seal_bootstrap
from hearth.operations import KINDS, OperationKind, operation_spec, relocates, resources_of
from hearth.request_ids import current_request_id
from hearth.runtime import EngineNotAllowed, Runtime
from hearth.views import datastore_id, datastore_version_id, instance_status, security_group_id

DEFAULT_CIDR = "0.0.0.0/0"
FLAVOR_CACHE_SECONDS = 30.0
DELETABLE = (Task.NONE, Task.ERROR, Task.BUILDING_ERROR)

# Input bounds (each a 400 naming the bound).
MAX_NAME = 255  # Trove's limit, and the instances.name column
MAX_VOLUME_GB = 2**31 - 1  # a 32-bit integer: Cinder's volumes.size column, and Hearth's
# At most this many allowed CIDRs per instance, checked before any is parsed. Neutron's default
# security_group_rule quota is 500 per project, so in a cloud with default quotas the project's rule quota
# (checked on create and on every access change, 413) is what binds; this ceiling bounds the work for clouds
# with raised or unlimited quotas (and the rule count of one group, which Neutron and OVS pay for per packet).
MAX_ALLOWED_CIDRS = 1000
DEFAULT_RETRY_AFTER = 5.0  # seconds a 503 asks clients to wait when the cloud gave no Retry-After of its own
# Characters no name, id or CIDR has a use for: C0 and C1 controls (PostgreSQL refuses NUL in text outright)
# and lone surrogates (not encodable as UTF-8: neither database nor JSON encoder takes them).
UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


# --------------------------------------------------------------------------------------------------
# Errors: what the user did wrong (or what is not possible now), with the HTTP status the API uses.


class ServiceError(Exception):
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(ServiceError):
    status = 400


class Forbidden(ServiceError):
    status = 403


class NotFound(ServiceError):
    status = 404


class Conflict(ServiceError):
    status = 409


class OverLimit(ServiceError):
    status = 413


class NotReady(ServiceError):
    status = 422


class Unavailable(ServiceError):
    """The cloud (or a setting that depends on it) cannot answer now; nothing was changed. The API adds
    `Retry-After: retry_after` (the cloud's own hint when it gave one)."""

    status = 503

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = DEFAULT_RETRY_AFTER if retry_after is None else max(retry_after, 0.0)


# --------------------------------------------------------------------------------------------------
# Flavors: read from the cloud, cached briefly (every create and flavor resize needs the list).


@dataclass(frozen=True)
class Flavor:
    id: str
    name: str
    ram: int
    vcpus: int
    disk: int
    ephemeral: int = 0


_flavor_cache: dict[str, tuple[float, list[Flavor]]] = {}
_flavor_lock = threading.Lock()


def forget_flavors() -> None:
    """Drop the flavor lists read so far (the cloud behind them was replaced: tests give each test its own)."""
    with _flavor_lock:
        _flavor_cache.clear()


def _cloud_key(runtime: Runtime) -> str:
    return f"{runtime.connections.cloud}|{runtime.connections.clouds_yaml}"


def list_flavors(runtime: Runtime, refresh: bool = False) -> list[Flavor]:
    key = _cloud_key(runtime)
    now = time.monotonic()
    with _flavor_lock:
        cached = _flavor_cache.get(key)
    if cached and not refresh and cached[0] > now:
        return cached[1]
    try:
        conn = runtime.connections.get()
        found = [
            Flavor(id=str(f.id), name=f.name, ram=int(f.ram or 0), vcpus=int(f.vcpus or 0), disk=int(f.disk or 0),
                   ephemeral=int(getattr(f, "ephemeral", 0) or 0))
            for f in conn.compute.flavors(details=True)
        ]
    except Exception as exc:  # the cloud is unreachable or refused us: not the user's fault
        from hearth.engines import common

        known = isinstance(exc, common.CLOUD_ERRORS)
        raise Unavailable(f"Could not list flavors from the cloud "
                          f"({common.error_text(exc) if known else exc.__class__.__name__}); retry later.",
                          retry_after=common.retry_after_of(exc) if known else None) from None
    with _flavor_lock:
        _flavor_cache[key] = (now + FLAVOR_CACHE_SECONDS, found)
    return found


def get_flavor(runtime: Runtime, ref: str | int) -> Flavor:
    """A flavor by id (or href, as Trove accepts); 404 in Trove's words when the cloud has none."""
    flavor_id = str(ref).rstrip("/").rsplit("/", 1)[-1]
    for refresh in (False, True):
        found = next((f for f in list_flavors(runtime, refresh) if f.id == flavor_id), None)
        if found is not None:
            return found
    raise NotFound(f"Flavor {shown(flavor_id)} could not be found.")


# --------------------------------------------------------------------------------------------------
# Datastores: from the settings, found by name or by their stable ids (see views).

def find_datastore(runtime: Runtime, ref: str) -> Datastore:
    for ds in runtime.settings.datastores:
        if ref in (ds.name, datastore_id(ds.name)):
            return ds
    raise NotFound(f"Datastore '{shown(ref)}' cannot be found.")


def find_version(ds: Datastore, ref: str | None) -> DatastoreVersion:
    wanted = ref or ds.default_version
    for version in ds.versions:
        if wanted in (version.name, datastore_version_id(ds.name, version.name)):
            return version
    raise NotFound(f"Datastore version '{shown(wanted)}' cannot be found.")


def find_version_anywhere(runtime: Runtime, ref: str) -> tuple[Datastore, DatastoreVersion]:
    for ds in runtime.settings.datastores:
        for version in ds.versions:
            if ref == datastore_version_id(ds.name, version.name):
                return ds, version
    raise NotFound(f"Datastore version '{shown(ref)}' cannot be found.")


def resolve_datastore(
    runtime: Runtime, type_: str | None, version: str | None
) -> tuple[Datastore, DatastoreVersion]:
    if not runtime.settings.datastores:
        raise BadRequest("No datastores are configured.")
    ds = find_datastore(runtime, type_) if type_ else runtime.settings.datastores[0]
    found = find_version(ds, version)
    if not found.active:
        raise BadRequest(f"Datastore version '{found.name}' is not active.")
    return ds, found


# --------------------------------------------------------------------------------------------------
# Input checks.


def shown(value: Any, limit: int = 80) -> str:
    """User input as an error message may quote it: control characters and lone surrogates escaped
    (`\\x00`), long text cut, so a message never carries what a terminal, a log or a JSON encoder chokes on."""
    text = str(value)
    if len(text) > limit:
        text = text[:limit] + "..."
    return UNPRINTABLE.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", text)


def check_text(value: Any, field: str, max_length: int = MAX_NAME) -> str:
    """A string Hearth stores or hands to the cloud: at most `max_length` characters, none of them
    UNPRINTABLE (a NUL is refused by PostgreSQL mid-transaction; no cloud name or description wants one)."""
    if not isinstance(value, str):
        raise BadRequest(f"{field}: must be a string.")
    if len(value) > max_length:
        raise BadRequest(f"{field}: must be at most {max_length} characters, got {len(value)}.")
    found = UNPRINTABLE.search(value)
    if found is not None:
        raise BadRequest(f"{field}: must not contain control characters; found {shown(found[0])} at position "
                         f"{found.start()}. Remove it and send the request again.")
    return value


def normalize_cidr(text: Any, field: str = "cidr") -> str:
    """`10.0.0.7/24` -> `10.0.0.0/24`; anything that is not a network is a 400 naming the field."""
    if not isinstance(text, str) or not text.strip():
        raise BadRequest(f"{field}: a CIDR such as 10.0.0.0/24 is required.")
    try:
        return str(ipaddress.ip_network(text.strip(), strict=False))
    except ValueError:
        raise BadRequest(f"{field}: '{shown(text)}' is not a valid CIDR (expected e.g. 10.0.0.0/24).") from None


def normalize_cidrs(values: Iterable[Any], field: str = "allowed_cidrs") -> list[str]:
    """Each CIDR normalized, repeats dropped (the first kept), in linear time; the list's length is checked
    before anything is parsed (at most MAX_ALLOWED_CIDRS)."""
    given = list(values)
    if len(given) > MAX_ALLOWED_CIDRS:
        raise BadRequest(f"{field}: at most {MAX_ALLOWED_CIDRS} CIDRs are accepted, got {len(given)}. Merge "
                         "neighbouring networks into wider CIDRs (e.g. 10.0.0.0/16 for 256 /24s).")
    return list(dict.fromkeys(normalize_cidr(value, field) for value in given))


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise BadRequest("name: must be a non-empty string.")
    return check_text(name, "name", MAX_NAME)


def check_volume_size(size: Any) -> int:
    """A whole number of GB from 1 to MAX_VOLUME_GB; digit strings are accepted (as Trove does), booleans
    are not numbers."""
    if isinstance(size, bool):
        raise BadRequest(f"volume size: must be a whole number of GB, not {str(size).lower()}.")
    if not isinstance(size, int):
        try:
            size = int(str(size))
        except ValueError:
            raise BadRequest(f"volume size: '{shown(size)}' is not an integer.") from None
    if size < 1:
        raise BadRequest(f"volume size: must be at least 1 (GB), got {size}.")
    if size > MAX_VOLUME_GB:
        raise BadRequest(f"volume size: must be at most {MAX_VOLUME_GB} (GB), got {shown(size, 24)}.")
    return size


# --------------------------------------------------------------------------------------------------
# Reads.


def get_instance(runtime: Runtime, project_id: str, instance_id: str, session: Session | None = None) -> Instance:
    """A live instance of the project (with its rules loaded); 404 otherwise."""
    if session is None:
        with runtime.sessions() as own:
            return get_instance(runtime, project_id, instance_id, own)
    inst = session.get(Instance, instance_id) if _looks_like_id(instance_id) else None
    if inst is None or inst.deleted_at is not None or inst.project_id != project_id:
        raise NotFound(f"Instance {shown(instance_id)} could not be found.")
    _ = list(inst.rules)  # loaded now, usable after the session closes
    return inst


def instance_project(runtime: Runtime, instance_id: str) -> str:
    """The project owning a live instance, whatever the caller's (the admin-only management routes)."""
    with runtime.sessions() as session:
        inst = session.get(Instance, instance_id) if _looks_like_id(instance_id) else None
        if inst is None or inst.deleted_at is not None:
            raise NotFound(f"Instance {shown(instance_id)} could not be found.")
        return inst.project_id


def owner_project(runtime: Runtime, caller_project: str, is_admin: bool, instance_id: str) -> str:
    """The project whose instance a request is about: the caller's; for an admin, as in Trove, the instance's own
    project when it is another's (so an admin acts on and follows any tenant's instance). Another project's
    instance is then simply not found for anyone else."""
    if is_admin:
        try:
            return instance_project(runtime, instance_id)
        except NotFound:
            pass
    return caller_project


def _looks_like_id(value: str) -> bool:
    """Whether `value` could be one of Hearth's ids: anything else is "not found" without asking the database
    (which would choke on a NUL)."""
    return 0 < len(value) <= 36 and UNPRINTABLE.search(value) is None


def list_instances(
    runtime: Runtime, project_id: str, limit: int, marker: str | None = None
) -> tuple[list[Instance], bool]:
    """One page in Trove's order (created, then id) after `marker`; True when more follow."""
    with runtime.sessions() as session:
        query = select(Instance).where(Instance.project_id == project_id, Instance.deleted_at.is_(None))
        if marker:
            after = session.get(Instance, marker) if _looks_like_id(marker) else None
            if after is None or after.project_id != project_id:
                raise BadRequest(f"marker: instance {shown(marker)} is not in this project's list.")
            # A row-value comparison is an index range on (project_id, deleted_at, created_at, id) in SQLite
            # (>= 3.15) and PostgreSQL; the equivalent OR of two comparisons made both scan every earlier row.
            query = query.where(tuple_(Instance.created_at, Instance.id) > tuple_(after.created_at, after.id))
        # Instance.rules loads with selectin: the page's rules come in one more query, already loaded here.
        rows = list(session.scalars(query.order_by(Instance.created_at, Instance.id).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def list_all_instances(runtime: Runtime, project_id: str) -> list[Instance]:
    with runtime.sessions() as session:
        rows = list(session.scalars(
            select(Instance)
            .where(Instance.project_id == project_id, Instance.deleted_at.is_(None))
            .order_by(Instance.created_at, Instance.id)
        ))
    return rows


def list_events(runtime: Runtime, project_id: str, instance_id: str) -> list[Event]:
    with runtime.sessions() as session:
        get_instance(runtime, project_id, instance_id, session)
        return list(session.scalars(select(Event).where(Event.instance_id == instance_id).order_by(Event.id)))


def list_operations(runtime: Runtime, project_id: str, instance_id: str) -> list[Operation]:
    with runtime.sessions() as session:
        get_instance(runtime, project_id, instance_id, session)
        return list(session.scalars(
            select(Operation).where(Operation.instance_id == instance_id).order_by(Operation.created_at, Operation.id)
        ))


def find_security_group(runtime: Runtime, project_id: str, ref: str) -> Instance:
    """The instance whose group `ref` names: its instance id, its cloud group id, or its group id.

    The first two are indexed look-ups; the group id is a uuid5 of the instance id, so only that form
    needs the project's ids (ids only, not the rows and their rules)."""
    live = (Instance.project_id == project_id, Instance.deleted_at.is_(None))
    with runtime.sessions() as session:
        found = session.scalars(select(Instance).where(*live, Instance.id == ref).limit(1)).first() \
            if _looks_like_id(ref) else None
        if found is None and _looks_like_id(ref):
            found = session.scalars(select(Instance).where(*live, Instance.secgroup_id == ref)
                                    .order_by(Instance.created_at, Instance.id).limit(1)).first()
        if found is None:
            instance_id = next((i for i in session.scalars(select(Instance.id).where(*live))
                                if security_group_id(i) == ref), None)
            found = session.get(Instance, instance_id) if instance_id else None
    if found is None:
        raise NotFound(f"Security group {shown(ref)} could not be found.")
    return found


def get_rule(runtime: Runtime, project_id: str, rule_id: str) -> tuple[Instance, SecurityGroupRule]:
    with runtime.sessions() as session:
        rule = session.get(SecurityGroupRule, rule_id) if _looks_like_id(rule_id) else None
        if rule is not None:
            inst = session.get(Instance, rule.instance_id)
            if inst is not None and inst.deleted_at is None and inst.project_id == project_id:
                _ = list(inst.rules)
                return inst, rule
    raise NotFound(f"Security group rule {shown(rule_id)} could not be found.")


# --------------------------------------------------------------------------------------------------
# Commands as values: validated input, then either its plan (a dry run) or its record (the real thing).


@dataclass
class Plan:
    """What a command would do: the owning engine's steps, with nothing recorded or changed."""

    engine: str
    operation: str
    steps: list[PlannedStep] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        return {"engine": self.engine, "operation": self.operation,
                "steps": [{"action": s.action, "target": s.target, "detail": s.detail} for s in self.steps]}


Answer = TypeVar("Answer", covariant=True)


class Command(Protocol[Answer]):
    """A user command, validated when it was made (every refusal is raised then, before either step): `plan`
    is its dry run (reads only, writes nothing), `record` writes the desired state and queues its operation.
    A dry run is the same command planned, so it validates exactly as the real one."""

    def plan(self, runtime: Runtime) -> Plan: ...

    def record(self, runtime: Runtime) -> Answer: ...


@dataclass(frozen=True)
class CreateInstance:
    """A validated create: the new instance's spec (image and network resolved by the preflight)."""

    project_id: str
    engine: str
    spec: InstanceSpec
    datastore: Datastore
    version: DatastoreVersion
    cidrs: tuple[str, ...]
    management_cidrs: tuple[str, ...] = ()
    databases: tuple[dict[str, Any], ...] = ()
    users: tuple[dict[str, Any], ...] = ()
    configuration_id: str | None = None

    def plan(self, runtime: Runtime) -> Plan:
        extra = [PlannedStep("management access", f"port {self.version.port}",
                             f"Hearth reaches the database from {c} (management_cidrs)") for c in self.management_cidrs]
        extra += [PlannedStep("create database", d["name"], "once the database answers") for d in self.databases]
        extra += [PlannedStep("create user", u["name"], "once the database answers") for u in self.users]
        return _plan(runtime, self.engine, OperationKind.PROVISION, self.spec, Resources(), extra)

    def record(self, runtime: Runtime) -> Instance:
        """The instance (task BUILDING), its rules and its provision operation, in one transaction."""
        spec, ds, version = self.spec, self.datastore, self.version
        with runtime.sessions.begin() as session:
            inst = Instance(
                id=spec.instance_id, project_id=self.project_id, name=spec.name, engine=self.engine,
                datastore=ds.name, datastore_version=version.name, flavor_id=spec.flavor_id,
                volume_size=spec.volume_size, image_id=spec.image_id, network_id=spec.network_id,
                availability_zone=spec.availability_zone, port=version.port, task=KINDS[OperationKind.PROVISION].task,
                subnet_id=spec.subnet_id, fixed_ip=spec.fixed_ip, is_public=spec.is_public,
                volume_type=spec.volume_type, configuration_id=self.configuration_id,
                operating_status=OperatingStatus.BUILD,
                admin_password=(runtime.secrets.seal(secrets.token_urlsafe(24))
                                if is_managed(ds.name, version.manage) else None),
                bootstrap=seal_bootstrap(runtime.secrets, list(self.databases), list(self.users)),
            )
            session.add(inst)
            session.flush()
            for purpose, cidrs in ((SecurityGroupRule.ACCESS, self.cidrs),
                                   (SecurityGroupRule.MANAGEMENT, self.management_cidrs)):
                for cidr in cidrs:
                    session.add(SecurityGroupRule(instance_id=inst.id, protocol=version.protocol,
                                                  from_port=version.port, to_port=version.port, cidr=cidr,
                                                  purpose=purpose))
            _queue(session, inst, OperationKind.PROVISION, {},
                   f"create requested: flavor {spec.flavor_id}, {spec.volume_size} GB volume, "
                   f"{ds.name} {version.name}, engine {inst.engine}")
            session.flush()
            _ = list(inst.rules)
        _wake(runtime)
        return inst


@dataclass(frozen=True)
class Change:
    """A validated change to an idle instance: one operation of `kind` with `params` (its target), started
    by moving the instance's task away from NONE (only one concurrent command can)."""

    inst: Instance
    kind: OperationKind
    params: dict[str, Any]
    message: str  # the event recording the request
    new_rules: tuple[dict[str, Any], ...] = ()  # rule rows inserted pending (cloud_rule_id NULL) at once

    def plan(self, runtime: Runtime) -> Plan:
        return _plan_change(runtime, self.inst, self.kind, self.params)

    def record(self, runtime: Runtime) -> Operation:
        return _start(runtime, self.inst, self.kind, self.params, self.message, self.new_rules)


@dataclass(frozen=True)
class DeleteInstance:
    """A validated delete: allowed from idle and from the error states, not while another operation runs."""

    inst: Instance

    def plan(self, runtime: Runtime) -> Plan:
        return _plan_change(runtime, self.inst, OperationKind.DELETE, {})

    def record(self, runtime: Runtime) -> Operation:
        with runtime.sessions.begin() as session:
            claimed = session.execute(
                update(Instance)
                .where(Instance.id == self.inst.id, Instance.task.in_(DELETABLE), Instance.deleted_at.is_(None))
                .values(task=KINDS[OperationKind.DELETE].task, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            ).rowcount
            if claimed != 1:
                fresh = session.get(Instance, self.inst.id)
                if fresh is None or fresh.deleted_at is not None:
                    raise NotFound(f"Instance {shown(self.inst.id)} could not be found.")
                raise _not_ready(fresh)
            op = _queue(session, self.inst, OperationKind.DELETE, {}, "delete requested")
        _wake(runtime)
        return op


@dataclass(frozen=True)
class RuleWrite(Generic[Answer]):
    """A write of the 2014 extension's rules: the access change it starts, answered with the rule(s) as the
    extension shows them. `needed` False: the rule already says so, recording starts nothing (the plan then
    shows the current rules converging)."""

    change: Change
    answer: Answer
    needed: bool = True

    def plan(self, runtime: Runtime) -> Plan:
        return self.change.plan(runtime)

    def record(self, runtime: Runtime) -> Answer:
        if self.needed:
            self.change.record(runtime)
        return self.answer


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")


def _engine_failure(err: EngineError) -> ServiceError:
    """The API's answer to an engine's refusal, decided by the error's type (never its text): the setting
    no longer allows the owning engine 409, a quota 413, the cloud unable to answer now (or a setting that
    needs it) 503 with the cloud's Retry-After, anything else the request's fault, 400."""
    if isinstance(err, EngineNotAllowed):
        return Conflict(_sentence(str(err)))
    if isinstance(err, QuotaExceeded):
        return OverLimit(_sentence(str(err)))
    if isinstance(err, TransientError):
        return Unavailable(f"The cloud is unavailable ({err}); nothing was changed, retry the request later.",
                           retry_after=err.retry_after)
    if isinstance(err, NotConfigured):
        return Unavailable(_sentence(str(err)))
    return BadRequest(_sentence(str(err)))


def _plan(runtime: Runtime, engine_name: str, kind: OperationKind, spec: InstanceSpec, current: Resources,
          extra: Sequence[PlannedStep] = ()) -> Plan:
    """The engine's dry run of `kind`; its refusals are the user's 400 (reads only, changes nothing)."""
    engine = runtime.relocation()[0] if relocates(kind) else runtime.engine(engine_name)
    try:
        steps = engine.plan(kind, spec, current)
    except EngineError as err:
        raise _engine_failure(err) from None
    return Plan(engine=engine.name, operation=str(kind), steps=[*steps, *extra])


def _plan_change(runtime: Runtime, inst: Instance, kind: OperationKind, params: dict[str, Any],
                 extra: Sequence[PlannedStep] = ()) -> Plan:
    """The plan of an operation on an existing instance, with the spec the task manager would build."""
    rules = list(inst.rules)
    spec = operation_spec(kind, inst, rules, params, runtime.settings.public_network)
    return _plan(runtime, inst.engine, kind, spec, resources_of(inst, rules), extra)


def _check_engine(runtime: Runtime, inst: Instance) -> None:
    """409 when the setting no longer allows the engine owning the instance (names the way out)."""
    try:
        runtime.check_owner(inst.id, inst.engine)
    except EngineError as err:
        raise _engine_failure(err) from None


def _new_instance_engine(runtime: Runtime) -> str:
    try:
        return runtime.engine_for_new_instance()
    except EngineError as err:
        raise _engine_failure(err) from None


# --------------------------------------------------------------------------------------------------
# Commands.


def create_instance(
    runtime: Runtime,
    project_id: str,
    *,
    name: str,
    flavor_ref: str | int,
    volume_size: Any,
    datastore: str | None = None,
    datastore_version: str | None = None,
    allowed_cidrs: Sequence[Any] | None = None,
    availability_zone: str | None = None,
    nic: dict[str, Any] | None = None,
    is_public: bool = False,
    databases: Sequence[dict[str, Any]] = (),
    users: Sequence[dict[str, Any]] = (),
    configuration_id: str | None = None,
    volume_type: str | None = None,
) -> CreateInstance:
    """Validate a new instance (task BUILDING once recorded, with its provision operation). `nic` is Trove's
    one nic (net-id / network_id, subnet_id, ip_address / v4-fixed-ip); `databases` and `users` are created
    once the database answers; `configuration_id` names a group of the same datastore version."""
    name = check_name(name)
    size = check_volume_size(volume_size)
    if availability_zone is not None:
        availability_zone = check_text(availability_zone, "availability_zone") or None
    if volume_type is not None:
        volume_type = check_text(volume_type, "volume.type") or None
    cidrs = [DEFAULT_CIDR] if allowed_cidrs is None else normalize_cidrs(allowed_cidrs)
    flavor = get_flavor(runtime, flavor_ref)
    ds, version = resolve_datastore(runtime, datastore, datastore_version)
    databases, users = check_bootstrap(ds, version, databases, users)
    if configuration_id is not None:
        _check_configuration(runtime, project_id, configuration_id, ds, version)
    instance_id = new_id()
    engine = _new_instance_engine(runtime)
    network_id, subnet_id, fixed_ip = resolve_nic(runtime, project_id, nic, is_public)
    management = normalize_cidrs(runtime.settings.management_cidrs, "management_cidrs") \
        if is_managed(ds.name, version.manage) else []
    rules = [RuleSpec(new_id(), version.protocol, version.port, version.port, c) for c in cidrs]
    rules += [RuleSpec(new_id(), version.protocol, version.port, version.port, c) for c in management]
    spec = InstanceSpec(
        instance_id=instance_id, name=name, project_id=project_id, flavor_id=flavor.id, image_id=version.image,
        volume_size=size, network_id=network_id or runtime.settings.network, availability_zone=availability_zone,
        rules=tuple(rules), subnet_id=subnet_id, fixed_ip=fixed_ip, is_public=is_public,
        public_network=runtime.settings.public_network, volume_type=volume_type,
    )
    image_id, network_id = _preflight(runtime, spec)
    return CreateInstance(project_id=project_id, engine=engine,
                          spec=spec.replace(image_id=image_id, network_id=network_id),
                          datastore=ds, version=version, cidrs=tuple(cidrs), management_cidrs=tuple(management),
                          databases=tuple(databases), users=tuple(users), configuration_id=configuration_id)


def check_bootstrap(ds: Datastore, version: DatastoreVersion, databases: Sequence[dict[str, Any]],
                    users: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A create's databases and users, checked before anything is recorded: valid, unreserved names, strong
    passwords, no repeats, and each user's databases among the create's (a new instance has no other)."""
    if not databases and not users:
        return [], []
    if not is_managed(ds.name, version.manage):
        raise BadRequest(f"databases and users: Hearth does not manage {ds.name} {version.name} databases; create "
                         "the instance without them.")
    from hearth.datastores import postgresql

    try:
        names = [postgresql.check_database_name(d["name"]) for d in databases]
        if len(set(names)) != len(names):
            raise BadRequest("databases: each database may be listed once.")
        checked_users = []
        for user in users:
            user_name = postgresql.check_user_name(user["name"])
            postgresql.check_password(user.get("password") or "", user_name)
            wanted = [d["name"] for d in user.get("databases") or []]
            unknown = [d for d in wanted if d not in names]
            if unknown:
                raise BadRequest(f"users: user {shown(user_name)} is granted database(s) "
                                 f"{', '.join(shown(d) for d in unknown)} that the request does not create; "
                                 "list them under databases too.")
            checked_users.append({"name": user_name, "password": user["password"],
                                  "databases": [{"name": d} for d in wanted]})
        if len({u["name"] for u in checked_users}) != len(checked_users):
            raise BadRequest("users: each user may be listed once.")
    except postgresql.Invalid as err:
        raise BadRequest(_sentence(str(err))) from None
    return [{k: v for k, v in d.items() if v is not None} for d in databases], checked_users


def _check_configuration(runtime: Runtime, project_id: str, configuration_id: str, ds: Datastore,
                         version: DatastoreVersion) -> None:
    from hearth.db.models import Configuration

    with runtime.sessions() as session:
        group = session.get(Configuration, configuration_id) if _looks_like_id(configuration_id) else None
        if group is None or group.deleted_at is not None or group.project_id != project_id:
            raise NotFound(f"Configuration group {shown(configuration_id)} could not be found.")
        if (group.datastore, group.datastore_version) != (ds.name, version.name):
            raise BadRequest(f"configuration: group {group.id} is for {group.datastore} {group.datastore_version}, "
                             f"not {ds.name} {version.name}.")


def _own_network(runtime: Runtime) -> str:
    """The network Nova's "auto" would give a server of Hearth's project (its one private network), named
    explicitly: a public instance needs a port of its own for the floating IP."""
    from hearth.engines import common

    try:
        conn = runtime.connections.get()
        found = common.retried("listing the project's networks", lambda: [
            n for n in conn.network.networks(project_id=conn.current_project_id) if not n.is_router_external])
    except EngineError as err:
        raise _engine_failure(err) from None
    if len(found) != 1:
        raise BadRequest("access.is_public: a public instance needs a network for its floating IP; give nics: "
                         f"[{{\"net-id\": ...}}] (Hearth's project has {len(found)} networks to choose from).")
    return str(found[0].id)


def resolve_nic(runtime: Runtime, project_id: str, nic: dict[str, Any] | None, is_public: bool
                ) -> tuple[str | None, str | None, str | None]:
    """(network id, subnet id, address) of Trove's nic, checked against the cloud: the network must be the
    requesting project's or shared (never another project's, never an external one), the subnet on it, the
    address inside the subnet. Without a nic: the configured network (a public instance needs one)."""
    from hearth.engines import common

    nic = {k: v for k, v in (nic or {}).items() if v}
    network_ref = nic.get("net-id") or nic.get("network_id")
    subnet_ref = nic.get("subnet_id")
    address = nic.get("ip_address") or nic.get("v4-fixed-ip")
    for key, value in (("nics.net-id", network_ref), ("nics.subnet_id", subnet_ref), ("nics.ip_address", address)):
        if value is not None:
            check_text(value, key, 64)
    if address is not None:
        try:
            address = str(ipaddress.ip_address(address))
        except ValueError:
            raise BadRequest(f"nics: '{shown(address)}' is not an IP address.") from None
    if network_ref is None and subnet_ref is None:
        if address is not None:
            raise BadRequest("nics: an ip_address needs a network (net-id) or a subnet (subnet_id).")
        if is_public and runtime.settings.network is None:
            return _own_network(runtime), None, None
        return None, None, None
    try:
        conn = runtime.connections.get()
        subnet = None
        if subnet_ref is not None:
            subnet = common.get_or_none(f"reading subnet {subnet_ref}", conn.network.get_subnet, subnet_ref)
            if subnet is None:
                raise BadRequest(f"nics: subnet {shown(subnet_ref)} could not be found.")
        network_id = network_ref or subnet.network_id
        network = common.get_or_none(f"reading network {network_id}", conn.network.get_network, network_id)
        if network is None and network_ref is not None:  # Trove accepts ids; a name is found too
            network = common.get_or_none(f"finding network {network_ref}", conn.network.find_network, network_ref,
                                         ignore_missing=False)
        if network is None:
            raise BadRequest(f"nics: network {shown(network_ref)} could not be found.")
        if network.project_id != project_id and not network.is_shared:
            raise BadRequest(f"nics: network {shown(network_ref or network.id)} belongs to another project and is "
                             "not shared; give one of your own networks.")
        if network.is_router_external:
            raise BadRequest(f"nics: network {network.id} is an external network; instances go on a private "
                             "network, and access.is_public gives them a public address.")
        if subnet is not None and subnet.network_id != network.id:
            raise BadRequest(f"nics: subnet {subnet.id} is not on network {network.id}.")
        if address is not None:
            subnets = [subnet] if subnet is not None else list(common.retried(
                f"listing subnets of network {network.id}", lambda: list(conn.network.subnets(network_id=network.id))))
            inside = [s for s in subnets if ipaddress.ip_address(address) in ipaddress.ip_network(s.cidr)]
            if not inside:
                raise BadRequest(f"nics: address {address} is in no subnet of network {network.id} "
                                 f"({', '.join(s.cidr for s in subnets) or 'it has none'}).")
            subnet = subnet or inside[0]
    except EngineError as err:
        raise _engine_failure(err) from None
    return str(network.id), (str(subnet.id) if subnet is not None else None), address


def _preflight(runtime: Runtime, spec: InstanceSpec) -> tuple[str, str | None]:
    """The engines' synchronous checks (image, network, availability zone; Nova's, Cinder's and Neutron's
    quotas for the server, volume, security group, its rules and port); returns the resolved image and network
    ids. A cloud that cannot answer is a 503 to retry, never the user's 400."""
    from hearth.engines.common import preflight

    try:
        resolved = preflight(runtime.connections.get(), spec)
    except EngineError as err:
        raise _engine_failure(err) from None
    network = getattr(resolved, "network", None)
    return str(resolved.image.id), (str(network.id) if network is not None else None)


def _check_room(runtime: Runtime, *, cores: int = 0, ram: int = 0, gigabytes: int = 0, rules: int = 0,
                floating_ips: int = 0) -> None:
    """Before a change is accepted: the cloud's quotas leave room for what it adds (413 otherwise; 503 when
    the cloud cannot say), so the change is not refused by the cloud halfway through its operation. The
    quotas are those of Hearth's own cloud project, where every instance's resources live."""
    from hearth.engines.common import check_growth_quota, check_network_quota

    if max(cores, ram, gigabytes, rules, floating_ips) <= 0:
        return
    try:
        conn = runtime.connections.get()
        if max(cores, ram, gigabytes) > 0:
            check_growth_quota(conn, cores=cores, ram=ram, gigabytes=gigabytes)
        if rules > 0 or floating_ips > 0:
            check_network_quota(conn, rules=rules, floating_ips=floating_ips)
    except EngineError as err:
        raise _engine_failure(err) from None


def rename_instance(runtime: Runtime, project_id: str, instance_id: str, name: str) -> Instance:
    """A name is Hearth's alone (the cloud resources are named by id): changed at once, no operation."""
    name = check_name(name)
    with runtime.sessions.begin() as session:
        inst = get_instance(runtime, project_id, instance_id, session)
        if inst.name != name:
            session.add(Event(instance_id=inst.id, message=f"renamed from {inst.name!r} to {name!r}"))
            inst.name = name
    return inst


def resize_flavor(runtime: Runtime, project_id: str, instance_id: str, flavor_ref: str | int) -> Change:
    inst = _ready_instance(runtime, project_id, instance_id)
    flavor_id = str(flavor_ref).rstrip("/").rsplit("/", 1)[-1]
    if flavor_id == inst.flavor_id:
        raise BadRequest(f"The new flavor id must be different than the current flavor id of '{inst.flavor_id}'.")
    flavor = get_flavor(runtime, flavor_id)
    current = next((f for f in list_flavors(runtime) if f.id == inst.flavor_id), None)
    if current is not None:  # a flavor since deleted from the cloud: Nova alone can tell what it counted
        _check_room(runtime, cores=flavor.vcpus - current.vcpus, ram=flavor.ram - current.ram)
    return Change(inst, OperationKind.RESIZE_FLAVOR, {"flavor_id": flavor.id},
                  f"resize requested: flavor {inst.flavor_id} -> {flavor.id}")


def resize_volume(runtime: Runtime, project_id: str, instance_id: str, size: Any) -> Change:
    inst = _ready_instance(runtime, project_id, instance_id)
    size = check_volume_size(size)
    if size <= inst.volume_size:
        raise BadRequest(f"The new volume 'size' must be larger than the current volume size of '{inst.volume_size}'.")
    _check_room(runtime, gigabytes=size - inst.volume_size)
    return Change(inst, OperationKind.RESIZE_VOLUME, {"volume_size": size},
                  f"volume resize requested: {inst.volume_size} GB -> {size} GB")


def update_access(runtime: Runtime, project_id: str, instance_id: str, allowed_cidrs: Sequence[Any] | None,
                  is_public: bool | None = None) -> Change:
    """Converge the instance's access rules to exactly one rule per CIDR on the datastore port (None: keep
    them), and give it or take away its public address (None: keep it). Hearth's management rules stay."""
    cidrs = normalize_cidrs(allowed_cidrs) if allowed_cidrs is not None else None
    inst = _ready_instance(runtime, project_id, instance_id)
    public = bool(inst.is_public) if is_public is None else is_public
    if public and not inst.network_id:
        raise BadRequest(f"access.is_public: instance {inst.id} has no network of its own for a floating IP "
                         "(it was created without nics).")
    managed = [_rule_dict(r) for r in inst.rules if r.purpose == SecurityGroupRule.MANAGEMENT]
    if cidrs is None:
        target = [_rule_dict(r) for r in inst.rules if r.purpose != SecurityGroupRule.MANAGEMENT]
        said = f"public {'yes' if public else 'no'}"
    else:
        kept = {r.cidr: r for r in inst.rules if _on_port(inst, r) and r.purpose != SecurityGroupRule.MANAGEMENT}
        target = [_rule_dict(kept[c]) if c in kept else _new_rule(runtime, inst, c) for c in cidrs]
        said = "allowed CIDRs " + (", ".join(cidrs) or "none") + (f", public {'yes' if public else 'no'}"
                                                                  if is_public is not None else "")
    change = _rules_change(runtime, inst, target + managed, f"access update requested: {said}",
                           floating_ips=1 if public and not inst.is_public else 0)
    if is_public is not None:
        change.params["is_public"] = public
    return change


def add_rules(runtime: Runtime, project_id: str, group_ref: str, cidr: Any) -> RuleWrite[tuple[Instance, list[str]]]:
    """The 2014 extension's rule create: one rule per datastore port for `cidr`. Answers the new rule ids."""
    cidr = normalize_cidr(cidr)
    inst = find_security_group(runtime, project_id, group_ref)
    inst = _ready_instance(runtime, project_id, inst.id)
    if any(r.cidr == cidr and _on_port(inst, r) and r.purpose != SecurityGroupRule.MANAGEMENT for r in inst.rules):
        raise BadRequest(f"A rule for CIDR {cidr} already exists on this security group.")
    added = _new_rule(runtime, inst, cidr)
    target = [_rule_dict(r) for r in inst.rules] + [added]
    change = _rules_change(runtime, inst, target, f"rule requested: {added['protocol']} port {inst.port} from {cidr}")
    return RuleWrite(change, (inst, [added["id"]]))


def update_rule_cidr(runtime: Runtime, project_id: str, rule_id: str,
                     cidr: Any) -> RuleWrite[tuple[Instance, dict[str, Any]]]:
    """Point one rule at another CIDR (the engine adds the new cloud rule before removing the old)."""
    cidr = normalize_cidr(cidr)
    inst, rule = get_rule(runtime, project_id, rule_id)
    _not_management(rule)
    inst = _ready_instance(runtime, project_id, inst.id)
    changed = {**_rule_dict(rule), "cidr": cidr}
    if rule.cidr == cidr:
        unchanged = Change(inst, OperationKind.APPLY_RULES, {"rules": [_rule_dict(r) for r in inst.rules]}, "")
        return RuleWrite(unchanged, (inst, changed), needed=False)
    if any(r.cidr == cidr and r.id != rule.id and (r.protocol, r.from_port) == (rule.protocol, rule.from_port)
           for r in inst.rules):
        raise BadRequest(f"A rule for CIDR {cidr} already exists on this security group.")
    target = [changed if r.id == rule.id else _rule_dict(r) for r in inst.rules]
    change = _rules_change(runtime, inst, target, f"rule {rule.id} CIDR change requested: {rule.cidr} -> {cidr}")
    return RuleWrite(change, (inst, changed))


def _not_management(rule: SecurityGroupRule) -> None:
    if rule.purpose == SecurityGroupRule.MANAGEMENT:
        raise BadRequest(f"Security group rule {rule.id} is Hearth's management access ({rule.cidr}, the "
                         "management_cidrs setting); it cannot be changed or removed through the API.")


def delete_rule(runtime: Runtime, project_id: str, rule_id: str) -> Change:
    inst, rule = get_rule(runtime, project_id, rule_id)
    _not_management(rule)
    inst = _ready_instance(runtime, project_id, inst.id)
    target = [_rule_dict(r) for r in inst.rules if r.id != rule.id]
    return _rules_change(runtime, inst, target, f"rule {rule.id} removal requested ({rule.cidr})")


def adopt_instance(runtime: Runtime, project_id: str, instance_id: str) -> Change:
    """Move a natives instance into a Heat stack that adopts its existing resources (engine = migration)."""
    inst = _ready_instance(runtime, project_id, instance_id)
    _require_migration(runtime)
    if inst.engine != "natives":
        raise Conflict(f"Instance {inst.id} is owned by the {inst.engine} engine; only natives instances can be "
                       "adopted into a stack.")
    return Change(inst, OperationKind.ADOPT, {}, "adopt requested: move the instance's resources into a Heat stack")


def release_instance(runtime: Runtime, project_id: str, instance_id: str) -> Change:
    """Abandon the instance's Heat stack and hand its untouched resources back to natives (engine = migration)."""
    inst = _ready_instance(runtime, project_id, instance_id)
    _require_migration(runtime)
    if inst.engine != "orchestrator":
        raise Conflict(f"Instance {inst.id} is owned by the {inst.engine} engine; only orchestrator (Heat stack) "
                       "instances can be released.")
    return Change(inst, OperationKind.RELEASE, {},
                  f"release requested: abandon stack {inst.stack_id}, back to natives")


def reconcile_instance(runtime: Runtime, project_id: str, instance_id: str) -> Change:
    """Converge the cloud back to what Hearth records (drift repair), through the owning engine: natives
    applies the difference, the stack engines run a Heat check and a converging stack update. Allowed on an
    idle instance whatever its server's status (a server stopped outside Hearth is one of the things repaired)."""
    inst = get_instance(runtime, project_id, instance_id)
    if inst.task != Task.NONE:
        raise _not_ready(inst)
    _check_engine(runtime, inst)
    recorded = f" (recorded drift: {inst.drift})" if inst.drift else ""
    return Change(inst, OperationKind.RECONCILE, {}, f"reconcile requested{recorded}")


def reset_status(runtime: Runtime, project_id: str, instance_id: str) -> Instance:
    """Trove's reset_status, for an administrator: an instance left in ERROR by a failed operation goes back
    to idle, so it can be reconciled or changed again (the drift check then compares it with the cloud).
    Any other state is left as it is (a BUILDING_ERROR instance never worked: delete it). 409 while an
    operation is queued or running."""
    inst = get_instance(runtime, project_id, instance_id)
    with runtime.sessions.begin() as session:
        busy = session.scalar(select(func.count()).select_from(Operation).where(
            Operation.instance_id == inst.id, Operation.state.in_(OperationState.ACTIVE)))
        if busy:
            raise Conflict(f"Instance {inst.id} has an operation in progress; its status cannot be reset now.")
        done = session.execute(
            update(Instance).where(Instance.id == inst.id, Instance.task == Task.ERROR,
                                   Instance.deleted_at.is_(None))
            .values(task=Task.NONE, fault=None, fault_at=None, updated_at=utcnow())
            .execution_options(synchronize_session=False)).rowcount
        if done:
            session.add(Event(instance_id=inst.id, level="warning",
                              message=f"status reset from ERROR by an administrator (the fault was: "
                                      f"{inst.fault or 'none recorded'}); reconcile repairs what differs"))
    return get_instance(runtime, project_id, instance_id)


def restart_instance(runtime: Runtime, project_id: str, instance_id: str) -> Change:
    """Restart the database (its server reboots; the volume and addresses stay): how a configuration change
    that needs a restart takes effect."""
    inst = _ready_instance(runtime, project_id, instance_id)
    return Change(inst, OperationKind.RESTART, {}, "restart requested")


def rebuild_instance(runtime: Runtime, project_id: str, instance_id: str, image_ref: Any) -> Change:
    """Rebuild the server from another image of the same datastore, keeping the data volume, the addresses
    and the superuser's password."""
    image_ref = check_text(image_ref, "rebuild.image_id", 64)
    inst = _ready_instance(runtime, project_id, instance_id)
    from hearth.engines import common

    try:
        image = common.resolve_image(runtime.connections.get(), image_ref)
    except EngineError as err:
        raise _engine_failure(err) from None
    return Change(inst, OperationKind.REBUILD, {"image_id": str(image.id)},
                  f"rebuild requested: image {image.name} ({image.id})")


def upgrade_instance(runtime: Runtime, project_id: str, instance_id: str, version_ref: Any) -> Change:
    """Move the instance to another version of its datastore with the same major number: a rebuild from that
    version's image, keeping the data volume (PostgreSQL keeps its data format within a major release)."""
    version_ref = check_text(version_ref, "datastore_version", 64)
    inst = _ready_instance(runtime, project_id, instance_id)
    ds = find_datastore(runtime, inst.datastore)
    target = find_version(ds, version_ref)
    if not target.active:
        raise BadRequest(f"Datastore version '{target.name}' is not active.")
    if target.name.split(".")[0] != inst.datastore_version.split(".")[0]:
        raise BadRequest(f"datastore_version: {inst.datastore} {inst.datastore_version} can only be upgraded to a "
                         f"version of the same major release, not {target.name} (a major upgrade needs a dump and "
                         "restore).")
    from hearth.engines import common

    try:
        image = common.resolve_image(runtime.connections.get(), target.image)
    except EngineError as err:
        raise _engine_failure(err) from None
    return Change(inst, OperationKind.REBUILD, {"image_id": str(image.id), "datastore_version": target.name},
                  f"upgrade requested: {inst.datastore} {inst.datastore_version} -> {target.name}")


def _require_migration(runtime: Runtime) -> None:
    try:
        runtime.relocation()
    except EngineError as err:
        raise _engine_failure(err) from None


def delete_instance(runtime: Runtime, project_id: str, instance_id: str) -> DeleteInstance:
    """Allowed when idle and in the error states (that is how users clean up a failed instance)."""
    inst = get_instance(runtime, project_id, instance_id)
    _check_engine(runtime, inst)
    if inst.task not in DELETABLE:
        raise _not_ready(inst)
    return DeleteInstance(inst)


# --------------------------------------------------------------------------------------------------
# Helpers.


def _on_port(inst: Instance, rule: SecurityGroupRule) -> bool:
    return rule.from_port == inst.port and rule.to_port == inst.port


def _rule_dict(rule: SecurityGroupRule) -> dict[str, Any]:
    return {"id": rule.id, "protocol": rule.protocol, "from_port": rule.from_port, "to_port": rule.to_port,
            "cidr": rule.cidr}


def _new_rule(runtime: Runtime, inst: Instance, cidr: str) -> dict[str, Any]:
    return {"id": new_id(), "protocol": _datastore_protocol(runtime, inst), "from_port": inst.port,
            "to_port": inst.port, "cidr": cidr, "new": True}


def _datastore_protocol(runtime: Runtime, inst: Instance) -> str:
    ds = runtime.settings.datastore(inst.datastore)
    version = ds.version(inst.datastore_version) if ds else None
    return version.protocol if version else "tcp"


def _not_ready(inst: Instance) -> NotReady:
    status = instance_status(inst)
    if status == "ACTIVE" and inst.task != Task.NONE:
        status = inst.task
    return NotReady(f"Instance {inst.id} is not ready. (status was {status})")


def _ready_instance(runtime: Runtime, project_id: str, instance_id: str) -> Instance:
    inst = get_instance(runtime, project_id, instance_id)
    if inst.task != Task.NONE or instance_status(inst) != "ACTIVE":
        raise _not_ready(inst)
    _check_engine(runtime, inst)
    return inst


def _start(runtime: Runtime, inst: Instance, kind: OperationKind, params: dict[str, Any], message: str,
           new_rules: Sequence[dict[str, Any]] = ()) -> Operation:
    """In one transaction: move the task from NONE (only one request can), add pending rules, queue."""
    with runtime.sessions.begin() as session:
        claimed = session.execute(
            update(Instance)
            .where(Instance.id == inst.id, Instance.task == Task.NONE, Instance.deleted_at.is_(None))
            .values(task=KINDS[kind].task, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        ).rowcount
        if claimed != 1:
            fresh = session.get(Instance, inst.id)
            raise _not_ready(fresh or inst)
        for rule in new_rules:
            session.add(SecurityGroupRule(id=rule["id"], instance_id=inst.id, protocol=rule["protocol"],
                                          from_port=rule["from_port"], to_port=rule["to_port"], cidr=rule["cidr"]))
        op = _queue(session, inst, kind, params, message)
    _wake(runtime)
    return op


def _rules_change(runtime: Runtime, inst: Instance, target: list[dict[str, Any]], message: str,
                  floating_ips: int = 0) -> Change:
    """The change converging the instance's rules to `target`. Neutron's rule quota must hold the new rules
    (checked now): the engines add them before removing the ones they replace."""
    new_rules = [r for r in target if r.get("new")]
    recorded = {r.id: r.cidr for r in inst.rules}
    changed = sum(1 for r in target if not r.get("new") and recorded.get(r["id"], r["cidr"]) != r["cidr"])
    _check_room(runtime, rules=len(new_rules) + changed, floating_ips=floating_ips)
    rules = [{k: v for k, v in r.items() if k != "new"} for r in target]
    params = {"rules": rules, "added": [r["id"] for r in new_rules]}
    return Change(inst, OperationKind.APPLY_RULES, params, message, tuple(new_rules))


def _queue(session: Session, inst: Instance, kind: OperationKind, params: dict[str, Any], message: str) -> Operation:
    """The operation, with the API request it serves (its cloud calls carry that id: hearth.request_ids)."""
    request_id = current_request_id()
    op = Operation(id=new_id(), instance_id=inst.id, kind=kind.value, params=params, journal={},
                   request_id=request_id)
    session.add(op)
    session.add(Event(instance_id=inst.id, operation_id=op.id, message=message, request_id=request_id))
    return op


def _wake(runtime: Runtime) -> None:
    from hearth.taskmanager import wake

    wake(runtime)
