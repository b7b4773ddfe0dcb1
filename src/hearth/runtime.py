"""The composition root: settings in, database, cloud connections and engines out.

The API, the task manager and the CLI all start from `build_runtime`, so each piece is wired once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from hearth import engines
from hearth.cloud import CloudConnections, default_clouds_yaml
from hearth.config import Settings
from hearth.db.session import make_engine, session_factory, upgrade
from hearth.engines.base import ResourceEngine

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    db_engine: Engine
    sessions: sessionmaker[Session]
    connections: CloudConnections
    _engines: dict[str, ResourceEngine] = field(default_factory=dict)

    def engine(self, name: str) -> ResourceEngine:
        """The engine of that name (built once, shared by every worker thread)."""
        if name not in self._engines:
            self._engines[name] = engines.build_engine(name, self.settings, self.connections)
        return self._engines[name]

    def engine_for_new_instance(self) -> str:
        """Which engine builds a new instance under the configured `engine` setting."""
        return "natives" if self.settings.engine in ("natives", "auto") else self.settings.engine

    def close(self) -> None:
        self.connections.close()
        self.db_engine.dispose()


def build_runtime(settings: Settings, migrate: bool = True) -> Runtime:
    url = settings.database_url
    if migrate:
        upgrade(url)
    db_engine = make_engine(url)
    clouds_yaml = settings.clouds_yaml or default_clouds_yaml(settings.home)
    return Runtime(
        settings=settings,
        db_engine=db_engine,
        sessions=session_factory(db_engine),
        connections=CloudConnections(settings.cloud, clouds_yaml),
    )
