"""Glance's metadata definitions catalog (metadefs): namespaces and, inside each, objects, properties, tags and
resource type associations; plus the resource types a namespace may be associated with.

Why it exists: Horizon, Nova's image properties UI and tempest read and write this catalog. Writes are for
admins (Glance's default policy since Wallaby); a private namespace is seen only by its owner and admins.
The ImageBackend owns one MetadefStore, so it is reset, dumped and loaded with the images.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from openstack_fakecloud.errors import BadRequest, Conflict, Forbidden, NotFound

# the resource types Glance's shipped metadefs files register (glance-manage db load_metadefs)
RESOURCE_TYPES = ("OS::Glance::Image", "OS::Cinder::Volume", "OS::Nova::Flavor", "OS::Nova::Aggregate",
                  "OS::Nova::Server", "OS::Trove::Instance", "OS::Glance::Metadef")
NAMESPACE_VISIBILITIES = ("public", "private")


@dataclass(slots=True)
class Association:
    name: str
    prefix: str | None
    properties_target: str | None
    created_at: str
    updated_at: str


@dataclass(slots=True)
class Namespace:
    namespace: str
    owner: str
    created_at: str
    updated_at: str
    display_name: str | None = None
    description: str | None = None
    visibility: str = "private"
    protected: bool = False
    associations: list[Association] = field(default_factory=list)
    properties: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> JSON-schema property
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {description, required, ...}
    tags: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> {created_at, updated_at}


@dataclass(slots=True)
class NamespaceFields:
    """The writable fields of a namespace as a create or update body gives them (routes validate them)."""

    namespace: str
    display_name: str | None = None
    description: str | None = None
    visibility: str = "private"
    protected: bool = False


class MetadefStore:
    """All namespaces by name; `now` is the cloud clock's timestamp function."""

    def __init__(self, now: Callable[[], str]) -> None:
        self.now = now
        self.namespaces: dict[str, Namespace] = {}
        created = now()
        self.resource_types: dict[str, str] = {name: created for name in RESOURCE_TYPES}

    # namespaces ------------------------------------------------------------------------------------
    def visible(self, project_id: str, admin: bool) -> list[Namespace]:
        return [n for n in self.namespaces.values()
                if admin or n.visibility == "public" or n.owner == project_id]

    def get(self, name: str, project_id: str, admin: bool) -> Namespace:
        namespace = self.namespaces.get(name)
        if namespace is None or not (admin or namespace.visibility == "public" or namespace.owner == project_id):
            raise NotFound(f"Metadata definition namespace={name} was not found.")
        return namespace

    def writable(self, name: str, project_id: str, admin: bool) -> Namespace:
        namespace = self.get(name, project_id, admin)
        _require_admin(admin)
        return namespace

    def create(self, fields: NamespaceFields, project_id: str, admin: bool) -> Namespace:
        _require_admin(admin)
        if fields.namespace in self.namespaces:
            raise Conflict(f"Metadata definition namespace={fields.namespace} already exists.")
        now = self.now()
        namespace = Namespace(namespace=fields.namespace, owner=project_id, created_at=now, updated_at=now)
        self._set_fields(namespace, fields)
        self.namespaces[namespace.namespace] = namespace
        return namespace

    def update(self, name: str, fields: NamespaceFields, project_id: str, admin: bool) -> Namespace:
        """PUT replaces the writable fields; a new `namespace` renames it (409 when taken)."""
        namespace = self.writable(name, project_id, admin)
        if fields.namespace != name and fields.namespace in self.namespaces:
            raise Conflict(f"Metadata definition namespace={fields.namespace} already exists.")
        self._set_fields(namespace, fields)
        namespace.updated_at = self.now()
        del self.namespaces[name]
        self.namespaces[namespace.namespace] = namespace
        return namespace

    @staticmethod
    def _set_fields(namespace: Namespace, fields: NamespaceFields) -> None:
        namespace.namespace = fields.namespace
        namespace.display_name = fields.display_name
        namespace.description = fields.description
        namespace.visibility = fields.visibility
        namespace.protected = fields.protected

    def delete(self, name: str, project_id: str, admin: bool) -> None:
        namespace = self.writable(name, project_id, admin)
        if namespace.protected:
            raise Forbidden(f"Metadata definition namespace {name} is protected and cannot be deleted.")
        del self.namespaces[name]

    # resource types --------------------------------------------------------------------------------
    def associate(self, name: str, resource_type: str, prefix: str | None, target: str | None,
                  project_id: str, admin: bool) -> Association:
        namespace = self.writable(name, project_id, admin)
        if resource_type not in self.resource_types:
            raise NotFound(f"Metadata definition resource-type with name={resource_type} not found.")
        if any(a.name == resource_type for a in namespace.associations):
            raise Conflict(f"The metadata definition resource-type association of resource-type={resource_type} "
                           f"to namespace={name}, already exists.")
        now = self.now()
        association = Association(resource_type, prefix, target, now, now)
        namespace.associations.append(association)
        return association

    def dissociate(self, name: str, resource_type: str, project_id: str, admin: bool) -> None:
        namespace = self.writable(name, project_id, admin)
        kept = [a for a in namespace.associations if a.name != resource_type]
        if len(kept) == len(namespace.associations):
            raise NotFound(f"The metadata definition resource-type association of resource-type={resource_type} "
                           f"to namespace={name}, was not found.")
        namespace.associations = kept

    # objects, properties and tags: named members of a namespace -------------------------------------
    def members(self, name: str, kind: str, project_id: str, admin: bool) -> dict[str, dict[str, Any]]:
        return _kind(self.get(name, project_id, admin), kind)

    def member(self, name: str, kind: str, member: str, project_id: str, admin: bool) -> dict[str, Any]:
        found = self.members(name, kind, project_id, admin).get(member)
        if found is None:
            raise NotFound(f"The metadata definition {kind} with name={member} was not found in namespace={name}.")
        return found

    def put_member(self, name: str, kind: str, old: str | None, new: str, value: dict[str, Any],
                   project_id: str, admin: bool) -> dict[str, Any]:
        """Create (old None) or replace (and maybe rename) one object, property or tag; timestamps are kept
        in the value so views can show them."""
        members = _kind(self.writable(name, project_id, admin), kind)
        now = self.now()
        created = now
        if old is not None:
            if old not in members:
                raise NotFound(f"The metadata definition {kind} with name={old} was not found in "
                               f"namespace={name}.")
            created = members[old].get("created_at", now)
        if new in members and new != old:
            raise Conflict(f"A metadata definition {kind} with name={new} already exists in namespace={name}.")
        if old is not None:
            del members[old]
        members[new] = {**value, "created_at": created, "updated_at": now}
        return members[new]

    def delete_member(self, name: str, kind: str, member: str, project_id: str, admin: bool) -> None:
        members = _kind(self.writable(name, project_id, admin), kind)
        if members.pop(member, None) is None:
            raise NotFound(f"The metadata definition {kind} with name={member} was not found in namespace={name}.")

    def clear_members(self, name: str, kind: str, project_id: str, admin: bool) -> None:
        _kind(self.writable(name, project_id, admin), kind).clear()

    def replace_tags(self, name: str, tags: list[str], project_id: str, admin: bool) -> list[str]:
        """POST .../tags: the namespace's tags become exactly these (Glance without X-Openstack-Append)."""
        namespace = self.writable(name, project_id, admin)
        if len(set(tags)) != len(tags):
            raise Conflict(f"Duplicate tag names in the request for namespace={name}.")
        now = self.now()
        namespace.tags = {tag: {"created_at": now, "updated_at": now} for tag in tags}
        return tags

    # persistence -----------------------------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        return {"namespaces": [asdict(n) for n in self.namespaces.values()]}

    def load(self, data: dict[str, Any]) -> None:
        self.namespaces = {}
        for raw in data.get("namespaces", []):
            raw = dict(raw)
            raw["associations"] = [Association(**a) for a in raw.get("associations", [])]
            self.namespaces[raw["namespace"]] = Namespace(**raw)


def _kind(namespace: Namespace, kind: str) -> dict[str, dict[str, Any]]:
    if kind == "object":
        return namespace.objects
    if kind == "property":
        return namespace.properties
    if kind == "tag":
        return namespace.tags
    raise BadRequest(f"Unknown metadata definition kind {kind}.")


def _require_admin(admin: bool) -> None:
    if not admin:
        raise Forbidden("You are not authorized to modify metadata definitions: an admin role is required.")
