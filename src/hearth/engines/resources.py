"""The composition of an instance, declared once: every kind of cloud resource an instance owns.

Each `Kind` says, for one kind (the server, its data volume, the attachment, the security group and its
rules, the port): its name and tags, how to find it by name, how to read it live, how it may differ from
the desired state (drift), its HOT fragment and output, its entry in Heat's adopt data, and the natives
steps that create and delete it (with what those steps would send, for dry runs). The engines never list
the kinds themselves: the natives engine's provision and delete, the HOT builder, the orchestrator's
drift check and realised ids, the migration engine's differences and adopt data, and `describe` are all
derived from `KINDS` here. A new kind is one entry (see `registered` for a temporary one) plus its tests.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from openstack.connection import Connection

from hearth.engines import common, natives_steps
from hearth.engines.base import CloudView, EngineError, InstanceSpec, PlannedStep, Resources, RuleSpec
from hearth.engines.natives_steps import Made, StepEnv

#: HOT parameters every template takes (what changes between operations).
PARAM_FLAVOR, PARAM_IMAGE, PARAM_VOLUME_SIZE = "flavor", "image", "volume_size"
#: The database superuser's password (a hidden parameter: Heat never shows it back).
PARAM_ADMIN_PASS = "admin_pass"
#: Cloud-init user data of stock images (hidden too: it carries the password's verifier).
PARAM_USER_DATA = "user_data"


@dataclass
class Observed:
    """What a drift check sees: the desired spec, the recorded ids and each kind's live state (None: gone);
    with a `snapshot`, the group's rules and the server's ports come from it instead of a read each."""

    conn: Connection
    spec: InstanceSpec
    ids: dict[str, str]
    live: dict[str, dict[str, Any] | None]
    snapshot: Snapshot | None = None

    def ingress_rules(self, group_id: str) -> list[Any]:
        if self.snapshot is not None:
            return self.snapshot.rules.get(group_id, [])
        return common.ingress_rules(self.conn, group_id)

    def server_ports(self, server_id: str) -> list[Any]:
        if self.snapshot is not None:
            return self.snapshot.ports.get(server_id, [])
        return common.server_ports(self.conn, server_id)


@dataclass
class Snapshot:
    """Every resource of the kinds an instance is made of, in the project, read with one listing per collection
    (`Kind.listing`): a fleet's instances compared with the cloud in a few requests, not several each. Plain
    JSON, as `Kind.read` gives it; rules (ingress only) by group, ports by the server they are plugged into."""

    live: dict[str, dict[str, dict[str, Any]]]  # kind key -> cloud id -> plain JSON
    rules: dict[str, list[dict[str, Any]]]
    ports: dict[str, list[dict[str, Any]]]

    def of(self, ids: Mapping[str, str]) -> dict[str, dict[str, Any] | None]:
        """`read_live`'s answer for one instance's recorded ids (None: not in the cloud)."""
        return {kind.key: self.live.get(kind.key, {}).get(ids[kind.key])
                for kind in KINDS if kind.read and kind.key in ids}


def snapshot(conn: Connection) -> Snapshot:
    """Read every collection an instance's kinds live in, once (paginated as the cloud pages them)."""
    live: dict[str, dict[str, dict[str, Any]]] = {}
    for kind in KINDS:
        if kind.listing is not None:
            service, path, key = kind.listing
            live[kind.key] = {str(item.get("id")): item for item in common.list_plain(
                getattr(conn, service), path, key, f"listing every {kind.label}")}
    rules: dict[str, list[dict[str, Any]]] = {}
    for rule in common.list_plain(conn.network, "/security-group-rules", "security_group_rules",
                                  "listing every security group rule"):
        if rule.get("direction") == "ingress":
            rules.setdefault(str(rule.get("security_group_id")), []).append(rule)
    ports: dict[str, list[dict[str, Any]]] = {}
    for port in live.get("port", {}).values():
        if port.get("device_id"):
            ports.setdefault(str(port["device_id"]), []).append(port)
    return Snapshot(live, rules, ports)


class Difference(str):
    """One drift finding: its text (what users read), and the key of the resource kind it concerns, so callers
    decide by kind (e.g. only rule drift is repaired automatically), never by the text."""

    kind: str

    def __new__(cls, text: str, kind: str) -> Difference:
        found = super().__new__(cls, text)
        found.kind = kind
        return found


@dataclass(frozen=True)
class Kind:
    """One kind of cloud resource of an instance. Every field but `key` and `label` is optional: a kind
    without a HOT fragment is not in the template, one without natives steps is made by another's (the
    port is Nova's, made with the server), one without `find` is never looked up by name."""

    key: str  # stable id of the kind (Resources.extra_ids key for kinds without a Resources field)
    label: str  # how messages name it ("security group")
    #: The Resources field and journal key holding its cloud id (None: Hearth records no id for it).
    id_key: str | None = None
    required: bool = False  # an instance is not fully built without it (drift and realised-id checks)
    name: Callable[[str], str] | None = None  # instance id -> the resource's cloud name
    find: Callable[[Connection, str], list[Any]] | None = None  # instance id -> its resources found by name
    read: Callable[[Connection, str], dict[str, Any] | None] | None = None  # id -> plain JSON, None if gone
    #: How to list them all (proxy, path, JSON key), for a Snapshot; None: read one by one only.
    listing: tuple[str, str, str] | None = None
    view: Callable[[Connection, dict[str, Any]], dict[str, Any]] | None = None  # live -> CloudView entry
    view_field: str | None = None  # the CloudView attribute (else CloudView.extra[key])
    drift: Callable[[Observed], list[str]] | None = None  # live vs desired; [] when they match
    logical: str | None = None  # logical name in the HOT template
    hot: Callable[[InstanceSpec], dict[str, Any] | None] | None = None  # HOT definition (None: not for this spec)
    output: str | None = None  # the stack output naming its id
    output_description: str = ""
    #: Heat abandon-data entry for the existing resource (default: {"resource_id": its recorded id}).
    adopt: Callable[[Connection, InstanceSpec, dict[str, str]], dict[str, Any]] | None = None
    after: tuple[str, ...] = ()  # natives: kinds whose create must finish first (their Made is in env.results)
    create: Callable[[StepEnv], Made] | None = None  # natives: create it, or reuse an earlier attempt's
    delete: Callable[[StepEnv, str], None] | None = None  # natives: delete one by id (gone already is fine)
    delete_phase: int = 0  # natives: deletes run phase by phase (kinds of one phase in parallel)
    plan_create: Callable[[InstanceSpec, Resources], list[PlannedStep]] | None = None  # the writes `create` sends
    plan_delete: Callable[[Resources, str | None], list[PlannedStep]] | None = None  # the writes `delete` sends

    @property
    def journal_key(self) -> str:
        return self.id_key or f"{self.key}_id"


# --------------------------------------------------------------------------------------------------
# Ids: where each kind's cloud id lives in Resources and in the journal.


def id_of(kind: Kind, current: Resources) -> str | None:
    if kind.id_key and hasattr(current, kind.id_key):
        return getattr(current, kind.id_key)
    return current.extra_ids.get(kind.key)


def ids_of(current: Resources, journal: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Kind key -> cloud id, from the recorded resources, else from the journal."""
    found: dict[str, str] = {}
    for kind in KINDS:
        value = id_of(kind, current) or (journal or {}).get(kind.journal_key)
        if value:
            found[kind.key] = str(value)
    return found


def journal_ids(ids: Mapping[str, str]) -> dict[str, str]:
    """The journal entries recording `ids` (kind key -> cloud id)."""
    return {kind.journal_key: ids[kind.key] for kind in KINDS if kind.key in ids}


def with_ids(current: Resources, ids: Mapping[str, str]) -> Resources:
    """`current` with the given kinds' ids set (fields where Resources has one, extra_ids otherwise)."""
    fields: dict[str, Any] = {}
    extra = dict(current.extra_ids)
    for kind in KINDS:
        if kind.key not in ids:
            continue
        if kind.id_key and hasattr(current, kind.id_key):
            fields[kind.id_key] = ids[kind.key]
        else:
            extra[kind.key] = ids[kind.key]
    return dataclasses.replace(current, extra_ids=extra, **fields)


def missing_required(ids: Mapping[str, str]) -> list[Kind]:
    return [kind for kind in KINDS if kind.required and kind.id_key and kind.key not in ids]


def recorded_kinds() -> list[Kind]:
    """Kinds whose cloud id Hearth records."""
    return [kind for kind in KINDS if kind.id_key or kind.create]


# --------------------------------------------------------------------------------------------------
# Derivations: what the engines ask of the composition.


def find_all(conn: Connection, instance_id: str) -> list[tuple[Kind, Any]]:
    """Every resource named for the instance (leftover checks), kind by kind."""
    return [(kind, found) for kind in KINDS if kind.find for found in kind.find(conn, instance_id)]


def read_live(conn: Connection, ids: Mapping[str, str]) -> dict[str, dict[str, Any] | None]:
    """Each recorded kind's live state by id (None: gone), one plain-JSON read each."""
    return {kind.key: kind.read(conn, ids[kind.key]) for kind in KINDS if kind.read and kind.key in ids}


def differences(conn: Connection, spec: InstanceSpec, ids: Mapping[str, str],
                live: dict[str, dict[str, Any] | None] | None = None,
                seen: Snapshot | None = None) -> list[str]:
    """How the live resources differ from the desired state (empty: they match), as `Difference`s. Reads only;
    `live`: each kind's state as just read by the caller (read_live); `seen`: a Snapshot of the whole project
    (then nothing is read here)."""
    missing = missing_required(ids)
    if missing:
        return [Difference(f"Hearth has no recorded {', '.join(k.label for k in missing)} for the instance (it "
                           "was never fully built)", missing[0].key)]
    if seen is not None:
        live = seen.of(ids)
    observed = Observed(conn, spec, dict(ids), read_live(conn, ids) if live is None else live, seen)
    found: list[str] = []
    for kind in KINDS:
        if kind.key in observed.live and observed.live[kind.key] is None:
            found.append(Difference(f"{kind.label} {ids[kind.key]} no longer exists", kind.key))
        elif kind.drift is not None:
            found += [Difference(text, kind.key) for text in kind.drift(observed)]
    return found


def read_view(conn: Connection, spec: InstanceSpec, ids: Mapping[str, str]) -> CloudView:
    """What the cloud holds for the instance, by recorded id, else by the instance's names; changes nothing."""
    view = CloudView()
    for kind in KINDS:
        if kind.view is None or kind.read is None:
            continue
        if kind.key in ids:
            live = kind.read(conn, ids[kind.key])
        else:
            found = next(iter(kind.find(conn, spec.instance_id)), None) if kind.find else None
            live = kind.read(conn, found.id) if found is not None else None
        entry = kind.view(conn, live) if live is not None else None
        if kind.view_field:
            setattr(view, kind.view_field, entry)
        elif entry is not None:
            view.extra[kind.key] = entry
    return view


def hot_resources(spec: InstanceSpec) -> dict[str, Any]:
    """The template's resources, in declaration order."""
    found: dict[str, Any] = {}
    for kind in KINDS:
        definition = kind.hot(spec) if kind.hot else None
        if definition is not None and kind.logical:
            found[kind.logical] = definition
    return found


def hot_outputs(fragments: Mapping[str, Any]) -> dict[str, Any]:
    """The template's outputs: the id of each kind present in `fragments` (hot_resources) that declares one."""
    return {kind.output: {"description": kind.output_description, "value": {"get_resource": kind.logical}}
            for kind in KINDS if kind.output and kind.logical in fragments}


def ids_from_outputs(outputs: Mapping[str, Any]) -> dict[str, str]:
    return {kind.key: str(outputs[kind.output]) for kind in KINDS if kind.output and outputs.get(kind.output)}


def adopt_entries(conn: Connection, spec: InstanceSpec, ids: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Heat's abandon-data entry for each logical resource of the template: the existing ids."""
    entries: dict[str, dict[str, Any]] = {}
    for kind in KINDS:
        if not kind.logical or not kind.hot or kind.hot(spec) is None:
            continue
        if kind.adopt is not None:
            entries[kind.logical] = kind.adopt(conn, spec, dict(ids))
        elif kind.key in ids:
            entries[kind.logical] = {"resource_id": ids[kind.key]}
    return entries


def creation_order() -> list[Kind]:
    """Kinds with natives create steps, each after what it depends on (declaration order otherwise)."""
    creatable = {kind.key for kind in KINDS if kind.create}
    ordered: list[Kind] = []
    done: set[str] = set()
    pending = [kind for kind in KINDS if kind.create]
    while pending:
        ready = [k for k in pending if all(d in done or d not in creatable for d in k.after)]
        if not ready:
            raise EngineError(f"resource kinds depend on each other in a cycle: {[k.key for k in pending]}")
        for kind in ready:
            ordered.append(kind)
            done.add(kind.key)
            pending.remove(kind)
    return ordered


def delete_phases() -> list[list[Kind]]:
    phases: dict[int, list[Kind]] = {}
    for kind in KINDS:
        if kind.delete:
            phases.setdefault(kind.delete_phase, []).append(kind)
    return [phases[p] for p in sorted(phases)]


def plan_provision(spec: InstanceSpec, current: Resources) -> list[PlannedStep]:
    return [step for kind in creation_order() if kind.plan_create for step in kind.plan_create(spec, current)]


def plan_delete(current: Resources) -> list[PlannedStep]:
    return [step for phase in delete_phases() for kind in phase if kind.plan_delete
            for step in kind.plan_delete(current, id_of(kind, current))]


# --------------------------------------------------------------------------------------------------
# The built-in kinds.

SECURITY_GROUP = "security_group"  # logical names inside every Hearth stack
DATA_VOLUME = "data_volume"
PORT = "port"
SERVER = "server"
ATTACHMENT = "data_volume_attachment"
FLOATING_IP = "floating_ip"

OUTPUT_SERVER = "server_id"
OUTPUT_VOLUME = "volume_id"
OUTPUT_SECGROUP = "security_group_id"
OUTPUT_PORT = "port_id"
OUTPUT_FLOATING_IP = "floating_ip_id"


def plain_reader(service: str, collection: str, key: str, label: str
                 ) -> Callable[[Connection, str], dict[str, Any] | None]:
    """A kind's `read`: GET /<collection>/<id> through the `service` proxy as plain JSON (None on 404)."""

    def read(conn: Connection, resource_id: str) -> dict[str, Any] | None:
        return common.get_plain(getattr(conn, service), f"/{collection}/{resource_id}", key, f"reading {label}")

    return read


def _server_view(conn: Connection, server: dict[str, Any]) -> dict[str, Any]:
    fault = server.get("fault") if isinstance(server.get("fault"), dict) else None
    return {"id": server.get("id"), "status": server.get("status"),
            "flavor_id": common.server_flavor_id(conn, common.Plain(server)),
            "fault": fault.get("message") if fault else None}


def _server_drift(seen: Observed) -> list[str]:
    server = seen.live.get("server")
    if server is None:
        return []
    found = []
    if server.get("status") != "ACTIVE":
        found.append(f"server {server.get('id')} is {server.get('status')}, not ACTIVE")
    flavor = common.resolve_flavor(seen.conn, seen.spec.flavor_id)
    plain = common.Plain(server)
    if not common.server_has_flavor(plain, flavor):
        live = common.server_flavor_id(seen.conn, plain)
        live_name = (server.get("flavor") or {}).get("original_name")
        if live_name is None and live:  # an older microversion's answer names the flavor by id only
            live_name = getattr(common.get_or_none(f"looking up flavor {live}", seen.conn.compute.find_flavor, live,
                                                   ignore_missing=False), "name", None)
        live_name = live_name or live
        found.append(f"server {server.get('id')} has flavor {live_name} ({live}); Hearth records flavor "
                     f"{flavor.name} ({flavor.id})")
    return found


def _server_hot(spec: InstanceSpec) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "name": common.server_name(spec.instance_id, spec.name),
        "flavor": {"get_param": PARAM_FLAVOR},
        "flavor_update_policy": "RESIZE",
        "image": {"get_param": PARAM_IMAGE},
        "image_update_policy": "REBUILD",  # a new image keeps the server, its port and its volume
        "admin_pass": {"get_param": PARAM_ADMIN_PASS},
        "user_data": {"get_param": PARAM_USER_DATA},
        "user_data_format": "RAW",
        # The user data only sets a new server up (its pg_hba lines follow access changes through the database):
        # a change of it must never replace the server and its database.
        "user_data_update_policy": "IGNORE",
        "metadata": common.resource_metadata(spec),
    }
    if spec.network_id:
        properties["networks"] = [{"port": {"get_resource": PORT}}]
    else:
        properties["networks"] = [{"allocate_network": "auto"}]
        properties["security_groups"] = [{"get_resource": SECURITY_GROUP}]
    if spec.availability_zone:
        properties["availability_zone"] = spec.availability_zone
    return {"type": "OS::Nova::Server", "properties": properties}


def _volume_view(_conn: Connection, volume: dict[str, Any]) -> dict[str, Any]:
    return {"id": volume.get("id"), "status": volume.get("status"), "size": volume.get("size"),
            "attached_to": [a.get("server_id") for a in volume.get("attachments") or []]}


def _volume_drift(seen: Observed) -> list[str]:
    volume = seen.live.get("volume")
    if volume is None or volume.get("size") == seen.spec.volume_size:
        return []
    return [f"volume {volume.get('id')} is {volume.get('size')} GB; Hearth records {seen.spec.volume_size} GB"]


def _volume_hot(spec: InstanceSpec) -> dict[str, Any]:
    properties: dict[str, Any] = {"name": common.volume_name(spec.instance_id),
                                  "size": {"get_param": PARAM_VOLUME_SIZE},
                                  "metadata": common.resource_metadata(spec)}
    if spec.availability_zone:
        properties["availability_zone"] = spec.availability_zone
    if spec.volume_type:
        properties["volume_type"] = spec.volume_type
    return {"type": "OS::Cinder::Volume", "properties": properties}


def _group_view(conn: Connection, group: dict[str, Any]) -> dict[str, Any]:
    rules = common.ingress_rules(conn, str(group.get("id")))
    return {"id": group.get("id"), "name": group.get("name"), "rules": [
        {"id": r.id, "protocol": r.protocol, "from_port": r.port_range_min, "to_port": r.port_range_max,
         "cidr": r.remote_ip_prefix} for r in rules]}


def _rules_drift(seen: Observed) -> list[str]:
    group_id = seen.ids.get("security_group")
    if not group_id or seen.live.get("security_group") is None:
        return []
    live = [common.neutron_shape(r) for r in seen.ingress_rules(group_id)]
    wanted = [common.rule_shape(r) for r in seen.spec.rules]
    found = [f"security group {group_id} lacks the rule {common.shape_text(s)}" for s in wanted if s not in live]
    found += [f"security group {group_id} has a rule Hearth does not record: {common.shape_text(s)}"
              for s in live if s not in wanted]
    return found


def _hot_rule(rule: RuleSpec) -> dict[str, Any]:
    shape = common.rule_body(rule, secgroup_id="")
    entry: dict[str, Any] = {"direction": "ingress", "ethertype": rule.ethertype, "remote_mode": "remote_ip_prefix",
                             "remote_ip_prefix": shape["remote_ip_prefix"]}
    if shape["protocol"]:
        entry["protocol"] = shape["protocol"]
        entry["port_range_min"] = shape["port_range_min"]
        entry["port_range_max"] = shape["port_range_max"]
    return entry


def _group_hot(spec: InstanceSpec) -> dict[str, Any]:
    # Rules in a stable order (by what they open, then Hearth id) so equal specs render equally.
    rules = sorted(spec.rules, key=lambda r: (r.protocol, r.from_port, r.to_port, r.cidr, r.id))
    return {"type": "OS::Neutron::SecurityGroup", "properties": {
        "name": common.secgroup_name(spec.instance_id), "description": common.secgroup_description(spec),
        "rules": [_hot_rule(r) for r in rules]}}


def _port_drift(seen: Observed) -> list[str]:
    server_id, group_id = seen.ids.get("server"), seen.ids.get("security_group")
    if seen.live.get("server") is None or seen.live.get("security_group") is None or not server_id or not group_id:
        return []
    ports = seen.server_ports(server_id)
    found = []
    if not any(group_id in _port_groups(p) for p in ports):
        found.append(f"server {server_id} is not in security group {group_id}")
    if seen.spec.network_id and len(ports) != 1:
        found.append(f"server {server_id} has {len(ports)} ports; Hearth's template gives it exactly one")
    return found


def _port_groups(port: Any) -> list[str]:
    """A port's security groups, from plain JSON (a Snapshot's) or an openstacksdk Port."""
    if hasattr(port, "security_group_ids"):  # an openstacksdk Port (a dict too, keyed by its own names)
        return list(port.security_group_ids or [])
    return list(port.get("security_groups") or [])


def _port_hot(spec: InstanceSpec) -> dict[str, Any] | None:
    if not spec.network_id:
        return None
    properties: dict[str, Any] = {"name": common.port_name(spec.instance_id), "network": spec.network_id,
                                  "security_groups": [{"get_resource": SECURITY_GROUP}]}
    fixed = {key: value for key, value in (("subnet", spec.subnet_id), ("ip_address", spec.fixed_ip)) if value}
    if fixed:
        properties["fixed_ips"] = [fixed]
    return {"type": "OS::Neutron::Port", "properties": properties}


def _port_adopt(conn: Connection, _spec: InstanceSpec, ids: dict[str, str]) -> dict[str, Any]:
    if ids.get("port"):
        return {"resource_id": ids["port"]}
    server_id = ids.get("server")
    port = next(iter(common.server_ports(conn, server_id)), None) if server_id else None
    if port is None:
        raise EngineError(f"server {server_id} has no port")
    return {"resource_id": port.id}


def _port_view(_conn: Connection, port: dict[str, Any]) -> dict[str, Any]:
    return {"id": port.get("id"), "network_id": port.get("network_id"),
            "fixed_ips": [f.get("ip_address") for f in port.get("fixed_ips") or []],
            "security_group_ids": port.get("security_groups") or []}


def _floating_ip_view(_conn: Connection, ip: dict[str, Any]) -> dict[str, Any]:
    return {"id": ip.get("id"), "address": ip.get("floating_ip_address"), "port_id": ip.get("port_id")}


def _floating_ip_drift(seen: Observed) -> list[str]:
    ip = seen.live.get("floating_ip")
    if seen.spec.is_public and "floating_ip" not in seen.ids:
        return ["the instance is public but has no floating IP"]
    if not seen.spec.is_public and ip is not None:
        return [f"floating IP {ip.get('floating_ip_address')} ({ip.get('id')}) is still allocated to a private "
                "instance"]
    if ip is not None and seen.ids.get("port") and ip.get("port_id") != seen.ids["port"]:
        return [f"floating IP {ip.get('floating_ip_address')} is associated with port {ip.get('port_id')}, not "
                f"the instance's port {seen.ids['port']}"]
    return []


def _floating_ip_hot(spec: InstanceSpec) -> dict[str, Any] | None:
    if not spec.is_public or not spec.network_id:
        return None
    return {"type": "OS::Neutron::FloatingIP", "properties": {
        "floating_network": spec.public_network, "port_id": {"get_resource": PORT}}}


def _attachment_drift(seen: Observed) -> list[str]:
    volume = seen.live.get("volume")
    if volume is None:
        return []
    attached = [a.get("server_id") for a in volume.get("attachments") or []]
    server_id = seen.ids.get("server")
    if attached == [server_id]:
        return []
    return [f"volume {volume.get('id')} is attached to {', '.join(map(str, attached)) or 'nothing'}; "
            f"Hearth records it attached to server {server_id}"]


def _attachment_hot(_spec: InstanceSpec) -> dict[str, Any]:
    return {"type": "OS::Cinder::VolumeAttachment",
            "properties": {"instance_uuid": {"get_resource": SERVER}, "volume_id": {"get_resource": DATA_VOLUME}}}


def _attachment_adopt(conn: Connection, _spec: InstanceSpec, ids: dict[str, str]) -> dict[str, Any]:
    server_id, volume_id = ids.get("server"), ids.get("volume")
    attachment = common.retried(
        f"listing volume attachments of server {server_id}",
        lambda: next((a for a in conn.compute.volume_attachments(server_id) if a.volume_id == volume_id), None))
    if attachment is None:
        raise EngineError(f"volume {volume_id} is not attached to server {server_id}")
    return {"resource_id": attachment.id, "resource_data": {"server": server_id, "volume": volume_id}}


def _new(current_id: str | None, what: str) -> str:
    return current_id or f"(new {what})"


SECURITY_GROUP_KIND = Kind(
    key="security_group", label="security group", id_key="secgroup_id", required=True,
    name=common.secgroup_name, find=common.find_secgroups,
    read=plain_reader("network", "security-groups", "security_group", "security group"),
    listing=("network", "/security-groups", "security_groups"),
    view=_group_view, view_field="security_group",
    logical=SECURITY_GROUP, hot=_group_hot, output=OUTPUT_SECGROUP, output_description="Neutron security group id",
    create=natives_steps.group_step, delete=natives_steps.delete_group, delete_phase=1,
    plan_create=lambda spec, _cur: [PlannedStep("POST /security-groups", common.secgroup_name(spec.instance_id))],
    plan_delete=lambda _cur, gid: [PlannedStep("DELETE /security-groups/{id}", _new(gid, "security group"),
                                               "its rules go with it")],
)
RULES_KIND = Kind(
    key="security_group_rules", label="security group rules", drift=_rules_drift,
    after=("security_group",), create=natives_steps.rules_step,
    plan_create=lambda spec, _cur: [PlannedStep("POST /security-group-rules", common.secgroup_name(spec.instance_id),
                                                common.rule_text(r)) for r in spec.rules],
)
VOLUME_KIND = Kind(
    key="volume", label="volume", id_key="volume_id", required=True,
    name=common.volume_name, find=common.find_volumes,
    read=plain_reader("block_storage", "volumes", "volume", "volume"), view=_volume_view, view_field="volume",
    listing=("block_storage", "/volumes/detail", "volumes"),
    drift=_volume_drift, logical=DATA_VOLUME, hot=_volume_hot, output=OUTPUT_VOLUME,
    output_description="Cinder volume id",
    create=natives_steps.volume_step, delete=natives_steps.delete_volume, delete_phase=1,
    plan_create=lambda spec, _cur: [PlannedStep("POST /volumes", common.volume_name(spec.instance_id),
                                                f"{spec.volume_size} GB")],
    plan_delete=lambda _cur, vid: [PlannedStep("DELETE /volumes/{id}", _new(vid, "volume"))],
)
PORT_KIND = Kind(  # with a network: Hearth's own port; without: Nova makes one with the server ("auto")
    key="port", label="port", name=common.port_name, find=common.find_ports,
    read=plain_reader("network", "ports", "port", "port"), view=_port_view, listing=("network", "/ports", "ports"),
    drift=_port_drift, logical=PORT, hot=_port_hot, output=OUTPUT_PORT, output_description="Neutron port id",
    adopt=_port_adopt, after=("security_group",), create=natives_steps.port_step, delete=natives_steps.delete_port,
    delete_phase=1,
    plan_create=lambda spec, _cur: [PlannedStep("POST /ports", common.port_name(spec.instance_id),
                                                f"network {spec.network_id}"
                                                + (f", address {spec.fixed_ip}" if spec.fixed_ip else ""))]
    if spec.network_id else [],
    plan_delete=lambda _cur, pid: [PlannedStep("DELETE /ports/{id}", pid)] if pid else [],
)
FLOATING_IP_KIND = Kind(
    key="floating_ip", label="floating IP", find=common.find_floating_ips,
    read=plain_reader("network", "floatingips", "floatingip", "floating IP"), view=_floating_ip_view,
    listing=("network", "/floatingips", "floatingips"),
    drift=_floating_ip_drift, logical=FLOATING_IP, hot=_floating_ip_hot, output=OUTPUT_FLOATING_IP,
    output_description="Neutron floating IP id", after=("port",), create=natives_steps.floating_ip_step,
    delete=natives_steps.delete_floating_ip, delete_phase=0,
    plan_create=lambda spec, _cur: [PlannedStep("POST /floatingips", common.floating_ip_description(spec.instance_id),
                                                f"from network {spec.public_network}, on the instance's port")]
    if spec.is_public else [],
    plan_delete=lambda _cur, fid: [PlannedStep("DELETE /floatingips/{id}", fid)] if fid else [],
)
SERVER_KIND = Kind(
    key="server", label="server", id_key="server_id", required=True,
    name=common.server_name, find=common.find_servers,
    read=plain_reader("compute", "servers", "server", "server"), view=_server_view, view_field="server",
    listing=("compute", "/servers/detail", "servers"),
    drift=_server_drift, logical=SERVER, hot=_server_hot, output=OUTPUT_SERVER, output_description="Nova server id",
    after=("security_group", "port", "volume"), create=natives_steps.server_step,
    delete=natives_steps.delete_server,
    delete_phase=0,
    plan_create=lambda spec, _cur: [PlannedStep("POST /servers", common.server_name(spec.instance_id, spec.name),
                                                f"flavor {spec.flavor_id}, image {spec.image_id}, the data volume "
                                                "mapped at boot")],
    plan_delete=lambda _cur, sid: [PlannedStep("DELETE /servers/{id}", _new(sid, "server"))],
)
ATTACHMENT_KIND = Kind(
    key="attachment", label="volume attachment", drift=_attachment_drift, logical=ATTACHMENT,
    hot=_attachment_hot, adopt=_attachment_adopt,
    after=("server", "volume"), create=natives_steps.attachment_step,  # confirms what the boot attached
)

#: The instance's composition, in template order.
KINDS: list[Kind] = [SECURITY_GROUP_KIND, RULES_KIND, VOLUME_KIND, PORT_KIND, SERVER_KIND, ATTACHMENT_KIND,
                     FLOATING_IP_KIND]


@contextmanager
def registered(kind: Kind) -> Iterator[Kind]:
    """Add a kind for the duration of the block (tests of the declaration; not for production paths)."""
    KINDS.append(kind)
    try:
        yield kind
    finally:
        KINDS.remove(kind)

