"""The migration engine: a mixed fleet of natives-owned and stack-owned instances, and the moves between them.

It composes the natives and orchestrator engines and never repeats what they do:

- **New instances** are built by the orchestrator (one Heat stack each).
- **Every other operation** goes to the engine that owns the instance. Hearth records the owner
  (`instances.engine`) and the task manager resolves it itself; used directly as a ResourceEngine,
  this engine tells the owner from the resources (a recorded stack means the orchestrator).
- **adopt** moves a natives instance into a stack with Heat's stack adopt: the template is
  `templates.build` of the recorded desired state, the live resources are first checked against it
  (flavor, volume size and attachment, the group's rules and membership; any difference refuses the
  adopt with the list), then Heat takes over the existing resource ids. Nothing is created, replaced or
  restarted. A failed adopt is abandoned at once, so the resources never belong to a broken stack.
- **release** abandons the stack (Heat forgets it, every resource stays where it is) and hands the
  instance back to natives, after checking the resources still exist with the same ids.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from openstack.connection import Connection

from hearth.cloud import CloudConnections
from hearth.config import Settings
from hearth.engines import common, heat, resources, templates
from hearth.engines.base import PLAN_KINDS as ENGINE_PLAN_KINDS
from hearth.engines.base import (
    CloudView,
    EngineError,
    EngineResolver,
    InstanceSpec,
    OperationContext,
    PlannedStep,
    Relocation,
    ResourceEngine,
    Resources,
    TransientError,
)
from hearth.engines.common import WaitKind, call
from hearth.engines.journal import NOTE_ADOPT_STACK_ID, NOTE_CHECKED_AT, NOTE_VERIFIED, Journal
from hearth.engines.natives import NativesEngine
from hearth.engines.orchestrator import OrchestratorEngine

NATIVES = "natives"
ORCHESTRATOR = "orchestrator"
ADOPT = "adopt"
RELEASE = "release"
PLAN_KINDS = (*ENGINE_PLAN_KINDS, ADOPT, RELEASE)


_status = heat.status


#: How long a fleet migration's plan (one read of every collection, resources.Snapshot) stands for a move's own
#: check of the cloud before its adopt: moves queued later read their resources again.
CHECK_TRUST_SECONDS = 30.0


def _recent_check(journal: Mapping[str, Any]) -> float | None:
    """Seconds since a fleet migration's plan compared this instance with the cloud, if recent enough to trust."""
    at = journal.get(NOTE_CHECKED_AT)
    if not isinstance(at, int | float):
        return None
    age = time.time() - at
    return age if 0 <= age <= CHECK_TRUST_SECONDS else None


class MigrationEngine(ResourceEngine, Relocation):
    name = "migration"

    def __init__(self, settings: Settings, connections: CloudConnections, resolve: EngineResolver | None = None, *,
                 natives: ResourceEngine | None = None, orchestrator: ResourceEngine | None = None) -> None:
        """Composes the given engines, else the resolver's (the Runtime's shared ones), else builds its own."""
        self.settings = settings
        self.connections = connections
        self._owned: list[ResourceEngine] = []
        self.natives = natives or self._sibling(NATIVES, resolve)
        self.orchestrator = orchestrator or self._sibling(ORCHESTRATOR, resolve)

    def _sibling(self, name: str, resolve: EngineResolver | None) -> ResourceEngine:
        if resolve is not None:
            return resolve(name)
        built = {NATIVES: NativesEngine, ORCHESTRATOR: OrchestratorEngine}[name](self.settings, self.connections)
        self._owned.append(built)
        return built

    def relocation(self) -> Relocation:
        return self

    def close(self) -> None:
        """Close only the engines this one built (shared ones belong to whoever resolved them)."""
        for built in self._owned:
            built.close()

    def _conn(self) -> Connection:
        return self.connections.get()

    # routing --------------------------------------------------------------------------------------
    def owner(self, current: Resources, journal: Mapping[str, Any] | None = None) -> ResourceEngine:
        """The engine that owns these resources: the orchestrator once a stack is recorded."""
        if current.stack_id or Journal(journal or {}).stack_id:
            return self.orchestrator
        return self.natives

    def provision(self, spec: InstanceSpec, ctx: OperationContext) -> Resources:
        return self.orchestrator.provision(spec, ctx)

    def resize_flavor(self, spec: InstanceSpec, current: Resources, ctx: OperationContext) -> Resources:
        return self.owner(current, ctx.journal).resize_flavor(spec, current, ctx)

    def resize_volume(self, spec: InstanceSpec, current: Resources, ctx: OperationContext) -> Resources:
        return self.owner(current, ctx.journal).resize_volume(spec, current, ctx)

    def apply_rules(self, spec: InstanceSpec, current: Resources, ctx: OperationContext) -> Resources:
        return self.owner(current, ctx.journal).apply_rules(spec, current, ctx)

    def restart(self, spec: InstanceSpec, current: Resources, ctx: OperationContext) -> Resources:
        return self.owner(current, ctx.journal).restart(spec, current, ctx)

    def rebuild(self, spec: InstanceSpec, current: Resources, ctx: OperationContext) -> Resources:
        return self.owner(current, ctx.journal).rebuild(spec, current, ctx)

    def reconcile(self, spec: InstanceSpec, current: Resources, ctx: OperationContext) -> Resources:
        return self.owner(current, ctx.journal).reconcile(spec, current, ctx)

    def delete(self, spec: InstanceSpec, current: Resources, ctx: OperationContext) -> None:
        """The owner deletes; with no stack recorded, a stack named for the instance still makes it Heat's."""
        owner = self.owner(current, ctx.journal)
        if owner is self.natives and self._stack_by_name(self._conn(), spec) is not None:
            owner = self.orchestrator
        owner.delete(spec, current, ctx)

    def describe(self, spec: InstanceSpec, current: Resources) -> CloudView:
        return self.owner(current).describe(spec, current)

    def plan(self, kind: str, spec: InstanceSpec, current: Resources) -> list[PlannedStep]:
        if kind == "provision":
            return self.orchestrator.plan(kind, spec, current)
        if kind == ADOPT:
            return self.plan_adopt(spec, current)
        if kind == RELEASE:
            return self.plan_release(spec, current)
        if kind not in PLAN_KINDS:
            raise EngineError(f"unknown operation kind {kind!r} for a plan; expected one of {', '.join(PLAN_KINDS)}")
        return self.owner(current).plan(kind, spec, current)

    # stacks ---------------------------------------------------------------------------------------
    def _stack_by_name(self, conn: Connection, spec: InstanceSpec) -> Any | None:
        return heat.read_stack(conn, templates.stack_name(spec.instance_id))

    def _stack(self, conn: Connection, spec: InstanceSpec, *ids: str | None) -> Any | None:
        """The instance's live stack: by a known id first, else by its name."""
        return heat.find_stack(conn, templates.stack_name(spec.instance_id), *ids)

    def _abandon(self, conn: Connection, stack: Any) -> None:
        """Heat forgets the stack and leaves its resources; an error if the stack is still there after."""
        try:
            answer = conn.orchestration.abandon_stack(stack)
        except ValueError:  # a body that is not JSON: judged by whether the stack is gone
            answer = None
        except common.CLOUD_ERRORS as exc:
            raise common.engine_error(f"abandoning stack {stack.name}", exc) from None
        if heat.poll_stack(conn, heat.stack_ref(stack)) is not None:
            reason = ""
            if isinstance(answer, dict):
                reason = next((str(v.get("message") or v.get("explanation") or "") for v in answer.values()
                               if isinstance(v, dict)), "") or str(answer.get("explanation") or "")
            reason = common.scrub(reason) or "the stack is still there"
            raise EngineError(f"abandoning stack {stack.name} failed: {reason} (does this Heat allow abandon? "
                              "enable_stack_abandon)")

    # drift ----------------------------------------------------------------------------------------
    def differences(self, spec: InstanceSpec, current: Resources) -> list[str]:
        """How the live resources differ from the recorded desired state (empty: they match). Reads only."""
        return resources.differences(self._conn(), spec, resources.ids_of(current))

    # adopt ----------------------------------------------------------------------------------------
    def _physical_ids(self, conn: Connection, spec: InstanceSpec, current: Resources) -> dict[str, dict[str, Any]]:
        """Heat's abandon-data entry for each logical resource of the template: the existing ids."""
        if not (current.server_id and current.volume_id):
            raise EngineError("adopt needs the instance's recorded server and volume ids")
        return resources.adopt_entries(conn, spec, resources.ids_of(current))

    def _adopt_attrs(self, conn: Connection, spec: InstanceSpec, current: Resources) -> dict[str, Any]:
        """The stack adopt request, as openstacksdk Stack attributes (plus heat.HeatStack's adopt_stack_data)."""
        template = templates.build(spec)
        ids = self._physical_ids(conn, spec, current)
        resources = {}
        for logical, definition in template["resources"].items():
            if logical not in ids:
                raise EngineError(f"no existing resource for {logical} ({definition['type']}) of the template")
            resources[logical] = {"name": logical, "type": definition["type"], "action": "CREATE",
                                  "status": "COMPLETE", "metadata": {}, "resource_data": {}, **ids[logical]}
        name = templates.stack_name(spec.instance_id)
        data = {"name": name, "action": "CREATE", "status": "COMPLETE", "template": template,
                "environment": {"parameters": templates.parameters(spec)}, "resources": resources}
        return {"name": name, "template": template, "parameters": templates.parameters(spec),
                "adopt_stack_data": json.dumps(data), "is_rollback_disabled": True,
                "timeout_mins": heat.timeout_mins(self.settings)}

    def adopt(self, spec: InstanceSpec, current: Resources, ctx: OperationContext) -> Resources:
        """Move a natives instance into a Heat stack that takes over its existing resources."""
        conn = self._conn()
        name = templates.stack_name(spec.instance_id)
        if current.stack_id:
            raise EngineError(f"the instance already belongs to stack {current.stack_id}")
        stack = self._stack(conn, spec, Journal(ctx.journal).adopt_stack_id)
        checked = stack is None  # this attempt compares the cloud with the record before the adopt
        if stack is None:
            # one step for the check and the adopt: every progress write waits its turn for the database
            ctx.step("checking the cloud matches Hearth's record, then adopting the resources into a stack")
            planned = _recent_check(ctx.journal)
            drift = [] if planned is not None else self.differences(spec, current)
            if planned is not None:
                ctx.event(f"the fleet migration's plan found the cloud equal to the record {planned:.1f} s ago; "
                          "the adopt changes no resource")
            if drift:
                raise EngineError("the cloud no longer matches what Hearth records, so Heat would not describe it "
                                  "truthfully: " + "; ".join(drift)
                                  + ". Put the resources back as recorded (or change the instance through Hearth) "
                                    "and adopt again")
            # heat.adopt_stack, not conn.orchestration.create_stack: openstacksdk's Stack has no adopt_stack_data
            # field, so create_stack drops it and Heat would create new resources instead of adopting.
            stack_id = call(f"adopting the resources into stack {name}", heat.adopt_stack, conn,
                            **self._adopt_attrs(conn, spec, current)).id
            if not stack_id:
                raise EngineError(f"Heat accepted the adopt of stack {name} but returned no stack id")
            ctx.event(f"stack {name} ({stack_id}) adopting server {current.server_id}, volume {current.volume_id}, "
                      f"security group {current.secgroup_id}", **{NOTE_ADOPT_STACK_ID: stack_id})
        else:
            stack_id = stack.id
            ctx.event(f"resuming with stack {name} ({stack_id}), {_status(stack)}", **{NOTE_ADOPT_STACK_ID: stack_id})
            ctx.step("waiting for the adopt")
        try:
            final = heat.wait_stack(
                conn, self.settings, f"{name}/{stack_id}", lambda s: _status(s) == "ADOPT_COMPLETE",
                lambda s: _status(s).endswith("_FAILED") and
                f"stack {name} is {_status(s)}: {common.scrub(s.status_reason or 'no reason given')}",
                f"adopt of stack {name}", WaitKind.STACK_ADOPT)
        except TransientError:
            raise  # the adopt goes on in Heat: the resumed attempt finds the stack and waits again
        except EngineError as err:
            self._undo_adopt(conn, spec, stack_id, ctx, err)
            raise
        return self._adopted(conn, spec, current, final, ctx, checked)

    def _undo_adopt(self, conn: Connection, spec: InstanceSpec, stack_id: str, ctx: OperationContext,
                    err: EngineError) -> None:
        """A failed adopt is abandoned (never deleted: deleting would take the resources with it)."""
        stack = self._stack(conn, spec, stack_id)
        if stack is None:
            return
        try:
            self._abandon(conn, heat.settle(conn, self.settings, stack))
            ctx.event(f"stack {stack.name} abandoned after the failed adopt ({err}); the resources stay with "
                      "natives", "warning")
        except EngineError as exc:
            ctx.event(f"abandoning stack {stack.name} after the failed adopt failed too: {exc}; do not delete the "
                      "stack (that would delete the instance's resources), abandon it", "error")

    def _adopted(self, conn: Connection, spec: InstanceSpec, current: Resources, stack: Any,
                 ctx: OperationContext, checked: bool) -> Resources:
        """The stack's outputs must name the very resources Hearth recorded. With `checked` (this attempt found the
        cloud equal to the record just before the adopt, which changes no resource), that and the outputs are
        the verification; a resumed attempt compares the cloud again."""
        full = heat.read_stack(conn, heat.stack_ref(stack), outputs=True) or stack
        adopted = resources.ids_from_outputs(heat.outputs(full))
        wrong = [f"{kind.output} is {adopted.get(kind.key)}, expected {value}"
                 for kind, value in ((k, resources.id_of(k, current)) for k in resources.KINDS if k.output)
                 if value and adopted.get(kind.key) != value]
        if wrong:
            raise EngineError(f"stack {stack.name} adopted other resources than Hearth's: {'; '.join(wrong)}")
        verified = [] if checked else self._differences_now(conn, spec, current)
        ctx.event(f"stack {stack.name} ({stack.id}) is {_status(full)}: the instance now belongs to the orchestrator",
                  **{NOTE_VERIFIED: verified})
        return resources.with_ids(Resources(stack_id=stack.id, rules=dict(current.rules), server_status="ACTIVE",
                                            stack_status=_status(full)), resources.ids_of(current))

    @staticmethod
    def _differences_now(conn: Connection, spec: InstanceSpec, current: Resources,
                         live: dict[str, dict[str, Any] | None] | None = None) -> list[str]:
        """A move ends by comparing the cloud with the record (what a fleet migration reports per instance,
        journalled as NOTE_VERIFIED), here in the move's own worker rather than one by one in the driver."""
        return [str(difference) for difference in resources.differences(conn, spec, resources.ids_of(current), live)]

    def plan_adopt(self, spec: InstanceSpec, current: Resources) -> list[PlannedStep]:
        """The drift check runs for real (it only reads); then the stack adopt Heat would be asked for."""
        if current.stack_id:
            raise EngineError(f"the instance already belongs to stack {current.stack_id}")
        drift = self.differences(spec, current)
        if drift:
            return [PlannedStep("refuse", "adopt", difference) for difference in drift]
        name = templates.stack_name(spec.instance_id)
        ids = {kind.logical: resources.id_of(kind, current) for kind in resources.KINDS if kind.logical}
        steps = [PlannedStep("stack adopt", name, "POST /stacks with adopt_stack_data: nothing is created or "
                                                  "changed")]
        steps += [PlannedStep("adopt", f"{logical} ({definition['type']})", ids.get(logical) or "existing")
                  for logical, definition in templates.build(spec)["resources"].items()]
        return steps

    # release --------------------------------------------------------------------------------------
    def release(self, spec: InstanceSpec, current: Resources, ctx: OperationContext) -> Resources:
        """Abandon the instance's stack and hand its (untouched) resources back to natives."""
        conn = self._conn()
        stack = self._stack(conn, spec, current.stack_id, Journal(ctx.journal).released_stack_id)
        if stack is None and not Journal(ctx.journal).released_stack_id:
            raise EngineError(f"the instance has no Heat stack to release ({templates.stack_name(spec.instance_id)} "
                              "does not exist)")
        if stack is not None:
            stack = heat.settle(conn, self.settings, stack)
            status = _status(stack)
            if not status.endswith("_COMPLETE") or status.startswith(("DELETE", "ROLLBACK")):
                raise EngineError(f"stack {stack.name} is {status}; release needs a stack whose last action completed")
            ctx.record(released_stack_id=stack.id)
            ctx.step("abandoning the stack")
            self._abandon(conn, stack)
            ctx.event(f"stack {stack.name} ({stack.id}) abandoned; its resources stay where they are")
        ctx.step("checking the resources are still there")
        ids = resources.ids_of(current)
        live = resources.read_live(conn, ids)
        gone = [f"{kind.label} {ids[kind.key]}" for kind in resources.KINDS
                if kind.key in live and live[kind.key] is None]
        if gone:
            raise EngineError(f"after abandoning the stack, {', '.join(gone)} no longer exist(s)")
        ctx.event("the instance now belongs to natives",
                  **{NOTE_VERIFIED: self._differences_now(conn, spec, current, live)})
        return resources.with_ids(Resources(rules=dict(current.rules),
                                            server_status=(live.get("server") or {}).get("status")), ids)

    def plan_release(self, spec: InstanceSpec, current: Resources) -> list[PlannedStep]:
        stack = self._stack(self._conn(), spec, current.stack_id)
        if stack is None:
            raise EngineError(f"the instance has no Heat stack to release ({templates.stack_name(spec.instance_id)} "
                              "does not exist)")
        return [PlannedStep("stack abandon", f"{stack.name} ({stack.id})",
                            "DELETE /stacks/{name}/{id}/abandon: Heat forgets the stack, every resource stays"),
                PlannedStep("keep", "resources", f"server {current.server_id}, volume {current.volume_id}, "
                                                 f"security group {current.secgroup_id} go back to natives")]
