"""Resource engines, registered by name: `natives` (Nova/Cinder/Neutron directly), `orchestrator`
(one Heat stack per instance) and `migration` (a mixed fleet, composing the other two)."""

from __future__ import annotations

from collections.abc import Callable

from hearth.cloud import CloudConnections
from hearth.config import Settings
from hearth.engines.base import EngineError, EngineResolver, ResourceEngine

#: Builds an engine from the settings, the cloud connections and a resolver of sibling engines by name.
EngineBuilder = Callable[[Settings, CloudConnections, EngineResolver | None], ResourceEngine]

def _natives(settings: Settings, connections: CloudConnections, _resolve: EngineResolver | None) -> ResourceEngine:
    from hearth.engines.natives import NativesEngine

    return NativesEngine(settings, connections)


def _orchestrator(settings: Settings, connections: CloudConnections,
                  _resolve: EngineResolver | None) -> ResourceEngine:
    from hearth.engines.orchestrator import OrchestratorEngine

    return OrchestratorEngine(settings, connections)


def _migration(settings: Settings, connections: CloudConnections, resolve: EngineResolver | None) -> ResourceEngine:
    from hearth.engines.migration import MigrationEngine

    return MigrationEngine(settings, connections, resolve)


# The built-in engines, imported when first built (an engine module never imports this package back).
_REGISTRY: dict[str, EngineBuilder] = {"natives": _natives, "orchestrator": _orchestrator, "migration": _migration}


def register(name: str, builder: EngineBuilder) -> None:
    """Add an engine (a plug-in, or a test's) under `name`."""
    _REGISTRY[name] = builder


def available() -> list[str]:
    return sorted(_REGISTRY)


def build_engine(name: str, settings: Settings, connections: CloudConnections,
                 resolve: EngineResolver | None = None) -> ResourceEngine:
    """A new engine `name`. `resolve` gives it the sibling engines it composes (the Runtime passes its own
    shared ones); without it, an engine builds the siblings it needs itself and closes them with itself."""
    try:
        builder = _REGISTRY[name]
    except KeyError:
        raise EngineError(f"unknown engine {name!r}; available: {', '.join(sorted(_REGISTRY))}") from None
    return builder(settings, connections, resolve)
