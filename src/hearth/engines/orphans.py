"""Orphans: cloud resources that carry Hearth's names but belong to no live instance, or are not the resource
Hearth recorded for a live one (left by a crashed provision, by an instance row deleted by hand, by an
interrupted delete). Found by reading Hearth's project in Nova, Cinder, Neutron and Heat; removed only on
request, never for an instance an operation is working on (it may still claim them).

Every resource kind of an instance (resources.KINDS) that has a name is found by its name's `hearth-<id>`; a
stack is `hearth-<id>` too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from openstack.connection import Connection

from hearth.engines import common, heat, resources
from hearth.engines.base import EngineError

_INSTANCE_ID = re.compile(r"hearth-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")
STACK = "stack"


@dataclass(frozen=True)
class Orphan:
    kind: str  # a resource kind's key (resources.KINDS), or "stack"
    id: str
    name: str
    instance_id: str
    created: str | None
    why: str

    def view(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.id, "name": self.name, "instance_id": self.instance_id,
                "created": self.created, "age_seconds": _age(self.created), "why": self.why}


def _age(created: str | None) -> int | None:
    if not created:
        return None
    try:
        when = datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(int((datetime.now(UTC) - when).total_seconds()), 0)


def _listed(conn: Connection) -> list[tuple[str, Any, str]]:
    """(kind, resource, its name or description) of every resource in Hearth's project named for an instance."""
    project = conn.current_project_id
    found: list[tuple[str, Any, str]] = []
    with common.cloud_call("listing Hearth's resources"):
        found += [("server", s, s.name) for s in conn.compute.servers(details=True)]
        found += [("volume", v, v.name) for v in conn.block_storage.volumes(details=True)]
        found += [("security_group", g, g.name) for g in conn.network.security_groups(project_id=project)]
        found += [("port", p, p.name) for p in conn.network.ports(project_id=project)]
        found += [("floating_ip", ip, ip.description) for ip in conn.network.ips(project_id=project)]
    if conn.endpoint_for("orchestration"):
        with common.cloud_call("listing Hearth's stacks"):
            found += [(STACK, s, s.name) for s in conn.orchestration.stacks()]
    return [(kind, item, label) for kind, item, label in found if label and _INSTANCE_ID.search(label)]


def find(conn: Connection, live: Mapping[str, Mapping[str, str]], busy: set[str]) -> list[Orphan]:
    """The orphans in Hearth's project. `live`: each live instance's recorded ids (kind key -> id, "stack" ->
    stack id); `busy`: instances an operation is working on (their resources are never orphans now)."""
    orphans: list[Orphan] = []
    for kind, item, label in _listed(conn):
        match = _INSTANCE_ID.search(label)
        assert match is not None
        instance_id = match.group(1)
        if instance_id in busy:
            continue
        created = getattr(item, "created_at", None) or getattr(item, "creation_time", None)
        if instance_id not in live:
            why = f"instance {instance_id} does not exist (deleted, or never recorded)"
        else:
            recorded = live[instance_id].get(kind)
            if recorded == item.id:
                continue
            why = (f"instance {instance_id} records {recorded} as its {kind.replace('_', ' ')}" if recorded
                   else f"instance {instance_id} records no {kind.replace('_', ' ')}")
        orphans.append(Orphan(kind, str(item.id), label, instance_id, str(created) if created else None, why))
    return orphans


_DELETE_ORDER = (STACK, "floating_ip", "server", "port", "volume", "security_group")
_PATHS = {"floating_ip": ("network", "/floatingips/{}"), "port": ("network", "/ports/{}"),
          "security_group": ("network", "/security-groups/{}"), "volume": ("block_storage", "/volumes/{}"),
          "server": ("compute", "/servers/{}")}


def delete(conn: Connection, orphans: list[Orphan], wait: Any) -> list[str]:
    """Delete `orphans` (stacks first, then floating IPs, servers, ports, volumes, groups, each waited for
    with `wait(what, still_there)`); returns what failed, with the cloud's reason."""
    failed: list[str] = []
    for kind in _DELETE_ORDER:
        for orphan in (o for o in orphans if o.kind == kind):
            try:
                if kind == STACK:
                    common.delete_plain(conn.orchestration, f"/stacks/{orphan.name}/{orphan.id}",
                                        f"deleting stack {orphan.id}")
                    wait(f"stack {orphan.id} to be deleted",
                         lambda o=orphan: heat.poll_stack(conn, f"{o.name}/{o.id}") is not None)
                    continue
                service, path = _PATHS[kind]
                if kind == "volume":
                    wait(f"volume {orphan.id} to be detached", lambda o=orphan: _attached(conn, o.id))
                common.delete_plain(getattr(conn, service), path.format(orphan.id),
                                    f"deleting {kind.replace('_', ' ')} {orphan.id}")
                if kind == "server":
                    wait(f"server {orphan.id} to be deleted",
                         lambda o=orphan: common.get_plain(conn.compute, f"/servers/{o.id}", "server",
                                                           "reading server") is not None)
            except EngineError as err:
                failed.append(f"{kind} {orphan.id}: {err}")
    return failed


def _attached(conn: Connection, volume_id: str) -> bool:
    volume = common.get_plain(conn.block_storage, f"/volumes/{volume_id}", "volume", "reading volume")
    return volume is not None and bool(volume.get("attachments"))


def recorded_ids(current: Any, stack_id: str | None) -> dict[str, str]:
    """An instance's recorded ids by kind key, with its stack's."""
    ids = resources.ids_of(current)
    if stack_id:
        ids[STACK] = stack_id
    return ids
