"""Networks and subnets: the shared `public` network, each project's `private` one, and what users add.

A subnet's addresses are the IPAM's; this module only says which subnets exist and on which network.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable

from openstack_fakecloud.errors import BadRequest, Conflict, Forbidden, NotFound
from openstack_fakecloud.network.ipam import Ipam
from openstack_fakecloud.network.quotas import Quotas
from openstack_fakecloud.network.records import (
    ADMIN_PROJECT,
    Network,
    Subnet,
    dashed_stable_id,
    network_visible,
    new_id,
    owner_of,
)
from openstack_fakecloud.network.requests import NetworkCreate, NetworkUpdate, SubnetCreate, SubnetUpdate

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# The seeded networks use loopback ranges, so every address a server gets on them is reachable from the machine
# fakecloud runs on (its guests listen there). `public` (external, for floating IPs and gateways) has one /16;
# each project's `private` network gets its own /16 from PRIVATE_RANGES (distinct, since they share the host's
# loopback), in the order projects first use Neutron. 127.0.0.0/16 is left to the host's own services.
PUBLIC_CIDR = "127.254.0.0/16"
PRIVATE_RANGES = [f"127.{second}.0.0/16" for second in range(1, 254)]
# Past the loopback ranges (more than 253 projects), a private network is still made, but not reachable.
OVERFLOW_PRIVATE_CIDR = "10.0.0.0/16"
PUBLIC_NETWORK_ID = dashed_stable_id("network", "public")
# The largest MTU a network may ask for: Neutron's default `global_physnet_mtu`.
MAX_MTU = 1500


class Topology:
    """The network and subnet records; `has_ports(network_id)` guards a delete, `port_projects(network_id)`
    (the projects with ports on it) guards un-sharing."""

    def __init__(self, now: Callable[[], str], ipam: Ipam, quotas: Quotas, has_ports: Callable[[str], bool],
                 networks: Iterable[Network] = (), subnets: Iterable[Subnet] = (),
                 port_projects: Callable[[str], set[str]] = lambda network_id: set()) -> None:
        self._now = now
        self._ipam = ipam
        self._quotas = quotas
        self._has_ports = has_ports
        self._port_projects = port_projects
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
        public = Network(PUBLIC_NETWORK_ID, "public", ADMIN_PROJECT, now, now,
                         shared=True, external=True, mtu=1500)
        self.networks[public.id] = public
        self._add_subnet(public, dashed_stable_id("subnet", "public-subnet"), "public-subnet", PUBLIC_CIDR)

    def has_default(self, project_id: str) -> bool:
        return project_id in self._private

    def default_network(self, project_id: str) -> Network:
        """The project's own `private` network (a loopback /16 of its own), created on first use."""
        network_id = self._private.get(project_id)
        if network_id in self.networks:
            return self.networks[network_id]
        now = self._now()
        network = Network(dashed_stable_id("network", f"private:{project_id}"), "private", project_id, now, now)
        self.networks[network.id] = network
        self._private[project_id] = network.id
        self._add_subnet(network, dashed_stable_id("subnet", f"private:{project_id}"), "private-subnet",
                         self._free_private_range())
        return network

    def _free_private_range(self) -> str:
        """The first PRIVATE_RANGES entry no seeded private subnet holds (a deleted one's is handed out again)."""
        taken = {subnet.cidr for subnet in self.subnets.values() if subnet.name == "private-subnet"}
        return next((cidr for cidr in PRIVATE_RANGES if cidr not in taken), OVERFLOW_PRIVATE_CIDR)

    # networks ------------------------------------------------------------------------------
    def get_network(self, network_id: str, project_id: str | None, admin: bool = False) -> Network:
        network = self.networks.get(network_id)
        if network is None or not network_visible(network, project_id, admin):
            raise NotFound(f"Network {network_id} could not be found.", error_type="NetworkNotFound")
        return network

    def usable_network(self, network_id: str, project_id: str | None, admin: bool = False) -> Network:
        """A network the project may put a port on: an external one it can see is not enough."""
        network = self.get_network(network_id, project_id, admin)
        if not (network.shared or admin or project_id is None or network.project_id == project_id):
            raise Forbidden(f"Tenant {project_id} not allowed to create port on this network",
                            error_type="HTTPForbidden")
        return network

    def list_networks(self, project_id: str, admin: bool) -> list[Network]:
        return [n for n in self.networks.values() if network_visible(n, project_id, admin)]

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

    def update_network(self, network_id: str, project_id: str, admin: bool, request: NetworkUpdate) -> Network:
        """Neutron's policy: the owner changes name, description, state and MTU; sharing and
        `router:external` are admin's; a network others have ports on cannot stop being shared."""
        network = self.get_network(network_id, project_id, admin)
        if not admin and network.project_id != project_id:
            raise Forbidden("(rule:update_network) is disallowed by policy")
        for attr, rule in (("shared", "shared"), ("external", "router:external")):
            value = getattr(request, attr)
            if value is not None and value != getattr(network, attr) and not admin:
                raise Forbidden(f"(rule:update_network:{rule}) is disallowed by policy")
        if request.mtu is not None and request.mtu > MAX_MTU:
            raise BadRequest(f"Invalid input for operation: Requested MTU is too big, maximum is {MAX_MTU}.",
                             error_type="InvalidInput")
        if request.shared is False and network.shared and self._port_projects(network.id) - {network.project_id}:
            raise Conflict(f"Unable to reconfigure sharing settings for network {network.id}. Multiple projects "
                           "are using it.", error_type="InvalidSharedSetting")
        for attr in ("name", "admin_state_up", "shared", "external", "description", "mtu"):
            value = getattr(request, attr)
            if value is not None:
                setattr(network, attr, value)
        network.updated_at = self._now()
        network.revision_number += 1
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
    def _add_subnet(self, network: Network, subnet_id: str, name: str, cidr: str, gateway_ip: str | None = "",
                    request: SubnetCreate | None = None) -> Subnet:
        """Store a subnet; "" for the gateway picks the first host. Without pools in the request the pools
        are every host address but the gateway."""
        net = ipaddress.ip_network(cidr, strict=False)
        gateway = str(net.network_address + 1) if gateway_ip == "" else gateway_ip
        if request is not None and request.allocation_pools is not None:
            pools = _checked_pools(net, gateway, request.allocation_pools)
        else:
            pools = _default_pools(net, gateway)
        now = self._now()
        subnet = Subnet(subnet_id, name, network.id, network.project_id, str(net), gateway, now, now,
                        allocation_pools=[{"start": str(first), "end": str(last)} for first, last in pools],
                        ip_version=net.version)
        if request is not None:
            subnet.dns_nameservers = list(request.dns_nameservers)
            subnet.host_routes = [{"destination": d, "nexthop": n} for d, n in request.host_routes]
            subnet.description = request.description
            subnet.enable_dhcp = request.enable_dhcp
        self.subnets[subnet.id] = subnet
        self._ipam.add_subnet(subnet)
        network.subnets.append(subnet.id)
        return subnet

    def create_subnet(self, project_id: str, admin: bool, request: SubnetCreate) -> Subnet:
        network = self.get_network(request.network_id, project_id, admin)
        if not admin and network.project_id != project_id:
            raise Forbidden("(rule:create_subnet) is disallowed by policy")
        self._quotas.check(network.project_id, "subnet", 1)
        return self._add_subnet(network, new_id(), request.name, request.cidr, request.gateway_ip, request)

    def get_subnet(self, subnet_id: str, project_id: str, admin: bool) -> Subnet:
        subnet = self.subnets.get(subnet_id)
        network = self.networks.get(subnet.network_id) if subnet else None
        if subnet is None or network is None or not (network_visible(network, project_id, admin)
                                                     or subnet.project_id == project_id):
            raise NotFound(f"Subnet {subnet_id} could not be found.", error_type="SubnetNotFound")
        return subnet

    def list_subnets(self, project_id: str, admin: bool) -> list[Subnet]:
        return [s for s in self.subnets.values()
                if s.project_id == project_id or network_visible(self.networks[s.network_id], project_id, admin)]

    def delete_subnet(self, subnet_id: str, project_id: str, admin: bool) -> None:
        """Neutron refuses while any port holds an address on the subnet."""
        subnet = self.get_subnet(subnet_id, project_id, admin)
        if not admin and subnet.project_id != project_id:
            raise Forbidden("(rule:delete_subnet) is disallowed by policy")
        if self._ipam.in_use(subnet.id):
            raise Conflict(f"Unable to complete operation on subnet {subnet.id}: One or more ports have an IP "
                           "allocation from this subnet.", error_type="SubnetInUse")
        del self.subnets[subnet.id]
        self._ipam.remove_subnet(subnet.id)
        network = self.networks.get(subnet.network_id)
        if network is not None and subnet.id in network.subnets:
            network.subnets.remove(subnet.id)

    def update_subnet(self, subnet_id: str, project_id: str, admin: bool, request: SubnetUpdate) -> Subnet:
        """PUT /subnets/{id}: the create's checks where they apply (a gateway that is the network or
        broadcast address, pools outside the CIDR, overlapping or holding the gateway). Whether a router
        holds the current gateway is the caller's to check."""
        subnet = self.get_subnet(subnet_id, project_id, admin)
        if not admin and subnet.project_id != project_id:
            raise Forbidden("(rule:update_subnet) is disallowed by policy")
        net = ipaddress.ip_network(subnet.cidr)
        gateway = request.gateway_ip if request.gateway_set else subnet.gateway_ip
        if request.gateway_set and gateway is not None:
            address = ipaddress.ip_address(gateway)
            if address.version != net.version:
                raise BadRequest(f"Invalid input for operation: {gateway} is not a valid IPv{net.version} address.",
                                 error_type="InvalidInput")
            if address == net.network_address or (net.version == 4 and net.prefixlen < 31
                                                  and address == net.broadcast_address):
                raise BadRequest("Invalid input for operation: Gateway is not valid on subnet.",
                                 error_type="InvalidInput")
        pools = request.allocation_pools
        if pools is None and request.gateway_set:
            pools = tuple((p["start"], p["end"]) for p in subnet.allocation_pools)
        checked = _checked_pools(net, gateway, pools) if pools is not None else None
        if request.gateway_set:
            subnet.gateway_ip = gateway
        if checked is not None:
            subnet.allocation_pools = [{"start": str(first), "end": str(last)} for first, last in checked]
            self._ipam.reshape(subnet)
        if request.dns_nameservers is not None:
            subnet.dns_nameservers = list(request.dns_nameservers)
        if request.host_routes is not None:
            subnet.host_routes = [{"destination": d, "nexthop": n} for d, n in request.host_routes]
        for attr in ("name", "description", "enable_dhcp"):
            value = getattr(request, attr)
            if value is not None:
                setattr(subnet, attr, value)
        subnet.updated_at = self._now()
        subnet.revision_number += 1
        return subnet


# allocation pools -------------------------------------------------------------------------------
Range = tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ipaddress.IPv4Address | ipaddress.IPv6Address]


def _host_bounds(net: IpNetwork) -> Range:
    """The first and last address a pool may hold: the network and broadcast addresses are not hosts."""
    return net.network_address + 1, net.broadcast_address - 1


def _default_pools(net: IpNetwork, gateway: str | None) -> list[Range]:
    """Every host address but the gateway: one range, or two when the gateway sits inside."""
    first, last = _host_bounds(net)
    if gateway is None:
        return [(first, last)]
    gw = ipaddress.ip_address(gateway)
    if not first <= gw <= last:
        return [(first, last)]
    return [(a, b) for a, b in ((first, gw - 1), (gw + 1, last)) if a <= b]


def _checked_pools(net: IpNetwork, gateway: str | None, requested: tuple[tuple[str, str], ...]) -> list[Range]:
    """Neutron's allocation pool checks, in its order: each pool well formed and inside the CIDR, then no two
    overlapping, then none holding the gateway."""
    low, high = _host_bounds(net)
    pools: list[Range] = []
    for start_text, end_text in requested:
        start, end = ipaddress.ip_address(start_text), ipaddress.ip_address(end_text)
        shown = f"{start_text}-{end_text}"
        if start.version != net.version or end.version != net.version or start > end:
            raise BadRequest(f"The allocation pool {shown} is not valid.", error_type="InvalidAllocationPool")
        if start < low or end > high:
            raise BadRequest(f"The allocation pool {shown} spans beyond the subnet cidr {net}.",
                             error_type="OutOfBoundsAllocationPool")
        pools.append((start, end))
    pools.sort()
    for (a_start, a_end), (b_start, b_end) in zip(pools, pools[1:], strict=False):
        if b_start <= a_end:
            raise Conflict(f"Found overlapping allocation pools: {a_start}-{a_end} {b_start}-{b_end} for subnet "
                           f"{net}.", error_type="OverlappingAllocationPools")
    if gateway is not None:
        gw = ipaddress.ip_address(gateway)
        for start, end in pools:
            if start <= gw <= end:
                raise Conflict(f"Gateway ip {gateway} conflicts with allocation pool {start}-{end}.",
                               error_type="GatewayConflictWithAllocationPools")
    return pools
