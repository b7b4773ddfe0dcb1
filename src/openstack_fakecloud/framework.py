"""The wire layer every service shares: routes, request context, microversions, auth, faults, replies.

A service declares its routes with `@service.route(path, "GET", op="server.show")`. The handler gets a
`RequestContext` and returns a `Reply` (or raises a `CloudError`). Handlers are plain functions that
run on the event loop thread, so the cloud's state is only ever touched from that one thread.
"""

from __future__ import annotations

import asyncio
import logging
import operator
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar
from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from openstack_fakecloud.errors import BadRequest, CloudError, ErrorStyle, Forbidden, NotAcceptable, Unauthorized
from openstack_fakecloud.faults import FAILING_ACTIONS, LATENCY_ACTIONS, DropConnection, FaultWhen
from openstack_fakecloud.logs import access_log

if TYPE_CHECKING:
    from openstack_fakecloud.identity.backend import Token
    from openstack_fakecloud.state import Cloud


Version = tuple[int, int]


def parse_version(text: str) -> Version:
    major, _, minor = text.strip().partition(".")
    return int(major), int(minor)


def format_version(version: Version) -> str:
    return f"{version[0]}.{version[1]}"


@dataclass(frozen=True)
class Microversions:
    """How a service negotiates microversions (Nova: `compute`, Cinder: `volume`)."""

    header_service: str
    minimum: Version
    legacy_header: str | None = None

    def negotiate(self, request: Request, maximum: Version) -> Version:
        raw = None
        header = request.headers.get("openstack-api-version")
        if header:
            for part in header.split(","):
                name, _, value = part.strip().partition(" ")
                if name.lower() == self.header_service:
                    raw = value.strip()
        if raw is None and self.legacy_header:
            raw = request.headers.get(self.legacy_header)
        if raw is None:
            return self.minimum
        if raw.lower() == "latest":
            return maximum
        try:
            version = parse_version(raw)
        except ValueError:
            raise BadRequest(f"Invalid API version request string {raw!r}.") from None
        if version < self.minimum or version > maximum:
            raise NotAcceptable(
                f"Version {raw} is not supported by the API. Minimum is "
                f"{format_version(self.minimum)} and maximum is {format_version(maximum)}."
            )
        return version


@dataclass
class Reply:
    """What a handler returns: a status, an optional JSON body and extra headers."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    content_type: str = "application/json"


@dataclass
class RequestContext:
    request: Request
    cloud: Cloud
    token: Token | None
    path: dict[str, str]
    body: Any
    microversion: Version | None
    request_id: str = ""  # this request's own id, the one its answer's request-id headers carry
    global_request_id: str | None = None  # a caller's valid `X-OpenStack-Request-ID`, kept, never echoed

    @property
    def query(self):  # starlette QueryParams: multi-valued, ordered
        return self.request.query_params

    @property
    def project_id(self) -> str:
        assert self.token is not None and self.token.project_id is not None
        return self.token.project_id

    @property
    def is_admin(self) -> bool:
        return self.token is not None and "admin" in self.token.roles

    def all_projects(self) -> bool:
        """True when an admin asked to see every project (`all_tenants` / `all_projects`)."""
        if not self.is_admin:
            return False
        for key in ("all_tenants", "all_projects"):
            value = self.query.get(key)
            if value is not None and value.lower() not in ("0", "false", "no"):
                return True
        return False

    def at_least(self, version: str) -> bool:
        return self.microversion is not None and self.microversion >= parse_version(version)

    def require_body(self, key: str) -> dict[str, Any]:
        if not isinstance(self.body, dict) or not isinstance(self.body.get(key), dict):
            raise BadRequest(f"Missing or malformed '{key}' in the request body.")
        return self.body[key]

    def url(self, path: str = "") -> str:
        return self.cloud.base_url + path


Handler = Callable[[RequestContext], Reply]
T = TypeVar("T")


# actions and collections: the two request shapes every OpenStack service shares ----------------------------
def action_of(body: Any, actions: Mapping[str, T], malformed: str,
              ignore_extra_keys: bool = False) -> tuple[str, T, Any]:
    """Dispatch OpenStack's `POST /<resources>/{id}/action`, whose body is `{"<action-name>": {...args}}`.

    Every service with an action URL answers the same shapes the same way, so the checks live here once.
    Returns (name, the action's handler from `actions`, its arguments). A body that is not one key is a
    400 with the service's own `malformed` message; an unknown name is the 400 "There is no such action: …"
    that Nova and Cinder answer. `ignore_extra_keys` keeps fakecloud's Nova leniency: it has always
    dispatched on a body's first key and ignored the rest, where Cinder refuses such a body as malformed.
    """
    if not isinstance(body, dict) or not body or (len(body) != 1 and not ignore_extra_keys):
        raise BadRequest(malformed)
    name, args = next(iter(body.items()))
    handler = actions.get(name)
    if handler is None:
        raise BadRequest(f"There is no such action: {name}")
    return name, handler, args


NextHref = Callable[[RequestContext, str, int], str]


@dataclass(frozen=True)
class Collection(Generic[T]):
    """One service's list/detail listing: OpenStack's `limit` + `marker` paging and its link to the next page.

    Nova, Cinder and Glance page the same way and differ only in details, so the paging lives here once and
    each listing declares its details as fields (values for Nova, Cinder, Glance in brackets):

    - `key`: the body's list key; a `<key>_links` list carries the next link ("servers", "volumes").
    - `parse_limit`: the raw `?limit=` as a count, raising the service's own 400 for a bad one; it may cap
      the count (Nova's osapi_max_limit).
    - `unknown_marker`: the error for a marker that is not in the listing (Nova and Glance 400, Cinder 404).
    - `next_href`: (ctx, the next page's marker, the limit) -> the link; `query_href` builds the common
      "this request's query with the new marker" form.
    - `link`: "links" renders `<key>_links: [{"rel": "next", "href": ...}]` (Nova, Cinder), "next" a bare
      `next: href` (Glance).
    - `link_when`: "more" links when items follow the page (Glance), "full" whenever the page came back full,
      even if it was the last (Nova, Cinder).
    - `blank_marker`: True looks `?marker=` up like any marker (Nova: it is not found); False ignores it.

    `page()` pages a whole listing (marker first, then limit: a bad marker wins over a bad limit, as in
    Cinder and Glance; call `limit()` first where the limit must be checked first, as Nova does). Where the
    backend already cut the page (Nova's servers walk only as far as a page needs), `links()` renders the
    link alone. Neutron (src/openstack_fakecloud/network) does not use this yet; its listings can adopt it by declaring
    a Collection with the Neutron details (`<key>_links`, its own marker error) and calling `page()`.
    """

    key: str
    parse_limit: Callable[[str], int]
    unknown_marker: Callable[[str], CloudError]
    next_href: NextHref
    link: Literal["links", "next"] = "links"
    link_when: Literal["more", "full"] = "more"
    blank_marker: bool = False

    def limit(self, ctx: RequestContext) -> int | None:
        """The request's page size; None when it asked for none (the whole listing)."""
        raw = ctx.query.get("limit")
        return None if raw is None else self.parse_limit(raw)

    def page(self, ctx: RequestContext, items: Sequence[T], id_of: Callable[[T], str] = operator.attrgetter("id"),
             ) -> tuple[list[T], dict[str, Any]]:
        """This request's page of an ordered listing and the fields that link the next page ({} on the last)."""
        marker = ctx.query.get("marker")
        if marker or (marker is not None and self.blank_marker):
            index = next((i for i, item in enumerate(items) if id_of(item) == marker), None)
            if index is None:
                raise self.unknown_marker(marker)
            items = items[index + 1:]
        limit = self.limit(ctx)
        if limit is None:
            return list(items), {}
        page = list(items[:limit])
        return page, self.links(ctx, page, limit, more=len(items) > limit, id_of=id_of)

    def links(self, ctx: RequestContext, page: Sequence[T], limit: int, more: bool = False,
              id_of: Callable[[T], str] = operator.attrgetter("id")) -> dict[str, Any]:
        """The body fields that link the page after `page` ({} when none is linked). `more`: whether items
        follow the page; only the "more" rule reads it."""
        linked = (len(page) >= limit) if self.link_when == "full" else more
        if not page or limit <= 0 or not linked:
            return {}
        href = self.next_href(ctx, id_of(page[-1]), limit)
        if self.link == "next":
            return {"next": href}
        return {f"{self.key}_links": [{"rel": "next", "href": href}]}


def query_href(ctx: RequestContext, url: str, marker: str, repeated: bool = True) -> str:
    """`url` with this request's own query (filters, sort, limit) and the next page's marker last.

    `repeated=False` keeps one value per parameter (the last, which is the one a listing filtered on) where
    a service links so (Cinder)."""
    pairs = ctx.query.multi_items() if repeated else ctx.query.items()
    params = [(k, v) for k, v in pairs if k != "marker"]
    params.append(("marker", marker))
    return url + "?" + urlencode(params)


REQUEST_ID_HEADER = "X-OpenStack-Request-ID"
_REQUEST_ID = re.compile(r"^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class PayloadTooLarge(CloudError):
    status = 413


async def _bounded_body(request: Request, limit: int) -> bytes:
    """A raw body, refused as soon as it passes `limit` bytes (never held whole when it is too big)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The request body of {declared} bytes exceeds the limit of {limit} bytes.")
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise PayloadTooLarge(f"The request body exceeds the limit of {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def new_request_id() -> str:
    return "req-" + str(uuid.uuid4())


def global_request_id(request: Request) -> str | None:
    """The caller's `X-OpenStack-Request-ID` when it is a valid `req-<uuid>` (as oslo.context checks it).

    OpenStack services keep it as the global id that ties one user operation across services, and answer
    with their own local id, so the header is recorded, not echoed; an invalid value is ignored."""
    value = request.headers.get(REQUEST_ID_HEADER)
    return value if value is not None and _REQUEST_ID.match(value) else None


def _log_access(service: str, request: Request, status: int, duration_ms: float, request_id: str,
                caller_id: str | None) -> None:
    """One access-log line. The path only: a query may carry secrets (a password filter, a signed URL), and
    no header but the two request ids, so never a token. Status 0 is a dropped connection (no answer)."""
    path = request.url.path
    access_log.info(
        "%s %s %s %.1fms %s global=%s", request.method, path, status, duration_ms, request_id, caller_id or "-",
        extra={"service": service, "method": request.method, "path": path, "status": status,
               "duration_ms": round(duration_ms, 3), "request_id": request_id, "global_request_id": caller_id},
    )


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    content = b"" if body is None else orjson.dumps(body)
    return Response(content, status_code=status, headers=headers, media_type="application/json")


@dataclass
class _RouteSpec:
    path: str
    methods: tuple[str, ...]
    op: str
    handler: Handler
    auth: bool
    max_bytes: int | None = None  # the body is raw bytes of at most this size (an upload), not JSON


class Service:
    """One OpenStack service's HTTP surface, mounted under a path prefix."""

    def __init__(
        self,
        name: str,
        prefix: str,
        error_style: ErrorStyle,
        microversions: Microversions | None = None,
        max_version: Callable[[Cloud], Version] | None = None,
        accounted: bool = True,
        faulted: bool = True,
        request_id_header: str | None = None,
    ) -> None:
        self.name = name
        self.prefix = prefix
        self.error_style = error_style
        self.microversions = microversions
        self.max_version = max_version
        self.accounted = accounted
        self.faulted = faulted  # False for the admin API: a `*` rule must never lock out the call that clears it
        # a service's own name for the request-id header, sent besides X-OpenStack-Request-ID
        # (Nova: x-compute-request-id), with the same value
        self.request_id_header = request_id_header
        self._specs: list[_RouteSpec] = []

    def route(self, path: str, *methods: str, op: str, auth: bool = True,
              max_bytes: int | None = None) -> Callable[[Handler], Handler]:
        """Register `handler` for `path`. `max_bytes`: the route takes a raw upload of at most that many bytes
        (`ctx.body` is the bytes; a larger one is refused with 413 as soon as it passes the bound)."""

        def register(handler: Handler) -> Handler:
            self._specs.append(_RouteSpec(path, methods, op, handler, auth, max_bytes))
            return handler

        return register

    def routes(self, cloud: Cloud) -> list[BaseRoute]:
        """Starlette routes with the prefix applied (flat, so `/compute/v2.1` and `/compute/v2.1/` both route)."""
        return [
            Route(self.prefix + spec.path, self._endpoint(cloud, spec), methods=list(spec.methods))
            for spec in self._specs
        ]

    def _endpoint(self, cloud: Cloud, spec: _RouteSpec):
        service = self
        route_key = f"{self.prefix}{spec.path}"

        async def endpoint(request: Request) -> Response:
            started = time.perf_counter()
            request_id = new_request_id()
            headers = {REQUEST_ID_HEADER: request_id}
            if service.request_id_header:
                headers[service.request_id_header] = request_id
            status = 500
            try:
                reply, extra = await service._handle(cloud, spec, request, request_id)
                headers.update(extra)
                headers.update(reply.headers)
                status = reply.status
                if reply.raw is not None:
                    return Response(reply.raw, status_code=status, headers=headers, media_type=reply.content_type)
                if status == 204 or (reply.body is None and status in (202, 200)):
                    return Response(b"" if status != 204 else None, status_code=status, headers=headers)
                return json_response(status, reply.body, headers)
            except CloudError as err:
                status = err.status
                style = "keystone" if isinstance(err, Unauthorized) else service.error_style
                return json_response(err.status, err.body(style), headers)
            except DropConnection:
                status = 0  # the request log shows "no answer"
                return _drop_connection(request)
            finally:
                duration_ms = (time.perf_counter() - started) * 1000.0
                caller_id = global_request_id(request)
                if service.accounted:
                    cloud.accounting.record(service.name, request.method, route_key, status, request,
                                            request_id, caller_id, duration_ms)
                if access_log.isEnabledFor(logging.INFO):
                    _log_access(service.name, request, status, duration_ms, request_id, caller_id)

        return endpoint

    async def _handle(self, cloud: Cloud, spec: _RouteSpec, request: Request,
                      request_id: str) -> tuple[Reply, dict[str, str]]:
        extra: dict[str, str] = {}
        token = None
        if spec.auth:
            token = cloud.identity.validate(request.headers.get("x-auth-token"))
            url_project = request.path_params.get("project_id")
            if url_project and url_project != token.project_id and "admin" not in token.roles:
                raise Forbidden(f"Project {url_project} in the URL does not match the token's project.")
        project_id = token.project_id if token else None
        await self._request_faults(cloud, spec, project_id, "before")
        version = None
        if self.microversions is not None and self.max_version is not None:
            version = self.microversions.negotiate(request, self.max_version(cloud))
            text = format_version(version)
            extra["OpenStack-API-Version"] = f"{self.microversions.header_service} {text}"
            extra["Vary"] = "OpenStack-API-Version"
            if self.microversions.legacy_header:
                extra[self.microversions.legacy_header] = text
        body: Any = None
        if spec.max_bytes is not None:
            body = await _bounded_body(request, spec.max_bytes)
        elif request.method in ("POST", "PUT", "PATCH"):
            raw = await request.body()
            if raw:
                try:
                    body = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    raise BadRequest("Malformed request body: it is not valid JSON.") from None
        ctx = RequestContext(request, cloud, token, dict(request.path_params), body, version, request_id,
                             global_request_id(request))
        reply = spec.handler(ctx)
        await self._request_faults(cloud, spec, project_id, "after")
        return reply, extra

    async def _request_faults(self, cloud: Cloud, spec: _RouteSpec, project_id: str | None, when: FaultWhen) -> None:
        """Latency and failure are drawn separately, so a slow request can also fail (or be dropped)."""
        if not self.faulted:
            return
        delay = cloud.faults.take(self.name, spec.op, LATENCY_ACTIONS, project_id, when)
        if delay is not None:
            await asyncio.sleep(delay.latency_ms / 1000.0)
        fault = cloud.faults.take(self.name, spec.op, FAILING_ACTIONS, project_id, when)  # disconnect raises
        if fault is not None:
            cloud.raise_fault(self.name, spec.op, fault)


DROP_CONNECTION = "fakecloud.drop_connection"  # the ASGI scope extension fakecloud's server provides


def _drop_connection(request: Request) -> Response:
    """Reset the client's connection through the server's hook; the returned response is never sent.

    Without the hook (another ASGI server) no reset is possible, so say so with a 502 rather than pretend."""
    drop = request.scope.get("extensions", {}).get(DROP_CONNECTION)
    if drop is None:
        return json_response(502, {"error": "this server cannot drop connections (disconnect fault)"})
    drop()
    return Response(status_code=500)
