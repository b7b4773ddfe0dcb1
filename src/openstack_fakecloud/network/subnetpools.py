"""Neutron subnet pools: named sets of prefixes with prefix-length bounds, which clients create, list, tag,
update (prefixes only grow) and delete.

fakecloud stores pools but does not allocate subnets from them (the `subnet_allocation` extension is not
advertised, and a subnet request naming `subnetpool_id` is refused by the request parser), so a pool is never
in use. Sharing a pool or making it the default is an admin's (Neutron's default policy).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from openstack_fakecloud.errors import BadRequest, Forbidden, NotFound
from openstack_fakecloud.network.records import new_id, owner_of, visible

# Neutron's bounds when a request leaves them out (api-ref: min 8 / max 32 for IPv4, 64 / 128 for IPv6)
DEFAULT_BOUNDS = {4: (8, 32), 6: (64, 128)}


@dataclass(slots=True)
class SubnetPool:
    id: str
    name: str
    project_id: str
    prefixes: list[str]
    ip_version: int
    min_prefixlen: int
    max_prefixlen: int
    default_prefixlen: int
    created_at: str
    updated_at: str
    description: str = ""
    shared: bool = False
    is_default: bool = False
    default_quota: int | None = None
    revision_number: int = 0
    tags: list[str] = field(default_factory=list)


@dataclass(slots=True)
class SubnetPoolRequest:
    """A parsed create (every field the body gave) or update (None: unchanged) of a pool."""

    name: str | None = None
    prefixes: list[str] | None = None
    min_prefixlen: int | None = None
    max_prefixlen: int | None = None
    default_prefixlen: int | None = None
    description: str | None = None
    shared: bool | None = None
    is_default: bool | None = None
    default_quota: int | None = None
    project_id: str | None = None


def _bad(message: str) -> BadRequest:
    return BadRequest(message, error_type="InvalidInput")


def normalized_prefixes(raw: Iterable[str]) -> tuple[list[str], int]:
    """The prefixes collapsed into canonical networks (as Neutron stores them) and their one IP version."""
    try:
        networks = [ipaddress.ip_network(p, strict=False) for p in raw]
    except ValueError as err:
        raise _bad(f"Invalid input for prefixes. Reason: {err}.") from None
    versions = {n.version for n in networks}
    if not networks:
        raise _bad("Invalid input for prefixes. Reason: a subnet pool needs at least one prefix.")
    if len(versions) > 1:
        raise BadRequest("Cannot mix IPv4 and IPv6 prefixes in a subnet pool.", error_type="PrefixVersionMismatch")
    collapsed = ipaddress.collapse_addresses(networks)  # type: ignore[type-var]
    return [str(n) for n in collapsed], versions.pop()


class SubnetPools:
    """Every subnet pool by id."""

    def __init__(self, now: Callable[[], str], pools: Iterable[SubnetPool] = ()) -> None:
        self._now = now
        self.by_id: dict[str, SubnetPool] = {p.id: p for p in pools}

    def get(self, pool_id: str, project_id: str | None, admin: bool = False) -> SubnetPool:
        pool = self.by_id.get(pool_id)
        if pool is None or not (pool.shared or visible(pool.project_id, project_id, admin)):
            raise NotFound(f"Subnet pool {pool_id} could not be found.", error_type="SubnetPoolNotFound")
        return pool

    def list(self, project_id: str, admin: bool) -> list[SubnetPool]:
        return [p for p in self.by_id.values() if p.shared or visible(p.project_id, project_id, admin)]

    def create(self, project_id: str, admin: bool, request: SubnetPoolRequest) -> SubnetPool:
        self._check_admin_only(request, admin)
        prefixes, version = normalized_prefixes(request.prefixes or [])
        low, high = DEFAULT_BOUNDS[version]
        min_len = request.min_prefixlen if request.min_prefixlen is not None else low
        max_len = request.max_prefixlen if request.max_prefixlen is not None else high
        default_len = request.default_prefixlen if request.default_prefixlen is not None else min_len
        self._check_bounds(version, min_len, max_len, default_len)
        now = self._now()
        pool = SubnetPool(
            id=new_id(), name=request.name or "", project_id=owner_of(project_id, admin, request.project_id),
            prefixes=prefixes, ip_version=version, min_prefixlen=min_len, max_prefixlen=max_len,
            default_prefixlen=default_len, created_at=now, updated_at=now, description=request.description or "",
            shared=bool(request.shared), is_default=bool(request.is_default), default_quota=request.default_quota)
        self.by_id[pool.id] = pool
        return pool

    def update(self, pool_id: str, project_id: str, admin: bool, request: SubnetPoolRequest) -> SubnetPool:
        pool = self._owned(pool_id, project_id, admin)
        self._check_admin_only(request, admin)
        prefixes = pool.prefixes
        if request.prefixes is not None:
            prefixes, version = normalized_prefixes([*request.prefixes])
            if version != pool.ip_version:
                raise BadRequest("Cannot mix IPv4 and IPv6 prefixes in a subnet pool.",
                                 error_type="PrefixVersionMismatch")
            kept = [ipaddress.ip_network(p) for p in pool.prefixes]
            new = [ipaddress.ip_network(p) for p in prefixes]
            if not all(any(old.subnet_of(n) for n in new) for old in kept):  # type: ignore[arg-type]
                raise BadRequest("Illegal update to prefixes: Existing prefixes must be a subset of the new "
                                 "prefixes", error_type="IllegalSubnetPoolPrefixUpdate")
        min_len = request.min_prefixlen if request.min_prefixlen is not None else pool.min_prefixlen
        max_len = request.max_prefixlen if request.max_prefixlen is not None else pool.max_prefixlen
        default_len = request.default_prefixlen if request.default_prefixlen is not None else pool.default_prefixlen
        self._check_bounds(pool.ip_version, min_len, max_len, default_len)
        pool.prefixes, pool.min_prefixlen, pool.max_prefixlen, pool.default_prefixlen = (
            prefixes, min_len, max_len, default_len)
        for name in ("name", "description", "shared", "is_default", "default_quota"):
            value = getattr(request, name)
            if value is not None:
                setattr(pool, name, value)
        pool.updated_at = self._now()
        pool.revision_number += 1
        return pool

    def delete(self, pool_id: str, project_id: str, admin: bool) -> None:
        del self.by_id[self._owned(pool_id, project_id, admin).id]

    def _owned(self, pool_id: str, project_id: str, admin: bool) -> SubnetPool:
        pool = self.get(pool_id, project_id, admin)
        if not admin and pool.project_id != project_id:
            raise Forbidden("(rule:update_subnetpool) is disallowed by policy")
        return pool

    @staticmethod
    def _check_admin_only(request: SubnetPoolRequest, admin: bool) -> None:
        if not admin and (request.shared or request.is_default):
            attribute = "shared" if request.shared else "is_default"
            raise Forbidden(f"(rule:create_subnetpool:{attribute}) is disallowed by policy")

    @staticmethod
    def _check_bounds(version: int, min_len: int, max_len: int, default_len: int) -> None:
        bits = 32 if version == 4 else 128
        if not 0 <= min_len <= default_len <= max_len <= bits:
            raise BadRequest(f"Illegal prefix bounds: min_prefixlen={min_len}, default_prefixlen={default_len}, "
                             f"max_prefixlen={max_len} (0 <= min <= default <= max <= {bits}).",
                             error_type="IllegalSubnetPoolPrefixBounds")
