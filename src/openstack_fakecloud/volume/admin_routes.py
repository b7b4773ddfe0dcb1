"""Cinder's operator API: services, hosts, pools, backend capabilities and the default quota class.

fakecloud runs one scheduler and one volume backend (`fakecloud@lvm`, pool `lvm`); these routes describe
them as Cinder would and let an admin enable, disable, freeze or thaw them.
"""

from __future__ import annotations

from typing import Any

from openstack_fakecloud.errors import BadRequest, NotFound
from openstack_fakecloud.framework import Reply, RequestContext
from openstack_fakecloud.volume import views
from openstack_fakecloud.volume.api import backend, quota_values, require_admin, route
from openstack_fakecloud.volume.backend import BACKEND_NAME, CAPABILITIES, DEFAULT_AZ, HOST, HOST_NAME

# (binary, host) of every Cinder service this cloud runs
SERVICES = (("cinder-scheduler", HOST_NAME), ("cinder-volume", f"{HOST_NAME}@{BACKEND_NAME}"))


def _on_host(host: str, wanted: str) -> bool:
    """Cinder's host filter: the host itself or any backend on it (`host@backend`)."""
    return host == wanted or host.startswith(wanted + "@")


def _service(ctx: RequestContext, binary: str, host: str) -> dict[str, Any]:
    key = f"{host}/{binary}"
    disabled = key in backend(ctx).disabled_services
    reason = backend(ctx).disabled_services.get(key)
    view: dict[str, Any] = {
        "binary": binary, "host": host, "zone": DEFAULT_AZ, "status": "disabled" if disabled else "enabled",
        "state": "up", "updated_at": backend(ctx).now(), "disabled_reason": reason,
    }
    if ctx.at_least("3.7"):
        view["cluster"] = None
    if binary == "cinder-volume":
        view.update({"replication_status": "disabled", "active_backend_id": None, "frozen": False})
        if ctx.at_least("3.49"):
            view["backend_state"] = "up"
    return view


@route("/os-services", "GET", op="service.list")
def list_services(ctx: RequestContext) -> Reply:
    require_admin(ctx, "volume_extension:services:index")
    host, binary = ctx.query.get("host"), ctx.query.get("binary")
    found = [_service(ctx, b, h) for b, h in SERVICES
             if (host is None or _on_host(h, host)) and binary in (None, b)]
    return Reply(200, {"services": found})


def _service_args(ctx: RequestContext) -> tuple[str, str]:
    body = ctx.body if isinstance(ctx.body, dict) else {}
    host, binary = body.get("host"), body.get("binary", "cinder-volume")
    if not host:
        raise BadRequest("Missing required element 'host' in request body.")
    if (binary, host) not in SERVICES:
        raise NotFound(f"Service {binary} on host {host} could not be found.")
    return str(host), str(binary)


def _host_arg(ctx: RequestContext) -> str:
    """Freeze, thaw and failover name a volume backend host (`fakecloud` or `fakecloud@lvm`)."""
    host = ctx.body.get("host") if isinstance(ctx.body, dict) else None
    if not host or not any(_on_host(h, str(host)) for b, h in SERVICES if b == "cinder-volume"):
        raise BadRequest(f"Invalid host: Host {host} not found.")
    return str(host)


@route("/os-services/{verb}", "PUT", op="service.update")
def update_service(ctx: RequestContext) -> Reply:
    require_admin(ctx, "volume_extension:services:update")
    verb = ctx.path["verb"]
    if verb in ("freeze", "thaw"):
        _host_arg(ctx)
        return Reply(200)
    if verb in ("failover_host", "failover"):
        _host_arg(ctx)
        return Reply(202)
    if verb not in ("enable", "disable", "disable-log-reason"):
        raise NotFound(f"Unknown action {verb}")
    reason: str | None = None
    if verb == "disable-log-reason":
        reason = ctx.body.get("disabled_reason") if isinstance(ctx.body, dict) else None
        if not isinstance(reason, str) or not reason.strip() or len(reason) > 255:
            raise BadRequest("Disabled reason contains invalid characters or is too long")
    host, binary = _service_args(ctx)
    disabled = verb != "enable"
    backend(ctx).set_service(host, binary, disabled, reason)
    view: dict[str, Any] = {"host": host, "binary": binary, "service": binary, "disabled": disabled,
                            "status": "disabled" if disabled else "enabled"}
    if verb != "disable":
        view["disabled_reason"] = reason
    return Reply(200, view)


# hosts, pools, capabilities ------------------------------------------------------------------------------
@route("/os-hosts", "GET", op="host.list")
def list_hosts(ctx: RequestContext) -> Reply:
    require_admin(ctx, "volume_extension:hosts")
    hosts = []
    for binary, host in SERVICES:
        disabled = f"{host}/{binary}" in backend(ctx).disabled_services
        hosts.append({"host_name": host, "service": binary, "zone": DEFAULT_AZ, "service-status": "available",
                      "service-state": "disabled" if disabled else "enabled", "last-update": backend(ctx).now()})
    return Reply(200, {"hosts": hosts})


@route("/os-hosts/{host}", "GET", op="host.show")
def show_host(ctx: RequestContext) -> Reply:
    """Per-project totals of the volumes on the backend, the first entry the `(total)`."""
    require_admin(ctx, "volume_extension:hosts")
    host = ctx.path["host"]
    if host not in (h for b, h in SERVICES if b == "cinder-volume"):
        raise NotFound(f"Host {host} could not be found.")
    volumes = backend(ctx).list_volumes(None)
    rows: dict[str, list[int]] = {"(total)": [0, 0]}
    for volume in volumes:
        for key in ("(total)", volume.project_id):
            row = rows.setdefault(key, [0, 0])
            row[0] += 1
            row[1] += volume.size
    return Reply(200, {"host": [{"resource": {"host": host, "project": project, "volume_count": str(count),
                                              "total_volume_gb": str(size), "snapshot_count": "0",
                                              "total_snapshot_gb": "0"}}
                                for project, (count, size) in rows.items()]})


@route("/scheduler-stats/get_pools", "GET", op="pool.list")
def list_pools(ctx: RequestContext) -> Reply:
    require_admin(ctx, "scheduler_extension:scheduler_stats:get_pools")
    pool: dict[str, Any] = {"name": HOST}
    if ctx.query.get("detail", "").lower() in ("true", "1", "yes"):
        used = sum(v.size for v in backend(ctx).list_volumes(None))
        pool["capabilities"] = views.pool_capabilities(backend(ctx).now(), used)
    return Reply(200, {"pools": [pool]})


@route("/capabilities/{host}", "GET", op="capabilities.show")
def show_capabilities(ctx: RequestContext) -> Reply:
    require_admin(ctx, "volume_extension:capabilities")
    host = ctx.path["host"]
    if host.split("#")[0] not in (h for b, h in SERVICES if b == "cinder-volume"):
        raise NotFound(f"Service cinder-volume on host {host} could not be found.")
    return Reply(200, {
        "namespace": f"OS::Storage::Capabilities::{host.split('#')[0]}", "volume_backend_name": BACKEND_NAME,
        "vendor_name": CAPABILITIES["vendor_name"], "storage_protocol": CAPABILITIES["storage_protocol"],
        "driver_version": "3.0.0", "pool_name": None, "description": None, "display_name": None,
        "visibility": None, "replication_targets": [],
        "properties": {"thin_provisioning": {"title": "Thin Provisioning", "type": "boolean",
                                             "description": "Sets thin provisioning."}},
    })


# quota classes ----------------------------------------------------------------------------------------
@route("/os-quota-class-sets/{quota_class}", "GET", op="quota_class.show")
def show_quota_class(ctx: RequestContext) -> Reply:
    require_admin(ctx, "volume_extension:quota_classes")
    return Reply(200, {"quota_class_set": {"id": ctx.path["quota_class"], **backend(ctx).default_quotas()}})


@route("/os-quota-class-sets/{quota_class}", "PUT", op="quota_class.update")
def update_quota_class(ctx: RequestContext) -> Reply:
    """Only the `default` class exists here: it is what every project without its own limits gets."""
    require_admin(ctx, "volume_extension:quota_classes:update")
    if ctx.path["quota_class"] != "default":
        raise BadRequest("Invalid input received: fakecloud keeps only the 'default' quota class.")
    spec = ctx.body.get("quota_class_set") if isinstance(ctx.body, dict) else None
    if not isinstance(spec, dict):
        raise BadRequest("Missing required element 'quota_class_set' in request body.")
    return Reply(200, {"quota_class_set": backend(ctx).set_default_quotas(quota_values(spec))})
