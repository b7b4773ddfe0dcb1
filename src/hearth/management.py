"""How Hearth reaches an instance's database: its management address, its superuser's password (unsealed
from the record), and the datastore's manager. Used by the task manager (health, bootstrap, configuration)
and the service layer (databases, users, root), never by the engines: the database is not the cloud.

Hearth dials the instance's private address (its port's fixed IP), which the instance's group opens to the
`management_cidrs` setting on the datastore port.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from hearth.config import DatastoreVersion, Settings
from hearth.datastores.cloudinit import StockImageSetup, pg_hba, user_data
from hearth.datastores.postgresql import Endpoint, PostgresManager
from hearth.db.models import Instance, SecurityGroupRule
from hearth.secrets import SecretBox

#: Datastores Hearth manages over the network, by name; others (mysql today) run unmanaged: no health
#: checks, no databases or users through the API.
MANAGED_DATASTORES = frozenset({"postgresql"})


class NotManaged(Exception):
    """The instance's database cannot be managed (its datastore has no manager, or it has no address or
    password yet); the message says which."""


def private_address(addresses: list[dict[str, Any]] | None) -> str | None:
    """The first private address of an instance's recorded addresses."""
    return next((a["address"] for a in addresses or [] if a.get("type") == "private"), None)


def public_address(addresses: list[dict[str, Any]] | None) -> str | None:
    return next((a["address"] for a in addresses or [] if a.get("type") == "public"), None)


def is_managed(datastore: str, manage: bool = True) -> bool:
    """Whether Hearth manages databases of this datastore (and the version's `manage` setting lets it)."""
    return manage and datastore in MANAGED_DATASTORES


def endpoint_for(inst: Instance, password: str, addresses: list[dict[str, Any]] | None = None) -> Endpoint:
    """Where and as whom Hearth reaches the instance's database (`addresses`: newer than the record's)."""
    if not is_managed(inst.datastore):
        raise NotManaged(f"Hearth does not manage {inst.datastore} databases: databases, users, root and "
                         "configuration groups are available for postgresql instances")
    host = private_address(addresses if addresses is not None else inst.addresses)
    if host is None:
        raise NotManaged(f"instance {inst.id} has no address yet")
    return Endpoint(host=host, port=inst.port, password=password)


def manager_for(inst: Instance, password: str, connect_timeout: float = 5.0,
                addresses: list[dict[str, Any]] | None = None) -> PostgresManager:
    """The manager of the instance's database, as its superuser (`password`: the unsealed admin password)."""
    return PostgresManager(endpoint_for(inst, password, addresses), connect_timeout=connect_timeout)


def seal_bootstrap(box: SecretBox, databases: list[dict[str, Any]], users: list[dict[str, Any]]) -> str | None:
    """A create's databases and users (passwords included), sealed for the record until the database has them."""
    if not databases and not users:
        return None
    return box.seal(json.dumps({"databases": databases, "users": users}))


def version_of(settings: Settings, inst: Instance) -> DatastoreVersion | None:
    ds = settings.datastore(inst.datastore)
    return ds.version(inst.datastore_version) if ds is not None else None


def boots_with_cloud_init(settings: Settings, inst: Instance) -> bool:
    version = version_of(settings, inst)
    return version is not None and version.boot == "cloud_init" and bool(inst.admin_password)


def stock_setup(settings: Settings, inst: Instance, rules: Iterable[SecurityGroupRule], password: str
                ) -> StockImageSetup:
    """What a stock image's cloud-init sets up for the instance: its port, password, and pg_hba from its
    access and management rules (the same CIDRs its security group opens)."""
    version = version_of(settings, inst)
    assert version is not None and version.major is not None, f"{inst.datastore} {inst.datastore_version}"
    rules = list(rules)
    return StockImageSetup(
        major=version.major, port=inst.port, admin_password=password,
        allowed_cidrs=tuple(r.cidr for r in rules if r.purpose != SecurityGroupRule.MANAGEMENT),
        management_cidrs=tuple(r.cidr for r in rules if r.purpose == SecurityGroupRule.MANAGEMENT)
        or tuple(settings.management_cidrs))


def boot_user_data(settings: Settings, inst: Instance, rules: Iterable[SecurityGroupRule], password: str
                   ) -> str | None:
    """The user data a stock image boots with (None for images that take Nova's adminPass)."""
    if not boots_with_cloud_init(settings, inst):
        return None
    return user_data(stock_setup(settings, inst, rules, password))


def hba_text(settings: Settings, inst: Instance, rules: Iterable[SecurityGroupRule], password: str) -> str:
    """pg_hba.conf of a stock image for its current rules (rewritten after each access change)."""
    return pg_hba(stock_setup(settings, inst, rules, password))
