"""Heat's state: stacks per project, their resources and events; the API operations on them.

Routes call one method here; the engine (engine.py) does the resource work on the scheduler and
reports back through `_resource_event` and `_run_finished`, which write the statuses, reasons and
events exactly where Heat would.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from dataclasses import asdict
from typing import Any

from openstack_fakecloud.backend import Backend
from openstack_fakecloud.errors import CloudError
from openstack_fakecloud.orchestration.constraints import Scope
from openstack_fakecloud.orchestration.engine import Engine, Run
from openstack_fakecloud.orchestration.errors import (
    ActionInProgress,
    EntityNotFound,
    HeatError,
    ImmutableParameterModified,
    NotSupported,
    ResourceNotFound,
    StackExists,
    StackValidationFailed,
)
from openstack_fakecloud.orchestration.model import (
    ADOPT,
    CHECK,
    COMPLETE,
    CREATE,
    DELETE,
    FAILED,
    IN_PROGRESS,
    INIT,
    ROLLBACK,
    SUSPEND,
    UPDATE,
    Event,
    ResourceRecord,
    Stack,
)
from openstack_fakecloud.orchestration.parameters import validate_view
from openstack_fakecloud.orchestration.preview import PreviewItem, create_preview, update_preview
from openstack_fakecloud.orchestration.software import SoftwareStore
from openstack_fakecloud.orchestration.stackdefn import Prepared, prepare
from openstack_fakecloud.orchestration.template import load_text, parse

NAME_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9_.-]{0,254}$")
TRANSIENT_DATA = ("step", "target")  # a plugin's in-flight notes, not part of a resource's abandon data


def _adopt_data(raw: Any) -> dict[str, Any]:
    """adopt_stack_data as heatclient sends it (a JSON string) or as a dict."""
    try:
        data = raw if isinstance(raw, dict) else load_text(str(raw))
    except (ValueError, CloudError):
        data = None
    if not isinstance(data, dict):
        raise HeatError("Invalid adopt data: the adopt_stack_data must be a JSON object.",
                        error_type="HTTPBadRequest")
    return data


class OrchestrationBackend(Backend):
    name = "orchestration"

    def reset(self) -> None:
        self.stacks: dict[str, Stack] = {}
        self._prepared: dict[str, Prepared] = {}
        self.engine = Engine(self.cloud, self._resource_event, self._run_finished)
        self.engine.stacks = self.stacks
        self.software = SoftwareStore(self.now)

    # lookups ---------------------------------------------------------------------------------------
    def lookup(self, project_id: str | None, name_or_id: str) -> Stack:
        """By id (deleted stacks too, as Heat's show_deleted), else by name among live stacks."""
        stack = self.stacks.get(name_or_id)
        if stack is not None and project_id in (None, stack.project_id):
            return stack
        for stack in self.stacks.values():
            if stack.name == name_or_id and not stack.deleted and project_id in (None, stack.project_id):
                return stack
        raise EntityNotFound("Stack", name_or_id)

    def identified(self, project_id: str | None, name: str, stack_id: str) -> Stack:
        stack = self.stacks.get(stack_id)
        if stack is None or stack.name != name or project_id not in (None, stack.project_id):
            raise EntityNotFound("Stack", name)
        return stack

    def live(self, project_id: str | None, name: str, stack_id: str) -> Stack:
        stack = self.identified(project_id, name, stack_id)
        if stack.deleted:
            raise EntityNotFound("Stack", name)
        return stack

    def list_stacks(self, project_id: str, all_projects: bool, filters: dict[str, list[str]]) -> list[Stack]:
        stacks = [s for s in self.stacks.values() if (all_projects or s.project_id == project_id) and not s.deleted]
        for key, attr in (("name", "name"), ("id", "id"), ("action", "action"), ("status", "status")):
            wanted = filters.get(key)
            if wanted:
                stacks = [s for s in stacks if getattr(s, attr) in wanted]
        return sorted(stacks, key=lambda s: s.creation_time, reverse=True)

    def scope(self, project_id: str, admin: bool = False) -> Scope:
        return Scope(self.cloud, project_id, admin)

    def prepared(self, stack: Stack) -> Prepared:
        """The stack's current definition (cached; recomputed after a load)."""
        cached = self._prepared.get(stack.id)
        if cached is None:
            cached = prepare(stack.template, stack.parameters, stack.environment, stack.files,
                             self._identity(stack), self.scope(stack.project_id, stack.is_admin), strict=False)
            self._prepared[stack.id] = cached
        return cached

    @staticmethod
    def _identity(stack: Stack) -> dict[str, str]:
        return {"OS::stack_id": stack.id, "OS::stack_name": stack.name, "OS::project_id": stack.project_id}

    # create --------------------------------------------------------------------------------------
    def create_stack(self, project_id: str, user_id: str, name: Any, template: Any, parameters: dict[str, Any],
                     environment: Any, files: dict[str, Any], disable_rollback: bool, timeout_mins: int | None,
                     tags: list[str], adopt_data: Any = None, is_admin: bool = False) -> Stack:
        """Create, or with `adopt_data` (abandon output) adopt: take over its resources by resource_id.

        Real Heat refuses adopt (and abandon) unless `enable_stack_adopt` / `enable_stack_abandon` are
        set, both off by default; fakecloud has them enabled."""
        adopted = None
        if adopt_data is not None:
            adopted = _adopt_data(adopt_data)
            template = adopted.get("template") or template
            adopt_params = (adopted.get("environment") or {}).get("parameters") or {}
            parameters = {**adopt_params, **(parameters or {})}
        stack, prepared = self._new_stack(project_id, user_id, name, template, parameters, environment, files,
                                          disable_rollback, timeout_mins, tags, is_admin=is_admin)
        self.stacks[stack.id] = stack
        self._prepared[stack.id] = prepared
        if adopted is None:
            self._stack_state(stack, CREATE, IN_PROGRESS, "Stack CREATE started")
            self.engine.start(stack, CREATE, prepared, self.engine.create_nodes(stack, prepared))
            return stack
        self._stack_state(stack, ADOPT, IN_PROGRESS, "Stack ADOPT started")
        run = self.engine.start(stack, ADOPT, prepared, self.engine.adopt_nodes(stack, prepared))
        resources = adopted.get("resources") or {}
        run.adopt = resources if isinstance(resources, dict) else {}
        return stack

    def preview_create(self, project_id: str, user_id: str, name: Any, template: Any, parameters: dict[str, Any],
                       environment: Any, files: dict[str, Any], disable_rollback: bool, timeout_mins: int | None,
                       tags: list[str], is_admin: bool = False) -> tuple[Stack, Prepared, list[PreviewItem]]:
        """POST /stacks/preview: the create's validation and resources; nothing is stored or created."""
        stack, prepared = self._new_stack(project_id, user_id, name, template, parameters, environment, files,
                                          disable_rollback, timeout_mins, tags, stack_id="None",
                                          is_admin=is_admin)
        stack.action, stack.status, stack.status_reason = "INIT", COMPLETE, ""
        return stack, prepared, create_preview(prepared, self._identity(stack))

    def _new_stack(self, project_id: str, user_id: str, name: Any, template: Any, parameters: dict[str, Any],
                   environment: Any, files: dict[str, Any], disable_rollback: bool, timeout_mins: int | None,
                   tags: list[str], stack_id: str | None = None, is_admin: bool = False) -> tuple[Stack, Prepared]:
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise HeatError(f'Invalid stack name {name} must contain only alphanumeric or "_-." characters, must '
                            "start with alpha and must be 255 characters or less.", error_type="StackValidationFailed")
        if any(s.name == name and s.project_id == project_id and not s.deleted for s in self.stacks.values()):
            raise StackExists(name)
        if template is None:
            raise HeatError("No template specified", error_type="HTTPBadRequest")
        stack_id = stack_id or str(uuid.uuid4())
        identity = {"OS::stack_id": stack_id, "OS::stack_name": name, "OS::project_id": project_id}
        prepared = prepare(template, parameters, environment, files, identity, self.scope(project_id, is_admin))
        stack = Stack(is_admin=is_admin, id=stack_id, name=name, project_id=project_id, user_id=user_id,
                      template=prepared.template.raw, parameters=dict(parameters or {}),
                      environment=prepared.environment, files=dict(files or {}), creation_time=self.now(),
                      disable_rollback=disable_rollback, timeout_mins=timeout_mins, tags=list(tags))
        return stack, prepared

    # update --------------------------------------------------------------------------------------
    def update_stack(self, stack: Stack, template: Any, parameters: dict[str, Any], environment: Any,
                     files: dict[str, Any] | None, existing: bool, clear_parameters: list[str],
                     timeout_mins: Any, disable_rollback: bool | None, tags: list[str] | None,
                     converge: bool = False) -> None:
        """PUT replaces template and parameters; PATCH (`existing`) keeps what the request leaves out.
        `converge`: each resource's live state is observed, so what changed behind Heat is applied again."""
        self._not_busy(stack)
        template, parameters, environment, files = self._update_inputs(stack, template, parameters, environment,
                                                                       files, existing, clear_parameters)
        prepared = prepare(template, parameters, environment, files, self._identity(stack),
                           self.scope(stack.project_id, stack.is_admin))
        old = self.prepared(stack)
        changed_immutable = [n for n, schema in old.template.parameters.items()
                             if schema.immutable and n in prepared.values and prepared.values[n] != old.values.get(n)]
        if changed_immutable:
            raise ImmutableParameterModified(changed_immutable)
        stack.previous = {"template": stack.template, "parameters": stack.parameters,
                          "environment": stack.environment, "files": stack.files}
        stack.template, stack.parameters = prepared.template.raw, dict(parameters or {})
        stack.environment, stack.files = prepared.environment, dict(files or {})
        if timeout_mins is not None:
            stack.timeout_mins = timeout_mins
        if disable_rollback is not None:
            stack.disable_rollback = disable_rollback
        if tags is not None:
            stack.tags = list(tags)
        stack.updated_time = self.now()
        self._prepared[stack.id] = prepared
        self._stack_state(stack, UPDATE, IN_PROGRESS, "Stack UPDATE started")
        self._start_update(stack, prepared, UPDATE, converge)

    def _update_inputs(self, stack: Stack, template: Any, parameters: dict[str, Any], environment: Any,
                       files: dict[str, Any] | None, existing: bool,
                       clear_parameters: list[str]) -> tuple[Any, dict[str, Any], Any, dict[str, Any] | None]:
        if existing:
            template = template if template is not None else stack.template
            merged = {k: v for k, v in stack.parameters.items() if k not in clear_parameters}
            merged.update(parameters or {})
            declared = parse(template).parameters
            parameters = {k: v for k, v in merged.items() if k in declared}
            if environment is None:
                environment = stack.environment
            files = {**stack.files, **(files or {})}
        elif template is None:
            raise HeatError("No template specified", error_type="HTTPBadRequest")
        return template, parameters, environment, files

    def preview_update(self, stack: Stack, template: Any, parameters: dict[str, Any], environment: Any,
                       files: dict[str, Any] | None, existing: bool,
                       clear_parameters: list[str]) -> dict[str, list[PreviewItem]]:
        """PUT/PATCH .../preview: the update's own decisions (update.decide), with nothing changed."""
        template, parameters, environment, files = self._update_inputs(stack, template, parameters, environment,
                                                                       files, existing, clear_parameters)
        prepared = prepare(template, parameters, environment, files, self._identity(stack),
                           self.scope(stack.project_id, stack.is_admin))
        return update_preview(self.engine, stack, prepared)

    def _start_update(self, stack: Stack, prepared: Prepared, action: str, converge: bool = False) -> None:
        engine = self.engine

        def cleanup() -> dict[str, Any]:
            removed = [r for n, r in list(stack.resources.items()) if n not in prepared.active]
            for record in removed:
                if record.action == "INIT":
                    del stack.resources[record.name]
            doomed = [r for r in removed if r.action != "INIT"] + list(stack.retired)
            return engine.delete_nodes(doomed)

        engine.start(stack, action, prepared, engine.update_nodes(stack, prepared), cleanup, converge=converge)

    def _not_busy(self, stack: Stack) -> None:
        if stack.status == IN_PROGRESS:
            raise ActionInProgress(stack.name, stack.action)

    # delete --------------------------------------------------------------------------------------
    def delete_stack(self, stack: Stack) -> None:
        """Allowed at any time (a create in flight is abandoned and cleaned up)."""
        if stack.deleted:
            raise EntityNotFound("Stack", stack.name)
        self._stack_state(stack, DELETE, IN_PROGRESS, "Stack DELETE started")
        records = list(stack.resources.values()) + list(stack.retired)
        self.engine.start(stack, DELETE, None, self.engine.delete_nodes(records))

    # actions -------------------------------------------------------------------------------------
    def stack_action(self, stack: Stack, action: str) -> None:
        """POST .../actions: check, cancel_update, cancel_without_rollback (suspend/resume: not here)."""
        if stack.deleted:
            raise EntityNotFound("Stack", stack.name)
        if action == "check":
            self._not_busy(stack)
            self._stack_state(stack, CHECK, IN_PROGRESS, "Stack CHECK started")
            run = self.engine.start(stack, CHECK, None, self.engine.check_nodes(stack))
            run.aggregate = True
        elif action in ("cancel_update", "cancel_without_rollback"):
            if stack.action != UPDATE or stack.status != IN_PROGRESS:
                raise NotSupported(f"Cancelling update when stack is ('{stack.action}', '{stack.status}')")
            self.engine.abort(stack, "Stack UPDATE cancelled")
            self._stack_state(stack, UPDATE, FAILED, "Stack UPDATE cancelled")
            if action == "cancel_update":
                self._rollback(stack, UPDATE)
        else:
            raise NotSupported(f"Action {action} on a stack in fakecloud")

    def mark_unhealthy(self, stack: Stack, name: str, unhealthy: bool, reason: str | None) -> None:
        """PATCH .../resources/{name}: CHECK_FAILED now, so the next update replaces the resource."""
        record = self.resource(stack, name)
        if record.status == IN_PROGRESS:
            raise ActionInProgress(stack.name, stack.action)
        reason = reason or "state changed by resource_mark_unhealthy api"
        marked = record.action == CHECK and record.status == FAILED
        if unhealthy and not marked:
            self._resource_event(stack, record, CHECK, FAILED, reason)
        elif not unhealthy and marked:
            self._resource_event(stack, record, CHECK, COMPLETE, reason)

    def signal_resource(self, stack: Stack, name: str) -> None:
        """POST .../resources/{name}/signal: no fakecloud plugin handles signals, so Heat's refusal."""
        record = self.resource(stack, name)
        if record.action in (INIT, SUSPEND, DELETE):
            if record.action == INIT:
                raise HeatError(f"The Resource ({name}) is not available.", error_type="ResourceNotAvailable")
            raise NotSupported(f"Signal resource during {record.action}")
        raise HeatError(f"ResourceActionNotSupported: resources.{name}: signal is not supported for resource.",
                        error_type="ResourceFailure")

    # abandon, export ---------------------------------------------------------------------------------
    def export_stack(self, stack: Stack) -> dict[str, Any]:
        """What abandon returns (Stack.prepare_abandon), without forgetting the stack."""
        if stack.deleted:
            raise EntityNotFound("Stack", stack.name)
        prepared = self.prepared(stack)
        resolver = self.engine.resolver(stack, prepared)
        resources = {}
        for name, record in stack.resources.items():
            defn = prepared.template.resources.get(name)
            metadata: Any = dict(defn.metadata) if defn is not None else {}
            with contextlib.suppress(CloudError, StackValidationFailed):
                metadata = prepared.template.functions.resolve(metadata, resolver)
            resources[name] = {"name": name, "resource_id": record.physical_id, "type": record.type,
                               "action": record.action, "status": record.status, "metadata": metadata,
                               "resource_data": {k: v for k, v in record.data.items() if k not in TRANSIENT_DATA}}
        env = stack.environment
        environment = {"parameters": {**(env.get("parameters") or {}), **stack.parameters},
                       "parameter_defaults": dict(env.get("parameter_defaults") or {}),
                       "resource_registry": env.get("resource_registry") or {"resources": {}},
                       "encrypted_param_names": [], "event_sinks": []}
        return {"name": stack.name, "id": stack.id, "action": stack.action, "status": stack.status,
                "template": stack.template, "resources": resources, "environment": environment,
                "files": dict(stack.files), "project_id": stack.project_id,
                "stack_user_project_id": stack.project_id, "tags": list(stack.tags) or None}

    def abandon_stack(self, stack: Stack) -> dict[str, Any]:
        """Forget the stack (its record goes, as in Heat's DB) and leave every resource where it is."""
        self._not_busy(stack)
        data = self.export_stack(stack)
        self.engine.runs.pop(stack.id, None)
        self._prepared.pop(stack.id, None)
        del self.stacks[stack.id]
        return data

    # engine callbacks ------------------------------------------------------------------------------
    def _resource_event(self, stack: Stack, record: ResourceRecord, action: str, status: str, reason: str) -> None:
        record.action, record.status, record.status_reason = action, status, reason
        record.updated_time = self.now()
        stack.events.append(Event(str(uuid.uuid4()), record.name, record.physical_id or "", f"{action}_{status}",
                                  reason, self.now(), record.type, dict(record.properties)))
        if action == DELETE and status == COMPLETE:
            if stack.resources.get(record.name) is record:
                del stack.resources[record.name]
            stack.retired = [r for r in stack.retired if r is not record]

    def _stack_state(self, stack: Stack, action: str, status: str, reason: str) -> None:
        stack.action, stack.status, stack.status_reason = action, status, reason
        stack.events.append(Event(str(uuid.uuid4()), stack.name, stack.id, f"{action}_{status}", reason, self.now(),
                                  "OS::Heat::Stack"))

    def _run_finished(self, stack: Stack, run: Run) -> None:
        action = run.action
        if run.failure is not None:
            self._stack_state(stack, action, FAILED, run.failure)
            if action in (CREATE, UPDATE) and not stack.disable_rollback:
                self._rollback(stack, action)
            return
        if action == DELETE:
            stack.deletion_time = self.now()
            stack.resources.clear()
            stack.retired.clear()
        elif action == ROLLBACK and stack.previous is None:
            stack.resources.clear()  # a rolled-back create leaves nothing behind
        else:
            prepared = run.prepared
            if prepared is not None:
                for name in [n for n in stack.resources if n not in prepared.active]:
                    del stack.resources[name]
            stack.previous = None
        self._stack_state(stack, action, COMPLETE, f"Stack {action} completed successfully")

    def _rollback(self, stack: Stack, failed_action: str) -> None:
        self._stack_state(stack, ROLLBACK, IN_PROGRESS, "Stack ROLLBACK started")
        if failed_action == CREATE or stack.previous is None:
            stack.previous = None
            records = list(stack.resources.values()) + list(stack.retired)
            self.engine.start(stack, ROLLBACK, None, self.engine.delete_nodes(records))
            return
        previous = stack.previous
        try:
            prepared = prepare(previous["template"], previous["parameters"], previous["environment"],
                               previous["files"], self._identity(stack), self.scope(stack.project_id, stack.is_admin))
        except CloudError as err:
            self._stack_state(stack, ROLLBACK, FAILED, err.message)
            return
        stack.template, stack.parameters = previous["template"], previous["parameters"]
        stack.environment, stack.files = previous["environment"], previous["files"]
        stack.previous = {}  # marks an update rollback: resources are kept
        self._prepared[stack.id] = prepared
        self._start_update(stack, prepared, ROLLBACK)

    # reads ---------------------------------------------------------------------------------------
    def outputs(self, stack: Stack, only: str | None = None) -> list[dict[str, Any]]:
        prepared = self.prepared(stack)
        resolver = self.engine.resolver(stack, prepared)
        functions = prepared.template.functions
        result = []
        for output in prepared.template.outputs.values():
            if only is not None and output.name != only:
                continue
            view: dict[str, Any] = {"output_key": output.name, "description": output.description}
            try:
                active = output.condition is None or functions.condition(output.condition, resolver)
                view["output_value"] = functions.resolve(output.value, resolver) if active else None
            except (CloudError, StackValidationFailed) as err:
                view["output_value"] = None
                view["output_error"] = err.message
            result.append(view)
        if only is not None and not result:
            raise EntityNotFound("Output", only)
        return result

    def resource(self, stack: Stack, name: str) -> ResourceRecord:
        record = stack.resources.get(name)
        if record is None:
            raise ResourceNotFound(name, stack.name)
        return record

    def attributes(self, stack: Stack, record: ResourceRecord) -> dict[str, Any]:
        try:
            return self.engine.plugin(stack, record).attributes()
        except CloudError:
            return {}

    def events(self, stack: Stack, resource_name: str | None, filters: dict[str, list[str]], sort_dir: str,
               limit: int | None, marker: str | None) -> list[Event]:
        events = [e for e in stack.events if resource_name is None or e.resource_name == resource_name]
        if resource_name is not None and not events and resource_name not in stack.resources:
            raise ResourceNotFound(resource_name, stack.name)
        for key in ("resource_status", "resource_name", "resource_type"):
            if filters.get(key):
                events = [e for e in events if getattr(e, key) in filters[key]]
        if filters.get("resource_action"):
            events = [e for e in events if e.resource_status.rsplit("_", 1)[0] in filters["resource_action"]]
        if sort_dir == "desc":
            events = events[::-1]
        if marker:
            ids = [e.id for e in events]
            if marker not in ids:
                raise EntityNotFound("Event", marker)
            events = events[ids.index(marker) + 1:]
        return events[:limit] if limit is not None else events

    def event(self, stack: Stack, resource_name: str, event_id: str) -> Event:
        for event in stack.events:
            if event.id == event_id and event.resource_name == resource_name:
                return event
        raise EntityNotFound("Event", event_id)

    def validate_template(self, project_id: str, template: Any, parameters: dict[str, Any],
                          environment: Any, is_admin: bool = False) -> dict[str, Any]:
        """POST /validate: lenient, like Heat's (only sections, parameters and references are checked)."""
        if template is None:
            raise HeatError("No template specified", error_type="HTTPBadRequest")
        identity = {"OS::stack_id": "None", "OS::stack_name": "None", "OS::project_id": project_id}
        parsed = parse(template)
        try:
            prepare(template, parameters, environment, {}, identity, self.scope(project_id, is_admin), strict=False)
        except HeatError as err:
            if err.error_type != "UserParameterMissing":
                raise
        body: dict[str, Any] = {"Description": parsed.description or "No description",
                                "Parameters": {n: validate_view(s) for n, s in parsed.parameters.items()}}
        groups = parsed.raw.get("parameter_groups")
        if groups:
            body["ParameterGroups"] = groups
        return body

    # persistence -----------------------------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        return {"stacks": [asdict(s) for s in self.stacks.values()], **self.software.dump()}

    def load(self, data: dict[str, Any]) -> None:
        """Restore stacks; an action that was running is FAILED, as when a Heat engine goes down."""
        self.reset()
        self.software.load(data)
        for raw in data.get("stacks", []):
            resources = {n: ResourceRecord(**r) for n, r in raw.pop("resources", {}).items()}
            retired = [ResourceRecord(**r) for r in raw.pop("retired", [])]
            events = [Event(**e) for e in raw.pop("events", [])]
            stack = Stack(**raw, resources=resources, retired=retired, events=events)
            for record in [*resources.values(), *retired]:
                if record.status == IN_PROGRESS:
                    record.status = FAILED
                    record.status_reason = f"Engine went down during resource {record.action}"
            if stack.status == IN_PROGRESS:
                self._stack_state(stack, stack.action, FAILED, f"Engine went down during stack {stack.action}")
            self.stacks[stack.id] = stack

