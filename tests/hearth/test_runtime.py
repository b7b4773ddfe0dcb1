"""The composition root: one engine per name however many workers ask at once, and close() stops them all."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from hearth import engines
from hearth.config import Settings
from hearth.engines.base import ResourceEngine
from hearth.runtime import build_runtime


@pytest.fixture
def runtime_settings(tmp_path: Path, fakecloud) -> Settings:
    return Settings(home=tmp_path, db_url=f"sqlite:///{tmp_path / 'hearth.sqlite'}", cloud="fakecloud",
                    clouds_yaml=fakecloud.write_clouds_yaml(tmp_path / "clouds.yaml"), workers=2,
                    engine="migration")


def test_concurrent_callers_share_one_engine_per_name(runtime_settings):
    runtime = build_runtime(runtime_settings)
    callers = 16
    start = threading.Barrier(callers)

    def ask(index: int) -> ResourceEngine:
        start.wait()
        return runtime.engine(("natives", "orchestrator", "migration")[index % 3])

    try:
        with ThreadPoolExecutor(max_workers=callers) as pool:
            got = list(pool.map(ask, range(callers)))
        by_name: dict[str, set[int]] = {}
        for engine in got:
            by_name.setdefault(engine.name, set()).add(id(engine))
        assert {name: len(ids) for name, ids in by_name.items()} == {"natives": 1, "orchestrator": 1, "migration": 1}
        migration = runtime.engine("migration")
        assert migration.natives is runtime.engine("natives")  # composed from the shared engines
        assert migration.orchestrator is runtime.engine("orchestrator")
        natives = runtime.engine("natives")
    finally:
        runtime.close()
    with pytest.raises(RuntimeError, match="shutdown"):  # its thread pool was stopped by close()
        natives._pool.submit(print)


class _FailingClose(ResourceEngine):
    """A registered engine whose close fails: the Runtime must still close everything else."""

    name = "test-failing-close"

    def __init__(self, settings: Settings, connections: object, resolve: object = None) -> None:
        self.settings = settings

    def close(self) -> None:
        raise RuntimeError("close failed")

    def provision(self, spec: Any, ctx: Any) -> Any:
        raise NotImplementedError

    def resize_flavor(self, spec: Any, current: Any, ctx: Any) -> Any:
        raise NotImplementedError

    def resize_volume(self, spec: Any, current: Any, ctx: Any) -> Any:
        raise NotImplementedError

    def apply_rules(self, spec: Any, current: Any, ctx: Any) -> Any:
        raise NotImplementedError

    def restart(self, spec: Any, current: Any, ctx: Any) -> Any:
        raise NotImplementedError

    def rebuild(self, spec: Any, current: Any, ctx: Any) -> Any:
        raise NotImplementedError

    def reconcile(self, spec: Any, current: Any, ctx: Any) -> Any:
        raise NotImplementedError

    def delete(self, spec: Any, current: Any, ctx: Any) -> None:
        raise NotImplementedError

    def describe(self, spec: Any, current: Any) -> Any:
        raise NotImplementedError


def test_close_closes_every_engine_even_when_one_fails(runtime_settings, caplog, monkeypatch):
    monkeypatch.setitem(engines._REGISTRY, _FailingClose.name, _FailingClose)  # registered for this test only
    runtime = build_runtime(runtime_settings)
    natives = runtime.engine("natives")
    runtime.engine(_FailingClose.name)  # built after natives, so closed before it
    runtime.close()
    assert "closing the test-failing-close engine failed" in caplog.text
    with pytest.raises(RuntimeError, match="shutdown"):
        natives._pool.submit(print)
    runtime.close()  # a second close is harmless
