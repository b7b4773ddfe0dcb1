"""The guest plane: which guests should run now, and making it so as servers live, move and die.

A server runs a guest when its image names one in the `fakecloud_guest` property (see README, "Guests").
The backends only say *that* something changed (`server_changed`, `network_changed`, `volume_deleted`); the
plane works out what should be (`_want`) and drives each server's guest towards it, one task per server, on
fakecloud's event loop. A server whose status leaves ACTIVE (reboot, stop, resize, revert, rebuild) has its
guest stopped, and started again when it is back: the guest follows the server's power cycles, as a process
inside a VM does. Nothing runs until `start()` (the served cloud's lifespan); a bare `Cloud` in a unit test
has an inert plane.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import shutil
import tempfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from openstack_fakecloud.guests.disks import Disks, GuestAccount, used_bytes
from openstack_fakecloud.guests.listeners import Listeners
from openstack_fakecloud.guests.postgres import GuestFailure, PostgresGuest

if TYPE_CHECKING:
    from openstack_fakecloud.compute.backend import Server
    from openstack_fakecloud.state import Cloud

log = logging.getLogger(__name__)

GUEST_PROPERTY = "fakecloud_guest"  # the image property that names a server's guest
GUEST_KINDS = {PostgresGuest.kind: PostgresGuest}
RUNNING_STATUSES = frozenset({"ACTIVE", "VERIFY_RESIZE"})
STOPPING_TASKS = frozenset({"deleting", "powering-off"})
CONSOLE_LINES = 500
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
GIB = 1 << 30


@dataclass(frozen=True, slots=True)
class Want:
    """What a server's guest should be now."""

    kind: str
    disk: tuple[str, str]  # ("volume", volume id) or ("root", server id): where its data lives
    disk_limit: int  # bytes; 0: no limit (a flavor without a root disk size)
    password: str
    addresses: dict[str, str]  # reachable address -> the Neutron port that owns it


@dataclass(eq=False)
class Guest:
    """A guest that is running."""

    kind: str
    disk: tuple[str, str]
    engine: PostgresGuest
    listeners: Listeners


class GuestPlane:
    """Told by the backends what changed; runs, restarts and stops guest processes and their listeners."""

    def __init__(self, cloud: Cloud) -> None:
        self.cloud = cloud
        self.account = GuestAccount.for_this_process()
        self.disks: Disks | None = None
        self.guests: dict[str, Guest] = {}
        self.consoles: dict[str, deque[str]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sockets: Path | None = None
        self._dirty: set[str] = set()
        self._cycled: set[str] = set()  # servers seen out of a running status since their guest started
        self._wiped: set[str] = set()  # servers whose root disk a rebuild replaces
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._network_pending = False
        self._starting: dict[str, PostgresGuest] = {}  # engines whose start is under way (stopped if cancelled)
        # Servers whose running guest is about to stop for another disk (a volume attached or detached, a
        # rebuild): it refuses new connections from the moment the change is made, before the attach or the
        # rebuild is reported done, so no client (Hearth setting the database up) reaches the outgoing one.
        self._retiring: set[str] = set()
        self._template_lock = asyncio.Lock()

    # what the backends say ------------------------------------------------------------------
    def server_changed(self, server_id: str, rebuilt: bool = False) -> None:
        """A server's state, image, password or attached volumes changed."""
        if not server_id:
            return  # an attachment Cinder made for no server
        server = self.cloud.compute.servers.get(server_id)
        if server is None and server_id not in self.guests:
            if self.disks is not None:
                self.disks.remove_root_disk(server_id)
            self.consoles.pop(server_id, None)
            return
        if server is not None and self._kind_of(server.image_id) is None and server_id not in self.guests:
            return
        if rebuilt:
            self._wiped.add(server_id)
        if server is None or not self._runs(server):
            self._cycled.add(server_id)
        guest = self.guests.get(server_id)
        if guest is not None:
            want = self._want(server_id)
            if rebuilt or want is None or (want.kind, want.disk) != (guest.kind, guest.disk):
                self._retiring.add(server_id)
        self._dirty.add(server_id)
        self._kick()

    def network_changed(self) -> None:
        """Addresses, floating IPs, port security groups or rules changed: listeners and live connections
        are checked again (coalesced: one sweep per event-loop turn)."""
        if self._loop is None or self._network_pending or not self.guests:
            return
        self._network_pending = True
        self._loop.call_soon(self._network_sweep)

    def volume_deleted(self, volume_id: str) -> None:
        """A volume is gone: its backing store goes with it."""
        if self.disks is not None:
            self.disks.remove_volume(volume_id)

    # what others read -----------------------------------------------------------------------
    def console(self, server_id: str) -> list[str]:
        return list(self.consoles.get(server_id, ()))

    def status(self) -> list[dict[str, object]]:
        """What runs now, for the admin API."""
        return [{"server_id": server_id, "kind": guest.kind, "disk": {"type": guest.disk[0], "id": guest.disk[1]},
                 "port": guest.engine.port, "addresses": sorted(guest.listeners.servers),
                 "connections": len(guest.listeners.connections), "pid": guest.engine.pid}
                for server_id, guest in self.guests.items()]

    def volume_used(self, volume_id: str) -> int:
        """Bytes used on a volume's backing store (what a guest agent reports as `volume.used`)."""
        return self.disks.volume_used(volume_id) if self.disks is not None else 0

    # lifecycle ------------------------------------------------------------------------------
    def start(self, data_root: Path | None) -> None:
        """Begin running guests on the current event loop; stores under `data_root` (a temporary folder,
        removed at stop, when None: an in-memory cloud keeps no data)."""
        self._loop = asyncio.get_running_loop()
        self._template_lock = asyncio.Lock()
        self._ephemeral = data_root is None
        root = data_root or Path(tempfile.mkdtemp(prefix="fakecloud-disks-"))
        root.mkdir(parents=True, exist_ok=True)
        self.disks = Disks(root, self.account)
        self._sockets = Path(tempfile.mkdtemp(prefix="fcg-"))  # short: a Unix socket path has ~100 bytes
        self.account.make_reachable(self._sockets)
        for server in list(self.cloud.compute.servers.values()):
            if self._kind_of(server.image_id) is not None:
                self._dirty.add(server.id)
        self._kick()

    async def stop(self) -> None:
        """Stop every guest (a restart with the saved state starts them again)."""
        for task in self._tasks.values():
            task.cancel()
        for task in list(self._tasks.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        for engine in list(self._starting.values()):  # cancelled halfway: its process may already run
            await engine.stop()
        self._starting.clear()
        for server_id in list(self.guests):
            await self._stop_guest(server_id)
        if self._sockets is not None:
            shutil.rmtree(self._sockets, ignore_errors=True)
        if self.disks is not None and self._ephemeral:
            shutil.rmtree(self.disks.root, ignore_errors=True)
        self._loop = None

    def reset(self) -> None:
        """The cloud was reset: its servers and volumes are gone. Guests stop listening at once (the next
        server may get the same address), their processes stop on the next turns, and every store no guest
        holds is removed now."""
        for guest in self.guests.values():
            guest.listeners.shut()
        for server_id in list(self.guests):
            self.server_changed(server_id)
        if self.disks is not None:
            held = {guest.disk for guest in self.guests.values()} | {("root", sid) for sid in self._tasks}
            self.disks.remove_all_but(held)
        self.consoles.clear()

    # driving towards what is wanted ---------------------------------------------------------
    def _kick(self) -> None:
        if self._loop is None:
            return
        for server_id in list(self._dirty):
            task = self._tasks.get(server_id)
            if task is None or task.done():
                self._tasks[server_id] = self._loop.create_task(self._drive(server_id))

    async def _drive(self, server_id: str) -> None:
        try:
            while server_id in self._dirty:
                self._dirty.discard(server_id)
                await self._apply(server_id, self._want(server_id))
        except Exception:  # a guest must never take the cloud down: say so in its console
            log.exception("guest of server %s failed", server_id)
            self._say(server_id, "fakecloud: the guest failed unexpectedly (see fakecloud's log)")
        finally:
            self._tasks.pop(server_id, None)

    def _kind_of(self, image_id: str) -> str | None:
        image = self.cloud.image.images.get(image_id) if image_id else None
        kind = image.properties.get(GUEST_PROPERTY) if image is not None else None
        return kind if kind in GUEST_KINDS else None

    @staticmethod
    def _runs(server: Server) -> bool:
        return server.status in RUNNING_STATUSES and server.task_state not in STOPPING_TASKS

    def _want(self, server_id: str) -> Want | None:
        server = self.cloud.compute.servers.get(server_id)
        if server is None or not self._runs(server):
            return None
        kind = self._kind_of(server.image_id)
        if kind is None:
            return None
        attached = sorted((a for a in self.cloud.volume.attachments_of_server(server_id) if a.status == "attached"),
                          key=lambda a: a.device)
        if attached:
            volume = self.cloud.volume.volumes.get(attached[0].volume_id)
            disk, limit = ("volume", attached[0].volume_id), (volume.size * GIB if volume is not None else 0)
        else:
            disk, limit = ("root", server_id), server.flavor.disk * GIB
        addresses = {address: port_id for address, port_id in self.cloud.network.reachable_addresses(server_id)
                     if ipaddress.ip_address(address) in LOOPBACK}
        return Want(kind, disk, limit, server.admin_pass, addresses)

    async def _apply(self, server_id: str, want: Want | None) -> None:
        guest = self.guests.get(server_id)
        cycled = server_id in self._cycled
        if want is None or cycled or (guest is not None and (guest.disk != want.disk or guest.kind != want.kind
                                                              or not guest.engine.running)):
            if guest is not None:
                await self._stop_guest(server_id)
                self._retiring.discard(server_id)
                if guest.disk[0] == "volume" and guest.disk[1] not in self.cloud.volume.volumes:
                    self.volume_deleted(guest.disk[1])  # dropped by a reset while the guest still ran
                guest = None
            if server_id in self._wiped and self.disks is not None:
                self._wiped.discard(server_id)
                self.disks.remove_root_disk(server_id)
                self._say(server_id, "fakecloud: root disk replaced by the rebuild")
            if server_id not in self.cloud.compute.servers:
                if self.disks is not None:
                    self.disks.remove_root_disk(server_id)
                self.consoles.pop(server_id, None)
                return
        if want is None:
            return
        self._cycled.discard(server_id)
        if guest is None:
            await self._start_guest(server_id, want)
            return
        self._retiring.discard(server_id)  # the change was undone before the guest stopped: it stays
        for problem in await guest.listeners.listen(want.addresses):
            self._say(server_id, problem)

    async def _start_guest(self, server_id: str, want: Want) -> None:
        assert self.disks is not None and self._sockets is not None
        path = self.disks.volume(want.disk[1]) if want.disk[0] == "volume" else self.disks.root_disk(server_id)
        self._say(server_id, f"fakecloud: starting guest {want.kind}, data on {want.disk[0]} {want.disk[1]}")
        if want.disk_limit and used_bytes(path) >= want.disk_limit:
            self._say(server_id, f"{want.kind}: cannot start: No space left on device ({want.disk[0]} "
                                 f"{want.disk[1]} is full)")
            return
        console = self.consoles.setdefault(server_id, deque(maxlen=CONSOLE_LINES))
        engine = GUEST_KINDS[want.kind](path, self._sockets / server_id[:8], self.account, console,  # type: ignore[arg-type]
                                        self.disks.root / "templates", self._template_lock)
        self._starting[server_id] = engine
        try:
            await engine.start(want.password)
        except (GuestFailure, OSError, TimeoutError) as exc:
            await engine.stop()
            self._say(server_id, f"{want.kind}: cannot start: {exc}")
            return
        finally:
            self._starting.pop(server_id, None)
        now = self._want(server_id)  # what changed while it started (a reset, a delete, a new volume...)
        if now is None or (now.kind, now.disk, now.password) != (want.kind, want.disk, want.password):
            await engine.stop()
            self._dirty.add(server_id)
            return
        want = now
        listeners = Listeners(engine.port, engine.socket_path,
                              lambda port_id, source: server_id not in self._retiring
                              and self.cloud.network.ingress_allowed(port_id, "tcp", engine.port, source))
        problems = await listeners.listen(want.addresses)
        for problem in problems:
            self._say(server_id, f"{want.kind}: {problem}")
        if problems and not listeners.servers:
            await engine.stop()
            self._say(server_id, f"{want.kind}: cannot start: no address to listen on")
            return
        self.guests[server_id] = Guest(want.kind, want.disk, engine, listeners)
        if server_id in self._dirty:
            self._kick()

    async def _stop_guest(self, server_id: str) -> None:
        guest = self.guests.pop(server_id, None)
        if guest is None:
            return
        await guest.listeners.close()
        await guest.engine.stop()

    def _network_sweep(self) -> None:
        self._network_pending = False
        for server_id, guest in list(self.guests.items()):
            dropped = guest.listeners.recheck()
            if dropped:
                self._say(server_id, f"fakecloud: security groups changed: {dropped} connection(s) reset")
            self._dirty.add(server_id)
        self._kick()

    def say(self, server_id: str, line: str) -> None:
        """A line on the server's console (what its serial port printed): Nova's power events write here."""
        self.consoles.setdefault(server_id, deque(maxlen=CONSOLE_LINES)).append(line)

    def _say(self, server_id: str, line: str) -> None:
        self.consoles.setdefault(server_id, deque(maxlen=CONSOLE_LINES)).append(line)
        log.info("guest %s: %s", server_id, line)
