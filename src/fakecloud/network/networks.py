"""Networks and subnets: the shared `public` network, each project's `private` one, and what users add.

A subnet's addresses are the IPAM's; this module only says which subnets exist and on which network.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable

from fakecloud.errors import Conflict, Forbidden, NotFound
from fakecloud.network.ipam import Ipam
from fakecloud.network.quotas import Quotas
from fakecloud.network.records import ADMIN_PROJECT, Network, Subnet, dashed_stable_id, new_id, owner_of, visible
from fakecloud.network.requests import NetworkCreate, SubnetCreate


class Topology:
    """The network and subnet records; `has_ports(network_id)` guards a delete."""

    def __init__(self, now: Callable[[], str], ipam: Ipam, quotas: Quotas, has_ports: Callable[[str], bool],
                 networks: Iterable[Network] = (), subnets: Iterable[Subnet] = ()) -> None:
        self._now = now
        self._ipam = ipam
        self._quotas = quotas
        self._has_ports = has_ports
        self.networks: dict[str, Network] = {n.id: n for n in networks}
        self.subnets: dict[str, Subnet] = {s.id: s for s in subnets}
        # Each project's own network, by name (the last one wins, as when it was first indexed).
        self._private: dict[str, str] = {
            n.project_id: n.id for n in self.networks.values() if n.name == "private" and not n.shared
        }

    # seeded networks -----------------------------------------------------------------------
    def seed_public(self) -> None:
        """The shared external network `public`, owned by admin, that exists from the start."""
        now = self._now()
        public = Network(dashed_stable_id("network", "public"), "public", ADMIN_PROJECT, now, now,
                         shared=True, external=True, mtu=1500)
        self.networks[public.id] = public
        self._add_subnet(public, dashed_stable_id("subnet", "public-subnet"), "public-subnet", "172.24.4.0/24")

    def has_default(self, project_id: str) -> bool:
        return project_id in self._private

    def default_network(self, project_id: str) -> Network:
        """The project's own `private` network (10.0.0.0/16), created on first use."""
        network_id = self._private.get(project_id)
        if network_id in self.networks:
            return self.networks[network_id]
        now = self._now()
        network = Network(dashed_stable_id("network", f"private:{project_id}"), "private", project_id, now, now)
        self.networks[network.id] = network
        self._private[project_id] = network.id
        self._add_subnet(network, dashed_stable_id("subnet", f"private:{project_id}"), "private-subnet",
                         "10.0.0.0/16")
        return network

    # networks ------------------------------------------------------------------------------
    def get_network(self, network_id: str, project_id: str | None, admin: bool = False) -> Network:
        network = self.networks.get(network_id)
        if network is None or not (network.shared or visible(network.project_id, project_id, admin)):
            raise NotFound(f"Network {network_id} could not be found.", error_type="NetworkNotFound")
        return network

    def list_networks(self, project_id: str, admin: bool) -> list[Network]:
        return [n for n in self.networks.values() if admin or n.shared or n.project_id == project_id]

    def create_network(self, project_id: str, admin: bool, request: NetworkCreate) -> Network:
        owner = owner_of(project_id, admin, request.project_id)
        self._quotas.check(owner, "network", 1)
        if (request.shared or request.external) and not admin:
            raise Forbidden("(rule:create_network:shared) is disallowed by policy")
        now = self._now()
        network = Network(new_id(), request.name, owner, now, now, shared=request.shared, external=request.external,
                          mtu=request.mtu, admin_state_up=request.admin_state_up, description=request.description)
        self.networks[network.id] = network
        return network

    def delete_network(self, network_id: str, project_id: str, admin: bool) -> None:
        network = self.get_network(network_id, project_id, admin)
        if not admin and network.project_id != project_id:
            raise Forbidden("(rule:delete_network) is disallowed by policy")
        if self._has_ports(network.id):
            raise Conflict(f"Unable to complete operation on network {network.id}. There are one or more ports "
                           "still in use on the network.", error_type="NetworkInUse")
        for subnet_id in network.subnets:
            self.subnets.pop(subnet_id, None)
            self._ipam.remove_subnet(subnet_id)
        del self.networks[network.id]
        if self._private.get(network.project_id) == network.id:
            del self._private[network.project_id]

    # subnets -------------------------------------------------------------------------------
    def _add_subnet(self, network: Network, subnet_id: str, name: str, cidr: str,
                    gateway_ip: str | None = "") -> Subnet:
        """Store a subnet whose pool is every host address but the gateway; "" picks the first host."""
        net = ipaddress.ip_network(cidr, strict=False)
        hosts = [net.network_address + 1, net.broadcast_address - 1]
        gateway = str(hosts[0]) if gateway_ip == "" else gateway_ip
        start = hosts[0] + 1 if gateway == str(hosts[0]) else hosts[0]
        now = self._now()
        subnet = Subnet(subnet_id, name, network.id, network.project_id, str(net), gateway, str(start),
                        str(hosts[1]), now, now, ip_version=net.version)
        self.subnets[subnet.id] = subnet
        self._ipam.add_subnet(subnet)
        network.subnets.append(subnet.id)
        return subnet

    def create_subnet(self, project_id: str, admin: bool, request: SubnetCreate) -> Subnet:
        network = self.get_network(request.network_id, project_id, admin)
        if not admin and network.project_id != project_id:
            raise Forbidden("(rule:create_subnet) is disallowed by policy")
        self._quotas.check(network.project_id, "subnet", 1)
        return self._add_subnet(network, new_id(), request.name, request.cidr, request.gateway_ip)

    def get_subnet(self, subnet_id: str, project_id: str, admin: bool) -> Subnet:
        subnet = self.subnets.get(subnet_id)
        network = self.networks.get(subnet.network_id) if subnet else None
        if subnet is None or network is None or not (network.shared or visible(subnet.project_id, project_id, admin)):
            raise NotFound(f"Subnet {subnet_id} could not be found.", error_type="SubnetNotFound")
        return subnet

    def list_subnets(self, project_id: str, admin: bool) -> list[Subnet]:
        return [s for s in self.subnets.values()
                if admin or s.project_id == project_id or self.networks[s.network_id].shared]
