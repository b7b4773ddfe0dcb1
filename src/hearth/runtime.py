"""The composition root: settings in, database, cloud connections and engines out.

The API, the task manager and the CLI all start from `build_runtime`, so each piece is wired once.
"""

from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from hearth import engines, metrics, metrics_db
from hearth.cloud import CloudConnections, default_clouds_yaml
from hearth.config import Settings
from hearth.db.session import make_engine, session_factory, upgrade
from hearth.engines.base import EngineError, NotConfigured, Relocation, ResourceEngine
from hearth.engines.common import ensure_discovered, service_of_url
from hearth.secrets import SecretBox, load_or_create_key

log = logging.getLogger(__name__)

# Which engines may serve (own) instances under each `engine` setting (`auto` resolves to natives or
# migration). Whatever engine owns an instance keeps serving it while the setting allows that engine.
ALLOWED_ENGINES: dict[str, frozenset[str]] = {
    "natives": frozenset({"natives"}),
    "orchestrator": frozenset({"orchestrator"}),
    "migration": frozenset({"natives", "orchestrator"}),
}


class EngineNotAllowed(EngineError):
    """An instance is owned by an engine the current `engine` setting does not allow."""


@dataclass
class Runtime:
    settings: Settings
    db_engine: Engine
    sessions: sessionmaker[Session]
    connections: CloudConnections
    _engines: dict[str, ResourceEngine] = field(default_factory=dict)
    _mode: str | None = None  # the `engine` setting with `auto` resolved (read from the catalog once)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _secrets: SecretBox | None = None

    @property
    def secrets(self) -> SecretBox:
        """Seals and opens stored secrets with the key of `secret_key_file` (made, mode 0600, when missing)."""
        with self._lock:
            if self._secrets is None:
                self._secrets = SecretBox([load_or_create_key(self.settings.secret_key_path)])
            return self._secrets

    def engine(self, name: str) -> ResourceEngine:
        """The engine of that name, built once under the lock (two workers asking at once must not build
        two engines and leak one's thread pool) and shared by every worker thread. An engine composing
        others (migration) resolves them here, so it shares the Runtime's own (the lock is re-entrant)."""
        with self._lock:
            if name not in self._engines:
                self._engines[name] = engines.build_engine(name, self.settings, self.connections, self.engine)
            return self._engines[name]

    def engine_mode(self) -> str:
        """natives, orchestrator or migration: the setting, with `auto` decided by whether the cloud's
        catalog has an `orchestration` service (read once per Runtime; an unreadable catalog is retried)."""
        if self.settings.engine != "auto":
            return self.settings.engine
        with self._lock:
            if self._mode is None:
                try:
                    endpoint = self.connections.get().endpoint_for("orchestration")
                except Exception as exc:  # the catalog cannot be read: not decided yet
                    raise NotConfigured(f"engine = auto: could not read the cloud's service catalog "
                                      f"({exc.__class__.__name__})") from None
                self._mode = "migration" if endpoint else "natives"
                log.info("engine = auto: the cloud %s Heat, using %s", "has" if endpoint else "has no", self._mode)
            return self._mode

    def engine_for_new_instance(self) -> str:
        """Which engine builds a new instance: natives under natives, else the orchestrator."""
        return "natives" if self.engine_mode() == "natives" else "orchestrator"

    def allowed_engines(self) -> frozenset[str]:
        return ALLOWED_ENGINES[self.engine_mode()]

    def check_owner(self, instance_id: str, owner: str) -> None:
        """EngineNotAllowed, naming the way out, when the setting no longer allows the instance's engine."""
        mode = self.engine_mode()
        if owner in ALLOWED_ENGINES[mode]:
            return
        setting = self.settings.engine + (f" (resolved to {mode})" if self.settings.engine != mode else "")
        if owner == "orchestrator":
            way_out = ("set engine = migration (it serves natives and Heat-owned instances alike), and "
                       f"release the instance to natives (`hearth instance release {instance_id}`) if you then "
                       "want to go back to engine = natives")
        elif owner == "natives":
            way_out = ("set engine = migration (it serves natives and Heat-owned instances alike), and adopt the "
                       f"instance into a stack (`hearth instance adopt {instance_id}`) if you then want to go to "
                       "engine = orchestrator")
        else:
            way_out = "set engine = migration"
        raise EngineNotAllowed(f"instance {instance_id} is owned by the {owner} engine, which the engine setting "
                               f"{setting} does not allow; {way_out}")

    def owning_engine(self, instance_id: str, owner: str) -> ResourceEngine:
        """The engine that serves an instance owned by `owner` (refused when the setting forbids it)."""
        self.check_owner(instance_id, owner)
        return self.engine(owner)

    def relocation(self) -> tuple[ResourceEngine, Relocation]:
        """The engine that adopts and releases (the one the setting names), with that capability; refused
        when the setting's engine has none (only migration serves natives and Heat-owned instances alike)."""
        mode = self.engine_mode()
        engine = self.engine(mode)
        relocation = engine.relocation()
        if relocation is None:
            raise EngineNotAllowed(f"adopt and release need engine = migration (or auto on a cloud with Heat); "
                                   f"the engine setting is {self.settings.engine}"
                                   + (f" (resolved to {mode})" if mode != self.settings.engine else ""))
        return engine, relocation

    def close(self) -> None:
        """Close every engine built here (stopping their thread pools) before the connections they use and
        the database. Taken under the build lock, so no engine built concurrently is missed; one failing
        close is logged and does not leave the others open. Engines close newest first: the migration
        engine (which closes only what it built itself) goes before the shared engines it composes."""
        with self._lock:
            built = list(self._engines.values())
            self._engines.clear()
        for engine in reversed(built):
            try:
                engine.close()
            except Exception:
                log.exception("closing the %s engine failed", engine.name)
        self.connections.close()
        self.db_engine.dispose()


def build_runtime(settings: Settings, migrate: bool = True) -> Runtime:
    url = settings.database_url
    if migrate:
        upgrade(url)
    db_engine = make_engine(url)
    clouds_yaml = settings.clouds_yaml or default_clouds_yaml(settings.home)
    metrics.enabled = settings.metrics
    hooks = (metrics.cloud_request_hook(service_of_url),) if settings.metrics else ()
    runtime = Runtime(
        settings=settings,
        db_engine=db_engine,
        sessions=session_factory(db_engine),
        connections=CloudConnections(settings.cloud, clouds_yaml,
                                     ready=functools.partial(ensure_discovered, services=cloud_services(settings)),
                                     response_hooks=hooks),
    )
    metrics_db.watch(runtime)
    return runtime


def cloud_services(settings: Settings) -> tuple[str, ...]:
    """The services (openstacksdk proxy names) Hearth's engines and API call: each Connection discovers them
    before it is used (engines.common.ensure_discovered). Heat only where an engine setting can use it."""
    heat = ("orchestration",) if settings.engine in ("orchestrator", "migration") else ()
    return ("compute", "block_storage", "network", "image", *heat)
