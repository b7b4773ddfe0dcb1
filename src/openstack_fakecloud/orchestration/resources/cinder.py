"""OS::Cinder::Volume and OS::Cinder::VolumeAttachment on fakecloud's volume and compute backends."""

from __future__ import annotations

from typing import Any

from openstack_fakecloud.errors import NotFound
from openstack_fakecloud.orchestration.constraints import Custom, Range, find_image
from openstack_fakecloud.orchestration.errors import NotSupported, ResourceFailure, StackValidationFailed
from openstack_fakecloud.orchestration.properties import BOOLEAN, INTEGER, MAP, STRING, Schema
from openstack_fakecloud.orchestration.resources.base import Resource


def _in_error(status: str) -> ResourceFailure:
    return ResourceFailure("ResourceInError", f'Went to status {status} due to "Unknown"')


class CinderVolume(Resource):
    properties_schema = {
        "size": Schema(INTEGER, update_allowed=True, constraints=(Range(min=1),)),
        "name": Schema(STRING, update_allowed=True),
        "description": Schema(STRING, update_allowed=True),
        "volume_type": Schema(STRING, update_allowed=True),
        "metadata": Schema(MAP, default={}, update_allowed=True),
        "read_only": Schema(BOOLEAN, update_allowed=True),
        "backup_id": Schema(STRING, update_allowed=True),
        "availability_zone": Schema(STRING),
        "snapshot_id": Schema(STRING),
        "image": Schema(STRING, constraints=(Custom(name="glance.image"),)),
        "source_volid": Schema(STRING, constraints=(Custom(name="cinder.volume"),)),
        "scheduler_hints": Schema(MAP),
    }
    attributes_schema = {name: "" for name in (
        "availability_zone", "size", "snapshot_id", "display_name", "display_description", "volume_type",
        "metadata", "metadata_values", "source_volid", "status", "created_at", "bootable", "encrypted",
        "attachments", "attachments_list", "multiattach")}

    def validate(self, props: dict[str, Any]) -> None:
        if props.get("size") is None and not any(props.get(k) for k in ("snapshot_id", "source_volid", "backup_id")):
            raise StackValidationFailed("At least one of the following properties must be specified: size, "
                                        "snapshot_id, source_volid, backup_id.",
                                        path=["resources", self.record.name, "properties"], error="Property error")

    def _volume(self) -> Any:
        if not self.record.physical_id:
            raise NotFound("no volume")
        return self.cloud.volume.get_volume(self.record.physical_id, self.ctx.project_id)

    def handle_create(self, props: dict[str, Any]) -> None:
        volumes = self.cloud.volume
        size = props.get("size")
        if size is None and props.get("source_volid"):
            size = volumes.get_volume(props["source_volid"], self.ctx.project_id).size
        if props.get("backup_id"):
            raise NotSupported("Restoring a volume from a backup")
        image = find_image(self.cloud, props["image"]).id if props.get("image") else None
        volume = volumes.create_volume(
            self.ctx.project_id, self.ctx.user_id, int(size or 1), name=props.get("name") or self.physical_name(),
            description=props.get("description"), volume_type=props.get("volume_type"),
            availability_zone=props.get("availability_zone"),
            metadata={str(k): str(v) for k, v in (props.get("metadata") or {}).items()}, image_ref=image,
            snapshot_id=props.get("snapshot_id"), source_volid=props.get("source_volid"),
        )
        self.record.physical_id = volume.id
        if props.get("read_only"):
            self.data["read_only"] = True

    def check_create_complete(self) -> bool:
        volume = self._volume()
        if volume.status == "error":
            raise _in_error(volume.status)
        if volume.status != "available":
            return False
        if self.data.pop("read_only", False):
            self.cloud.volume.set_readonly(volume.id, self.ctx.project_id, True)
        return True

    def handle_update(self, old: dict[str, Any], new: dict[str, Any], changed: set[str]) -> None:
        volumes = self.cloud.volume
        volume = self._volume()
        if "volume_type" in changed:
            raise NotSupported("Retyping a volume")
        if "backup_id" in changed:
            raise NotSupported("Restoring a volume from a backup")
        if "size" in changed and new.get("size") is not None:
            size = int(new["size"])
            if size < volume.size:
                raise NotSupported("Shrinking volume")
            if size > volume.size:
                volumes.extend_volume(volume.id, self.ctx.project_id, size, allow_in_use=True)
                self.data.update(step="extending", size=size)
        changes: dict[str, Any] = {}
        if "name" in changed:
            changes["name"] = new.get("name") or self.physical_name()
        if "description" in changed:
            changes["description"] = new.get("description")
        if "metadata" in changed:
            changes["metadata"] = {str(k): str(v) for k, v in (new.get("metadata") or {}).items()}
        if changes:
            volumes.update_volume(volume.id, self.ctx.project_id, changes)
        if "read_only" in changed:
            volumes.set_readonly(volume.id, self.ctx.project_id, bool(new.get("read_only")))

    def check_update_complete(self) -> bool:
        if self.data.get("step") != "extending":
            return True
        volume = self._volume()
        if volume.status == "error_extending":
            self.data.pop("step", None)
            raise _in_error(volume.status)
        if volume.status in ("available", "in-use") and volume.size == self.data.get("size"):
            self.data.pop("step", None)
            return True
        return False

    def live(self) -> Any:
        return self._volume()

    def handle_check(self) -> None:
        self.verify_checks([("status", ["available", "in-use"], self._volume().status)])

    def drifted(self, props: dict[str, Any]) -> set[str]:
        """The size is observed (a volume grown behind Heat fails a converging update: Cinder cannot shrink)."""
        volume = self._volume()
        return {"size"} if props.get("size") is not None and int(props["size"]) != volume.size else set()

    def handle_delete(self) -> None:
        try:
            volume = self._volume()
        except NotFound:
            return
        self.cloud.volume.delete_volume(volume.id, self.ctx.project_id)

    def check_delete_complete(self) -> bool:
        try:
            volume = self._volume()
        except NotFound:
            return True
        if volume.status == "error_deleting":
            raise _in_error(volume.status)
        return False

    def attribute(self, name: str) -> Any:
        import json

        try:
            volume = self._volume()
        except NotFound:
            return None
        attachments = [{"id": a.id, "attachment_id": a.id, "server_id": a.server_id, "volume_id": a.volume_id,
                        "device": a.device, "attached_at": a.attached_at} for a in volume.attachments]
        values = {
            "availability_zone": volume.availability_zone, "size": volume.size, "snapshot_id": volume.snapshot_id,
            "display_name": volume.name, "display_description": volume.description,
            "volume_type": volume.volume_type, "metadata": json.dumps(volume.metadata),
            "metadata_values": dict(volume.metadata), "source_volid": volume.source_volid,
            "status": volume.status, "created_at": volume.created_at, "bootable": volume.bootable,
            "encrypted": False, "attachments": json.dumps(attachments), "attachments_list": attachments,
            "multiattach": False,
        }
        return values[name] if name in values else super().attribute(name)

    def show(self) -> Any:
        from openstack_fakecloud.volume.views import volume_detail

        try:
            return volume_detail(self._volume())
        except NotFound:
            return None


class CinderVolumeAttachment(Resource):
    properties_schema = {
        "instance_uuid": Schema(STRING, required=True, update_allowed=True),
        "volume_id": Schema(STRING, required=True, update_allowed=True, constraints=(Custom(name="cinder.volume"),)),
        "mountpoint": Schema(STRING, update_allowed=True),
    }

    def _attach(self, server_id: str, volume_id: str, device: str | None) -> None:
        compute = self.cloud.compute
        server = compute.get_server(server_id, self.ctx.project_id)
        attachment = compute.attach_volume(server, volume_id, device, None, False)
        self.record.physical_id = attachment.id
        self.data.update(server=server_id, volume=volume_id)

    def _attachment(self) -> Any:
        if not self.data.get("volume"):
            raise NotFound(f"Volume attachment {self.record.physical_id} could not be found.")
        volume = self.cloud.volume.get_volume(self.data["volume"], self.ctx.project_id)
        found = next((a for a in volume.attachments if a.server_id == self.data.get("server")), None)
        return volume, found

    def live(self) -> Any:
        volume, attachment = self._attachment()
        if attachment is None:
            raise NotFound(f"Volume attachment {self.record.physical_id} could not be found.")
        return attachment

    def handle_check(self) -> None:
        volume, attachment = self._attachment()
        if attachment is None:
            raise NotFound(f"Volume attachment {self.record.physical_id} could not be found.")
        self.verify_checks([("status", "in-use", volume.status)])

    def handle_create(self, props: dict[str, Any]) -> None:
        self._attach(props["instance_uuid"], props["volume_id"], props.get("mountpoint"))

    def check_create_complete(self) -> bool:
        volume, attachment = self._attachment()
        if volume.status == "error_attaching" or (attachment is not None and attachment.status == "error_attaching"):
            raise _in_error("error_attaching")
        return attachment is not None and attachment.status == "attached" and volume.status == "in-use"

    def _detach(self) -> None:
        compute = self.cloud.compute
        if not self.data.get("volume"):
            return
        try:
            _volume, attachment = self._attachment()
            if attachment is None:
                return
            server = compute.get_server(self.data["server"], self.ctx.project_id)
        except NotFound:
            return
        compute.detach_volume(server, self.data["volume"])

    def _detached(self) -> bool:
        try:
            volume, attachment = self._attachment()
        except (NotFound, KeyError):
            return True
        if volume.status == "error_detaching":
            raise _in_error(volume.status)
        return attachment is None

    def handle_update(self, old: dict[str, Any], new: dict[str, Any], changed: set[str]) -> None:
        self._detach()
        self.data.update(step="detaching", target=[new["instance_uuid"], new["volume_id"], new.get("mountpoint")])

    def check_update_complete(self) -> bool:
        step = self.data.get("step")
        if step == "detaching":
            if not self._detached():
                return False
            server_id, volume_id, device = self.data.pop("target")
            self._attach(server_id, volume_id, device)
            self.data["step"] = "attaching"
            return False
        if step == "attaching":
            if not self.check_create_complete():
                return False
            self.data.pop("step", None)
        return True

    def handle_delete(self) -> None:
        self._detach()

    def check_delete_complete(self) -> bool:
        return self._detached()


def resource_mapping() -> dict[str, type[Resource]]:
    return {"OS::Cinder::Volume": CinderVolume, "OS::Cinder::VolumeAttachment": CinderVolumeAttachment}
