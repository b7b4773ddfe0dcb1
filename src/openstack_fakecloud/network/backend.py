"""Neutron's state behind one façade, `cloud.network`: what Nova, Heat, the routes and the admin API call.

The work is done by one store per job: `Topology` (networks and subnets), `Ipam` (addresses),
`Ports`, `SecurityGroups` (groups and rules) and `Quotas`. This class builds them, answers the
questions that span them (quota usage, persistence, inventory) and does per-project bootstrap:
every project gets, on its first use of the network service, a `default` security group (with
Neutron's four default rules) and a private network `private` with subnet `private-subnet`
(a loopback /16 of its own, room for a benchmark's 10,000 servers, reachable from the host), joined to
`public` by a router `router1` of its own (as DevStack sets up its demo project). One shared external
network `public` (127.254.0.0/16), owned by admin, exists from the start.

Methods take typed requests (openstack_fakecloud.network.requests), never request bodies.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

from openstack_fakecloud.backend import Backend
from openstack_fakecloud.errors import CloudError, Conflict
from openstack_fakecloud.network import firewall
from openstack_fakecloud.network.floatingips import FloatingIps
from openstack_fakecloud.network.ipam import Ipam
from openstack_fakecloud.network.networks import PUBLIC_NETWORK_ID, Topology
from openstack_fakecloud.network.ports import Ports
from openstack_fakecloud.network.quotas import QUOTA_DEFAULTS, Quotas
from openstack_fakecloud.network.records import (
    FloatingIp,
    Network,
    Port,
    Router,
    SecurityGroup,
    SecurityGroupRule,
    Subnet,
    owner_of,
)
from openstack_fakecloud.network.requests import (
    FixedIp,
    FloatingIpCreate,
    FloatingIpUpdate,
    GatewayInfo,
    NetworkCreate,
    NetworkUpdate,
    PortCreate,
    PortUpdate,
    RouterCreate,
    RouterInterface,
    RouterUpdate,
    RuleCreate,
    RuleUpdate,
    SecurityGroupCreate,
    SecurityGroupUpdate,
    SubnetCreate,
    SubnetUpdate,
)
from openstack_fakecloud.network.routers import DEFAULT_ROUTER, L3_OWNERS, Routers
from openstack_fakecloud.network.secgroups import SecurityGroups
from openstack_fakecloud.network.subnetpools import SubnetPool, SubnetPools


class NetworkBackend(Backend):
    name = "network"

    def reset(self) -> None:
        self._random = random.Random()
        self._assemble()
        self.topology.seed_public()

    def _assemble(self, networks: Iterable[Network] = (), subnets: Iterable[Subnet] = (), ports: Iterable[Port] = (),
                  groups: Iterable[SecurityGroup] = (), rules: Iterable[SecurityGroupRule] = (),
                  quota_overrides: dict[str, dict[str, int]] | None = None, routers: Iterable[Router] = (),
                  floating_ips: Iterable[FloatingIp] = (), subnetpools: Iterable[SubnetPool] = ()) -> None:
        """Build the stores from records (empty after a reset, loaded ones after `load`); each rebuilds its
        own indexes. Stores that need to ask another one get a callable, so none holds the façade."""
        subnets, ports = list(subnets), list(ports)
        self.quotas = Quotas(lambda: self.cloud.config.quotas, self.quota_usage_of, quota_overrides)
        self.ipam = Ipam(subnets, ports)
        self.topology = Topology(self.now, self.ipam, self.quotas, lambda n: self.ports.on_network(n),
                                 networks, subnets, port_projects=lambda n: self.ports.projects_on(n))
        self.secgroups = SecurityGroups(self.now, self.quotas, self.security_group_in_use, groups, rules)
        self.ports = Ports(self.now, self._random, self.ipam, self.topology, self.secgroups, self.quotas, ports,
                           guard_delete=self._guard_port_delete, dropped=lambda p: self.floatingips.port_gone(p))
        self.routers = Routers(self.now, self.quotas, self.topology, self.ipam, self.ports,
                               lambda r, s: self.floatingips.need_router(r, s), routers)
        self.floatingips = FloatingIps(self.now, self.quotas, self.topology, self.ipam, self.ports, self.routers,
                                       lambda: self.cloud.guests.network_changed(), floating_ips)
        self.subnetpools = SubnetPools(self.now, subnetpools)

    # per-project bootstrap ------------------------------------------------------------------
    def touch(self, project_id: str) -> None:
        """First use of Neutron by a project creates its default group and private network."""
        if not self.secgroups.has_default(project_id):
            self.secgroups.default_group(project_id)
        if not self.topology.has_default(project_id):
            self.default_network(project_id)

    def default_network(self, project_id: str) -> Network:
        """The project's `private` network; made here (first use, or again after the project deleted it) it
        comes with DevStack's `router1`, see `_default_router`."""
        if self.topology.has_default(project_id):
            return self.topology.default_network(project_id)
        network = self.topology.default_network(project_id)
        self._default_router(project_id, network)
        return network

    def _default_router(self, project_id: str, network: Network) -> None:
        """DevStack's `router1` for a new private network: a router of the project's, its gateway on `public`
        and an interface on `private-subnet`, made the way the project itself would (quota, service ports,
        gateway IPs), so floating IPs from `public` reach the private network and later deletes go as for
        any router. A `router1` the project kept (its network deleted and now made again) gets the new
        interface. Where the project's quota or a missing `public` rules it out, the network comes alone."""
        public = self.topology.networks.get(PUBLIC_NETWORK_ID)
        if public is None or not public.external or not network.subnets:
            return
        try:
            router = next((r for r in self.routers.by_id.values()
                           if r.project_id == project_id and r.name == DEFAULT_ROUTER), None)
            if router is None:
                router = self.routers.create_router(project_id, False, RouterCreate(
                    name=DEFAULT_ROUTER, gateway=GatewayInfo(network_id=public.id)))
            elif router.gateway_network_id is None:
                self.routers.update_router(router.id, project_id, False,
                                           RouterUpdate(gateway=GatewayInfo(network_id=public.id), gateway_set=True))
            self.routers.add_interface(router.id, project_id, False, RouterInterface(subnet_id=network.subnets[0]))
        except CloudError:
            pass

    def default_security_group(self, project_id: str) -> SecurityGroup:
        return self.secgroups.default_group(project_id)

    # networks and subnets -------------------------------------------------------------------
    def get_network(self, network_id: str, project_id: str | None, admin: bool = False) -> Network:
        return self.topology.get_network(network_id, project_id, admin)

    def list_networks(self, project_id: str, admin: bool) -> list[Network]:
        self.touch(project_id)
        return self.topology.list_networks(project_id, admin)

    def create_network(self, project_id: str, admin: bool, request: NetworkCreate) -> Network:
        self.touch(project_id)
        return self.topology.create_network(project_id, admin, request)

    def update_network(self, network_id: str, project_id: str, admin: bool, request: NetworkUpdate) -> Network:
        return self.topology.update_network(network_id, project_id, admin, request)

    def delete_network(self, network_id: str, project_id: str, admin: bool) -> None:
        """Neutron deletes an external network's floating IPs with it when their ports are all that is left
        on it (their `network:floatingip` ports belong to the network, not to a user)."""
        network = self.topology.get_network(network_id, project_id, admin)
        fips = [f for f in self.floatingips.by_id.values() if f.floating_network_id == network.id]
        service_ports = {f.floating_port_id for f in fips}
        if fips and (admin or network.project_id == project_id) and all(
                p.id in service_ports for p in self.ports.by_id.values() if p.network_id == network.id):
            for fip in fips:
                self.floatingips.delete(fip.id, fip.project_id, True)
        self.topology.delete_network(network_id, project_id, admin)

    def delete_subnet(self, subnet_id: str, project_id: str, admin: bool) -> None:
        self.topology.delete_subnet(subnet_id, project_id, admin)

    def create_subnet(self, project_id: str, admin: bool, request: SubnetCreate) -> Subnet:
        self.touch(project_id)
        return self.topology.create_subnet(project_id, admin, request)

    def get_subnet(self, subnet_id: str, project_id: str, admin: bool) -> Subnet:
        return self.topology.get_subnet(subnet_id, project_id, admin)

    def list_subnets(self, project_id: str, admin: bool) -> list[Subnet]:
        self.touch(project_id)
        return self.topology.list_subnets(project_id, admin)

    # ports ----------------------------------------------------------------------------------
    def create_port(
        self,
        project_id: str,
        network_id: str,
        device_id: str,
        device_owner: str = "compute:nova",
        security_group_ids: list[str] | None = None,
        fixed_ip: str | None = None,
        *,
        name: str = "",
        description: str = "",
        admin_state_up: bool = True,
        fixed_ips: list[FixedIp] | None = None,
        mac_address: str | None = None,
        admin: bool = False,
        created_by_nova: bool = True,
    ) -> Port:
        """Nova's (and Heat's) way to make a port in `project_id`: Nova passes a network, the server and
        perhaps a `fixed_ip`; without groups the port gets the project's default group."""
        request = PortCreate(
            network_id=network_id, device_id=device_id, device_owner=device_owner,
            security_groups=security_group_ids,
            fixed_ips=[FixedIp(ip_address=fixed_ip)] if fixed_ip is not None else fixed_ips, name=name,
            description=description, admin_state_up=admin_state_up, mac_address=mac_address,
        )
        self.touch(project_id)
        return self.ports.create_port(project_id, admin, request, created_by_nova)

    def create_requested_port(self, project_id: str, admin: bool, request: PortCreate) -> Port:
        """POST /ports: in the project the request names (admin only), not made by Nova."""
        owner = owner_of(project_id, admin, request.project_id)
        self.touch(owner)
        return self.ports.create_port(owner, admin, request, created_by_nova=False)

    def get_port(self, port_id: str, project_id: str | None, admin: bool = False) -> Port:
        return self.ports.get_port(port_id, project_id, admin)

    def list_ports(self, project_id: str, admin: bool) -> list[Port]:
        self.touch(project_id)
        return self.ports.list_ports(project_id, admin)

    def update_port(self, port_id: str, project_id: str, admin: bool, request: PortUpdate) -> Port:
        port = self.ports.update_port(port_id, project_id, admin, request)
        self._filtering_changed()
        return port

    def reassign_fixed_ips(self, port: Port, requests: list[FixedIp] | None) -> None:
        self.ports.reassign_fixed_ips(port, requests)
        self._filtering_changed()

    def delete_port(self, port_id: str, project_id: str, admin: bool) -> None:
        self.ports.delete_port(port_id, project_id, admin)
        self._filtering_changed()

    def ports_of_device(self, device_id: str) -> list[Port]:
        return self.ports.of_device(device_id)

    def delete_ports_of_device(self, device_id: str) -> None:
        self.ports.delete_of_device(device_id)
        self._filtering_changed()

    def bind_port(self, port_id: str, device_id: str) -> Port:
        return self.ports.bind(port_id, device_id)

    def set_port_security_groups(self, port_id: str, group_ids: list[str]) -> None:
        self.ports.set_groups(port_id, group_ids)
        self._filtering_changed()

    def server_addresses(self, device_id: str) -> dict[str, list[dict[str, Any]]]:
        return self.ports.server_addresses(device_id)

    # security groups and rules --------------------------------------------------------------
    def is_default_group(self, group_id: str) -> bool:
        return self.secgroups.is_default_group(group_id)

    def rules_of_group(self, group_id: str) -> list[SecurityGroupRule]:
        return self.secgroups.rules_of_group(group_id)

    def get_security_group(self, group_id: str, project_id: str | None, admin: bool = False) -> SecurityGroup:
        return self.secgroups.get_group(group_id, project_id, admin)

    def find_security_group(self, project_id: str, name_or_id: str) -> SecurityGroup:
        self.touch(project_id)
        return self.secgroups.find_group(project_id, name_or_id)

    def list_security_groups(self, project_id: str, admin: bool) -> list[SecurityGroup]:
        self.touch(project_id)
        return self.secgroups.list_groups(project_id, admin)

    def create_security_group(self, project_id: str, admin: bool, request: SecurityGroupCreate) -> SecurityGroup:
        self.touch(project_id)
        owner = owner_of(project_id, admin, request.project_id)
        self.touch(owner)
        return self.secgroups.create_group(owner, request)

    def update_security_group(self, group_id: str, project_id: str, admin: bool,
                              request: SecurityGroupUpdate) -> SecurityGroup:
        return self.secgroups.update_group(group_id, project_id, admin, request)

    def security_group_in_use(self, group_id: str) -> bool:
        return self.ports.uses_group(group_id)

    def delete_security_group(self, group_id: str, project_id: str, admin: bool) -> None:
        self.secgroups.delete_group(group_id, project_id, admin)

    def create_security_group_rules(self, project_id: str, admin: bool,
                                    requests: list[RuleCreate]) -> list[SecurityGroupRule]:
        """One or many rules (a bulk create is atomic); see `requests.parse_rules` for the bodies."""
        self.touch(project_id)
        rules = self.secgroups.create_rules(project_id, admin, requests)
        self._filtering_changed()
        return rules

    def get_security_group_rule(self, rule_id: str, project_id: str, admin: bool) -> SecurityGroupRule:
        return self.secgroups.get_rule(rule_id, project_id, admin)

    def list_security_group_rules(self, project_id: str, admin: bool,
                                  group_ids: list[str] | None = None) -> list[SecurityGroupRule]:
        self.touch(project_id)
        return self.secgroups.list_rules(project_id, admin, group_ids)

    def update_security_group_rule(self, rule_id: str, project_id: str, admin: bool,
                                   request: RuleUpdate) -> SecurityGroupRule:
        rule = self.secgroups.update_rule(rule_id, project_id, admin, request)
        self._filtering_changed()
        return rule

    def delete_security_group_rule(self, rule_id: str, project_id: str, admin: bool) -> None:
        self.secgroups.delete_rule(rule_id, project_id, admin)
        self._filtering_changed()

    # what reaches a guest (the data plane asks; see openstack_fakecloud.network.firewall) -------------------
    def _filtering_changed(self) -> None:
        """Addresses, groups or rules changed: the guest plane re-checks its listeners and live connections."""
        self.cloud.guests.network_changed()

    def ingress_allowed(self, port_id: str, protocol: str, port_number: int, source_ip: str) -> bool:
        """Whether the port's security groups accept a new connection from `source_ip` (a missing port:
        no)."""
        port = self.ports.by_id.get(port_id)
        if port is None:
            return False
        if not port.port_security_enabled:
            return True
        rules = [rule for group_id in port.security_groups for rule in self.secgroups.rules_of_group(group_id)]
        return firewall.admits(rules, protocol, port_number, source_ip, self._group_addresses)

    def _group_addresses(self, group_id: str) -> list[str]:
        """The fixed addresses of every port in a group: what a `remote_group_id` rule admits."""
        return [ip["ip_address"] for port in self.ports.by_id.values() if group_id in port.security_groups
                for ip in port.fixed_ips]

    def reachable_addresses(self, device_id: str) -> list[tuple[str, str]]:
        """(address, port id) for each fixed IPv4 address of the device's ports and each floating IP
        associated with them: where a guest on that device answers."""
        found: list[tuple[str, str]] = []
        for port in self.ports.of_device(device_id):
            found += [(ip["ip_address"], port.id) for ip in port.fixed_ips if ":" not in ip["ip_address"]]
            found += [(address, port.id) for address in self.floating_ips_of_port(port.id)]
        return found

    # quotas ---------------------------------------------------------------------------------
    def quota_defaults(self) -> dict[str, int]:
        return self.quotas.defaults()

    def quota_limits(self, project_id: str) -> dict[str, int]:
        return self.quotas.limits(project_id)

    def quota_projects(self) -> list[str]:
        return self.quotas.projects()

    def quota_usage(self, project_id: str) -> dict[str, int]:
        """What the project holds of each quota resource (those fakecloud does not model stay 0)."""
        usage = dict.fromkeys(QUOTA_DEFAULTS, 0)
        topology = self.topology
        usage["network"] = sum(1 for n in topology.networks.values() if n.project_id == project_id)
        usage["subnet"] = sum(1 for s in topology.subnets.values() if s.project_id == project_id)
        usage["port"] = self.ports.count(project_id)
        usage["security_group"] = sum(1 for g in self.secgroups.groups.values() if g.project_id == project_id)
        usage["security_group_rule"] = self.secgroups.rule_count(project_id)
        usage["router"] = self.routers.count(project_id)
        usage["floatingip"] = self.floatingips.count(project_id)
        return usage

    def quota_usage_of(self, project_id: str, resource: str) -> int:
        """One resource's usage; rules are counted, not scanned, as a bulk create checks them often."""
        if resource == "security_group_rule":
            return self.secgroups.rule_count(project_id)
        return self.quota_usage(project_id)[resource]

    def update_quota(self, project_id: str, admin: bool, changes: dict[str, int]) -> dict[str, int]:
        return self.quotas.update(project_id, admin, changes)

    def reset_quota(self, project_id: str, admin: bool) -> None:
        self.quotas.reset(project_id, admin)

    # persistence ----------------------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        return {
            "networks": [asdict(n) for n in self.topology.networks.values()],
            "subnets": [asdict(s) for s in self.topology.subnets.values()],
            "ports": [asdict(p) for p in self.ports.by_id.values()],
            "security_groups": [asdict(g) for g in self.secgroups.groups.values()],
            "security_group_rules": [asdict(r) for r in self.secgroups.rules.values()],
            "quota_overrides": self.quotas.overrides,
            "routers": [asdict(r) for r in self.routers.by_id.values()],
            "floating_ips": [asdict(f) for f in self.floatingips.by_id.values()],
            "subnetpools": [asdict(p) for p in self.subnetpools.by_id.values()],
        }

    def load(self, data: dict[str, Any]) -> None:
        self._assemble(
            networks=[Network(**n) for n in data.get("networks", [])],
            subnets=[_subnet(s) for s in data.get("subnets", [])],
            # Dumps from before `created_by_nova`: a compute-owned port is taken to be one Nova made.
            ports=[Port(**{"created_by_nova": p.get("device_owner", "").startswith("compute:"), **p})
                   for p in data.get("ports", [])],
            groups=[SecurityGroup(**g) for g in data.get("security_groups", [])],
            rules=[SecurityGroupRule(**r) for r in data.get("security_group_rules", [])],
            quota_overrides=dict(data.get("quota_overrides", {})),
            routers=[Router(**r) for r in data.get("routers", [])],
            floating_ips=[FloatingIp(**f) for f in data.get("floating_ips", [])],
            subnetpools=[SubnetPool(**p) for p in data.get("subnetpools", [])],
        )

    # routers and floating IPs (Neutron's L3 service: openstack_fakecloud.network.routers, floatingips) ---------
    def _guard_port_delete(self, port: Port) -> None:
        """Neutron's `prevent_l3_port_deletion`: a live router's or floating IP's port goes only with it."""
        if port.device_owner not in L3_OWNERS:
            return
        if port.device_id in self.routers.by_id or self.floatingips.is_service_port(port):
            raise Conflict(f"Port {port.id} cannot be deleted directly via the port API: has device owner "
                           f"{port.device_owner}.", error_type="ServicePortInUse")

    def list_routers(self, project_id: str, admin: bool) -> list[Router]:
        self.touch(project_id)
        return self.routers.list_routers(project_id, admin)

    def get_router(self, router_id: str, project_id: str | None, admin: bool = False) -> Router:
        return self.routers.get_router(router_id, project_id, admin)

    def router_gateway_port(self, router: Router) -> Port | None:
        return self.routers.gateway_port(router)

    def create_router(self, project_id: str, admin: bool, request: RouterCreate) -> Router:
        self.touch(project_id)
        return self.routers.create_router(project_id, admin, request)

    def update_router(self, router_id: str, project_id: str, admin: bool, request: RouterUpdate) -> Router:
        return self.routers.update_router(router_id, project_id, admin, request)

    def delete_router(self, router_id: str, project_id: str, admin: bool) -> None:
        self.routers.delete_router(router_id, project_id, admin)

    def add_router_interface(self, router_id: str, project_id: str, admin: bool,
                             request: RouterInterface) -> dict[str, Any]:
        return self.routers.add_interface(router_id, project_id, admin, request)

    def remove_router_interface(self, router_id: str, project_id: str, admin: bool,
                                request: RouterInterface) -> dict[str, Any]:
        return self.routers.remove_interface(router_id, project_id, admin, request)

    def list_floating_ips(self, project_id: str, admin: bool) -> list[FloatingIp]:
        self.touch(project_id)
        return self.floatingips.list(project_id, admin)

    def get_floating_ip(self, fip_id: str, project_id: str | None, admin: bool = False) -> FloatingIp:
        return self.floatingips.get(fip_id, project_id, admin)

    def create_floating_ip(self, project_id: str, admin: bool, request: FloatingIpCreate) -> FloatingIp:
        self.touch(project_id)
        return self.floatingips.create(project_id, admin, request)

    def update_floating_ip(self, fip_id: str, project_id: str, admin: bool, request: FloatingIpUpdate) -> FloatingIp:
        return self.floatingips.update(fip_id, project_id, admin, request)

    def delete_floating_ip(self, fip_id: str, project_id: str, admin: bool) -> None:
        self.floatingips.delete(fip_id, project_id, admin)

    def floating_ips_of_port(self, port_id: str) -> list[str]:
        """The floating IP addresses associated with a port (what the guest plane makes a guest answer on)."""
        return self.floatingips.of_port(port_id)

    def update_subnet(self, subnet_id: str, project_id: str, admin: bool, request: SubnetUpdate) -> Subnet:
        """PUT /subnets/{id}; Neutron's GatewayIpInUse when a router interface holds the gateway being moved."""
        subnet = self.topology.get_subnet(subnet_id, project_id, admin)
        if request.gateway_set and request.gateway_ip != subnet.gateway_ip and subnet.gateway_ip is not None:
            for port in self.ports.by_id.values():
                if port.device_owner == "network:router_interface" and any(
                        ip["subnet_id"] == subnet.id and ip["ip_address"] == subnet.gateway_ip
                        for ip in port.fixed_ips):
                    raise Conflict(f"Current gateway ip {subnet.gateway_ip} already in use by port {port.id}. "
                                   "Unable to update.", error_type="GatewayIpInUse")
        return self.topology.update_subnet(subnet_id, project_id, admin, request)



def _subnet(raw: dict[str, Any]) -> Subnet:
    """A dumped subnet; dumps from before allocation pools held one pool as `pool_start`/`pool_end`."""
    raw = dict(raw)
    start, end = raw.pop("pool_start", None), raw.pop("pool_end", None)
    if start is not None and "allocation_pools" not in raw:
        raw["allocation_pools"] = [{"start": start, "end": end}]
    return Subnet(**raw)
