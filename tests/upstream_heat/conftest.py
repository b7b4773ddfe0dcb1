"""The real-Heat tier: the session's fakecloud has upstream OpenStack Heat (27.0.1) as its orchestration service.

`fakecloud_server` is replaced for this directory: one fakecloud whose catalog sends `orchestration` to
an upstream Heat process (fakecloud's own Heat routes are not mounted), with Heat's service user in its
Keystone. Every fixture built on it (`fakecloud`, `os_conn`, the engine fixtures) therefore drives
upstream Heat. The engine fixtures are the contract suite's own (tests/hearth/engines/conftest.py),
loaded from that file so the two tiers can never drift apart.

Installing Heat needs PyPI. When that fails, the tier fails under CI (CI set) and is skipped elsewhere.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from openstack_fakecloud.testing import RunningCloud, running_cloud
from openstack_fakecloud.upstream_heat import HeatInstallError, UpstreamHeat
from openstack_fakecloud.upstream_heat.runner import ensure_installed

ENGINE_TESTS = Path(__file__).resolve().parents[1] / "hearth" / "engines"


def load_module(name: str, path: Path) -> ModuleType:
    """Import a test module of another directory by path (tests/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


engine_fixtures = load_module("hearth_engine_fixtures", ENGINE_TESTS / "conftest.py")
# The contract suite's fixtures, registered here (pytest collects fixtures from this module's namespace).
settings = engine_fixtures.settings
connections = engine_fixtures.connections
engine = engine_fixtures.engine
natives = engine_fixtures.natives
image_id = engine_fixtures.image_id
make_spec = engine_fixtures.make_spec
frozen_clock = engine_fixtures.frozen_clock
cloud_state = engine_fixtures.cloud_state


def heat_engine_names() -> list[str]:
    """The engines that drive Heat: the orchestrator and the migration engine (new instances are stacks)."""
    from hearth import engines

    available = set(engines.available())
    wanted = [name for name in engine_fixtures.ENGINE_NAMES if name != "natives"]
    wanted += [name for name in ("orchestrator", "migration") if name not in wanted]
    return [name for name in wanted if name in available]


@pytest.fixture(params=heat_engine_names())
def engine_name(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def heat_python() -> Path:
    try:
        return ensure_installed()
    except HeatInstallError as err:
        if os.environ.get("CI"):
            pytest.fail(f"upstream Heat is required in CI and could not be installed: {err}", pytrace=False)
        pytest.skip(f"upstream Heat could not be installed (no PyPI?): {err}")


@pytest.fixture(scope="session")
def upstream_heat(heat_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpstreamHeat]:
    """Not started yet: `fakecloud_server` starts it once fakecloud (its Keystone) is up."""
    heat = UpstreamHeat(workdir=tmp_path_factory.mktemp("upstream-heat"))
    yield heat
    heat.stop()


@pytest.fixture(scope="session")
def fakecloud_server(upstream_heat: UpstreamHeat) -> Iterator[RunningCloud]:
    with running_cloud(upstream_heat.cloud_config()) as cloud, upstream_heat.running(cloud.url):
        yield cloud
