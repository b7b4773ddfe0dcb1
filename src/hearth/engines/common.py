"""What every resource engine shares: naming and tagging, polling, error mapping, preflight, rule diffs.

Kept free of any one engine's flow so the natives and orchestrator engines (and the API's synchronous
checks) agree on how Hearth's cloud resources are named, how long to wait, and what a failure says.
"""

from __future__ import annotations

import email.utils
import ipaddress
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from keystoneauth1 import exceptions as ks_exceptions
from openstack import exceptions as os_exceptions
from openstack.connection import Connection

from hearth import metrics
from hearth.config import Settings
from hearth.engines.base import CloudView, EngineError, InstanceSpec, QuotaExceeded, RuleSpec, TransientError

T = TypeVar("T")
log = logging.getLogger(__name__)

META_INSTANCE = "hearth_instance_id"
META_PROJECT = "hearth_project_id"
RULE_DESCRIPTION_PREFIX = "hearth:"  # a Neutron rule's description names the Hearth rule it realises

# --------------------------------------------------------------------------------------------------
# Naming and tags: every cloud resource carries the instance id in its name and metadata, so
# leftovers of failed or interrupted steps can always be found and removed.


SERVER_NAME_MAX = 255  # Nova's limit on a server name


def server_name(instance_id: str, display: str | None = None) -> str:
    """`hearth-<id>`, then the instance's name when given (`hearth-<id>-<name>`, cut to fit Nova's 255
    characters): Trove's clients find an instance's server by the instance's name (Nova's name filter is a
    regex search), Hearth by the `hearth-<id>` start (see find_servers), confirmed by the metadata."""
    head = f"hearth-{instance_id}"
    if not display:
        return head
    return f"{head}-{display}"[:SERVER_NAME_MAX]


def port_name(instance_id: str) -> str:
    return f"hearth-{instance_id}-port"


def floating_ip_description(instance_id: str) -> str:
    """Floating IPs have no name: the description says whose it is (find_floating_ips)."""
    return f"hearth-{instance_id}-public"


def volume_name(instance_id: str) -> str:
    return f"hearth-{instance_id}-data"


def secgroup_name(instance_id: str) -> str:
    return f"hearth-{instance_id}"


def resource_metadata(spec: InstanceSpec) -> dict[str, str]:
    return {META_INSTANCE: spec.instance_id, META_PROJECT: spec.project_id}


DESCRIPTION_MAX = 255  # Neutron's (and Cinder's) limit on a description, in characters


def _bounded_description(head: str, spec: InstanceSpec, tail: str = "") -> str:
    """`head + NAME + tail`, the name shortened (ending "...") so the whole fits the 255 characters Neutron and
    Cinder allow in a description: names may be as long as Trove allows (255), and a refusal would only come
    from the cloud, after the API accepted the request."""
    room = max(DESCRIPTION_MAX - len(head) - len(tail), 3)
    name = spec.name if len(spec.name) <= room else spec.name[:room - 3] + "..."
    return f"{head}{name}{tail}"[:DESCRIPTION_MAX]


def secgroup_description(spec: InstanceSpec) -> str:
    """"Hearth instance NAME (ID)", bounded; both engines (natives, the orchestrator's template) use it."""
    return _bounded_description("Hearth instance ", spec, f" ({spec.instance_id})")


def volume_description(spec: InstanceSpec) -> str:
    """"Data volume of Hearth instance NAME", bounded."""
    return _bounded_description("Data volume of Hearth instance ", spec)


def _is_ours(resource: Any, name: str, instance_id: str) -> bool:
    """A resource belongs to the instance by exact name, unless its metadata names another instance."""
    metadata = getattr(resource, "metadata", None) or {}
    owner = metadata.get(META_INSTANCE)
    if owner is not None:
        return owner == instance_id
    return getattr(resource, "name", None) == name


def find_servers(conn: Connection, instance_id: str) -> list[Any]:
    """The instance's servers, found by the start of their name (Nova filters by regex) and confirmed by
    metadata."""
    head = server_name(instance_id)
    found = retried(f"listing servers named {head}*",
                    lambda: list(conn.compute.servers(name=f"^{re.escape(head)}($|-)")))
    return [s for s in found if _named_for(str(s.name), head) and _is_ours(s, s.name, instance_id)]


def _named_for(name: str, head: str) -> bool:
    return name == head or name.startswith(head + "-")


def find_ports(conn: Connection, instance_id: str) -> list[Any]:
    name = port_name(instance_id)
    found = retried(f"listing ports named {name}", lambda: list(conn.network.ports(name=name)))
    return [p for p in found if p.name == name]


def find_floating_ips(conn: Connection, instance_id: str) -> list[Any]:
    description = floating_ip_description(instance_id)
    found = retried(f"listing floating IPs of {description}", lambda: list(conn.network.ips(description=description)))
    return [ip for ip in found if ip.description == description]


def find_volumes(conn: Connection, instance_id: str) -> list[Any]:
    name = volume_name(instance_id)
    found = retried(f"listing volumes named {name}", lambda: list(conn.block_storage.volumes(name=name)))
    return [v for v in found if v.name == name and _is_ours(v, name, instance_id)]


def find_secgroups(conn: Connection, instance_id: str) -> list[Any]:
    name = secgroup_name(instance_id)
    found = retried(f"listing security groups named {name}", lambda: list(conn.network.security_groups(name=name)))
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


# Which statuses mean "not now" rather than "no": overload, maintenance, a gateway that lost its backend.
# 501 (not implemented) is a permanent answer, and 4xx are the cloud refusing the request as asked.
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRY_AFTER_CAP = 60.0  # a cloud's Retry-After is honoured up to this many seconds

# Service types as the catalog names them -> the names operators know from their logs.
SERVICE_NAMES = {"compute": "Nova", "block_storage": "Cinder", "block-storage": "Cinder", "volume": "Cinder",
                 "volumev3": "Cinder", "network": "Neutron", "orchestration": "Heat", "image": "Glance",
                 "identity": "Keystone"}
_endpoints: dict[str, str] = {}  # endpoint URL -> service type, noted as connections discover them
_endpoints_lock = threading.Lock()


class CloudUnavailable(TransientError):
    """The cloud could not answer (no connection, a timeout, an HTTP 5xx or 429): retry later, not bad input."""


def note_endpoints(conn: Connection, service_types: Iterable[str]) -> None:
    """Remember which service each endpoint URL belongs to, so a failure can say "Nova answered 503"."""
    for service_type in service_types:
        try:
            url = getattr(conn, service_type.replace("-", "_")).get_endpoint()
        except Exception:  # noqa: BLE001 - a label only: a service that cannot be discovered is named "the cloud"
            continue
        if url:
            with _endpoints_lock:
                _endpoints[url.rstrip("/")] = service_type


MICROVERSIONED = frozenset({"compute", "block_storage"})  # services whose requests carry a negotiated microversion


def ensure_discovered(conn: Connection, services: Iterable[str]) -> None:
    """Every one of `services` (proxy attribute names) has been discovered on `conn`: its proxy made and, for
    the microversioned ones, the range of microversions known. openstacksdk turns a failed discovery into a
    proxy that never sends a microversion (Nova then refuses what needs one with a 400) or into NotSupported
    ("exists but does not have any supported versions"); both are the weather, so this raises CloudUnavailable
    and the caller drops the Connection. Also notes the endpoints (see note_endpoints)."""
    services = list(services)
    for service in services:
        label = SERVICE_NAMES.get(service, service)
        with cloud_call(f"discovering the {label} API"):
            try:
                proxy = getattr(conn, service)
            except os_exceptions.NotSupported as exc:
                raise CloudUnavailable(f"discovering the {label} API failed: {exc.message}", service=service,
                                       cause="version discovery failed") from None
            if service in MICROVERSIONED:
                data = proxy.get_endpoint_data()
                if data is None or not data.max_microversion:
                    raise CloudUnavailable(f"discovering the {label} API failed: its version document could not "
                                           "be read", service=service, cause="version discovery failed")
    note_endpoints(conn, services)


def service_of_url(url: str | None) -> str | None:
    """The service type owning `url` (the longest noted endpoint that prefixes it), if known."""
    if not url:
        return None
    with _endpoints_lock:
        known = list(_endpoints.items())
    best = max((item for item in known if url.startswith(item[0])), key=lambda item: len(item[0]), default=None)
    return best[1] if best else None


def http_status(exc: BaseException) -> int | None:
    if isinstance(exc, os_exceptions.HttpException):
        return exc.status_code
    if isinstance(exc, ks_exceptions.HttpError):
        return exc.http_status
    return None


def is_unavailable(exc: BaseException) -> bool:
    """Whether a cloud client exception means the cloud (or one of its services) is down, overloaded or
    failing: connection refused or reset, a timeout, or a status in TRANSIENT_STATUSES."""
    if isinstance(exc, ks_exceptions.ConnectionError):  # refused, reset, timed out, TLS, unknown connection failure
        return True
    return http_status(exc) in TRANSIENT_STATUSES


def retry_after_of(exc: BaseException) -> float | None:
    """The cloud's Retry-After (seconds or an HTTP date), capped at RETRY_AFTER_CAP; None when absent."""
    response = getattr(exc, "response", None)
    value = response.headers.get("Retry-After") if response is not None and response.headers is not None else None
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return min(max(seconds, 0.0), RETRY_AFTER_CAP)


def _failure_cause(exc: BaseException) -> str:
    status = http_status(exc)
    if status:
        return f"HTTP {status}"
    if isinstance(exc, ks_exceptions.ConnectTimeout):
        return "timeout"
    return "connection failed"


def _request_url(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    return getattr(response, "url", None) or getattr(exc, "url", None)


def error_text(exc: BaseException) -> str:
    """An exception as text fit for events and faults: an EngineError as it is (already scrubbed), a cloud
    client exception as the cloud's words and HTTP status with credentials removed, never its raw repr."""
    if isinstance(exc, EngineError):
        return str(exc)
    message, status = describe_exception(exc)
    return message + (f" (HTTP {status})" if status else "")


def engine_error(what: str, exc: BaseException, conflict_is_transient: bool = False) -> EngineError:
    """EngineError("<what> failed: <the cloud's words> (HTTP n)"), scrubbed: CloudUnavailable (transient) for
    an outage, an overload or a 5xx, and for a 409 where the caller knows the conflict is a resource still busy
    (`conflict_is_transient`); a plain, terminal EngineError otherwise."""
    text = f"{what} failed: {error_text(exc)}"
    status = http_status(exc)
    if is_unavailable(exc) or (conflict_is_transient and status == 409):
        return CloudUnavailable(text, service=service_of_url(_request_url(exc)), status=status,
                                retry_after=retry_after_of(exc), cause=_failure_cause(exc))
    return EngineError(text)


CLOUD_ERRORS: tuple[type[BaseException], ...] = (os_exceptions.SDKException, ks_exceptions.ClientException)


@contextmanager
def cloud_call(what: str, conflict_is_transient: bool = False) -> Iterator[None]:
    """Turn any cloud client exception raised inside into EngineError("<what> failed: ... (HTTP n)")
    (CloudUnavailable when the cloud could not be reached or answered 5xx, or 409 where the caller says a
    conflict means the resource is still busy with an earlier action)."""
    try:
        yield
    except EngineError:
        raise
    except CLOUD_ERRORS as exc:
        raise engine_error(what, exc, conflict_is_transient) from None


def call(what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`fn(*args, **kwargs)` under `cloud_call(what)`, tried once: for writes that must not be repeated
    blindly (a create whose answer was lost may have created; the operation-level retry looks first)."""
    with cloud_call(what):
        return fn(*args, **kwargs)


# --------------------------------------------------------------------------------------------------
# Retrying: reads and idempotent writes retry a few times right here; whatever is still transient after
# that goes up to the task manager, which requeues the operation with a longer backoff and resumes it from
# its journal (like controller-runtime's requeue versus a terminal error).

CALL_ATTEMPTS = 3  # tries of one read or idempotent write before the operation-level retry takes over
CALL_BACKOFF = 0.25  # seconds before the second try; doubled each time, capped at CALL_BACKOFF_CAP
CALL_BACKOFF_CAP = 2.0

RetryReporter = Callable[[TransientError, float, int], None]  # (error, delay, attempt) -> tell the user
retry_reporter: ContextVar[RetryReporter | None] = ContextVar("hearth_retry_reporter", default=None)
operation_deadline: ContextVar[float | None] = ContextVar("hearth_operation_deadline", default=None)


def backoff_delay(attempt: int, base: float, cap: float, retry_after: float | None = None) -> float:
    """Exponential backoff with jitter: about base * 2**(attempt-1), capped, between half and all of it
    (so retries of many operations spread out), and never sooner than the cloud's Retry-After."""
    ceiling = min(cap, base * (2 ** max(attempt - 1, 0)))
    delay = ceiling / 2 + random.uniform(0, ceiling / 2)
    return max(delay, retry_after or 0.0)


def retry_message(err: TransientError, delay: float, attempt: int) -> str:
    """What a user reads: "Nova answered 503 (reading server ...); retrying in 4 s (attempt 3)"."""
    who = SERVICE_NAMES.get(err.service or "", "the cloud")
    what = f"{who} answered {err.status}" if err.status else f"{who} could not be reached ({err.cause})"
    return f"{what}: {err}; retrying in {delay:.3g} s (attempt {attempt})"


def report_retry(err: TransientError, delay: float, attempt: int) -> None:
    """Tell the running operation (its events) about a retry; a log line outside operations."""
    metrics.count(metrics.RETRIES, service=err.service or "cloud", cause=err.cause)
    reporter = retry_reporter.get()
    if reporter is not None:
        reporter(err, delay, attempt)
    else:
        log.info("%s", retry_message(err, delay, attempt))


def _time_left() -> float | None:
    deadline = operation_deadline.get()
    return None if deadline is None else deadline - time.monotonic()


def retried(what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`fn(*args, **kwargs)` under `cloud_call(what)`, retried on transient failures (CALL_ATTEMPTS tries,
    short backoff, Retry-After honoured, never past the operation's deadline). Only for reads and writes
    that are safe to repeat (DELETE, PUT of a whole value, an action that converges)."""
    attempt = 1
    while True:
        try:
            with cloud_call(what):
                return fn(*args, **kwargs)
        except TransientError as err:
            delay = backoff_delay(attempt, CALL_BACKOFF, CALL_BACKOFF_CAP, err.retry_after)
            left = _time_left()
            if attempt >= CALL_ATTEMPTS or (left is not None and left <= delay):
                raise
            report_retry(err, delay, attempt + 1)
            time.sleep(delay)
            attempt += 1


def is_not_found(exc: BaseException) -> bool:
    return isinstance(exc, os_exceptions.NotFoundException) or (
        isinstance(exc, ks_exceptions.HttpError) and exc.http_status == 404
    )


def get_or_none(what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """A read that treats 404 as "not there" (transient failures retried, see `retried`)."""

    def read() -> T | None:
        try:
            return fn(*args, **kwargs)
        except CLOUD_ERRORS as exc:
            if is_not_found(exc):
                return None
            raise

    return retried(what, read)


def delete_plain(proxy: Any, path: str, what: str) -> bool:
    """DELETE one resource through an openstacksdk proxy (its session, endpoint and microversion) without
    building the SDK's resource object for it; True when it was there, False when already gone (404).
    Other errors raise EngineError("<what> failed: ...") with the SDK's exception mapping (409 included).
    A DELETE is idempotent: transient failures are retried (see `retried`)."""

    def remove() -> bool:
        response = proxy.delete(path)
        if response.status_code == 404:
            return False
        os_exceptions.raise_from_response(response)
        return True

    return retried(what, remove)


def ignore_not_found(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
    """A delete that is fine with the thing being gone already; True when it was still there. Retried on
    transient failures (a repeated DELETE of something already gone answers 404: False)."""

    def remove() -> bool:
        try:
            fn(*args, **kwargs)
            return True
        except CLOUD_ERRORS as exc:
            if is_not_found(exc):
                return False
            raise

    return retried(what, remove)


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


class WaitKind(StrEnum):
    """What a wait waits for: the key of its learnt duration. Declared, never derived from the text of its
    message, so two waits share what they learn only when they wait for the same kind of transition."""

    SERVER_BOOT = "server boot"
    SERVER_RESIZE = "server resize"
    SERVER_SETTLE = "server settle"
    SERVER_DELETE = "server delete"
    SERVER_REBOOT = "server reboot"
    SERVER_REBUILD = "server rebuild"
    VOLUME_CREATE = "volume create"
    VOLUME_ATTACH = "volume attach"
    VOLUME_DETACH = "volume detach"
    VOLUME_EXTEND = "volume extend"
    VOLUME_SETTLE = "volume settle"
    VOLUME_DELETE = "volume delete"
    NEUTRON_DELETE = "neutron delete"
    STACK_CREATE = "stack create"
    STACK_UPDATE_FLAVOR = "stack update: flavor"
    STACK_UPDATE_VOLUME = "stack update: volume"
    STACK_UPDATE_RULES = "stack update: rules"
    STACK_UPDATE_IMAGE = "stack update: image"
    STACK_SETTLE = "stack settle"
    STACK_DELETE = "stack delete"
    STACK_ADOPT = "stack adopt"
    STACK_CHECK = "stack check"
    STACK_CONVERGE = "stack update: converge"


# Adaptive polling. A cloud takes about as long for the same transition each time (a boot, an attach, an
# extend), so each kind of wait (WaitKind) remembers how long its last few took and the next one sleeps through
# most of the typical (median) time, then polls finely around the expected end: a few requests per wait, and
# the end is seen within a few percent. The median makes one slow period (fewer than half the window) change
# nothing, and a wait found done at its first look after the sleep (the cloud got faster: the sleep was too
# long) is learnt as half that time, so the expectation comes down within a few waits. A kind seen for the
# first time (or a wait running well past its expectation) uses the geometric schedule of the settings, its
# step kept under a tenth of the time waited once past a second, so a 1-2 s first wait is not overshot by a
# whole `poll_max`.
LEARN_WINDOW = 5  # observations kept per kind
EARLY = 0.85  # sleep until this share of the expected time
FINE = 0.03  # then poll every this share of the expected time (at least poll_initial)
_observed: dict[str, list[float]] = {}
_expected_lock = threading.Lock()
_ID_PATTERN = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32}")
_NUMBER = re.compile(r"\d+")


def wait_kind(what: str) -> str:
    """The key of a wait that declares no WaitKind (callers outside the engines): its description with ids and
    numbers masked."""
    return _NUMBER.sub("#", _ID_PATTERN.sub("<id>", what))


def _key(kind: WaitKind | str) -> str:
    return kind.value if isinstance(kind, WaitKind) else kind


def expected_duration(kind: WaitKind | str) -> float | None:
    """The typical (median) duration of the kind's last waits, None before the first."""
    with _expected_lock:
        seen = sorted(_observed.get(_key(kind)) or ())
    return seen[len(seen) // 2] if seen else None


def forget_learnt_waits() -> None:
    """Start learning afresh: the cloud behind the process changed (tests give each test a cloud of its own,
    some with seconds-long delays that would make the next test's waits sleep through them)."""
    with _expected_lock:
        _observed.clear()


def _learn(kind: WaitKind | str, seconds: float) -> None:
    with _expected_lock:
        seen = _observed.setdefault(_key(kind), [])
        seen.append(seconds)
        del seen[:-LEARN_WINDOW]
        if len(_observed) > 4096:  # descriptions that escaped the masking: start over rather than grow
            _observed.clear()


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
    on_transient: Callable[[TransientError], None] | None = None,
    kind: WaitKind | None = None,
) -> T:
    """Poll `fetch` until `is_done`; EngineError with the cloud's reason when `is_failed` says so
    (a string is the reason), or when `timeout` seconds (None: the operation timeout) run out.
    Polls adaptively (see above). A kind already learnt is first looked at after most of its expected
    time (a look right after the request that started the change would find it still under way) unless
    `after_change` is False (`fetch` itself acts, or the change may well be over); a kind never seen is
    looked at at once, and a wait done at that first look teaches nothing.

    A look that fails transiently (a 5xx, a reset, a timeout) decides nothing: the wait backs off and looks
    again. If the time runs out while the cloud keeps failing, the error stays transient (the operation is
    retried later); only a settled, failed state or a timeout of a change that never finished is terminal.
    The wait never runs past the operation's deadline (`operation_deadline`); `on_transient` hears of each
    failed look (a caller may judge the end state by whether the cloud went away meanwhile). `kind` keys what
    is learnt (without one, the masked text of `what`)."""
    limit = settings.operation_timeout_seconds if timeout is None else timeout
    left = _time_left()
    if left is not None:
        limit = max(min(limit, left), 0.0)
    started = time.monotonic()
    deadline = started + limit
    key: WaitKind | str = kind if kind is not None else wait_kind(what)
    expected = expected_duration(key)
    delays = _delays(settings)
    last: T | None = None
    polls = 0
    failures = 0  # consecutive looks that failed transiently
    troubled = False  # a look failed: the wait's length says more about the weather than about the transition
    try:
        slept = bool(expected) and after_change
        if slept:
            time.sleep(min(EARLY * expected, limit))
        while True:
            try:
                with cloud_call(f"checking {what}"):
                    last = fetch()
            except TransientError as err:
                failures += 1
                troubled = True
                if on_transient is not None:
                    on_transient(err)
                delay = backoff_delay(failures, CALL_BACKOFF, CALL_BACKOFF_CAP, err.retry_after)
                remaining = deadline - time.monotonic()
                if remaining <= delay:
                    raise
                if failures == 1 or failures % 5 == 0:  # say so, without an event per failed look
                    report_retry(err, delay, failures + 1)
                time.sleep(delay)
                continue
            failures = 0
            polls += 1
            if is_done(last):
                if (polls > 1 or slept) and not troubled:
                    took = time.monotonic() - started
                    # done at the first look after the sleep: it took at most that, likely much less
                    _learn(key, took / 2 if polls == 1 and slept else took)
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
    finally:
        metrics.observe(metrics.CLOUD_WAIT_SECONDS, time.monotonic() - started,
                        wait_kind=key if isinstance(key, WaitKind) else "other")


def wait_for_gone(
    fetch: Fetch[Any],
    what: str,
    timeout: float | None,
    settings: Settings,
    is_failed: Callable[[Any], str | bool | None] | None = None,
    kind: WaitKind | None = None,
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

    wait_for(fetch_or_missing, lambda r: r is missing, is_failed or (lambda _r: None), what, timeout, settings,
             kind=kind)


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


def _get_json(proxy: Any, path: str, missing: tuple[int, ...] = ()) -> dict[str, Any] | None:
    """The one plain-JSON GET: through an openstacksdk proxy (its session, endpoint and microversion), no SDK
    resource objects built; None for one of the `missing` statuses, the SDK's exceptions for other errors."""
    response = proxy.get(path)
    if response.status_code in missing:
        return None
    os_exceptions.raise_from_response(response)
    return dict(response.json() or {})


def read_json(proxy: Any, path: str, what: str, missing: tuple[int, ...] = (),
              key: str | None = None) -> dict[str, Any] | None:
    """GET `path` as plain JSON (its `key` member, when given), retried on transient failures; None when the
    cloud answers one of the `missing` statuses."""

    def read() -> dict[str, Any] | None:
        body = _get_json(proxy, path, missing)
        return body if body is None or key is None else dict(body.get(key) or {})

    return retried(what, read)


def list_plain(proxy: Any, path: str, key: str, what: str) -> list[dict[str, Any]]:
    """Every item of a collection as plain JSON (its `key` member), following the `<key>_links` next pages
    that Nova, Cinder and (with pagination on) Neutron answer with; each page retried like read_json."""
    items: list[dict[str, Any]] = []
    page: str | None = path
    while page is not None:
        body = read_json(proxy, page, what) or {}
        items += [dict(item) for item in body.get(key) or []]
        page = next((link.get("href") for link in body.get(f"{key}_links") or [] if link.get("rel") == "next"),
                    None)
    return items


def get_plain(proxy: Any, path: str, key: str, what: str) -> dict[str, Any] | None:
    """One resource's plain JSON (its `key` member), None once it is gone (404); retried like get_or_none."""
    return read_json(proxy, path, what, missing=(404,), key=key)


def read_plain(proxy: Any, path: str, key: str) -> Plain:
    """GET one resource as `Plain`, tried once (for polls: wait_for retries); errors (404 included) raise the
    SDK's exceptions, exactly as its get_* calls do, so wait_for_gone treats them alike."""
    return Plain(dict((_get_json(proxy, path) or {}).get(key) or {}))


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


def server_ports(conn: Connection, server_id: str) -> list[Any]:
    """The Neutron ports a server is plugged into."""
    return retried(f"listing ports of server {server_id}", lambda: list(conn.network.ports(device_id=server_id)))


def read_addresses(conn: Connection, server_id: str | None) -> list[dict[str, Any]]:
    """The server's addresses as Trove shows them: each fixed IP of its ports (`private`, with the network id)
    and each floating IP associated with them (`public`), read from Neutron (not Nova's cached view)."""
    if not server_id:
        return []
    ports = server_ports(conn, server_id)
    found: list[dict[str, Any]] = []
    for port in ports:
        for fixed in port.fixed_ips or []:
            found.append({"address": fixed.get("ip_address"), "type": "private", "network": port.network_id})
    for port in ports:
        ips = retried(f"listing floating IPs of port {port.id}", lambda p=port: list(conn.network.ips(port_id=p.id)))
        found += [{"address": ip.floating_ip_address, "type": "public", "network": ip.floating_network_id}
                  for ip in ips]
    return found


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


def forget_cloud_lookups() -> None:
    """Drop what the process learnt of the cloud behind it (resolved flavors and images, endpoint URLs):
    that cloud was replaced (tests give each test a cloud of its own)."""
    with _resolved_lock:
        _resolved.clear()
    with _endpoints_lock:
        _endpoints.clear()


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
    flavor = _cached_lookup(conn, "flavor", ref, lambda: get_or_none(
        f"looking up flavor {ref}", conn.compute.find_flavor, ref, ignore_missing=False))
    if flavor is None:
        raise EngineError(f"flavor {ref!r} does not exist in the cloud")
    return flavor


def resolve_image(conn: Connection, ref: str) -> Any:
    image = _cached_lookup(conn, "image", ref, lambda: _find_image(conn, ref))
    if image is None:
        raise EngineError(f"image {ref!r} does not exist in the cloud")
    return image


def _find_image(conn: Connection, ref: str) -> Any | None:
    """The image with that id, else the one with that name (None: neither). Not the SDK's find_image: it
    always warns (it looks up with ignore_missing=True inside, whatever its caller asks)."""
    if _ID_PATTERN.fullmatch(ref):
        image = get_or_none(f"reading image {ref}", conn.image.get_image, ref)
        if image is not None:
            return image
    named = retried(f"looking up image {ref}", lambda: list(conn.image.images(name=ref)))
    if len(named) > 1:
        raise EngineError(f"{len(named)} images are named {ref!r}; name one by its id")
    return named[0] if named else None


def resolve_network(conn: Connection, ref: str) -> Any:
    network = get_or_none(f"looking up network {ref}", conn.network.find_network, ref, ignore_missing=False)
    if network is None:
        raise EngineError(f"network {ref!r} does not exist in the cloud")
    return network


def _room(limit: int | None, used: int | None, wanted: int) -> bool:
    if limit is None or limit < 0:
        return True
    return (used or 0) + wanted <= limit


def _shortfall(label: str, limit: int | None, used: int | None, wanted: int) -> str | None:
    """"<label>: need N, M of L left" when the quota leaves no room for `wanted` more (None when it does,
    or nothing more is wanted; a negative limit is unlimited)."""
    if wanted <= 0 or _room(limit, used, wanted):
        return None
    return f"{label}: need {wanted}, {max((limit or 0) - (used or 0), 0)} of {limit} left"


def _refuse(shortfalls: Iterable[str | None]) -> None:
    found = [s for s in shortfalls if s]
    if found:
        raise QuotaExceeded("quota exceeded: " + "; ".join(found))


def _absolute_limits(proxy: Any, what: str) -> dict[str, Any]:
    """GET /limits' `absolute` block as plain JSON: the same request as the SDK's get_limits, without building
    its Limits resources (a measurable share of a create's CPU in the task manager)."""
    body = read_json(proxy, "/limits", f"reading {what} limits") or {}
    return dict((body.get("limits") or {}).get("absolute") or {})


def _compute_shortfalls(conn: Connection, instances: int, cores: int, ram: int) -> list[str | None]:
    nova = _absolute_limits(conn.compute, "compute")
    return [_shortfall("instances", nova.get("maxTotalInstances"), nova.get("totalInstancesUsed"), instances),
            _shortfall("cores", nova.get("maxTotalCores"), nova.get("totalCoresUsed"), cores),
            _shortfall("RAM (MB)", nova.get("maxTotalRAMSize"), nova.get("totalRAMUsed"), ram)]


def _volume_shortfalls(conn: Connection, volumes: int, gigabytes: int) -> list[str | None]:
    cinder = _absolute_limits(conn.block_storage, "volume")
    return [_shortfall("volumes", cinder.get("maxTotalVolumes"), cinder.get("totalVolumesUsed"), volumes),
            _shortfall("volume gigabytes", cinder.get("maxTotalVolumeGigabytes"), cinder.get("totalGigabytesUsed"),
                       gigabytes)]


def check_quota(conn: Connection, flavor: Any, volume_size: int, instances: int = 1) -> None:
    """Nova's and Cinder's absolute limits must leave room for the new server and volume (QuotaExceeded)."""
    _refuse([*_compute_shortfalls(conn, instances, flavor.vcpus * instances, flavor.ram * instances),
             *_volume_shortfalls(conn, instances, volume_size * instances)])


def check_growth_quota(conn: Connection, *, cores: int = 0, ram: int = 0, gigabytes: int = 0) -> None:
    """Room for an existing instance to grow (a bigger flavor, a bigger volume), checked before the change is
    accepted rather than refused by the cloud mid-operation. Reads only the services that would grow."""
    shortfalls: list[str | None] = []
    if cores > 0 or ram > 0:
        shortfalls += _compute_shortfalls(conn, 0, cores, ram)
    if gigabytes > 0:
        shortfalls += _volume_shortfalls(conn, 0, gigabytes)
    _refuse(shortfalls)


NEW_GROUP_RULES = 2  # Neutron gives every new security group two egress rules (IPv4 and IPv6)
DEFAULT_GROUP_RULES = 4  # and a project's `default` group four (those two, plus ingress from itself)


def _network_quota(conn: Connection) -> dict[str, Any] | None:
    """Neutron's quota details for Hearth's project (`{"security_group": {"limit": 50, "used": 1}, ...}`);
    None when the cloud will not tell (no quota_details extension: 404; a policy that forbids it: 403):
    Neutron then still enforces its quota, later, with its own 409."""
    body = read_json(conn.network, f"/quotas/{conn.current_project_id}/details", "reading network quota",
                     missing=(403, 404))
    return None if body is None else dict(body.get("quota") or {})


def check_network_quota(conn: Connection, groups: int = 0, rules: int = 0, ports: int = 0,
                        floating_ips: int = 0) -> None:
    """Neutron's quotas must leave room for `groups` new security groups (each with Neutron's own egress
    rules, counted here), `rules` new ingress rules, `ports` new ports and `floating_ips` new floating IPs. The
    project's `default` group counts against both group and rule quotas; a project that has none yet gets it
    on first use."""
    quota = _network_quota(conn)
    if quota is None:
        return

    def used(resource: str) -> tuple[int | None, int]:
        entry = quota.get(resource) or {}
        if not isinstance(entry, dict):
            return None, 0
        return entry.get("limit"), int(entry.get("used") or 0) + int(entry.get("reserved") or 0)

    group_limit, groups_used = used("security_group")
    rule_limit, rules_used = used("security_group_rule")
    port_limit, ports_used = used("port")
    ip_limit, ips_used = used("floatingip")
    wanted_groups, wanted_rules = groups, rules + NEW_GROUP_RULES * groups
    if groups and groups_used == 0:  # no default group yet: Neutron makes it along with ours
        wanted_groups += 1
        wanted_rules += DEFAULT_GROUP_RULES
    _refuse([_shortfall("security groups", group_limit, groups_used, wanted_groups),
             _shortfall("security group rules", rule_limit, rules_used, wanted_rules),
             _shortfall("ports", port_limit, ports_used, ports),
             _shortfall("floating IPs", ip_limit, ips_used, floating_ips)])


def _zones(proxy: Any, what: str) -> dict[str, bool]:
    """A service's availability zones (GET /os-availability-zone, allowed to every user) -> available."""
    body = read_json(proxy, "/os-availability-zone", f"listing {what} availability zones") or {}
    return {str(z.get("zoneName")): bool((z.get("zoneState") or {}).get("available"))
            for z in body.get("availabilityZoneInfo") or [] if isinstance(z, dict)}


def check_availability_zone(conn: Connection, zone: str) -> None:
    """Hearth puts the server (Nova) and its data volume (Cinder) in `zone`: both services must have it, and
    it must be available. Zone lists are cached like flavors (they change about as rarely), but a zone the
    cached list lacks (or shows unavailable) is looked up afresh before it is refused."""
    for proxy, what in ((conn.compute, "compute"), (conn.block_storage, "volume")):
        zones: dict[str, bool] = _cached_lookup(conn, f"{what} zones", "",
                                                lambda proxy=proxy, what=what: _zones(proxy, what))
        if not zones.get(zone):
            zones = _zones(proxy, what)
        if zone not in zones:
            known = ", ".join(sorted(zones)) or "none"
            raise EngineError(f"availability zone {zone!r} does not exist in the {what} service (its zones: "
                              f"{known})")
        if not zones[zone]:
            raise EngineError(f"availability zone {zone!r} is not available in the {what} service")


def preflight(conn: Connection, spec: InstanceSpec) -> Resolved:
    """Check the flavor, image, network and availability zone exist, and that Nova's, Cinder's and Neutron's
    quotas leave room for the server, its volume, its security group with its rules, and its port; creates
    nothing. Refusals are EngineError (QuotaExceeded for quota), a cloud that cannot answer TransientError.

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
    if spec.is_public:
        resolve_network(conn, spec.public_network)
    if spec.availability_zone:
        check_availability_zone(conn, spec.availability_zone)
    check_quota(conn, flavor, spec.volume_size)
    check_network_quota(conn, groups=1, rules=len(spec.rules), ports=1, floating_ips=1 if spec.is_public else 0)
    return Resolved(flavor=flavor, image=image, network=network)


def _flavor_field(flavor: Any, key: str) -> Any:
    """A field of a server's flavor, whether an SDK object or plain JSON (a dict)."""
    if flavor is None:
        return None
    return flavor.get(key) if isinstance(flavor, dict) else getattr(flavor, key, None)


def _embedded_flavor_name(server: Any) -> str | None:
    """From Nova 2.47 the server embeds its flavor by name (original_name) and has no id; openstacksdk
    then fills the flavor's `id` with that name, so the name decides which form we got."""
    return _flavor_field(getattr(server, "flavor", None), "original_name")


def server_has_flavor(server: Any, flavor: Any) -> bool:
    """Whether the server runs `flavor` (a resolved Flavor), whichever form Nova reported it in."""
    name = _embedded_flavor_name(server)
    if name is not None:
        return name == flavor.name
    current = getattr(server, "flavor", None)
    return current is not None and _flavor_field(current, "id") == flavor.id


def server_flavor_id(conn: Connection, server: Any) -> str | None:
    """The server's flavor id, resolving the name newer microversions report."""
    name = _embedded_flavor_name(server)
    if name is None:
        return _flavor_field(getattr(server, "flavor", None), "id")
    flavor = get_or_none(f"looking up flavor {name}", conn.compute.find_flavor, name, ignore_missing=False)
    return flavor.id if flavor is not None else None


# --------------------------------------------------------------------------------------------------
# Security group rules.


def ingress_rules(conn: Connection, group_id: str) -> list[Any]:
    """The group's ingress rules as Neutron holds them (egress rules are Neutron's defaults, not Hearth's)."""
    return retried(f"listing rules of security group {group_id}", lambda: [
        r for r in conn.network.security_group_rules(security_group_id=group_id) if r.direction == "ingress"])


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


def shape_text(shape: tuple[Any, ...]) -> str:
    """The one way Hearth prints a rule, from its normalized shape: "tcp 5432-5432 from 10.0.0.0/24" (a rule
    without ports: "icmp from ...", any protocol: "any from ...")."""
    _ethertype, protocol, pmin, pmax, cidr = shape
    ports = "" if pmin is None and pmax is None else f" {pmin}-{pmax}"
    return f"{protocol or 'any'}{ports} from {cidr}"


def rule_text(rule: RuleSpec) -> str:
    """A Hearth rule as text (see shape_text); a rule whose CIDR is invalid is printed as given."""
    try:
        return shape_text(rule_shape(rule))
    except EngineError:
        return f"{rule.protocol} {rule.from_port}-{rule.to_port} from {rule.cidr}"


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
