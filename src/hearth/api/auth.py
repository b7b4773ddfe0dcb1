"""Who is calling, for which project.

A request's `X-Auth-Token` is validated against the cloud's Keystone with openstacksdk's
`identity.validate_token` (GET /v3/auth/tokens, the token as X-Subject-Token), authenticated as Hearth's
own cloud user (in a real deployment a service user in a service project; Keystone lets the `service`
role validate other users' tokens); the answer is parsed by `keystoneauth1.access` and cached (keyed by a
hash of the token) for `settings.token_cache_seconds`, never past the token's expiry, in an LRU of at most
`TOKEN_CACHE_SIZE` entries. The project in the URL must be the token's project, unless the token carries
the admin role. Tokens are never logged or echoed.

Revocation: the cache is short (5 s by default) rather than fed by Keystone's revocation events. Asking
Keystone again lets Keystone decide every kind of revocation (a token deleted, a user disabled, a role or
project removed) with no event matching of ours to get wrong, and a miss costs one GET (~3 ms on fakecloud).
A token Keystone no longer accepts is refused within `token_cache_seconds`; Keystone unreachable once the
entry is stale means 503, never a stale yes.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import Request
from keystoneauth1 import access
from keystoneauth1 import exceptions as ks_exceptions
from openstack import exceptions as os_exceptions

from hearth import metrics
from hearth.api.errors import ApiError
from hearth.engines.base import TransientError
from hearth.runtime import Runtime
from hearth.views import Links

ADMIN_ROLE = "admin"
TOKEN_CACHE_SIZE = 10_000  # validated tokens kept; the least recently used goes first


@dataclass(frozen=True)
class Principal:
    user_id: str
    project_id: str
    roles: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return ADMIN_ROLE in self.roles


class TokenValidator:
    """Keystone's verdict on tokens, cached: a bounded LRU, each entry valid until its own deadline."""

    def __init__(self, runtime: Runtime, max_entries: int = TOKEN_CACHE_SIZE) -> None:
        self.runtime = runtime
        self.max_entries = max_entries
        self._cache: OrderedDict[str, tuple[float, Principal]] = OrderedDict()
        self._lock = threading.Lock()

    def validate(self, token: str) -> Principal:
        key = hashlib.sha256(token.encode()).hexdigest()
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                if cached[0] > now:
                    self._cache.move_to_end(key)
                    metrics.count(metrics.TOKEN_VALIDATIONS, result="cached")
                    return cached[1]
                del self._cache[key]
        try:
            principal, expires_in = self._ask_keystone(token)
        except ApiError as err:
            metrics.count(metrics.TOKEN_VALIDATIONS, result="invalid" if err.status == 401 else "unavailable")
            raise
        metrics.count(metrics.TOKEN_VALIDATIONS, result="valid")
        ttl = min(self.runtime.settings.token_cache_seconds, expires_in)
        if ttl > 0:
            with self._lock:
                self._cache[key] = (now + ttl, principal)
                self._cache.move_to_end(key)
                while len(self._cache) > self.max_entries:
                    self._cache.popitem(last=False)
        return principal

    def _ask_keystone(self, token: str) -> tuple[Principal, float]:
        try:
            answer = self.runtime.connections.get().identity.validate_token(token, nocatalog=True)
        except os_exceptions.HttpException as exc:
            if exc.status_code in (401, 403, 404):
                raise ApiError(401, "The token in X-Auth-Token is invalid or expired.") from None
            raise ApiError(503, f"The identity service answered {exc.status_code} while validating the token.") \
                from None
        except (os_exceptions.SDKException, ks_exceptions.ClientException) as exc:
            raise ApiError(503, f"The identity service could not be reached ({exc.__class__.__name__}).") from None
        except TransientError as exc:  # Hearth's own cloud connection could not be made ready (discovery failed)
            raise ApiError(503, f"The cloud is unavailable ({exc}); retry the request later.") from None
        body = {"token": answer.to_dict(headers=False, computed=False, ignore_none=True, original_names=True)}
        info = access.create(body=body, auth_token=token)
        if not info.project_id:
            raise ApiError(401, "The token in X-Auth-Token is not scoped to a project.")
        expires_in = 3600.0
        if info.expires is not None:
            expires_in = (info.expires - datetime.now(UTC)).total_seconds()
            if expires_in <= 0:
                raise ApiError(401, "The token in X-Auth-Token is invalid or expired.")
        principal = Principal(user_id=info.user_id or "", project_id=info.project_id,
                              roles=frozenset(r.lower() for r in info.role_names or ()))
        return principal, expires_in


@dataclass
class Scope:
    """One authorised request: the runtime, the caller, the project it acts on, and link bases."""

    runtime: Runtime
    principal: Principal
    project_id: str
    links: Links
    region: str


def _region(request: Request, runtime: Runtime) -> str:
    region = getattr(request.app.state, "region", None)
    if region is None:
        try:
            region = runtime.connections.get().config.region_name or ""
        except Exception:
            region = ""
        request.app.state.region = region
    return region


def project_scope(request: Request, project_id: str) -> Scope:
    """FastAPI dependency for every `/v1.0/{project_id}/...` route: 401 without a valid token, 403 when
    the token's project is another one (and the caller is no admin)."""
    runtime: Runtime = request.app.state.runtime
    token = request.headers.get("x-auth-token")
    if not token:
        raise ApiError(401, "Authentication required: send a Keystone token in the X-Auth-Token header.")
    principal = request.app.state.tokens.validate(token)
    if principal.project_id != project_id and not principal.is_admin:
        raise ApiError(403, f"The token is not authorized for project {project_id}.")
    root = runtime.settings.public_url or str(request.base_url)
    return Scope(runtime=runtime, principal=principal, project_id=project_id, links=Links(root, project_id),
                 region=_region(request, runtime))
