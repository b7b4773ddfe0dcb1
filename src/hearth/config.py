"""Hearth's settings: one TOML file, every setting overridable by a HEARTH_<SETTING> environment variable.

Precedence: explicit arguments > environment > the TOML file named by HEARTH_CONFIG (or passed in)
> defaults. `hearth up` keeps all its state under `home`.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

EngineName = Literal["natives", "orchestrator", "migration", "auto"]


class DatastoreVersion(BaseModel):
    """One datastore version: the image it boots and the port its clients connect to. Versions of one
    datastore with the same major number (the name up to its first dot) can be upgraded to each other."""

    model_config = ConfigDict(extra="forbid")

    name: str
    image: str
    port: int
    protocol: Literal["tcp", "udp"] = "tcp"
    active: bool = True
    # Hearth manages the database over the network (health, databases, users, root, configuration) for the
    # datastores it has a manager for (hearth.management). False: an image whose database Hearth must not
    # touch; its instances are ready once the server is ACTIVE and show no operating_status.
    manage: bool = True
    # How the database gets its superuser's password at boot: `admin_pass`, an image that sets it from Nova's
    # adminPass (fakecloud's guest images, or an image prepared that way); `cloud_init`, a stock cloud image
    # (Debian, Ubuntu) that cloud-init turns into a PostgreSQL server on the data volume
    # (hearth.datastores.cloudinit: the version's major number must be the distribution's PostgreSQL).
    boot: Literal["admin_pass", "cloud_init"] = "admin_pass"

    @property
    def major(self) -> int | None:
        head = self.name.split(".")[0]
        return int(head) if head.isdigit() else None


class Datastore(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    default_version: str
    versions: list[DatastoreVersion]

    def version(self, name: str | None) -> DatastoreVersion | None:
        wanted = name or self.default_version
        return next((v for v in self.versions if v.name == wanted), None)


def _default_datastores() -> list[Datastore]:
    return [
        # fakecloud's guest image runs a real PostgreSQL 16 (its superuser's password is Nova's adminPass).
        Datastore(name="postgresql", default_version="16",
                  versions=[DatastoreVersion(name="16", image="postgresql-16-guest", port=5432)]),
        Datastore(name="mysql", default_version="8.0",
                  versions=[DatastoreVersion(name="8.0", image="mysql-8.0", port=3306)]),
    ]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HEARTH_", extra="forbid", env_nested_delimiter="__")

    home: Path = Path(".hearth")
    engine: EngineName = "natives"
    db_url: str | None = None  # default: sqlite file under home
    cloud: str = "fakecloud"  # a cloud name in clouds.yaml
    clouds_yaml: Path | None = None  # default: the usual openstacksdk search path
    api_host: str = "127.0.0.1"
    api_port: int = 8779
    public_url: str | None = None  # how clients reach the API (links, catalog); default from host/port
    # Task manager worker threads per process: how many operations run at once. An operation's thread mostly
    # waits on the cloud (a boot takes seconds), and an idle one costs nothing (it sleeps on a condition; it
    # connects on its first operation, sharing the process's token and discovery: a few ms of CPU). 128 lets
    # a burst of 100 creates start together instead of in waves (bench/hearth_burst.py: with 32, waves made
    # the last of 100 ACTIVE 2x later than the bare-SDK floor).
    workers: int = 128
    run_taskmanager_in_api: bool = True
    network: str | None = None  # network name or id for new instances; default: the project's own
    public_network: str = "public"  # the external network floating IPs of public instances come from
    # Where Hearth itself reaches each database from (health checks, databases, users, root, configuration):
    # every instance's group opens its datastore port to these CIDRs, shown apart from the user's allowed
    # CIDRs (access.management_cidrs) and in plans. The default is the host Hearth runs on, as seen by a
    # fakecloud guest (every fakecloud address is loopback); a real deployment sets its control network.
    management_cidrs: list[str] = Field(default_factory=lambda: ["127.0.0.1/32"])
    # The key sealing stored secrets (database passwords): a Fernet key file, made with mode 0600 by
    # `hearth up` under `home` when missing (default: home/secret.key).
    secret_key_file: Path | None = None
    health_check_seconds: float = 30.0  # idle instances' databases are checked this often (0: never)
    # Idle instances' cloud resources are compared with the record this often (taskmanager.drift; 0: never).
    drift_check_seconds: float = 300.0
    # When a drift check finds that only the instance's rules differ (one added or deleted in Neutron), queue a
    # reconcile at once. Off by default: an operator may want to see who changed a rule before it is undone.
    drift_repair_rules: bool = False
    datastore_ready_seconds: float = 600.0  # how long an operation waits for the database to answer
    datastores: list[Datastore] = Field(default_factory=_default_datastores)
    # Prometheus metrics (hearth.metrics): counted, and served at the API's /metrics; off only to measure their
    # cost. A task manager run alone (`hearth taskmanager`) serves them on 127.0.0.1:metrics_port (0: not served).
    metrics: bool = True
    metrics_port: int = Field(default=0, ge=0, le=65535)
    # How long a validated Keystone token is trusted without asking Keystone again, so a revoked token (or a
    # disabled user, a removed role) is refused within it. Like keystonemiddleware's token_cache_time, only
    # shorter; it costs one validation per token per 5 s (~3 ms against fakecloud, measured).
    token_cache_seconds: float = 5.0
    poll_initial_seconds: float = 0.02
    poll_max_seconds: float = 0.25
    poll_factor: float = 1.5
    operation_timeout_seconds: float = 1800.0  # from an operation's first claim; transient faults retry within it
    # An operation that met a transient cloud fault is requeued after an exponential backoff with jitter: about
    # retry_initial_seconds, doubling per retry up to retry_max_seconds (a cloud's Retry-After is honoured).
    retry_initial_seconds: float = 1.0
    retry_max_seconds: float = 30.0
    heartbeat_seconds: float = 2.0
    status_sync_seconds: float = 30.0  # idle instances re-read their server's status this often (0: never)
    # A running operation whose worker is silent this long is taken over (resumed from its journal by another
    # worker): with 2 s heartbeats, a dead task manager's work moves on within about 10 s.
    stale_after_seconds: float = 8.0
    log_level: str = "INFO"
    # Log lines (the hearth.access log included) as text for a terminal, or as JSON lines for log shippers.
    log_format: Literal["text", "json"] = "text"

    @field_validator("workers")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("workers must be at least 1")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _TomlSource(settings_cls)

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{(self.home / 'hearth.sqlite').resolve()}"

    @property
    def secret_key_path(self) -> Path:
        return self.secret_key_file or self.home / "secret.key"

    @property
    def api_url(self) -> str:
        return (self.public_url or f"http://{self.api_host}:{self.api_port}").rstrip("/")

    def datastore(self, name: str) -> Datastore | None:
        return next((d for d in self.datastores if d.name == name), None)


class SettingsFileError(ValueError):
    """The settings file names something that is not a setting (a typo must not silently fall back)."""


class _TomlSource(PydanticBaseSettingsSource):
    """Reads the file named by HEARTH_CONFIG, if any: top-level keys are settings, and only settings."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        path = os.environ.get("HEARTH_CONFIG")
        self._path = path
        self._data: dict[str, Any] = tomllib.loads(Path(path).read_text()) if path else {}

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        valid = list(self.settings_cls.model_fields)
        unknown = [key for key in self._data if key not in valid]
        if unknown:
            hints = [f"{key!r} (did you mean {close[0]!r}?)" if (close := difflib.get_close_matches(key, valid, 1))
                     else repr(key) for key in unknown]
            raise SettingsFileError(f"{self._path}: unknown setting(s) {', '.join(hints)}; "
                                    f"valid settings are: {', '.join(valid)}")
        return dict(self._data)


def load_settings(**overrides: Any) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
