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
import math
from typing import Any

from openstack.connection import Connection

from hearth import engines
from hearth.cloud import CloudConnections
from hearth.config import Settings
from hearth.engines import common, heat, templates
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
from hearth.engines.common import call, get_or_none, wait_for

NATIVES = "natives"
ORCHESTRATOR = "orchestrator"
ADOPT = "adopt"
RELEASE = "release"
PLAN_KINDS = (*ENGINE_PLAN_KINDS, ADOPT, RELEASE)


def _status(stack: Any) -> str:
    return common.status_of(stack, missing="")


def _rule_text(shape: tuple[Any, ...]) -> str:
    _ethertype, protocol, pmin, pmax, cidr = shape
    ports = "" if pmin is None else (f" {pmin}" if pmin == pmax else f" {pmin}-{pmax}")
    return f"{protocol or 'any'}{ports} from {cidr}"


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
        built = engines.build_engine(name, self.settings, self.connections)
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
    def owner(self, current: Resources, journal: dict[str, Any] | None = None) -> ResourceEngine:
        """The engine that owns these resources: the orchestrator once a stack is recorded."""
        if current.stack_id or (journal or {}).get("stack_id"):
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
        return common.read_stack(conn, templates.stack_name(spec.instance_id))

    def _stack(self, conn: Connection, spec: InstanceSpec, *ids: str | None) -> Any | None:
        """The instance's live stack: by a known id first, else by its name."""
        name = templates.stack_name(spec.instance_id)
        for stack_id in dict.fromkeys(i for i in ids if i):
            stack = common.read_stack(conn, f"{name}/{stack_id}")
            if stack is not None and stack.name == name:
                return stack
        return self._stack_by_name(conn, spec)

    def _live_stack(self, conn: Connection, ref: str) -> Any:
        stack = common.read_stack(conn, ref)
        if stack is None:
            raise EngineError(f"stack {ref} disappeared")
        return stack

    def _wait_settled(self, conn: Connection, stack: Any) -> Any:
        if not _status(stack).endswith("_IN_PROGRESS"):
            return stack
        return wait_for(lambda: self._live_stack(conn, common.stack_ref(stack)),
                        lambda s: not _status(s).endswith("_IN_PROGRESS"), lambda _s: None,
                        f"stack {stack.name} to finish {_status(stack)}", timeout=None, settings=self.settings)

    def _abandon(self, conn: Connection, stack: Any) -> None:
        """Heat forgets the stack and leaves its resources; an error if the stack is still there after."""
        try:
            answer = conn.orchestration.abandon_stack(stack)
        except ValueError:  # a body that is not JSON: judged by whether the stack is gone
            answer = None
        except common.CLOUD_ERRORS as exc:
            raise common.engine_error(f"abandoning stack {stack.name}", exc) from None
        if common.read_stack(conn, common.stack_ref(stack)) is not None:
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
        conn = self._conn()
        missing = [label for label, value in (("server", current.server_id), ("volume", current.volume_id),
                                               ("security group", current.secgroup_id)) if not value]
        if missing:
            return [f"Hearth has no recorded {', '.join(missing)} for the instance (it was never fully built)"]
        found: list[str] = []
        server = get_or_none("reading server", conn.compute.get_server, current.server_id)
        if server is None:
            found.append(f"server {current.server_id} no longer exists")
        else:
            if server.status != "ACTIVE":
                found.append(f"server {server.id} is {server.status}, not ACTIVE")
            flavor = common.resolve_flavor(conn, spec.flavor_id)
            if not common.server_has_flavor(server, flavor):
                live = common.server_flavor_id(conn, server)
                live_name = getattr(getattr(server, "flavor", None), "original_name", None) or live
                found.append(f"server {server.id} has flavor {live_name} ({live}); Hearth records flavor "
                             f"{flavor.name} ({flavor.id})")
        volume = get_or_none("reading volume", conn.block_storage.get_volume, current.volume_id)
        if volume is None:
            found.append(f"volume {current.volume_id} no longer exists")
        else:
            if volume.size != spec.volume_size:
                found.append(f"volume {volume.id} is {volume.size} GB; Hearth records {spec.volume_size} GB")
            attached = [a.get("server_id") for a in volume.attachments or []]
            if attached != [current.server_id]:
                found.append(f"volume {volume.id} is attached to {', '.join(map(str, attached)) or 'nothing'}; "
                             f"Hearth records it attached to server {current.server_id}")
        group = get_or_none("reading security group", conn.network.get_security_group, current.secgroup_id)
        if group is None:
            found.append(f"security group {current.secgroup_id} no longer exists")
        else:
            found += self._rule_differences(conn, spec, group.id)
        if server is not None and group is not None:
            found += self._port_differences(conn, spec, server.id, group.id)
        return found

    def _rule_differences(self, conn: Connection, spec: InstanceSpec, group_id: str) -> list[str]:
        live = [common.neutron_shape(r) for r in common.ingress_rules(conn, group_id)]
        wanted = [common.rule_shape(r) for r in spec.rules]
        found = [f"security group {group_id} lacks the rule {_rule_text(s)}" for s in wanted if s not in live]
        found += [f"security group {group_id} has a rule Hearth does not record: {_rule_text(s)}"
                  for s in live if s not in wanted]
        return found

    def _port_differences(self, conn: Connection, spec: InstanceSpec, server_id: str, group_id: str) -> list[str]:
        ports = common.retried(f"listing ports of server {server_id}",
                               lambda: list(conn.network.ports(device_id=server_id)))
        found = []
        if not any(group_id in (p.security_group_ids or []) for p in ports):
            found.append(f"server {server_id} is not in security group {group_id}")
        if spec.network_id and len(ports) != 1:
            found.append(f"server {server_id} has {len(ports)} ports; Hearth's template gives it exactly one")
        return found

    # adopt ----------------------------------------------------------------------------------------
    def _physical_ids(self, conn: Connection, spec: InstanceSpec, current: Resources) -> dict[str, dict[str, Any]]:
        """Heat's abandon-data entry for each logical resource of the template: the existing ids."""
        if not (current.server_id and current.volume_id):
            raise EngineError("adopt needs the instance's recorded server and volume ids")
        attachment = common.retried(
            f"listing volume attachments of server {current.server_id}",
            lambda: next((a for a in conn.compute.volume_attachments(current.server_id)
                          if a.volume_id == current.volume_id), None))
        if attachment is None:
            raise EngineError(f"volume {current.volume_id} is not attached to server {current.server_id}")
        entries: dict[str, dict[str, Any]] = {
            templates.SECURITY_GROUP: {"resource_id": current.secgroup_id},
            templates.DATA_VOLUME: {"resource_id": current.volume_id},
            templates.SERVER: {"resource_id": current.server_id},
            templates.ATTACHMENT: {"resource_id": attachment.id,
                                   "resource_data": {"server": current.server_id, "volume": current.volume_id}},
        }
        if spec.network_id:
            port = common.retried(f"listing ports of server {current.server_id}",
                                  lambda: next(iter(conn.network.ports(device_id=current.server_id)), None))
            if port is None:
                raise EngineError(f"server {current.server_id} has no port")
            entries[templates.PORT] = {"resource_id": port.id}
        return entries

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
                "timeout_mins": max(1, math.ceil(self.settings.operation_timeout_seconds / 60))}

    def adopt(self, spec: InstanceSpec, current: Resources, ctx: OperationContext) -> Resources:
        """Move a natives instance into a Heat stack that takes over its existing resources."""
        conn = self._conn()
        name = templates.stack_name(spec.instance_id)
        if current.stack_id:
            raise EngineError(f"the instance already belongs to stack {current.stack_id}")
        stack = self._stack(conn, spec, ctx.journal.get("adopt_stack_id"))
        if stack is None:
            ctx.step("checking the cloud matches Hearth's record")
            drift = self.differences(spec, current)
            if drift:
                raise EngineError("the cloud no longer matches what Hearth records, so Heat would not describe it "
                                  "truthfully: " + "; ".join(drift)
                                  + ". Put the resources back as recorded (or change the instance through Hearth) "
                                    "and adopt again")
            ctx.step("adopting the resources into a stack")
            # heat.adopt_stack, not conn.orchestration.create_stack: openstacksdk's Stack has no adopt_stack_data
            # field, so create_stack drops it and Heat would create new resources instead of adopting.
            stack_id = call(f"adopting the resources into stack {name}", heat.adopt_stack, conn,
                            **self._adopt_attrs(conn, spec, current)).id
            if not stack_id:
                raise EngineError(f"Heat accepted the adopt of stack {name} but returned no stack id")
            ctx.record(adopt_stack_id=stack_id)
            ctx.event(f"stack {name} ({stack_id}) adopting server {current.server_id}, volume {current.volume_id}, "
                      f"security group {current.secgroup_id}")
        else:
            stack_id = stack.id
            ctx.record(adopt_stack_id=stack_id)
            ctx.event(f"resuming with stack {name} ({stack_id}), {_status(stack)}")
        ctx.step("waiting for the adopt")
        try:
            final = wait_for(lambda: self._live_stack(conn, f"{name}/{stack_id}"),
                             lambda s: _status(s) == "ADOPT_COMPLETE",
                             lambda s: _status(s).endswith("_FAILED") and
                             f"stack {name} is {_status(s)}: {common.scrub(s.status_reason or 'no reason given')}",
                             f"adopt of stack {name}", timeout=None, settings=self.settings)
        except TransientError:
            raise  # the adopt goes on in Heat: the resumed attempt finds the stack and waits again
        except EngineError as err:
            self._undo_adopt(conn, spec, stack_id, ctx, err)
            raise
        return self._adopted(conn, spec, current, final, ctx)

    def _undo_adopt(self, conn: Connection, spec: InstanceSpec, stack_id: str, ctx: OperationContext,
                    err: EngineError) -> None:
        """A failed adopt is abandoned (never deleted: deleting would take the resources with it)."""
        stack = self._stack(conn, spec, stack_id)
        if stack is None:
            return
        try:
            self._abandon(conn, self._wait_settled(conn, stack))
            ctx.event(f"stack {stack.name} abandoned after the failed adopt ({err}); the resources stay with "
                      "natives", "warning")
        except EngineError as exc:
            ctx.event(f"abandoning stack {stack.name} after the failed adopt failed too: {exc}; do not delete the "
                      "stack (that would delete the instance's resources), abandon it", "error")

    def _adopted(self, conn: Connection, spec: InstanceSpec, current: Resources, stack: Any,
                 ctx: OperationContext) -> Resources:
        """The stack's outputs must name the very resources Hearth recorded."""
        full = common.read_stack(conn, common.stack_ref(stack), outputs=True) or stack
        outputs = {o.get("output_key"): o.get("output_value") for o in full.outputs or []}
        recorded = {templates.OUTPUT_SERVER: current.server_id, templates.OUTPUT_VOLUME: current.volume_id,
                    templates.OUTPUT_SECGROUP: current.secgroup_id}
        wrong = [f"{key} is {outputs.get(key)}, expected {value}" for key, value in recorded.items()
                 if outputs.get(key) != value]
        if wrong:
            raise EngineError(f"stack {stack.name} adopted other resources than Hearth's: {'; '.join(wrong)}")
        ctx.event(f"stack {stack.name} ({stack.id}) is {_status(full)}: the instance now belongs to the orchestrator")
        return Resources(server_id=current.server_id, volume_id=current.volume_id, secgroup_id=current.secgroup_id,
                         stack_id=stack.id, rules=dict(current.rules), server_status="ACTIVE",
                         stack_status=_status(full))

    def plan_adopt(self, spec: InstanceSpec, current: Resources) -> list[PlannedStep]:
        """The drift check runs for real (it only reads); then the stack adopt Heat would be asked for."""
        if current.stack_id:
            raise EngineError(f"the instance already belongs to stack {current.stack_id}")
        drift = self.differences(spec, current)
        if drift:
            return [PlannedStep("refuse", "adopt", difference) for difference in drift]
        name = templates.stack_name(spec.instance_id)
        ids = {templates.SECURITY_GROUP: current.secgroup_id, templates.DATA_VOLUME: current.volume_id,
               templates.SERVER: current.server_id, templates.ATTACHMENT: current.volume_id}
        steps = [PlannedStep("stack adopt", name, "POST /stacks with adopt_stack_data: nothing is created or "
                                                  "changed")]
        steps += [PlannedStep("adopt", f"{logical} ({definition['type']})", ids.get(logical) or "existing")
                  for logical, definition in templates.build(spec)["resources"].items()]
        return steps

    # release --------------------------------------------------------------------------------------
    def release(self, spec: InstanceSpec, current: Resources, ctx: OperationContext) -> Resources:
        """Abandon the instance's stack and hand its (untouched) resources back to natives."""
        conn = self._conn()
        stack = self._stack(conn, spec, current.stack_id, ctx.journal.get("released_stack_id"))
        if stack is None and not ctx.journal.get("released_stack_id"):
            raise EngineError(f"the instance has no Heat stack to release ({templates.stack_name(spec.instance_id)} "
                              "does not exist)")
        if stack is not None:
            stack = self._wait_settled(conn, stack)
            status = _status(stack)
            if not status.endswith("_COMPLETE") or status.startswith(("DELETE", "ROLLBACK")):
                raise EngineError(f"stack {stack.name} is {status}; release needs a stack whose last action completed")
            ctx.record(released_stack_id=stack.id)
            ctx.step("abandoning the stack")
            self._abandon(conn, stack)
            ctx.event(f"stack {stack.name} ({stack.id}) abandoned; its resources stay where they are")
        ctx.step("checking the resources are still there")
        view = common.read_view(conn, spec, current.server_id, current.volume_id, current.secgroup_id)
        gone = [f"{label} {value}" for label, value, seen in (
            ("server", current.server_id, view.server), ("volume", current.volume_id, view.volume),
            ("security group", current.secgroup_id, view.security_group)) if value and seen is None]
        if gone:
            raise EngineError(f"after abandoning the stack, {', '.join(gone)} no longer exist(s)")
        ctx.event("the instance now belongs to natives")
        return Resources(server_id=current.server_id, volume_id=current.volume_id, secgroup_id=current.secgroup_id,
                         rules=dict(current.rules), server_status=(view.server or {}).get("status"))

    def plan_release(self, spec: InstanceSpec, current: Resources) -> list[PlannedStep]:
        stack = self._stack(self._conn(), spec, current.stack_id)
        if stack is None:
            raise EngineError(f"the instance has no Heat stack to release ({templates.stack_name(spec.instance_id)} "
                              "does not exist)")
        return [PlannedStep("stack abandon", f"{stack.name} ({stack.id})",
                            "DELETE /stacks/{name}/{id}/abandon: Heat forgets the stack, every resource stays"),
                PlannedStep("keep", "resources", f"server {current.server_id}, volume {current.volume_id}, "
                                                 f"security group {current.secgroup_id} go back to natives")]


engines.register("migration", MigrationEngine)
