"""Neutron's stored records, how they get ids, and who owns and sees them.

Every other network module reads and writes these; they import nothing from the rest of the
package, so the views, the request parsers and the backend modules can all share them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from openstack_fakecloud.errors import Forbidden
from openstack_fakecloud.identity.backend import stable_id


def new_id() -> str:
    return str(uuid.uuid4())


def dashed_stable_id(kind: str, name: str) -> str:
    """Neutron ids are dashed UUIDs; seeded resources keep the same id across resets."""
    return str(uuid.UUID(stable_id(kind, name)))


ADMIN_PROJECT = stable_id("project", "admin")


@dataclass(slots=True)
class Network:
    id: str
    name: str
    project_id: str
    created_at: str
    updated_at: str
    subnets: list[str] = field(default_factory=list)
    shared: bool = False
    external: bool = False  # `router:external` on the wire
    status: str = "ACTIVE"
    mtu: int = 1450
    admin_state_up: bool = True
    description: str = ""
    revision_number: int = 1
    tags: list[str] = field(default_factory=list)  # standard-attr-tag


@dataclass(slots=True)
class Subnet:
    id: str
    name: str
    network_id: str
    project_id: str
    cidr: str
    gateway_ip: str | None
    created_at: str
    updated_at: str
    # [{"start": ip, "end": ip}, ...] in address order: the only addresses the IPAM hands out by itself.
    allocation_pools: list[dict[str, str]] = field(default_factory=list)
    dns_nameservers: list[str] = field(default_factory=list)
    host_routes: list[dict[str, str]] = field(default_factory=list)  # [{"destination": cidr, "nexthop": ip}]
    ip_version: int = 4
    enable_dhcp: bool = True
    description: str = ""
    revision_number: int = 0
    tags: list[str] = field(default_factory=list)  # standard-attr-tag


@dataclass(slots=True)
class Port:
    id: str
    name: str
    network_id: str
    project_id: str
    device_id: str
    device_owner: str
    mac_address: str
    fixed_ips: list[dict[str, str]]
    security_groups: list[str]
    created_at: str
    updated_at: str
    status: str = "ACTIVE"
    admin_state_up: bool = True
    description: str = ""
    port_security_enabled: bool = True
    revision_number: int = 1
    # Nova made this port for a server (deleted with it); a port the user made and Nova bound is only unbound.
    created_by_nova: bool = False
    host_id: str = ""  # `binding:host_id` an admin set; a bound port without one is on fakecloud's compute host
    tags: list[str] = field(default_factory=list)  # standard-attr-tag


@dataclass(slots=True)
class SecurityGroup:
    id: str
    name: str
    project_id: str
    description: str
    created_at: str
    updated_at: str
    stateful: bool = True
    revision_number: int = 1
    tags: list[str] = field(default_factory=list)  # standard-attr-tag


@dataclass(slots=True)
class SecurityGroupRule:
    id: str
    security_group_id: str
    project_id: str
    direction: str
    ethertype: str
    protocol: str | None
    port_range_min: int | None
    port_range_max: int | None
    remote_ip_prefix: str | None
    remote_group_id: str | None
    remote_address_group_id: str | None
    description: str
    created_at: str
    revision_number: int = 0


@dataclass(slots=True)
class Router:
    """A router; its interfaces and gateway are ports whose `device_id` is the router's id (device owners
    `network:router_interface` and `network:router_gateway`)."""

    id: str
    name: str
    project_id: str
    created_at: str
    updated_at: str
    description: str = ""
    admin_state_up: bool = True
    status: str = "ACTIVE"
    gateway_network_id: str | None = None  # `external_gateway_info.network_id`; None: no gateway
    enable_snat: bool = True
    routes: list[dict[str, str]] = field(default_factory=list)  # extraroute: [{"destination", "nexthop"}]
    revision_number: int = 1
    tags: list[str] = field(default_factory=list)  # standard-attr-tag


@dataclass(slots=True)
class FloatingIp:
    """A floating IP; its address is held by a `network:floatingip` port (`floating_port_id`) on the
    external network."""

    id: str
    project_id: str
    floating_network_id: str
    floating_ip_address: str
    floating_port_id: str
    created_at: str
    updated_at: str
    port_id: str | None = None
    fixed_ip_address: str | None = None
    router_id: str | None = None
    status: str = "DOWN"
    description: str = ""
    revision_number: int = 0
    tags: list[str] = field(default_factory=list)  # standard-attr-tag


def visible(owner: str, project_id: str | None, admin: bool = False) -> bool:
    """Whether a project may see a record it does not own (None: an internal caller, sees all)."""
    return project_id is None or admin or owner == project_id


def network_visible(network: Network, project_id: str | None, admin: bool = False) -> bool:
    """Neutron shows shared and external (`router:external`) networks, and their subnets, to every project."""
    return network.shared or network.external or visible(network.project_id, project_id, admin)


def owner_of(project_id: str, admin: bool, requested: str | None) -> str:
    """The project a new resource belongs to: the caller's, or (admin only) the one the request names."""
    if not requested or requested == project_id:
        return project_id
    if not admin:
        raise Forbidden("Specifying 'project_id' or 'tenant_id' other than the authenticated project in "
                        "request requires admin privileges")
    return requested
