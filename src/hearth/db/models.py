"""What Hearth remembers: instances (desired state + the cloud ids that realise it), their rules,
the durable operations the task manager executes, and an event log per instance."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Task:
    """What Hearth is doing to an instance (Trove's task status). NONE means idle."""

    NONE = "NONE"
    BUILDING = "BUILDING"
    RESIZING = "RESIZING"
    RESIZING_VOLUME = "RESIZING_VOLUME"
    UPDATING_ACCESS = "UPDATING_ACCESS"
    DELETING = "DELETING"
    ADOPTING = "ADOPTING"
    RELEASING = "RELEASING"
    RESTARTING = "RESTARTING"
    REBUILDING = "REBUILDING"
    RECONCILING = "RECONCILING"  # converging the cloud back to the record after drift
    BUILDING_ERROR = "BUILDING_ERROR"
    ERROR = "ERROR"  # a later operation failed and left the instance needing attention

    ERRORS = frozenset({BUILDING_ERROR, ERROR})


class OperatingStatus:
    """The database service's own state (Trove's `operating_status`), apart from the server's status:
    Hearth learns it by connecting to the database (taskmanager.health), never from Nova."""

    UNKNOWN = ""  # not checked yet
    BUILD = "BUILD"  # the server or the database is still coming up
    HEALTHY = "HEALTHY"  # the database answered its last check
    SHUTDOWN = "SHUTDOWN"  # the server is stopped, or the database refuses connections
    FAILED = "FAILED"  # the database stopped answering, or Hearth's credentials no longer work
    RESTART_REQUIRED = "RESTART_REQUIRED"  # a configuration change waits for a restart


class OperationState:
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    ACTIVE = frozenset({QUEUED, RUNNING})


class Instance(Base):
    __tablename__ = "instances"
    __table_args__ = (Index("ix_instances_project_live", "project_id", "deleted_at", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    engine: Mapped[str] = mapped_column(String(32))  # the engine that owns the instance's resources
    datastore: Mapped[str] = mapped_column(String(64))
    datastore_version: Mapped[str] = mapped_column(String(64))
    flavor_id: Mapped[str] = mapped_column(String(64))
    volume_size: Mapped[int] = mapped_column(Integer)
    image_id: Mapped[str | None] = mapped_column(String(64))
    network_id: Mapped[str | None] = mapped_column(String(64))
    availability_zone: Mapped[str | None] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer)  # the datastore's port, which the access rules open
    task: Mapped[str] = mapped_column(String(32), default=Task.NONE)
    server_status: Mapped[str | None] = mapped_column(String(32))  # the last Nova status the engine saw
    fault: Mapped[str | None] = mapped_column(Text)
    fault_at: Mapped[datetime | None] = mapped_column(DateTime)
    server_id: Mapped[str | None] = mapped_column(String(64))
    volume_id: Mapped[str | None] = mapped_column(String(64))
    secgroup_id: Mapped[str | None] = mapped_column(String(64))
    stack_id: Mapped[str | None] = mapped_column(String(64))
    stack_status: Mapped[str | None] = mapped_column(String(64))
    # Kind key -> cloud id, for the resource kinds (engines.resources.KINDS) without a column above: a kind
    # added to the declaration is recorded here, with no schema change.
    extra_resource_ids: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # What the cloud holds that differs from the record, when a failed change could be neither completed nor
    # rolled back (shown by `show` and in events; cleared once a later operation or reconcile makes them equal).
    drift: Mapped[str | None] = mapped_column(Text)
    # The instance as a database (issue 14): where its port goes, whether it has a public address, the
    # addresses the cloud gave it ([{"address", "type": private|public, "network"}], refreshed by operations),
    # the database superuser's password (sealed by hearth.secrets), and the service's health.
    subnet_id: Mapped[str | None] = mapped_column(String(64))
    fixed_ip: Mapped[str | None] = mapped_column(String(64))
    volume_type: Mapped[str | None] = mapped_column(String(255))
    is_public: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    addresses: Mapped[list[Any] | None] = mapped_column(JSON)
    admin_password: Mapped[str | None] = mapped_column(Text)  # sealed
    # The create request's databases and users (passwords included), sealed, until the database has them.
    bootstrap: Mapped[str | None] = mapped_column(Text)
    operating_status: Mapped[str] = mapped_column(String(32), default="", server_default="")
    volume_used_bytes: Mapped[int | None] = mapped_column(BigInteger)  # what the databases use (health checks)
    service_status_updated: Mapped[datetime | None] = mapped_column(DateTime)
    configuration_id: Mapped[str | None] = mapped_column(String(36), index=True)
    restart_required: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime)

    # selectin: a page of instances loads all its rules in one query (a lazy load was one query per row).
    rules: Mapped[list[SecurityGroupRule]] = relationship(
        back_populates="instance", cascade="all, delete-orphan", order_by="SecurityGroupRule.created_at",
        lazy="selectin",
    )


class SecurityGroupRule(Base):
    """One ingress rule Hearth wants on the instance's group; `cloud_rule_id` is the Neutron rule realising it."""

    __tablename__ = "security_group_rules"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    instance_id: Mapped[str] = mapped_column(ForeignKey("instances.id", ondelete="CASCADE"), index=True)
    protocol: Mapped[str] = mapped_column(String(16), default="tcp")
    from_port: Mapped[int] = mapped_column(Integer)
    to_port: Mapped[int] = mapped_column(Integer)
    cidr: Mapped[str] = mapped_column(String(64))
    cloud_rule_id: Mapped[str | None] = mapped_column(String(64))
    # ACCESS: the user's allowed CIDRs (the API's access.allowed_cidrs); MANAGEMENT: Hearth's own way in
    # (the `management_cidrs` setting), shown apart and never changed by the user's access updates.
    purpose: Mapped[str] = mapped_column(String(16), default="access", server_default="access")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    instance: Mapped[Instance] = relationship(back_populates="rules")

    ACCESS = "access"
    MANAGEMENT = "management"


class Configuration(Base):
    """A configuration group (Trove's `/configurations`): parameter values for one datastore version,
    applied to each instance attached to it (instances.configuration_id)."""

    __tablename__ = "configurations"
    __table_args__ = (Index("ix_configurations_project_live", "project_id", "deleted_at", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    datastore: Mapped[str] = mapped_column(String(64))
    datastore_version: Mapped[str] = mapped_column(String(64))
    values: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime)


class Operation(Base):
    """A durable unit of work: queued by the API, claimed and run by a task manager worker.

    `journal` is where the engine records each cloud resource the moment it exists, so a worker
    that dies mid-way can be resumed (or cleaned up after) by another.
    """

    __tablename__ = "operations"
    __table_args__ = (Index("ix_operations_state_created", "state", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    instance_id: Mapped[str] = mapped_column(ForeignKey("instances.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(16), default=OperationState.QUEUED)
    step: Mapped[str | None] = mapped_column(String(64))
    journal: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # claims, the first run included
    # Claims that were transient-fault retries (requeued on purpose, not a worker that died): attempts - retries
    # is what counts towards giving up on an operation that keeps losing its worker.
    retries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    retry_at: Mapped[datetime | None] = mapped_column(DateTime)  # a requeued retry is not claimed before this
    # The API request that queued it (hearth.request_ids): its cloud calls carry it as the global request id.
    request_id: Mapped[str | None] = mapped_column(String(64))
    worker: Mapped[str | None] = mapped_column(String(128))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)


class Event(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    instance_id: Mapped[str] = mapped_column(String(36), index=True)
    operation_id: Mapped[str | None] = mapped_column(String(36))
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    level: Mapped[str] = mapped_column(String(16), default="info")
    message: Mapped[str] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(String(64))  # the API request it was written on behalf of


class FleetMigration(Base):
    """A fleet migration (hearth admin migrate): move every chosen instance to one engine (adopt into Heat
    stacks, or release back to natives), a few at a time. Durable: the task manager's driver
    (taskmanager.fleet_jobs) advances it from these rows, so it survives restarts, and can be paused,
    resumed and cancelled. `plan` is what the dry run showed: {"move": [instance ids], "refused": [{"id",
    "reasons"}]}; `progress` maps each moving instance to {"state", "operation_id", "ids", "note"}."""

    __tablename__ = "fleet_migrations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    target: Mapped[str] = mapped_column(String(32))  # orchestrator (adopt) or natives (release)
    project_id: Mapped[str | None] = mapped_column(String(64))  # only this project's instances
    max_in_flight: Mapped[int] = mapped_column(Integer, default=10)
    state: Mapped[str] = mapped_column(String(16), default="running")  # running, paused, cancelled, finished
    plan: Mapped[dict[str, Any]] = mapped_column(default=dict)
    progress: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
