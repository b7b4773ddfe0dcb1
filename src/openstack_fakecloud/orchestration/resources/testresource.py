"""OS::Heat::TestResource: Heat's own test double, which heat-tempest-plugin's templates use everywhere.

It stores `value` (attribute `output`), waits `wait_secs` / `action_wait_secs[action]` cloud seconds
after each action (-1 waits for ever), and with `fail` fails create and update once the wait is over.
A changed `value` is replaced instead of updated when `update_replace` is true. The knobs that make
real Heat block a worker (`attr_wait_secs`, `constraint_prop_secs`) or poll another service
(`client_name`, `entity_name`) are accepted and validated, but have no effect here: fakecloud never
blocks a request, and nothing observable depends on them.
"""

from __future__ import annotations

from typing import Any

from openstack_fakecloud.orchestration.errors import ResourceFailure
from openstack_fakecloud.orchestration.properties import BOOLEAN, MAP, NUMBER, STRING, Schema
from openstack_fakecloud.orchestration.resources.base import Resource

WAIT_NOTE = "step"  # record.data key: the action's deadline, a transient note (not abandon data)


class TestResource(Resource):
    """A resource that stores the string it was given; for testing only."""

    __test__ = False  # not a pytest test class, whatever its name says

    properties_schema = {
        "constraint_prop_secs": Schema(NUMBER, "Number value for delay during resolve constraint.", default=0,
                                       update_allowed=True),
        "attr_wait_secs": Schema(NUMBER, "Number value for timeout during resolving output value.", default=0,
                                 update_allowed=True),
        "value": Schema(STRING, "The input string to be stored.", default="test_string", update_allowed=True),
        "update_replace_value": Schema(STRING, "Some value that can be stored but can not be updated."),
        "fail": Schema(BOOLEAN, "Value which can be set to fail the resource operation to test failure scenarios.",
                       default=False, update_allowed=True),
        "update_replace": Schema(BOOLEAN, "Value which can be set to trigger update replace for the particular "
                                 "resource.", default=False, update_allowed=True),
        "wait_secs": Schema(NUMBER, "Seconds to wait after an action (-1 is infinite).", default=0,
                            update_allowed=True),
        "action_wait_secs": Schema(MAP, "Options for simulating waiting.", update_allowed=True, schema={
            "create": Schema(NUMBER, "Seconds to wait after a create. Defaults to the global wait_secs.",
                             update_allowed=True),
            "update": Schema(NUMBER, "Seconds to wait after an update. Defaults to the global wait_secs.",
                             update_allowed=True),
            "delete": Schema(NUMBER, "Seconds to wait after a delete. Defaults to the global wait_secs.",
                             update_allowed=True),
        }),
        "client_name": Schema(STRING, "Client to poll.", default="", update_allowed=True),
        "entity_name": Schema(STRING, "Client entity to poll.", default="", update_allowed=True),
    }
    attributes_schema = {"output": "The string that was stored. This value is also available by referencing "
                                   "the resource."}

    # actions -------------------------------------------------------------------------------------
    def handle_create(self, props: dict[str, Any]) -> None:
        if not props.get("fail"):
            self.data["value"] = props.get("value")
            self.record.physical_id = self.physical_name()
        self._start_wait(props, "create")

    def needs_replace(self, old: dict[str, Any], new: dict[str, Any], changed: set[str]) -> bool:
        return "value" in changed and bool(new.get("update_replace"))

    def handle_update(self, old: dict[str, Any], new: dict[str, Any], changed: set[str]) -> None:
        """Only a new `value` waits (and is stored unless `fail`); other changes finish at once."""
        if "value" in changed and new.get("value"):
            if not new.get("fail"):
                self.data["value"] = new.get("value")
            self._start_wait(new, "update")
        else:
            self._start_wait(new, "update", seconds=0)

    def handle_delete(self) -> None:
        self._start_wait(self.record.properties, "delete")

    def check_create_complete(self) -> bool:
        return self._waited()

    def check_update_complete(self) -> bool:
        return self._waited()

    def check_delete_complete(self) -> bool:
        return self._waited()

    def handle_check(self) -> None:
        if not self.record.physical_id:
            raise ResourceFailure("Exception", "Resource not created")

    # waiting -------------------------------------------------------------------------------------
    def _start_wait(self, props: dict[str, Any], action: str, seconds: float | None = None) -> None:
        if seconds is None:
            seconds = (props.get("action_wait_secs") or {}).get(action)
        if seconds is None:
            seconds = props.get("wait_secs") or 0
        until = None if seconds < 0 else self.cloud.clock.now() + float(seconds)
        self.data[WAIT_NOTE] = {"until": until, "fail": bool(props.get("fail")) and action != "delete"}

    def _waited(self) -> bool:
        note = self.data.get(WAIT_NOTE)
        if not isinstance(note, dict):
            return True  # nothing to wait for (e.g. the note was lost in a restart)
        until = note.get("until")
        if until is None or self.cloud.clock.now() < until:
            return False  # None: wait_secs -1, for ever
        del self.data[WAIT_NOTE]
        if note.get("fail"):
            raise ResourceFailure("ValueError", f"Test Resource failed {self.record.name}")
        return True

    # references ----------------------------------------------------------------------------------
    def attribute(self, name: str) -> Any:
        return self.data.get("value") if name == "output" else super().attribute(name)


def resource_mapping() -> dict[str, type[Resource]]:
    return {"OS::Heat::TestResource": TestResource}
