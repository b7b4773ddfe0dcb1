"""Backing stores: the directories that are a volume's and a server's root disk's contents.

A volume's store outlives its attachments (detach, re-attach, extend) and fakecloud restarts; deleting the
volume removes it. A root disk's store lives as long as its server and is wiped by a rebuild, as a real root
disk is. Guests run as an unprivileged user when fakecloud runs as root (PostgreSQL refuses to run as root), so
the stores belong to that user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

GUEST_ACCOUNT = "nobody"  # present on every Linux; guests need no rights beyond their own stores


@dataclass(frozen=True, slots=True)
class GuestAccount:
    """The uid/gid guest processes run as; None for both when fakecloud itself is not root."""

    uid: int | None = None
    gid: int | None = None

    @classmethod
    def for_this_process(cls) -> GuestAccount:
        if os.geteuid() != 0:
            return cls()
        entry = pwd.getpwnam(GUEST_ACCOUNT)
        return cls(entry.pw_uid, entry.pw_gid)

    def own(self, path: Path) -> None:
        """Give `path` (not what is below it) to the guest account, readable by it alone."""
        if self.uid is not None and self.gid is not None:
            os.chown(path, self.uid, self.gid)
        path.chmod(0o700)

    def make_reachable(self, path: Path) -> None:
        """Let the guest account traverse every ancestor of `path` (search permission only, no listing)."""
        if self.uid is None:
            return
        for ancestor in [path, *path.parents]:
            mode = ancestor.stat().st_mode
            if not mode & stat.S_IXOTH:
                ancestor.chmod(mode | stat.S_IXOTH)


def used_bytes(path: Path) -> int:
    """Bytes the files below `path` take on disk (what `df` would count as used on that volume)."""
    total = 0
    if not path.exists():
        return 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_blocks * 512
            except FileNotFoundError:
                continue  # a file the guest removed while we counted
    return total


class Disks:
    """The stores under one root: `volumes/<volume id>` and `roots/<server id>`."""

    def __init__(self, root: Path, account: GuestAccount) -> None:
        self.root = root
        self.account = account

    def _path(self, kind: str, name: str) -> Path:
        if not name or "/" in name or name in (".", ".."):
            raise ValueError(f"not a resource id: {name!r}")
        return self.root / kind / name

    def _store(self, kind: str, name: str) -> Path:
        path = self._path(kind, name)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            self.account.make_reachable(path.parent)
            path.mkdir()
            self.account.own(path)
        return path

    def volume(self, volume_id: str) -> Path:
        return self._store("volumes", volume_id)

    def root_disk(self, server_id: str) -> Path:
        return self._store("roots", server_id)

    def volume_used(self, volume_id: str) -> int:
        return used_bytes(self._path("volumes", volume_id))

    def remove_volume(self, volume_id: str) -> None:
        shutil.rmtree(self._path("volumes", volume_id), ignore_errors=True)

    def remove_root_disk(self, server_id: str) -> None:
        shutil.rmtree(self._path("roots", server_id), ignore_errors=True)

    def remove_all_but(self, held: set[tuple[str, str]]) -> None:
        """Remove every store but `held` (("volume", id) or ("root", server id)): after a reset."""
        for kind, folder in (("volume", "volumes"), ("root", "roots")):
            parent = self.root / folder
            if parent.is_dir():
                for path in parent.iterdir():
                    if (kind, path.name) not in held:
                        shutil.rmtree(path, ignore_errors=True)
