"""The orchestration records: stacks, their resources and events (plain, JSON-able dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

IN_PROGRESS, COMPLETE, FAILED = "IN_PROGRESS", "COMPLETE", "FAILED"
INIT, CREATE, UPDATE, DELETE, ROLLBACK = "INIT", "CREATE", "UPDATE", "DELETE", "ROLLBACK"
CHECK, ADOPT, SUSPEND, RESUME = "CHECK", "ADOPT", "SUSPEND", "RESUME"


@dataclass(slots=True)
class ResourceRecord:
    """One logical resource of a stack, and the physical resource behind it (`physical_id`)."""

    name: str
    type: str
    id: str
    action: str = INIT
    status: str = COMPLETE
    status_reason: str = ""
    physical_id: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)  # the typed values last applied
    data: dict[str, Any] = field(default_factory=dict)  # the plugin's own notes (steps, targets, short id)
    requires: list[str] = field(default_factory=list)
    created_time: str | None = None
    updated_time: str | None = None


@dataclass(slots=True)
class Event:
    id: str
    resource_name: str
    physical_resource_id: str
    resource_status: str
    resource_status_reason: str
    event_time: str
    resource_type: str
    resource_properties: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Stack:
    id: str
    name: str
    project_id: str
    user_id: str
    template: dict[str, Any]
    parameters: dict[str, Any]  # what the request supplied (PATCH merges into these)
    environment: dict[str, Any]
    files: dict[str, Any]
    creation_time: str
    disable_rollback: bool = True
    timeout_mins: int | None = None
    tags: list[str] = field(default_factory=list)
    action: str = CREATE
    status: str = IN_PROGRESS
    status_reason: str = "Stack CREATE started"
    updated_time: str | None = None
    deletion_time: str | None = None
    resources: dict[str, ResourceRecord] = field(default_factory=dict)
    retired: list[ResourceRecord] = field(default_factory=list)  # replaced or removed, awaiting deletion
    events: list[Event] = field(default_factory=list)
    previous: dict[str, Any] | None = None  # template/parameters/environment before an update, for rollback
    generation: int = 0
    # The creator's admin role: Heat's resources act with the stack's stored credentials (its trust), so an
    # admin's stack may, as in Neutron, put a port on another project's network.
    is_admin: bool = False

    @property
    def stack_status(self) -> str:
        return f"{self.action}_{self.status}"

    @property
    def deleted(self) -> bool:
        return self.action == DELETE and self.status == COMPLETE
