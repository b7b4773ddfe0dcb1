"""Keystone v3 routes: what keystoneauth, the OpenStack CLI and keystonemiddleware call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from openstack_fakecloud.errors import BadRequest, Forbidden, NotFound
from openstack_fakecloud.framework import Reply, RequestContext, Service
from openstack_fakecloud.identity.appcreds import ApplicationCredential, parse_expiry
from openstack_fakecloud.identity.backend import UNSET, Domain, IdentityBackend, Project, Role, User

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


# policy -----------------------------------------------------------------------------------------------
def _backend(ctx: RequestContext) -> IdentityBackend:
    return ctx.cloud.identity


def _require_admin(ctx: RequestContext, rule: str) -> None:
    """Keystone's default `admin_required` rules (without enforced scope): a project token with `admin`."""
    if not ctx.is_admin:
        raise Forbidden(f"You are not authorized to perform the requested action: identity:{rule}.")


def _is_self(ctx: RequestContext, user_id: str) -> bool:
    return ctx.token is not None and ctx.token.user_id == user_id


# parsing ----------------------------------------------------------------------------------------------
def _invalid(field: str, why: str) -> BadRequest:
    return BadRequest(f"Invalid input for field '{field}': {why}")


def _string(body: dict[str, Any], key: str, required: bool = False, nullable: bool = False,
            max_length: int = 255) -> Any:
    """A string attribute as Keystone's JSON schemas check it; `UNSET` when the body leaves it out."""
    if key not in body:
        if required:
            raise _invalid(key, f"'{key}' is a required property")
        return UNSET
    value = body[key]
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise _invalid(key, f"{value!r} is not of type 'string'")
    if key == "name" and not value.strip():
        raise _invalid(key, f"{value!r} is too short")
    if len(value) > max_length:
        raise _invalid(key, f"{value!r} is too long")
    return value


def _bool(body: dict[str, Any], key: str) -> Any:
    if key not in body:
        return UNSET
    if not isinstance(body[key], bool):
        raise _invalid(key, f"{body[key]!r} is not of type 'boolean'")
    return body[key]


def _given(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not UNSET}


def _query_bool(raw: str) -> bool:
    """Keystone reads `?enabled=` as false only for 0/false/no (any case)."""
    return raw.lower() not in ("0", "false", "no")


_USER_KEYS = {"name", "password", "domain_id", "default_project_id", "enabled", "options"}


def _user_extra(body: dict[str, Any]) -> dict[str, Any]:
    """Keystone keeps a user's other attributes (email, description, ...) and shows them back."""
    return {k: v for k, v in body.items() if k not in _USER_KEYS and k not in ("id", "links")}


def _links(ctx: RequestContext, path: str) -> dict[str, Any]:
    return {"self": ctx.url(path), "previous": None, "next": None}


def _listing(ctx: RequestContext, key: str, path: str, items: list[Any],
             view: Callable[[RequestContext, Any], dict[str, Any]]) -> Reply:
    return Reply(200, {key: [view(ctx, item) for item in items], "links": _links(ctx, path)})


# views ------------------------------------------------------------------------------------------------
def _domain_view(ctx: RequestContext, domain: Domain) -> dict[str, Any]:
    return {"id": domain.id, "name": domain.name, "description": domain.description, "enabled": domain.enabled,
            "tags": [], "options": {}, "links": {"self": ctx.url(f"/v3/domains/{domain.id}")}}


def _project_view(ctx: RequestContext, project: Project) -> dict[str, Any]:
    return {
        "id": project.id, "name": project.name, "domain_id": project.domain_id,
        "description": project.description, "enabled": project.enabled, "is_domain": False,
        "parent_id": project.domain_id, "tags": [], "options": {},
        "links": {"self": ctx.url(f"/v3/projects/{project.id}")},
    }


def _user_view(ctx: RequestContext, user: User) -> dict[str, Any]:
    view: dict[str, Any] = {**user.extra, "id": user.id, "name": user.name, "domain_id": user.domain_id,
                            "enabled": user.enabled, "password_expires_at": None, "options": {},
                            "links": {"self": ctx.url(f"/v3/users/{user.id}")}}
    if user.default_project_id is not None:
        view["default_project_id"] = user.default_project_id
    return view


def _role_view(ctx: RequestContext, role: Role) -> dict[str, Any]:
    return {"id": role.id, "name": role.name, "domain_id": None, "description": role.description or None,
            "options": {}, "links": {"self": ctx.url(f"/v3/roles/{role.id}")}}


# domains ----------------------------------------------------------------------------------------------
@service.route("/v3/domains", "GET", op="domain.list")
def list_domains(ctx: RequestContext) -> Reply:
    _require_admin(ctx, "list_domains")
    domains = list(_backend(ctx).domains.values())
    if (name := ctx.query.get("name")) is not None:
        domains = [d for d in domains if d.name == name]
    if (enabled := ctx.query.get("enabled")) is not None:
        domains = [d for d in domains if d.enabled == _query_bool(enabled)]
    return _listing(ctx, "domains", "/v3/domains", domains, _domain_view)


@service.route("/v3/domains/{id}", "GET", op="domain.show")
def show_domain(ctx: RequestContext) -> Reply:
    """identity:get_domain: an admin, or a token scoped to a project of that domain."""
    identity = _backend(ctx)
    domain = identity.get_domain(ctx.path["id"])
    scoped = identity.projects.get(ctx.token.project_id or "") if ctx.token else None
    if not ctx.is_admin and (scoped is None or scoped.domain_id != domain.id):
        raise Forbidden("You are not authorized to perform the requested action: identity:get_domain.")
    return Reply(200, {"domain": _domain_view(ctx, domain)})


@service.route("/v3/domains", "POST", op="domain.create")
def create_domain(ctx: RequestContext) -> Reply:
    _require_admin(ctx, "create_domain")
    body = ctx.require_body("domain")
    fields = _given(name=_string(body, "name", required=True, max_length=64),
                    description=_string(body, "description", nullable=True), enabled=_bool(body, "enabled"))
    fields["description"] = fields.get("description") or ""
    return Reply(201, {"domain": _domain_view(ctx, _backend(ctx).create_domain(**fields))})


@service.route("/v3/domains/{id}", "PATCH", op="domain.update")
def update_domain(ctx: RequestContext) -> Reply:
    _require_admin(ctx, "update_domain")
    body = ctx.require_body("domain")
    description = _string(body, "description", nullable=True)
    fields = _given(name=_string(body, "name", max_length=64), enabled=_bool(body, "enabled"),
                    description=description if description is UNSET else description or "")
    return Reply(200, {"domain": _domain_view(ctx, _backend(ctx).update_domain(ctx.path["id"], **fields))})


@service.route("/v3/domains/{id}", "DELETE", op="domain.delete")
def delete_domain(ctx: RequestContext) -> Reply:
    _require_admin(ctx, "delete_domain")
    _backend(ctx).delete_domain(ctx.path["id"])
    return Reply(204)


# projects ---------------------------------------------------------------------------------------------
@service.route("/v3/auth/projects", "GET", op="project.list_mine")
def my_projects(ctx: RequestContext) -> Reply:
    """The enabled projects the token's user may scope to (what `openstack project list --my-projects` reads)."""
    identity = _backend(ctx)
    user = identity.get_user(ctx.token.user_id) if ctx.token else None
    projects = [p for p in identity.projects_of(user) if p.enabled] if user else []
    return _listing(ctx, "projects", "/v3/auth/projects", projects, _project_view)


@service.route("/v3/users/{id}/projects", "GET", op="user.projects")
def user_projects(ctx: RequestContext) -> Reply:
    """The projects a user has a role on (openstacksdk's `identity.user_projects`): the user's own, or an admin's."""
    identity = _backend(ctx)
    user = identity.get_user(ctx.path["id"])
    if not ctx.is_admin and not _is_self(ctx, user.id):
        raise Forbidden("You are not authorized to perform the requested action: identity:list_user_projects.")
    projects = identity.projects_of(user)
    if (enabled := ctx.query.get("enabled")) is not None:
        projects = [p for p in projects if p.enabled == _query_bool(enabled)]
    return _listing(ctx, "projects", f"/v3/users/{user.id}/projects", projects, _project_view)


@service.route("/v3/projects", "GET", op="project.list")
def list_projects(ctx: RequestContext) -> Reply:
    _require_admin(ctx, "list_projects")
    projects = list(_backend(ctx).projects.values())
    if (name := ctx.query.get("name")) is not None:
        projects = [p for p in projects if p.name == name]
    if (domain_id := ctx.query.get("domain_id")) is not None:
        projects = [p for p in projects if p.domain_id == domain_id]
    if (enabled := ctx.query.get("enabled")) is not None:
        projects = [p for p in projects if p.enabled == _query_bool(enabled)]
    return _listing(ctx, "projects", "/v3/projects", projects, _project_view)


@service.route("/v3/projects/{id}", "GET", op="project.show")
def show_project(ctx: RequestContext) -> Reply:
    """identity:get_project: an admin, or a token scoped to that project."""
    project = _backend(ctx).get_project(ctx.path["id"])
    if not ctx.is_admin and (ctx.token is None or ctx.token.project_id != project.id):
        raise Forbidden("You are not authorized to perform the requested action: identity:get_project.")
    return Reply(200, {"project": _project_view(ctx, project)})


@service.route("/v3/projects", "POST", op="project.create")
def create_project(ctx: RequestContext) -> Reply:
    _require_admin(ctx, "create_project")
    body = ctx.require_body("project")
    if body.get("is_domain"):
        raise BadRequest("fakecloud's Keystone does not create projects that act as domains.")
    domain_id = _string(body, "domain_id", nullable=True)
    fields = _given(name=_string(body, "name", required=True, max_length=64),
                    description=_string(body, "description", nullable=True), enabled=_bool(body, "enabled"))
    fields["description"] = fields.get("description") or ""
    parent_id = body.get("parent_id")
    if parent_id is not None and parent_id not in _backend(ctx).domains:
        raise BadRequest("fakecloud's Keystone has no project hierarchies: parent_id must be a domain.")
    fields["domain_id"] = domain_id or parent_id or "default"
    return Reply(201, {"project": _project_view(ctx, _backend(ctx).create_project(**fields))})


@service.route("/v3/projects/{id}", "PATCH", op="project.update")
def update_project(ctx: RequestContext) -> Reply:
    _require_admin(ctx, "update_project")
    body = ctx.require_body("project")
    identity = _backend(ctx)
    project = identity.get_project(ctx.path["id"])
    if "domain_id" in body and body["domain_id"] != project.domain_id:
        raise BadRequest("Cannot change Domain ID")
    description = _string(body, "description", nullable=True)
    fields = _given(name=_string(body, "name", max_length=64), enabled=_bool(body, "enabled"),
                    description=description if description is UNSET else description or "")
    return Reply(200, {"project": _project_view(ctx, identity.update_project(project.id, **fields))})


@service.route("/v3/projects/{id}", "DELETE", op="project.delete")
def delete_project(ctx: RequestContext) -> Reply:
    _require_admin(ctx, "delete_project")
    _backend(ctx).delete_project(ctx.path["id"])
    return Reply(204)


# users ------------------------------------------------------------------------------------------------
@service.route("/v3/users", "GET", op="user.list")
def list_users(ctx: RequestContext) -> Reply:
    _require_admin(ctx, "list_users")
    users = list(_backend(ctx).users.values())
    if (name := ctx.query.get("name")) is not None:
        users = [u for u in users if u.name == name]
    if (domain_id := ctx.query.get("domain_id")) is not None:
        users = [u for u in users if u.domain_id == domain_id]
    if (enabled := ctx.query.get("enabled")) is not None:
        users = [u for u in users if u.enabled == _query_bool(enabled)]
    return _listing(ctx, "users", "/v3/users", users, _user_view)


@service.route("/v3/users/{id}", "GET", op="user.show")
def show_user(ctx: RequestContext) -> Reply:
    """identity:get_user: an admin, or the user itself."""
    user = _backend(ctx).get_user(ctx.path["id"])
    if not ctx.is_admin and not _is_self(ctx, user.id):
        raise Forbidden("You are not authorized to perform the requested action: identity:get_user.")
    return Reply(200, {"user": _user_view(ctx, user)})


@service.route("/v3/users", "POST", op="user.create")
def create_user(ctx: RequestContext) -> Reply:
    _require_admin(ctx, "create_user")
    body = ctx.require_body("user")
    fields = _given(name=_string(body, "name", required=True), password=_string(body, "password", nullable=True),
                    default_project_id=_string(body, "default_project_id", nullable=True),
                    enabled=_bool(body, "enabled"))
    domain_id = _string(body, "domain_id", nullable=True)
    fields["domain_id"] = domain_id if isinstance(domain_id, str) else "default"
    user = _backend(ctx).create_user(**fields, extra=_user_extra(body))
    return Reply(201, {"user": _user_view(ctx, user)})


@service.route("/v3/users/{id}", "PATCH", op="user.update")
def update_user(ctx: RequestContext) -> Reply:
    _require_admin(ctx, "update_user")
    body = ctx.require_body("user")
    identity = _backend(ctx)
    user = identity.get_user(ctx.path["id"])
    if "domain_id" in body and body["domain_id"] != user.domain_id:
        raise BadRequest("Cannot change Domain ID")
    fields = _given(name=_string(body, "name"), password=_string(body, "password", nullable=True),
                    default_project_id=_string(body, "default_project_id", nullable=True),
                    enabled=_bool(body, "enabled"))
    user = identity.update_user(user.id, **fields, extra=_user_extra(body))
    return Reply(200, {"user": _user_view(ctx, user)})


@service.route("/v3/users/{id}", "DELETE", op="user.delete")
def delete_user(ctx: RequestContext) -> Reply:
    _require_admin(ctx, "delete_user")
    _backend(ctx).delete_user(ctx.path["id"])
    return Reply(204)


# roles and assignments --------------------------------------------------------------------------------
@service.route("/v3/roles", "GET", op="role.list")
def list_roles(ctx: RequestContext) -> Reply:
    _require_admin(ctx, "list_roles")
    roles = list(_backend(ctx).roles.values())
    if (name := ctx.query.get("name")) is not None:
        roles = [r for r in roles if r.name == name]
    return _listing(ctx, "roles", "/v3/roles", roles, _role_view)


@service.route("/v3/roles/{id}", "GET", op="role.show")
def show_role(ctx: RequestContext) -> Reply:
    _require_admin(ctx, "get_role")
    return Reply(200, {"role": _role_view(ctx, _backend(ctx).get_role(ctx.path["id"]))})


@service.route("/v3/roles", "POST", op="role.create")
def create_role(ctx: RequestContext) -> Reply:
    _require_admin(ctx, "create_role")
    body = ctx.require_body("role")
    if body.get("domain_id") is not None:
        raise BadRequest("fakecloud's Keystone has global roles only: domain_id must be null.")
    name = _string(body, "name", required=True)
    description = _string(body, "description", nullable=True)
    role = _backend(ctx).create_role(name, description if isinstance(description, str) else "")
    return Reply(201, {"role": _role_view(ctx, role)})


@service.route("/v3/roles/{id}", "DELETE", op="role.delete")
def delete_role(ctx: RequestContext) -> Reply:
    _require_admin(ctx, "delete_role")
    _backend(ctx).delete_role(ctx.path["id"])
    return Reply(204)


_GRANT = "/v3/projects/{project_id}/users/{user_id}/roles/{role_id}"


@service.route(_GRANT, "PUT", op="grant.create")
def create_grant(ctx: RequestContext) -> Reply:
    _require_admin(ctx, "create_grant")
    _backend(ctx).assign(ctx.path["project_id"], ctx.path["user_id"], ctx.path["role_id"])
    return Reply(204)


@service.route(_GRANT, "GET", "HEAD", op="grant.check")
def check_grant(ctx: RequestContext) -> Reply:
    _require_admin(ctx, "check_grant")
    if not _backend(ctx).has_assignment(ctx.path["project_id"], ctx.path["user_id"], ctx.path["role_id"]):
        raise NotFound(f"Could not find role assignment with role: {ctx.path['role_id']}, user or group: "
                       f"{ctx.path['user_id']}, project, domain, or system: {ctx.path['project_id']}.")
    return Reply(204)


@service.route(_GRANT, "DELETE", op="grant.revoke")
def revoke_grant(ctx: RequestContext) -> Reply:
    _require_admin(ctx, "revoke_grant")
    _backend(ctx).unassign(ctx.path["project_id"], ctx.path["user_id"], ctx.path["role_id"])
    return Reply(204)


@service.route("/v3/projects/{project_id}/users/{user_id}/roles", "GET", op="grant.list")
def list_grants(ctx: RequestContext) -> Reply:
    _require_admin(ctx, "list_grants")
    roles = _backend(ctx).roles_on(ctx.path["project_id"], ctx.path["user_id"])
    path = f"/v3/projects/{ctx.path['project_id']}/users/{ctx.path['user_id']}/roles"
    return _listing(ctx, "roles", path, roles, _role_view)


@service.route("/v3/role_assignments", "GET", op="role_assignment.list")
def list_role_assignments(ctx: RequestContext) -> Reply:
    """Direct user-on-project assignments (fakecloud has no groups, domain grants or inheritance, so
    `?effective` lists the same)."""
    _require_admin(ctx, "list_role_assignments")
    identity = _backend(ctx)
    if ctx.query.get("group.id") or ctx.query.get("scope.domain.id") or ctx.query.get("scope.system"):
        found = []
    else:
        found = identity.assignments(ctx.query.get("user.id"), ctx.query.get("scope.project.id"),
                                     ctx.query.get("role.id"))
    names = "include_names" in ctx.query and _query_bool(ctx.query["include_names"] or "true")
    rendered = []
    for a in found:
        role, user, project = identity.roles[a.role_id], identity.users[a.user_id], identity.projects[a.project_id]
        entry: dict[str, Any] = {
            "role": {"id": role.id}, "user": {"id": user.id}, "scope": {"project": {"id": project.id}},
            "links": {"assignment": ctx.url(f"/v3/projects/{project.id}/users/{user.id}/roles/{role.id}")},
        }
        if names:
            entry["role"]["name"] = role.name
            entry["user"].update(name=user.name, domain=identity.domain_brief(user.domain_id))
            entry["scope"]["project"].update(name=project.name, domain=identity.domain_brief(project.domain_id))
        rendered.append(entry)
    return Reply(200, {"role_assignments": rendered, "links": _links(ctx, "/v3/role_assignments")})


# application credentials --------------------------------------------------------------------------------
def _app_cred_view(ctx: RequestContext, credential: ApplicationCredential) -> dict[str, Any]:
    identity = _backend(ctx)
    roles = [{"id": role.id, "name": role.name, "domain_id": None}
             for name in credential.roles if (role := identity.role_named(name)) is not None]
    return {
        "id": credential.id, "name": credential.name, "description": credential.description,
        "user_id": credential.user_id, "project_id": credential.project_id, "roles": roles,
        "expires_at": credential.expires_at, "unrestricted": credential.unrestricted, "system": None,
        "access_rules": [],
        "links": {"self": ctx.url(f"/v3/users/{credential.user_id}/application_credentials/{credential.id}")},
    }


def _own_credentials(ctx: RequestContext, rule: str) -> str:
    """identity:*_application_credential(s): the user itself, or an admin."""
    user_id = ctx.path["user_id"]
    _backend(ctx).get_user(user_id)
    if not ctx.is_admin and not _is_self(ctx, user_id):
        raise Forbidden(f"You are not authorized to perform the requested action: identity:{rule}.")
    return user_id


_APP_CREDS = "/v3/users/{user_id}/application_credentials"


@service.route(_APP_CREDS, "POST", op="application_credential.create")
def create_app_cred(ctx: RequestContext) -> Reply:
    body = ctx.require_body("application_credential")
    if body.get("access_rules"):
        raise BadRequest("fakecloud's Keystone does not support application credential access rules.")
    roles = body.get("roles")
    if roles is not None and (not isinstance(roles, list) or not all(isinstance(r, dict) for r in roles)):
        raise _invalid("roles", f"{roles!r} is not an array of role references")
    unrestricted = body.get("unrestricted", False)
    if not isinstance(unrestricted, bool):
        raise _invalid("unrestricted", f"{unrestricted!r} is not of type 'boolean'")
    secret = _string(body, "secret", nullable=True)
    description = _string(body, "description", nullable=True)
    assert ctx.token is not None
    credential, secret = _backend(ctx).create_app_cred(
        ctx.token, ctx.path["user_id"], _string(body, "name", required=True), roles,
        secret if isinstance(secret, str) else None, description if isinstance(description, str) else None,
        parse_expiry(body.get("expires_at")), unrestricted)
    return Reply(201, {"application_credential": {**_app_cred_view(ctx, credential), "secret": secret}})


@service.route(_APP_CREDS, "GET", op="application_credential.list")
def list_app_creds(ctx: RequestContext) -> Reply:
    user_id = _own_credentials(ctx, "list_application_credentials")
    credentials = _backend(ctx).app_creds.of_user(user_id)
    if (name := ctx.query.get("name")) is not None:
        credentials = [c for c in credentials if c.name == name]
    return _listing(ctx, "application_credentials", f"/v3/users/{user_id}/application_credentials", credentials,
                    _app_cred_view)


@service.route(_APP_CREDS + "/{id}", "GET", op="application_credential.show")
def show_app_cred(ctx: RequestContext) -> Reply:
    user_id = _own_credentials(ctx, "get_application_credential")
    credential = _backend(ctx).app_creds.get(user_id, ctx.path["id"])
    return Reply(200, {"application_credential": _app_cred_view(ctx, credential)})


@service.route(_APP_CREDS + "/{id}", "DELETE", op="application_credential.delete")
def delete_app_cred(ctx: RequestContext) -> Reply:
    user_id = _own_credentials(ctx, "delete_application_credential")
    _backend(ctx).app_creds.delete(user_id, ctx.path["id"])
    return Reply(204)
