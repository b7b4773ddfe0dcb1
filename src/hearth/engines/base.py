"""The resource engine interface: the only way the task manager changes the cloud.

Every operation takes the instance's *desired* state (`InstanceSpec`) and what Hearth knows the cloud
holds for it (`Resources`), and returns the new `Resources`. Engines differ in how they get there
(direct Nova/Cinder/Neutron calls, or Heat stack operations), never in what the cloud ends up holding.

Engines record each cloud resource in the operation's journal the moment it exists (`ctx.record`),
so a task manager that dies mid-operation can resume it, or clean up after it, from the journal.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

#: The operation kinds every engine can plan (dry-run) and carry out.
PLAN_KINDS: tuple[str, ...] = ("provision", "resize_flavor", "resize_volume", "apply_rules", "delete", "restart",
                                "rebuild", "reconcile")

# A delete's journal carries PROVISION_CLEAN = True when the task manager knows the instance's provision
# succeeded on its first attempt: every cloud resource it made was recorded the moment it existed, so
# nothing named for the instance can exist outside the recorded ids and an engine may skip its leftover
# look-ups by name. (Only a worker dying between a create and its record can leave such a leftover, and
# that makes a second attempt.)
PROVISION_CLEAN = "provision_clean"


class EngineError(Exception):
    """A failure the user should see as the instance's fault: says what failed and why, no secrets.

    Every EngineError is terminal unless it is a `TransientError`: retrying the same request would meet
    the same refusal (bad request, quota, a resource in ERROR with the cloud's reason, a missing thing
    that must exist). Callers decide by type, never by the message text."""


class TransientError(EngineError):
    """The cloud could not do it *now* (no connection, a timeout, a 5xx, a conflict it documents as
    retryable, a resource still in progress where a settled state was expected): the same request can
    succeed later. `service` names the cloud service (nova, cinder, neutron, heat, keystone, glance),
    `retry_after` is the cloud's own hint in seconds (Retry-After), if it gave one."""

    def __init__(self, message: str, *, service: str | None = None, status: int | None = None,
                 retry_after: float | None = None, cause: str | None = None) -> None:
        super().__init__(message)
        self.service = service
        self.status = status
        self.retry_after = retry_after
        self.cause = cause or (f"HTTP {status}" if status else "unavailable")  # bounded: a label, not a message


class QuotaExceeded(EngineError):
    """The project's quota leaves no room for what was asked (terminal: the user must free or raise it)."""


class NotConfigured(EngineError):
    """What the deployment's settings ask for cannot be worked out now (e.g. engine = auto with an
    unreadable catalog): the operator's or the cloud's problem, not the user's input."""


@dataclass(frozen=True)
class RuleSpec:
    """One ingress rule on the instance's security group. `id` is Hearth's; `cloud_id` is Neutron's."""

    id: str
    protocol: str
    from_port: int
    to_port: int
    cidr: str
    cloud_id: str | None = None

    @property
    def ethertype(self) -> str:
        return "IPv6" if ":" in self.cidr else "IPv4"

    def same_shape(self, other: RuleSpec) -> bool:
        """True when both rules open the same thing (ids aside)."""
        return (self.protocol, self.from_port, self.to_port, self.cidr) == (
            other.protocol, other.from_port, other.to_port, other.cidr,
        )


@dataclass(frozen=True)
class InstanceSpec:
    """Everything an engine needs to build or converge one instance."""

    instance_id: str
    name: str
    project_id: str  # the Hearth project that owns the instance (tagged on every resource)
    flavor_id: str
    image_id: str
    volume_size: int
    network_id: str | None = None
    availability_zone: str | None = None
    rules: tuple[RuleSpec, ...] = ()
    subnet_id: str | None = None  # the nic's subnet (the port's fixed IP comes from it)
    fixed_ip: str | None = None  # the nic's requested address
    is_public: bool = False  # a floating IP from `public_network` on the instance's port
    public_network: str = "public"
    volume_type: str | None = None
    # The database superuser's password, handed to the server at boot and rebuild (Nova's adminPass): set
    # only for the operations that need it, never in plans, never logged (repr hides it).
    admin_password: str | None = dataclasses.field(default=None, repr=False)
    # Cloud-init user data for stock images (hearth.datastores.cloudinit); it seals nothing, so never shown.
    user_data: str | None = dataclasses.field(default=None, repr=False)

    def replace(self, **changes: Any) -> InstanceSpec:
        return dataclasses.replace(self, **changes)


@dataclass
class Resources:
    """The cloud resources that realise an instance, as Hearth last recorded them."""

    server_id: str | None = None
    volume_id: str | None = None
    secgroup_id: str | None = None
    stack_id: str | None = None
    rules: dict[str, RuleSpec] = field(default_factory=dict)  # Hearth rule id -> realised rule
    server_status: str | None = None
    stack_status: str | None = None
    #: Cloud ids of the resource kinds without a field of their own above (kind key -> id; see resources.py).
    extra_ids: dict[str, str] = field(default_factory=dict)
    #: The instance's addresses as the cloud gave them ([{"address", "type": private|public, "network"}]),
    #: read after the operations that can change them; None: not read by this operation.
    addresses: list[dict[str, Any]] | None = None
    #: The data volume's size as the cloud holds it, set by the operations that may find it changed outside
    #: Hearth (reconcile keeps a volume grown in Cinder: it cannot shrink); None: the recorded size stands.
    volume_size: int | None = None

    def with_rules(self, rules: dict[str, RuleSpec]) -> Resources:
        return dataclasses.replace(self, rules=dict(rules))


@dataclass
class CloudView:
    """What the cloud really holds for an instance (for `describe`, drift checks and tests)."""

    server: dict[str, Any] | None = None  # id, status, flavor_id, fault
    volume: dict[str, Any] | None = None  # id, status, size, attached_to
    security_group: dict[str, Any] | None = None  # id, name, rules: [{id, protocol, from_port, to_port, cidr}]
    stack: dict[str, Any] | None = None  # id, name, status, reason
    extra: dict[str, dict[str, Any]] = field(default_factory=dict)  # other resource kinds, by kind key


@dataclass(frozen=True)
class PlannedStep:
    """One step of a dry-run plan: a cloud call the engine would make, or a resource change."""

    action: str  # e.g. "POST /servers", "stack update", "create", "update in place", "replace"
    target: str  # the resource it concerns
    detail: str = ""


class OperationContext(Protocol):
    """What the task manager hands an engine for one operation."""

    journal: dict[str, Any]

    def record(self, **values: Any) -> None:
        """Persist journal entries now (before the engine waits on anything)."""

    def step(self, name: str, **journal: Any) -> None:
        """Name the step the operation is in (shown to users, persisted); `journal` entries, if any, are
        recorded in the same write."""

    def event(self, message: str, level: str = "info", **journal: Any) -> None:
        """Append to the instance's event log; `journal` entries, if any, are recorded in the same write."""


class ResourceEngine(ABC):
    """One way of realising instances in the cloud. Implementations must be safe to call from
    several worker threads at once (each call gets its own cloud connection)."""

    name: ClassVar[str]

    @abstractmethod
    def provision(self, spec: InstanceSpec, ctx: OperationContext) -> Resources:
        """Server + data volume + attachment + the instance's own security group with `spec.rules`."""

    @abstractmethod
    def resize_flavor(self, spec: InstanceSpec, current: Resources, ctx: OperationContext) -> Resources:
        """Give the server `spec.flavor_id`, keeping its id, volume and addresses."""

    @abstractmethod
    def resize_volume(self, spec: InstanceSpec, current: Resources, ctx: OperationContext) -> Resources:
        """Grow the data volume to `spec.volume_size`, keeping it attached at the end."""

    @abstractmethod
    def apply_rules(self, spec: InstanceSpec, current: Resources, ctx: OperationContext) -> Resources:
        """Make the group hold exactly `spec.rules` (creating the group if missing).

        Adds, CIDR changes and removals all go through here; new rules are created before stale
        ones are removed, so access never drops.
        """

    @abstractmethod
    def restart(self, spec: InstanceSpec, current: Resources, ctx: OperationContext) -> Resources:
        """Restart the database's server (a soft reboot: the volume and addresses stay)."""

    @abstractmethod
    def rebuild(self, spec: InstanceSpec, current: Resources, ctx: OperationContext) -> Resources:
        """Give the server `spec.image_id` (keeping its id, data volume, addresses and `spec.admin_password`)."""

    @abstractmethod
    def reconcile(self, spec: InstanceSpec, current: Resources, ctx: OperationContext) -> Resources:
        """Converge the cloud to `spec` after it changed outside Hearth (drift): the server's flavor, the volume's
        attachment, the group's rules (missing and extra ones) and its ports. The rules every engine shares
        (what cannot be repaired, a volume grown outside, the final comparison) are in engines.repair."""

    @abstractmethod
    def delete(self, spec: InstanceSpec, current: Resources, ctx: OperationContext) -> None:
        """Remove everything the instance owns, including leftovers of failed steps."""

    @abstractmethod
    def describe(self, spec: InstanceSpec, current: Resources) -> CloudView:
        """Read what the cloud holds for the instance; changes nothing."""

    def plan(self, kind: str, spec: InstanceSpec, current: Resources) -> list[PlannedStep]:
        """Dry run: the steps an operation would take, with nothing changed in the cloud."""
        raise NotImplementedError(f"the {self.name} engine has no dry-run plans yet")

    def differences(self, spec: InstanceSpec, current: Resources) -> list[str]:
        """Drift: how what the cloud holds differs from the desired state (empty: it matches). Reads only."""
        raise NotImplementedError(f"the {self.name} engine has no drift check yet")

    def relocation(self) -> Relocation | None:
        """The engine's adopt/release capability, or None: only an engine serving both natives and
        stack-owned instances can move one between them."""
        return None

    def close(self) -> None:
        """Release what the engine holds (threads, engines it built itself); a no-op for most."""
        return None


class Relocation(ABC):
    """Moving an instance between natives and a Heat stack without touching its resources: the capability
    an engine advertises through `ResourceEngine.relocation()`."""

    @abstractmethod
    def adopt(self, spec: InstanceSpec, current: Resources, ctx: OperationContext) -> Resources:
        """Hand a natives instance's existing resources to a new Heat stack (nothing created or replaced)."""

    @abstractmethod
    def release(self, spec: InstanceSpec, current: Resources, ctx: OperationContext) -> Resources:
        """Abandon the instance's stack, leaving every resource in place, and hand it back to natives."""


#: Looks up a sibling engine by name: what an engine that composes others (migration) is built with, so the
#: runtime shares one natives and one orchestrator engine among all and needs no special case for any.
EngineResolver = Callable[[str], ResourceEngine]


class LocalContext:
    """An operation context that keeps its journal in memory.

    The task manager's database-backed context builds on it (persisting each `record`); on its own it
    serves dry runs and direct engine use, where nothing needs to survive the process.
    """

    def __init__(self, journal: dict[str, Any] | None = None) -> None:
        self.journal: dict[str, Any] = dict(journal or {})
        self.steps: list[str] = []
        self.events: list[tuple[str, str]] = []

    def record(self, **values: Any) -> None:
        self.journal.update(values)

    def step(self, name: str, **journal: Any) -> None:
        self.steps.append(name)
        self.journal.update(journal)

    def event(self, message: str, level: str = "info", **journal: Any) -> None:
        self.events.append((level, message))
        self.journal.update(journal)
