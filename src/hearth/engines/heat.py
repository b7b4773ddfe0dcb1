"""Heat calls openstacksdk's orchestration proxy cannot make as-is, made through openstacksdk's own Stack resource.

openstacksdk 4.22's `Stack` has no field for what Heat's previews answer or for adopt data, so its proxy
calls silently drop them (checked against fakecloud):
- `create_stack(preview=True)` returns the stack without the previewed `resources`;
- `update_stack(stack, preview=True)` passes `preview` positionally as `Stack.commit`'s `prepend_key`,
  so it performs a *real* update instead of a preview (and `resource_changes` is dropped anyway);
- `create_stack(adopt_stack_data=...)` drops the adopt data and creates new resources instead.

`HeatStack` is the SDK's Stack with those three body fields added; the calls below are the SDK's own
`Resource.create` / `Stack.commit(preview=True)` on it, so requests, errors and microversions stay the SDK's.
"""

from __future__ import annotations

from typing import Any

from openstack import resource
from openstack.connection import Connection
from openstack.orchestration.v1.stack import Stack


class HeatStack(Stack):
    """openstacksdk's Stack plus the preview answers and the adopt request field."""

    #: Create preview: the resources Heat would create (nested stacks as nested lists).
    resources = resource.Body("resources", type=list)
    #: Update preview: {"added"|"deleted"|"replaced"|"unchanged"|"updated": [resource, ...]}.
    resource_changes = resource.Body("resource_changes", type=dict)
    #: Stack adopt: the abandon-format description of the existing resources (a JSON string).
    adopt_stack_data = resource.Body("adopt_stack_data")


def preview_create(conn: Connection, **attrs: Any) -> HeatStack:
    """POST /stacks/preview: what a create would build; changes nothing."""
    return HeatStack.new(**attrs).create(conn.orchestration, base_path="/stacks/preview")


def preview_update(conn: Connection, stack: Any, **attrs: Any) -> HeatStack:
    """PUT /stacks/{name}/{id}/preview: what an update would change; changes nothing."""
    target = HeatStack.existing(id=stack.id, name=stack.name)
    for key, value in attrs.items():
        setattr(target, key, value)  # marks them dirty, so they form the request body
    return target.commit(conn.orchestration, preview=True)


def adopt_stack(conn: Connection, **attrs: Any) -> HeatStack:
    """POST /stacks with adopt_stack_data: Heat takes over existing resources instead of creating them."""
    return HeatStack.new(**attrs).create(conn.orchestration)
