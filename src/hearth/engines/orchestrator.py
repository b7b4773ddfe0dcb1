"""The orchestrator engine: one Heat stack per instance; every change is a stack create, update or delete.

The stack (named `templates.stack_name(id)`) always carries `templates.build(spec)` of the instance's
recorded state, so Heat's template is the single description of what the instance owns. Nothing here
writes to Nova, Cinder or Neutron: those services are only read (outputs, rule ids, describe, drift
and shrink checks, and the leftover check after a delete).

Rollback, and why:
- **Create runs with rollback disabled.** A failed create stays CREATE_FAILED with Heat's reason and
  the failing resource's reason readable (the EngineError carries both); what was built stays tagged
  with the instance and inside the stack, so the instance's delete (a stack delete) removes it all.
  With rollback on, Heat would delete the evidence and report only "ROLLBACK_COMPLETE", and a
  failing rollback would leave resources Hearth never learnt about.
- **Updates run with rollback enabled.** Hearth records the new spec only when an operation succeeds;
  a failed resize or rule change makes Heat put the previous template back (ROLLBACK_COMPLETE), so the
  stack's template and the cloud stay equal to the state Hearth still records. The EngineError carries
  the UPDATE_FAILED reason (from the stack's events, since the stack reason then says "rollback
  completed"), and says when the rollback itself failed. An update ended by anything else (the stack
  deleted or checked under it) fails as soon as it is seen, with Heat's reason for that state.
- **Delete** is a stack delete, retried once after DELETE_FAILED; afterwards the instance's names are
  looked up in Nova, Cinder and Neutron and anything left is reported, never deleted behind Heat.

Things Heat cannot express without replacing the server (e.g. a security group deleted outside
Heat: the server references it through a non-updatable property) are refused with a clear error
before any write, instead of silently "succeeding" with a no-op update.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from openstack import exceptions as os_exceptions
from openstack.connection import Connection

from hearth.cloud import CloudConnections
from hearth.config import Settings
from hearth.engines import common, heat, natives_steps, repair, resources, templates
from hearth.engines.base import (
    PLAN_KINDS,
    CloudView,
    EngineError,
    InstanceSpec,
    OperationContext,
    PlannedStep,
    ResourceEngine,
    Resources,
    RuleSpec,
    TransientError,
)
from hearth.engines.common import WaitKind, call, cloud_call, get_or_none
from hearth.engines.journal import NOTE_STACK_RETRIES, NOTE_STACK_UPDATE, Journal

# A stack create found failed after Heat was unreachable is retried (an update with the same template) this many
# times in one operation.
STACK_CREATE_RETRIES = 2

_PREVIEW_CHANGES = (("added", "create"), ("replaced", "replace"), ("updated", "update in place"),
                    ("deleted", "delete"))
_PREVIEW_DETAIL = {"added": "a new resource", "replaced": "{} is replaced by a new resource (new id)",
                   "updated": "{} keeps its id", "deleted": "{} is removed"}
_PREVIEW_MISSING = (404, 405, 501)  # a Heat without the preview routes


# End states in which every resource of the stack exists (a create waits for one of them).
PROVISIONED = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "ADOPT_COMPLETE", "CHECK_COMPLETE", "RESUME_COMPLETE",
               "SNAPSHOT_COMPLETE")


_status = heat.status
_outputs = heat.outputs


def _preview(what: str, make: Callable[[], heat.HeatStack]) -> heat.HeatStack | None:
    """A Heat preview; None when this Heat has no preview route (any other failure is an EngineError)."""
    with cloud_call(what):
        try:
            return make()
        except os_exceptions.HttpException as exc:
            if exc.status_code in _PREVIEW_MISSING:
                return None
            raise


class OrchestratorEngine(ResourceEngine):
    name = "orchestrator"

    def __init__(self, settings: Settings, connections: CloudConnections) -> None:
        self.settings = settings
        self.connections = connections

    def _conn(self) -> Connection:
        return self.connections.get()

    @property
    def _timeout_mins(self) -> int:
        return heat.timeout_mins(self.settings)

    # finding the stack ------------------------------------------------------------------------
    def _find_stack(self, conn: Connection, spec: InstanceSpec, *ids: str | None, outputs: bool = False) -> Any:
        """The instance's live stack: by a recorded id first, else by its name."""
        return heat.find_stack(conn, templates.stack_name(spec.instance_id), *ids, outputs=outputs)

    def _require_stack(self, conn: Connection, spec: InstanceSpec, current: Resources,
                       ctx: OperationContext | None = None) -> Any:
        journal = Journal(ctx.journal if ctx is not None else {})
        stack = self._find_stack(conn, spec, current.stack_id, journal.stack_id, outputs=True)
        if stack is None:
            raise EngineError(f"the instance has no Heat stack ({templates.stack_name(spec.instance_id)} "
                              "does not exist)")
        if ctx is not None and journal.stack_id != stack.id:
            ctx.record(stack_id=stack.id)
        return stack

    # failure reasons ----------------------------------------------------------------------------
    def _failed_resources(self, conn: Connection, stack: Any) -> list[str]:
        try:
            found = list(conn.orchestration.resources(stack))
        except common.CLOUD_ERRORS:
            return []
        return [f"{r.name}: {r.status_reason}" for r in found
                if str(r.status or "").endswith("_FAILED") and r.status_reason]

    def _create_failure(self, conn: Connection, stack: Any) -> str | None:
        status = _status(stack)
        if not status or (not status.startswith("DELETE")
                          and (status.endswith("_IN_PROGRESS") or status in PROVISIONED)):
            return None  # still going, or done: any other end state (e.g. SUSPEND_COMPLETE) is a failure
        reason = common.scrub(stack.status_reason or "no reason given by Heat")
        if "resources." not in reason:  # a generic stack reason: name the failing resource's own
            details = self._failed_resources(conn, stack)
            if details:
                reason = f"{reason} ({'; '.join(details)})"
        return f"stack {stack.name} is {status}: {reason}"

    def _update_failure(self, conn: Connection, stack: Any) -> str:
        """The reason of the last update's UPDATE_FAILED (kept in the events once a rollback ran)."""
        reason = None
        try:
            for event in conn.orchestration.stack_events(stack):
                if event.resource_name != stack.name:
                    continue
                if event.resource_status == "UPDATE_IN_PROGRESS":
                    reason = None
                elif event.resource_status == "UPDATE_FAILED":
                    reason = event.resource_status_reason
        except common.CLOUD_ERRORS:
            pass
        if not reason and _status(stack) == "UPDATE_FAILED":
            reason = stack.status_reason
        if not reason or "resources." not in reason:
            details = self._failed_resources(conn, stack)
            reason = "; ".join(filter(None, [reason, *details])) or "no reason given by Heat"
        return common.scrub(reason)

    def _server_fault(self, conn: Connection, server_id: str | None) -> str | None:
        """Nova's fault text for a server Heat left in ERROR (Heat's own reason rarely quotes it)."""
        if not server_id:
            return None
        server = get_or_none("reading server", conn.compute.get_server, server_id)
        if server is None or server.status != "ERROR":
            return None
        fault = server.fault if isinstance(server.fault, dict) else {}
        return fault.get("message")

    # waits --------------------------------------------------------------------------------------
    def _wait(self, conn: Connection, ref: str, done: Callable[[Any], bool],
              failed: Callable[[Any], str | bool | None], what: str, kind: WaitKind,
              on_transient: Callable[[TransientError], None] | None = None) -> Any:
        return heat.wait_stack(conn, self.settings, ref, done, failed, what, kind, on_transient)

    def _settle(self, conn: Connection, stack: Any) -> Any:
        return heat.settle(conn, self.settings, stack)

    # provision ----------------------------------------------------------------------------------
    def provision(self, spec: InstanceSpec, ctx: OperationContext) -> Resources:
        conn = self._conn()
        name = templates.stack_name(spec.instance_id)
        ctx.step("checking flavor, image, network and quota")
        stack = self._find_stack(conn, spec, Journal(ctx.journal).stack_id)
        if stack is None:
            common.preflight(conn, spec)
            ctx.step("creating stack")
            created = call(f"creating stack {name}", conn.orchestration.create_stack, name=name,
                           template=templates.build(spec), parameters=templates.parameters(spec),
                           is_rollback_disabled=True, timeout_mins=self._timeout_mins)
            ctx.record(stack_id=created.id)
            ctx.event(f"stack {name} ({created.id}) created")
            stack_id = created.id
        else:
            ctx.record(stack_id=stack.id)
            ctx.event(f"resuming with stack {name} ({stack.id}), {_status(stack)}")
            stack = self._settle(conn, stack)
            status = _status(stack)
            if status.endswith("_FAILED") or status == "ROLLBACK_COMPLETE":
                # Heat's retry of a failed create: an update with the same template replaces what failed.
                ctx.step("retrying the failed stack")
                self._put(conn, stack, spec, rollback=False)
            stack_id = stack.id
        ctx.step("waiting for stack")
        while True:
            outage: list[TransientError] = []
            try:
                self._wait(conn, f"{name}/{stack_id}", lambda s: _status(s) in PROVISIONED,
                           lambda s: self._create_failure(conn, s), f"creation of stack {name}", WaitKind.STACK_CREATE,
                           outage.append)
                break
            except TransientError:
                raise
            except EngineError as err:
                # Heat marks what it had in progress FAILED when its engine restarts ("engine went down"): a stack
                # found failed after Heat could not be reached during the wait is retried (an update with the same
                # template re-creates what failed), a bounded number of times. A failure seen with Heat answering
                # all along is the create's own, and stands with its reason.
                retries = Journal(ctx.journal).stack_retries
                if not outage or retries >= STACK_CREATE_RETRIES:
                    raise
                stack = self._find_stack(conn, spec, stack_id)
                if stack is None or not _status(stack).endswith("_FAILED"):
                    raise
                ctx.event(f"{err}, after Heat was unreachable ({outage[-1].cause}); retrying the stack "
                          f"({retries + 1} of {STACK_CREATE_RETRIES})", "warning", **{NOTE_STACK_RETRIES: retries + 1})
                ctx.step("retrying the failed stack")
                self._put(conn, stack, spec, rollback=False)
        realised = self._realised(conn, spec, self._require_stack(conn, spec, Resources(stack_id=stack_id)),
                                  {}, ctx)
        ids = resources.ids_of(realised)
        ctx.event("instance resources ready: " + ", ".join(f"{k.label} {ids[k.key]}" for k in resources.KINDS
                                                             if k.key in ids))
        return realised

    def _realised(self, conn: Connection, spec: InstanceSpec, stack: Any, previous: dict[str, RuleSpec],
                  ctx: OperationContext) -> Resources:
        """Resources from the stack's outputs, with Hearth's rule ids mapped to the rules Heat made."""
        outputs = _outputs(stack)
        ids = resources.ids_from_outputs(outputs)
        if resources.missing_required(ids):
            raise EngineError(f"stack {stack.name} is {_status(stack)} but its outputs lack resource ids: "
                              f"{sorted(k for k, v in outputs.items() if v)}")
        rules = self._map_rules(conn, spec, ids["security_group"], previous)
        return self._record(ids, stack, _status(stack), rules, ctx)

    def _record(self, ids: dict[str, str], stack: Any, stack_status: str, rules: dict[str, RuleSpec],
                ctx: OperationContext) -> Resources:
        ctx.record(**resources.journal_ids(ids), rule_ids={hid: r.cloud_id for hid, r in rules.items()})
        addresses = common.read_addresses(self._conn(), ids.get("server"))
        return resources.with_ids(Resources(stack_id=stack.id, rules=rules, server_status="ACTIVE",
                                            stack_status=stack_status, addresses=addresses), ids)

    def _map_rules(self, conn: Connection, spec: InstanceSpec, group_id: str,
                   previous: dict[str, RuleSpec]) -> dict[str, RuleSpec]:
        """Match each Hearth rule to the Neutron rule of the same shape (keeping a known id when it still fits)."""
        actual = common.ingress_rules(conn, group_id)
        by_shape: dict[tuple[Any, ...], list[str]] = {}
        for rule in actual:
            by_shape.setdefault(common.neutron_shape(rule), []).append(rule.id)
        mapped: dict[str, RuleSpec] = {}
        for rule in spec.rules:
            ids = by_shape.get(common.rule_shape(rule), [])
            if not ids:
                raise EngineError(f"security group {group_id} has no rule {common.rule_text(rule)} after the stack "
                                  "operation")
            known = previous.get(rule.id)
            cloud_id = known.cloud_id if known is not None and known.cloud_id in ids else ids[0]
            mapped[rule.id] = dataclasses.replace(rule, cloud_id=cloud_id)
        return mapped

    # updates ------------------------------------------------------------------------------------
    def resize_flavor(self, spec: InstanceSpec, current: Resources, ctx: OperationContext) -> Resources:
        common.resolve_flavor(self._conn(), spec.flavor_id)
        return self._update(spec, current, ctx, f"resizing to flavor {spec.flavor_id}", WaitKind.STACK_UPDATE_FLAVOR)

    def resize_volume(self, spec: InstanceSpec, current: Resources, ctx: OperationContext) -> Resources:
        return self._update(spec, current, ctx, f"growing the data volume to {spec.volume_size} GB",
                            WaitKind.STACK_UPDATE_VOLUME, check=_check_no_shrink)

    def apply_rules(self, spec: InstanceSpec, current: Resources, ctx: OperationContext) -> Resources:
        """Make-before-break: Heat replaces a group's rules by deleting the old ones before it creates the new
        ones, so a change that both adds and removes rules is two stack updates: the first holds the old rules
        and the new ones, the second drops the old. Access never drops between them."""
        leaving = [r for r in current.rules.values()
                   if not any(common.rule_shape(r) == common.rule_shape(w) for w in spec.rules)]
        arriving = [w for w in spec.rules
                    if not any(common.rule_shape(r) == common.rule_shape(w) for r in current.rules.values())]
        if leaving and arriving:
            both = spec.replace(rules=(*spec.rules, *(dataclasses.replace(r, cloud_id=None) for r in leaving)))
            current = self._update(both, current, ctx, f"adding {len(arriving)} rule(s) before removing "
                                   f"{len(leaving)}", WaitKind.STACK_UPDATE_RULES)
        return self._update(spec, current, ctx, f"applying {len(spec.rules)} security group rule(s)",
                            WaitKind.STACK_UPDATE_RULES)

    def restart(self, spec: InstanceSpec, current: Resources, ctx: OperationContext) -> Resources:
        """Heat has no reboot and a restart changes no resource: the stack's server is rebooted through Nova."""
        conn = self._conn()
        stack = self._require_stack(conn, spec, current, ctx)
        server_id = current.server_id or resources.ids_from_outputs(_outputs(stack)).get("server")
        if not server_id:
            raise EngineError(f"stack {stack.name} has no server to restart")
        ready = natives_steps.reboot(conn, self.settings, server_id, ctx)
        return dataclasses.replace(current, server_id=server_id, stack_id=stack.id, server_status=ready.status)

    def rebuild(self, spec: InstanceSpec, current: Resources, ctx: OperationContext) -> Resources:
        """A stack update with the new image: Heat rebuilds the server in place (image_update_policy REBUILD),
        with the superuser's password, keeping the port and the attached volume."""
        image = common.resolve_image(self._conn(), spec.image_id)
        return self._update(spec.replace(image_id=image.id), current, ctx, f"rebuilding with image {image.name}",
                            WaitKind.STACK_UPDATE_IMAGE)

    def reconcile(self, spec: InstanceSpec, current: Resources, ctx: OperationContext) -> Resources:
        """Heat's own repair, through the stack: a stack check (Heat's view of its resources, recorded), then an
        update with the same template and `converge`, so Heat observes each resource's live state and applies
        the template again where it differs (a server resized behind Heat is resized back, the group's rules are
        restored and extra ones removed, what the check found broken is replaced)."""
        conn = self._conn()
        stack, ids = self._settled(conn, spec, current, ctx)
        spec = repair.prepare(conn, self.settings, spec, ids, ctx)
        ctx.step(f"Heat check of stack {stack.name}")
        with cloud_call(f"checking stack {stack.name}", conflict_is_transient=True):
            conn.orchestration.check_stack(stack)
        checked = self._wait(conn, heat.stack_ref(stack), lambda s: not _status(s).endswith("_IN_PROGRESS"),
                             lambda _s: None, f"check of stack {stack.name}", WaitKind.STACK_CHECK)
        if _status(checked) == "CHECK_COMPLETE":
            ctx.event(f"Heat's check of stack {stack.name}: every resource is in place")
        else:
            found = "; ".join(self._failed_resources(conn, checked)) or common.scrub(checked.status_reason or "")
            ctx.event(f"Heat's check of stack {stack.name} ended {_status(checked)}: {found}; the converging "
                      "update replaces what Heat found broken", "warning")
        what = f"converging stack {stack.name} to the recorded state"
        ctx.step(what, **{NOTE_STACK_UPDATE: what})
        with cloud_call(f"updating stack {stack.name}", conflict_is_transient=True):
            heat.converge_stack(conn, stack, template=templates.build(spec), parameters=templates.parameters(spec),
                                timeout_mins=self._timeout_mins)
        final = self._wait(conn, heat.stack_ref(stack), _update_over, lambda _s: None,
                           f"update of stack {stack.name}: {what}", WaitKind.STACK_CONVERGE)
        self._check_update_result(conn, stack, final, ids, what, ctx)
        result = self._realised(conn, spec, self._require_stack(conn, spec, Resources(stack_id=stack.id)),
                                current.rules, ctx)
        repair.verify(conn, spec, resources.ids_of(result), ctx)
        return dataclasses.replace(result, volume_size=spec.volume_size)

    def _settled(self, conn: Connection, spec: InstanceSpec, current: Resources,
                 ctx: OperationContext) -> tuple[Any, dict[str, str]]:
        """The instance's stack once no action of Heat's is in progress (a resumed attempt lets Heat finish),
        and the resource ids: the recorded ones, with what the stack's outputs say as they ended up."""
        stack = self._require_stack(conn, spec, current, ctx)
        if _status(stack).endswith("_IN_PROGRESS"):
            stack = self._settle(conn, stack)
            stack = self._require_stack(conn, spec, Resources(stack_id=stack.id))
        return stack, {**resources.ids_of(current), **resources.ids_from_outputs(_outputs(stack))}

    def _check_drift(self, conn: Connection, stack: Any, ids: dict[str, str]) -> dict[str, dict[str, Any]]:
        """Refuse to update a stack whose resources were deleted outside Heat (an update would not bring
        them back, and the server references the group through a property Heat can only replace).
        Returns each resource kind's live plain JSON (resources.read_live)."""
        live = resources.read_live(conn, ids)
        gone = [f"{kind.label} {ids[kind.key]}" for kind in resources.KINDS
                if kind.key in live and live[kind.key] is None]
        if gone:
            raise EngineError(f"{', '.join(gone)} of stack {stack.name} no longer exist(s): deleted outside Heat. "
                              "The orchestrator only changes the cloud through the stack; delete and re-create "
                              "the instance (or restore the resource) first")
        return {key: value for key, value in live.items() if value is not None}

    def _update(self, spec: InstanceSpec, current: Resources, ctx: OperationContext, what: str, wait_kind: WaitKind,
                check: Callable[[InstanceSpec, dict[str, dict[str, Any]]], None] | None = None) -> Resources:
        conn = self._conn()
        stack, ids = self._settled(conn, spec, current, ctx)
        missing = resources.missing_required(ids)
        if missing:
            raise EngineError(f"stack {stack.name} is {_status(stack)} and has no "
                              f"{', '.join(k.label for k in missing)}: the instance was never fully built")
        live = self._check_drift(conn, stack, ids)
        if check is not None:
            check(spec, live)

        # The stack can already hold the spec only if a previous attempt of this operation updated it, or if
        # the rules asked for are the ones recorded (a repeated request); otherwise the rules differ from what
        # Hearth last applied and the template need not be read to know that the stack must change.
        could_match = Journal(ctx.journal).stack_update_sent or _rules_kept(spec, current) is not None
        if could_match and _status(stack).endswith("_COMPLETE") and self._matches(conn, stack, spec):
            ctx.event(f"stack {stack.name} already holds the desired template; nothing to change")
            return self._realised(conn, spec, stack, current.rules, ctx)

        ctx.step(what, **{NOTE_STACK_UPDATE: what})
        self._put(conn, stack, spec, rollback=True)
        ctx.event(f"stack {stack.name} update started: {what}")
        # The wait's kind names the change: common.wait_for learns how long each kind of wait takes, and a rule
        # change must not inherit the expectation of a flavor resize.
        final = self._wait(conn, heat.stack_ref(stack), _update_over, lambda _s: None,
                           f"update of stack {stack.name}: {what}", wait_kind)
        self._check_update_result(conn, stack, final, ids, what, ctx)
        ctx.event(f"stack {stack.name} updated: {what}")
        kept = _rules_kept(spec, current)
        if kept is not None and ("floating_ip" in ids) == spec.is_public:
            # The group was not part of this update (same rules): its resources and rule ids are the ones read
            # before the update, so the stack's outputs and the group's rules need no second read.
            return self._record(ids, stack, _status(final), kept, ctx)
        return self._realised(conn, spec, self._require_stack(conn, spec, Resources(stack_id=stack.id)),
                              current.rules, ctx)

    def _check_update_result(self, conn: Connection, stack: Any, final: Any, ids: dict[str, str], what: str,
                             ctx: OperationContext) -> None:
        """Every end but UPDATE_COMPLETE is a failure, with Heat's reason and what became of the stack."""
        status = _status(final)
        if status == "UPDATE_COMPLETE":
            return
        if status == "UPDATE_FAILED" and not final.is_rollback_disabled:
            # Heat starts its rollback right after UPDATE_FAILED: if it has, report where it ends.
            again = heat.read_stack(conn, heat.stack_ref(final))
            if again is not None and _status(again) == "ROLLBACK_IN_PROGRESS":
                final = self._settle(conn, again)
                status = _status(final)
        if status in _UPDATE_ENDS:
            reason = self._update_failure(conn, final)
        else:  # something else took the stack over (a delete, a check, a cancel): Heat's reason for that
            reason = common.scrub(final.status_reason or "no reason given by Heat")
        fault = self._server_fault(conn, ids.get("server"))
        if fault and fault not in reason:
            reason = f"{reason} (server fault: {fault})"
        if status == "ROLLBACK_COMPLETE":
            outcome = "Heat rolled the stack back to the previous template"
        elif status == "ROLLBACK_FAILED":
            outcome = f"Heat's rollback failed too: {common.scrub(final.status_reason or 'no reason')}"
        elif status == "UPDATE_FAILED":
            outcome = "the stack was left UPDATE_FAILED" + ("" if final.is_rollback_disabled
                                                            else " (Heat did not roll it back)")
        else:
            outcome = f"the update was interrupted: the stack is {status}"
        ctx.event(f"{what} failed: {reason}; {outcome}", "error")
        raise EngineError(f"{what} failed: stack {stack.name} update: {reason}; {outcome}")

    def _matches(self, conn: Connection, stack: Any, spec: InstanceSpec) -> bool:
        """Whether the stack already carries this spec's template and parameters (the parameters come with
        the stack, so the template is read only when they match)."""
        hidden = templates.HIDDEN_PARAMETERS
        given = {k: str(v) for k, v in (stack.parameters or {}).items()
                 if not str(k).startswith("OS::") and k not in hidden}
        if given != {k: str(v) for k, v in templates.parameters(spec).items() if k not in hidden}:
            return False
        return self._template(conn, stack) == templates.build(spec)

    def _template(self, conn: Connection, stack: Any) -> dict[str, Any]:
        """The stack's current template, as the sections Heat returns (absent sections left out)."""
        found = call(f"reading the template of stack {stack.name}", conn.orchestration.get_stack_template, stack)
        return {key: value for key, value in found.to_dict(computed=False).items()
                if value is not None and key not in ("id", "name")}

    def _put(self, conn: Connection, stack: Any, spec: InstanceSpec, rollback: bool) -> None:
        """PUT the full template and parameters of `spec` (so the stack always matches the recorded state)."""
        # Heat answers 409 while the stack is still in an action of its own: a retry waits it out.
        with cloud_call(f"updating stack {stack.name}", conflict_is_transient=True):
            conn.orchestration.update_stack(stack, template=templates.build(spec),
                                            parameters=templates.parameters(spec),
                                            is_rollback_disabled=not rollback,
                                            timeout_mins=self._timeout_mins)

    # delete ---------------------------------------------------------------------------------------
    def delete(self, spec: InstanceSpec, current: Resources, ctx: OperationContext) -> None:
        conn = self._conn()
        ctx.step("deleting stack")
        seen: set[str] = set()
        clean = Journal(ctx.journal).provision_clean
        if clean and current.stack_id:
            # The one provision attempt made this stack and recorded it: delete it by that identity, without
            # reading it first (a stack already gone answers 404, which the delete accepts).
            name = templates.stack_name(spec.instance_id)
            self._delete_stack(conn, heat.PolledStack({"id": current.stack_id, "stack_name": name}), ctx)
            return
        while True:  # every live stack of the instance (normally one)
            stack = self._find_stack(conn, spec, *(i for i in (current.stack_id, Journal(ctx.journal).stack_id)
                                                   if i not in seen))
            if stack is None or stack.id in seen:
                break
            seen.add(stack.id)
            self._delete_stack(conn, stack, ctx)
            if clean:  # one provision attempt made one stack, and a live instance has one stack at a time
                break
        if clean and seen:
            return  # the stack is gone and the provision recorded all it made: no look-ups by name needed
        ctx.step("checking nothing is left")
        left = [f"{kind.label} {found.id}" for kind, found in resources.find_all(conn, spec.instance_id)]
        if left:
            raise EngineError(f"after deleting the stack, the cloud still holds {', '.join(left)} named for "
                              f"instance {spec.instance_id}; they are outside any Heat stack and need removing")

    def _delete_stack(self, conn: Connection, stack: Any, ctx: OperationContext) -> None:
        reasons: list[str] = []

        def delete_failed(s: Any) -> str | None:
            if _status(s) != "DELETE_FAILED":
                return None
            reasons.append(self._create_failure(conn, s.full()) or f"stack {s.name} is DELETE_FAILED")
            return reasons[-1]

        for attempt in (1, 2):
            reasons.clear()
            common.delete_plain(conn.orchestration, f"/stacks/{heat.stack_ref(stack)}",
                                f"deleting stack {stack.name}")
            try:
                common.wait_for_gone(lambda: heat.poll_stack(conn, heat.stack_ref(stack)),
                                     f"deletion of stack {stack.name}", timeout=None, settings=self.settings,
                                     is_failed=delete_failed, kind=WaitKind.STACK_DELETE)
            except EngineError:
                if attempt == 2 or not reasons:
                    raise
                ctx.event(f"stack {stack.name} delete failed ({reasons[-1]}); retrying once", "warning")
                continue
            ctx.event(f"stack {stack.name} ({stack.id}) deleted")
            return

    # describe -------------------------------------------------------------------------------------
    def describe(self, spec: InstanceSpec, current: Resources) -> CloudView:
        """The resources as Nova, Cinder and Neutron hold them, and the stack as Heat reports it. Heat failing
        to answer does not hide the resources: they are read by their recorded ids (the stack then shows as
        unknown, with Heat's error as its reason)."""
        conn = self._conn()
        heat_error: TransientError | None = None
        try:
            stack = self._find_stack(conn, spec, current.stack_id, outputs=True)
        except TransientError as err:
            if not resources.ids_of(current):
                raise
            stack, heat_error = None, err
        outputs = _outputs(stack) if stack is not None else {}
        view = resources.read_view(conn, spec, {**resources.ids_from_outputs(outputs), **resources.ids_of(current)})
        if stack is not None:
            view.stack = {"id": stack.id, "name": stack.name, "status": _status(stack),
                          "reason": common.scrub(stack.status_reason or "")}
        elif heat_error is not None:
            view.stack = {"id": current.stack_id, "name": templates.stack_name(spec.instance_id), "status": "UNKNOWN",
                          "reason": str(heat_error)}
        return view

    def differences(self, spec: InstanceSpec, current: Resources) -> list[str]:
        return resources.differences(self._conn(), spec, resources.ids_of(current))

    # plan -----------------------------------------------------------------------------------------
    def plan(self, kind: str, spec: InstanceSpec, current: Resources) -> list[PlannedStep]:
        """Heat's own preview of the change (create or update preview); reads only."""
        if kind not in PLAN_KINDS:
            raise EngineError(f"unknown operation kind {kind!r} for a plan; expected one of {', '.join(PLAN_KINDS)}")
        conn = self._conn()
        name = templates.stack_name(spec.instance_id)
        stack = self._find_stack(conn, spec, current.stack_id)
        if kind == "delete":
            steps = [PlannedStep("stack delete", name, "Heat deletes every resource of the stack")]
            if stack is not None:
                with cloud_call(f"listing resources of stack {name}"):
                    steps += [PlannedStep("delete", f"{r.name} ({r.resource_type})", r.physical_resource_id or "")
                              for r in conn.orchestration.resources(stack)]
            return steps
        if kind == "reconcile":
            if stack is None:
                raise EngineError(f"the instance has no stack {name} to reconcile")
            return [PlannedStep("stack check", name, "Heat's view of its resources"),
                    PlannedStep("stack update (converge)", name, "the same template; Heat observes each resource's "
                                "live state and applies the template where it differs"),
                    *repair.planned(self.differences(spec, current))]
        if stack is None:
            return self._plan_create(conn, spec)
        if kind == "provision":  # a resumed provision reuses the stack (retrying it only if it failed)
            status = _status(stack)
            retry = status.endswith("_FAILED") or status == "ROLLBACK_COMPLETE"
            return [PlannedStep("stack update" if retry else "reuse stack", stack.name,
                                f"the stack exists ({status}): " + ("Heat retries what failed" if retry
                                                                     else "nothing is created"))]
        return self._plan_update(conn, stack, spec)

    def _plan_create(self, conn: Connection, spec: InstanceSpec) -> list[PlannedStep]:
        name = templates.stack_name(spec.instance_id)
        steps = [PlannedStep("stack create", name, "rollback disabled: a failure keeps its reason; delete cleans up")]
        preview = _preview(f"previewing stack {name}", lambda: heat.preview_create(
            conn, name=name, template=templates.build(spec), parameters=templates.parameters(spec),
            is_rollback_disabled=True))
        if preview is None:  # no create preview: the template says what it creates
            return steps + [PlannedStep("create", f"{logical} ({definition['type']})", "from the template")
                            for logical, definition in templates.build(spec)["resources"].items()]
        return steps + [PlannedStep("create", f"{r.get('resource_name')} ({r.get('resource_type')})",
                                    "Heat create preview") for r in _flatten(preview.resources or [])]

    def _plan_update(self, conn: Connection, stack: Any, spec: InstanceSpec) -> list[PlannedStep]:
        if self._matches(conn, stack, spec):
            return [PlannedStep("no change", stack.name, "the stack already holds this template")]
        steps = [PlannedStep("stack update", stack.name, "PUT the full template; rollback enabled")]
        # Not conn.orchestration.update_stack(preview=True): in openstacksdk 4.22 that performs a real update.
        preview = _preview(f"previewing the update of stack {stack.name}", lambda: heat.preview_update(
            conn, stack, template=templates.build(spec), parameters=templates.parameters(spec),
            is_rollback_disabled=False))
        if preview is None:
            return steps + self._plan_from_templates(conn, stack, spec)
        changes = preview.resource_changes or {}
        for key, action in _PREVIEW_CHANGES:
            for entry in changes.get(key) or []:
                physical = entry.get("physical_resource_id") or "(new)"
                steps.append(PlannedStep(action, f"{entry.get('resource_name')} ({entry.get('resource_type')})",
                                         _PREVIEW_DETAIL[key].format(physical)))
        return steps

    def _plan_from_templates(self, conn: Connection, stack: Any, spec: InstanceSpec) -> list[PlannedStep]:
        """Without Heat's preview: the resources whose definition changes (Heat decides in place or replace)."""
        old = self._template(conn, stack).get("resources") or {}
        new = templates.build(spec)["resources"]
        old_params = {k: str(v) for k, v in (stack.parameters or {}).items()}
        new_params = {k: str(v) for k, v in templates.parameters(spec).items() if k not in templates.HIDDEN_PARAMETERS}
        changed_params = {k for k in new_params if old_params.get(k) != new_params[k]}
        steps = []
        for logical, definition in new.items():
            target = f"{logical} ({definition['type']})"
            if logical not in old:
                steps.append(PlannedStep("create", target, "no update preview in this Heat"))
            elif old[logical] != definition or any({"get_param": p} in _values(definition) for p in changed_params):
                steps.append(PlannedStep("update", target, "no update preview in this Heat: in place or replace "
                                                           "is Heat's decision"))
        steps += [PlannedStep("delete", f"{logical} ({d.get('type')})", "no update preview in this Heat")
                  for logical, d in old.items() if logical not in new]
        return steps


_UPDATE_ENDS = ("UPDATE_COMPLETE", "UPDATE_FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED")


def _check_no_shrink(spec: InstanceSpec, live: dict[str, dict[str, Any]]) -> None:
    volume = live["volume"]
    if spec.volume_size < int(volume.get("size") or 0):
        raise EngineError(f"volumes can only grow: volume {volume.get('id')} is {volume.get('size')} GB, "
                          f"asked for {spec.volume_size} GB")


def _rules_kept(spec: InstanceSpec, current: Resources) -> dict[str, RuleSpec] | None:
    """When every desired rule is realised as recorded (same Hearth id, same shape) and nothing else is, the
    update left the group alone: the realised rules, else None (the group's rules must be read again)."""
    if len(spec.rules) != len(current.rules):
        return None
    kept: dict[str, RuleSpec] = {}
    for rule in spec.rules:
        realised = current.rules.get(rule.id)
        if realised is None or not realised.cloud_id or common.rule_shape(realised) != common.rule_shape(rule):
            return None
        kept[rule.id] = dataclasses.replace(rule, cloud_id=realised.cloud_id)
    return kept


def _update_over(stack: Any) -> bool:
    """An update is over once the stack is no longer updating or rolling back: it completed, failed, or
    something else (a delete, a check, a cancel) took the stack over. `_check_update_result` says which;
    waiting on for UPDATE/ROLLBACK end states only would hang on those until the operation timeout."""
    return _status(stack) not in ("UPDATE_IN_PROGRESS", "ROLLBACK_IN_PROGRESS")


def _flatten(items: list[Any]) -> list[dict[str, Any]]:
    """Create preview lists resources, nesting lists for nested stacks."""
    flat: list[dict[str, Any]] = []
    for item in items:
        flat.extend(_flatten(item) if isinstance(item, list) else [item])
    return flat


def _values(node: Any) -> list[Any]:
    """Every dict and scalar inside a template fragment (to spot get_param references)."""
    found = [node]
    if isinstance(node, dict):
        for value in node.values():
            found += _values(value)
    elif isinstance(node, list):
        for value in node:
            found += _values(value)
    return found
