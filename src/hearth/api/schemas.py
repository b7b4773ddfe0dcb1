"""Request bodies of the Trove-compatible API (pydantic). Shapes follow Trove's JSON schema; fields
Hearth does not implement (users, databases, replicas, backups, configurations...) are refused by name
rather than silently ignored. Semantic checks (flavor exists, CIDR valid, sizes) live in the service
layer, which also serves the CLI."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Lenient(BaseModel):
    """Objects clients fill with optional extras Hearth can ignore safely."""

    model_config = ConfigDict(extra="ignore")


class VolumeIn(Lenient):
    size: int = Field(ge=1, description="Size of the data volume in GB")
    type: str | None = Field(default=None, description="Accepted for compatibility; Hearth uses the default type")


class DatastoreIn(Lenient):
    type: str | None = None
    version: str | None = None
    version_number: str | None = None


class AccessIn(Lenient):
    is_public: bool | None = Field(default=None, description="Accepted for compatibility; no effect in Hearth")
    allowed_cidrs: list[str] | None = Field(
        default=None, description="CIDRs allowed to reach the datastore port; default on create: 0.0.0.0/0")


class InstanceCreate(Strict):
    name: str = Field(min_length=1, max_length=255)
    flavorRef: str | int = Field(description="Flavor id (or href)")
    volume: VolumeIn
    datastore: DatastoreIn | None = None
    access: AccessIn | None = None
    availability_zone: str | None = None
    region_name: str | None = None
    nics: list[dict[str, Any]] | None = Field(default=None, max_length=0,
                                              description="Not supported: Hearth uses the configured network")


class InstanceCreateBody(Strict):
    instance: InstanceCreate


class InstanceUpdate(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    access: AccessIn | None = None


class InstanceUpdateBody(Strict):
    instance: InstanceUpdate


class ResizeIn(Strict):
    flavorRef: str | int | None = None
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
