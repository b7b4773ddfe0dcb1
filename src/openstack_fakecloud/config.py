"""fakecloud's configuration: users, flavors, images, delays, microversion caps, quotas and faults.

One pydantic model, loaded from YAML or TOML. Every field has a default, so an empty file (or none)
gives a usable cloud with the `zero` delay profile.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from openstack_fakecloud.faults import FaultRule


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserSpec(Model):
    name: str
    password: str
    project: str
    roles: list[str] = Field(default_factory=lambda: ["member", "reader"])


class FlavorSpec(Model):
    id: str
    name: str
    ram: int
    vcpus: int
    disk: int
    ephemeral: int = 0
    swap: int = 0
    is_public: bool = True


class ImageSpec(Model):
    name: str
    id: str | None = None
    min_disk: int = 0
    min_ram: int = 0
    disk_format: str = "qcow2"
    properties: dict[str, str] = Field(default_factory=dict)


class CatalogEntry(Model):
    """An extra service in the catalog (Hearth registers `database` this way)."""

    type: str
    name: str
    url: str  # may contain {base} and {project_id}


class Delays(Model):
    """Seconds each asynchronous transition takes on the cloud clock."""

    server_boot: float = 0.0
    server_resize: float = 0.0
    server_confirm_resize: float = 0.0
    server_revert_resize: float = 0.0
    server_reboot: float = 0.0
    server_rebuild: float = 0.0
    server_delete: float = 0.0
    volume_create: float = 0.0
    volume_delete: float = 0.0
    volume_attach: float = 0.0
    volume_detach: float = 0.0
    volume_extend: float = 0.0
    stack_overhead: float = 0.0
    stack_retry_backoff: float = 0.0  # scale of Heat's 2**attempt s wait before re-creating a resource in ERROR


PROFILES: dict[str, Delays] = {
    "zero": Delays(),
    "realistic": Delays(
        server_boot=3.0,
        server_resize=3.0,
        server_confirm_resize=0.5,
        server_revert_resize=1.5,
        server_reboot=1.0,
        server_rebuild=3.0,
        server_delete=1.0,
        volume_create=2.0,
        volume_delete=0.5,
        volume_attach=1.0,
        volume_detach=0.5,
        volume_extend=1.0,
        stack_overhead=0.3,
        stack_retry_backoff=1.0,
    ),
}


class Quotas(Model):
    """Per-project limits; -1 means unlimited, as in OpenStack."""

    instances: int = 50
    cores: int = 200
    ram: int = 512000
    volumes: int = 50
    gigabytes: int = 5000
    security_groups: int = 50
    security_group_rules: int = 500
    ports: int = 200


def _default_users() -> list[UserSpec]:
    return [
        UserSpec(name="admin", password="admin", project="admin", roles=["admin", "member", "reader"]),
        UserSpec(name="demo", password="demo", project="demo"),
    ]


def _default_flavors() -> list[FlavorSpec]:
    return [
        FlavorSpec(id="1", name="m1.tiny", ram=512, vcpus=1, disk=1),
        FlavorSpec(id="2", name="m1.small", ram=2048, vcpus=1, disk=20),
        FlavorSpec(id="3", name="m1.medium", ram=4096, vcpus=2, disk=40),
        FlavorSpec(id="4", name="m1.large", ram=8192, vcpus=4, disk=80),
        FlavorSpec(id="5", name="m1.xlarge", ram=16384, vcpus=8, disk=160),
    ]


def _default_images() -> list[ImageSpec]:
    return [
        ImageSpec(name="cirros-0.6.2", min_disk=1),
        ImageSpec(name="postgresql-16", min_disk=1, properties={"datastore": "postgresql", "version": "16"}),
        # Runs a real PostgreSQL 16 in each server booted from it (openstack_fakecloud.guests; README, "Guests").
        ImageSpec(name="postgresql-16-guest", min_disk=1,
                  properties={"datastore": "postgresql", "version": "16", "fakecloud_guest": "postgresql"}),
        ImageSpec(name="mysql-8.0", min_disk=1, properties={"datastore": "mysql", "version": "8.0"}),
    ]


class CloudConfig(Model):
    region: str = "RegionOne"
    token_ttl_seconds: int = 86400
    profile: Literal["zero", "realistic"] | None = None
    delays: Delays = Field(default_factory=Delays)
    users: list[UserSpec] = Field(default_factory=_default_users)
    flavors: list[FlavorSpec] = Field(default_factory=_default_flavors)
    images: list[ImageSpec] = Field(default_factory=_default_images)
    compute_max_microversion: str = "2.79"
    volume_max_microversion: str = "3.70"
    quotas: Quotas = Field(default_factory=Quotas)
    disabled_services: list[str] = Field(default_factory=list)
    catalog: list[CatalogEntry] = Field(default_factory=list)
    faults: list[FaultRule] = Field(default_factory=list)
    # When set (e.g. upstream Heat, "http://127.0.0.1:8004/v1/{project_id}"), the catalog's orchestration
    # entry points there and fakecloud's own Heat routes are not served.
    orchestration_url: str | None = None
    # How `fakecloud serve` writes its log (access log included): text lines, or JSON lines for log shippers.
    log_format: Literal["text", "json"] = "text"

    @field_validator("compute_max_microversion", "volume_max_microversion")
    @classmethod
    def _is_version(cls, value: str) -> str:
        major, _, minor = value.partition(".")
        if not (major.isdigit() and minor.isdigit()):
            raise ValueError(f"microversion must look like '2.79', got {value!r}")
        return value

    def model_post_init(self, __context: object) -> None:
        if self.profile is not None and "delays" not in self.model_fields_set:
            self.delays = PROFILES[self.profile].model_copy()


def load_config(path: str | Path | None) -> CloudConfig:
    """Read a YAML (.yaml/.yml) or TOML (.toml) file; None gives the defaults."""
    if path is None:
        return CloudConfig()
    path = Path(path)
    text = path.read_text()
    data = tomllib.loads(text) if path.suffix == ".toml" else (yaml.safe_load(text) or {})
    return CloudConfig.model_validate(data)
