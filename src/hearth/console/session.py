"""Who is using the console: a Keystone token obtained at login, kept in a cookie sealed with the runtime's
Fernet key (hearth.secrets), so it is never readable by the browser's scripts (HttpOnly), never sent by
another site (SameSite=Strict), and never in a URL or a log line.

Each page opens the cookie and has the token judged by the API's own TokenValidator: a token Keystone no
longer accepts sends the user back to the login page, exactly as the API would answer 401.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from keystoneauth1 import exceptions as ks_exceptions
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from hearth.runtime import Runtime
from hearth.secrets import SecretError

COOKIE = "hearth_console"
COOKIE_PATH = "/console"
COOKIE_MAX_AGE = 12 * 3600  # the browser forgets it after a working day; Keystone's expiry is checked anyway
DOMAIN = "Default"


class LoginFailed(Exception):
    """Keystone refused the credentials, or could not be asked; the message is safe to show."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class ConsoleUser:
    """What the cookie holds: the token (secret) and the names the header shows."""

    token: str
    username: str
    project_name: str

    def __repr__(self) -> str:  # never show the token, even in a traceback's locals
        return f"ConsoleUser(username={self.username!r}, project_name={self.project_name!r}, token=***)"


def keystone_url(runtime: Runtime) -> str:
    """The Keystone the runtime's own cloud connection authenticates against (its clouds.yaml entry)."""
    auth: dict[str, Any] = runtime.connections.get().config.config.get("auth") or {}
    url = str(auth.get("auth_url") or "").rstrip("/")
    if not url:
        raise LoginFailed("The cloud's identity service is not configured.", status=503)
    return url if url.endswith("/v3") else f"{url}/v3"


def login(runtime: Runtime, username: str, password: str, project_name: str) -> ConsoleUser:
    """A project-scoped token for the user, from Keystone (password authentication, Default domain)."""
    auth = v3.Password(auth_url=keystone_url(runtime), username=username, password=password,
                       project_name=project_name, user_domain_name=DOMAIN, project_domain_name=DOMAIN)
    try:
        token = ks_session.Session(auth=auth).get_token()
    except (ks_exceptions.Unauthorized, ks_exceptions.BadRequest, ks_exceptions.NotFound,
            ks_exceptions.Forbidden, ks_exceptions.AuthorizationFailure):
        raise LoginFailed("Invalid username, password or project.") from None
    except ks_exceptions.ClientException as exc:
        raise LoginFailed(f"The identity service could not be reached ({exc.__class__.__name__}).",
                          status=503) from None
    if not token:
        raise LoginFailed("Invalid username, password or project.")
    return ConsoleUser(token=token, username=username, project_name=project_name)


def seal(runtime: Runtime, user: ConsoleUser) -> str:
    """The cookie's value: the user, encrypted and authenticated with the runtime's key."""
    body = {"t": user.token, "u": user.username, "p": user.project_name}
    return runtime.secrets.seal(json.dumps(body, separators=(",", ":")))


def unseal(runtime: Runtime, value: str | None) -> ConsoleUser | None:
    """The user a cookie holds; None for no cookie, another key's, or a tampered one."""
    if not value:
        return None
    try:
        body = json.loads(runtime.secrets.open(value))
        return ConsoleUser(token=str(body["t"]), username=str(body["u"]), project_name=str(body["p"]))
    except (SecretError, ValueError, KeyError, TypeError):
        return None
