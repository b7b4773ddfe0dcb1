"""Image state (placeholder until the service lands)."""

from __future__ import annotations

from fakecloud.state import Backend


class ImageBackend(Backend):
    name = "image"

    def reset(self) -> None:
        pass
