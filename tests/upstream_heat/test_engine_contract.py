"""The engine contract suite, run unchanged with upstream Heat as the cloud's orchestration service.

Every test of tests/hearth/engines/test_contract.py is collected here too, for each engine that uses
Heat (orchestrator, migration); each one checks its outcome in fakecloud itself. Every template Hearth
generates along the way is therefore created (or updated) by real Heat.
"""

from __future__ import annotations

from conftest import ENGINE_TESTS, load_module

_contract = load_module("hearth_engine_contract", ENGINE_TESTS / "test_contract.py")

globals().update({name: value for name, value in vars(_contract).items()
                  if name.startswith("test_") or name == "provisioned"})
