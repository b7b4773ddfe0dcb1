"""Nova's state: flavors, servers and their lifecycle, quota usage, keypairs.

Servers move through Nova's (vm_state, task_state) pairs; the API `status` is derived from them
exactly as Nova's state map does. Every asynchronous step is a timer on the cloud scheduler that
carries the server's `generation`: a later operation (or a delete) bumps it, so a stale timer is a no-op.
Ports live in Neutron and volume attachments in Cinder; this backend only asks them through the
cross-service contract.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import ipaddress
import re
import secrets
import string
import uuid
from bisect import bisect_left, insort
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from openstack_fakecloud.backend import Backend
from openstack_fakecloud.errors import BadRequest, CloudError, Conflict, Forbidden, NotFound, QuotaExceeded
from openstack_fakecloud.framework import new_request_id

HOST = "fakecloud-compute-1"
AVAILABILITY_ZONE = "nova"
MAX_LIMIT = 1000  # Nova's osapi_max_limit

# Nova's power states.
NOSTATE, RUNNING, SHUTDOWN = 0, 1, 4

# (vm_state -> {task_state: status}); the None key is the vm_state's default (nova/api/openstack/common.py).
_RESIZING = {"resize_prep": "RESIZE", "resize_migrating": "RESIZE", "resize_migrated": "RESIZE",
             "resize_finish": "RESIZE"}
_REBUILDING = {"rebuilding": "REBUILD", "rebuild_block_device_mapping": "REBUILD", "rebuild_spawning": "REBUILD"}
_STATUS: dict[str, dict[str | None, str]] = {
    "building": {None: "BUILD"},
    "active": {None: "ACTIVE", "rebooting": "REBOOT", "rebooting_hard": "HARD_REBOOT", **_RESIZING, **_REBUILDING},
    "stopped": {None: "SHUTOFF", "rebooting_hard": "HARD_REBOOT", **_RESIZING, **_REBUILDING},
    "resized": {None: "VERIFY_RESIZE", "resize_reverting": "REVERT_RESIZE"},
    "error": {None: "ERROR", "rebooting_hard": "HARD_REBOOT", **_REBUILDING},
    "deleted": {None: "DELETED"},
}

# Nova's fixed limit on a server's metadata items (its metadata_items quota, which fakecloud does not vary).
METADATA_ITEMS = 128
PASSWORD_LENGTH = 12  # Nova's password_length
# Nova's generate_password draws from these: no look-alike characters (0/O, 1/l/I).
_PASSWORD_SYMBOLS = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

# The event each recorded action's work shows (Nova names events after the compute manager method).
ACTION_EVENTS = {
    "create": "compute__do_build_and_run_instance", "delete": "compute_terminate_instance",
    "resize": "compute_prep_resize", "confirmResize": "compute_confirm_resize",
    "revertResize": "compute_revert_resize", "reboot": "compute_reboot_instance", "stop": "compute_stop_instance",
    "start": "compute_start_instance", "attach_volume": "compute_attach_volume",
    "detach_volume": "compute_detach_volume", "rebuild": "compute_rebuild_instance",
}
MAX_DELETED_HISTORIES = 1000  # action histories kept for purged servers (Nova keeps them; 2.21 shows them)

# Nova's server group policies (the soft ones from 2.15) and its per-project group limits.
GROUP_POLICIES = ("affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity")
SERVER_GROUPS_QUOTA, SERVER_GROUP_MEMBERS_QUOTA = 10, 10
# Nova's server tags: at most 50 per server.
MAX_TAGS = 50
DISK_CONFIGS = ("AUTO", "MANUAL")
# vm_states in which Nova lets a server's tags change (nova/api/openstack/compute/server_tags.py).
_TAGGABLE = ("active", "paused", "suspended", "stopped", "shelved", "shelved_offloaded")

STATUSES = frozenset({"BUILD", "ACTIVE", "REBOOT", "HARD_REBOOT", "RESIZE", "SHUTOFF", "VERIFY_RESIZE",
                      "REVERT_RESIZE", "ERROR", "DELETED", "MIGRATING", "PAUSED", "SUSPENDED", "SHELVED",
                      "SHELVED_OFFLOADED", "RESCUE", "REBUILD", "PASSWORD", "SOFT_DELETED", "UNKNOWN"})


def status_of(vm_state: str, task_state: str | None) -> str:
    states = _STATUS.get(vm_state, {None: "UNKNOWN"})
    return states.get(task_state, states[None])


def generate_password(length: int = PASSWORD_LENGTH) -> str:
    """An admin password as Nova makes one when the request sets none."""
    return "".join(secrets.choice(_PASSWORD_SYMBOLS) for _ in range(length))


def reservation_id() -> str:
    """Nova's reservation id for one create request: 'r-' and eight lowercase letters or digits."""
    return "r-" + "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))


def check_metadata_quota(metadata: dict[str, str]) -> None:
    """Nova's metadata_items quota: a server holds at most 128 items (403, as Nova's MetadataLimitExceeded)."""
    if len(metadata) > METADATA_ITEMS:
        raise QuotaExceeded(f"Maximum number of metadata items exceeds {METADATA_ITEMS}", status=403)


@dataclass(slots=True)
class Flavor:
    id: str
    name: str
    ram: int
    vcpus: int
    disk: int
    ephemeral: int = 0
    swap: int = 0
    is_public: bool = True
    description: str | None = None
    rxtx_factor: float = 1.0
    extra_specs: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Keypair:
    name: str
    user_id: str
    public_key: str
    fingerprint: str
    type: str
    created_at: str


@dataclass(slots=True)
class ActionEvent:
    """One step of an action's work; finish_time and result stay None until the step ends."""

    event: str
    start_time: str
    finish_time: str | None = None
    result: str | None = None  # "Success" or "Error"
    traceback: str | None = None


@dataclass(slots=True)
class InstanceAction:
    """A record of one request that acted on a server (Nova's os-instance-actions), keyed by its request id."""

    action: str
    instance_uuid: str
    request_id: str
    user_id: str
    project_id: str
    start_time: str
    updated_at: str
    message: str | None = None  # Nova sets "Error" when the work failed
    events: list[ActionEvent] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asked, under which request id: what an instance action records. Routes build it from the request."""

    request_id: str
    user_id: str
    is_admin: bool = False  # an admin acts on locked servers (Nova's InstanceIsLocked spares admins)


@dataclass(slots=True)
class Server:
    id: str
    seq: int  # Nova's integer instance id: creation order, the default sort's tie-breaker
    name: str
    project_id: str
    user_id: str
    flavor: Flavor
    image_id: str  # "" when booted from a volume
    created: str
    updated: str
    host_id: str
    vm_state: str = "building"
    task_state: str | None = "scheduling"
    power_state: int = NOSTATE
    metadata: dict[str, str] = field(default_factory=dict)
    security_groups: list[dict[str, str]] = field(default_factory=list)  # [{"id", "name"}]
    key_name: str | None = None
    availability_zone: str = AVAILABILITY_ZONE
    user_data: str | None = None
    access_ipv4: str = ""
    access_ipv6: str = ""
    description: str | None = None
    tags: list[str] = field(default_factory=list)
    config_drive: str = ""
    locked: bool = False
    launched_at: str | None = None
    fault: dict[str, Any] | None = None
    old_flavor: Flavor | None = None  # kept from resize until confirm/revert
    new_flavor: Flavor | None = None  # the target while a resize is in flight
    resume_state: str = "active"  # vm_state to return to after confirm/revert (a stopped server stays off)
    block_device_mapping: list[dict[str, Any]] = field(default_factory=list)
    volume_options: dict[str, dict[str, Any]] = field(default_factory=dict)  # volume id -> tag, delete_on_term.
    generation: int = 0
    disk_config: str = "MANUAL"  # OS-DCF:diskConfig; fakecloud has no partitions, so it is only recorded
    reservation_id: str = ""  # the create request's: every server of a multiple create shares it
    launch_index: int = 0  # the server's place in its multiple create
    locked_by: str | None = None  # "owner" or "admin" while locked (Nova's locked_by)
    locked_reason: str | None = None  # 2.73
    # os-server-password: what the guest's metadata service stored (encrypted); fakecloud guests store none.
    password: str = ""
    # The password set or generated at boot. Nova answers it once, in the create response, and never in a
    # view; fakecloud keeps it because a guest (e.g. a database) takes its superuser password from it.
    admin_pass: str = ""

    @property
    def status(self) -> str:
        return status_of(self.vm_state, self.task_state)


@dataclass(slots=True)
class NetworkRequest:
    """One entry of `networks`: a network (optionally with a fixed IP) or an existing port."""

    uuid: str | None = None
    port: str | None = None
    fixed_ip: str | None = None
    tag: str | None = None


@dataclass(slots=True)
class ServerCreate:
    """A parsed create request; the routes check shapes, the backend checks meaning."""

    name: str
    flavor_ref: str
    image_ref: str | None
    networks: str | list[NetworkRequest] | None  # "auto", "none", a list, or None (pre-2.37 default)
    security_groups: list[str] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)
    key_name: str | None = None
    availability_zone: str | None = None
    user_data: str | None = None
    access_ipv4: str = ""
    access_ipv6: str = ""
    description: str | None = None
    tags: list[str] = field(default_factory=list)
    config_drive: bool = False
    block_device_mapping: list[dict[str, Any]] = field(default_factory=list)
    admin_pass: str | None = None  # None: Nova makes one up
    disk_config: str = "MANUAL"
    min_count: int = 1  # a multiple create boots as many as quota allows between these two
    max_count: int = 1
    group: str | None = None  # the scheduler hint `group`: a server group id


@dataclass(slots=True)
class ServerRebuild:
    """A parsed rebuild action: the image is required, the rest changes only what it names."""

    image_ref: str
    admin_pass: str | None = None  # None: Nova makes one up
    name: str | None = None
    metadata: dict[str, str] | None = None
    access_ipv4: str | None = None
    access_ipv6: str | None = None
    description: str | None = None
    disk_config: str | None = None
    key_name: str | None = None  # 2.54; "" unsets the key
    user_data: str | None = None  # 2.57; "" unsets it


@dataclass(slots=True)
class ServerGroup:
    """Nova's server group: a placement policy its members were scheduled under (one host here)."""

    id: str
    name: str
    policy: str
    project_id: str
    user_id: str
    rules: dict[str, Any] = field(default_factory=dict)
    members: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ServerQuery:
    """List filters, already parsed."""

    name: re.Pattern[str] | None = None
    statuses: frozenset[str] | None = None
    flavor: str | None = None
    image: str | None = None
    project_id: str | None = None
    ids: frozenset[str] | None = None
    deleted: bool = False
    reservation_id: str | None = None
    changes_since: datetime | None = None  # updated at or after this instant
    changes_before: datetime | None = None  # 2.66: updated at or before this instant
    ip: re.Pattern[str] | None = None  # Nova's `ip` / `ip6`: a regex over the server's fixed addresses
    ip6: re.Pattern[str] | None = None
    addresses: Callable[[Server], list[dict[str, Any]]] | None = None  # the server's addresses, for ip filters

    def matches(self, server: Server) -> bool:
        if self.deleted:
            return False  # deleted servers are purged here, so only an empty list is honest
        if self.name is not None and not self.name.search(server.name):
            return False
        if self.statuses is not None and server.status not in self.statuses:
            return False
        if self.flavor is not None and server.flavor.id != self.flavor:
            return False
        if self.image is not None and server.image_id != self.image:
            return False
        if self.project_id is not None and server.project_id != self.project_id:
            return False
        if self.reservation_id is not None and server.reservation_id != self.reservation_id:
            return False
        if self.changes_since is not None or self.changes_before is not None:
            updated = parse_time(server.updated)
            if self.changes_since is not None and updated < self.changes_since:
                return False
            if self.changes_before is not None and updated > self.changes_before:
                return False
        if (self.ip is not None or self.ip6 is not None) and not self._address_matches(server):
            return False
        return self.ids is None or server.id in self.ids

    def _address_matches(self, server: Server) -> bool:
        assert self.addresses is not None
        found = self.addresses(server)
        for pattern, version in ((self.ip, 4), (self.ip6, 6)):
            if pattern is not None and not any(a["version"] == version and pattern.search(a["addr"])
                                               for a in found):
                return False
        return True


def _truthy(value: Any) -> bool:
    """Nova's boolean parameter type: JSON booleans and their usual string spellings."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "t", "true", "on", "y", "yes")
    return bool(value)


def _last_segment(ref: str) -> str:
    """Nova accepts an id or a URL ending in one for imageRef/flavorRef."""
    return ref.rstrip("/").rsplit("/", 1)[-1]


def parse_time(value: str) -> datetime:
    """An ISO 8601 instant (as Nova's list filters take it); naive ones are UTC. ValueError when malformed."""
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def normalize_ip(value: str) -> str:
    """An address as Nova stores it: IPv6 in its compressed form ('::babe:dc0c:1602'), IPv4 unchanged."""
    return str(ipaddress.ip_address(value)) if value else value


def _check_lock(server: Server, caller: Caller | None) -> None:
    """Nova refuses a locked server's lifecycle actions (409) to everyone but admins."""
    if server.locked and caller is not None and not caller.is_admin:
        raise Conflict(f"Instance {server.id} is locked")


def _invalid_state(action: str, server: Server, attr: str) -> Conflict:
    state = server.vm_state if attr == "vm_state" else server.task_state
    return Conflict(f"Cannot '{action}' instance {server.id} while it is in {attr} {state}")


class ComputeBackend(Backend):
    name = "compute"

    def reset(self) -> None:
        self.flavors: dict[str, Flavor] = {
            spec.id: Flavor(spec.id, spec.name, spec.ram, spec.vcpus, spec.disk, spec.ephemeral, spec.swap,
                            spec.is_public)
            for spec in self.cloud.config.flavors
        }
        self.servers: dict[str, Server] = {}
        self.keypairs: dict[tuple[str, str], Keypair] = {}
        self.quota_overrides: dict[str, dict[str, int]] = {}
        self._seq = 0
        self._ids: dict[int, str] = {}  # seq -> server id
        self._all: list[int] = []  # every live server's seq, ascending
        self._by_project: dict[str, list[int]] = {}
        self._usage: dict[str, list[int]] = {}  # project -> [instances, cores, ram]
        self.server_groups: dict[str, ServerGroup] = {}
        self.actions: dict[str, list[InstanceAction]] = {}  # server id -> its actions, oldest first
        self._purged: dict[str, str] = {}  # purged server id -> project, for their action history (2.21)

    # flavors --------------------------------------------------------------------------------
    def get_flavor(self, flavor_id: str) -> Flavor:
        flavor = self.flavors.get(flavor_id)
        if flavor is None:
            raise NotFound(f"Flavor {flavor_id} could not be found.")
        return flavor

    def list_flavors(self, is_admin: bool, is_public: str | None, min_ram: int, min_disk: int) -> list[Flavor]:
        """Nova's rules: non-admins see public flavors; admins choose with is_public (the string None = all).
        In id order, which is the order the routes page them in."""
        flavors = sorted(self.flavors.values(), key=lambda f: f.id)
        visibility: bool | None = True
        if is_admin and is_public is not None:
            lowered = is_public.strip().lower()
            visibility = None if lowered == "none" else lowered in ("1", "true", "t", "yes", "y", "on")
        return [f for f in flavors
                if (visibility is None or f.is_public == visibility) and f.ram >= min_ram and f.disk >= min_disk]

    def create_flavor(self, is_admin: bool, spec: dict[str, Any]) -> Flavor:
        if not is_admin:
            raise Forbidden("Policy doesn't allow os_compute_api:os-flavor-manage:create to be performed.")
        flavor_id = spec.get("id") or str(uuid.uuid4())
        if flavor_id in self.flavors:
            raise Conflict(f"Flavor with ID {flavor_id} already exists.")
        if any(f.name == spec["name"] for f in self.flavors.values()):
            raise Conflict(f"Flavor with name {spec['name']} already exists.")
        flavor = Flavor(str(flavor_id), spec["name"], spec["ram"], spec["vcpus"], spec["disk"],
                        spec.get("ephemeral", 0), spec.get("swap", 0), spec.get("is_public", True),
                        spec.get("description"), spec.get("rxtx_factor", 1.0))
        self.flavors[flavor.id] = flavor
        return flavor

    def delete_flavor(self, is_admin: bool, flavor_id: str) -> None:
        if not is_admin:
            raise Forbidden("Policy doesn't allow os_compute_api:os-flavor-manage:delete to be performed.")
        self.get_flavor(flavor_id)
        del self.flavors[flavor_id]

    # quotas ---------------------------------------------------------------------------------
    def quota_limits(self, project_id: str) -> dict[str, int]:
        quotas = self.cloud.config.quotas
        limits = {"instances": quotas.instances, "cores": quotas.cores, "ram": quotas.ram,
                  "security_groups": quotas.security_groups, "security_group_rules": quotas.security_group_rules}
        limits.update(self.quota_overrides.get(project_id, {}))
        return limits

    def usage(self, project_id: str) -> dict[str, int]:
        instances, cores, ram = self._usage.get(project_id, (0, 0, 0))
        return {"instances": instances, "cores": cores, "ram": ram}

    def update_quotas(self, is_admin: bool, project_id: str, values: dict[str, int]) -> None:
        if not is_admin:
            raise Forbidden("Policy doesn't allow os_compute_api:os-quota-sets:update to be performed.")
        self.quota_overrides.setdefault(project_id, {}).update(values)

    def _check_quota(self, project_id: str, wanted: dict[str, int]) -> None:
        """Nova's TooManyInstances check (403): every resource whose use would pass its limit."""
        limits, used = self.quota_limits(project_id), self.usage(project_id)
        overs = [r for r in ("instances", "cores", "ram")
                 if wanted.get(r, 0) > 0 and limits[r] >= 0 and used[r] + wanted[r] > limits[r]]
        if overs:
            raise QuotaExceeded(
                f"Quota exceeded for {', '.join(overs)}: Requested "
                f"{', '.join(str(wanted[r]) for r in overs)}, but already used "
                f"{', '.join(str(used[r]) for r in overs)} of {', '.join(str(limits[r]) for r in overs)} "
                f"{', '.join(overs)}",
                status=403,
            )

    @staticmethod
    def _charge_of(server: Server) -> tuple[int, int]:
        """Cores and RAM a server holds: both flavors' maximum while a resize is unresolved."""
        other = server.new_flavor or server.old_flavor
        if other is None:
            return server.flavor.vcpus, server.flavor.ram
        return max(server.flavor.vcpus, other.vcpus), max(server.flavor.ram, other.ram)

    def _charge(self, server: Server, sign: int) -> None:
        usage = self._usage.setdefault(server.project_id, [0, 0, 0])
        cores, ram = self._charge_of(server)
        usage[0] += sign
        usage[1] += sign * cores
        usage[2] += sign * ram

    def _recharged(self, server: Server, change: Callable[[], None]) -> None:
        self._charge(server, -1)
        change()
        self._charge(server, +1)

    # index ----------------------------------------------------------------------------------
    def _insert(self, server: Server) -> None:
        self.servers[server.id] = server
        self._ids[server.seq] = server.id
        insort(self._all, server.seq)
        insort(self._by_project.setdefault(server.project_id, []), server.seq)
        self._charge(server, +1)

    def _remove(self, server: Server) -> None:
        self.servers.pop(server.id, None)
        self._ids.pop(server.seq, None)
        for seqs in (self._all, self._by_project.get(server.project_id, [])):
            index = bisect_left(seqs, server.seq)
            if index < len(seqs) and seqs[index] == server.seq:
                del seqs[index]
        self._charge(server, -1)

    # servers: reads -------------------------------------------------------------------------
    def get_server(self, server_id: str, project_id: str, is_admin: bool = False) -> Server:
        """Admins reach any server by id (as in Nova); others only their project's."""
        server = self.servers.get(server_id)
        if server is None or (server.project_id != project_id and not is_admin):
            raise NotFound(f"Instance {server_id} could not be found.")
        return server

    def list_servers(self, project_id: str, all_projects: bool, query: ServerQuery, limit: int,
                     marker: str | None) -> list[Server]:
        """Newest first (created_at desc, then Nova's integer id desc); walks only as far as the page needs."""
        seqs = self._all if all_projects else self._by_project.get(project_id, [])
        start = len(seqs)
        if marker is not None:
            anchor = self.servers.get(marker)
            if anchor is None or (not all_projects and anchor.project_id != project_id):
                raise BadRequest(f"marker [{marker}] not found")
            start = bisect_left(seqs, anchor.seq)
        page: list[Server] = []
        servers, ids = self.servers, self._ids
        for index in range(start - 1, -1, -1):
            if len(page) >= limit:
                break
            server = servers[ids[seqs[index]]]
            if query.matches(server):
                page.append(server)
        return page

    # servers: create ------------------------------------------------------------------------
    def create_server(self, project_id: str, user_id: str, req: ServerCreate,
                      request_id: str | None = None) -> tuple[Server, str]:
        """Boot one server (or the first of a multiple create); returns it with its admin password."""
        servers = self.create_servers(project_id, user_id, req, request_id)
        return servers[0], servers[0].admin_pass

    def create_servers(self, project_id: str, user_id: str, req: ServerCreate,
                       request_id: str | None = None) -> list[Server]:
        """Validate everything first, then make ports, then the servers: as many as quota allows between
        min_count and max_count (Nova's multiple create), sharing one reservation id and admin password.
        `request_id` is the create request's, for each server's instance action."""
        caller = Caller(request_id or new_request_id(), user_id)
        if req.min_count > req.max_count:
            raise BadRequest("min_count must be <= max_count")
        flavor = self.flavors.get(_last_segment(req.flavor_ref))
        if flavor is None:
            raise BadRequest("Invalid flavorRef provided.")
        image_id = self._check_image(req, flavor)
        self._check_block_devices(project_id, req.block_device_mapping, req.max_count)
        if req.key_name is not None and (caller.user_id, req.key_name) not in self.keypairs:
            raise BadRequest("Invalid key_name provided.")
        check_metadata_quota(req.metadata)
        zone = req.availability_zone
        if zone and zone.split(":", 1)[0] != AVAILABILITY_ZONE:
            raise BadRequest("The requested availability zone is not available")
        if req.user_data is not None:
            try:
                base64.b64decode(req.user_data, validate=True)
            except (binascii.Error, ValueError):
                raise BadRequest("User data needs to be valid base 64.") from None
        groups = self._resolve_security_groups(project_id, req.security_groups)
        networks = self._resolve_networks(project_id, req.networks)
        count = self._instances_allowed(project_id, flavor, req.min_count, req.max_count)
        if count > 1 and any(item.port for item in networks):
            raise BadRequest("Unable to launch multiple instances with a single configured port ID. Please "
                             "launch your instance one by one with different ports.")
        if count > 1 and any(item.fixed_ip for item in networks):
            raise BadRequest("max_count cannot be greater than 1 if an fixed_ip is specified.")
        group = self._group_for_boot(project_id, req.group, count)

        admin_pass = req.admin_pass if req.admin_pass is not None else generate_password()
        reservation = reservation_id()
        servers = []
        for index in range(count):
            now = self.now()
            self._seq += 1
            server = Server(
                id=str(uuid.uuid4()), seq=self._seq, name=f"{req.name}-{index + 1}" if count > 1 else req.name,
                project_id=project_id, user_id=caller.user_id,
                flavor=replace(flavor, extra_specs=dict(flavor.extra_specs)), image_id=image_id, created=now,
                updated=now, host_id=hashlib.sha224((project_id + HOST).encode()).hexdigest(),
                metadata=dict(req.metadata), security_groups=[dict(g) for g in groups], key_name=req.key_name,
                user_data=req.user_data, access_ipv4=req.access_ipv4, access_ipv6=req.access_ipv6,
                description=req.description, tags=list(req.tags), config_drive="True" if req.config_drive else "",
                block_device_mapping=list(req.block_device_mapping), admin_pass=admin_pass,
                disk_config=req.disk_config, reservation_id=reservation, launch_index=index,
            )
            self._plug_ports(server, networks)
            self._insert(server)
            self._reserve_boot_volumes(server)
            self.record_action(server, "create", caller)
            crowded = group is not None and self._group_is_full(group)
            if group is not None:
                group.members.append(server.id)
            self._schedule_boot(server, crowded)
            servers.append(server)
        return servers

    def _schedule_boot(self, server: Server, crowded: bool) -> None:
        """Start the boot timer; a configured fault (or a full anti-affinity group) ends it in ERROR."""
        fault = self.resource_fault("server.create", server.project_id)
        if fault is not None and fault.action == "stuck":
            server.task_state = "spawning"
            return
        message = fault.message if fault is not None else None
        self.after("server_boot", self._finish_boot, server.id, server.generation,
                   fault is not None or crowded, message)

    def _instances_allowed(self, project_id: str, flavor: Flavor, min_count: int, max_count: int) -> int:
        """How many of max_count fit the quota; fewer than min_count is Nova's TooManyInstances (403)."""
        limits, used = self.quota_limits(project_id), self.usage(project_id)
        room = max_count
        for resource, each in (("instances", 1), ("cores", flavor.vcpus), ("ram", flavor.ram)):
            if limits[resource] >= 0 and each > 0:
                room = min(room, (limits[resource] - used[resource]) // each)
        if room < min_count:
            self._check_quota(project_id, {"instances": min_count, "cores": flavor.vcpus * min_count,
                                           "ram": flavor.ram * min_count})
        return max(room, min_count)

    @staticmethod
    def _volume_mappings(mappings: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The mappings of existing volumes (source and destination `volume`), the boot volume first."""
        found = [m for m in mappings if m.get("source_type") == "volume" and m.get("uuid")
                 and m.get("destination_type", "volume") == "volume"]
        return sorted(found, key=lambda m: str(m.get("boot_index")) != "0")

    def _check_block_devices(self, project_id: str, mappings: list[dict[str, Any]], max_count: int = 1) -> None:
        """Volumes a boot maps must exist in Cinder; the boot volume (boot_index 0) must be bootable. Each is
        reserved by the request (Nova's _validate_bdm -> attachment_create), so it must be available now."""
        seen: set[str] = set()
        volumes = self._volume_mappings(mappings)
        if volumes and max_count > 1:
            raise BadRequest("Cannot attach one or more volumes to multiple instances")
        for mapping in volumes:
            volume_id = str(mapping["uuid"])
            try:
                volume = self.cloud.volume.get_volume(volume_id, project_id)
            except NotFound:
                raise BadRequest(f"Block Device Mapping is Invalid: failed to get volume {volume_id}.") from None
            if str(mapping.get("boot_index")) == "0" and not volume.bootable:
                raise BadRequest(f"Block Device {volume_id} is not bootable.")
            if volume.status != "available" or volume_id in seen:
                # Cinder's 400 as Nova re-raises it: InvalidInput wrapped in InvalidVolume, cinderclient's text.
                raise BadRequest(f"Invalid volume: Invalid input received: Invalid volume: Volume {volume_id} "
                                 f"status must be available or downloading (HTTP 400) "
                                 f"(Request-ID: {new_request_id()})")
            seen.add(volume_id)

    def _reserve_boot_volumes(self, server: Server) -> None:
        """Reserve each mapped volume for the server (checked by `_check_block_devices`): the boot volume at
        its root device (/dev/vda), the others at the next free names, as os-volume_attachments names them."""
        for mapping in self._volume_mappings(server.block_device_mapping):
            volume_id = str(mapping["uuid"])
            root = str(mapping.get("boot_index")) == "0"
            device = (mapping.get("device_name") or "/dev/vda") if root else None
            self.cloud.volume.reserve_boot_attachment(volume_id, server.id, server.project_id, device)
            server.volume_options[volume_id] = {
                "tag": mapping.get("tag"), "delete_on_termination": _truthy(mapping.get("delete_on_termination")),
                "bdm_uuid": str(uuid.uuid4())}

    def _check_image(self, req: ServerCreate, flavor: Flavor) -> str:
        if not req.image_ref:
            if req.block_device_mapping:
                return ""
            raise BadRequest("Can not find requested image")
        try:
            image = self.cloud.image.get_image(_last_segment(req.image_ref))
        except NotFound:
            raise BadRequest("Can not find requested image") from None
        min_disk = getattr(image, "min_disk", 0) or 0
        if flavor.disk and min_disk > flavor.disk:
            raise BadRequest(f"Flavor's disk is too small for requested image. Flavor disk is "
                             f"{flavor.disk * 1024 ** 3} bytes, image is {min_disk * 1024 ** 3} bytes.")
        if (getattr(image, "min_ram", 0) or 0) > flavor.ram:
            raise BadRequest("Flavor's memory is too small for requested image.")
        return image.id

    def _resolve_security_groups(self, project_id: str, names: list[str]) -> list[dict[str, str]]:
        network = self.cloud.network
        if not names:
            group = network.default_security_group(project_id)
            return [{"id": group.id, "name": group.name}]
        resolved: list[dict[str, str]] = []
        for name in names:
            try:
                group = network.find_security_group(project_id, name)
            except NotFound:
                raise BadRequest(f"Security group {name} not found.") from None
            if all(g["id"] != group.id for g in resolved):
                resolved.append({"id": group.id, "name": group.name})
        return resolved

    def _resolve_networks(self, project_id: str, networks: str | list[NetworkRequest] | None) -> list[NetworkRequest]:
        """Turn the request into concrete network ids / ports, checking each exists and is usable."""
        network = self.cloud.network
        if networks == "none":
            return []
        if networks is None or networks == "auto":
            return [NetworkRequest(uuid=network.default_network(project_id).id)]
        resolved = []
        for item in networks:
            if item.port:
                try:
                    port = network.get_port(item.port, project_id)
                except NotFound:
                    raise BadRequest(f"Port id {item.port} could not be found.") from None
                if port.device_id:
                    raise Conflict(f"Port {item.port} is still in use.")
                resolved.append(item)
                continue
            if item.uuid:
                try:
                    network.get_network(item.uuid, project_id)
                except NotFound:
                    raise BadRequest(f"Network {item.uuid} could not be found.") from None
                resolved.append(item)
            else:  # a bare fixed_ip: Nova needs a network; use the project's own
                resolved.append(replace(item, uuid=network.default_network(project_id).id))
        return resolved

    def _plug_ports(self, server: Server, networks: list[NetworkRequest]) -> None:
        """Create or bind one port per request; on any failure undo the ports already made."""
        network = self.cloud.network
        group_ids = [g["id"] for g in server.security_groups]
        try:
            for item in networks:
                if item.port:
                    network.bind_port(item.port, server.id)
                else:
                    network.create_port(server.project_id, item.uuid, server.id, "compute:nova", group_ids,
                                        item.fixed_ip)
        except CloudError:
            network.delete_ports_of_device(server.id)
            raise

    def _live(self, server_id: str, generation: int) -> Server | None:
        server = self.servers.get(server_id)
        return server if server is not None and server.generation == generation else None

    def _fail(self, server: Server, message: str) -> None:
        self._close_action(server.id, "Error")
        server.vm_state, server.task_state = "error", None
        server.fault = {"code": 500, "message": message, "created": self.now()}
        server.updated = self.now()
        self.cloud.guests.server_changed(server.id)

    def _finish_boot(self, server_id: str, generation: int, failed: bool, message: str | None) -> None:
        server = self._live(server_id, generation)
        if server is None:
            return
        if failed:
            self._fail_boot(server, message or "No valid host was found. There are not enough hosts available.")
            return
        volume = self.cloud.volume
        if any(a.status == "reserved" for a in volume.attachments_of_server(server.id)):
            # Nova's build attaches the mapped volumes (task block_device_mapping) before spawning the guest.
            server.task_state = "block_device_mapping"
            server.updated = self.now()
            volume.start_boot_attach(server.id)
            server = self._live(server_id, generation)  # a zero delay may have finished it already
            if server is None or server.vm_state != "building":
                return
            if any(a.status == "error_attaching" for a in volume.attachments_of_server(server.id)):
                self._fail_boot(server, "Build of instance aborted: Failure prepping block device.")
                return
            self.volume_attached(server.id)  # ACTIVE once every volume is attached (now, or as each ends)
            return
        self._finish_spawn(server)

    def volume_attached(self, server_id: str) -> None:
        """Cinder finished an attach: a build waiting on its volumes becomes ACTIVE once all are attached."""
        server = self.servers.get(server_id)
        if server is None or server.vm_state != "building" or server.task_state != "block_device_mapping":
            return
        if all(a.status == "attached" for a in self.cloud.volume.attachments_of_server(server_id)):
            self._finish_spawn(server)

    def _fail_boot(self, server: Server, message: str) -> None:
        """A failed build ends in ERROR and gives back the volumes it had reserved or attached."""
        self.cloud.volume.server_deleted(server.id)
        self._fail(server, message)
        server.power_state = NOSTATE

    def _finish_spawn(self, server: Server) -> None:
        server.vm_state, server.task_state, server.power_state = "active", None, RUNNING
        server.launched_at = server.updated = self.now()
        self._close_action(server.id, "Success")
        self.cloud.guests.server_changed(server.id)

    def console(self, server: Server) -> list[str]:
        """The server's console: its boot (image, flavor, addresses), then what was printed since (power
        events, its guest). The boot part is derived when asked, so 10,000 quiet servers store nothing."""
        lines = [f"fakecloud: booting {server.name} ({server.id})",
                 f"fakecloud: image {server.image_id or '(boot volume)'}, flavor {server.flavor.name} "
                 f"({server.flavor.vcpus} vcpu, {server.flavor.ram} MiB, {server.flavor.disk} GiB)"]
        for network, entries in self.cloud.network.server_addresses(server.id).items():
            lines += [f"fakecloud: {network}: {e['addr']} ({e['OS-EXT-IPS-MAC:mac_addr']})" for e in entries]
        lines.append(f"fakecloud: {server.name} booted (flavor {server.flavor.name})")
        return lines + self.cloud.guests.console(server.id)

    # servers: update and delete -------------------------------------------------------------
    def update_server(self, server: Server, changes: dict[str, Any]) -> Server:
        for key in ("name", "access_ipv4", "access_ipv6", "description", "disk_config"):
            if key in changes:
                setattr(server, key, changes[key])
        if "metadata" in changes:
            server.metadata = dict(changes["metadata"])
        server.updated = self.now()
        return server

    def set_metadata(self, server: Server, metadata: dict[str, str], replace_all: bool) -> dict[str, str]:
        merged = dict(metadata) if replace_all else {**server.metadata, **metadata}
        check_metadata_quota(merged)
        server.metadata = merged
        server.updated = self.now()
        return server.metadata

    def metadata_item(self, server: Server, key: str) -> str:
        if key not in server.metadata:
            raise NotFound("Metadata item was not found")
        return server.metadata[key]

    def delete_metadata_item(self, server: Server, key: str) -> None:
        if key not in server.metadata:
            raise NotFound("Metadata item was not found")
        del server.metadata[key]

    def delete_server(self, server: Server, caller: Caller | None = None) -> None:
        """Status stays, task_state `deleting`; the server is gone after the `server_delete` delay."""
        if server.task_state == "deleting":
            return
        _check_lock(server, caller)
        self.record_action(server, "delete", caller)
        server.generation += 1
        server.task_state = "deleting"
        server.updated = self.now()
        self.cloud.guests.server_changed(server.id)
        fault = self.resource_fault("server.delete", server.project_id)
        if fault is not None and fault.action == "stuck":
            return
        message = fault.message if fault is not None else None
        self.after("server_delete", self._finish_delete, server.id, server.generation, fault is not None, message)

    def _finish_delete(self, server_id: str, generation: int, failed: bool, message: str | None) -> None:
        server = self._live(server_id, generation)
        if server is None:
            return
        if failed:
            self._fail(server, message or "Failed to delete the instance.")
            return
        self._purge(server)

    def _purge(self, server: Server) -> None:
        self._close_action(server.id, "Success")
        if server.id in self.actions:
            self._purged[server.id] = server.project_id
            while len(self._purged) > MAX_DELETED_HISTORIES:
                oldest = next(iter(self._purged))
                del self._purged[oldest]
                self.actions.pop(oldest, None)
        self._remove(server)
        for group in self.server_groups.values():
            if server.id in group.members:
                group.members.remove(server.id)
        self.cloud.network.delete_ports_of_device(server.id)
        volume = self.cloud.volume
        volume.server_deleted(server.id)
        for volume_id, options in server.volume_options.items():  # Nova deletes these once detached
            found = volume.volumes.get(volume_id)
            if options.get("delete_on_termination") and found is not None and found.status == "available":
                with contextlib.suppress(CloudError):
                    volume.delete_volume(volume_id, None)
        self.cloud.guests.server_changed(server.id)

    # servers: actions -----------------------------------------------------------------------
    @staticmethod
    def _require(server: Server, action: str, vm_states: tuple[str, ...],
                 task_states: tuple[str | None, ...] = (None,)) -> None:
        if server.vm_state not in vm_states:
            raise _invalid_state(action, server, "vm_state")
        if server.task_state not in task_states:
            raise _invalid_state(action, server, "task_state")

    def _start_step(self, server: Server, task_state: str | None, rebuilt: bool = False) -> None:
        server.generation += 1
        server.task_state = task_state
        server.updated = self.now()
        self.cloud.guests.server_changed(server.id, rebuilt=rebuilt)

    def resize(self, server: Server, flavor_ref: str, caller: Caller | None = None,
               disk_config: str | None = None) -> None:
        _check_lock(server, caller)
        self._require(server, "resize", ("active", "stopped"))
        target = self.flavors.get(_last_segment(str(flavor_ref)))
        if target is None:
            raise BadRequest("Unable to locate requested flavor.")
        if target.id == server.flavor.id:
            raise BadRequest("When resizing, instances must change flavor!")
        self._check_quota(server.project_id, {"cores": target.vcpus - server.flavor.vcpus,
                                              "ram": target.ram - server.flavor.ram})
        self._recharged(server, lambda: setattr(server, "new_flavor", replace(target)))
        self.record_action(server, "resize", caller)
        if disk_config is not None:
            server.disk_config = disk_config
        server.resume_state = server.vm_state
        self._start_step(server, "resize_prep")
        fault = self.resource_fault("server.resize", server.project_id)
        if fault is not None and fault.action == "stuck":
            server.task_state = "resize_migrating"
            return
        message = fault.message if fault is not None else None
        self.after("server_resize", self._finish_resize, server.id, server.generation, fault is not None, message)

    def _finish_resize(self, server_id: str, generation: int, failed: bool, message: str | None) -> None:
        server = self._live(server_id, generation)
        if server is None:
            return
        if failed:
            self._recharged(server, lambda: setattr(server, "new_flavor", None))
            self._fail(server, message or "Resize failed: no valid host was found.")
            return
        target = server.new_flavor
        assert target is not None

        def apply() -> None:
            server.old_flavor, server.flavor, server.new_flavor = server.flavor, target, None

        self._recharged(server, apply)
        server.vm_state, server.task_state = "resized", None
        server.power_state = RUNNING if server.resume_state == "active" else SHUTDOWN
        server.updated = self.now()
        self._close_action(server.id, "Success")
        self.cloud.guests.server_changed(server.id)

    def confirm_resize(self, server: Server, caller: Caller | None = None) -> None:
        _check_lock(server, caller)
        self._require(server, "confirmResize", ("resized",))
        self.record_action(server, "confirmResize", caller)
        server.generation += 1
        self.after("server_confirm_resize", self._finish_confirm, server.id, server.generation)

    def _finish_confirm(self, server_id: str, generation: int) -> None:
        server = self._live(server_id, generation)
        if server is None:
            return
        self._recharged(server, lambda: setattr(server, "old_flavor", None))
        self._settle(server, server.resume_state)

    def revert_resize(self, server: Server, caller: Caller | None = None) -> None:
        _check_lock(server, caller)
        self._require(server, "revertResize", ("resized",))
        self.record_action(server, "revertResize", caller)
        self._start_step(server, "resize_reverting")
        self.after("server_revert_resize", self._finish_revert, server.id, server.generation)

    def _finish_revert(self, server_id: str, generation: int) -> None:
        server = self._live(server_id, generation)
        if server is None:
            return
        old = server.old_flavor
        assert old is not None

        def apply() -> None:
            server.flavor, server.old_flavor = old, None

        self._recharged(server, apply)
        self._settle(server, server.resume_state)

    def _settle(self, server: Server, vm_state: str) -> None:
        server.vm_state, server.task_state = vm_state, None
        server.power_state = RUNNING if vm_state == "active" else SHUTDOWN
        server.updated = self.now()
        self._close_action(server.id, "Success")
        self.cloud.guests.server_changed(server.id)

    def reboot(self, server: Server, kind: str, caller: Caller | None = None) -> None:
        _check_lock(server, caller)
        if kind not in ("SOFT", "HARD"):
            raise BadRequest(f"Invalid input for field/attribute type. Value: {kind}. "
                             f"'{kind}' is not one of ['HARD', 'Hard', 'hard', 'SOFT', 'Soft', 'soft']")
        if kind == "SOFT":
            self._require(server, "reboot", ("active",))
        else:
            self._require(server, "reboot", ("active", "stopped", "error"), (None, "rebooting", "rebooting_hard"))
        self.record_action(server, "reboot", caller)
        self._start_step(server, "rebooting" if kind == "SOFT" else "rebooting_hard")
        self.after("server_reboot", self._finish_power, server.id, server.generation, "active")

    def stop(self, server: Server, caller: Caller | None = None) -> None:
        _check_lock(server, caller)
        self._require(server, "stop", ("active", "error"))
        self.record_action(server, "stop", caller)
        self._start_step(server, "powering-off")
        self.after("server_reboot", self._finish_power, server.id, server.generation, "stopped")

    def start(self, server: Server, caller: Caller | None = None) -> None:
        _check_lock(server, caller)
        self._require(server, "start", ("stopped",))
        self.record_action(server, "start", caller)
        self._start_step(server, "powering-on")
        self.after("server_reboot", self._finish_power, server.id, server.generation, "active")

    def rebuild(self, server: Server, rebuild: ServerRebuild, caller: Caller | None = None) -> str:
        """Nova's rebuild: a new root disk from the (maybe new) image, the same ports and volumes; the server
        keeps its power state. Returns the admin password (given, or made up as at boot)."""
        _check_lock(server, caller)
        self._require(server, "rebuild", ("active", "stopped", "error"))
        try:
            self.cloud.image.get_image(_last_segment(rebuild.image_ref))
        except NotFound:
            raise BadRequest("Cannot find image for rebuild") from None
        flavor = server.flavor
        image_id = self._check_image(ServerCreate(name=server.name, flavor_ref=flavor.id,
                                                  image_ref=rebuild.image_ref, networks=None), flavor)
        check_metadata_quota(rebuild.metadata if rebuild.metadata is not None else server.metadata)
        if rebuild.key_name and (server.user_id, rebuild.key_name) not in self.keypairs:
            raise BadRequest("Invalid key_name provided.")
        self.record_action(server, "rebuild", caller)
        server.image_id = image_id
        server.admin_pass = rebuild.admin_pass if rebuild.admin_pass is not None else generate_password()
        for key in ("name", "access_ipv4", "access_ipv6", "description"):
            value = getattr(rebuild, key)
            if value is not None:
                setattr(server, key, value)
        if rebuild.metadata is not None:
            server.metadata = dict(rebuild.metadata)
        if rebuild.disk_config is not None:
            server.disk_config = rebuild.disk_config
        if rebuild.key_name is not None:
            server.key_name = rebuild.key_name or None
        if rebuild.user_data is not None:
            server.user_data = rebuild.user_data or None
        target = "active" if server.vm_state in ("active", "error") else "stopped"
        self._start_step(server, "rebuilding", rebuilt=True)
        self.after("server_rebuild", self._finish_rebuild, server.id, server.generation, target)
        return server.admin_pass

    def _finish_rebuild(self, server_id: str, generation: int, vm_state: str) -> None:
        server = self._live(server_id, generation)
        if server is not None:
            server.fault = None
            server.launched_at = self.now()
            self._settle(server, vm_state)

    def _finish_power(self, server_id: str, generation: int, vm_state: str) -> None:
        server = self._live(server_id, generation)
        if server is not None:
            if vm_state == "active":
                server.fault = None
            power = "on" if vm_state == "active" else "off"
            self.cloud.guests.say(server.id, f"fakecloud: {server.name} powered {power}")
            self._settle(server, vm_state)

    def add_security_group(self, server: Server, name: str) -> None:
        group = self._find_group(server, name)
        if any(g["id"] == group.id for g in server.security_groups):
            raise BadRequest(f"Security group {group.name} is already associated with the instance {server.id}")
        server.security_groups.append({"id": group.id, "name": group.name})
        self._sync_port_groups(server)

    def remove_security_group(self, server: Server, name: str) -> None:
        group = self._find_group(server, name)
        if all(g["id"] != group.id for g in server.security_groups):
            raise BadRequest(f"Security group {name} not associated with the instance {server.id}")
        server.security_groups = [g for g in server.security_groups if g["id"] != group.id]
        self._sync_port_groups(server)

    def _find_group(self, server: Server, name: str) -> Any:
        try:
            return self.cloud.network.find_security_group(server.project_id, name)
        except NotFound:
            raise NotFound(f"Security group {name} not found.") from None

    def _sync_port_groups(self, server: Server) -> None:
        network = self.cloud.network
        ids = [g["id"] for g in server.security_groups]
        for port in network.ports_of_device(server.id):
            network.set_port_security_groups(port.id, ids)
        server.updated = self.now()

    def lock(self, server: Server, caller: Caller, reason: str | None = None) -> None:
        """Nova's lock: lifecycle actions then need an admin. An admin's lock only an admin lifts."""
        server.locked, server.locked_reason = True, reason
        server.locked_by = "admin" if caller.is_admin and caller.user_id != server.user_id else "owner"
        self.record_action(server, "lock", caller, done=True)

    def unlock(self, server: Server, caller: Caller) -> None:
        if server.locked and server.locked_by == "admin" and not caller.is_admin:
            raise Forbidden("Policy doesn't allow os_compute_api:os-lock-server:unlock:unlock_override to be "
                            "performed.")
        server.locked, server.locked_by, server.locked_reason = False, None, None
        self.record_action(server, "unlock", caller, done=True)

    def force_delete(self, server: Server, caller: Caller) -> None:
        """forceDelete: Nova deletes the server whatever its state (it is meant for soft-deleted ones)."""
        self.delete_server(server, caller)

    def restore(self, server: Server, caller: Caller) -> None:
        """restore undoes a soft delete; fakecloud deletes at once (reclaim_instance_interval 0), so no live
        server is ever SOFT_DELETED and Nova's state check always refuses."""
        _check_lock(server, caller)
        self._require(server, "restore", ("soft-delete",))

    def clear_password(self, server: Server) -> None:
        server.password = ""

    # tags -------------------------------------------------------------------------------------
    def _check_taggable(self, server: Server, action: str) -> None:
        if server.vm_state not in _TAGGABLE:
            raise _invalid_state(action, server, "vm_state")

    @staticmethod
    def _check_tag_room(tags: list[str]) -> None:
        if len(tags) > MAX_TAGS:
            raise BadRequest(f"The number of tags exceeded the per-server limit {MAX_TAGS}")

    def add_tag(self, server: Server, tag: str) -> bool:
        """Add one tag; True when it is new (Nova answers 201 then, 204 for a tag already there)."""
        self._check_taggable(server, "update tag")
        if tag in server.tags:
            return False
        self._check_tag_room([*server.tags, tag])
        server.tags.append(tag)
        server.updated = self.now()
        return True

    def replace_tags(self, server: Server, tags: list[str]) -> list[str]:
        self._check_taggable(server, "update tags")
        unique = list(dict.fromkeys(tags))
        self._check_tag_room(unique)
        server.tags = unique
        server.updated = self.now()
        return server.tags

    def delete_tag(self, server: Server, tag: str) -> None:
        self._check_taggable(server, "delete tag")
        if tag not in server.tags:
            raise NotFound(f"Tag {tag} could not be found.")
        server.tags.remove(tag)
        server.updated = self.now()

    def delete_tags(self, server: Server) -> None:
        self._check_taggable(server, "delete tags")
        server.tags = []
        server.updated = self.now()

    # server groups ----------------------------------------------------------------------------
    def create_server_group(self, project_id: str, user_id: str, name: str, policy: str,
                            rules: dict[str, Any]) -> ServerGroup:
        mine = [g for g in self.server_groups.values() if g.project_id == project_id]
        if len(mine) >= SERVER_GROUPS_QUOTA:
            raise QuotaExceeded("Quota exceeded, too many server groups.", status=403)
        group = ServerGroup(str(uuid.uuid4()), name, policy, project_id, user_id, dict(rules))
        self.server_groups[group.id] = group
        return group

    def list_server_groups(self, project_id: str, all_projects: bool) -> list[ServerGroup]:
        return [g for g in self.server_groups.values() if all_projects or g.project_id == project_id]

    def get_server_group(self, group_id: str, project_id: str, is_admin: bool) -> ServerGroup:
        group = self.server_groups.get(group_id)
        if group is None or (group.project_id != project_id and not is_admin):
            raise NotFound(f"Instance group {group_id} could not be found.")
        return group

    def delete_server_group(self, group_id: str, project_id: str, is_admin: bool) -> None:
        self.get_server_group(group_id, project_id, is_admin)
        del self.server_groups[group_id]

    def server_groups_of(self, server: Server) -> list[str]:
        return [g.id for g in self.server_groups.values() if server.id in g.members]

    def _group_for_boot(self, project_id: str, group_id: str | None, count: int) -> ServerGroup | None:
        """The scheduler hint's group, with room for `count` more members (Nova's server_group_members)."""
        if group_id is None:
            return None
        group = self.server_groups.get(group_id)
        if group is None or group.project_id != project_id:
            raise BadRequest(f"Invalid input received: Instance group {group_id} could not be found.")
        if len(group.members) + count > SERVER_GROUP_MEMBERS_QUOTA:
            raise QuotaExceeded("Quota exceeded, too many servers in group", status=403)
        return group

    @staticmethod
    def _group_is_full(group: ServerGroup) -> bool:
        """fakecloud has one host: an anti-affinity group holds at most max_server_per_host members (1)."""
        if group.policy != "anti-affinity":
            return False
        return len(group.members) >= int(group.rules.get("max_server_per_host", 1))

    # volume attachments ---------------------------------------------------------------------
    def attach_volume(self, server: Server, volume_id: str, device: str | None, tag: str | None,
                      delete_on_termination: bool, caller: Caller | None = None) -> Any:
        """Cinder records the attachment; Nova keeps only its own BDM extras (tag, delete_on_termination)."""
        _check_lock(server, caller)
        self._require(server, "attach_volume", ("active", "stopped"))
        volume = self.cloud.volume
        volume.get_volume(volume_id, server.project_id)
        if any(a.volume_id == volume_id for a in volume.attachments_of_server(server.id)):
            raise BadRequest(f"Invalid volume: volume {volume_id} already attached")
        attachment = volume.reserve_attachment(volume_id, server.id, server.project_id, device)
        server.volume_options[volume_id] = {"tag": tag, "delete_on_termination": delete_on_termination,
                                            "bdm_uuid": str(uuid.uuid4())}
        self.record_action(server, "attach_volume", caller, done=True)  # Cinder takes it from here
        return attachment

    def attachments(self, server: Server) -> list[Any]:
        return list(self.cloud.volume.attachments_of_server(server.id))

    def attachment(self, server: Server, volume_id: str) -> Any:
        for attachment in self.cloud.volume.attachments_of_server(server.id):
            if attachment.volume_id == volume_id:
                return attachment
        raise NotFound(f"Instance {server.id} is not attached to volume {volume_id}.")

    def detach_volume(self, server: Server, volume_id: str, caller: Caller | None = None) -> None:
        _check_lock(server, caller)
        self._require(server, "detach_volume", ("active", "stopped", "resized", "error"))
        self.attachment(server, volume_id)
        self.cloud.volume.begin_detach(volume_id, server.id)
        server.volume_options.pop(volume_id, None)
        self.record_action(server, "detach_volume", caller, done=True)

    # instance actions -------------------------------------------------------------------------
    def record_action(self, server: Server, action: str, caller: Caller | None, done: bool = False) -> None:
        """Record an accepted request, as Nova does once its state checks pass. Its one event stays open
        until the work ends (`_close_action`); `done` closes it at once, for work that ends in the request."""
        caller = caller or Caller(new_request_id(), server.user_id)
        now = self.now()
        event = ActionEvent(ACTION_EVENTS.get(action, f"compute_{action}"), now)
        self.actions.setdefault(server.id, []).append(
            InstanceAction(action, server.id, caller.request_id, caller.user_id, server.project_id, now, now,
                           events=[event]))
        if done:
            self._close_action(server.id, "Success")

    def _close_action(self, server_id: str, result: str) -> None:
        """End the open event of the server's latest action with "Success" or "Error" (which also sets the
        action's message, as Nova does). An older action's work that a newer request cut short stays open."""
        actions = self.actions.get(server_id)
        if not actions:
            return
        action = actions[-1]
        open_events = [e for e in action.events if e.finish_time is None]
        if not open_events:
            return
        now = self.now()
        for event in open_events:
            event.finish_time, event.result = now, result
        action.updated_at = now
        if result == "Error":
            action.message = "Error"

    def list_actions(self, server_id: str, project_id: str, is_admin: bool, deleted: bool) -> list[InstanceAction]:
        """A server's actions, newest first. `deleted` (microversion 2.21) also finds a purged server's."""
        self._history_owner(server_id, project_id, is_admin, deleted)
        return list(reversed(self.actions.get(server_id, [])))

    def get_action(self, server_id: str, request_id: str, project_id: str, is_admin: bool,
                   deleted: bool) -> InstanceAction:
        self._history_owner(server_id, project_id, is_admin, deleted)
        for action in self.actions.get(server_id, []):
            if action.request_id == request_id:
                return action
        raise NotFound(f"Action {request_id} not found")

    def _history_owner(self, server_id: str, project_id: str, is_admin: bool, deleted: bool) -> None:
        """404 unless the caller may see the server (live, or purged when `deleted`)."""
        owner = self._purged.get(server_id) if deleted else None
        if owner is not None and (owner == project_id or is_admin):
            return
        self.get_server(server_id, project_id, is_admin)

    # keypairs -------------------------------------------------------------------------------
    def list_keypairs(self, user_id: str) -> list[Keypair]:
        return [k for (owner, _), k in self.keypairs.items() if owner == user_id]

    def get_keypair(self, user_id: str, name: str) -> Keypair:
        keypair = self.keypairs.get((user_id, name))
        if keypair is None:
            raise NotFound(f"Keypair {name} not found for user {user_id}")
        return keypair

    def create_keypair(self, user_id: str, name: str, public_key: str | None,
                       key_type: str) -> tuple[Keypair, str | None]:
        """Import a public key, or make up a key pair (the private half is returned once, as Nova does)."""
        if (user_id, name) in self.keypairs:
            raise Conflict(f"Key pair '{name}' already exists.")
        private_key = None
        if not public_key:
            blob = base64.b64encode(secrets.token_bytes(64)).decode()
            public_key = f"ssh-ed25519 {blob} Generated-by-Nova"
            private_key = ("-----BEGIN OPENSSH PRIVATE KEY-----\n"
                           f"{base64.b64encode(secrets.token_bytes(96)).decode()}\n"
                           "-----END OPENSSH PRIVATE KEY-----\n")
        parts = public_key.split()
        if len(parts) < 2:
            raise BadRequest("Keypair data is invalid: failed to generate fingerprint")
        digest = hashlib.md5(parts[1].encode(), usedforsecurity=False).hexdigest()
        fingerprint = ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))
        keypair = Keypair(name, user_id, public_key, fingerprint, key_type, self.now())
        self.keypairs[(user_id, name)] = keypair
        return keypair, private_key

    def delete_keypair(self, user_id: str, name: str) -> None:
        self.get_keypair(user_id, name)
        del self.keypairs[(user_id, name)]

    # persistence ----------------------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        return {
            "flavors": [asdict(f) for f in self.flavors.values()],
            "servers": [asdict(s) for s in self.servers.values()],
            "keypairs": [asdict(k) for k in self.keypairs.values()],
            "quota_overrides": self.quota_overrides,
            "seq": self._seq,
            "actions": {sid: [asdict(a) for a in actions] for sid, actions in self.actions.items()},
            "purged": dict(self._purged),
            "server_groups": [asdict(g) for g in self.server_groups.values()],
        }

    def load(self, data: dict[str, Any]) -> None:
        """Restore, settling every in-flight transition to where it would have ended."""
        self.reset()
        if "flavors" in data:
            self.flavors = {f["id"]: Flavor(**f) for f in data["flavors"]}
        self.keypairs = {(k["user_id"], k["name"]): Keypair(**k) for k in data.get("keypairs", [])}
        self.quota_overrides = dict(data.get("quota_overrides", {}))
        self._seq = int(data.get("seq", 0))
        for sid, actions in data.get("actions", {}).items():
            self.actions[sid] = [InstanceAction(**{**a, "events": [ActionEvent(**e) for e in a.get("events", [])]})
                                 for a in actions]
        self._purged = dict(data.get("purged", {}))
        self.server_groups = {g["id"]: ServerGroup(**g) for g in data.get("server_groups", [])}
        for raw in data.get("servers", []):
            for key in ("flavor", "old_flavor", "new_flavor"):
                if raw.get(key) is not None:
                    raw[key] = Flavor(**raw[key])
            server = Server(**raw)
            self._seq = max(self._seq, server.seq)
            self._insert(server)
            self._settle_loaded(server)

    def _settle_loaded(self, server: Server) -> None:
        task = server.task_state
        if task == "deleting":
            self._purge(server)
        elif server.vm_state == "building":  # its reserved volumes were settled in-use by Cinder's load
            server.vm_state, server.task_state, server.power_state = "active", None, RUNNING
            server.launched_at = server.launched_at or server.updated
        elif task in _RESIZING and server.new_flavor is not None:
            self._finish_resize(server.id, server.generation, False, None)
        elif task == "resize_reverting":
            self._finish_revert(server.id, server.generation)
        elif task in _REBUILDING:
            self._finish_rebuild(server.id, server.generation, "active")
        elif task in ("rebooting", "rebooting_hard", "powering-on"):
            self._settle(server, "active")
        elif task == "powering-off":
            self._settle(server, "stopped")

