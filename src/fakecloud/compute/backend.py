"""Compute state (placeholder until the service lands)."""

from __future__ import annotations

from fakecloud.state import Backend


class ComputeBackend(Backend):
    name = "compute"

    def reset(self) -> None:
        pass
