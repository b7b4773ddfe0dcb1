"""How Hearth's records look from outside: Trove's derived status and Trove-shaped JSON views.

Shared by the service layer (the 422 "not ready" message names the status), the REST API and the CLI.
Ids that only exist in the API (datastores, versions, the 2014 security groups) are uuid5s of names,
so they are stable across restarts and databases.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from hearth.config import Datastore, DatastoreVersion
from hearth.db.models import Event, Instance, Operation, SecurityGroupRule, Task

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://hearth.invalid/")

# Nova statuses Trove passes through (rule 4 of its derivation), and the ones it renames.
_NOVA_PASSTHROUGH = frozenset({"BUILD", "ERROR", "REBOOT", "RESIZE", "ACTIVE", "SHUTDOWN"})
_NOVA_RENAMED = {"VERIFY_RESIZE": "RESIZE", "HARD_REBOOT": "REBOOT", "SHUTOFF": "SHUTDOWN"}
_TASK_STATUS = {Task.RESIZING: "RESIZE", Task.RESIZING_VOLUME: "RESIZE", Task.ADOPTING: "BUILD",
                Task.RESTARTING: "REBOOT", Task.REBUILDING: "REBUILD"}


def datastore_id(name: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"datastore:{name}"))


def datastore_version_id(datastore: str, version: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"datastore-version:{datastore}:{version}"))


def security_group_id(instance_id: str) -> str:
    """The 2014 extension's group id for an instance: stable, whichever engine realises the group."""
    return str(uuid.uuid5(_NAMESPACE, f"security-group:{instance_id}"))


def instance_status(inst: Instance) -> str:
    """Trove's `SimpleInstance.status`, first match wins (trove-api.md §6).

    Access updates (UPDATING_ACCESS) do not interrupt service, so they show the server's status."""
    nova = (inst.server_status or "").upper()
    if inst.task in Task.ERRORS:
        return "ERROR"
    if inst.task == Task.BUILDING:
        return "ERROR" if nova == "ERROR" else "BUILD"
    if inst.task in _TASK_STATUS:
        return _TASK_STATUS[inst.task]
    if inst.task in (Task.DELETING, Task.RELEASING):
        return "SHUTDOWN" if nova in ("", "ACTIVE", "SHUTDOWN", "SHUTOFF", "DELETED") else "ERROR"
    if nova == "DELETED":  # the server vanished outside an operation (see taskmanager.status_sync)
        return "ERROR"
    if nova in _NOVA_PASSTHROUGH:
        return nova
    if nova in _NOVA_RENAMED:
        return _NOVA_RENAMED[nova]
    return "UNKNOWN"


def timestamp(value: datetime | None) -> str | None:
    return value.strftime(TIME_FORMAT) if value else None


def _links(api_base: str, bookmark_base: str, path: str) -> list[dict[str, str]]:
    return [{"href": f"{api_base}/{path}", "rel": "self"}, {"href": f"{bookmark_base}/{path}", "rel": "bookmark"}]


class Links:
    """Base URLs for one project: `{root}/v1.0/{project}` (self) and `{root}/{project}` (bookmark)."""

    def __init__(self, root: str, project_id: str) -> None:
        self.root = root.rstrip("/")
        self.project_id = project_id
        self.api = f"{self.root}/v1.0/{project_id}"
        self.bookmark = f"{self.root}/{project_id}"

    def of(self, path: str) -> list[dict[str, str]]:
        return _links(self.api, self.bookmark, path)


def allowed_cidrs(inst: Instance, purpose: str = SecurityGroupRule.ACCESS) -> list[str]:
    """The CIDRs the datastore port is open to: the user's (access) or Hearth's own (management)."""
    cidrs: list[str] = []
    for rule in inst.rules:
        if rule.from_port == inst.port and rule.purpose == purpose and rule.cidr not in cidrs:
            cidrs.append(rule.cidr)
    return cidrs


def operating_status(inst: Instance) -> str:
    """The database's status (Trove's operating_status): while an operation restarts the server, BUILD; a
    deleted or failed instance, what its status says; otherwise what the last health check found."""
    if inst.task in (Task.BUILDING, Task.RESTARTING, Task.REBUILDING, Task.RESIZING):
        return "BUILD" if inst.task == Task.BUILDING else "SHUTDOWN"
    return inst.operating_status or ""


def instance_view(inst: Instance, links: Links, region: str | None = None, detail: bool = True) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": inst.id,
        "name": inst.name,
        "status": instance_status(inst),
        "operating_status": "",
        "links": links.of(f"instances/{inst.id}"),
        "flavor": {"id": inst.flavor_id, "links": links.of(f"flavors/{inst.flavor_id}")},
        "datastore": {"type": inst.datastore, "version": inst.datastore_version},
        "region": region or "",
        "access": {"is_public": bool(inst.is_public), "allowed_cidrs": allowed_cidrs(inst),
                   "management_cidrs": allowed_cidrs(inst, SecurityGroupRule.MANAGEMENT)},
        "volume": {"size": inst.volume_size},
        "engine": inst.engine,
    }
    addresses = [dict(a) for a in inst.addresses or []]
    if addresses:
        view["ip"] = [a["address"] for a in addresses]
        view["addresses"] = addresses
    view["operating_status"] = operating_status(inst)
    if detail:
        view["datastore"]["version_number"] = inst.datastore_version
        view["created"] = timestamp(inst.created_at)
        view["updated"] = timestamp(inst.updated_at)
        view["stack_id"] = inst.stack_id
        view["stack_status"] = inst.stack_status
        view["service_status_updated"] = timestamp(inst.service_status_updated or inst.updated_at)
        if inst.volume_type:
            view["volume"]["type"] = inst.volume_type
        if inst.volume_used_bytes is not None:  # Trove's: GB used, as the database last reported it
            view["volume"]["used"] = round(inst.volume_used_bytes / 2**30, 2)
        if inst.configuration_id:
            view["configuration"] = {"id": inst.configuration_id,
                                     "links": links.of(f"configurations/{inst.configuration_id}")}
        if inst.fault:
            view["fault"] = {"message": inst.fault, "created": timestamp(inst.fault_at), "details": ""}
        if inst.drift:  # Hearth's: the cloud holds something the record does not say (see taskmanager.reconcile)
            view["drift"] = inst.drift
    return view


def flavor_view(flavor: Any, links: Links) -> dict[str, Any]:
    """Trove's flavor view: integer `id` when the Nova id is numeric, and always `str_id`."""
    return {
        "id": int(flavor.id) if str(flavor.id).isdigit() else flavor.id,
        "str_id": str(flavor.id),
        "name": flavor.name,
        "ram": flavor.ram,
        "vcpus": flavor.vcpus,
        "disk": flavor.disk,
        "ephemeral": flavor.ephemeral,
        "links": links.of(f"flavors/{flavor.id}"),
    }


def version_view(ds: Datastore, version: DatastoreVersion, links: Links, detail: bool = False) -> dict[str, Any]:
    vid = datastore_version_id(ds.name, version.name)
    view: dict[str, Any] = {"id": vid, "name": version.name,
                            "links": links.of(f"datastores/versions/{vid}")}
    if detail:
        view.update({"datastore": datastore_id(ds.name), "active": version.active, "image": version.image,
                     "packages": "", "version": version.name, "port": version.port,
                     "protocol": version.protocol})
    return view


def datastore_view(ds: Datastore, links: Links) -> dict[str, Any]:
    did = datastore_id(ds.name)
    return {
        "id": did,
        "name": ds.name,
        "links": links.of(f"datastores/{did}"),
        "default_version": datastore_version_id(ds.name, ds.default_version),
        "versions": [version_view(ds, v, links) for v in ds.versions],
    }


def rule_view(rule: SecurityGroupRule | dict[str, Any], group_id: str, created: datetime | None = None
              ) -> dict[str, Any]:
    get = rule.get if isinstance(rule, dict) else (lambda key: getattr(rule, key))
    return {
        "id": get("id"),
        "security_group_id": group_id,
        "protocol": get("protocol"),
        "from_port": get("from_port"),
        "to_port": get("to_port"),
        "cidr": get("cidr"),
        "created": timestamp(created if isinstance(rule, dict) else rule.created_at),
    }


def security_group_view(inst: Instance, links: Links) -> dict[str, Any]:
    gid = security_group_id(inst.id)
    return {
        "id": gid,
        "name": f"SecGroup_{inst.id}",
        "description": f"Security Group for {inst.id}",
        "instance_id": inst.id,
        "rules": [
            {"id": r.id, "protocol": r.protocol, "from_port": r.from_port, "to_port": r.to_port, "cidr": r.cidr}
            for r in inst.rules
        ],
        "links": [{"href": f"{links.api}/security-groups/{gid}", "rel": "self"}],
        "created": timestamp(inst.created_at),
        "updated": timestamp(inst.updated_at),
    }


def event_view(event: Event) -> dict[str, Any]:
    return {"id": event.id, "at": timestamp(event.at), "level": event.level, "message": event.message,
            "operation_id": event.operation_id, "request_id": event.request_id}


def operation_view(op: Operation) -> dict[str, Any]:
    return {
        "id": op.id,
        "kind": op.kind,
        "state": op.state,
        "step": op.step,
        "error": op.error,
        "attempts": op.attempts,
        "request_id": op.request_id,
        "params": op.params,
        "journal": op.journal,
        "created": timestamp(op.created_at),
        "started": timestamp(op.started_at),
        "finished": timestamp(op.finished_at),
    }
