"""The natives engine: realises instances with direct Nova, Cinder and Neutron calls.

Each cloud resource id goes into the operation journal the moment the cloud returns it, and every
step first looks for what a previous (interrupted) attempt already made, so an operation can be
resumed or cleaned up from its journal. Independent steps run in parallel on a shared thread pool;
each pool thread keeps its own openstacksdk Connection.
"""

from __future__ import annotations

import contextvars
import dataclasses
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from openstack import utils as os_utils
from openstack.connection import Connection

from hearth.cloud import CloudConnections
from hearth.config import Settings
from hearth.engines import common, natives_steps, repair, resources
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
from hearth.engines.common import WaitKind, call, get_or_none, retried
from hearth.engines.journal import NOTE_PROVISION_STARTED, Journal
from hearth.engines.natives_steps import Made, StepEnv
from hearth.engines.resources import Kind

IN_USE_EXTEND_MICROVERSION = "3.42"  # Cinder extends attached volumes from this microversion on


class _SerialContext:
    """One operation context shared by the engine's threads: calls into it never overlap."""

    def __init__(self, ctx: OperationContext) -> None:
        self._ctx = ctx
        self._lock = threading.Lock()

    @property
    def journal(self) -> dict[str, Any]:
        return self._ctx.journal

    def record(self, **values: Any) -> None:
        with self._lock:
            self._ctx.record(**values)

    def step(self, name: str, **journal: Any) -> None:
        with self._lock:
            self._ctx.step(name, **journal)

    def event(self, message: str, level: str = "info", **journal: Any) -> None:
        with self._lock:
            self._ctx.event(message, level, **journal)


def _gather(futures: list[Future[Any]]) -> list[Any]:
    """Wait for every future (none is left running), then raise: one EngineError naming every failure."""
    results: list[Any] = []
    errors: list[BaseException] = []
    for future in futures:
        try:
            results.append(future.result())
        except BaseException as exc:  # noqa: BLE001 - re-raised below once all branches have finished
            errors.append(exc)
            results.append(None)
    if errors:
        unexpected = [e for e in errors if not isinstance(e, EngineError)]
        if unexpected:
            raise unexpected[0]
        if len(errors) == 1:
            raise errors[0]
        transient = [e for e in errors if isinstance(e, TransientError)]
        text = "; ".join(str(e) for e in errors)
        if len(transient) < len(errors):  # a branch failed for good: so does the operation
            raise EngineError(text)
        first = transient[0]
        raise TransientError(text, service=first.service, status=first.status, cause=first.cause,
                             retry_after=max(e.retry_after or 0.0 for e in transient) or None)
    return results


class NativesEngine(ResourceEngine):
    name = "natives"

    def __init__(self, settings: Settings, connections: CloudConnections) -> None:
        self.settings = settings
        self.connections = connections
        # Shared and long-lived so its threads (and their cached Connections) are reused across operations.
        self._pool = ThreadPoolExecutor(max_workers=max(4, 3 * settings.workers), thread_name_prefix="hearth-natives")

    def close(self) -> None:
        """Stop the engine's threads (their Connections are closed with the CloudConnections)."""
        self._pool.shutdown(wait=True)

    def _conn(self) -> Connection:
        return self.connections.get()

    def _submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """Run on the pool in a copy of the caller's context: the operation's deadline and retry reporter
        (common.operation_deadline, common.retry_reporter) go with it."""
        return self._pool.submit(contextvars.copy_context().run, fn, *args)

    def _env(self, spec: InstanceSpec, ctx: OperationContext, **values: Any) -> StepEnv:
        return StepEnv(spec=spec, ctx=ctx, settings=self.settings, connect=self._conn, **values)

    # provision -----------------------------------------------------------------------------------
    def provision(self, spec: InstanceSpec, ctx: OperationContext) -> Resources:
        ctx = _SerialContext(ctx)
        conn = self._conn()
        journal = ctx.journal
        ctx.step("checking flavor, image, network and quota")
        if Journal(journal).ids:
            # A resumed attempt: its own resources already count against quota, so only resolve names.
            resolved = common.Resolved(
                flavor=common.resolve_flavor(conn, spec.flavor_id),
                image=common.resolve_image(conn, spec.image_id),
                network=common.resolve_network(conn, spec.network_id) if spec.network_id else None,
            )
        else:
            resolved = common.preflight(conn, spec)
        # The first attempt says so in the journal before it creates anything: only a resumed attempt can
        # find resources of an earlier one, so only it pays for the look-ups by name.
        fresh = not Journal(journal).provision_started
        if fresh:
            ctx.record(**{NOTE_PROVISION_STARTED: True})

        kinds = resources.creation_order()
        ctx.step("creating " + ", ".join(k.label for k in kinds))
        made = self._run_steps(kinds, self._env(spec, ctx, fresh=fresh, resolved=resolved))
        ids = {key: m.id for key, m in made.items() if m.id}
        ctx.event("instance resources ready: " + ", ".join(f"{k.label} {ids[k.key]}" for k in kinds if k.key in ids))
        rules = made["security_group_rules"].value if "security_group_rules" in made else {}
        return resources.with_ids(Resources(rules=rules, server_status="ACTIVE",
                                            addresses=common.read_addresses(conn, ids.get("server"))), ids)

    def _run_steps(self, kinds: list[Kind], env: StepEnv) -> dict[str, Made]:
        """Run each kind's create step on the pool as soon as the steps it comes after are done. After a
        failure nothing new starts; every running step finishes, then one EngineError names every failure."""
        keys = {k.key for k in kinds}
        pending = list(kinds)
        running: dict[Future[Any], Kind] = {}
        started: list[Future[Any]] = []
        failed = False
        while pending or running:
            if not failed:
                for kind in [k for k in pending if all(d in env.results or d not in keys for d in k.after)]:
                    assert kind.create is not None
                    future = self._submit(kind.create, env)
                    running[future] = kind
                    started.append(future)
                    pending.remove(kind)
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                kind = running.pop(future)
                if future.exception() is None:
                    env.results[kind.key] = future.result()
                else:
                    failed = True
        _gather(started)
        if pending:
            raise EngineError(f"resource steps never started: {', '.join(k.key for k in pending)}")
        return env.results

    # rules ---------------------------------------------------------------------------------------
    def apply_rules(self, spec: InstanceSpec, current: Resources, ctx: OperationContext) -> Resources:
        ctx = _SerialContext(ctx)
        conn = self._conn()
        ctx.step("updating security group rules")
        group_id, created = natives_steps.ensure_group(conn, spec, ctx, current.secgroup_id)
        had_group = not created and group_id == current.secgroup_id  # the recorded group still exists
        if not had_group and current.server_id:
            self._attach_group(conn, current.server_id, group_id)
        recorded = dict(current.rules)
        for hid, cid in (ctx.journal.get("rule_ids") or {}).items():
            recorded.setdefault(hid, RuleSpec(hid, "", 0, 0, "", cid))
        rules = natives_steps.converge_rules(conn, spec, group_id, recorded, ctx, group_is_new=created)
        extra = self._converge_public(conn, spec, current, ctx)
        return dataclasses.replace(current, secgroup_id=group_id, rules=rules, extra_ids=extra,
                                   addresses=common.read_addresses(conn, current.server_id))

    def _converge_public(self, conn: Connection, spec: InstanceSpec, current: Resources,
                         ctx: _SerialContext) -> dict[str, str]:
        """A public instance has its floating IP on its port; a private one has none (access changes)."""
        extra = dict(current.extra_ids)
        ip_id = extra.get("floating_ip") or ctx.journal.get("floating_ip_id")
        if spec.is_public:
            port_id = extra.get("port") or self._server_port(conn, current.server_id)
            extra["floating_ip"] = natives_steps.ensure_floating_ip(conn, spec, ctx, port_id)
        elif ip_id:
            natives_steps.delete_floating_ip(self._env(spec, ctx), ip_id)
            extra.pop("floating_ip", None)
        else:
            for leftover in common.find_floating_ips(conn, spec.instance_id):
                natives_steps.delete_floating_ip(self._env(spec, ctx), leftover.id)
        return extra

    def _server_port(self, conn: Connection, server_id: str | None) -> str | None:
        """The port Nova made for an instance without a network of its own."""
        if not server_id:
            return None
        port = next(iter(common.server_ports(conn, server_id)), None)
        return port.id if port is not None else None

    # restart and rebuild -------------------------------------------------------------------------
    def restart(self, spec: InstanceSpec, current: Resources, ctx: OperationContext) -> Resources:
        conn = self._conn()
        server_id = self._server_of(current, ctx, "restart")
        ready = natives_steps.reboot(conn, self.settings, server_id, ctx)
        return dataclasses.replace(current, server_id=server_id, server_status=ready.status)

    def rebuild(self, spec: InstanceSpec, current: Resources, ctx: OperationContext) -> Resources:
        conn = self._conn()
        server_id = self._server_of(current, ctx, "rebuild")
        ready = natives_steps.rebuild(conn, self.settings, spec, server_id, ctx)
        return dataclasses.replace(current, server_id=server_id, server_status=ready.status,
                                   addresses=common.read_addresses(conn, server_id))

    @staticmethod
    def _server_of(current: Resources, ctx: OperationContext, what: str) -> str:
        server_id = current.server_id or ctx.journal.get("server_id")
        if not server_id:
            raise EngineError(f"the instance has no server to {what}")
        return str(server_id)

    def _attach_group(self, conn: Connection, server_id: str, group_id: str) -> None:
        """A re-created group must also be on the server, or its rules open nothing."""
        server = get_or_none("reading server", conn.compute.get_server, server_id)
        if server is None:
            return
        names = {g.get("name") for g in server.security_groups or []}
        if group_id not in names:
            call(f"adding security group {group_id} to server {server_id}",
                 conn.compute.add_security_group_to_server, server, {"name": group_id})

    # resize flavor -------------------------------------------------------------------------------
    def resize_flavor(self, spec: InstanceSpec, current: Resources, ctx: OperationContext) -> Resources:
        ctx = _SerialContext(ctx)
        conn = self._conn()
        server_id = current.server_id or ctx.journal.get("server_id")
        if not server_id:
            raise EngineError("the instance has no server to resize")
        target = common.resolve_flavor(conn, spec.flavor_id)
        server = retried("reading server", conn.compute.get_server, server_id)
        if server.status == "VERIFY_RESIZE":  # a resumed attempt that resized but did not confirm
            if common.server_has_flavor(server, target):
                return self._confirm_resize(conn, server_id, target, current, ctx)
            self._revert_resize(conn, server_id, ctx)
            server = retried("reading server", conn.compute.get_server, server_id)
        if common.server_has_flavor(server, target) and server.status in natives_steps.SETTLED_SERVER:
            ctx.event(f"server {server_id} already has flavor {target.name}")
            return dataclasses.replace(current, server_id=server_id, server_status=server.status)
        if server.status not in natives_steps.SETTLED_SERVER:
            raise EngineError(f"cannot resize server {server_id} while it is {server.status}"
                              + (f": {common.server_failure(server)}" if server.status == "ERROR" else ""))

        ctx.step(f"resizing server to flavor {target.name}")
        call(f"resizing server {server_id} to flavor {target.name}", conn.compute.resize_server, server, target.id)
        ctx.record(resize_flavor_id=target.id)
        try:
            natives_steps.wait_server(conn, self.settings, server_id, WaitKind.SERVER_RESIZE,
                                     f"resize of server {server_id} to flavor {target.name}",
                              lambda s: s.status == "VERIFY_RESIZE"
                              or (s.status in natives_steps.SETTLED_SERVER and common.server_has_flavor(s, target)))
            return self._confirm_resize(conn, server_id, target, current, ctx)
        except TransientError:
            raise  # resumed later from the journal, where the resize stands: nothing to undo
        except EngineError as err:
            self._recover_resize(conn, server_id, ctx, err)
            raise

    def _confirm_resize(self, conn: Connection, server_id: str, target: Any, current: Resources,
                        ctx: _SerialContext) -> Resources:
        server = retried("reading server", conn.compute.get_server, server_id)
        if server.status == "VERIFY_RESIZE":
            ctx.step("confirming resize")
            call(f"confirming resize of server {server_id}", conn.compute.confirm_server_resize, server_id)
        server = natives_steps.wait_server(conn, self.settings, server_id, WaitKind.SERVER_SETTLE,
                                           f"server {server_id} to settle after the resize",
                                   lambda s: s.status in natives_steps.SETTLED_SERVER)
        if not common.server_has_flavor(server, target):
            raise EngineError(f"server {server_id} is {server.status} but its flavor is not {target.name} "
                              "after the resize")
        ctx.event(f"server {server_id} resized to flavor {target.name}")
        return dataclasses.replace(current, server_id=server_id, server_status=server.status)

    def _revert_resize(self, conn: Connection, server_id: str, ctx: _SerialContext) -> None:
        ctx.step("reverting resize")
        call(f"reverting resize of server {server_id}", conn.compute.revert_server_resize, server_id)
        natives_steps.wait_server(conn, self.settings, server_id, WaitKind.SERVER_SETTLE,
                                  f"server {server_id} to revert its resize",
                          lambda s: s.status in natives_steps.SETTLED_SERVER)

    def _recover_resize(self, conn: Connection, server_id: str, ctx: _SerialContext, err: EngineError) -> None:
        """After a failed resize: revert a resize awaiting confirmation; record where the server was left."""
        try:
            server = conn.compute.get_server(server_id)
            if server.status == "VERIFY_RESIZE":
                self._revert_resize(conn, server_id, ctx)
                server = conn.compute.get_server(server_id)
            ctx.event(f"resize failed ({err}); server {server_id} is {server.status}", "error")
        except (EngineError, *common.CLOUD_ERRORS) as exc:
            ctx.event(f"resize failed ({err}); recovering server {server_id} failed too: {common.error_text(exc)}",
                      "error")

    # resize volume -------------------------------------------------------------------------------
    def resize_volume(self, spec: InstanceSpec, current: Resources, ctx: OperationContext) -> Resources:
        ctx = _SerialContext(ctx)
        conn = self._conn()
        volume_id = current.volume_id or ctx.journal.get("volume_id")
        server_id = current.server_id or ctx.journal.get("server_id")
        if not volume_id:
            raise EngineError("the instance has no data volume to resize")
        volume = retried("reading volume", natives_steps.plain_volume, conn, volume_id)
        if volume.status in ("extending", "detaching", "attaching"):  # a resumed attempt mid-step
            volume = natives_steps.wait_volume(conn, self.settings, volume_id, WaitKind.VOLUME_SETTLE,
                                                f"volume {volume_id} to settle",
                                       lambda v: v.status in ("available", "in-use"))
        if spec.volume_size < volume.size:
            raise EngineError(f"volumes can only grow: volume {volume_id} is {volume.size} GB, "
                              f"asked for {spec.volume_size} GB")
        try:
            if volume.size < spec.volume_size:
                volume = self._grow(conn, volume, spec.volume_size, server_id, ctx)
        except EngineError as err:  # transient too: the data goes back to its server now, whatever comes next
            self._reattach_after_failure(conn, volume_id, server_id, ctx, err)
            raise
        if server_id:
            natives_steps.ensure_attached(conn, self.settings, server_id, volume_id, ctx, volume)
        ctx.record(volume_step="done")
        return dataclasses.replace(current, volume_id=volume_id)

    def _grow(self, conn: Connection, volume: Any, size: int, server_id: str | None, ctx: _SerialContext) -> Any:
        """Extend the volume (detaching first where Cinder needs it); returns the volume as last read."""
        attached = bool(volume.attachments)
        in_use_ok = os_utils.supports_microversion(conn.block_storage, IN_USE_EXTEND_MICROVERSION)
        if attached and not in_use_ok:
            ctx.step("detaching volume to extend it", volume_step="detaching")
            natives_steps.detach_all(conn, volume)
            natives_steps.wait_volume(conn, self.settings, volume.id, WaitKind.VOLUME_DETACH,
                                      f"volume {volume.id} to detach",
                              lambda v: v.status == "available" and not v.attachments)
            ctx.event(f"volume {volume.id} detached (Cinder below {IN_USE_EXTEND_MICROVERSION} cannot extend "
                      "an attached volume)")
            attached = False
        ctx.step(f"extending volume to {size} GB", volume_step="extending", volume_target_size=size)
        call(f"extending volume {volume.id} to {size} GB", conn.block_storage.extend_volume, volume.id, size)
        settled = "in-use" if attached else "available"
        grown = natives_steps.wait_volume(conn, self.settings, volume.id, WaitKind.VOLUME_EXTEND,
                                          f"extension of volume {volume.id} to {size} GB",
                                  lambda v: v.status == settled and v.size >= size)
        ctx.event(f"volume {volume.id} extended to {size} GB" + (" while attached" if attached else ""))
        if server_id and not attached:
            ctx.step("re-attaching volume", volume_step="attaching")
        return grown

    def _reattach_after_failure(self, conn: Connection, volume_id: str, server_id: str | None,
                                ctx: _SerialContext, err: EngineError) -> None:
        """A failed extend must not leave the data detached when it can be put back."""
        if not server_id:
            return
        try:
            volume = retried("reading volume", conn.block_storage.get_volume, volume_id)
            if volume.status == "available" and not volume.attachments:
                natives_steps.ensure_attached(conn, self.settings, server_id, volume_id, ctx)
                ctx.event(f"volume {volume_id} re-attached after a failed resize ({err})", "warning")
        except TransientError as exc:  # the resumed resize attaches it (it ends with the volume attached)
            ctx.event(f"volume {volume_id} could not be re-attached yet ({exc}); the retry of the resize will",
                      "warning")
        except (EngineError, *common.CLOUD_ERRORS) as exc:
            ctx.event(f"re-attaching volume {volume_id} after a failed resize failed: {common.error_text(exc)}",
                      "error")

    # reconcile -----------------------------------------------------------------------------------
    def reconcile(self, spec: InstanceSpec, current: Resources, ctx: OperationContext) -> Resources:
        """Apply the difference directly, each step a no-op where nothing differs: the flavor back (a Nova
        resize), the volume attached, the rules exactly the recorded ones (missing created, extra deleted), the
        group on the server's ports, the floating IP as recorded."""
        conn = self._conn()
        spec = repair.prepare(conn, self.settings, spec, resources.ids_of(current), ctx)
        result = self.resize_flavor(spec, current, ctx)
        result = self.resize_volume(spec, result, ctx)
        result = self.apply_rules(spec, result, ctx)
        if result.server_id and result.secgroup_id:
            self._group_on_ports(conn, result.server_id, result.secgroup_id, ctx)
        repair.verify(conn, spec, resources.ids_of(result), ctx)
        return dataclasses.replace(result, volume_size=spec.volume_size)

    def _group_on_ports(self, conn: Connection, server_id: str, group_id: str, ctx: OperationContext) -> None:
        """Put the instance's group back on each of the server's ports that lost it (its rules open nothing
        on a port without it)."""
        for port in common.server_ports(conn, server_id):
            groups = list(port.security_group_ids or [])
            if group_id in groups:
                continue
            call(f"adding security group {group_id} to port {port.id}", conn.network.update_port, port,
                 security_group_ids=[*groups, group_id])
            ctx.event(f"security group {group_id} put back on port {port.id}")

    # delete --------------------------------------------------------------------------------------
    def delete(self, spec: InstanceSpec, current: Resources, ctx: OperationContext) -> None:
        ctx = _SerialContext(ctx)
        conn = self._conn()
        journal = ctx.journal
        env = self._env(spec, ctx)
        recorded = resources.ids_of(current)
        phases = resources.delete_phases()
        # After a provision that succeeded at its first attempt every resource it made is recorded
        # (base.PROVISION_CLEAN): the look-ups by name for leftovers are then skipped.
        by_name = not (Journal(journal).provision_clean and all(k.key in recorded for phase in phases for k in phase))
        for phase in phases:
            ctx.step("deleting " + " and ".join(k.label for k in phase))
            work = [(kind, resource_id) for kind in phase for resource_id in natives_steps.ordered_ids(
                resources.id_of(kind, current), Journal(journal).id(kind),
                *(r.id for r in (kind.find(conn, spec.instance_id) if by_name and kind.find else [])))]
            if len(work) == 1:
                kind, resource_id = work[0]
                assert kind.delete is not None
                kind.delete(env, resource_id)
            else:
                _gather([self._submit(kind.delete, env, resource_id) for kind, resource_id in work])

    # describe ------------------------------------------------------------------------------------
    def describe(self, spec: InstanceSpec, current: Resources) -> CloudView:
        return resources.read_view(self._conn(), spec, resources.ids_of(current))

    def differences(self, spec: InstanceSpec, current: Resources) -> list[str]:
        return resources.differences(self._conn(), spec, resources.ids_of(current))

    # plan ----------------------------------------------------------------------------------------
    def plan(self, kind: str, spec: InstanceSpec, current: Resources) -> list[PlannedStep]:
        """The cloud calls an operation would make, in order. Reads at most the API discovery documents."""
        server = current.server_id or "(new server)"
        volume = current.volume_id or "(new volume)"
        group = current.secgroup_id or "(new security group)"
        if kind == "provision":
            return [PlannedStep("GET /flavors, /images, /limits", spec.flavor_id,
                                "preflight: flavor, image, network exist; quota leaves room"),
                    *resources.plan_provision(spec, current)]
        if kind == "resize_flavor":
            return [PlannedStep("POST /servers/{id}/action resize", server, f"to flavor {spec.flavor_id}"),
                    PlannedStep("POST /servers/{id}/action confirmResize", server)]
        if kind == "resize_volume":
            extend = PlannedStep("POST /volumes/{id}/action os-extend", volume, f"to {spec.volume_size} GB")
            if self._in_use_extend_supported():
                return [extend]
            return [PlannedStep("DELETE /servers/{id}/os-volume_attachments/{volume_id}", volume,
                                f"Cinder below {IN_USE_EXTEND_MICROVERSION}: detach first"),
                    extend,
                    PlannedStep("POST /servers/{id}/os-volume_attachments", volume, "re-attach")]
        if kind == "apply_rules":
            steps = [] if current.secgroup_id else [PlannedStep("POST /security-groups", group)]
            diff = common.diff_rules(spec.rules, current.rules)
            steps += [PlannedStep("POST /security-group-rules", group, common.rule_text(r)) for r in diff.to_create]
            steps += [PlannedStep("DELETE /security-group-rules/{id}", r.cloud_id or "", common.rule_text(r))
                      for r in diff.to_delete]
            return steps
        if kind == "delete":
            return resources.plan_delete(current)
        if kind == "reconcile":
            return repair.planned(self.differences(spec, current))
        raise EngineError(f"unknown operation kind {kind!r} for a plan; expected one of {', '.join(PLAN_KINDS)}")

    def _in_use_extend_supported(self) -> bool:
        try:
            return os_utils.supports_microversion(self._conn().block_storage, IN_USE_EXTEND_MICROVERSION)
        except common.CLOUD_ERRORS:
            return True
