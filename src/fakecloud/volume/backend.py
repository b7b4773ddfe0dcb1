"""Volume state (placeholder until the service lands)."""

from __future__ import annotations

from fakecloud.state import Backend


class VolumeBackend(Backend):
    name = "volume"

    def reset(self) -> None:
        pass
