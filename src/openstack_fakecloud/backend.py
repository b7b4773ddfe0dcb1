"""The base of every service backend: the only code that changes a service's resources.

A backend reaches the cloud it belongs to (its clock, faults and the other services) through `self.cloud`;
the cloud builds its backends, so this module knows the Cloud only as a type.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from openstack_fakecloud.faults import RESOURCE_ACTIONS, FaultRule

if TYPE_CHECKING:
    from openstack_fakecloud.clock import Timer
    from openstack_fakecloud.state import Cloud


class Backend:
    """Base of every service backend: owns its resources, can reset, dump and load them."""

    name: ClassVar[str]

    def __init__(self, cloud: Cloud) -> None:
        self.cloud = cloud
        self.reset()

    def reset(self) -> None:
        raise NotImplementedError

    def dump(self) -> dict[str, Any]:
        return {}

    def load(self, data: dict[str, Any]) -> None:
        """Restore from `dump()` output; transitional states should be settled or rescheduled."""

    # helpers shared by backends -------------------------------------------------------------
    def after(self, delay_name: str, fn: Any, *args: Any) -> Timer:
        return self.cloud.after(delay_name, fn, *args)

    def resource_fault(self, operation: str, project_id: str | None = None) -> FaultRule | None:
        """Take an `error_status` or `stuck` fault for this service's operation, if one is armed."""
        return self.cloud.faults.take(self.name, operation, RESOURCE_ACTIONS, project_id)

    def now(self) -> str:
        return self.cloud.clock.wall().strftime("%Y-%m-%dT%H:%M:%SZ")
