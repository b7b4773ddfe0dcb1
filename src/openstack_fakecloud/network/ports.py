"""Ports: the ones Nova makes for servers and the ones users make, their addresses, MACs and groups.

Ports are indexed by device (every server GET reads a server's ports), so neither Nova's reads nor
a server's deletion scan every port.
"""

from __future__ import annotations

import ipaddress
import itertools
import random
from collections.abc import Callable, Iterable
from typing import Any

from openstack_fakecloud.errors import CloudError, Conflict, Forbidden, NotFound
from openstack_fakecloud.network.ipam import Ipam
from openstack_fakecloud.network.networks import Topology
from openstack_fakecloud.network.quotas import Quotas
from openstack_fakecloud.network.records import Port, new_id, visible
from openstack_fakecloud.network.requests import FixedIp, PortCreate, PortUpdate
from openstack_fakecloud.network.secgroups import SecurityGroups


class Ports:
    """The port records with their device index and MAC set; addresses come from the IPAM."""

    def __init__(self, now: Callable[[], str], rng: random.Random, ipam: Ipam, topology: Topology,
                 secgroups: SecurityGroups, quotas: Quotas, ports: Iterable[Port] = (), *,
                 guard_delete: Callable[[Port], None] = lambda port: None,
                 dropped: Callable[[Port], None] = lambda port: None) -> None:
        """`guard_delete(port)` may refuse a user's DELETE (a router's or a floating IP's port);
        `dropped(port)` hears of every port that goes (its floating IPs are disassociated)."""
        self._guard_delete = guard_delete
        self._dropped = dropped
        self._now = now
        self._random = rng
        self._ipam = ipam
        self._topology = topology
        self._secgroups = secgroups
        self._quotas = quotas
        self.by_id: dict[str, Port] = {p.id: p for p in ports}
        self._macs: set[str] = {p.mac_address for p in self.by_id.values()}
        self._order = itertools.count()
        self._seq: dict[str, int] = {}
        self._by_device: dict[str, dict[str, Port]] = {}
        for port in self.by_id.values():
            self._index(port)

    # indexes -------------------------------------------------------------------------------
    def _index(self, port: Port) -> None:
        """Record the port under its device; the sequence keeps `ports_of_device` in creation order."""
        if port.id not in self._seq:
            self._seq[port.id] = next(self._order)
        self._by_device.setdefault(port.device_id, {})[port.id] = port

    def _unindex(self, port: Port) -> None:
        ports = self._by_device.get(port.device_id)
        if ports is not None:
            ports.pop(port.id, None)
            if not ports:
                del self._by_device[port.device_id]

    def _set_device(self, port: Port, device_id: str) -> None:
        """The one place a stored port changes device, so the device index follows."""
        if port.device_id != device_id:
            self._unindex(port)
            port.device_id = device_id
            self._index(port)

    def _changed(self, port: Port) -> None:
        port.updated_at = self._now()
        port.revision_number += 1

    def _mac(self) -> str:
        while True:
            mac = "fa:16:3e:" + ":".join(f"{self._random.randrange(256):02x}" for _ in range(3))
            if mac not in self._macs:
                return mac

    # questions other stores ask ------------------------------------------------------------
    def on_network(self, network_id: str) -> bool:
        return any(p.network_id == network_id for p in self.by_id.values())

    def projects_on(self, network_id: str) -> set[str]:
        return {p.project_id for p in self.by_id.values() if p.network_id == network_id}

    def uses_group(self, group_id: str) -> bool:
        return any(group_id in p.security_groups for p in self.by_id.values())

    def count(self, project_id: str) -> int:
        return sum(1 for p in self.by_id.values() if p.project_id == project_id)

    # ports ---------------------------------------------------------------------------------
    def create_port(self, project_id: str, admin: bool, request: PortCreate, created_by_nova: bool) -> Port:
        """Allocate a port: the requested (or next free) IPs, a fresh MAC, the default group if none named."""
        network = self._topology.usable_network(request.network_id, project_id, admin)
        if request.host_id is not None and not admin:
            raise Forbidden("(rule:create_port:binding:host_id) is disallowed by policy")
        self._quotas.check(project_id, "port", 1)
        if request.security_groups is None:
            groups = [self._secgroups.default_group(project_id).id]
        else:
            groups = self._secgroups.resolve_ids(project_id, request.security_groups)
        mac_address = request.mac_address
        if mac_address is not None and mac_address in self._macs:
            raise Conflict(f"Unable to complete operation for network {network.id}. The mac address "
                           f"{mac_address} is in use.", error_type="MacAddressInUse")
        ips = self._ipam.allocate(network, request.fixed_ips)
        now = self._now()
        port = Port(new_id(), request.name, network.id, project_id, request.device_id, request.device_owner,
                    mac_address or self._mac(), ips, groups, now, now,
                    status="ACTIVE" if request.device_id else "DOWN", admin_state_up=request.admin_state_up,
                    description=request.description, created_by_nova=created_by_nova,
                    host_id=request.host_id or "")
        self.by_id[port.id] = port
        self._index(port)
        self._macs.add(port.mac_address)
        return port

    def get_port(self, port_id: str, project_id: str | None, admin: bool = False) -> Port:
        port = self.by_id.get(port_id)
        if port is None or not visible(port.project_id, project_id, admin):
            raise NotFound(f"Port {port_id} could not be found.", error_type="PortNotFound")
        return port

    def list_ports(self, project_id: str, admin: bool) -> list[Port]:
        return [p for p in self.by_id.values() if admin or p.project_id == project_id]

    def update_port(self, port_id: str, project_id: str, admin: bool, request: PortUpdate) -> Port:
        port = self.get_port(port_id, project_id, admin)
        if request.host_id is not None:
            if not admin:
                raise Forbidden("(rule:update_port:binding:host_id) is disallowed by policy")
            port.host_id = request.host_id
        if request.fixed_ips is not None:
            self.reassign_fixed_ips(port, request.fixed_ips)
        if request.security_groups is not None:
            port.security_groups = self._secgroups.resolve_ids(port.project_id, request.security_groups)
        for key in ("name", "description", "device_owner"):
            value = getattr(request, key)
            if value is not None:
                setattr(port, key, value)
        if request.device_id is not None:
            self._set_device(port, request.device_id)
        if request.admin_state_up is not None:
            port.admin_state_up = request.admin_state_up
        if request.port_security_enabled is not None:
            port.port_security_enabled = request.port_security_enabled
        self._changed(port)
        return port

    def reassign_fixed_ips(self, port: Port, requests: list[FixedIp] | None) -> None:
        """New fixed IPs for a port (None: one automatic address; []: none). The old addresses are
        given back first; if the new ones are refused (in use, outside the subnet) the old are kept."""
        network = self._topology.get_network(port.network_id, None)
        old = list(port.fixed_ips)
        self._ipam.release(old)
        try:
            port.fixed_ips = self._ipam.allocate(network, requests) if requests != [] else []
        except CloudError:
            self._ipam.retake(old)
            raise
        self._changed(port)

    def delete_port(self, port_id: str, project_id: str, admin: bool) -> None:
        port = self.get_port(port_id, project_id, admin)
        self._guard_delete(port)
        self._drop(port)

    def _drop(self, port: Port) -> None:
        del self.by_id[port.id]
        self._unindex(port)
        self._seq.pop(port.id, None)
        self._macs.discard(port.mac_address)
        self._ipam.release(port.fixed_ips)
        self._dropped(port)

    # ports the L3 service makes (openstack_fakecloud.network.routers, floatingips) ---------------------
    def create_service_port(self, project_id: str, network_id: str, device_id: str, device_owner: str,
                            fixed_ips: list[dict[str, str]]) -> Port:
        """A router interface, router gateway or floating IP port, with addresses already taken from the
        IPAM: no quota (Neutron checks quotas at its API, not for the ports its services make), no groups."""
        now = self._now()
        port = Port(new_id(), "", network_id, project_id, device_id, device_owner, self._mac(), fixed_ips, [],
                    now, now, status="ACTIVE" if device_owner != "network:floatingip" else "N/A")
        self.by_id[port.id] = port
        self._index(port)
        self._macs.add(port.mac_address)
        return port

    def attach(self, port: Port, device_id: str, device_owner: str) -> None:
        """A user's port becomes a router interface (add_router_interface by port)."""
        self._set_device(port, device_id)
        port.device_owner = device_owner
        port.status = "ACTIVE"
        self._changed(port)

    def drop_service_port(self, port_id: str) -> None:
        """Remove a port the L3 service owns (no `guard_delete`: the service itself lets it go)."""
        port = self.by_id.get(port_id)
        if port is not None:
            self._drop(port)

    # Nova's side ---------------------------------------------------------------------------
    def of_device(self, device_id: str) -> list[Port]:
        """The device's ports in creation order, read from the device index."""
        ports = self._by_device.get(device_id)
        if not ports:
            return []
        return sorted(ports.values(), key=lambda p: self._seq[p.id])

    def delete_of_device(self, device_id: str) -> None:
        """Nova deleting a server: the ports Nova made go; ports the user made and Nova bound stay, unbound."""
        for port in self.of_device(device_id):
            if not port.device_owner.startswith("compute:"):
                continue
            if port.created_by_nova:
                self._drop(port)
            else:
                self._set_device(port, "")
                port.device_owner = ""
                port.status = "DOWN"
                self._changed(port)

    def bind(self, port_id: str, device_id: str) -> Port:
        port = self.get_port(port_id, None)
        if port.device_id and port.device_id != device_id:
            raise Conflict(f"Port {port.id} is still in use.", error_type="PortInUse")
        self._set_device(port, device_id)
        port.device_owner = "compute:nova"
        port.status = "ACTIVE"
        self._changed(port)
        return port

    def set_groups(self, port_id: str, group_ids: list[str]) -> None:
        port = self.get_port(port_id, None)
        port.security_groups = self._secgroups.resolve_ids(port.project_id, group_ids)
        self._changed(port)

    def server_addresses(self, device_id: str) -> dict[str, list[dict[str, Any]]]:
        """Nova's `addresses`: fixed IPs of the server's ports, grouped by network name."""
        addresses: dict[str, list[dict[str, Any]]] = {}
        for port in self.of_device(device_id):
            network = self._topology.networks.get(port.network_id)
            entries = addresses.setdefault(network.name if network else port.network_id, [])
            for ip in port.fixed_ips:
                version = ipaddress.ip_address(ip["ip_address"]).version
                entries.append({"addr": ip["ip_address"], "version": version, "OS-EXT-IPS:type": "fixed",
                                "OS-EXT-IPS-MAC:mac_addr": port.mac_address})
        return addresses
