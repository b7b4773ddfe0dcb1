"""How Heat v1 renders stacks, resources, events and outputs (heat/api/openstack/v1/views)."""

from __future__ import annotations

from typing import Any

from openstack_fakecloud.orchestration.model import Event, ResourceRecord, Stack
from openstack_fakecloud.orchestration.parameters import PSEUDO, ParamSchema
from openstack_fakecloud.orchestration.preview import PreviewItem


def stack_url(base: str, stack: Stack) -> str:
    return f"{base}/stacks/{stack.name}/{stack.id}"


def _links(base: str, stack: Stack) -> list[dict[str, str]]:
    return [{"href": stack_url(base, stack), "rel": "self"}]


def stack_summary(stack: Stack, base: str) -> dict[str, Any]:
    return {
        "id": stack.id, "stack_name": stack.name, "description": stack.template.get("description") or "",
        "stack_status": stack.stack_status, "stack_status_reason": stack.status_reason,
        "creation_time": stack.creation_time, "updated_time": stack.updated_time,
        "deletion_time": stack.deletion_time, "stack_owner": None, "parent": None,
        "stack_user_project_id": stack.project_id, "tags": list(stack.tags) or None, "links": _links(base, stack),
        "project": stack.project_id,
    }


def stack_detail(stack: Stack, base: str, schemas: dict[str, ParamSchema], values: dict[str, Any],
                 outputs: list[dict[str, Any]] | None) -> dict[str, Any]:
    parameters: dict[str, Any] = {}
    for name, value in values.items():
        schema = schemas.get(name)
        if name in PSEUDO:
            parameters[name] = str(value)
        elif schema is not None and schema.hidden:
            parameters[name] = "******"
        elif isinstance(value, list):
            parameters[name] = ",".join(str(v) for v in value)
        elif isinstance(value, dict | list):
            import json

            parameters[name] = json.dumps(value)
        else:
            parameters[name] = str(value) if not isinstance(value, bool) else str(value).lower()
    view = stack_summary(stack, base)
    view.update({
        "parameters": parameters, "disable_rollback": stack.disable_rollback, "timeout_mins": stack.timeout_mins,
        "capabilities": [], "notification_topics": [], "template_description": stack.template.get("description") or "",
    })
    if outputs is not None:
        view["outputs"] = outputs
    return view


def resource_view(stack: Stack, record: ResourceRecord, base: str, required_by: list[str],
                  attributes: dict[str, Any] | None = None) -> dict[str, Any]:
    url = stack_url(base, stack)
    view: dict[str, Any] = {
        "resource_name": record.name, "logical_resource_id": record.name,
        "physical_resource_id": record.physical_id or "", "resource_type": record.type,
        "resource_status": f"{record.action}_{record.status}", "resource_status_reason": record.status_reason,
        "creation_time": record.created_time, "updated_time": record.updated_time or record.created_time,
        "required_by": required_by,
        "links": [{"href": f"{url}/resources/{record.name}", "rel": "self"}, {"href": url, "rel": "stack"}],
    }
    if attributes is not None:
        view["attributes"] = attributes
        view["description"] = ""
        view["metadata"] = {}
    return view


def event_view(stack: Stack, event: Event, base: str, detail: bool = False) -> dict[str, Any]:
    url = stack_url(base, stack)
    resource_url = f"{url}/resources/{event.resource_name}"
    view: dict[str, Any] = {
        "id": event.id, "event_time": event.event_time, "resource_name": event.resource_name,
        "logical_resource_id": event.resource_name, "physical_resource_id": event.physical_resource_id,
        "resource_status": event.resource_status, "resource_status_reason": event.resource_status_reason,
        "links": [{"href": f"{resource_url}/events/{event.id}", "rel": "self"},
                  {"href": resource_url, "rel": "resource"}, {"href": url, "rel": "stack"}],
    }
    if detail:
        view["resource_type"] = event.resource_type
        view["resource_properties"] = event.resource_properties
    return view


def _identity(stack_name: str, stack_id: str, project_id: str, path: str = "") -> dict[str, str]:
    return {"stack_name": stack_name, "stack_id": stack_id, "tenant": project_id, "path": path}


def preview_resource(stack: Stack, item: PreviewItem, with_props: bool) -> dict[str, Any]:
    """A resource as Heat's engine formats it for previews (format_stack_resource)."""
    record = item.record
    view: dict[str, Any] = {
        "resource_identity": _identity(stack.name, stack.id, stack.project_id, f"/resources/{record.name}"),
        "stack_identity": _identity(stack.name, stack.id, stack.project_id), "stack_name": stack.name,
        "resource_name": record.name, "logical_resource_id": record.name,
        "physical_resource_id": record.physical_id or "", "resource_type": record.type,
        "resource_action": record.action, "resource_status": record.status,
        "resource_status_reason": record.status_reason, "creation_time": record.created_time,
        "updated_time": record.updated_time or record.created_time, "required_by": list(item.required_by),
        "description": "", "metadata": {},
    }
    if with_props:
        view["properties"] = item.properties
    return view


def create_preview(stack: Stack, base: str, schemas: dict[str, ParamSchema], values: dict[str, Any],
                   items: list[PreviewItem]) -> dict[str, Any]:
    view = stack_detail(stack, base, schemas, values, None)
    for key in ("stack_status", "stack_status_reason", "updated_time", "deletion_time"):
        view.pop(key, None)
    view["resources"] = [preview_resource(stack, item, with_props=True) for item in items]
    return view


def update_preview(stack: Stack, changes: dict[str, list[PreviewItem]]) -> dict[str, Any]:
    return {category: [preview_resource(stack, item, with_props=False) for item in items]
            for category, items in changes.items()}
