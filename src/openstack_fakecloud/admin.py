"""The admin API under /_fakecloud: faults, clock, request accounting, inventory, catalog, reset.

It is fakecloud's own control surface (like LocalStack's internal endpoints), not an OpenStack API,
so it needs no token: fakecloud binds to loopback and is a test tool. Fault rules never apply to it,
so a `*` rule cannot lock out the call that removes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from openstack_fakecloud.compute import views as compute_views
from openstack_fakecloud.config import PROFILES, CatalogEntry, Delays
from openstack_fakecloud.errors import BadRequest, NotFound
from openstack_fakecloud.faults import FaultRule
from openstack_fakecloud.framework import Reply, RequestContext, Service, format_version, parse_version
from openstack_fakecloud.image.views import image_view
from openstack_fakecloud.network import views as network_views
from openstack_fakecloud.orchestration.views import stack_summary
from openstack_fakecloud.volume.views import volume_detail

if TYPE_CHECKING:
    from openstack_fakecloud.state import Cloud

service = Service("admin", "/_fakecloud", error_style="keystone", accounted=False, faulted=False)


def _validated(model, data):
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as err:
        raise BadRequest(f"Invalid {model.__name__}: {err}") from None


@service.route("/health", "GET", op="health", auth=False)
def health(ctx: RequestContext) -> Reply:
    return Reply(200, {"status": "ok", "pending_transitions": ctx.cloud.scheduler.pending()})


@service.route("/reset", "POST", op="reset", auth=False)
def reset(ctx: RequestContext) -> Reply:
    ctx.cloud.reset()
    return Reply(204)


@service.route("/save", "POST", op="save", auth=False)
def save(ctx: RequestContext) -> Reply:
    path = (ctx.body or {}).get("path") if isinstance(ctx.body, dict) else None
    if not path:
        raise BadRequest("Give the file to save to as {'path': ...}.")
    ctx.cloud.save(path)
    return Reply(204)


@service.route("/faults", "GET", op="faults.list", auth=False)
def list_faults(ctx: RequestContext) -> Reply:
    return Reply(200, {"faults": [r.model_dump() for r in ctx.cloud.faults.rules()]})


@service.route("/faults", "POST", op="faults.add", auth=False)
def add_fault(ctx: RequestContext) -> Reply:
    """A FaultRule as JSON, e.g. {"service": "compute", "action": "disconnect", "probability": 0.05}."""
    rule = _validated(FaultRule, ctx.body)
    ctx.cloud.faults.add(rule)
    return Reply(201, {"fault": rule.model_dump()})


@service.route("/faults", "DELETE", op="faults.clear", auth=False)
def clear_faults(ctx: RequestContext) -> Reply:
    ctx.cloud.faults.clear()
    return Reply(204)


@service.route("/faults/{id}", "DELETE", op="faults.remove", auth=False)
def remove_fault(ctx: RequestContext) -> Reply:
    if not ctx.cloud.faults.remove(ctx.path["id"]):
        raise NotFound(f"No fault rule {ctx.path['id']}.")
    return Reply(204)


@service.route("/clock", "GET", op="clock.show", auth=False)
def show_clock(ctx: RequestContext) -> Reply:
    clock = ctx.cloud.clock
    return Reply(200, {"now": clock.isoformat(), "offset": clock.offset, "frozen": clock.frozen})


@service.route("/clock", "POST", op="clock.change", auth=False)
def change_clock(ctx: RequestContext) -> Reply:
    """{"advance": seconds} moves time forward; {"frozen": true|false} stops or restarts it."""
    body = ctx.body if isinstance(ctx.body, dict) else {}
    clock = ctx.cloud.clock
    if "frozen" in body:
        clock.freeze() if body["frozen"] else clock.unfreeze()
    if "advance" in body:
        try:
            clock.advance(float(body["advance"]))
        except (TypeError, ValueError) as err:
            raise BadRequest(f"advance must be a non-negative number of seconds: {err}") from None
        ran = ctx.cloud.scheduler.run_due()
    else:
        ran = 0
    ctx.cloud.scheduler.kick()
    return Reply(200, {"now": clock.isoformat(), "offset": clock.offset, "frozen": clock.frozen,
                       "transitions_run": ran})


@service.route("/delays", "GET", op="delays.show", auth=False)
def show_delays(ctx: RequestContext) -> Reply:
    return Reply(200, {"delays": ctx.cloud.delays.model_dump()})


@service.route("/delays", "PUT", op="delays.change", auth=False)
def change_delays(ctx: RequestContext) -> Reply:
    """{"profile": "realistic"} or {"delays": {...}} (unnamed transitions keep their value)."""
    body = ctx.body if isinstance(ctx.body, dict) else {}
    if "profile" in body:
        if body["profile"] not in PROFILES:
            raise BadRequest(f"Unknown profile {body['profile']!r}; choose one of {sorted(PROFILES)}.")
        ctx.cloud.delays = PROFILES[body["profile"]].model_copy()
    if "delays" in body:
        merged = {**ctx.cloud.delays.model_dump(), **(body["delays"] or {})}
        ctx.cloud.delays = _validated(Delays, merged)
    return Reply(200, {"delays": ctx.cloud.delays.model_dump()})


@service.route("/microversions", "GET", op="microversions.show", auth=False)
def show_microversions(ctx: RequestContext) -> Reply:
    cloud = ctx.cloud
    return Reply(200, {"compute": format_version(cloud.compute_max), "volume": format_version(cloud.volume_max)})


@service.route("/microversions", "PUT", op="microversions.change", auth=False)
def change_microversions(ctx: RequestContext) -> Reply:
    """Lower (or raise) the advertised maximum, e.g. {"volume": "3.27"} for the detach-extend-attach path."""
    body = ctx.body if isinstance(ctx.body, dict) else {}
    cloud = ctx.cloud
    try:
        if "compute" in body:
            cloud.compute_max = parse_version(str(body["compute"]))
        if "volume" in body:
            cloud.volume_max = parse_version(str(body["volume"]))
    except ValueError:
        raise BadRequest("Microversions look like '2.79' or '3.42'.") from None
    return show_microversions(ctx)


@service.route("/requests", "GET", op="requests.show", auth=False)
def show_requests(ctx: RequestContext) -> Reply:
    """Counts and the request log after `?since=<seq>`; `?request_id=req-...` keeps the requests whose global id
    (the caller's X-OpenStack-Request-ID) or local id (fakecloud's answer) is that one: the cloud calls one
    Hearth request caused, each with its status and duration_ms."""
    try:
        since = int(ctx.query.get("since", "0"))
    except ValueError:
        raise BadRequest("since must be a request sequence number (an integer).") from None
    summary = ctx.cloud.accounting.summary(since, ctx.query.get("request_id") or None)
    if ctx.query.get("log", "1") in ("0", "false"):
        summary.pop("requests")
    return Reply(200, summary)


@service.route("/requests", "DELETE", op="requests.reset", auth=False)
def reset_requests(ctx: RequestContext) -> Reply:
    ctx.cloud.accounting.reset()
    return Reply(204)


@service.route("/inventory", "GET", op="inventory", auth=False)
def inventory(ctx: RequestContext) -> Reply:
    """Every resource, or one project's (`?project=demo`, by name or id)."""
    project = ctx.query.get("project")
    project_id = ctx.cloud.identity.find_project(project).id if project else None
    return Reply(200, {"project_id": project_id, "resources": inventory_of(ctx.cloud, project_id)})


def inventory_of(cloud: Cloud, project_id: str | None) -> dict[str, list[dict[str, Any]]]:
    """Every resource of a project (all projects when None), each as its service's admin view shows it: what
    tests and operators compare with what Hearth records, and what a leak check counts."""

    def mine(owner: str | None) -> bool:
        return project_id is None or owner == project_id

    network, secgroups = cloud.network, cloud.network.secgroups
    return {
        "images": [image_view(i) for i in cloud.image.images.values() if mine(i.owner)],
        "networks": [network_views.network(n) for n in network.topology.networks.values() if mine(n.project_id)],
        "subnets": [network_views.subnet(s) for s in network.topology.subnets.values() if mine(s.project_id)],
        "ports": [network_views.port(p) for p in network.ports.by_id.values() if mine(p.project_id)],
        "security_groups": [
            network_views.security_group(g, secgroups.rules_of_group(g.id), secgroups.is_default_group(g.id))
            for g in secgroups.groups.values() if mine(g.project_id)
        ],
        "routers": [network_views.router(r, network.router_gateway_port(r), True)
                    for r in network.routers.by_id.values() if mine(r.project_id)],
        "floating_ips": [network_views.floating_ip(f) for f in network.floatingips.by_id.values()
                         if mine(f.project_id)],
        "volumes": [volume_detail(v, admin=True) for v in cloud.volume.list_volumes(project_id)],
        "servers": [compute_views.server_detail(cloud, s, cloud.compute_max, True)
                    for s in cloud.compute.servers.values() if mine(s.project_id)],
        "stacks": [stack_summary(s, cloud.base_url + f"/heat-api/v1/{s.project_id}")
                   for s in cloud.orchestration.stacks.values() if mine(s.project_id) and not s.deleted],
    }


@service.route("/guests", "GET", op="guests.list", auth=False)
def list_guests(ctx: RequestContext) -> Reply:
    """The guests running now: their server, kind, data disk, addresses and live connections."""
    return Reply(200, {"guests": ctx.cloud.guests.status()})


@service.route("/volumes/{id}/usage", "GET", op="volumes.usage", auth=False)
def volume_usage(ctx: RequestContext) -> Reply:
    """A volume's used space on its backing store: what a guest agent reports (Trove's `volume.used`)."""
    volume = ctx.cloud.volume.volumes.get(ctx.path["id"])
    if volume is None:
        raise NotFound(f"Volume {ctx.path['id']} could not be found.")
    used = ctx.cloud.guests.volume_used(volume.id)
    return Reply(200, {"volume_id": volume.id, "size_gb": volume.size, "used_bytes": used,
                       "used_gb": round(used / (1 << 30), 3)})


@service.route("/catalog", "GET", op="catalog.list", auth=False)
def list_catalog(ctx: RequestContext) -> Reply:
    return Reply(200, {"extra": [e.model_dump() for e in ctx.cloud.extra_catalog],
                       "disabled": sorted(ctx.cloud.disabled_services)})


@service.route("/catalog", "POST", op="catalog.register", auth=False)
def register_catalog(ctx: RequestContext) -> Reply:
    """Add a service to the catalog, e.g. {"type": "database", "name": "hearth", "url": "http://...:8779/v1.0/{project_id}"}."""
    entry = _validated(CatalogEntry, ctx.body)
    ctx.cloud.register_catalog(entry)
    return Reply(201, {"entry": entry.model_dump()})


@service.route("/users", "POST", op="users.add", auth=False)
def add_user(ctx: RequestContext) -> Reply:
    body = ctx.body if isinstance(ctx.body, dict) else {}
    for key in ("name", "password", "project"):
        if not isinstance(body.get(key), str):
            raise BadRequest(f"'{key}' is required.")
    user = ctx.cloud.identity.add_user(body["name"], body["password"], body["project"],
                                       list(body.get("roles") or ["member", "reader"]))
    return Reply(201, {"user": {"id": user.id, "name": user.name, "project_id": user.default_project_id}})
