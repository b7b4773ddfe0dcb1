"""Resource engines, registered by name: `natives` (Nova/Cinder/Neutron directly), `orchestrator`
(one Heat stack per instance) and `migration` (a mixed fleet, composing the other two)."""

from __future__ import annotations

from collections.abc import Callable

from hearth.cloud import CloudConnections
from hearth.config import Settings
from hearth.engines.base import EngineError, EngineResolver, ResourceEngine

#: Builds an engine from the settings, the cloud connections and a resolver of sibling engines by name.
EngineBuilder = Callable[[Settings, CloudConnections, EngineResolver | None], ResourceEngine]

_REGISTRY: dict[str, EngineBuilder] = {}


def register(name: str, builder: EngineBuilder) -> None:
    _REGISTRY[name] = builder


def available() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def build_engine(name: str, settings: Settings, connections: CloudConnections,
                 resolve: EngineResolver | None = None) -> ResourceEngine:
    """A new engine `name`. `resolve` gives it the sibling engines it composes (the Runtime passes its own
    shared ones); without it, an engine builds the siblings it needs itself and closes them with itself."""
    _load_builtin()
    try:
        builder = _REGISTRY[name]
    except KeyError:
        raise EngineError(f"unknown engine {name!r}; available: {', '.join(sorted(_REGISTRY))}") from None
    return builder(settings, connections, resolve)


def _load_builtin() -> None:
    if "natives" not in _REGISTRY:
        from hearth.engines import natives  # noqa: F401  (registers itself)
    if "orchestrator" not in _REGISTRY:
        from hearth.engines import orchestrator  # noqa: F401  (registers itself)
    if "migration" not in _REGISTRY:
        from hearth.engines import migration  # noqa: F401  (registers itself)
