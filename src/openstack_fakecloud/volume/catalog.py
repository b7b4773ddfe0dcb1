"""Cinder's admin catalog: volume types (extra specs, project access, encryption), QoS specs, group types.

The catalog is state the volume backend owns (`VolumeBackend.catalog`); it knows nothing of volumes, so the
backend asks it to resolve a type for a create or a retype and tells it which types are in use.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from openstack_fakecloud.errors import BadRequest, Conflict, NotFound

DEFAULT_TYPE = "__DEFAULT__"
DEFAULT_TYPE_ID = "7b8a9c4e-2d1f-5e3a-8b6c-0d9e1f2a3b4c"
QOS_CONSUMERS = ("front-end", "back-end", "both")
ENCRYPTION_FIELDS = ("provider", "cipher", "key_size", "control_location")


@dataclass(slots=True)
class Encryption:
    encryption_id: str
    volume_type_id: str
    provider: str
    created_at: str
    cipher: str | None = None
    key_size: int | None = None
    control_location: str = "front-end"
    updated_at: str | None = None


@dataclass(slots=True)
class VolumeType:
    id: str
    name: str
    description: str | None = None
    is_public: bool = True
    extra_specs: dict[str, str] = field(default_factory=dict)
    projects: list[str] = field(default_factory=list)  # who may use a private type
    qos_specs_id: str | None = None
    encryption: Encryption | None = None


@dataclass(slots=True)
class QosSpec:
    id: str
    name: str
    consumer: str = "back-end"
    specs: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class GroupType:
    id: str
    name: str
    description: str | None = None
    is_public: bool = True
    group_specs: dict[str, str] = field(default_factory=dict)


def default_type() -> VolumeType:
    return VolumeType(DEFAULT_TYPE_ID, DEFAULT_TYPE, "Default Volume Type")


class Catalog:
    """Volume types and QoS specs, with Cinder's refusals (names unique, the default type undeletable)."""

    def __init__(self, now: Callable[[], str]) -> None:
        self.now = now
        self.types: dict[str, VolumeType] = {DEFAULT_TYPE_ID: default_type()}
        self.qos: dict[str, QosSpec] = {}
        self.group_types: dict[str, GroupType] = {}

    # volume types -----------------------------------------------------------------------------
    def get_type(self, type_id: str) -> VolumeType:
        if type_id == "default":
            type_id = DEFAULT_TYPE_ID
        found = self.types.get(type_id)
        if found is None:
            raise NotFound(f"Volume type {type_id} could not be found.")
        return found

    def visible(self, volume_type: VolumeType, project_id: str | None) -> bool:
        """`project_id` None: an admin, who sees every type."""
        return project_id is None or volume_type.is_public or project_id in volume_type.projects

    def list_types(self, project_id: str, is_public: bool | None) -> list[VolumeType]:
        """`is_public` True: public types and private ones shared with `project_id`; False: private ones only;
        None: every type."""
        if is_public is None:
            found = list(self.types.values())
        elif is_public:
            found = [t for t in self.types.values() if t.is_public or project_id in t.projects]
        else:
            found = [t for t in self.types.values() if not t.is_public]
        return sorted(found, key=lambda t: t.name)

    def resolve(self, name_or_id: str | None, project_id: str | None) -> VolumeType:
        """The type a volume create or retype names (id or name); a private type without access is unknown."""
        if name_or_id is None:
            return self.types[DEFAULT_TYPE_ID]
        found = self.types.get(name_or_id) or next((t for t in self.types.values() if t.name == name_or_id), None)
        if found is None or not self.visible(found, project_id):
            raise NotFound(f"Volume type with name {name_or_id} could not be found.")
        return found

    def create_type(self, name: Any, description: str | None, is_public: bool,
                    extra_specs: dict[str, str]) -> VolumeType:
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise BadRequest(f"Invalid input for field/attribute name. Value: {name}. Volume type name can not be "
                             "empty.")
        if any(t.name == name for t in self.types.values()):
            raise Conflict(f"Volume Type {name} already exists.")
        created = VolumeType(str(uuid.uuid4()), name, description, is_public, dict(extra_specs))
        self.types[created.id] = created
        return created

    def update_type(self, type_id: str, changes: dict[str, Any]) -> VolumeType:
        volume_type = self.get_type(type_id)
        name = changes.get("name")
        if name is not None:
            if not isinstance(name, str) or not name.strip():
                raise BadRequest("Invalid input received: Volume type name can not be empty.")
            if any(t.name == name and t.id != volume_type.id for t in self.types.values()):
                raise Conflict(f"Volume Type {name} already exists.")
            volume_type.name = name
        if "description" in changes:
            volume_type.description = changes["description"]
        if changes.get("is_public") is not None:
            volume_type.is_public = bool(changes["is_public"])
        return volume_type

    def delete_type(self, type_id: str, in_use: bool) -> None:
        volume_type = self.get_type(type_id)
        if volume_type.id == DEFAULT_TYPE_ID:
            raise BadRequest("Invalid volume type: Default volume type can not be deleted.")
        if in_use:
            raise BadRequest("Invalid volume type: Target volume type is still in use.")
        del self.types[volume_type.id]

    def set_extra_specs(self, type_id: str, specs: dict[str, str]) -> dict[str, str]:
        volume_type = self.get_type(type_id)
        volume_type.extra_specs.update(specs)
        return specs

    def delete_extra_spec(self, type_id: str, key: str) -> None:
        volume_type = self.get_type(type_id)
        if key not in volume_type.extra_specs:
            raise NotFound(f"Volume Type {type_id} has no extra specs with key {key}.")
        del volume_type.extra_specs[key]

    def add_access(self, type_id: str, project_id: str) -> None:
        volume_type = self._private(type_id)
        if project_id in volume_type.projects:
            raise Conflict(f"Volume type access for {type_id}/{project_id} already exists.")
        volume_type.projects.append(project_id)

    def remove_access(self, type_id: str, project_id: str) -> None:
        volume_type = self._private(type_id)
        if project_id not in volume_type.projects:
            raise NotFound(f"Volume type access not found for {type_id}/{project_id} combination.")
        volume_type.projects.remove(project_id)

    def _private(self, type_id: str) -> VolumeType:
        volume_type = self.get_type(type_id)
        if volume_type.is_public:
            raise BadRequest("Invalid volume type: Type access modification is not applicable to public volume "
                             "type.")
        return volume_type

    # encryption -------------------------------------------------------------------------------
    def create_encryption(self, type_id: str, spec: dict[str, Any], in_use: bool) -> Encryption:
        volume_type = self.get_type(type_id)
        if volume_type.encryption is not None:
            raise BadRequest(f"Volume type encryption for type {type_id} already exists.")
        if in_use:
            raise BadRequest(f"Cannot create encryption specs. Volume type {type_id} in use.")
        if not spec.get("provider"):
            raise BadRequest("Invalid input for field/attribute provider. 'provider' is a required property")
        encryption = Encryption(str(uuid.uuid4()), volume_type.id, spec["provider"], self.now())
        self._apply_encryption(encryption, spec)
        volume_type.encryption = encryption
        return encryption

    def update_encryption(self, type_id: str, spec: dict[str, Any], in_use: bool) -> Encryption:
        volume_type = self.get_type(type_id)
        if volume_type.encryption is None:
            raise NotFound(f"Volume type encryption for type {type_id} does not exist.")
        if in_use:
            raise BadRequest(f"Cannot update encryption specs. Volume type {type_id} in use.")
        self._apply_encryption(volume_type.encryption, spec)
        volume_type.encryption.updated_at = self.now()
        return volume_type.encryption

    @staticmethod
    def _apply_encryption(encryption: Encryption, spec: dict[str, Any]) -> None:
        if spec.get("control_location", encryption.control_location) not in ("front-end", "back-end"):
            raise BadRequest("Invalid input for field/attribute control_location. Value: "
                             f"{spec['control_location']}. It must be one of front-end, back-end.")
        key_size = spec.get("key_size", encryption.key_size)
        if key_size is not None and (isinstance(key_size, bool) or not isinstance(key_size, int) or key_size < 0):
            raise BadRequest(f"Invalid input for field/attribute key_size. Value: {key_size}.")
        for name in ENCRYPTION_FIELDS:
            if name in spec:
                setattr(encryption, name, spec[name])

    def delete_encryption(self, type_id: str, in_use: bool) -> None:
        volume_type = self.get_type(type_id)
        if volume_type.encryption is None:
            raise NotFound(f"Volume type encryption for type {type_id} does not exist.")
        if in_use:
            raise BadRequest(f"Cannot delete encryption specs. Volume type {type_id} in use.")
        volume_type.encryption = None

    # QoS specs --------------------------------------------------------------------------------
    def get_qos(self, qos_id: str) -> QosSpec:
        found = self.qos.get(qos_id)
        if found is None:
            raise NotFound(f"QoS Specs {qos_id} could not be found.")
        return found

    def create_qos(self, name: Any, consumer: str, specs: dict[str, str]) -> QosSpec:
        if not isinstance(name, str) or not name.strip():
            raise BadRequest("Invalid input for field/attribute name. Value: None. 'name' is a required property")
        if consumer not in QOS_CONSUMERS:
            raise BadRequest(f"Invalid input received: Value {consumer} is not valid for consumer; must be one of "
                             f"{', '.join(QOS_CONSUMERS)}.")
        if any(q.name == name for q in self.qos.values()):
            raise Conflict(f"QoS Specs {name} already exists.")
        created = QosSpec(str(uuid.uuid4()), name, consumer, dict(specs))
        self.qos[created.id] = created
        return created

    def associations(self, qos_id: str) -> list[VolumeType]:
        self.get_qos(qos_id)
        return [t for t in self.types.values() if t.qos_specs_id == qos_id]

    def delete_qos(self, qos_id: str, force: bool) -> None:
        in_use = self.associations(qos_id)
        if in_use and not force:
            raise BadRequest(f"QoS Specs {qos_id} is still associated with entities.")
        for volume_type in in_use:
            volume_type.qos_specs_id = None
        del self.qos[qos_id]

    def associate(self, qos_id: str, type_id: str) -> None:
        self.get_qos(qos_id)
        volume_type = self.get_type(type_id)
        if volume_type.qos_specs_id not in (None, qos_id):
            raise BadRequest(f"Invalid input received: Type {type_id} is already associated with another qos "
                             f"specs: {volume_type.qos_specs_id}")
        volume_type.qos_specs_id = qos_id

    def disassociate(self, qos_id: str, type_id: str | None) -> None:
        for volume_type in self.associations(qos_id):
            if type_id is None or volume_type.id == type_id:
                volume_type.qos_specs_id = None

    # group types --------------------------------------------------------------------------------
    def get_group_type(self, type_id: str) -> GroupType:
        found = self.group_types.get(type_id) or next(
            (t for t in self.group_types.values() if t.name == type_id), None)
        if found is None:
            raise NotFound(f"Group type {type_id} could not be found.")
        return found

    def create_group_type(self, name: Any, description: str | None, is_public: bool,
                          specs: dict[str, str]) -> GroupType:
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise BadRequest(f"Invalid input for field/attribute name. Value: {name}.")
        if any(t.name == name for t in self.group_types.values()):
            raise Conflict(f"Group Type {name} already exists.")
        created = GroupType(str(uuid.uuid4()), name, description, is_public, dict(specs))
        self.group_types[created.id] = created
        return created

    def update_group_type(self, type_id: str, changes: dict[str, Any]) -> GroupType:
        kind = self.get_group_type(type_id)
        name = changes.get("name")
        if name is not None:
            if not isinstance(name, str) or not name.strip():
                raise BadRequest("Invalid input received: Group type name can not be empty.")
            if any(t.name == name and t.id != kind.id for t in self.group_types.values()):
                raise Conflict(f"Group Type {name} already exists.")
            kind.name = name
        if "description" in changes:
            kind.description = changes["description"]
        if changes.get("is_public") is not None:
            kind.is_public = bool(changes["is_public"])
        return kind

    def delete_group_type(self, type_id: str, in_use: bool) -> None:
        kind = self.get_group_type(type_id)
        if in_use:
            raise BadRequest(f"Invalid group type: Target group type {kind.id} is still in use.")
        del self.group_types[kind.id]

    # persistence ------------------------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        return {"types": [asdict(t) for t in self.types.values()], "qos": [asdict(q) for q in self.qos.values()],
                "group_types": [asdict(t) for t in self.group_types.values()]}

    def load(self, data: dict[str, Any]) -> None:
        self.types = {DEFAULT_TYPE_ID: default_type()}
        for raw in data.get("types", []):
            encryption = raw.pop("encryption", None)
            volume_type = VolumeType(**raw, encryption=Encryption(**encryption) if encryption else None)
            self.types[volume_type.id] = volume_type
        self.qos = {raw["id"]: QosSpec(**raw) for raw in data.get("qos", [])}
        self.group_types = {raw["id"]: GroupType(**raw) for raw in data.get("group_types", [])}
