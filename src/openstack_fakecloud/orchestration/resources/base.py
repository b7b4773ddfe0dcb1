"""The base of every resource plugin: a property schema, attributes, and the handler protocol.

The engine calls `handle_<action>()` once and then `check_<action>_complete()` on scheduler ticks
until it returns True (or raises ResourceFailure). Plugins know nothing of graphs, stacks or events;
they record the physical id the moment it exists (`self.record.physical_id`) and keep whatever else
they need between polls in `self.record.data`, under named steps.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from openstack_fakecloud.errors import NotFound
from openstack_fakecloud.orchestration.constraints import Scope
from openstack_fakecloud.orchestration.errors import ResourceFailure
from openstack_fakecloud.orchestration.model import ResourceRecord
from openstack_fakecloud.orchestration.properties import Schema

if TYPE_CHECKING:
    from openstack_fakecloud.state import Cloud


@dataclass(frozen=True)
class PluginContext:
    """What a plugin may know about its stack."""

    cloud: Cloud
    project_id: str
    user_id: str
    stack_name: str
    stack_id: str
    is_admin: bool = False  # the stack creator's admin role (Heat acts with the stack's credentials)

    @property
    def scope(self) -> Scope:
        return Scope(self.cloud, self.project_id, self.is_admin)


class Resource:
    properties_schema: ClassVar[dict[str, Schema]] = {}
    attributes_schema: ClassVar[dict[str, str]] = {}
    open_properties: ClassVar[bool] = False  # accept any property (OS::Heat::None)

    def __init__(self, ctx: PluginContext, record: ResourceRecord) -> None:
        self.ctx = ctx
        self.record = record

    @property
    def cloud(self) -> Cloud:
        return self.ctx.cloud

    @property
    def data(self) -> dict[str, Any]:
        return self.record.data

    def physical_name(self) -> str:
        """Heat's default name for what a resource creates: <stack>-<resource>-<short id>."""
        short = self.data.setdefault("short_id", "".join(
            secrets.choice(string.ascii_lowercase + string.digits) for _ in range(12)))
        return f"{self.ctx.stack_name}-{self.record.name}-{short}"

    # validation ----------------------------------------------------------------------------------
    def validate(self, props: dict[str, Any]) -> None:
        """Checks across properties (ResourcePropertyConflict, ...), after each property is valid."""

    # create ----------------------------------------------------------------------------------
    def handle_create(self, props: dict[str, Any]) -> None:
        raise NotImplementedError

    def check_create_complete(self) -> bool:
        return True

    # update ----------------------------------------------------------------------------------
    def needs_replace(self, old: dict[str, Any], new: dict[str, Any], changed: set[str]) -> bool:
        """Plugin narrowing of the schema's decision (Server: flavor_update_policy REPLACE, ...)."""
        return False

    def prepare_for_replace(self) -> None:
        """Heat's prepare_for_replace: free what the replacement must take over (a server's ports), before
        the replacement is created."""

    def handle_update(self, old: dict[str, Any], new: dict[str, Any], changed: set[str]) -> None:
        """In-place update with only the changed properties' names (all of them update_allowed)."""

    def check_update_complete(self) -> bool:
        return True

    # delete ----------------------------------------------------------------------------------
    def handle_delete(self) -> None:
        """Start deleting the physical resource; not-found means it is already gone."""

    def check_delete_complete(self) -> bool:
        return True

    # check and adopt -------------------------------------------------------------------------
    def live(self) -> Any:
        """The physical resource as its backend holds it (NotFound when gone); None when nothing is behind."""
        return None

    def handle_check(self) -> None:
        """Heat's check: the physical resource still exists (plugins add their status expectations)."""
        self.live()

    def check_check_complete(self) -> bool:
        return True

    def drifted(self, props: dict[str, Any]) -> set[str]:
        """Heat's observe-reality for an update sent with `converge`: the names of the properties whose live
        state differs from `props` (the update then applies them as if the template had changed them).
        NotFound when the physical resource is gone. Plugins that observe nothing report no drift."""
        self.live()
        return set()

    def handle_adopt(self, resource_data: dict[str, Any]) -> None:
        """Take over `resource_id` from abandon data: record it and its data, create and change nothing.

        Real Heat's default only records the id; fakecloud also looks the resource up, so adopting a
        resource that is gone fails at once (ADOPT_FAILED) rather than at the next update."""
        resource_id = resource_data.get("resource_id")
        if not resource_id:
            raise ResourceFailure("Error", "Resource ID was not provided.")
        self.record.physical_id = str(resource_id)
        data = resource_data.get("resource_data") or {}
        self.record.data.update({str(k): v for k, v in data.items() if k != "deletion_policy"})
        self.live()

    def check_adopt_complete(self) -> bool:
        return True

    @staticmethod
    def verify_checks(checks: list[tuple[str, Any, Any]]) -> None:
        """(attribute, expected value or list, current value) -> Heat's check failure message."""
        bad = [f"'{attr}': expected '{expected}', got '{current}'" for attr, expected, current in checks
               if not (current in expected if isinstance(expected, list) else current == expected)]
        if bad:
            raise ResourceFailure("Error", "; ".join(bad))

    # references ------------------------------------------------------------------------------
    def reference(self) -> Any:
        """What get_resource returns."""
        return self.record.physical_id

    def attribute(self, name: str) -> Any:
        """One attribute's live value (None when the physical resource is missing)."""
        if name == "show":
            return self.show()
        return None

    def show(self) -> Any:
        return None

    def attributes(self) -> dict[str, Any]:
        return {name: self._safe(name) for name in [*self.attributes_schema, "show"]}

    def _safe(self, name: str) -> Any:
        try:
            return self.attribute(name)
        except NotFound:
            return None
