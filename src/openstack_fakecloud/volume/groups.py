"""Cinder's generic volume groups (3.13+): a set of volumes of the group's volume types, managed together.

`GroupBook` is state the volume backend owns (`VolumeBackend.groups`); it reaches the volumes through that
backend, which also runs the creating/deleting transitions on its timers.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from openstack_fakecloud.errors import BadRequest, NotFound

if TYPE_CHECKING:
    from openstack_fakecloud.volume.backend import VolumeBackend

GROUP_STATUSES = ("creating", "available", "deleting", "error", "error_deleting", "updating", "in-use", "deleted")


@dataclass(slots=True)
class Group:
    id: str
    name: str | None
    project_id: str
    group_type_id: str
    volume_type_ids: list[str]
    created_at: str
    status: str = "creating"
    description: str | None = None
    availability_zone: str = "nova"
    source_group_id: str | None = None


class GroupBook:
    def __init__(self, volumes: VolumeBackend) -> None:
        self.volumes = volumes
        self.groups: dict[str, Group] = {}

    def get(self, group_id: str, project_id: str | None) -> Group:
        group = self.groups.get(group_id)
        if group is None or project_id not in (None, group.project_id):
            raise NotFound(f"Group {group_id} could not be found.")
        return group

    def list(self, project_id: str | None) -> list[Group]:
        return [g for g in self.groups.values() if project_id in (None, g.project_id)]

    def members(self, group: Group) -> list[str]:
        """Its volumes that still exist, in creation order."""
        return [v.id for v in sorted(self.volumes.volumes.values(), key=lambda v: v.seq) if v.group_id == group.id]

    def create(self, project_id: str, name: str | None, description: str | None, group_type: Any,
               volume_types: Any, availability_zone: str | None) -> Group:
        catalog = self.volumes.catalog
        if not group_type:
            raise BadRequest("Invalid input for field/attribute group. 'group_type' is a required property")
        if not isinstance(volume_types, list) or not volume_types:
            raise BadRequest("Invalid input for field/attribute group. 'volume_types' is a required property")
        kind = catalog.get_group_type(str(group_type))
        type_ids = [catalog.resolve(str(t), project_id).id for t in volume_types]
        group = Group(str(uuid.uuid4()), name, project_id, kind.id, type_ids, self.volumes.now(),
                      description=description, availability_zone=availability_zone or "nova")
        self.groups[group.id] = group
        self.volumes.after("volume_create", self._settle, group.id, "creating", "available")
        return group

    def create_from_source(self, project_id: str, source_id: str, name: str | None, description: str | None,
                           user_id: str) -> Group:
        """A new group of the source's types holding a copy of each of its volumes."""
        source = self.get(source_id, project_id)
        if source.status != "available":
            raise BadRequest(f"Invalid group: Source group {source_id} status must be available.")
        group = Group(str(uuid.uuid4()), name, source.project_id, source.group_type_id,
                      list(source.volume_type_ids), self.volumes.now(), description=description,
                      availability_zone=source.availability_zone, source_group_id=source.id)
        self.groups[group.id] = group
        for volume_id in self.members(source):
            original = self.volumes.volumes[volume_id]
            copy = self.volumes.create_volume(original.project_id, user_id, original.size, name=original.name,
                                              volume_type=original.volume_type_id, source_volid=original.id,
                                              admin=True)
            copy.group_id = group.id
        self.volumes.after("volume_create", self._settle, group.id, "creating", "available")
        return group

    def check_member(self, group_id: str, project_id: str, type_id: str) -> None:
        """A volume created into a group must be of one of its types, the group available."""
        group = self.get(group_id, project_id)
        if group.status != "available":
            raise BadRequest(f"Invalid group: Group {group_id} status must be available, but current status is: "
                             f"{group.status}.")
        if type_id not in group.volume_type_ids:
            raise BadRequest(f"Invalid input received: Volume type {type_id} is not in group {group_id}.")

    def update(self, group_id: str, project_id: str | None, changes: dict[str, Any]) -> Group:
        group = self.get(group_id, project_id)
        if group.status != "available":
            raise BadRequest(f"Invalid group: Group {group_id} status must be available, but current status is: "
                             f"{group.status}.")
        add = _ids(changes.get("add_volumes"))
        remove = _ids(changes.get("remove_volumes"))
        for volume_id in add:
            volume = self.volumes.get_volume(volume_id, group.project_id)
            if volume.volume_type_id not in group.volume_type_ids or volume.group_id not in (None, group.id):
                raise BadRequest(f"Invalid volume: Cannot add volume {volume_id} to group {group_id}.")
            if volume.status not in ("available", "in-use"):
                raise BadRequest(f"Invalid volume: Cannot add volume {volume_id} to group {group_id}: its status "
                                 f"is {volume.status}.")
        for volume_id in remove:
            volume = self.volumes.get_volume(volume_id, group.project_id)
            if volume.group_id != group.id:
                raise BadRequest(f"Invalid volume: Volume {volume_id} is not in group {group_id}.")
        for volume_id in add:
            self.volumes.volumes[volume_id].group_id = group.id
        for volume_id in remove:
            self.volumes.volumes[volume_id].group_id = None
        if "name" in changes:
            group.name = changes["name"]
        if "description" in changes:
            group.description = changes["description"]
        return group

    def delete(self, group_id: str, project_id: str | None, delete_volumes: bool) -> None:
        group = self.get(group_id, project_id)
        members = self.members(group)
        if members and not delete_volumes:
            raise BadRequest(f"Invalid group: Group {group_id} still contains volumes. The delete-volumes flag is "
                             "required to delete it.")
        if group.status not in ("available", "error", "error_deleting"):
            raise BadRequest(f"Invalid group: Group status must be available or error, but current status is: "
                             f"{group.status}.")
        for volume_id in members:
            self.volumes.volumes[volume_id].group_id = None
            self.volumes.delete_volume(volume_id, None, force=True)
        group.status = "deleting"
        self.volumes.after("volume_delete", self._settle, group.id, "deleting", None)

    def reset_status(self, group_id: str, status: Any) -> None:
        group = self.get(group_id, None)
        if status not in GROUP_STATUSES:
            raise BadRequest(f"Invalid input received: Group status {status} is not valid.")
        group.status = status

    def type_in_use(self, group_type_id: str) -> bool:
        return any(g.group_type_id == group_type_id for g in self.groups.values())

    def _settle(self, group_id: str, expected: str, status: str | None) -> None:
        """End a transition: `status` None removes the group."""
        group = self.groups.get(group_id)
        if group is None or group.status != expected:
            return
        if status is None:
            del self.groups[group_id]
        else:
            group.status = status

    def dump(self) -> list[dict[str, Any]]:
        return [asdict(g) for g in self.groups.values()]

    def load(self, data: list[dict[str, Any]]) -> None:
        self.groups = {}
        for raw in data:
            group = Group(**raw)
            if group.status == "deleting":
                continue
            if group.status == "creating":
                group.status = "available"
            self.groups[group.id] = group


def _ids(value: Any) -> list[str]:
    """Cinder takes `add_volumes` / `remove_volumes` as one comma-separated string."""
    if not value:
        return []
    return [v.strip() for v in str(value).split(",") if v.strip()]
