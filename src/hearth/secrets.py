"""Secrets at rest: instance admin passwords and the like, sealed with Fernet before they are stored.

    key = load_or_create_key(Path("/var/lib/hearth/secret.key"))
    box = SecretBox([key])                 # more keys: the first seals, all open (rotation)
    token = box.seal("s3cret")             # store this
    box.open(token)                        # -> "s3cret"; SecretError on a wrong key or a tampered token

The key file is created once, atomically (O_CREAT|O_EXCL), mode 0600; an existing key file that group or
others can read is refused rather than used. `mask()` is what a log line shows in place of a secret.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

MASK = "***"


class SecretError(Exception):
    """A key or token problem; the message never contains the secret."""


def mask(text: object) -> str:
    """What logs show for a secret: nothing of it, not even its length."""
    return MASK


def _read_key(path: Path) -> bytes:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretError(f"refusing the key file {path}: it is accessible by group or others "
                          f"(mode {stat.S_IMODE(mode):04o}); run `chmod 600 {path}`")
    key = path.read_bytes().strip()
    try:
        Fernet(key)
    except (ValueError, TypeError):
        raise SecretError(f"the key file {path} does not hold a Fernet key") from None
    return key


def load_or_create_key(path: Path) -> bytes:
    """The Fernet key in `path`, created (with its parent directory) if the file does not exist."""
    path = Path(path)
    if path.exists():
        return _read_key(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Fernet.generate_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return _read_key(path)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, key + b"\n")
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)
    return key


class SecretBox:
    """Seals with the first key, opens with any of them (so keys can be rotated)."""

    def __init__(self, keys: Iterable[bytes | str]) -> None:
        keys = list(keys)
        if not keys:
            raise SecretError("a SecretBox needs at least one key")
        try:
            self._fernet = MultiFernet([Fernet(key) for key in keys])
        except (ValueError, TypeError):
            raise SecretError("a key is not a valid Fernet key") from None

    def __repr__(self) -> str:
        return f"SecretBox(keys={MASK})"

    def seal(self, text: str) -> str:
        return self._fernet.encrypt(text.encode()).decode("ascii")

    def open(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii") if isinstance(token, str) else token).decode()
        except (InvalidToken, UnicodeError, TypeError):
            raise SecretError("cannot open the secret: wrong key, or the token was altered") from None

    def rotate(self, token: str) -> str:
        """`token` sealed again with the first key (after a new key was put first)."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError):
            raise SecretError("cannot rotate the secret: wrong key, or the token was altered") from None
