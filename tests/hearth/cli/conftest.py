"""Fixtures for the CLI tests: one `hearth up` per module, and an API client on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hearth_cli_support import HearthUp

from hearth.client import HearthClient


@pytest.fixture(scope="module")
def hearth_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HearthUp]:
    up = HearthUp(tmp_path_factory.mktemp("hearth-cli") / "home").start()
    try:
        yield up
    finally:
        up.stop()


@pytest.fixture
def api(hearth_up: HearthUp) -> Iterator[HearthClient]:
    with hearth_up.client() as client:
        yield client
