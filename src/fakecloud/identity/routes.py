"""Keystone v3 routes: what keystoneauth, the OpenStack CLI and keystonemiddleware call."""

from __future__ import annotations

from typing import Any

from fakecloud.errors import BadRequest, Forbidden, NotFound
from fakecloud.framework import Reply, RequestContext, Service

service = Service("identity", "", error_style="keystone")

MEDIA_TYPES = [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}]


def _version(ctx: RequestContext) -> dict[str, Any]:
    return {
        "id": "v3.14",
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": ctx.url("/v3/")}],
        "media-types": MEDIA_TYPES,
    }


@service.route("/", "GET", op="versions", auth=False)
def versions(ctx: RequestContext) -> Reply:
    return Reply(300, {"versions": {"values": [_version(ctx)]}})


@service.route("/v3", "GET", op="version", auth=False)
@service.route("/v3/", "GET", op="version", auth=False)
def version(ctx: RequestContext) -> Reply:
    return Reply(200, {"version": _version(ctx)})


@service.route("/v3/auth/tokens", "POST", op="token.issue", auth=False)
def issue_token(ctx: RequestContext) -> Reply:
    if not isinstance(ctx.body, dict) or not isinstance(ctx.body.get("auth"), dict):
        raise BadRequest("Expecting to find auth in request body.")
    identity = ctx.cloud.identity
    token = identity.authenticate(ctx.body["auth"])
    nocatalog = "nocatalog" in ctx.query
    return Reply(201, identity.token_body(token, not nocatalog), headers={"X-Subject-Token": token.id})


def _subject(ctx: RequestContext):
    identity = ctx.cloud.identity
    subject = ctx.request.headers.get("x-subject-token")
    if not subject:
        raise BadRequest("X-Subject-Token header is required.")
    token = identity.tokens.get(subject)
    if token is None:
        raise NotFound("Could not find token.")
    return identity.validate(subject)


@service.route("/v3/auth/tokens", "GET", op="token.validate")
def validate_token(ctx: RequestContext) -> Reply:
    token = _subject(ctx)
    nocatalog = "nocatalog" in ctx.query
    body = ctx.cloud.identity.token_body(token, not nocatalog)
    return Reply(200, body, headers={"X-Subject-Token": token.id})


@service.route("/v3/auth/tokens", "HEAD", op="token.check")
def check_token(ctx: RequestContext) -> Reply:
    token = _subject(ctx)
    return Reply(200, None, headers={"X-Subject-Token": token.id})


@service.route("/v3/auth/tokens", "DELETE", op="token.revoke")
def revoke_token(ctx: RequestContext) -> Reply:
    """Keystone's identity:revoke_token policy: the token's own user, a service or an admin; so one tenant
    cannot log another user (or a service such as Hearth) out."""
    token = _subject(ctx)
    caller = ctx.token
    if caller is None or not (caller.user_id == token.user_id or {"admin", "service"} & set(caller.roles)):
        raise Forbidden("You are not authorized to perform the requested action: identity:revoke_token.")
    ctx.cloud.identity.revoke(token.id)
    return Reply(204)


@service.route("/v3/auth/catalog", "GET", op="catalog.show")
def auth_catalog(ctx: RequestContext) -> Reply:
    return Reply(200, {"catalog": ctx.cloud.catalog(ctx.project_id), "links": {"self": ctx.url("/v3/auth/catalog")}})


def _project_view(ctx: RequestContext, project) -> dict[str, Any]:
    return {
        "id": project.id, "name": project.name, "domain_id": project.domain_id,
        "description": project.description, "enabled": project.enabled, "is_domain": False,
        "parent_id": project.domain_id, "tags": [],
        "links": {"self": ctx.url(f"/v3/projects/{project.id}")},
    }


@service.route("/v3/auth/projects", "GET", op="project.list_mine")
def my_projects(ctx: RequestContext) -> Reply:
    user = ctx.cloud.identity.users[ctx.token.user_id]
    projects = [ctx.cloud.identity.projects[pid] for pid in user.roles if pid in ctx.cloud.identity.projects]
    return Reply(200, {"projects": [_project_view(ctx, p) for p in projects], "links": {}})


@service.route("/v3/users/{id}/projects", "GET", op="user.projects")
def user_projects(ctx: RequestContext) -> Reply:
    """The projects a user has a role on (openstacksdk's `identity.user_projects`): the user's own, or an admin's."""
    identity = ctx.cloud.identity
    user = identity.users.get(ctx.path["id"])
    if user is None:
        raise NotFound(f"Could not find user: {ctx.path['id']}.")
    if not ctx.is_admin and user.id != ctx.token.user_id:
        raise Forbidden("You are not authorized to perform the requested action: identity:list_user_projects.")
    projects = [identity.projects[pid] for pid in user.roles if pid in identity.projects]
    return Reply(200, {"projects": [_project_view(ctx, p) for p in projects], "links": {}})


@service.route("/v3/projects", "GET", op="project.list")
def list_projects(ctx: RequestContext) -> Reply:
    identity = ctx.cloud.identity
    projects = list(identity.projects.values()) if ctx.is_admin else [identity.projects[ctx.project_id]]
    name = ctx.query.get("name")
    if name:
        projects = [p for p in projects if p.name == name]
    return Reply(200, {"projects": [_project_view(ctx, p) for p in projects], "links": {}})


@service.route("/v3/projects/{id}", "GET", op="project.show")
def show_project(ctx: RequestContext) -> Reply:
    project = ctx.cloud.identity.projects.get(ctx.path["id"])
    if project is None or (not ctx.is_admin and project.id != ctx.project_id):
        raise NotFound(f"Could not find project: {ctx.path['id']}.")
    return Reply(200, {"project": _project_view(ctx, project)})


@service.route("/v3/users/{id}", "GET", op="user.show")
def show_user(ctx: RequestContext) -> Reply:
    user = ctx.cloud.identity.users.get(ctx.path["id"])
    if user is None:
        raise NotFound(f"Could not find user: {ctx.path['id']}.")
    if not ctx.is_admin and user.id != ctx.token.user_id:
        raise Forbidden("You are not authorized to perform the requested action.")
    return Reply(200, {"user": {"id": user.id, "name": user.name, "domain_id": user.domain_id,
                                "enabled": user.enabled, "default_project_id": user.default_project_id,
                                "links": {"self": ctx.url(f"/v3/users/{user.id}")}}})


@service.route("/v3/roles", "GET", op="role.list")
def list_roles(ctx: RequestContext) -> Reply:
    roles = [{"id": rid, "name": name, "links": {}} for name, rid in ctx.cloud.identity.roles.items()]
    return Reply(200, {"roles": roles, "links": {}})
