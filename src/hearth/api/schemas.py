"""Request bodies of the Trove-compatible API (pydantic). Shapes follow Trove's JSON schema; fields
Hearth does not implement (replicas, backups, locality, modules) are refused by name (UNSUPPORTED_CREATE)
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
    type: str | None = Field(default=None, max_length=255, description="Cinder volume type of the data volume")


class DatastoreIn(Lenient):
    type: str | None = None
    version: str | None = None
    version_number: str | None = None


class AccessIn(Lenient):
    is_public: bool | None = Field(default=None, description="A floating IP from the public network on the "
                                                             "instance's port (listed in addresses, type public)")
    allowed_cidrs: list[str] | None = Field(
        default=None, max_length=MAX_ALLOWED_CIDRS,
        description="CIDRs allowed to reach the datastore port; default on create: 0.0.0.0/0. Repeats are "
                    "dropped; the cloud's security group rule quota must hold them (413 otherwise)")


class NicIn(Strict):
    """Where the instance's port goes (Trove: one nic): a network, a subnet, and/or an address on it."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    net_id: str | None = Field(default=None, alias="net-id", max_length=64)
    network_id: str | None = Field(default=None, max_length=64)
    subnet_id: str | None = Field(default=None, max_length=64)
    ip_address: str | None = Field(default=None, max_length=64)
    v4_fixed_ip: str | None = Field(default=None, alias="v4-fixed-ip", max_length=64)


class DatabaseIn(Lenient):
    name: str = Field(min_length=1, max_length=255)
    character_set: str | None = Field(default=None, max_length=64)
    collate: str | None = Field(default=None, max_length=64)


class DatabaseRef(Lenient):
    name: str = Field(min_length=1, max_length=255)


class UserIn(Lenient):
    name: str = Field(min_length=1, max_length=255)
    password: str = Field(max_length=255)
    host: str | None = Field(default=None, max_length=255)
    databases: list[DatabaseRef] = Field(default_factory=list, max_length=100)


#: Create fields of Trove's that Hearth does not support: each a 400 that names it (never ignored).
UNSUPPORTED_CREATE = {
    "replica_of": "replicas", "replica_count": "replicas", "restorePoint": "restoring from backups",
    "locality": "server group locality", "modules": "modules", "instance_type": "instance types",
}


class InstanceCreate(Strict):
    name: str = Field(min_length=1, max_length=MAX_NAME, description="Any text without control characters")
    flavorRef: FlavorRef
    volume: VolumeIn
    datastore: DatastoreIn | None = None
    access: AccessIn | None = None
    availability_zone: str | None = Field(default=None, max_length=255,
                                          description="A zone both Nova and Cinder have (400 otherwise)")
    region_name: str | None = None
    nics: list[NicIn] | None = Field(default=None, max_length=1,
                                     description="At most one: the network (or subnet, address) of the instance's "
                                                 "port; default: the configured network")
    databases: list[DatabaseIn] | None = Field(default=None, max_length=100)
    users: list[UserIn] | None = Field(default=None, max_length=100)
    configuration: str | None = Field(default=None, max_length=36, description="A configuration group's id")
    replica_of: Any = None
    replica_count: Any = None
    restorePoint: Any = None
    locality: Any = None
    modules: Any = None
    instance_type: Any = None


class InstanceCreateBody(Strict):
    instance: InstanceCreate


class InstanceUpdate(Strict):
    """PUT and PATCH: a new name, access (allowed CIDRs and/or public), a configuration group to attach (null:
    detach), or another datastore version of the same major release (an upgrade)."""

    name: str | None = Field(default=None, min_length=1, max_length=MAX_NAME)
    access: AccessIn | None = None
    configuration: str | None = Field(default=None, max_length=36)
    datastore_version: str | None = Field(default=None, max_length=64)
    replica_of: Any = None
    slave_of: Any = None


class InstanceUpdateBody(Strict):
    instance: InstanceUpdate


class ResizeIn(Strict):
    flavorRef: FlavorRef | None = None
    volume: VolumeIn | None = None


class RebuildIn(Lenient):
    image_id: str = Field(min_length=1, max_length=64)


class ActionBody(BaseModel):
    """Exactly one action: `resize` (flavor or volume), `restart` (the database's server), `rebuild` (a new
    image, the data volume kept), `reset_status` (Trove's: from an administrator, an instance in ERROR goes back
    to idle; from its owner it is accepted and changes nothing, as the instance can be deleted as it is), or
    Hearth's admin-only `adopt` / `release` / `reconcile` (an empty object each). Other keys are unknown
    actions (400)."""

    model_config = ConfigDict(extra="allow")

    resize: ResizeIn | None = None
    restart: dict[str, Any] | None = None
    rebuild: RebuildIn | None = None
    reset_status: dict[str, Any] | None = None
    adopt: dict[str, Any] | None = None
    release: dict[str, Any] | None = None
    reconcile: dict[str, Any] | None = None


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
