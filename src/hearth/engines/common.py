"""What every resource engine shares: naming and tagging, polling, error mapping, preflight, rule diffs.

Kept free of any one engine's flow so the natives and orchestrator engines (and the API's synchronous
checks) agree on how Hearth's cloud resources are named, how long to wait, and what a failure says.
"""

from __future__ import annotations

import ipaddress
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from keystoneauth1 import exceptions as ks_exceptions
from openstack import exceptions as os_exceptions
from openstack.connection import Connection

from hearth.config import Settings
from hearth.engines.base import CloudView, EngineError, InstanceSpec, RuleSpec

T = TypeVar("T")

META_INSTANCE = "hearth_instance_id"
META_PROJECT = "hearth_project_id"
RULE_DESCRIPTION_PREFIX = "hearth:"  # a Neutron rule's description names the Hearth rule it realises

# --------------------------------------------------------------------------------------------------
# Naming and tags: every cloud resource carries the instance id in its name and metadata, so
# leftovers of failed or interrupted steps can always be found and removed.


def server_name(instance_id: str) -> str:
    return f"hearth-{instance_id}"


def volume_name(instance_id: str) -> str:
    return f"hearth-{instance_id}-data"


def secgroup_name(instance_id: str) -> str:
    return f"hearth-{instance_id}"


def resource_metadata(spec: InstanceSpec) -> dict[str, str]:
    return {META_INSTANCE: spec.instance_id, META_PROJECT: spec.project_id}


def secgroup_description(spec: InstanceSpec) -> str:
    return f"Hearth instance {spec.name} ({spec.instance_id})"


def _is_ours(resource: Any, name: str, instance_id: str) -> bool:
    """A resource belongs to the instance by exact name, unless its metadata names another instance."""
    metadata = getattr(resource, "metadata", None) or {}
    owner = metadata.get(META_INSTANCE)
    if owner is not None:
        return owner == instance_id
    return getattr(resource, "name", None) == name


def find_servers(conn: Connection, instance_id: str) -> list[Any]:
    """The instance's servers, found by name (Nova filters by regex) and confirmed by metadata."""
    name = server_name(instance_id)
    with cloud_call(f"listing servers named {name}"):
        found = list(conn.compute.servers(name=f"^{re.escape(name)}$"))
    return [s for s in found if s.name == name and _is_ours(s, name, instance_id)]


def find_volumes(conn: Connection, instance_id: str) -> list[Any]:
    name = volume_name(instance_id)
    with cloud_call(f"listing volumes named {name}"):
        found = list(conn.block_storage.volumes(name=name))
    return [v for v in found if v.name == name and _is_ours(v, name, instance_id)]


def find_secgroups(conn: Connection, instance_id: str) -> list[Any]:
    name = secgroup_name(instance_id)
    with cloud_call(f"listing security groups named {name}"):
        found = list(conn.network.security_groups(name=name))
    return [g for g in found if g.name == name]


# --------------------------------------------------------------------------------------------------
# Error mapping: the cloud's own words, the HTTP status, never a token or password.

_SECRET_PATTERNS = [
    (re.compile(r"(?i)(x-auth-token|x-subject-token)(['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]+"), r"\1\2***"),
    (re.compile(r"(?i)(\"?(?:password|token|secret|adminPass|admin_pass)\"?\s*[:=]\s*\"?)[^\s\",}]+"), r"\1***"),
    (re.compile(r"gAAAAA[0-9A-Za-z_\-]{20,}"), "***"),  # Fernet tokens
]


def scrub(text: str) -> str:
    """Remove anything that looks like a credential from a message."""
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


_KS_SUFFIX = re.compile(r"\s*\(HTTP \d{3}\)(?:\s*\(Request-ID: [^)]*\))?\s*$")  # keystoneauth appends these


def describe_exception(exc: BaseException) -> tuple[str, int | None]:
    """The cloud's message and HTTP status (if any) from an openstacksdk or keystoneauth exception."""
    status: int | None = None
    message = ""
    if isinstance(exc, os_exceptions.HttpException):
        status = exc.status_code
        message = str(exc.details or "") or (exc.message if exc.message != "Error" else "")
    elif isinstance(exc, ks_exceptions.HttpError):
        status = exc.http_status
        message = str(exc.details or "") or str(exc.message or "")
    elif isinstance(exc, os_exceptions.SDKException):
        message = exc.message
    elif isinstance(exc, ks_exceptions.ClientException):
        message = str(exc.message or exc)
    if not message:
        message = str(exc) or exc.__class__.__name__
    message = _KS_SUFFIX.sub("", " ".join(message.split()))
    return scrub(message), status


class CloudUnavailable(EngineError):
    """The cloud could not answer (no connection, or an HTTP 5xx): an outage to retry later, not bad input."""


def is_unavailable(exc: BaseException) -> bool:
    """Whether a cloud client exception means the cloud (or one of its services) is down or failing."""
    if isinstance(exc, ks_exceptions.ConnectionError):  # refused, timed out, TLS, unknown connection failure
        return True
    if isinstance(exc, os_exceptions.HttpException):
        return (exc.status_code or 0) >= 500
    if isinstance(exc, ks_exceptions.HttpError):
        return (exc.http_status or 0) >= 500
    return False


def error_text(exc: BaseException) -> str:
    """An exception as text fit for events and faults: an EngineError as it is (already scrubbed), a cloud
    client exception as the cloud's words and HTTP status with credentials removed, never its raw repr."""
    if isinstance(exc, EngineError):
        return str(exc)
    message, status = describe_exception(exc)
    return message + (f" (HTTP {status})" if status else "")


def engine_error(what: str, exc: BaseException) -> EngineError:
    """EngineError("<what> failed: <the cloud's words> (HTTP n)"), scrubbed; CloudUnavailable for an outage."""
    error = CloudUnavailable if is_unavailable(exc) else EngineError
    return error(f"{what} failed: {error_text(exc)}")


CLOUD_ERRORS: tuple[type[BaseException], ...] = (os_exceptions.SDKException, ks_exceptions.ClientException)


@contextmanager
def cloud_call(what: str) -> Iterator[None]:
    """Turn any cloud client exception raised inside into EngineError("<what> failed: ... (HTTP n)")
    (CloudUnavailable when the cloud could not be reached or answered 5xx)."""
    try:
        yield
    except EngineError:
        raise
    except CLOUD_ERRORS as exc:
        raise engine_error(what, exc) from None


def call(what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`fn(*args, **kwargs)` under `cloud_call(what)`."""
    with cloud_call(what):
        return fn(*args, **kwargs)


def is_not_found(exc: BaseException) -> bool:
    return isinstance(exc, os_exceptions.NotFoundException) or (
        isinstance(exc, ks_exceptions.HttpError) and exc.http_status == 404
    )


def get_or_none(what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """A read that treats 404 as "not there"."""
    try:
        return fn(*args, **kwargs)
    except CLOUD_ERRORS as exc:
        if is_not_found(exc):
            return None
        raise engine_error(what, exc) from None


def delete_plain(proxy: Any, path: str, what: str) -> bool:
    """DELETE one resource through an openstacksdk proxy (its session, endpoint and microversion) without
    building the SDK's resource object for it; True when it was there, False when already gone (404).
    Other errors raise EngineError("<what> failed: ...") with the SDK's exception mapping (409 included)."""
    with cloud_call(what):
        response = proxy.delete(path)
        if response.status_code == 404:
            return False
        os_exceptions.raise_from_response(response)
        return True


def ignore_not_found(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
    """A delete that is fine with the thing being gone already; True when it was still there."""
    try:
        fn(*args, **kwargs)
        return True
    except CLOUD_ERRORS as exc:
        if is_not_found(exc):
            return False
        raise engine_error(what, exc) from None


# --------------------------------------------------------------------------------------------------
# Waiting: adaptive polling, never the SDK's fixed sleeps.

Fetch = Callable[[], T]


def _delays(settings: Settings) -> Iterator[float]:
    delay = max(settings.poll_initial_seconds, 0.001)
    factor = max(settings.poll_factor, 1.0)
    cap = max(settings.poll_max_seconds, delay)
    while True:
        yield delay
        delay = min(delay * factor, cap)


# Adaptive polling. A cloud takes about as long for the same transition each time (a boot, an attach, an
# extend), so each kind of wait remembers how long it took (EWMA per kind; the kind is `what` with ids and
# numbers masked) and the next one sleeps through most of that, then polls finely around the expected end:
# a few requests per wait, and the end is seen within a few percent. A kind seen for the first time (or a
# wait running well past its expectation) uses the geometric schedule of the settings, its step kept under a
# tenth of the time waited once past a second, so a 1-2 s first wait is not overshot by a whole `poll_max`.
LEARN_WEIGHT = 0.3  # weight of the newest observation
EARLY = 0.85  # sleep until this share of the expected time
FINE = 0.03  # then poll every this share of the expected time (at least poll_initial)
_expected: dict[str, float] = {}
_expected_lock = threading.Lock()
_ID_PATTERN = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32}")
_NUMBER = re.compile(r"\d+")


def wait_kind(what: str) -> str:
    """The kind of a wait: its description with ids and numbers masked."""
    return _NUMBER.sub("#", _ID_PATTERN.sub("<id>", what))


def expected_duration(kind: str) -> float | None:
    with _expected_lock:
        return _expected.get(kind)


def _learn(kind: str, seconds: float) -> None:
    with _expected_lock:
        old = _expected.get(kind)
        _expected[kind] = seconds if old is None else (1 - LEARN_WEIGHT) * old + LEARN_WEIGHT * seconds
        if len(_expected) > 4096:  # descriptions that escaped the masking: start over rather than grow
            _expected.clear()


def _next_delay(settings: Settings, elapsed: float, expected: float | None, geometric: Iterator[float]) -> float:
    initial = max(settings.poll_initial_seconds, 0.001)
    if expected is not None and elapsed < 1.5 * expected:
        if elapsed < EARLY * expected:
            return EARLY * expected - elapsed
        return min(max(initial, FINE * expected), settings.poll_max_seconds)
    step = next(geometric)
    return min(step, 0.1 * elapsed) if elapsed > 1.0 else step


def wait_for(
    fetch: Fetch[T],
    is_done: Callable[[T], bool],
    is_failed: Callable[[T], str | bool | None],
    what: str,
    timeout: float | None,
    settings: Settings,
    after_change: bool = True,
) -> T:
    """Poll `fetch` until `is_done`; EngineError with the cloud's reason when `is_failed` says so
    (a string is the reason), or when `timeout` seconds (None: the operation timeout) run out.
    Polls adaptively (see above). A kind already learnt is first looked at after most of its expected
    time (a look right after the request that started the change would find it still under way) unless
    `after_change` is False (`fetch` itself acts, or the change may well be over); a kind never seen is
    looked at at once, and a wait done at that first look teaches nothing."""
    limit = settings.operation_timeout_seconds if timeout is None else timeout
    started = time.monotonic()
    deadline = started + limit
    kind = wait_kind(what)
    expected = expected_duration(kind)
    delays = _delays(settings)
    last: T | None = None
    polls = 0
    slept = bool(expected) and after_change
    if slept:
        time.sleep(min(EARLY * expected, limit))
    while True:
        with cloud_call(f"checking {what}"):
            last = fetch()
        polls += 1
        if is_done(last):
            if polls > 1 or slept:  # done at a first look after a sleep: it took at most that long
                _learn(kind, time.monotonic() - started)
            return last
        reason = is_failed(last)
        if reason:
            detail = reason if isinstance(reason, str) else f"status {status_of(last)}"
            raise EngineError(f"{what} failed: {detail}")
        now = time.monotonic()
        remaining = deadline - now
        if remaining <= 0:
            raise EngineError(f"timed out after {limit:g}s waiting for {what} (last status: {status_of(last)})")
        time.sleep(min(_next_delay(settings, now - started, expected, delays), remaining))


def wait_for_gone(
    fetch: Fetch[Any],
    what: str,
    timeout: float | None,
    settings: Settings,
    is_failed: Callable[[Any], str | bool | None] | None = None,
) -> None:
    """Poll until `fetch` answers 404 (or None): the resource is gone."""
    missing = object()

    def fetch_or_missing() -> Any:
        try:
            found = fetch()
        except CLOUD_ERRORS as exc:
            if is_not_found(exc):
                return missing
            raise
        return missing if found is None else found

    wait_for(fetch_or_missing, lambda r: r is missing, is_failed or (lambda _r: None), what, timeout, settings)


class Plain:
    """A cloud resource as its plain JSON, read by attribute like an openstacksdk resource (the few fields
    polling looks at). Building the SDK's resource objects was most of the CPU of a wait's reads."""

    __slots__ = ("data",)
    ALIASES = {"task_state": "OS-EXT-STS:task_state"}

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self.data.get(self.ALIASES.get(name, name))


def read_plain(proxy: Any, path: str, key: str) -> Plain:
    """GET one resource through an openstacksdk proxy as `Plain`; errors (404 included) raise the SDK's
    exceptions, exactly as its get_* calls do, so get_or_none and wait_for_gone treat them alike."""
    response = proxy.get(path)
    os_exceptions.raise_from_response(response)
    return Plain(dict(response.json().get(key) or {}))


def status_of(resource: Any, missing: str = "unknown") -> str:
    """A cloud resource's status as text (`missing` when it reports none)."""
    return str(getattr(resource, "status", None) or missing)


def server_failure(server: Any) -> str | None:
    """Nova's reason for a server in ERROR (its fault message), else None."""
    if getattr(server, "status", None) != "ERROR":
        return None
    fault = getattr(server, "fault", None) or {}
    message = fault.get("message") if isinstance(fault, dict) else None
    return f"server {server.id} went to ERROR: {message or 'no reason given by Nova'}"


def volume_failure(volume: Any) -> str | None:
    """Cinder has no fault text: a volume in an error_* status is the reason."""
    status = getattr(volume, "status", None) or ""
    if status.startswith("error"):
        return f"volume {volume.id} is in status {status}"
    return None


def volume_attached_to(volume: Any, server_id: str) -> bool:
    return any((a.get("server_id") or a.get("serverId")) == server_id for a in (volume.attachments or []))


# --------------------------------------------------------------------------------------------------
# Reading what the cloud holds (describe): by recorded id, else by the instance's names.


def read_view(conn: Connection, spec: InstanceSpec, server_id: str | None, volume_id: str | None,
              secgroup_id: str | None) -> CloudView:
    """The instance's server, volume and security group as the cloud reports them; changes nothing."""
    view = CloudView()
    server = get_or_none("reading server", conn.compute.get_server, server_id) \
        if server_id else next(iter(find_servers(conn, spec.instance_id)), None)
    if server is not None:
        fault = server.fault if isinstance(server.fault, dict) else None
        view.server = {"id": server.id, "status": server.status, "flavor_id": server_flavor_id(conn, server),
                       "fault": fault.get("message") if fault else None}
    volume = get_or_none("reading volume", conn.block_storage.get_volume, volume_id) \
        if volume_id else next(iter(find_volumes(conn, spec.instance_id)), None)
    if volume is not None:
        view.volume = {"id": volume.id, "status": volume.status, "size": volume.size,
                       "attached_to": [a.get("server_id") for a in volume.attachments or []]}
    group = get_or_none("reading security group", conn.network.get_security_group, secgroup_id) \
        if secgroup_id else next(iter(find_secgroups(conn, spec.instance_id)), None)
    if group is not None:
        rules = ingress_rules(conn, group.id)
        view.security_group = {"id": group.id, "name": group.name, "rules": [
            {"id": r.id, "protocol": r.protocol, "from_port": r.port_range_min, "to_port": r.port_range_max,
             "cidr": r.remote_ip_prefix} for r in rules]}
    return view


# --------------------------------------------------------------------------------------------------
# Heat stacks.


def stack_ref(stack: Any) -> str:
    """A stack's canonical path, `name/id`: Heat answers a bare id (or name) with a redirect to it, which
    would double every read."""
    return f"{stack.name}/{stack.id}"


def read_stack(conn: Connection, ref: str, outputs: bool = False) -> Any | None:
    """A stack (by id or name) as Heat reports it; None once it is gone (404 or DELETE_COMPLETE).

    openstacksdk's `get_stack` raises NotFound for ADOPT_COMPLETE stacks as well as deleted ones, which
    would lose every adopted stack; this reads the same document through the orchestration proxy."""
    from openstack.orchestration.v1.stack import Stack

    with cloud_call(f"reading stack {ref}"):
        response = conn.orchestration.get(f"/stacks/{ref}" + ("" if outputs else "?resolve_outputs=False"))
        if response.status_code == 404:
            return None
        os_exceptions.raise_from_response(response)
    stack = Stack.existing(**(response.json().get("stack") or {}))
    return None if stack.status == "DELETE_COMPLETE" else stack


# --------------------------------------------------------------------------------------------------
# Preflight: refuse before anything is created.


@dataclass
class Resolved:
    """The cloud objects a spec names, looked up once."""

    flavor: Any
    image: Any
    network: Any | None = None


# Flavors and images hardly ever change, yet every create looks both up twice (the API's preflight, then the
# engine's): found ones are remembered briefly per cloud and project. A miss is never cached, and a stale
# hit can only name a flavor or image deleted in the last seconds, which Nova then refuses with its reason.
RESOLVE_CACHE_SECONDS = 30.0
_resolved: dict[tuple[str, ...], tuple[float, Any]] = {}
_resolved_lock = threading.Lock()


def _cloud_identity(conn: Connection) -> tuple[str, ...]:
    auth = conn.config.config.get("auth") or {}
    return tuple(str(auth.get(key) or "") for key in ("auth_url", "project_id", "project_name", "username"))


def _cached_lookup(conn: Connection, kind: str, ref: str, find: Callable[[], Any]) -> Any:
    key = (*_cloud_identity(conn), kind, ref)
    now = time.monotonic()
    with _resolved_lock:
        hit = _resolved.get(key)
    if hit is not None and hit[0] > now:
        return hit[1]
    found = find()
    if found is not None:
        with _resolved_lock:
            if len(_resolved) > 1024:
                _resolved.clear()
            _resolved[key] = (now + RESOLVE_CACHE_SECONDS, found)
    return found


def resolve_flavor(conn: Connection, ref: str) -> Any:
    flavor = _cached_lookup(conn, "flavor", ref, lambda: call(
        f"looking up flavor {ref}", conn.compute.find_flavor, ref, ignore_missing=True))
    if flavor is None:
        raise EngineError(f"flavor {ref!r} does not exist in the cloud")
    return flavor


def resolve_image(conn: Connection, ref: str) -> Any:
    image = _cached_lookup(conn, "image", ref, lambda: call(
        f"looking up image {ref}", conn.image.find_image, ref, ignore_missing=True))
    if image is None:
        raise EngineError(f"image {ref!r} does not exist in the cloud")
    return image


def resolve_network(conn: Connection, ref: str) -> Any:
    network = call(f"looking up network {ref}", conn.network.find_network, ref, ignore_missing=True)
    if network is None:
        raise EngineError(f"network {ref!r} does not exist in the cloud")
    return network


def _room(limit: int | None, used: int | None, wanted: int) -> bool:
    if limit is None or limit < 0:
        return True
    return (used or 0) + wanted <= limit


def _absolute_limits(proxy: Any, what: str) -> dict[str, Any]:
    """GET /limits' `absolute` block as plain JSON: the same request as the SDK's get_limits, without building
    its Limits resources (a measurable share of a create's CPU in the task manager)."""
    with cloud_call(f"reading {what} limits"):
        response = proxy.get("/limits")
        os_exceptions.raise_from_response(response)
        return dict((response.json().get("limits") or {}).get("absolute") or {})


def check_quota(conn: Connection, flavor: Any, volume_size: int, instances: int = 1) -> None:
    """Nova's and Cinder's absolute limits must leave room for the new server and volume."""
    shortfalls: list[str] = []
    nova = _absolute_limits(conn.compute, "compute")
    for label, limit, used, wanted in (
        ("instances", nova.get("maxTotalInstances"), nova.get("totalInstancesUsed"), instances),
        ("cores", nova.get("maxTotalCores"), nova.get("totalCoresUsed"), flavor.vcpus * instances),
        ("RAM (MB)", nova.get("maxTotalRAMSize"), nova.get("totalRAMUsed"), flavor.ram * instances),
    ):
        if not _room(limit, used, wanted):
            shortfalls.append(f"{label}: need {wanted}, {(limit or 0) - (used or 0)} of {limit} left")
    cinder = _absolute_limits(conn.block_storage, "volume")
    for label, limit, used, wanted in (
        ("volumes", cinder.get("maxTotalVolumes"), cinder.get("totalVolumesUsed"), instances),
        ("volume gigabytes", cinder.get("maxTotalVolumeGigabytes"), cinder.get("totalGigabytesUsed"),
         volume_size * instances),
    ):
        if not _room(limit, used, wanted):
            shortfalls.append(f"{label}: need {wanted}, {(limit or 0) - (used or 0)} of {limit} left")
    if shortfalls:
        raise EngineError("quota exceeded: " + "; ".join(shortfalls))


def preflight(conn: Connection, spec: InstanceSpec) -> Resolved:
    """Check the flavor, image and network exist and quota leaves room; creates nothing.

    Returns what it resolved (callers that only want the check ignore it)."""
    if spec.volume_size < 1:
        raise EngineError(f"volume size must be at least 1 GB, got {spec.volume_size}")
    flavor = resolve_flavor(conn, spec.flavor_id)
    image = resolve_image(conn, spec.image_id)
    min_disk = getattr(image, "min_disk", 0) or 0
    if flavor.disk and min_disk > flavor.disk:
        raise EngineError(f"flavor {flavor.name!r} has a {flavor.disk} GB disk, image {image.name!r} needs "
                          f"{min_disk} GB")
    network = resolve_network(conn, spec.network_id) if spec.network_id else None
    check_quota(conn, flavor, spec.volume_size)
    return Resolved(flavor=flavor, image=image, network=network)


def _embedded_flavor_name(server: Any) -> str | None:
    """From Nova 2.47 the server embeds its flavor by name (original_name) and has no id; openstacksdk
    then fills the flavor's `id` with that name, so the name decides which form we got."""
    current = getattr(server, "flavor", None)
    return getattr(current, "original_name", None) if current is not None else None


def server_has_flavor(server: Any, flavor: Any) -> bool:
    """Whether the server runs `flavor` (a resolved Flavor), whichever form Nova reported it in."""
    name = _embedded_flavor_name(server)
    if name is not None:
        return name == flavor.name
    current = getattr(server, "flavor", None)
    return current is not None and getattr(current, "id", None) == flavor.id


def server_flavor_id(conn: Connection, server: Any) -> str | None:
    """The server's flavor id, resolving the name newer microversions report."""
    name = _embedded_flavor_name(server)
    if name is None:
        current = getattr(server, "flavor", None)
        return getattr(current, "id", None) if current is not None else None
    flavor = get_or_none(f"looking up flavor {name}", conn.compute.find_flavor, name, ignore_missing=True)
    return flavor.id if flavor is not None else None


# --------------------------------------------------------------------------------------------------
# Security group rules.


def ingress_rules(conn: Connection, group_id: str) -> list[Any]:
    """The group's ingress rules as Neutron holds them (egress rules are Neutron's defaults, not Hearth's)."""
    with cloud_call(f"listing rules of security group {group_id}"):
        return [r for r in conn.network.security_group_rules(security_group_id=group_id) if r.direction == "ingress"]


def canonical_cidr(cidr: str | None, ethertype: str = "IPv4") -> str:
    """The network as Neutron stores it (`10.0.0.7/24` -> `10.0.0.0/24`; empty -> any address of the
    ethertype). An invalid CIDR is an EngineError: the API validates input, so one here is a bug or bad data,
    and sending it on would only earn Neutron's 400."""
    if not cidr:
        return "::/0" if ethertype == "IPv6" else "0.0.0.0/0"
    try:
        return str(ipaddress.ip_network(cidr, strict=False))
    except ValueError:
        raise EngineError(f"{cidr!r} is not a valid CIDR (expected e.g. 10.0.0.0/24)") from None


def _normalize_protocol(protocol: str | None) -> str | None:
    if protocol in (None, "", "any", "-1"):
        return None
    lowered = str(protocol).lower()
    return {"6": "tcp", "17": "udp", "1": "icmp", "58": "ipv6-icmp"}.get(lowered, lowered)


def _port(value: int | None) -> int | None:
    return None if value is None or value < 0 else value


def rule_shape(rule: RuleSpec) -> tuple[Any, ...]:
    """What a rule opens, normalized the way Neutron stores it (for matching cloud rules)."""
    protocol = _normalize_protocol(rule.protocol)
    ports = (_port(rule.from_port), _port(rule.to_port)) if protocol else (None, None)
    return (rule.ethertype, protocol, *ports, canonical_cidr(rule.cidr, rule.ethertype))


def neutron_shape(rule: Any) -> tuple[Any, ...]:
    """The same shape from a Neutron security group rule (an SDK object or dict)."""
    get = rule.get if isinstance(rule, dict) else (lambda key: getattr(rule, key, None))
    ethertype = get("ether_type") or get("ethertype") or "IPv4"
    protocol = _normalize_protocol(get("protocol"))
    return (ethertype, protocol, get("port_range_min"), get("port_range_max"),
            canonical_cidr(get("remote_ip_prefix"), ethertype))


def rule_body(rule: RuleSpec, secgroup_id: str) -> dict[str, Any]:
    """The Neutron create body for one Hearth rule (always ingress; ethertype from the CIDR)."""
    protocol = _normalize_protocol(rule.protocol)
    body: dict[str, Any] = {
        "security_group_id": secgroup_id,
        "direction": "ingress",
        "ether_type": rule.ethertype,
        "protocol": protocol,
        "remote_ip_prefix": canonical_cidr(rule.cidr, rule.ethertype),
        "description": f"{RULE_DESCRIPTION_PREFIX}{rule.id}",
    }
    if protocol:
        body["port_range_min"] = _port(rule.from_port)
        body["port_range_max"] = _port(rule.to_port)
    return body


def hearth_rule_id(neutron_rule: Any) -> str | None:
    """The Hearth rule id a Neutron rule was created for (from its description), if any."""
    description = getattr(neutron_rule, "description", None) or ""
    if description.startswith(RULE_DESCRIPTION_PREFIX):
        return description[len(RULE_DESCRIPTION_PREFIX):] or None
    return None


@dataclass
class RuleDiff:
    """How to go from the realised rules to the desired ones: create first, then delete."""

    keep: dict[str, RuleSpec] = field(default_factory=dict)  # Hearth id -> desired rule, cloud_id set
    to_create: list[RuleSpec] = field(default_factory=list)  # desired rules with no cloud rule yet
    to_delete: list[RuleSpec] = field(default_factory=list)  # realised rules (cloud_id set) to remove last

    @property
    def empty(self) -> bool:
        return not self.to_create and not self.to_delete


def diff_rules(desired: Iterable[RuleSpec], current: Mapping[str, RuleSpec]) -> RuleDiff:
    """Match desired rules to realised ones (by Hearth id and shape, then by shape alone, so a renamed
    but identical rule is adopted rather than re-created). Neutron rules are immutable: a changed CIDR
    is a new rule plus the deletion of the old one, which `to_create`-before-`to_delete` orders safely."""
    diff = RuleDiff()
    unclaimed = {key: rule for key, rule in current.items() if rule.cloud_id}
    pending: list[RuleSpec] = []
    for rule in desired:
        realised = unclaimed.get(rule.id)
        if realised is not None and rule_shape(realised) == rule_shape(rule):
            del unclaimed[rule.id]
            diff.keep[rule.id] = _with_cloud_id(rule, realised.cloud_id)
        else:
            pending.append(rule)
    for rule in pending:
        match = next((key for key, r in unclaimed.items() if rule_shape(r) == rule_shape(rule)), None)
        if match is not None:
            diff.keep[rule.id] = _with_cloud_id(rule, unclaimed.pop(match).cloud_id)
        else:
            diff.to_create.append(_with_cloud_id(rule, None))
    diff.to_delete = list(unclaimed.values())
    return diff


def _with_cloud_id(rule: RuleSpec, cloud_id: str | None) -> RuleSpec:
    return RuleSpec(rule.id, rule.protocol, rule.from_port, rule.to_port, rule.cidr, cloud_id)


_RULE_EXISTS = re.compile(r"[Rr]ule id is ([0-9a-fA-F-]{8,})")


def existing_rule_id(message: str) -> str | None:
    """Neutron's 409 for a duplicate rule names the existing rule's id."""
    match = _RULE_EXISTS.search(message or "")
    return match.group(1) if match else None
