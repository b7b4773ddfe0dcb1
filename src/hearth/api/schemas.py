"""Request bodies of the Trove-compatible API (pydantic). Shapes follow Trove's JSON schema; fields
Hearth does not implement (users, databases, replicas, backups, configurations...) are refused by name
rather than silently ignored. Semantic checks (flavor exists, CIDR valid, sizes) live in the service
layer, which also serves the CLI.

Numbers are never booleans: pydantic's lax mode would take `"size": true` as 1 GB and `"flavorRef": true` as
flavor 1, so both refuse a boolean before anything else looks at them (digit strings stay accepted for sizes,
as Trove's schema allows)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from hearth.service import MAX_ALLOWED_CIDRS, MAX_NAME, MAX_VOLUME_GB


def _not_a_boolean(value: Any) -> Any:
    if isinstance(value, bool):
        raise PydanticCustomError("bool_is_not_a_number", "must be a number or a string, not true or false")
    return value


Size = Annotated[int, BeforeValidator(_not_a_boolean),
                 Field(ge=1, le=MAX_VOLUME_GB, description="Size of the data volume in GB")]
FlavorRef = Annotated[str | int, BeforeValidator(_not_a_boolean), Field(description="Flavor id (or href)")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Lenient(BaseModel):
    """Objects clients fill with optional extras Hearth can ignore safely."""

    model_config = ConfigDict(extra="ignore")


class VolumeIn(Lenient):
    size: Size
    type: str | None = Field(default=None, description="Accepted for compatibility; Hearth uses the default type")


class DatastoreIn(Lenient):
    type: str | None = None
    version: str | None = None
    version_number: str | None = None


class AccessIn(Lenient):
    is_public: bool | None = Field(default=None, description="Accepted for compatibility; no effect in Hearth")
    allowed_cidrs: list[str] | None = Field(
        default=None, max_length=MAX_ALLOWED_CIDRS,
        description="CIDRs allowed to reach the datastore port; default on create: 0.0.0.0/0. Repeats are "
                    "dropped; the cloud's security group rule quota must hold them (413 otherwise)")


class InstanceCreate(Strict):
    name: str = Field(min_length=1, max_length=MAX_NAME, description="Any text without control characters")
    flavorRef: FlavorRef
    volume: VolumeIn
    datastore: DatastoreIn | None = None
    access: AccessIn | None = None
    availability_zone: str | None = Field(default=None, max_length=255,
                                          description="A zone both Nova and Cinder have (400 otherwise)")
    region_name: str | None = None
    nics: list[dict[str, Any]] | None = Field(default=None, max_length=0,
                                              description="Not supported: Hearth uses the configured network")


class InstanceCreateBody(Strict):
    instance: InstanceCreate


class InstanceUpdate(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=MAX_NAME)
    access: AccessIn | None = None


class InstanceUpdateBody(Strict):
    instance: InstanceUpdate


class ResizeIn(Strict):
    flavorRef: FlavorRef | None = None
    volume: VolumeIn | None = None


class ActionBody(BaseModel):
    """Exactly one action: `resize` (flavor or volume), `reset_status` (accepted, a no-op: Hearth lets
    instances in ERROR be deleted as they are), or Hearth's admin-only `adopt` / `release` (an empty
    object each). Other keys are unknown actions (400)."""

    model_config = ConfigDict(extra="allow")

    resize: ResizeIn | None = None
    restart: dict[str, Any] | None = None
    reset_status: dict[str, Any] | None = None
    adopt: dict[str, Any] | None = None
    release: dict[str, Any] | None = None


class RuleCreate(Strict):
    group_id: str = Field(min_length=1)
    cidr: str = Field(min_length=1, max_length=64)


class RuleCreateBody(Strict):
    security_group_rule: RuleCreate


class RuleUpdate(Strict):
    cidr: str = Field(min_length=1, max_length=64)


class RuleUpdateBody(Strict):
    security_group_rule: RuleUpdate


class PlannedStepOut(BaseModel):
    action: str = Field(description="The cloud call (natives) or Heat's action (orchestrator)")
    target: str
    detail: str


class PlanOut(BaseModel):
    engine: str
    operation: str
    steps: list[PlannedStepOut]


class PlanBody(BaseModel):
    """A dry run's answer (`?dry_run=true`): what the request would do; nothing was recorded or changed."""

    plan: PlanOut
