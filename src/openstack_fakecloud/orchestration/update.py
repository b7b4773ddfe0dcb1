"""Heat's update decision for one resource: keep, update in place, replace (Resource._needs_update).

Pure: it reads the record and the plugin's schema and never touches the cloud, so the engine's real
update and the update preview (`PUT .../preview`) share it and cannot disagree.
"""

from __future__ import annotations

from typing import Any

from openstack_fakecloud.orchestration.errors import NotSupported
from openstack_fakecloud.orchestration.model import CHECK, CREATE, FAILED, INIT, ResourceRecord
from openstack_fakecloud.orchestration.resources.base import Resource

ADD, UNCHANGED, IN_PLACE, REPLACE = "added", "unchanged", "updated", "replaced"


def changed_properties(plugin: Resource, old: dict[str, Any], new: dict[str, Any]) -> set[str]:
    schema = plugin.properties_schema
    keys = set(old) | set(new) if plugin.open_properties else set(schema)
    return {k for k in keys if old.get(k) != new.get(k)}


def decide(record: ResourceRecord | None, new_type: str, plugin: Resource | None,
           props: dict[str, Any]) -> tuple[str, set[str]]:
    """(ADD | UNCHANGED | IN_PLACE | REPLACE, changed property names); NotSupported for an immutable change.

    Replacement comes first from the resource's state: a failed create, a resource marked unhealthy
    (CHECK_FAILED) or a new type is always replaced, even with identical properties."""
    if record is None or record.action == INIT:
        return ADD, set(props)
    if (record.status == FAILED and record.action in (CREATE, CHECK)) or record.type != new_type \
            or not record.physical_id or plugin is None:
        return REPLACE, set(props)
    old = record.properties
    changed = changed_properties(plugin, old, props)
    if not changed:
        return UNCHANGED, changed
    schema = plugin.properties_schema
    immutable = sorted(k for k in changed if k in schema and schema[k].immutable)
    if immutable:
        raise NotSupported(f"Update to property {immutable[0]} of {record.name} ({record.type})")
    in_place = all(schema[k].update_allowed for k in changed if k in schema)
    if not in_place or plugin.needs_replace(old, props, changed):
        return REPLACE, changed
    return IN_PLACE, changed
