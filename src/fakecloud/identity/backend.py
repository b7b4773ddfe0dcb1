"""Keystone's state: domains, projects, users, role assignments and issued tokens."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fakecloud.backend import Backend
from fakecloud.errors import BadRequest, NotFound, Unauthorized

DEFAULT_DOMAIN = {"id": "default", "name": "Default"}
_NAMESPACE = uuid.UUID("6f1c1f0e-6a0c-4c43-9d7e-1e3fa1c0ffee")


def stable_id(kind: str, name: str) -> str:
    """Ids that stay the same across resets and restarts, so clouds.yaml and tests can rely on them."""
    return uuid.uuid5(_NAMESPACE, f"{kind}:{name}").hex


@dataclass(slots=True)
class Project:
    id: str
    name: str
    domain_id: str = "default"
    description: str = ""
    enabled: bool = True


@dataclass(slots=True)
class User:
    id: str
    name: str
    password: str
    default_project_id: str
    domain_id: str = "default"
    enabled: bool = True
    # project id -> role names
    roles: dict[str, list[str]] = field(default_factory=dict)


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


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000000Z")


class IdentityBackend(Backend):
    name = "identity"

    def reset(self) -> None:
        self.projects: dict[str, Project] = {}
        self.users: dict[str, User] = {}
        self.tokens: dict[str, Token] = {}
        self.roles = {name: stable_id("role", name) for name in ("admin", "member", "reader", "service")}
        for spec in self.cloud.config.users:
            project = self.ensure_project(spec.project)
            user = self.users.get(stable_id("user", spec.name))
            if user is None:
                user = User(stable_id("user", spec.name), spec.name, spec.password, project.id)
                self.users[user.id] = user
            user.roles[project.id] = list(spec.roles)
            for role in spec.roles:
                self.roles.setdefault(role, stable_id("role", role))

    # projects and users ---------------------------------------------------------------------
    def ensure_project(self, name: str) -> Project:
        project_id = stable_id("project", name)
        if project_id not in self.projects:
            self.projects[project_id] = Project(project_id, name)
        return self.projects[project_id]

    def add_user(self, name: str, password: str, project: str, roles: list[str]) -> User:
        proj = self.ensure_project(project)
        user_id = stable_id("user", name)
        user = self.users.get(user_id) or User(user_id, name, password, proj.id)
        user.password = password
        user.roles[proj.id] = list(roles)
        self.users[user_id] = user
        return user

    def find_project(self, name_or_id: str) -> Project:
        if name_or_id in self.projects:
            return self.projects[name_or_id]
        for project in self.projects.values():
            if project.name == name_or_id:
                return project
        raise NotFound(f"Could not find project: {name_or_id}.")

    def _find_user(self, ref: dict[str, Any]) -> User | None:
        if "id" in ref:
            return self.users.get(ref["id"])
        for user in self.users.values():
            if user.name == ref.get("name"):
                return user
        return None

    # tokens ---------------------------------------------------------------------------------
    def authenticate(self, auth: dict[str, Any]) -> Token:
        identity = auth.get("identity") or {}
        methods = identity.get("methods") or []
        if "password" in methods:
            ref = (identity.get("password") or {}).get("user") or {}
            user = self._find_user(ref)
            if user is None or not user.enabled or user.password != ref.get("password"):
                raise Unauthorized("The request you have made requires authentication.")
        elif "token" in methods:
            source = self.validate((identity.get("token") or {}).get("id"))
            user = self.users[source.user_id]
        else:
            raise BadRequest("Expecting to find identity methods 'password' or 'token' in auth.")
        project = self._scope(user, auth.get("scope"))
        return self._issue(user, project, methods)

    def _scope(self, user: User, scope: Any) -> Project | None:
        if not scope:
            return self.projects.get(user.default_project_id) if user.default_project_id in user.roles else None
        ref = scope.get("project") if isinstance(scope, dict) else None
        if ref is None:
            raise BadRequest("Only project scope is supported by fakecloud's Keystone.")
        project = self.projects.get(ref["id"]) if "id" in ref else None
        if project is None and "name" in ref:
            project = next((p for p in self.projects.values() if p.name == ref["name"]), None)
        if project is None or project.id not in user.roles:
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

    def token_body(self, token: Token, with_catalog: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {
            "methods": token.methods,
            "user": {"id": token.user_id, "name": token.user_name, "domain": DEFAULT_DOMAIN,
                     "password_expires_at": None},
            "expires_at": token.expires_at,
            "issued_at": token.issued_at,
            "audit_ids": [token.audit_id],
            "is_domain": False,
        }
        if token.project_id is not None:
            body["project"] = {"id": token.project_id, "name": token.project_name, "domain": DEFAULT_DOMAIN}
            body["roles"] = [{"id": self.roles.get(r, stable_id("role", r)), "name": r} for r in token.roles]
            if with_catalog:
                body["catalog"] = self.cloud.catalog(token.project_id)
        return {"token": body}

    # persistence ----------------------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        return {
            "projects": [asdict(p) for p in self.projects.values()],
            "users": [asdict(u) for u in self.users.values()],
            "tokens": [asdict(t) for t in self.tokens.values()],
        }

    def load(self, data: dict[str, Any]) -> None:
        self.projects = {p["id"]: Project(**p) for p in data.get("projects", [])}
        self.users = {u["id"]: User(**u) for u in data.get("users", [])}
        self.tokens = {t["id"]: Token(**t) for t in data.get("tokens", [])}

