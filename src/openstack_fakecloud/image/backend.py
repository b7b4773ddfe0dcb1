"""Glance's state: images seeded from configuration (ids that survive resets and restarts) and the images
clients create, upload, patch, deactivate, share and delete.

Uploaded bytes are kept in memory (bounded per image, see MAX_IMAGE_BYTES) so a download returns what was
uploaded; seeded images carry a size and hashes but no bytes, so Nova and the clients keep a stable catalogue.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from openstack_fakecloud.backend import Backend
from openstack_fakecloud.config import ImageSpec
from openstack_fakecloud.errors import BadRequest, CloudError, Conflict, Forbidden, NotFound
from openstack_fakecloud.identity.backend import stable_id
from openstack_fakecloud.image.metadefs import MetadefStore

MAX_IMAGE_BYTES = 64 * 1024 * 1024  # an embedded cloud holds images in memory: refuse bigger uploads (413)
DEFAULT_VISIBILITY = "shared"  # Glance's default since Image API v2.5 (glance/domain new_image), not "private"
MEMBER_STATUSES = ("pending", "accepted", "rejected")


class TooLarge(CloudError):
    status = 413


@dataclass(slots=True)
class Image:
    id: str
    name: str | None
    owner: str
    created_at: str
    updated_at: str
    checksum: str | None
    hash_value: str | None
    size: int | None
    status: str = "active"
    min_disk: int = 0
    min_ram: int = 0
    disk_format: str | None = "qcow2"
    container_format: str | None = "bare"
    visibility: str = "public"
    protected: bool = False
    hidden: bool = False
    properties: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Member:
    """One project an image is shared with; the member (not the owner) accepts or rejects it."""

    image_id: str
    member_id: str
    created_at: str
    updated_at: str
    status: str = "pending"


@dataclass(slots=True)
class Task:
    """A Glance v2 task (type `import`). fakecloud never fetches remote data, so every import fails."""

    id: str
    type: str
    owner: str
    input: dict[str, Any]
    created_at: str
    updated_at: str
    status: str = "pending"
    message: str = ""
    result: dict[str, Any] | None = None


@dataclass(slots=True)
class NewImage:
    """A parsed `POST /v2/images`: what the routes validated, what the backend stores."""

    id: str | None = None
    name: str | None = None
    disk_format: str | None = None
    container_format: str | None = None
    visibility: str = DEFAULT_VISIBILITY
    protected: bool = False
    hidden: bool = False
    min_disk: int = 0
    min_ram: int = 0
    owner: str | None = None
    tags: list[str] = field(default_factory=list)
    properties: dict[str, str] = field(default_factory=dict)


# the attributes a JSON patch may set on the Image itself (the rest are extra properties)
PATCHABLE = {"name": "name", "visibility": "visibility", "protected": "protected", "os_hidden": "hidden",
             "min_disk": "min_disk", "min_ram": "min_ram", "disk_format": "disk_format",
             "container_format": "container_format", "tags": "tags", "owner": "owner"}


@dataclass(slots=True)
class Change:
    """One parsed json-patch operation: `path` is an image attribute (PATCHABLE key) or an extra property."""

    op: str
    path: str
    value: Any = None


def image_id(spec: ImageSpec) -> str:
    """The contract's stable id: the spec's own, else a dashed UUID derived from the name."""
    return spec.id or str(uuid.UUID(stable_id("image", spec.name)))


class ImageBackend(Backend):
    name = "image"

    def reset(self) -> None:
        self.images: dict[str, Image] = {}
        self.data: dict[str, bytes] = {}  # image id -> uploaded bytes
        self.members: dict[str, dict[str, Member]] = {}  # image id -> member project id -> membership
        self.tasks: dict[str, Task] = {}
        self.metadefs = MetadefStore(self.now)
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

    # reading ---------------------------------------------------------------------------------------
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

    def member_status(self, image: Image, project_id: str) -> str | None:
        member = self.members.get(image.id, {}).get(project_id)
        return member.status if member else None

    def can_see(self, image: Image, project_id: str, admin: bool) -> bool:
        """Glance's visibility: public and community for all, shared for the owner and any member."""
        return (admin or image.visibility in ("public", "community") or image.owner == project_id
                or (image.visibility == "shared" and self.member_status(image, project_id) is not None))

    def visible_images(self, project_id: str, admin: bool, member_status: str = "accepted") -> list[Image]:
        """What a list shows: public and community images, the caller's own, and images shared with it whose
        membership has `member_status` ("all" for any), as Glance's list does (admins see every image)."""
        def listed(image: Image) -> bool:
            if admin or image.visibility in ("public", "community") or image.owner == project_id:
                return True
            status = self.member_status(image, project_id) if image.visibility == "shared" else None
            return status is not None and member_status in ("all", status)
        return [i for i in self.images.values() if listed(i)]

    def visible_image(self, image_id: str, project_id: str, admin: bool) -> Image:
        """The image when the caller may see it; a hidden one is a 404, as in Glance."""
        image = self.images.get(image_id)
        if image is None or not self.can_see(image, project_id, admin):
            raise NotFound(f"No image found with ID {image_id}")
        return image

    def owned_image(self, image_id: str, project_id: str, admin: bool, doing: str) -> Image:
        """The image when the caller may change it: the owner or an admin (others who see it get a 403)."""
        image = self.visible_image(image_id, project_id, admin)
        if not admin and image.owner != project_id:
            raise Forbidden(f"You are not permitted to {doing} this image.")
        return image

    # writing ---------------------------------------------------------------------------------------
    def create_image(self, new: NewImage, project_id: str, admin: bool) -> Image:
        if new.visibility == "public" and not admin:
            raise Forbidden("You are not authorized to complete publicize_image action.")
        if new.owner not in (None, project_id) and not admin:
            raise Forbidden("You are not permitted to create images owned by another project.")
        image_id = new.id or str(uuid.uuid4())
        if image_id in self.images:
            raise Conflict(f"Image with identifier {image_id} already exists!")
        now = self.now()
        image = Image(
            id=image_id, name=new.name, owner=new.owner or project_id, created_at=now, updated_at=now,
            checksum=None, hash_value=None, size=None, status="queued", min_disk=new.min_disk,
            min_ram=new.min_ram, disk_format=new.disk_format, container_format=new.container_format,
            visibility=new.visibility, protected=new.protected, hidden=new.hidden,
            properties=dict(new.properties), tags=_unique(new.tags),
        )
        self.images[image.id] = image
        return image

    def upload(self, image_id: str, data: bytes, project_id: str, admin: bool) -> Image:
        """Store the bytes and their hashes; only a queued image takes data (Glance's status machine)."""
        image = self.owned_image(image_id, project_id, admin, "upload data to")
        if image.status != "queued":
            raise Conflict(f"Image status transition from {image.status} to saving is not allowed")
        if len(data) > MAX_IMAGE_BYTES:
            raise TooLarge(f"Image exceeds the storage quota: {len(data)} bytes over {MAX_IMAGE_BYTES}.")
        if image.disk_format is None or image.container_format is None:
            raise BadRequest("Properties disk_format, container_format must be set prior to saving data.")
        self.data[image.id] = data
        image.size = len(data)
        image.checksum = hashlib.md5(data, usedforsecurity=False).hexdigest()
        image.hash_value = hashlib.sha512(data).hexdigest()
        image.status = "active"
        image.updated_at = self.now()
        return image

    def download(self, image_id: str, project_id: str, admin: bool) -> tuple[Image, bytes | None]:
        """The image's bytes (None when it has none: queued, or seeded from configuration)."""
        image = self.visible_image(image_id, project_id, admin)
        if image.status == "deactivated" and not admin:
            raise Forbidden("The requested image has been deactivated. Image data download is forbidden.")
        return image, self.data.get(image.id)

    def update_image(self, image_id: str, changes: list[Change], project_id: str, admin: bool) -> Image:
        """Apply a json patch all or nothing (Glance saves once, after every change applied)."""
        image = self.owned_image(image_id, project_id, admin, "modify")
        draft = Image(**{k: v for k, v in asdict(image).items()})
        for change in changes:
            self._apply(draft, change, admin)
        if draft.visibility != image.visibility and draft.visibility == "public" and not admin:
            raise Forbidden("You are not authorized to complete publicize_image action.")
        if draft.owner != image.owner and not admin:
            raise Forbidden("You are not permitted to modify 'owner' on this image.")
        draft.tags = _unique(draft.tags)
        if changes:
            draft.updated_at = self.now()
        self.images[image.id] = draft
        return draft

    @staticmethod
    def _apply(image: Image, change: Change, admin: bool) -> None:
        attr = PATCHABLE.get(change.path)
        if change.op == "remove":
            if attr is not None:
                raise Forbidden(f"Property {change.path} may not be removed.")
            if change.path not in image.properties:
                raise Conflict(f"Property {change.path} does not exist.")
            del image.properties[change.path]
            return
        if attr in ("disk_format", "container_format") and image.status != "queued":
            raise Forbidden(f"Property {attr} can only be changed while the image is queued.")
        if attr is not None:
            setattr(image, attr, change.value)
        elif change.op == "replace" and change.path not in image.properties:
            raise Conflict(f"Property {change.path} does not exist.")
        else:  # the 2.1 patch's `add` sets a property whether or not it exists
            image.properties[change.path] = change.value

    def delete_image(self, image_id: str, project_id: str, admin: bool) -> None:
        """Deleted images are gone (fakecloud keeps no `deleted` rows), with their bytes and members."""
        image = self.owned_image(image_id, project_id, admin, "delete")
        if image.protected:
            raise Forbidden(f"Image {image.id} is protected and cannot be deleted.")
        del self.images[image.id]
        self.data.pop(image.id, None)
        self.members.pop(image.id, None)

    def set_active(self, image_id: str, active: bool, project_id: str, admin: bool) -> None:
        """Deactivate/reactivate: the owner or an admin (Glance's default policy since Wallaby), and only between
        active and deactivated (both idempotent)."""
        action = "reactivate" if active else "deactivate"
        image = self.visible_image(image_id, project_id, admin)
        if not admin and image.owner != project_id:
            raise Forbidden(f"You are not authorized to complete {action} action.")
        if image.status not in ("active", "deactivated"):
            raise Forbidden(f"Not allowed to {action} image in status '{image.status}'")
        image.status = "active" if active else "deactivated"
        image.updated_at = self.now()

    def add_tag(self, image_id: str, tag: str, project_id: str, admin: bool) -> None:
        image = self.owned_image(image_id, project_id, admin, "modify")
        if len(tag) > 255:
            raise BadRequest("Tag is too long (at most 255 characters).")
        if tag not in image.tags:
            image.tags.append(tag)
            image.updated_at = self.now()

    def delete_tag(self, image_id: str, tag: str, project_id: str, admin: bool) -> None:
        image = self.owned_image(image_id, project_id, admin, "modify")
        if tag not in image.tags:
            raise NotFound(f"Tag {tag} not found on image {image.id}.")
        image.tags.remove(tag)
        image.updated_at = self.now()

    # members ---------------------------------------------------------------------------------------
    def list_members(self, image_id: str, project_id: str, admin: bool) -> list[Member]:
        """The owner (and admins) see every member; a member sees only its own membership."""
        image = self.visible_image(image_id, project_id, admin)
        if image.visibility != "shared":
            raise Forbidden("Only shared images have members.")
        members = list(self.members.get(image.id, {}).values())
        if admin or image.owner == project_id:
            return members
        return [m for m in members if m.member_id == project_id]

    def get_member(self, image_id: str, member_id: str, project_id: str, admin: bool) -> Member:
        for member in self.list_members(image_id, project_id, admin):
            if member.member_id == member_id:
                return member
        raise NotFound(f"{member_id} is not a member of image {image_id}.")

    def add_member(self, image_id: str, member_id: str, project_id: str, admin: bool) -> Member:
        image = self.owned_image(image_id, project_id, admin, "share")
        if image.visibility != "shared":
            raise Forbidden("Only shared images have members.")
        members = self.members.setdefault(image.id, {})
        if member_id in members:
            raise Conflict(f"Member {member_id} already exists on image {image.id}.")
        now = self.now()
        members[member_id] = Member(image.id, member_id, now, now)
        return members[member_id]

    def set_member_status(self, image_id: str, member_id: str, status: str, project_id: str,
                          admin: bool) -> Member:
        """Only the member itself answers the invitation (Glance: the owner may not accept for it)."""
        member = self.get_member(image_id, member_id, project_id, admin)
        if member.member_id != project_id:
            raise Forbidden("You are not permitted to modify 'status' on this image member.")
        if status not in MEMBER_STATUSES:
            raise BadRequest(f"Status {status!r} is not one of {', '.join(MEMBER_STATUSES)}.")
        member.status = status
        member.updated_at = self.now()
        return member

    def delete_member(self, image_id: str, member_id: str, project_id: str, admin: bool) -> None:
        image = self.owned_image(image_id, project_id, admin, "unshare")
        if self.members.get(image.id, {}).pop(member_id, None) is None:
            raise NotFound(f"{member_id} is not a member of image {image.id}.")

    # tasks -------------------------------------------------------------------------------------------
    def create_task(self, task_type: str, task_input: dict[str, Any], project_id: str, admin: bool) -> Task:
        """Record an import task and run it: the import of `import_from` fails at once, because fakecloud only
        ever talks to loopback (Glance fails the same task when the location cannot be fetched)."""
        if not admin:
            raise Forbidden("You are not authorized to complete add_task action.")
        now = self.now()
        task = Task(str(uuid.uuid4()), task_type, project_id, task_input, now, now)
        self.tasks[task.id] = task
        return task

    def run_task(self, task: Task) -> None:
        task.status = "failure"
        task.message = (f"Image import from {task.input.get('import_from')!r} failed: fakecloud does not fetch "
                        "image data from remote locations.")
        task.updated_at = self.now()

    def get_task(self, task_id: str, project_id: str, admin: bool) -> Task:
        task = self.tasks.get(task_id)
        if task is None or not (admin or task.owner == project_id):
            raise NotFound(f"Task with the given id {task_id} not found")
        return task

    def list_tasks(self, project_id: str, admin: bool) -> list[Task]:
        return [t for t in self.tasks.values() if admin or t.owner == project_id]

    # persistence -----------------------------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        """Images, members, and uploaded bytes as base64 (each at most MAX_IMAGE_BYTES)."""
        return {
            "images": [asdict(i) for i in self.images.values()],
            "data": {k: base64.b64encode(v).decode("ascii") for k, v in self.data.items()},
            "members": [asdict(m) for members in self.members.values() for m in members.values()],
            "tasks": [asdict(t) for t in self.tasks.values()],
            "metadefs": self.metadefs.dump(),
        }

    def load(self, data: dict[str, Any]) -> None:
        if "images" in data:
            self.images = {i["id"]: Image(**i) for i in data["images"]}
        self.data = {k: base64.b64decode(v) for k, v in data.get("data", {}).items() if k in self.images}
        self.members = {}
        for raw in data.get("members", []):
            if raw["image_id"] in self.images:
                self.members.setdefault(raw["image_id"], {})[raw["member_id"]] = Member(**raw)
        self.tasks = {t["id"]: Task(**t) for t in data.get("tasks", [])}
        self.metadefs.load(data.get("metadefs", {}))


def _unique(tags: list[str]) -> list[str]:
    """Glance keeps tags as a set; keep the first-seen order for stable bodies."""
    return list(dict.fromkeys(tags))
