"""Routers (Neutron's L3 service): records, their interfaces and gateway, extra routes.

A router's interfaces and its gateway are ports (the Ports store holds them, with device owners
`network:router_interface` and `network:router_gateway` and the router's id as device), so a subnet or
network a router uses cannot be deleted (Neutron's SubnetInUse / NetworkInUse), and the addresses come
from the IPAM: an interface takes its subnet's gateway IP, the gateway an address on the external
network. Whether floating IPs still need an interface or the gateway is asked through `fips_need`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from typing import Any

from openstack_fakecloud.errors import BadRequest, CloudError, Conflict, Forbidden, NotFound
from openstack_fakecloud.network.ipam import Ipam
from openstack_fakecloud.network.networks import Topology
from openstack_fakecloud.network.ports import Ports
from openstack_fakecloud.network.quotas import Quotas
from openstack_fakecloud.network.records import Port, Router, Subnet, new_id, owner_of, visible
from openstack_fakecloud.network.requests import FixedIp, GatewayInfo, RouterCreate, RouterInterface, RouterUpdate

INTERFACE = "network:router_interface"
GATEWAY = "network:router_gateway"
L3_OWNERS = frozenset({INTERFACE, GATEWAY, "network:floatingip"})
# DevStack's router between each project's `private` network and `public` (see NetworkBackend._default_router).
DEFAULT_ROUTER = "router1"


def _bad(message: str) -> BadRequest:
    """Neutron's `BadRequest(resource='router', msg=...)`."""
    return BadRequest(f"Bad router request: {message}.", error_type="BadRequest")


class Routers:
    """The router records; `fips_need(router_id, subnet_id)` says whether floating IPs are associated
    through the router (through its interface on that subnet; None: through any)."""

    def __init__(self, now: Callable[[], str], quotas: Quotas, topology: Topology, ipam: Ipam, ports: Ports,
                 fips_need: Callable[[str, str | None], bool], routers: Iterable[Router] = ()) -> None:
        self._now = now
        self._quotas = quotas
        self._topology = topology
        self._ipam = ipam
        self._ports = ports
        self._fips_need = fips_need
        self.by_id: dict[str, Router] = {r.id: r for r in routers}

    def _changed(self, router: Router) -> None:
        router.updated_at = self._now()
        router.revision_number += 1

    def count(self, project_id: str) -> int:
        return sum(1 for r in self.by_id.values() if r.project_id == project_id)

    # ports ---------------------------------------------------------------------------------
    def interfaces(self, router: Router) -> list[Port]:
        return [p for p in self._ports.of_device(router.id) if p.device_owner == INTERFACE]

    def gateway_port(self, router: Router) -> Port | None:
        return next((p for p in self._ports.of_device(router.id) if p.device_owner == GATEWAY), None)

    def router_for(self, subnet_id: str, external_network_id: str) -> Router | None:
        """The router that connects a subnet to an external network (has an interface on the one and its
        gateway on the other): where a floating IP's traffic goes."""
        for router in self.by_id.values():
            if router.gateway_network_id != external_network_id:
                continue
            if any(ip["subnet_id"] == subnet_id for port in self.interfaces(router) for ip in port.fixed_ips):
                return router
        return None

    # routers -------------------------------------------------------------------------------
    def get_router(self, router_id: str, project_id: str | None, admin: bool = False) -> Router:
        router = self.by_id.get(router_id)
        if router is None or not visible(router.project_id, project_id, admin):
            raise NotFound(f"Router {router_id} could not be found", error_type="RouterNotFound")
        return router

    def list_routers(self, project_id: str, admin: bool) -> list[Router]:
        return [r for r in self.by_id.values() if admin or r.project_id == project_id]

    @staticmethod
    def _check_modes(action: str, admin: bool, distributed: bool | None, ha: bool | None) -> None:
        """`distributed` and `ha` are admin's to name; fakecloud's routers are neither."""
        for name, value in (("distributed", distributed), ("ha", ha)):
            if value is None:
                continue
            if not admin:
                raise Forbidden(f"(rule:{action}_router:{name}) is disallowed by policy")
            if value:
                raise BadRequest(f"Invalid input for operation: {name} routers are not supported.",
                                 error_type="InvalidInput")

    def create_router(self, project_id: str, admin: bool, request: RouterCreate) -> Router:
        owner = owner_of(project_id, admin, request.project_id)
        self._check_modes("create", admin, request.distributed, request.ha)
        if request.gateway is not None:
            self._check_gateway_policy("create", admin, request.gateway)
        self._quotas.check(owner, "router", 1)
        now = self._now()
        router = Router(new_id(), request.name, owner, now, now, description=request.description,
                        admin_state_up=request.admin_state_up)
        if request.gateway is not None:
            self._set_gateway(router, request.gateway, project_id, admin)
        self.by_id[router.id] = router
        return router

    def update_router(self, router_id: str, project_id: str, admin: bool, request: RouterUpdate) -> Router:
        router = self.get_router(router_id, project_id, admin)
        self._check_modes("update", admin, request.distributed, request.ha)
        if request.gateway is not None:
            self._check_gateway_policy("update", admin, request.gateway)
        if request.routes is not None:
            self._check_routes(router, request.routes)
        if request.gateway_set:
            self._update_gateway(router, request.gateway, project_id, admin)
        if request.routes is not None:
            router.routes = [{"destination": d, "nexthop": n} for d, n in request.routes]
        for attr in ("name", "description", "admin_state_up"):
            value = getattr(request, attr)
            if value is not None:
                setattr(router, attr, value)
        self._changed(router)
        return router

    def delete_router(self, router_id: str, project_id: str, admin: bool) -> None:
        router = self.get_router(router_id, project_id, admin)
        if self.interfaces(router):
            raise Conflict(f"Router {router.id} still has ports", error_type="RouterInUse")
        gateway = self.gateway_port(router)
        if gateway is not None:
            self._ports.drop_service_port(gateway.id)
        del self.by_id[router.id]

    # the gateway ---------------------------------------------------------------------------
    @staticmethod
    def _check_gateway_policy(action: str, admin: bool, gateway: GatewayInfo) -> None:
        for name in ("enable_snat", "external_fixed_ips"):
            if getattr(gateway, name) is not None and not admin:
                raise Forbidden(f"(rule:{action}_router:external_gateway_info:{name}) is disallowed by policy")

    def _update_gateway(self, router: Router, gateway: GatewayInfo | None, project_id: str, admin: bool) -> None:
        current = router.gateway_network_id
        if gateway is not None and gateway.network_id == current and gateway.external_fixed_ips is None:
            if gateway.enable_snat is not None:
                router.enable_snat = gateway.enable_snat
            return
        if current is not None and (gateway is None or gateway.network_id != current) \
                and self._fips_need(router.id, None):
            raise Conflict(f"Gateway cannot be updated for router {router.id}, since a gateway to external network "
                           f"{current} is required by one or more floating IPs.",
                           error_type="RouterExternalGatewayInUseByFloatingIp")
        if gateway is None:
            old = self.gateway_port(router)
            if old is not None:
                self._ports.drop_service_port(old.id)
            router.gateway_network_id = None
            router.enable_snat = True
            return
        self._set_gateway(router, gateway, project_id, admin)

    def _set_gateway(self, router: Router, gateway: GatewayInfo, project_id: str, admin: bool) -> None:
        """A gateway port on the external network (replacing any old one), with the requested addresses or
        the next free one."""
        network = self._topology.get_network(gateway.network_id, project_id, admin)
        if not network.external:
            raise _bad(f"Network {network.id} is not an external network")
        old = self.gateway_port(router)
        requests = gateway.external_fixed_ips or None
        if requests is None and network.subnets:
            requests = [FixedIp(subnet_id=self._first_v4_subnet(network.subnets))]
        interface_subnets = [ip["subnet_id"] for port in self.interfaces(router) for ip in port.fixed_ips]
        for item in requests or []:
            subnet = self._topology.subnets.get(item.subnet_id or "")
            if subnet is not None and subnet.network_id == network.id:
                self._check_overlap(subnet, interface_subnets)
        if old is not None:
            self._ipam.release(old.fixed_ips)
        try:
            ips = self._ipam.allocate(network, requests)
        except CloudError:
            if old is not None:
                self._ipam.retake(old.fixed_ips)
            raise
        if old is not None:
            old.fixed_ips = []  # already given back (the new port may hold one of them again)
            self._ports.drop_service_port(old.id)
        self._ports.create_service_port("", network.id, router.id, GATEWAY, ips)
        router.gateway_network_id = network.id
        router.enable_snat = True if gateway.enable_snat is None else gateway.enable_snat

    def _first_v4_subnet(self, subnet_ids: list[str]) -> str:
        for subnet_id in subnet_ids:
            subnet = self._topology.subnets.get(subnet_id)
            if subnet is not None and subnet.ip_version == 4:
                return subnet_id
        return subnet_ids[0]

    # interfaces ----------------------------------------------------------------------------
    def _check_overlap(self, new: Subnet, subnet_ids: Iterable[str], gateway: Port | None = None) -> None:
        """Neutron's `_check_for_dup_router_subnets`: one port per subnet (the gateway's included), and no two
        overlapping CIDRs among the interfaces."""
        if gateway is not None and any(ip["subnet_id"] == new.id for ip in gateway.fixed_ips):
            raise _bad(f"Router already has a port on subnet {new.id}")
        new_net = ipaddress.ip_network(new.cidr)
        for subnet_id in subnet_ids:
            if subnet_id == new.id:
                raise _bad(f"Router already has a port on subnet {new.id}")
            other = self._topology.subnets.get(subnet_id)
            if other is not None and new_net.version == other.ip_version \
                    and new_net.overlaps(ipaddress.ip_network(other.cidr)):
                raise _bad(f"Cidr {new.cidr} of subnet {new.id} overlaps with cidr {other.cidr} of subnet {other.id}")

    def add_interface(self, router_id: str, project_id: str, admin: bool, request: RouterInterface) -> dict[str, Any]:
        router = self.get_router(router_id, project_id, admin)
        if request.subnet_id and request.port_id:
            raise _bad("Cannot specify both subnet-id and port-id")
        attached = [ip["subnet_id"] for port in self.interfaces(router) for ip in port.fixed_ips]
        if request.port_id:
            port = self._ports.get_port(request.port_id, project_id, admin)
            if port.device_id:
                raise Conflict(f"Unable to complete operation on port {port.id} for network {port.network_id}. Port "
                               f"already has an attached device {port.device_id}.", error_type="PortInUse")
            if not port.fixed_ips:
                raise _bad("Router port must have at least one fixed IP")
            subnets = [self._topology.subnets[ip["subnet_id"]] for ip in port.fixed_ips
                       if ip["subnet_id"] in self._topology.subnets]
            if sum(1 for s in {s.id: s for s in subnets}.values() if s.ip_version == 4) > 1:
                raise _bad("Cannot have multiple IPv4 subnets on router port")
            for subnet in subnets:
                self._check_overlap(subnet, attached, self.gateway_port(router))
            self._ports.attach(port, router.id, INTERFACE)
        else:
            subnet = self._topology.get_subnet(str(request.subnet_id), project_id, admin)
            if not subnet.gateway_ip:
                raise _bad("Subnet for router interface must have a gateway IP")
            self._check_overlap(subnet, attached, self.gateway_port(router))
            ip = self._ipam.take(subnet.id, subnet.gateway_ip)
            port = self._ports.create_service_port(subnet.project_id, subnet.network_id, router.id, INTERFACE, [ip])
        self._changed(router)
        return self._interface_info(router, port)

    def remove_interface(self, router_id: str, project_id: str, admin: bool,
                         request: RouterInterface) -> dict[str, Any]:
        router = self.get_router(router_id, project_id, admin)
        interfaces = self.interfaces(router)
        if request.port_id:
            port = next((p for p in interfaces if p.id == request.port_id), None)
            if port is None:
                raise NotFound(f"Router {router.id} does not have an interface with id {request.port_id}",
                               error_type="RouterInterfaceNotFound")
            if request.subnet_id and all(ip["subnet_id"] != request.subnet_id for ip in port.fixed_ips):
                raise BadRequest(f"Subnet on port {port.id} does not match the requested subnet "
                                 f"{request.subnet_id}.", error_type="SubnetMismatchForPort")
        else:
            subnet = self._topology.get_subnet(str(request.subnet_id), project_id, admin)
            port = next((p for p in interfaces if any(ip["subnet_id"] == subnet.id for ip in p.fixed_ips)), None)
            if port is None:
                raise NotFound(f"Router {router.id} has no interface on subnet {subnet.id}",
                               error_type="RouterInterfaceNotFoundForSubnet")
        for ip in port.fixed_ips:
            self._check_interface_unused(router, ip["subnet_id"])
        info = self._interface_info(router, port)
        self._ports.drop_service_port(port.id)
        self._changed(router)
        return info

    def _check_interface_unused(self, router: Router, subnet_id: str) -> None:
        """Neutron's `_confirm_router_interface_not_in_use`: floating IPs and extra routes that need it."""
        if self._fips_need(router.id, subnet_id):
            raise Conflict(f"Router interface for subnet {subnet_id} on router {router.id} cannot be deleted, as it "
                           "is required by one or more floating IPs.", error_type="RouterInterfaceInUseByFloatingIP")
        subnet = self._topology.subnets.get(subnet_id)
        if subnet is not None and any(ipaddress.ip_address(r["nexthop"]) in ipaddress.ip_network(subnet.cidr)
                                      for r in router.routes):
            raise Conflict(f"Router interface for subnet {subnet_id} on router {router.id} cannot be deleted, as it "
                           "is required by one or more routes.", error_type="RouterInterfaceInUseByRoute")

    @staticmethod
    def _interface_info(router: Router, port: Port) -> dict[str, Any]:
        subnet_ids = [ip["subnet_id"] for ip in port.fixed_ips]
        return {"id": router.id, "tenant_id": router.project_id, "project_id": router.project_id,
                "port_id": port.id, "network_id": port.network_id,
                "subnet_id": subnet_ids[0] if subnet_ids else None, "subnet_ids": subnet_ids}

    # extra routes --------------------------------------------------------------------------
    def _check_routes(self, router: Router, routes: tuple[tuple[str, str], ...]) -> None:
        """extraroute: each nexthop on a subnet the router has an interface on, and not the router's own."""
        shown = [{"destination": d, "nexthop": n} for d, n in routes]
        own = {ip["ip_address"] for port in self.interfaces(router) for ip in port.fixed_ips}
        cidrs = [ipaddress.ip_network(self._topology.subnets[ip["subnet_id"]].cidr)
                 for port in self.interfaces(router) for ip in port.fixed_ips
                 if ip["subnet_id"] in self._topology.subnets]
        for _destination, nexthop in routes:
            address = ipaddress.ip_address(nexthop)
            if not any(address in cidr for cidr in cidrs):
                raise BadRequest(f"Invalid format for routes: {shown}, the nexthop is not connected with router",
                                 error_type="InvalidRoutes")
            if nexthop in own:
                raise BadRequest(f"Invalid format for routes: {shown}, the nexthop is used by router",
                                 error_type="InvalidRoutes")
