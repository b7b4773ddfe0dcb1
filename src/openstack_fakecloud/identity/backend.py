"""Keystone's state: domains, projects, users, roles, role assignments and issued tokens.

Seeded users and projects (fakecloud's config, `add_user`) get stable uuid5 ids; those created through the
v3 API get random ones, as Keystone gives. A user's role assignments are kept per project as role names
(Keystone's role names are unique among global roles), so a state dumped before roles had ids still loads.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from openstack_fakecloud.backend import Backend
from openstack_fakecloud.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized
from openstack_fakecloud.identity.appcreds import AppCredStore, ApplicationCredential

DEFAULT_DOMAIN_ID = "default"
DEFAULT_DOMAIN = {"id": DEFAULT_DOMAIN_ID, "name": "Default"}
SEEDED_ROLES = ("admin", "member", "reader", "service")
_NAMESPACE = uuid.UUID("6f1c1f0e-6a0c-4c43-9d7e-1e3fa1c0ffee")


def stable_id(kind: str, name: str) -> str:
    """Ids that stay the same across resets and restarts, so clouds.yaml and tests can rely on them."""
    return uuid.uuid5(_NAMESPACE, f"{kind}:{name}").hex


def new_id() -> str:
    """Keystone's ids for what its API creates: 32 hex digits."""
    return uuid.uuid4().hex


@dataclass(slots=True)
class Domain:
    id: str
    name: str
    description: str = ""
    enabled: bool = True


@dataclass(slots=True)
class Project:
    id: str
    name: str
    domain_id: str = DEFAULT_DOMAIN_ID
    description: str = ""
    enabled: bool = True


@dataclass(slots=True)
class Role:
    id: str
    name: str
    description: str = ""


@dataclass(slots=True)
class User:
    id: str
    name: str
    password: str | None
    default_project_id: str | None
    domain_id: str = DEFAULT_DOMAIN_ID
    enabled: bool = True
    # project id -> role names
    roles: dict[str, list[str]] = field(default_factory=dict)
    # attributes Keystone keeps without meaning: description, email, ...
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Token:
    id: str
    user_id: str
    user_name: str
    project_id: str | None
    project_name: str | None
    roles: list[str]
    issued_at: str
    expires_at: str
    expires_ts: float
    methods: list[str]
    audit_id: str
    app_cred_id: str | None = None  # the application credential the token was issued for


@dataclass(frozen=True, slots=True)
class Assignment:
    """One direct role assignment of a user on a project (what `/v3/role_assignments` lists)."""

    user_id: str
    project_id: str
    role_id: str


UNSET: Any = object()  # an update's "leave this attribute as it is"


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000000Z")


class IdentityBackend(Backend):
    name = "identity"

    def reset(self) -> None:
        self.domains: dict[str, Domain] = {DEFAULT_DOMAIN_ID: Domain(DEFAULT_DOMAIN_ID, "Default")}
        self.projects: dict[str, Project] = {}
        self.users: dict[str, User] = {}
        self.tokens: dict[str, Token] = {}
        self.roles: dict[str, Role] = {}
        self.app_creds = AppCredStore()
        for name in SEEDED_ROLES:
            self.ensure_role(name)
        for spec in self.cloud.config.users:
            project = self.ensure_project(spec.project)
            user = self.users.get(stable_id("user", spec.name))
            if user is None:
                user = User(stable_id("user", spec.name), spec.name, spec.password, project.id)
                self.users[user.id] = user
            user.roles[project.id] = list(spec.roles)
            for role in spec.roles:
                self.ensure_role(role)

    # seeding (config and fakecloud's admin API) ---------------------------------------------------
    def ensure_role(self, name: str) -> Role:
        role = self.role_named(name)
        if role is None:
            role = Role(stable_id("role", name), name)
            self.roles[role.id] = role
        return role

    def ensure_project(self, name: str) -> Project:
        """The seeded project `name` in the Default domain (stable id), or one the API made with that name."""
        project_id = stable_id("project", name)
        if project_id in self.projects:
            return self.projects[project_id]
        existing = self._project_named(name, DEFAULT_DOMAIN_ID)
        if existing is not None:
            return existing
        self.projects[project_id] = Project(project_id, name)
        return self.projects[project_id]

    def add_user(self, name: str, password: str, project: str, roles: list[str]) -> User:
        proj = self.ensure_project(project)
        user_id = stable_id("user", name)
        user = self.users.get(user_id) or User(user_id, name, password, proj.id)
        user.password = password
        user.roles[proj.id] = list(roles)
        for role in roles:
            self.ensure_role(role)
        self.users[user_id] = user
        self._refresh_tokens(user.id, proj.id)
        return user

    # lookups ------------------------------------------------------------------------------------
    def find_project(self, name_or_id: str) -> Project:
        if name_or_id in self.projects:
            return self.projects[name_or_id]
        for project in self.projects.values():
            if project.name == name_or_id:
                return project
        raise NotFound(f"Could not find project: {name_or_id}.")

    def get_domain(self, domain_id: str) -> Domain:
        domain = self.domains.get(domain_id)
        if domain is None:
            raise NotFound(f"Could not find domain: {domain_id}.")
        return domain

    def get_project(self, project_id: str) -> Project:
        project = self.projects.get(project_id)
        if project is None:
            raise NotFound(f"Could not find project: {project_id}.")
        return project

    def get_user(self, user_id: str) -> User:
        user = self.users.get(user_id)
        if user is None:
            raise NotFound(f"Could not find user: {user_id}.")
        return user

    def get_role(self, role_id: str) -> Role:
        role = self.roles.get(role_id)
        if role is None:
            raise NotFound(f"Could not find role: {role_id}.")
        return role

    def role_named(self, name: str) -> Role | None:
        return next((r for r in self.roles.values() if r.name == name), None)

    def _project_named(self, name: str, domain_id: str) -> Project | None:
        return next((p for p in self.projects.values() if p.name == name and p.domain_id == domain_id), None)

    def _domain_ref(self, ref: Any) -> str | None:
        """The domain id a `{"id": ...}` / `{"name": ...}` reference names; None when it names none."""
        if not isinstance(ref, dict):
            return None
        if "id" in ref:
            return ref["id"]
        return next((d.id for d in self.domains.values() if d.name == ref.get("name")), "")

    def _find_user(self, ref: dict[str, Any]) -> User | None:
        if "id" in ref:
            return self.users.get(ref["id"])
        domain_id = self._domain_ref(ref.get("domain"))
        for user in self.users.values():
            if user.name == ref.get("name") and domain_id in (None, user.domain_id):
                return user
        return None

    def projects_of(self, user: User) -> list[Project]:
        """The projects a user has a role on, in the order they were assigned."""
        return [self.projects[pid] for pid, names in user.roles.items() if names and pid in self.projects]

    # domains ------------------------------------------------------------------------------------
    def create_domain(self, name: str, description: str = "", enabled: bool = True) -> Domain:
        self._unique_domain_name(name)
        domain = Domain(new_id(), name, description, enabled)
        self.domains[domain.id] = domain
        return domain

    def update_domain(self, domain_id: str, name: str = UNSET, description: str = UNSET,
                      enabled: bool = UNSET) -> Domain:
        domain = self.get_domain(domain_id)
        if name is not UNSET and name != domain.name:
            self._unique_domain_name(name)
            domain.name = name
        if description is not UNSET:
            domain.description = description
        if enabled is not UNSET:
            if not enabled and domain.id == DEFAULT_DOMAIN_ID:
                raise Forbidden("Cannot disable the default domain: fakecloud's seeded users live in it.")
            domain.enabled = enabled
            if not enabled:  # Keystone revokes every token of the domain's users and projects
                users = {u.id for u in self.users.values() if u.domain_id == domain.id}
                projects = {p.id for p in self.projects.values() if p.domain_id == domain.id}
                self._revoke(lambda t: t.user_id in users or t.project_id in projects)
        return domain

    def delete_domain(self, domain_id: str) -> None:
        """Keystone refuses an enabled domain (disable first) and deletes the domain's projects and users."""
        domain = self.get_domain(domain_id)
        if domain.enabled:
            raise Forbidden("Cannot delete a domain that is enabled, please disable it first.")
        for project in [p for p in self.projects.values() if p.domain_id == domain.id]:
            self.delete_project(project.id)
        for user in [u for u in self.users.values() if u.domain_id == domain.id]:
            self.delete_user(user.id)
        del self.domains[domain.id]

    def _unique_domain_name(self, name: str) -> None:
        if any(d.name == name for d in self.domains.values()):
            raise Conflict(f"Conflict occurred attempting to store domain - Duplicate entry found with name {name}.")

    # projects -----------------------------------------------------------------------------------
    def create_project(self, name: str, domain_id: str = DEFAULT_DOMAIN_ID, description: str = "",
                       enabled: bool = True) -> Project:
        self.get_domain(domain_id)
        self._unique_project_name(name, domain_id)
        project = Project(new_id(), name, domain_id, description, enabled)
        self.projects[project.id] = project
        return project

    def update_project(self, project_id: str, name: str = UNSET, description: str = UNSET,
                       enabled: bool = UNSET) -> Project:
        project = self.get_project(project_id)
        if name is not UNSET and name != project.name:
            self._unique_project_name(name, project.domain_id)
            project.name = name
        if description is not UNSET:
            project.description = description
        if enabled is not UNSET:
            project.enabled = enabled
            if not enabled:  # Keystone invalidates the tokens scoped to a disabled project
                self._revoke(lambda t: t.project_id == project.id)
        for token in self.tokens.values():
            if token.project_id == project.id:
                token.project_name = project.name
        return project

    def delete_project(self, project_id: str) -> None:
        """Its role assignments go with it, and so do the tokens scoped to it."""
        project = self.get_project(project_id)
        for user in self.users.values():
            user.roles.pop(project.id, None)
        self._revoke(lambda t: t.project_id == project.id)
        del self.projects[project.id]

    def _unique_project_name(self, name: str, domain_id: str) -> None:
        if self._project_named(name, domain_id) is not None:
            raise Conflict("Conflict occurred attempting to store project - Duplicate entry found with name "
                           f"{name} at domain ID {domain_id}.")

    # users --------------------------------------------------------------------------------------
    def create_user(self, name: str, domain_id: str = DEFAULT_DOMAIN_ID, password: str | None = None,
                    default_project_id: str | None = None, enabled: bool = True,
                    extra: dict[str, Any] | None = None) -> User:
        self.get_domain(domain_id)
        self._unique_user_name(name, domain_id)
        if default_project_id is not None:
            self.get_project(default_project_id)
        user = User(new_id(), name, password, default_project_id, domain_id, enabled, {}, dict(extra or {}))
        self.users[user.id] = user
        return user

    def update_user(self, user_id: str, name: str = UNSET, password: str | None = UNSET,
                    default_project_id: str | None = UNSET, enabled: bool = UNSET,
                    extra: dict[str, Any] | None = None) -> User:
        """A new password or a disabled user revokes the user's tokens, as Keystone does."""
        user = self.get_user(user_id)
        if name is not UNSET and name != user.name:
            self._unique_user_name(name, user.domain_id)
            user.name = name
        if default_project_id is not UNSET:
            if default_project_id is not None:
                self.get_project(default_project_id)
            user.default_project_id = default_project_id
        if extra:
            user.extra.update(extra)
        revoke = False
        if password is not UNSET:
            user.password = password
            revoke = True
        if enabled is not UNSET:
            user.enabled = enabled
            revoke = revoke or not enabled
        if revoke:
            self._revoke(lambda t: t.user_id == user.id)
        for token in self.tokens.values():
            if token.user_id == user.id:
                token.user_name = user.name
        return user

    def delete_user(self, user_id: str) -> None:
        user = self.get_user(user_id)
        self._revoke(lambda t: t.user_id == user.id)
        self.app_creds.forget_user(user.id)
        del self.users[user.id]

    def _unique_user_name(self, name: str, domain_id: str) -> None:
        if any(u.name == name and u.domain_id == domain_id for u in self.users.values()):
            raise Conflict("Conflict occurred attempting to store user - Duplicate entry found with name "
                           f"{name} at domain ID {domain_id}.")

    # roles and assignments ----------------------------------------------------------------------
    def create_role(self, name: str, description: str = "") -> Role:
        if self.role_named(name) is not None:
            raise Conflict(f"Conflict occurred attempting to store role - Duplicate entry found with name {name}.")
        role = Role(new_id(), name, description)
        self.roles[role.id] = role
        return role

    def delete_role(self, role_id: str) -> None:
        """Its assignments go with it; Keystone revokes the tokens that carried it."""
        role = self.get_role(role_id)
        for user in self.users.values():
            for project_id, names in user.roles.items():
                if role.name in names:
                    names.remove(role.name)
                    self._revoke(lambda t, u=user.id, p=project_id: t.user_id == u and t.project_id == p)
        del self.roles[role.id]

    def assign(self, project_id: str, user_id: str, role_id: str) -> None:
        project, user, role = self.get_project(project_id), self.get_user(user_id), self.get_role(role_id)
        names = user.roles.setdefault(project.id, [])
        if role.name not in names:
            names.append(role.name)
        self._refresh_tokens(user.id, project.id)

    def unassign(self, project_id: str, user_id: str, role_id: str) -> None:
        """Keystone revokes the user's tokens on the project when one of its roles there is taken away."""
        if not self.has_assignment(project_id, user_id, role_id):
            raise NotFound(f"Could not find role assignment with role: {role_id}, user or group: {user_id}, "
                           f"project, domain, or system: {project_id}.")
        user, role = self.users[user_id], self.roles[role_id]
        user.roles[project_id].remove(role.name)
        if not user.roles[project_id]:
            del user.roles[project_id]
        self._revoke(lambda t: t.user_id == user_id and t.project_id == project_id)

    def has_assignment(self, project_id: str, user_id: str, role_id: str) -> bool:
        self.get_project(project_id)
        user, role = self.get_user(user_id), self.get_role(role_id)
        return role.name in user.roles.get(project_id, [])

    def roles_on(self, project_id: str, user_id: str) -> list[Role]:
        self.get_project(project_id)
        names = self.get_user(user_id).roles.get(project_id, [])
        return [role for name in names if (role := self.role_named(name)) is not None]

    def assignments(self, user_id: str | None = None, project_id: str | None = None,
                    role_id: str | None = None) -> list[Assignment]:
        found = []
        for user in self.users.values():
            if user_id is not None and user.id != user_id:
                continue
            for pid, names in user.roles.items():
                if (project_id is not None and pid != project_id) or pid not in self.projects:
                    continue
                for name in names:
                    role = self.role_named(name)
                    if role is not None and role_id in (None, role.id):
                        found.append(Assignment(user.id, pid, role.id))
        return found

    # tokens -------------------------------------------------------------------------------------
    def authenticate(self, auth: dict[str, Any]) -> Token:
        identity = auth.get("identity") or {}
        methods = identity.get("methods") or []
        if "password" in methods:
            ref = (identity.get("password") or {}).get("user") or {}
            user = self._find_user(ref)
            if (user is None or not user.enabled or user.password is None or user.password != ref.get("password")
                    or not self.domains.get(user.domain_id, Domain("", "", enabled=False)).enabled):
                raise Unauthorized("The request you have made requires authentication.")
        elif "token" in methods:
            source = self.validate((identity.get("token") or {}).get("id"))
            user = self.users[source.user_id]
        elif "application_credential" in methods:
            return self._authenticate_app_cred(identity.get("application_credential") or {}, auth.get("scope"))
        else:
            raise BadRequest("Expecting to find identity methods 'password', 'token' or 'application_credential' "
                             "in auth.")
        project = self._scope(user, auth.get("scope"))
        return self._issue(user, project, methods)

    def _authenticate_app_cred(self, ref: dict[str, Any], scope: Any) -> Token:
        """A token on the credential's project with the credential's roles the user still holds there; Keystone
        refuses any other scope."""
        def user_id_by_ref(user_ref: dict[str, Any]) -> str | None:
            found = self._find_user(user_ref)
            return found.id if found else None
        credential = self.app_creds.authenticate(ref, user_id_by_ref, self.cloud.clock.wall())
        user = self.users.get(credential.user_id)
        project = self.projects.get(credential.project_id)
        if user is None or not user.enabled or project is None or not project.enabled:
            raise Unauthorized("The request you have made requires authentication.")
        if scope:
            raise Unauthorized("Application credentials cannot request a scope.")
        roles = [r for r in credential.roles if r in user.roles.get(project.id, [])]
        if not roles:
            raise Unauthorized(f"User {user.name} has no access to project {project.name}.")
        token = self._issue(user, project, ["application_credential"])
        token.roles = roles
        token.app_cred_id = credential.id
        return token

    def create_app_cred(self, token: Token, user_id: str, name: str, role_refs: list[dict[str, Any]] | None,
                        secret: str | None, description: str | None, expires_at: str | None,
                        unrestricted: bool) -> tuple[ApplicationCredential, str]:
        """For the token's own user on the token's project; the roles default to the token's and must be held."""
        user = self.get_user(user_id)
        if token.user_id != user.id or token.project_id is None:
            raise Forbidden("You are not authorized to perform the requested action: "
                            "identity:create_application_credential.")
        if token.app_cred_id is not None:
            creator = self.app_creds.credentials.get(token.app_cred_id)
            if creator is None or not creator.unrestricted:
                raise Forbidden("Using method 'application_credential' is not allowed for managing additional "
                                "application credentials.")
        held = user.roles.get(token.project_id, [])
        if role_refs:
            roles = []
            for ref in role_refs:
                role = self.roles.get(ref.get("id", "")) if "id" in ref else self.role_named(ref.get("name", ""))
                if role is None or role.name not in held:
                    raise Forbidden(f"Could not find role assignment with role: {ref.get('id') or ref.get('name')}, "
                                    f"user or group: {user.id}, project, domain, or system: {token.project_id}.")
                roles.append(role.name)
        else:
            roles = list(token.roles)
        return self.app_creds.create(user.id, token.project_id, name, roles, secret, description, expires_at,
                                     unrestricted, self.cloud.clock.wall())

    def _scope(self, user: User, scope: Any) -> Project | None:
        if not scope:
            default = self.projects.get(user.default_project_id or "")
            return default if default is not None and default.enabled and user.roles.get(default.id) else None
        ref = scope.get("project") if isinstance(scope, dict) else None
        if ref is None:
            raise BadRequest("Only project scope is supported by fakecloud's Keystone.")
        project = self.projects.get(ref["id"]) if "id" in ref else None
        if project is None and "name" in ref:
            domain_id = self._domain_ref(ref.get("domain"))
            project = next((p for p in self.projects.values()
                            if p.name == ref["name"] and domain_id in (None, p.domain_id)), None)
        domain = self.domains.get(project.domain_id) if project is not None else None
        if (project is None or not user.roles.get(project.id) or not project.enabled
                or domain is None or not domain.enabled):
            raise Unauthorized(f"User {user.name} has no access to project {ref.get('name') or ref.get('id')}.")
        return project

    def _issue(self, user: User, project: Project | None, methods: list[str]) -> Token:
        clock = self.cloud.clock
        issued = clock.wall()
        expires = issued + timedelta(seconds=self.cloud.config.token_ttl_seconds)
        token = Token(
            id="gAAAAA" + secrets.token_urlsafe(48),
            user_id=user.id,
            user_name=user.name,
            project_id=project.id if project else None,
            project_name=project.name if project else None,
            roles=list(user.roles.get(project.id, [])) if project else [],
            issued_at=_iso(issued),
            expires_at=_iso(expires),
            expires_ts=expires.timestamp(),
            methods=methods,
            audit_id=secrets.token_urlsafe(16),
        )
        self.tokens[token.id] = token
        return token

    def _revoke(self, matches: Callable[[Token], bool]) -> None:
        for token_id in [t.id for t in self.tokens.values() if matches(t)]:
            del self.tokens[token_id]

    def _refresh_tokens(self, user_id: str, project_id: str) -> None:
        """A granted role shows in the user's live tokens on the project, as a Fernet token's validation does."""
        roles = self.users[user_id].roles.get(project_id, [])
        for token in self.tokens.values():
            if token.user_id == user_id and token.project_id == project_id:
                token.roles = list(roles)

    def validate(self, token_id: str | None) -> Token:
        token = self.tokens.get(token_id) if token_id else None
        if token is None:
            raise Unauthorized("The request you have made requires authentication.")
        if token.expires_ts <= self.cloud.clock.wall().timestamp():
            self.tokens.pop(token.id, None)
            raise Unauthorized("The token has expired.")
        return token

    def revoke(self, token_id: str) -> None:
        if self.tokens.pop(token_id, None) is None:
            raise NotFound("Could not find token.")

    def domain_brief(self, domain_id: str) -> dict[str, str]:
        domain = self.domains.get(domain_id)
        return {"id": domain_id, "name": domain.name if domain else domain_id}

    def token_body(self, token: Token, with_catalog: bool = True) -> dict[str, Any]:
        user = self.users.get(token.user_id)
        body: dict[str, Any] = {
            "methods": token.methods,
            "user": {"id": token.user_id, "name": token.user_name,
                     "domain": self.domain_brief(user.domain_id if user else DEFAULT_DOMAIN_ID),
                     "password_expires_at": None},
            "expires_at": token.expires_at,
            "issued_at": token.issued_at,
            "audit_ids": [token.audit_id],
            "is_domain": False,
        }
        if token.project_id is not None:
            project = self.projects.get(token.project_id)
            body["project"] = {"id": token.project_id, "name": token.project_name,
                               "domain": self.domain_brief(project.domain_id if project else DEFAULT_DOMAIN_ID)}
            body["roles"] = [{"id": role.id if (role := self.role_named(r)) else stable_id("role", r), "name": r}
                             for r in token.roles]
            if with_catalog:
                body["catalog"] = self.cloud.catalog(token.project_id)
        credential = self.app_creds.credentials.get(token.app_cred_id or "")
        if credential is not None:
            body["application_credential"] = {"id": credential.id, "name": credential.name,
                                              "restricted": not credential.unrestricted}
        return {"token": body}

    # persistence --------------------------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        return {
            "domains": [asdict(d) for d in self.domains.values()],
            "projects": [asdict(p) for p in self.projects.values()],
            "roles": [asdict(r) for r in self.roles.values()],
            "users": [asdict(u) for u in self.users.values()],
            "tokens": [asdict(t) for t in self.tokens.values()],
            "application_credentials": self.app_creds.dump(),
        }

    def load(self, data: dict[str, Any]) -> None:
        """A state saved before domains and roles were kept loads with the Default domain and seeded roles."""
        self.domains = {d["id"]: Domain(**d) for d in data.get("domains", [])}
        self.domains.setdefault(DEFAULT_DOMAIN_ID, Domain(DEFAULT_DOMAIN_ID, "Default"))
        self.projects = {p["id"]: Project(**p) for p in data.get("projects", [])}
        self.users = {u["id"]: User(**u) for u in data.get("users", [])}
        self.tokens = {t["id"]: Token(**t) for t in data.get("tokens", [])}
        self.roles = {r["id"]: Role(**r) for r in data.get("roles", [])}
        self.app_creds.load(data.get("application_credentials", []))
        if "roles" not in data:
            for name in SEEDED_ROLES:
                self.ensure_role(name)
            for user in self.users.values():
                for names in user.roles.values():
                    for name in names:
                        self.ensure_role(name)
