"""A guest's network face: it listens at the server's addresses and lets in what its security groups allow.

Each (address, port) the server is reachable at gets a TCP listener on fakecloud's event loop. A new
connection is checked against the Neutron port that owns the address (`admit(port_id, source)`); one the
groups refuse is reset at once (a real firewall drops it silently, which a client only notices at its
timeout: a reset says the same thing without the wait). An admitted connection is spliced to the guest's own
Unix socket. After a rule or port change the plane calls `recheck`, which resets every live connection the
groups no longer admit, as Neutron's agents do by deleting the conntrack entries a removed rule allowed.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

CHUNK = 65536

Admit = Callable[[str, str], bool]  # (neutron port id, source address) -> accepted


@dataclass(eq=False)
class Connection:
    port_id: str
    source: str
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with an RST: the client sees the connection refused or reset, never a half-open one."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.transport.abort()


class Listeners:
    """One guest's listeners and live connections."""

    def __init__(self, guest_port: int, socket_path: str, admit: Admit) -> None:
        self.guest_port = guest_port
        self.socket_path = socket_path
        self.admit = admit
        self.servers: dict[str, tuple[str, asyncio.Server]] = {}  # address -> (neutron port id, listener)
        self.connections: set[Connection] = set()

    async def listen(self, wanted: dict[str, str]) -> list[str]:
        """Listen at exactly `wanted` (address -> neutron port id); returns a line per address that failed."""
        problems = []
        for address in [a for a in self.servers if a not in wanted]:
            _port_id, server = self.servers.pop(address)
            server.close()
        for address, port_id in wanted.items():
            if address in self.servers:
                self.servers[address] = (port_id, self.servers[address][1])
                continue
            try:
                server = await asyncio.start_server(lambda r, w, a=address: self._accept(a, r, w), address,
                                                    self.guest_port, reuse_address=True)
            except OSError as exc:
                problems.append(f"cannot listen on {address}:{self.guest_port}: {exc.strerror or exc}")
                continue
            self.servers[address] = (port_id, server)
        return problems

    async def _accept(self, address: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        entry = self.servers.get(address)
        source = writer.get_extra_info("peername")[0]
        if entry is None or not self.admit(entry[0], source):
            reset(writer)
            return
        connection = Connection(entry[0], source, writer)
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(self.socket_path)
        except OSError:
            reset(writer)  # the guest is not (or no longer) listening: connection refused
            return
        connection.upstream = up_writer
        self.connections.add(connection)
        connection.tasks = [asyncio.create_task(_pump(reader, up_writer)),
                            asyncio.create_task(_pump(up_reader, writer))]
        try:
            await asyncio.gather(*connection.tasks, return_exceptions=True)
        finally:
            self.connections.discard(connection)
            for side in (writer, up_writer):
                side.close()

    def recheck(self) -> int:
        """Reset the live connections the groups no longer admit; returns how many."""
        dropped = [c for c in self.connections if not self.admit(c.port_id, c.source)]
        for connection in dropped:
            self._drop(connection)
        return len(dropped)

    def _drop(self, connection: Connection) -> None:
        self.connections.discard(connection)
        reset(connection.client)
        if connection.upstream is not None:
            connection.upstream.transport.abort()

    def shut(self) -> list[asyncio.Server]:
        """Stop listening and cut every connection, now; returns the listeners still closing."""
        servers = [server for _port_id, server in self.servers.values()]
        self.servers.clear()
        for server in servers:
            server.close()
        for connection in list(self.connections):
            self._drop(connection)
        return servers

    async def close(self) -> None:
        """Stop listening and cut every connection (the server is going down)."""
        for server in self.shut():
            with contextlib.suppress(Exception):
                await server.wait_closed()
