"""Network state (placeholder until the service lands)."""

from __future__ import annotations

from fakecloud.state import Backend


class NetworkBackend(Backend):
    name = "network"

    def reset(self) -> None:
        pass
