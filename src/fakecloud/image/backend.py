"""Glance's state: the images seeded from configuration, with ids that survive resets and restarts.

Images are read-only here (no upload), so Nova and the clients can rely on a stable catalogue.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from fakecloud.backend import Backend
from fakecloud.config import ImageSpec
from fakecloud.errors import Conflict, NotFound
from fakecloud.identity.backend import stable_id


@dataclass(slots=True)
class Image:
    id: str
    name: str
    owner: str
    created_at: str
    updated_at: str
    checksum: str
    hash_value: str
    size: int
    status: str = "active"
    min_disk: int = 0
    min_ram: int = 0
    disk_format: str = "qcow2"
    container_format: str = "bare"
    visibility: str = "public"
    protected: bool = False
    hidden: bool = False
    properties: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)


def image_id(spec: ImageSpec) -> str:
    """The contract's stable id: the spec's own, else a dashed UUID derived from the name."""
    return spec.id or str(uuid.UUID(stable_id("image", spec.name)))


class ImageBackend(Backend):
    name = "image"

    def reset(self) -> None:
        self.images: dict[str, Image] = {}
        owner = stable_id("project", "admin")
        now = self.now()
        for spec in self.cloud.config.images:
            digest = hashlib.sha512(spec.name.encode()).hexdigest()
            image = Image(
                id=image_id(spec), name=spec.name, owner=owner, created_at=now, updated_at=now,
                checksum=hashlib.md5(spec.name.encode(), usedforsecurity=False).hexdigest(), hash_value=digest,
                size=(int(digest[:6], 16) % 512 + 16) * 1024 * 1024, min_disk=spec.min_disk,
                min_ram=spec.min_ram, disk_format=spec.disk_format, properties=dict(spec.properties),
            )
            self.images[image.id] = image

    def get_image(self, image_id: str) -> Image:
        image = self.images.get(image_id)
        if image is None:
            raise NotFound(f"Image {image_id} could not be found.")
        return image

    def find_image(self, name_or_id: str) -> Image:
        """By id, else by unique name (what Nova does with `imageRef`-like lookups)."""
        if name_or_id in self.images:
            return self.images[name_or_id]
        matches = [i for i in self.images.values() if i.name == name_or_id]
        if not matches:
            raise NotFound(f"Image {name_or_id} could not be found.")
        if len(matches) > 1:
            raise Conflict(f"Multiple images are named {name_or_id}; use an id.")
        return matches[0]

    def visible_images(self, project_id: str, admin: bool) -> list[Image]:
        """Public and community images, plus the caller's own (admins see every image)."""
        return [i for i in self.images.values()
                if admin or i.visibility in ("public", "community") or i.owner == project_id]

    def dump(self) -> dict[str, Any]:
        return {"images": [asdict(i) for i in self.images.values()]}

    def load(self, data: dict[str, Any]) -> None:
        if "images" in data:
            self.images = {i["id"]: Image(**i) for i in data["images"]}

