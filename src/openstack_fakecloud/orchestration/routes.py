"""Heat v1 routes: what openstacksdk's orchestration proxy and python-heatclient call.

Every route carries `{project_id}` (the catalog URL is /heat-api/v1/{project_id}). A stack named
without its id (`/stacks/{name_or_id}[/sub-path]`) answers 302 to its canonical `/stacks/{name}/{id}`
for every verb, keeping the query string, because keystoneauth re-sends the same method to `Location`.
"""

from __future__ import annotations

from typing import Any

from openstack_fakecloud.errors import BadRequest
from openstack_fakecloud.framework import Reply, RequestContext, Service
from openstack_fakecloud.orchestration import catalog, views
from openstack_fakecloud.orchestration.backend import OrchestrationBackend
from openstack_fakecloud.orchestration.model import Stack
from openstack_fakecloud.orchestration.software import SoftwareStore
from openstack_fakecloud.orchestration.template import template_versions

# The prefix stops at /heat-api so the unversioned root can answer with the versions document.
service = Service("orchestration", "/heat-api", error_style="heat")
P = "/v1/{project_id}"
LOOKUP_SUBPATHS = ("resources", "events", "template", "actions", "environment", "files", "outputs", "export",
                   "abandon", "preview", "snapshots")
ALL_VERBS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _backend(ctx: RequestContext) -> OrchestrationBackend:
    return ctx.cloud.orchestration


def _project(ctx: RequestContext) -> str:
    return ctx.path["project_id"]


def _base(ctx: RequestContext) -> str:
    return ctx.url(f"/heat-api/v1/{_project(ctx)}")


def _stack(ctx: RequestContext, live: bool = True) -> Stack:
    backend = _backend(ctx)
    find = backend.live if live else backend.identified
    return find(_project(ctx), ctx.path["stack_name"], ctx.path["stack_id"])


def _body(ctx: RequestContext) -> dict[str, Any]:
    if not isinstance(ctx.body, dict):
        raise BadRequest("The request body must be a JSON object.")
    return ctx.body


def _flag(value: Any, default: bool | None) -> bool | None:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "t", "true", "on", "y", "yes")


def _timeout(value: Any) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadRequest("Only integer is acceptable by 'timeout_mins'.") from None


def _tags(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [t.strip() for t in value.split(",") if t.strip()]
    return [str(t) for t in value]


def _parameters(body: dict[str, Any]) -> dict[str, Any]:
    parameters = body.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise BadRequest("The 'parameters' in the request body must be a map.")
    return parameters


def _template(body: dict[str, Any]) -> Any:
    if body.get("template") is None and body.get("template_url"):
        raise BadRequest("template_url is not supported by fakecloud: send the template itself.")
    return body.get("template")


def _versions(ctx: RequestContext) -> Reply:
    version = {"id": "v1.0", "status": "CURRENT",
               "links": [{"rel": "self", "href": ctx.url("/heat-api/v1/")}]}
    return Reply(300, {"versions": [version]})


# discovery ---------------------------------------------------------------------------------------
@service.route("", "GET", op="versions", auth=False)
@service.route("/", "GET", op="versions", auth=False)
@service.route("/v1", "GET", op="versions", auth=False)
@service.route("/v1/", "GET", op="versions", auth=False)
def versions(ctx: RequestContext) -> Reply:
    return _versions(ctx)


# stacks --------------------------------------------------------------------------------------------
@service.route(P + "/stacks", "GET", op="stack.list")
@service.route(P + "/stacks/detail", "GET", op="stack.list")
def list_stacks(ctx: RequestContext) -> Reply:
    filters = {key: ctx.query.getlist(key) for key in ("name", "id", "action", "status") if key in ctx.query}
    all_projects = ctx.is_admin and _flag(ctx.query.get("global_tenant"), False)
    stacks = _backend(ctx).list_stacks(_project(ctx), bool(all_projects), filters)
    limit = ctx.query.get("limit")
    if limit is not None and limit.isdigit():
        stacks = stacks[:int(limit)]
    base = _base(ctx)
    return Reply(200, {"stacks": [views.stack_summary(s, base) for s in stacks]})


def _create_args(ctx: RequestContext, body: dict[str, Any]) -> tuple[Any, ...]:
    template = body.get("template") if body.get("adopt_stack_data") is not None else _template(body)
    return (_project(ctx), ctx.token.user_id if ctx.token else "", body.get("stack_name"), template,
            _parameters(body), body.get("environment"), body.get("files") or {},
            bool(_flag(body.get("disable_rollback"), True)), _timeout(body.get("timeout_mins")),
            _tags(body.get("tags")) or [])


@service.route(P + "/stacks", "POST", op="stack.create")
def create_stack(ctx: RequestContext) -> Reply:
    """Create, or adopt when the body carries `adopt_stack_data` (enabled in fakecloud, off in real Heat)."""
    body = _body(ctx)
    stack = _backend(ctx).create_stack(*_create_args(ctx, body), adopt_data=body.get("adopt_stack_data"),
                                       is_admin=ctx.is_admin)
    url = views.stack_url(_base(ctx), stack)
    return Reply(201, {"stack": {"id": stack.id, "links": [{"href": url, "rel": "self"}]}},
                 headers={"Location": url})


@service.route(P + "/stacks/preview", "POST", op="stack.preview")
def preview_create(ctx: RequestContext) -> Reply:
    stack, prepared, items = _backend(ctx).preview_create(*_create_args(ctx, _body(ctx)), is_admin=ctx.is_admin)
    return Reply(200, {"stack": views.create_preview(stack, _base(ctx), prepared.template.parameters,
                                                     prepared.values, items)})


@service.route(P + "/validate", "POST", op="stack.validate")
def validate(ctx: RequestContext) -> Reply:
    body = _body(ctx)
    return Reply(200, _backend(ctx).validate_template(_project(ctx), _template(body), _parameters(body),
                                                      body.get("environment"), is_admin=ctx.is_admin))


# resource types and template versions ---------------------------------------------------------------
@service.route(P + "/resource_types", "GET", op="resource_type.list")
def resource_types(ctx: RequestContext) -> Reply:
    query = ctx.query
    with_description = bool(_flag(query.get("with_description"), False))
    return Reply(200, {"resource_types": catalog.list_types(query.get("name"), query.get("version"),
                                                            query.get("support_status"), with_description)})


@service.route(P + "/resource_types/{type_name}", "GET", op="resource_type.show")
def resource_type(ctx: RequestContext) -> Reply:
    with_description = bool(_flag(ctx.query.get("with_description"), False))
    return Reply(200, catalog.type_schema(ctx.path["type_name"], with_description))


@service.route(P + "/resource_types/{type_name}/template", "GET", op="resource_type.template")
def resource_type_template(ctx: RequestContext) -> Reply:
    """`template_type` is cfn (Heat's default) or hot."""
    template_type = (ctx.query.get("template_type") or "cfn").lower()
    if template_type not in ("cfn", "hot"):
        raise BadRequest(f"Template type is not supported: Invalid template type \"{template_type}\", valid "
                         "types are: cfn, hot.")
    return Reply(200, catalog.type_template(ctx.path["type_name"], template_type))


@service.route(P + "/template_versions", "GET", op="template_version.list")
def list_template_versions(ctx: RequestContext) -> Reply:
    return Reply(200, {"template_versions": template_versions()})


@service.route(P + "/template_versions/{version}/functions", "GET", op="template_version.functions")
def list_template_functions(ctx: RequestContext) -> Reply:
    with_condition = bool(_flag(ctx.query.get("with_condition_func"), False))
    return Reply(200, {"template_functions": catalog.template_functions(ctx.path["version"], with_condition)})


# software configs and deployments ------------------------------------------------------------------
def _software(ctx: RequestContext) -> SoftwareStore:
    return _backend(ctx).software


def _limit(value: str | None) -> int | None:
    if value in (None, ""):
        return None
    if not value.isdigit():
        raise BadRequest("Only integer is acceptable by 'limit'.")
    return int(value)


@service.route(P + "/software_configs", "GET", op="software_config.list")
def list_software_configs(ctx: RequestContext) -> Reply:
    """Admins see every project's configs (with `project`) when asking for `tenant_safe=false`."""
    everyone = ctx.is_admin and _flag(ctx.query.get("tenant_safe"), True) is False
    configs = _software(ctx).list_configs(None if everyone else _project(ctx), _limit(ctx.query.get("limit")),
                                          ctx.query.get("marker"))
    return Reply(200, {"software_configs": [c.view(detail=False, include_project=ctx.is_admin) for c in configs]})


@service.route(P + "/software_configs", "POST", op="software_config.create")
def create_software_config(ctx: RequestContext) -> Reply:
    return Reply(200, {"software_config": _software(ctx).create_config(_project(ctx), _body(ctx)).view()})


@service.route(P + "/software_configs/{config_id}", "GET", op="software_config.show")
def show_software_config(ctx: RequestContext) -> Reply:
    return Reply(200, {"software_config": _software(ctx).config(_project(ctx), ctx.path["config_id"]).view()})


@service.route(P + "/software_configs/{config_id}", "DELETE", op="software_config.delete")
def delete_software_config(ctx: RequestContext) -> Reply:
    _software(ctx).delete_config(_project(ctx), ctx.path["config_id"])
    return Reply(204)


@service.route(P + "/software_deployments", "GET", op="software_deployment.list")
def list_software_deployments(ctx: RequestContext) -> Reply:
    deployments = _software(ctx).list_deployments(_project(ctx), ctx.query.get("server_id"))
    return Reply(200, {"software_deployments": [d.view() for d in deployments]})


@service.route(P + "/software_deployments", "POST", op="software_deployment.create")
def create_software_deployment(ctx: RequestContext) -> Reply:
    deployment = _software(ctx).create_deployment(_project(ctx), _body(ctx))
    return Reply(200, {"software_deployment": deployment.view()})


@service.route(P + "/software_deployments/metadata/{server_id}", "GET", op="software_deployment.metadata")
def software_deployment_metadata(ctx: RequestContext) -> Reply:
    return Reply(200, {"metadata": _software(ctx).metadata(_project(ctx), ctx.path["server_id"])})


@service.route(P + "/software_deployments/{deployment_id}", "GET", op="software_deployment.show")
def show_software_deployment(ctx: RequestContext) -> Reply:
    deployment = _software(ctx).deployment(_project(ctx), ctx.path["deployment_id"])
    return Reply(200, {"software_deployment": deployment.view()})


@service.route(P + "/software_deployments/{deployment_id}", "PUT", op="software_deployment.update")
def update_software_deployment(ctx: RequestContext) -> Reply:
    deployment = _software(ctx).update_deployment(_project(ctx), ctx.path["deployment_id"], _body(ctx))
    return Reply(200, {"software_deployment": deployment.view()})


@service.route(P + "/software_deployments/{deployment_id}", "DELETE", op="software_deployment.delete")
def delete_software_deployment(ctx: RequestContext) -> Reply:
    _software(ctx).delete_deployment(_project(ctx), ctx.path["deployment_id"])
    return Reply(204)


# lookups: /stacks/{name_or_id}[/sub-path] -> 302 /stacks/{name}/{id}[/sub-path] ------------------------
def _redirect(ctx: RequestContext, sub: str) -> Reply:
    stack = _backend(ctx).lookup(_project(ctx), ctx.path["stack_name"])
    location = views.stack_url(_base(ctx), stack) + sub
    query = ctx.request.url.query
    if query:
        location += "?" + query
    return Reply(302, None, headers={"Location": location})


def _lookup_with(sub: str):
    def lookup(ctx: RequestContext) -> Reply:
        rest = ctx.path.get("rest")
        return _redirect(ctx, f"/{sub}" + (f"/{rest}" if rest else ""))

    lookup.__name__ = f"lookup_{sub}"
    return lookup


for _sub in LOOKUP_SUBPATHS:
    service.route(P + f"/stacks/{{stack_name}}/{_sub}", *ALL_VERBS, op="stack.lookup")(_lookup_with(_sub))
    service.route(P + f"/stacks/{{stack_name}}/{_sub}/{{rest:path}}", *ALL_VERBS, op="stack.lookup")(
        _lookup_with(_sub))


@service.route(P + "/stacks/{stack_name}", *ALL_VERBS, op="stack.lookup")
def lookup(ctx: RequestContext) -> Reply:
    return _redirect(ctx, "")


# one stack -----------------------------------------------------------------------------------------
@service.route(P + "/stacks/{stack_name}/{stack_id}", "GET", op="stack.show")
def show_stack(ctx: RequestContext) -> Reply:
    backend = _backend(ctx)
    stack = _stack(ctx, live=False)
    prepared = backend.prepared(stack)
    resolve = _flag(ctx.query.get("resolve_outputs"), True)
    outputs = backend.outputs(stack) if resolve and not stack.deleted else ([] if resolve else None)
    return Reply(200, {"stack": views.stack_detail(stack, _base(ctx), prepared.template.parameters,
                                                   prepared.values, outputs)})


def _update(ctx: RequestContext, existing: bool) -> Reply:
    body = _body(ctx)
    clear = body.get("clear_parameters") or []
    _backend(ctx).update_stack(
        _stack(ctx), _template(body), _parameters(body), body.get("environment"), body.get("files"), existing,
        list(clear) if isinstance(clear, list) else [str(clear)], _timeout(body.get("timeout_mins")),
        _flag(body.get("disable_rollback"), None), _tags(body.get("tags")), bool(_flag(body.get("converge"), False)),
    )
    return Reply(202)


@service.route(P + "/stacks/{stack_name}/{stack_id}", "PUT", op="stack.update")
def update_stack(ctx: RequestContext) -> Reply:
    return _update(ctx, existing=False)


@service.route(P + "/stacks/{stack_name}/{stack_id}", "PATCH", op="stack.update")
def patch_stack(ctx: RequestContext) -> Reply:
    return _update(ctx, existing=True)


def _preview_update(ctx: RequestContext, existing: bool) -> Reply:
    body = _body(ctx)
    clear = body.get("clear_parameters") or []
    stack = _stack(ctx)
    changes = _backend(ctx).preview_update(
        stack, _template(body), _parameters(body), body.get("environment"), body.get("files"), existing,
        list(clear) if isinstance(clear, list) else [str(clear)])
    return Reply(200, {"resource_changes": views.update_preview(stack, changes)})


@service.route(P + "/stacks/{stack_name}/{stack_id}/preview", "PUT", op="stack.preview_update")
def preview_update(ctx: RequestContext) -> Reply:
    return _preview_update(ctx, existing=False)


@service.route(P + "/stacks/{stack_name}/{stack_id}/preview", "PATCH", op="stack.preview_update")
def preview_update_patch(ctx: RequestContext) -> Reply:
    return _preview_update(ctx, existing=True)


@service.route(P + "/stacks/{stack_name}/{stack_id}/actions", "POST", op="stack.action")
def stack_action(ctx: RequestContext) -> Reply:
    """Exactly one of check, cancel_update, cancel_without_rollback, suspend, resume (value null)."""
    body = _body(ctx)
    known = ("suspend", "resume", "check", "cancel_update", "cancel_without_rollback")
    if len(body) != 1:
        raise BadRequest("Multiple actions specified" if body else "No action specified")
    action = next(iter(body))
    if action not in known:
        raise BadRequest(f"Invalid action {action} specified")
    _backend(ctx).stack_action(_stack(ctx, live=False), action)
    return Reply(200)


@service.route(P + "/stacks/{stack_name}/{stack_id}/abandon", "DELETE", op="stack.abandon")
def abandon_stack(ctx: RequestContext) -> Reply:
    """Heat forgets the stack and returns its data; the resources stay (enabled in fakecloud)."""
    return Reply(200, _backend(ctx).abandon_stack(_stack(ctx)))


@service.route(P + "/stacks/{stack_name}/{stack_id}/export", "GET", op="stack.export")
def export_stack(ctx: RequestContext) -> Reply:
    return Reply(200, _backend(ctx).export_stack(_stack(ctx)))


@service.route(P + "/stacks/{stack_name}/{stack_id}", "DELETE", op="stack.delete")
def delete_stack(ctx: RequestContext) -> Reply:
    _backend(ctx).delete_stack(_stack(ctx))
    return Reply(204)


@service.route(P + "/stacks/{stack_name}/{stack_id}/template", "GET", op="stack.template")
def stack_template(ctx: RequestContext) -> Reply:
    return Reply(200, _stack(ctx).template)


@service.route(P + "/stacks/{stack_name}/{stack_id}/environment", "GET", op="stack.environment")
def stack_environment(ctx: RequestContext) -> Reply:
    env = _stack(ctx).environment
    return Reply(200, {"parameters": {}, "parameter_defaults": {}, "resource_registry": {"resources": {}},
                       "event_sinks": [], **env})


@service.route(P + "/stacks/{stack_name}/{stack_id}/files", "GET", op="stack.files")
def stack_files(ctx: RequestContext) -> Reply:
    return Reply(200, _stack(ctx).files)


# outputs -------------------------------------------------------------------------------------------
@service.route(P + "/stacks/{stack_name}/{stack_id}/outputs", "GET", op="output.list")
def list_outputs(ctx: RequestContext) -> Reply:
    stack = _stack(ctx)
    template = _backend(ctx).prepared(stack).template
    return Reply(200, {"outputs": [{"output_key": o.name, "description": o.description}
                                   for o in template.outputs.values()]})


@service.route(P + "/stacks/{stack_name}/{stack_id}/outputs/{output_key}", "GET", op="output.show")
def show_output(ctx: RequestContext) -> Reply:
    return Reply(200, {"output": _backend(ctx).outputs(_stack(ctx), ctx.path["output_key"])[0]})


# resources -----------------------------------------------------------------------------------------
def _required_by(stack: Stack, name: str) -> list[str]:
    return sorted(r.name for r in stack.resources.values() if name in r.requires)


@service.route(P + "/stacks/{stack_name}/{stack_id}/resources", "GET", op="resource.list")
def list_resources(ctx: RequestContext) -> Reply:
    stack = _stack(ctx)
    base = _base(ctx)
    records = list(stack.resources.values())
    for key in ("type", "status", "action", "name"):
        wanted = ctx.query.getlist(key)
        if wanted:
            attr = {"type": "type", "status": "status", "action": "action", "name": "name"}[key]
            records = [r for r in records if getattr(r, attr) in wanted]
    return Reply(200, {"resources": [views.resource_view(stack, r, base, _required_by(stack, r.name))
                                     for r in records]})


@service.route(P + "/stacks/{stack_name}/{stack_id}/resources/{resource_name}", "GET", op="resource.show")
def show_resource(ctx: RequestContext) -> Reply:
    backend = _backend(ctx)
    stack = _stack(ctx)
    record = backend.resource(stack, ctx.path["resource_name"])
    view = views.resource_view(stack, record, _base(ctx), _required_by(stack, record.name),
                               backend.attributes(stack, record))
    return Reply(200, {"resource": view})


@service.route(P + "/stacks/{stack_name}/{stack_id}/resources/{resource_name}", "PATCH", op="resource.mark_unhealthy")
def mark_unhealthy(ctx: RequestContext) -> Reply:
    body = _body(ctx)
    extra = sorted(set(body) - {"mark_unhealthy", "resource_status_reason"})
    if extra:
        raise BadRequest(f"Invalid keys in resource mark unhealthy {', '.join(extra)}")
    if "mark_unhealthy" not in body:
        raise BadRequest("Missing mandatory (mark_unhealthy) key from mark unhealthy request")
    unhealthy = _flag(body["mark_unhealthy"], None)
    reason = body.get("resource_status_reason")
    _backend(ctx).mark_unhealthy(_stack(ctx), ctx.path["resource_name"], bool(unhealthy),
                                 str(reason) if reason is not None else None)
    return Reply(200)


@service.route(P + "/stacks/{stack_name}/{stack_id}/resources/{resource_name}/signal", "POST", op="resource.signal")
def signal_resource(ctx: RequestContext) -> Reply:
    """No fakecloud resource takes signals: Heat's answer for those is a 400 naming the resource."""
    _backend(ctx).signal_resource(_stack(ctx), ctx.path["resource_name"])
    return Reply(200)


# events --------------------------------------------------------------------------------------------
def _events(ctx: RequestContext, resource_name: str | None) -> Reply:
    stack = _stack(ctx, live=False)
    query = ctx.query
    sort_dir = (query.get("sort_dir") or "asc").lower()
    if sort_dir not in ("asc", "desc"):
        raise BadRequest(f"Invalid sort direction: {sort_dir}")
    limit = query.get("limit")
    if limit is not None and not limit.isdigit():
        raise BadRequest("Only integer is acceptable by 'limit'.")
    filters = {k: query.getlist(k) for k in ("resource_status", "resource_name", "resource_type", "resource_action")}
    events = _backend(ctx).events(stack, resource_name, filters, sort_dir, int(limit) if limit else None,
                                  query.get("marker"))
    base = _base(ctx)
    return Reply(200, {"events": [views.event_view(stack, e, base) for e in events]})


@service.route(P + "/stacks/{stack_name}/{stack_id}/events", "GET", op="event.list")
def list_events(ctx: RequestContext) -> Reply:
    return _events(ctx, None)


@service.route(P + "/stacks/{stack_name}/{stack_id}/resources/{resource_name}/events", "GET", op="event.list")
def list_resource_events(ctx: RequestContext) -> Reply:
    return _events(ctx, ctx.path["resource_name"])


@service.route(P + "/stacks/{stack_name}/{stack_id}/resources/{resource_name}/events/{event_id}", "GET",
               op="event.show")
def show_event(ctx: RequestContext) -> Reply:
    stack = _stack(ctx, live=False)
    event = _backend(ctx).event(stack, ctx.path["resource_name"], ctx.path["event_id"])
    return Reply(200, {"event": views.event_view(stack, event, _base(ctx), detail=True)})
