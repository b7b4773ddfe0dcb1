"""Floating IPs (Neutron's L3 service): addresses on an external network, associated with a port.

A floating IP's address is held by a `network:floatingip` port on the external network (so the address
is taken in the IPAM and the network cannot be deleted under it). Associating one with a port needs a
router that connects the port's subnet to that external network, as in Neutron. `changed()` is called
after every change to which floating IP reaches which port (the guest plane listens there).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable

from openstack_fakecloud.errors import BadRequest, CloudError, Conflict, Forbidden, NotFound
from openstack_fakecloud.network.ipam import Ipam
from openstack_fakecloud.network.networks import Topology
from openstack_fakecloud.network.ports import Ports
from openstack_fakecloud.network.quotas import Quotas
from openstack_fakecloud.network.records import FloatingIp, Network, Port, new_id, owner_of, visible
from openstack_fakecloud.network.requests import FixedIp, FloatingIpCreate, FloatingIpUpdate
from openstack_fakecloud.network.routers import Routers

FLOATINGIP_OWNER = "network:floatingip"


def _bad(message: str) -> BadRequest:
    """Neutron's `BadRequest(resource='floatingip', msg=...)`."""
    return BadRequest(f"Bad floatingip request: {message}.", error_type="BadRequest")


class FloatingIps:
    def __init__(self, now: Callable[[], str], quotas: Quotas, topology: Topology, ipam: Ipam, ports: Ports,
                 routers: Routers, changed: Callable[[], None], floating_ips: Iterable[FloatingIp] = ()) -> None:
        self._now = now
        self._quotas = quotas
        self._topology = topology
        self._ipam = ipam
        self._ports = ports
        self._routers = routers
        self._changed_hook = changed
        self.by_id: dict[str, FloatingIp] = {f.id: f for f in floating_ips}

    def count(self, project_id: str) -> int:
        return sum(1 for f in self.by_id.values() if f.project_id == project_id)

    # questions other stores ask ------------------------------------------------------------
    def of_port(self, port_id: str) -> list[str]:
        return [f.floating_ip_address for f in self.by_id.values() if f.port_id == port_id]

    def need_router(self, router_id: str, subnet_id: str | None) -> bool:
        """Whether floating IPs are associated through the router (through its interface on `subnet_id`)."""
        for fip in self.by_id.values():
            if fip.router_id != router_id:
                continue
            if subnet_id is None:
                return True
            subnet = self._topology.subnets.get(subnet_id)
            if subnet is not None and fip.fixed_ip_address is not None \
                    and ipaddress.ip_address(fip.fixed_ip_address) in ipaddress.ip_network(subnet.cidr):
                return True
        return False

    def port_gone(self, port: Port) -> None:
        """A port was deleted (by a user, or by Nova with its server): its floating IPs are disassociated."""
        gone = [f for f in self.by_id.values() if f.port_id == port.id]
        for fip in gone:
            self._associate(fip, None, None, None)
        if gone:
            self._changed_hook()

    def is_service_port(self, port: Port) -> bool:
        return port.device_owner == FLOATINGIP_OWNER and port.device_id in self.by_id

    # floating IPs --------------------------------------------------------------------------
    def get(self, fip_id: str, project_id: str | None, admin: bool = False) -> FloatingIp:
        fip = self.by_id.get(fip_id)
        if fip is None or not visible(fip.project_id, project_id, admin):
            raise NotFound(f"Floating IP {fip_id} could not be found", error_type="FloatingIPNotFound")
        return fip

    def list(self, project_id: str, admin: bool) -> list[FloatingIp]:
        return [f for f in self.by_id.values() if admin or f.project_id == project_id]

    def create(self, project_id: str, admin: bool, request: FloatingIpCreate) -> FloatingIp:
        owner = owner_of(project_id, admin, request.project_id)
        if request.floating_ip_address is not None and not admin:
            raise Forbidden("(rule:create_floatingip:floating_ip_address) is disallowed by policy")
        self._quotas.check(owner, "floatingip", 1)
        network = self._topology.get_network(request.floating_network_id, project_id, admin)
        if not network.external:
            raise _bad(f"Network {network.id} is not a valid external network")
        if request.fixed_ip_address is not None and request.port_id is None:
            raise _bad("fixed_ip_address cannot be specified without a port_id")
        ips = self._ipam.allocate(network, [self._address_request(network, request)])
        fip_id, now = new_id(), self._now()
        fip = FloatingIp(fip_id, owner, network.id, ips[0]["ip_address"], "", now, now,
                         description=request.description)
        try:
            if request.port_id is not None:
                self._associate(fip, *self._association(fip, request.port_id, request.fixed_ip_address,
                                                        project_id, admin))
        except CloudError:
            self._ipam.release(ips)
            raise
        fip.floating_port_id = self._ports.create_service_port("", network.id, fip.id, FLOATINGIP_OWNER, ips).id
        fip.revision_number = 0
        self.by_id[fip.id] = fip
        if fip.port_id is not None:
            self._changed_hook()
        return fip

    def _address_request(self, network: Network, request: FloatingIpCreate) -> FixedIp:
        """Which subnet (and address) of the external network the address comes from."""
        subnets = [self._topology.subnets[s] for s in network.subnets if s in self._topology.subnets]
        if request.subnet_id is not None:
            if request.subnet_id not in network.subnets:
                raise _bad(f"Invalid subnet {request.subnet_id} for network {network.id}")
            return FixedIp(request.subnet_id, request.floating_ip_address)
        if request.floating_ip_address is not None:
            address = ipaddress.ip_address(request.floating_ip_address)
            for subnet in subnets:
                if address in ipaddress.ip_network(subnet.cidr):
                    return FixedIp(subnet.id, request.floating_ip_address)
            raise BadRequest(f"IP address {request.floating_ip_address} is not a valid IP for any of the subnets on "
                             "the specified network.", error_type="InvalidIpForNetwork")
        for subnet in subnets:
            if subnet.ip_version == 4:
                return FixedIp(subnet.id)
        raise BadRequest(f"Bad floatingip request: Network {network.id} has no IPv4 subnet.",
                         error_type="BadRequest")

    def update(self, fip_id: str, project_id: str, admin: bool, request: FloatingIpUpdate) -> FloatingIp:
        fip = self.get(fip_id, project_id, admin)
        if request.fixed_ip_address is not None and not request.port_set:
            raise _bad("fixed_ip_address cannot be specified without a port_id")
        moved = False
        if request.port_set:
            if request.port_id is None:
                target: tuple[str | None, str | None, str | None] = (None, None, None)
            else:
                target = self._association(fip, request.port_id, request.fixed_ip_address, project_id, admin)
            moved = target != (fip.port_id, fip.fixed_ip_address, fip.router_id)
            self._associate(fip, *target)
        if request.description is not None:
            fip.description = request.description
        fip.updated_at = self._now()
        fip.revision_number += 1
        if moved:
            self._changed_hook()
        return fip

    def delete(self, fip_id: str, project_id: str, admin: bool) -> None:
        fip = self.get(fip_id, project_id, admin)
        associated = fip.port_id is not None
        del self.by_id[fip.id]
        self._ports.drop_service_port(fip.floating_port_id)
        if associated:
            self._changed_hook()

    # association ---------------------------------------------------------------------------
    def _associate(self, fip: FloatingIp, port_id: str | None, fixed_ip: str | None, router_id: str | None) -> None:
        changed = (fip.port_id, fip.fixed_ip_address, fip.router_id) != (port_id, fixed_ip, router_id)
        fip.port_id, fip.fixed_ip_address, fip.router_id = port_id, fixed_ip, router_id
        fip.status = "ACTIVE" if port_id is not None else "DOWN"
        if changed:
            fip.updated_at = self._now()
            fip.revision_number += 1

    def _association(self, fip: FloatingIp, port_id: str, fixed_ip: str | None, project_id: str,
                     admin: bool) -> tuple[str, str, str]:
        """Neutron's checks for a floating IP on a port: the port (the caller's to see, the floating IP's
        project's own), its fixed IPv4 address, a router from its subnet to the external network, and no
        other floating IP on that network already on the same fixed address. (port id, fixed IP, router id)."""
        port = self._ports.get_port(port_id, project_id, admin)
        if port.project_id != fip.project_id and not admin:
            raise _bad(f"Cannot process floating IP association with Port {port.id}, since that port is owned by a "
                       "different tenant")
        if fixed_ip is not None:
            chosen = next((ip for ip in port.fixed_ips if ip["ip_address"] == fixed_ip), None)
            if chosen is None:
                raise _bad(f"Port {port.id} does not have fixed ip {fixed_ip}")
        else:
            v4 = [ip for ip in port.fixed_ips if ipaddress.ip_address(ip["ip_address"]).version == 4]
            if not v4:
                raise _bad(f"Cannot add floating IP to port {port.id} that has no fixed IPv4 addresses")
            if len(v4) > 1:
                raise _bad(f"Port {port.id} has multiple fixed IPv4 addresses. Must provide a specific IPv4 address "
                           "when assigning a floating IP")
            chosen = v4[0]
        router = self._routers.router_for(chosen["subnet_id"], fip.floating_network_id)
        if router is None:
            raise NotFound(f"External network {fip.floating_network_id} is not reachable from subnet "
                           f"{chosen['subnet_id']}.  Therefore, cannot associate Port {port.id} with a Floating IP.",
                           error_type="ExternalGatewayForFloatingIPNotFound")
        for other in self.by_id.values():
            if other.id != fip.id and other.floating_network_id == fip.floating_network_id \
                    and other.port_id == port.id and other.fixed_ip_address == chosen["ip_address"]:
                raise Conflict(f"Cannot associate floating IP {fip.floating_ip_address} ({fip.id}) with port "
                               f"{port.id} using fixed IP {chosen['ip_address']}, as that fixed IP already has a "
                               f"floating IP on external network {fip.floating_network_id}.",
                               error_type="FloatingIPPortAlreadyAssociated")
        return port.id, chosen["ip_address"], router.id
