"""Keystone application credentials: a user's delegated secret that authenticates into one project with a
subset of the user's roles there (`POST /v3/auth/tokens` with the `application_credential` method).

Why a store of its own: the credentials belong to users, but their rules (the secret is shown once, only a hash
is kept, names are unique per user, expiry) are apart from tokens and assignments. IdentityBackend owns one.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from openstack_fakecloud.errors import BadRequest, Conflict, NotFound, Unauthorized

EXPIRY_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"  # how Keystone shows `expires_at` (naive UTC, microseconds)


@dataclass(slots=True)
class ApplicationCredential:
    id: str
    name: str
    user_id: str
    project_id: str
    secret_hash: str
    roles: list[str]  # role names, a subset of the user's roles on the project when created
    description: str | None = None
    expires_at: str | None = None
    unrestricted: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_expiry(raw: Any) -> str | None:
    """`expires_at` as ISO 8601 (naive means UTC), rendered the way Keystone shows it back."""
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise BadRequest(f"Invalid input for field 'expires_at': {raw!r} is not of type 'string', 'null'")
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"Invalid input for field 'expires_at': {raw!r} is not a valid date-time") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.strftime(EXPIRY_FORMAT)


def expired(credential: ApplicationCredential, now: datetime) -> bool:
    if credential.expires_at is None:
        return False
    return datetime.strptime(credential.expires_at, EXPIRY_FORMAT).replace(tzinfo=UTC) <= now


class AppCredStore:
    """Every application credential by id."""

    def __init__(self) -> None:
        self.credentials: dict[str, ApplicationCredential] = {}

    def create(self, user_id: str, project_id: str, name: str, roles: list[str], secret: str | None,
               description: str | None, expires_at: str | None, unrestricted: bool,
               now: datetime) -> tuple[ApplicationCredential, str]:
        """The new credential and its secret (generated when not given; shown only in the create answer)."""
        if any(c.user_id == user_id and c.name == name for c in self.credentials.values()):
            raise Conflict(f"Conflict occurred attempting to store application_credential - Duplicate entry found "
                           f"with name {name}.")
        if expires_at is not None and datetime.strptime(expires_at, EXPIRY_FORMAT).replace(tzinfo=UTC) <= now:
            raise BadRequest("The expiration date of the application credential is in the past.")
        secret = secret or secrets.token_urlsafe(64)
        credential = ApplicationCredential(secrets.token_hex(16), name, user_id, project_id, hash_secret(secret),
                                           roles, description, expires_at, unrestricted)
        self.credentials[credential.id] = credential
        return credential, secret

    def of_user(self, user_id: str) -> list[ApplicationCredential]:
        return [c for c in self.credentials.values() if c.user_id == user_id]

    def get(self, user_id: str, credential_id: str) -> ApplicationCredential:
        credential = self.credentials.get(credential_id)
        if credential is None or credential.user_id != user_id:
            raise NotFound(f"Could not find Application Credential: {credential_id}.")
        return credential

    def delete(self, user_id: str, credential_id: str) -> None:
        del self.credentials[self.get(user_id, credential_id).id]

    def forget_user(self, user_id: str) -> None:
        for credential in self.of_user(user_id):
            del self.credentials[credential.id]

    def authenticate(self, ref: dict[str, Any], user_id_by_ref: Any, now: datetime) -> ApplicationCredential:
        """The credential an `application_credential` auth method names, by id or by name and user."""
        secret = ref.get("secret")
        credential = None
        if "id" in ref:
            credential = self.credentials.get(ref["id"])
        elif "name" in ref and isinstance(ref.get("user"), dict):
            user_id = user_id_by_ref(ref["user"])
            credential = next((c for c in self.credentials.values()
                               if c.name == ref["name"] and c.user_id == user_id), None)
        if (credential is None or not isinstance(secret, str) or hash_secret(secret) != credential.secret_hash
                or expired(credential, now)):
            raise Unauthorized("The request you have made requires authentication.")
        return credential

    def dump(self) -> list[dict[str, Any]]:
        return [asdict(c) for c in self.credentials.values()]

    def load(self, data: list[dict[str, Any]]) -> None:
        self.credentials = {c["id"]: ApplicationCredential(**c) for c in data}
