"""The Cinder service object, its route registry and the request helpers every volume route module shares.

Route modules register with `route(path, ...)`; `routes.py` mounts each path twice, as `/volume/v3/...` and as
`/volume/v3/{project_id}/...`, once every module has been imported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from openstack_fakecloud.errors import BadRequest, Forbidden, NotFound
from openstack_fakecloud.framework import Handler, Microversions, RequestContext, Service
from openstack_fakecloud.volume.backend import VolumeBackend

service = Service(
    "volume",
    "/volume",
    error_style="nova",
    microversions=Microversions("volume", (3, 0)),
    max_version=lambda cloud: cloud.volume_max,
)

PENDING: list[tuple[str, tuple[str, ...], str, Handler]] = []


def route(path: str, *methods: str, op: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        PENDING.append((path, methods, op, handler))
        return handler

    return register


def backend(ctx: RequestContext) -> VolumeBackend:
    return ctx.cloud.volume


def scope(ctx: RequestContext) -> str | None:
    """The project whose resources a request may touch by id (admins: any)."""
    return None if ctx.is_admin else ctx.project_id


def base(ctx: RequestContext, project_id: str) -> str:
    return ctx.url(f"/volume/v3/{project_id}")


def int_field(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit())):
        raise BadRequest(f"Invalid input for field/attribute {name}. Value: {value}. {value!r} is not of type "
                         "'integer', 'string'")
    number = int(value)
    if number < minimum:
        raise BadRequest(f"Invalid input for field/attribute {name}. Value: {number}. {number} is less than the "
                         f"minimum of {minimum}")
    return number


def truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on", "t", "y")


def require_version(ctx: RequestContext, version: str) -> None:
    """Cinder answers 404 for a resource the negotiated microversion does not have yet."""
    if not ctx.at_least(version):
        raise NotFound("The resource could not be found.")


def require_admin(ctx: RequestContext, rule: str) -> None:
    if not ctx.is_admin:
        raise Forbidden(f"Policy doesn't allow {rule} to be performed.")


def body_dict(ctx: RequestContext, key: str) -> dict[str, Any]:
    """`body[key]` as a dict, else Cinder's schema refusal (400)."""
    value = ctx.body.get(key) if isinstance(ctx.body, dict) else None
    if not isinstance(value, dict):
        raise BadRequest(f"Invalid input for field/attribute {key}. Value: {value}. {value!r} is not of type "
                         "'object'")
    return value


def _quota_value(name: str, value: Any) -> int:
    try:
        number = int(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        number = None
    if number is None or number < -1:
        raise BadRequest(f"Invalid input received: Quota limit {value} for {name} must be -1 or greater.")
    return number


def quota_values(spec: dict[str, Any]) -> dict[str, int]:
    """A quota-set body's limits (`tenant_id`/`id`, which some clients echo, are ignored)."""
    return {k: _quota_value(k, v) for k, v in spec.items() if k not in ("tenant_id", "id")}
