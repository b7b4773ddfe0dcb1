"""The natives engine: realises instances with direct Nova, Cinder and Neutron calls.

Each cloud resource id goes into the operation journal the moment the cloud returns it, and every
step first looks for what a previous (interrupted) attempt already made, so an operation can be
resumed or cleaned up from its journal. Independent steps run in parallel on a shared thread pool;
each pool thread keeps its own openstacksdk Connection.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from openstack import exceptions as os_exceptions
from openstack import utils as os_utils
from openstack.connection import Connection

from hearth import engines
from hearth.cloud import CloudConnections
from hearth.config import Settings
from hearth.engines import common
from hearth.engines.base import (
    PLAN_KINDS,
    PROVISION_CLEAN,
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
from hearth.engines.common import call, get_or_none, ignore_not_found, retried, wait_for, wait_for_gone

IN_USE_EXTEND_MICROVERSION = "3.42"  # Cinder extends attached volumes from this microversion on
SETTLED_SERVER = ("ACTIVE", "SHUTOFF")  # where a resize starts from and returns to (Nova keeps a stopped server off)
STARTED = "provision_started"  # journal key: an attempt got past preflight and may have created resources


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


def _plain_server(conn: Connection, server_id: str) -> common.Plain:
    return common.read_plain(conn.compute, f"/servers/{server_id}", "server")


def _plain_volume(conn: Connection, volume_id: str) -> common.Plain:
    return common.read_plain(conn.block_storage, f"/volumes/{volume_id}", "volume")


def _ordered_ids(*candidates: str | None) -> list[str]:
    return list(dict.fromkeys(c for c in candidates if c))


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

    def warm(self, threads: int) -> None:
        """Start `threads` pool threads (at most the pool's size), each with its cloud Connection made, so the
        first burst of operations after a start does not connect on its critical path. The task manager
        calls this once as it starts; a cloud that cannot be reached now is not an error here."""
        count = max(1, min(threads, self._pool._max_workers))
        barrier = threading.Barrier(count)  # every task holds its thread until all have one: `count` threads
        gate = threading.BoundedSemaphore(2)

        def connect() -> None:
            try:
                with gate:  # a few at a time, so warming never starves the API process of the GIL
                    conn = self._conn()
                    for service in ("compute", "block_storage", "network"):
                        getattr(conn, service).get_endpoint()
            except Exception:  # noqa: BLE001 - warming is best effort
                barrier.abort()
                return
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=30)

        _gather([self._submit(connect) for _ in range(count)])

    def _conn(self) -> Connection:
        return self.connections.get()

    def _submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """Run on the pool in a copy of the caller's context: the operation's deadline and retry reporter
        (common.operation_deadline, common.retry_reporter) go with it."""
        return self._pool.submit(contextvars.copy_context().run, fn, *args)

    # waits ---------------------------------------------------------------------------------------
    def _wait_server(self, conn: Connection, server_id: str, what: str,
                     done: Callable[[Any], bool] | None = None, plain: bool = False) -> Any:
        """`plain`: poll the JSON (common.Plain) when `done` looks only at the status (not at the flavor)."""
        fetch = (lambda: _plain_server(conn, server_id)) if plain else (lambda: conn.compute.get_server(server_id))
        return wait_for(fetch,
                        done or (lambda s: s.status == "ACTIVE"), common.server_failure, what,
                        timeout=None, settings=self.settings)

    def _wait_volume(self, conn: Connection, volume_id: str, what: str, done: Callable[[Any], bool]) -> Any:
        return wait_for(lambda: _plain_volume(conn, volume_id), done, common.volume_failure, what,
                        timeout=None, settings=self.settings)

    # provision -----------------------------------------------------------------------------------
    def provision(self, spec: InstanceSpec, ctx: OperationContext) -> Resources:
        ctx = _SerialContext(ctx)
        conn = self._conn()
        journal = ctx.journal
        ctx.step("checking flavor, image, network and quota")
        if any(journal.get(key) for key in ("server_id", "volume_id", "secgroup_id")):
            # A resumed attempt: its own resources already count against quota, so only resolve names.
            resolved = common.Resolved(
                flavor=common.resolve_flavor(conn, spec.flavor_id),
                image=common.resolve_image(conn, spec.image_id),
                network=common.resolve_network(conn, spec.network_id) if spec.network_id else None,
            )
        else:
            resolved = common.preflight(conn, spec)
        # The first attempt says so in the journal before it creates anything: only a resumed attempt can
        # find resources of an earlier one, so only it pays for the three name lookups.
        fresh = not journal.get(STARTED)
        if fresh:
            ctx.record(**{STARTED: True})

        ctx.step("creating volume, security group and server")
        volume_future = self._submit(self._ensure_volume, spec, ctx, fresh)
        try:
            group_id, group_is_new = self._ensure_group(conn, spec, ctx, look_for_existing=not fresh)
        except BaseException:
            _gather([volume_future])
            raise
        recorded = {hid: RuleSpec(hid, "", 0, 0, "", cid) for hid, cid in (journal.get("rule_ids") or {}).items()}
        rules_future = self._submit(self._converge_rules_thread, spec, group_id, recorded, ctx, group_is_new)
        server_future = self._submit(self._ensure_server, spec, group_id, resolved, ctx, fresh)
        server, volume, rules = _gather([server_future, volume_future, rules_future])

        ctx.step("attaching volume")
        self._ensure_attached(conn, server.id, volume.id, ctx, volume)
        ctx.event(f"instance resources ready: server {server.id}, volume {volume.id}, security group {group_id}")
        return Resources(server_id=server.id, volume_id=volume.id, secgroup_id=group_id, rules=rules,
                         server_status="ACTIVE")

    def _ensure_volume(self, spec: InstanceSpec, ctx: _SerialContext, fresh: bool = False) -> Any:
        conn = self._conn()
        volume = None
        if ctx.journal.get("volume_id"):
            volume = get_or_none("reading volume", conn.block_storage.get_volume, ctx.journal["volume_id"])
        if volume is None and not fresh:
            volume = next((v for v in common.find_volumes(conn, spec.instance_id) if v.status != "deleting"), None)
            if volume is not None:
                ctx.record(volume_id=volume.id)
        if volume is not None:
            ctx.event(f"reusing volume {volume.id} from an earlier attempt")
        else:
            attrs: dict[str, Any] = {"name": common.volume_name(spec.instance_id), "size": spec.volume_size,
                                     "metadata": common.resource_metadata(spec),
                                     "description": common.volume_description(spec)}
            if spec.availability_zone:
                attrs["availability_zone"] = spec.availability_zone
            volume = call("creating the data volume", conn.block_storage.create_volume, **attrs)
            ctx.record(volume_id=volume.id)
            ctx.event(f"volume {volume.id} ({spec.volume_size} GB) created")
        return self._wait_volume(conn, volume.id, f"volume {volume.id} to become available",
                                 lambda v: v.status in ("available", "in-use"))

    def _ensure_group(self, conn: Connection, spec: InstanceSpec, ctx: _SerialContext,
                      group_id: str | None = None, look_for_existing: bool = True) -> tuple[str, bool]:
        """The instance's group id, and whether it was created just now (so it has no ingress rules yet)."""
        group = None
        for candidate in _ordered_ids(group_id, ctx.journal.get("secgroup_id")):
            group = get_or_none("reading security group", conn.network.get_security_group, candidate)
            if group is not None:
                break
        if group is None and look_for_existing:
            group = next(iter(common.find_secgroups(conn, spec.instance_id)), None)
        created = group is None
        if group is None:
            group = call("creating the security group", conn.network.create_security_group,
                         name=common.secgroup_name(spec.instance_id), description=common.secgroup_description(spec))
            ctx.event(f"security group {group.id} created")
        if ctx.journal.get("secgroup_id") != group.id:
            ctx.record(secgroup_id=group.id)
        return group.id, created

    def _ensure_server(self, spec: InstanceSpec, group_id: str, resolved: common.Resolved,
                       ctx: _SerialContext, fresh: bool = False) -> Any:
        conn = self._conn()
        server = None
        if ctx.journal.get("server_id"):
            server = get_or_none("reading server", conn.compute.get_server, ctx.journal["server_id"])
        if server is None and not fresh:
            server = next(iter(common.find_servers(conn, spec.instance_id)), None)
            if server is not None:
                ctx.record(server_id=server.id)
        if server is not None:
            ctx.event(f"reusing server {server.id} from an earlier attempt")
        else:
            attrs: dict[str, Any] = {
                "name": common.server_name(spec.instance_id),
                "flavor_id": resolved.flavor.id,
                "image_id": resolved.image.id,
                "networks": [{"uuid": resolved.network.id}] if resolved.network is not None else "auto",
                "security_groups": [{"name": group_id}],
                "metadata": common.resource_metadata(spec),
            }
            if spec.availability_zone:
                attrs["availability_zone"] = spec.availability_zone
            server = call("creating the server", conn.compute.create_server, **attrs)
            ctx.record(server_id=server.id)
            ctx.event(f"server {server.id} created (flavor {resolved.flavor.name})")
        return self._wait_server(conn, server.id, f"server {server.id} to become ACTIVE", plain=True)

    def _ensure_attached(self, conn: Connection, server_id: str, volume_id: str, ctx: _SerialContext,
                         volume: Any = None) -> Any:
        """`volume`: the volume as just read by the caller, saving a read."""
        if volume is None or volume.id != volume_id:
            volume = retried("reading volume", conn.block_storage.get_volume, volume_id)
        if volume.status == "in-use" and common.volume_attached_to(volume, server_id):  # nothing to do or wait for
            if ctx.journal.get("volume_attached_to") != server_id:
                ctx.record(volume_attached_to=server_id)
            return volume
        if not common.volume_attached_to(volume, server_id):
            others = [a.get("server_id") for a in volume.attachments or []]
            if others:
                raise EngineError(f"volume {volume_id} is attached to another server ({', '.join(map(str, others))})")
            if volume.status != "attaching":
                call(f"attaching volume {volume_id} to server {server_id}", conn.compute.create_volume_attachment,
                     server_id, volume=volume_id)
            ctx.record(volume_attached_to=server_id)
        volume = self._wait_volume(
            conn, volume_id, f"volume {volume_id} to attach to server {server_id}",
            lambda v: v.status == "in-use" and common.volume_attached_to(v, server_id))
        ctx.record(volume_attached_to=server_id)
        return volume

    # rules ---------------------------------------------------------------------------------------
    def _converge_rules_thread(self, spec: InstanceSpec, group_id: str, recorded: dict[str, RuleSpec],
                               ctx: _SerialContext, group_is_new: bool = False) -> dict[str, RuleSpec]:
        return self._converge_rules(self._conn(), spec, group_id, recorded, ctx, group_is_new)

    def _realised_rules(self, conn: Connection, group_id: str, recorded: dict[str, RuleSpec]) -> dict[str, RuleSpec]:
        """The group's ingress rules keyed by the Hearth rule they realise (recorded id, else description)."""
        actual = common.ingress_rules(conn, group_id)
        by_cloud_id = {r.cloud_id: hid for hid, r in recorded.items() if r.cloud_id}
        realised: dict[str, RuleSpec] = {}
        for rule in actual:
            key = by_cloud_id.get(rule.id) or common.hearth_rule_id(rule) or f"cloud:{rule.id}"
            if key in realised:
                key = f"cloud:{rule.id}"
            ethertype, protocol, pmin, pmax, cidr = common.neutron_shape(rule)
            realised[key] = RuleSpec(key, protocol or "any", -1 if pmin is None else pmin,
                                     -1 if pmax is None else pmax, cidr, rule.id)
        return realised

    def _converge_rules(self, conn: Connection, spec: InstanceSpec, group_id: str, recorded: dict[str, RuleSpec],
                        ctx: _SerialContext, group_is_new: bool = False) -> dict[str, RuleSpec]:
        """Make the group hold exactly spec.rules: create what is missing, then delete what is stale.
        A group created by this attempt holds no ingress rule yet, so its rules are not listed."""
        realised = {} if group_is_new else self._realised_rules(conn, group_id, recorded)
        diff = common.diff_rules(spec.rules, realised)
        realised = dict(diff.keep)
        for rule in diff.to_create:
            cloud_id = self._create_rule(conn, rule, group_id)
            realised[rule.id] = dataclasses.replace(rule, cloud_id=cloud_id)
            ctx.event(f"rule {rule.protocol} {rule.from_port}-{rule.to_port} from {rule.cidr} added",
                      rule_ids={hid: r.cloud_id for hid, r in realised.items()})
        ordered = {rule.id: realised[rule.id] for rule in spec.rules}
        rule_ids = {hid: r.cloud_id for hid, r in ordered.items()}
        for stale in diff.to_delete:
            if stale.cloud_id is None:  # diff_rules only deletes realised rules; anything else is a bug
                raise EngineError(f"cannot delete rule {stale.id}: it has no Neutron rule id")
            common.delete_plain(conn.network, f"/security-group-rules/{stale.cloud_id}",
                                f"deleting security group rule {stale.cloud_id}")
            ctx.event(f"rule {stale.protocol} {stale.from_port}-{stale.to_port} from {stale.cidr} removed",
                      rule_ids=rule_ids)
        if ctx.journal.get("rule_ids") != rule_ids:  # not already written with the last event
            ctx.record(rule_ids=rule_ids)
        return ordered

    def _create_rule(self, conn: Connection, rule: RuleSpec, group_id: str) -> str:
        body = common.rule_body(rule, group_id)
        what = f"creating rule {rule.protocol} {rule.from_port}-{rule.to_port} from {rule.cidr}"
        try:
            return conn.network.create_security_group_rule(**body).id
        except os_exceptions.ConflictException as exc:
            existing = common.existing_rule_id(str(exc.details or ""))
            if existing is None:  # find the identical rule ourselves
                existing = next((r.id for r in common.ingress_rules(conn, group_id)
                                 if common.neutron_shape(r) == common.rule_shape(rule)), None)
            if existing is None:
                raise common.engine_error(what, exc) from None
            return existing
        except common.CLOUD_ERRORS as exc:
            raise common.engine_error(what, exc) from None

    def apply_rules(self, spec: InstanceSpec, current: Resources, ctx: OperationContext) -> Resources:
        ctx = _SerialContext(ctx)
        conn = self._conn()
        ctx.step("updating security group rules")
        group_id, created = self._ensure_group(conn, spec, ctx, current.secgroup_id)
        had_group = not created and group_id == current.secgroup_id  # the recorded group still exists
        if not had_group and current.server_id:
            self._attach_group(conn, current.server_id, group_id)
        recorded = dict(current.rules)
        for hid, cid in (ctx.journal.get("rule_ids") or {}).items():
            recorded.setdefault(hid, RuleSpec(hid, "", 0, 0, "", cid))
        rules = self._converge_rules(conn, spec, group_id, recorded, ctx, group_is_new=created)
        return dataclasses.replace(current, secgroup_id=group_id, rules=rules)

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
        if common.server_has_flavor(server, target) and server.status in SETTLED_SERVER:
            ctx.event(f"server {server_id} already has flavor {target.name}")
            return dataclasses.replace(current, server_id=server_id, server_status=server.status)
        if server.status not in SETTLED_SERVER:
            raise EngineError(f"cannot resize server {server_id} while it is {server.status}"
                              + (f": {common.server_failure(server)}" if server.status == "ERROR" else ""))

        ctx.step(f"resizing server to flavor {target.name}")
        call(f"resizing server {server_id} to flavor {target.name}", conn.compute.resize_server, server, target.id)
        ctx.record(resize_flavor_id=target.id)
        try:
            self._wait_server(conn, server_id, f"resize of server {server_id} to flavor {target.name}",
                              lambda s: s.status == "VERIFY_RESIZE"
                              or (s.status in SETTLED_SERVER and common.server_has_flavor(s, target)))
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
        server = self._wait_server(conn, server_id, f"server {server_id} to settle after the resize",
                                   lambda s: s.status in SETTLED_SERVER)
        if not common.server_has_flavor(server, target):
            raise EngineError(f"server {server_id} is {server.status} but its flavor is not {target.name} "
                              "after the resize")
        ctx.event(f"server {server_id} resized to flavor {target.name}")
        return dataclasses.replace(current, server_id=server_id, server_status=server.status)

    def _revert_resize(self, conn: Connection, server_id: str, ctx: _SerialContext) -> None:
        ctx.step("reverting resize")
        call(f"reverting resize of server {server_id}", conn.compute.revert_server_resize, server_id)
        self._wait_server(conn, server_id, f"server {server_id} to revert its resize",
                          lambda s: s.status in SETTLED_SERVER)

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
        volume = retried("reading volume", _plain_volume, conn, volume_id)
        if volume.status in ("extending", "detaching", "attaching"):  # a resumed attempt mid-step
            volume = self._wait_volume(conn, volume_id, f"volume {volume_id} to settle",
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
            self._ensure_attached(conn, server_id, volume_id, ctx, volume)
        ctx.record(volume_step="done")
        return dataclasses.replace(current, volume_id=volume_id)

    def _grow(self, conn: Connection, volume: Any, size: int, server_id: str | None, ctx: _SerialContext) -> Any:
        """Extend the volume (detaching first where Cinder needs it); returns the volume as last read."""
        attached = bool(volume.attachments)
        in_use_ok = os_utils.supports_microversion(conn.block_storage, IN_USE_EXTEND_MICROVERSION)
        if attached and not in_use_ok:
            ctx.step("detaching volume to extend it", volume_step="detaching")
            _detach_all(conn, volume)
            self._wait_volume(conn, volume.id, f"volume {volume.id} to detach",
                              lambda v: v.status == "available" and not v.attachments)
            ctx.event(f"volume {volume.id} detached (Cinder below {IN_USE_EXTEND_MICROVERSION} cannot extend "
                      "an attached volume)")
            attached = False
        ctx.step(f"extending volume to {size} GB", volume_step="extending", volume_target_size=size)
        call(f"extending volume {volume.id} to {size} GB", conn.block_storage.extend_volume, volume.id, size)
        settled = "in-use" if attached else "available"
        grown = self._wait_volume(conn, volume.id, f"extension of volume {volume.id} to {size} GB",
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
                self._ensure_attached(conn, server_id, volume_id, ctx)
                ctx.event(f"volume {volume_id} re-attached after a failed resize ({err})", "warning")
        except TransientError as exc:  # the resumed resize attaches it (it ends with the volume attached)
            ctx.event(f"volume {volume_id} could not be re-attached yet ({exc}); the retry of the resize will",
                      "warning")
        except (EngineError, *common.CLOUD_ERRORS) as exc:
            ctx.event(f"re-attaching volume {volume_id} after a failed resize failed: {common.error_text(exc)}",
                      "error")

    # delete --------------------------------------------------------------------------------------
    def delete(self, spec: InstanceSpec, current: Resources, ctx: OperationContext) -> None:
        ctx = _SerialContext(ctx)
        conn = self._conn()
        journal = ctx.journal
        ctx.step("deleting server")
        # After a provision that succeeded at its first attempt every resource it made is recorded
        # (base.PROVISION_CLEAN): the three look-ups by name for leftovers are then skipped.
        by_name = not (journal.get(PROVISION_CLEAN) and current.server_id and current.volume_id
                       and current.secgroup_id)
        server_ids = _ordered_ids(current.server_id, journal.get("server_id"),
                                  *(s.id for s in (common.find_servers(conn, spec.instance_id) if by_name else [])))
        for server_id in server_ids:
            self._delete_server(conn, server_id, ctx)
        ctx.step("deleting volume and security group")
        volume_ids = _ordered_ids(current.volume_id, journal.get("volume_id"),
                                  *(v.id for v in (common.find_volumes(conn, spec.instance_id) if by_name else [])))
        group_ids = _ordered_ids(current.secgroup_id, journal.get("secgroup_id"),
                                 *(g.id for g in (common.find_secgroups(conn, spec.instance_id) if by_name else [])))
        futures = [self._submit(self._delete_volume_thread, vid, ctx) for vid in volume_ids]
        futures += [self._submit(self._delete_group_thread, gid, ctx) for gid in group_ids]
        _gather(futures)

    def _delete_server(self, conn: Connection, server_id: str, ctx: _SerialContext) -> None:
        server = get_or_none("reading server", _plain_server, conn, server_id)
        if server is None:
            return
        fault_before = (server.fault or {}).get("message") if server.status == "ERROR" else None

        def delete_failed(s: Any) -> str | None:
            if s.status != "ERROR" or s.task_state == "deleting":
                return None
            if (s.fault or {}).get("message") == fault_before:
                return None
            return common.server_failure(s)

        common.delete_plain(conn.compute, f"/servers/{server_id}", f"deleting server {server_id}")
        wait_for_gone(lambda: _plain_server(conn, server_id), f"deletion of server {server_id}",
                      timeout=None, settings=self.settings, is_failed=delete_failed)
        ctx.event(f"server {server_id} deleted")

    def _delete_volume_thread(self, volume_id: str, ctx: _SerialContext) -> None:
        conn = self._conn()
        volume = get_or_none("reading volume", _plain_volume, conn, volume_id)
        if volume is None:
            return
        if volume.status != "deleting":
            _detach_all(conn, volume)
            if volume.attachments:
                self._wait_volume(conn, volume_id, f"volume {volume_id} to detach",
                                  lambda v: not v.attachments and v.status not in ("detaching", "in-use"))
            common.delete_plain(conn.block_storage, f"/volumes/{volume_id}", f"deleting volume {volume_id}")

        def delete_failed(v: Any) -> str | None:
            return common.volume_failure(v) if v.status == "error_deleting" else None

        wait_for_gone(lambda: _plain_volume(conn, volume_id), f"deletion of volume {volume_id}",
                      timeout=None, settings=self.settings, is_failed=delete_failed)
        ctx.event(f"volume {volume_id} deleted")

    def _delete_group_thread(self, group_id: str, ctx: _SerialContext) -> None:
        conn = self._conn()

        def try_delete() -> bool:
            """True once the delete went through; False while Neutron still sees a port using the group."""
            response = conn.network.delete(f"/security-groups/{group_id}")
            if response.status_code == 409:
                return False
            if response.status_code != 404:
                os_exceptions.raise_from_response(response)
            return True

        # Neutron deletes a group within the request (204, or 404 when it was gone already): no read after.
        wait_for(try_delete, bool, lambda _done: None, f"deletion of security group {group_id}",
                 timeout=min(self.settings.operation_timeout_seconds, 120.0), settings=self.settings,
                 after_change=False)
        ctx.event(f"security group {group_id} deleted")

    # describe ------------------------------------------------------------------------------------
    def describe(self, spec: InstanceSpec, current: Resources) -> CloudView:
        return common.read_view(self._conn(), spec, current.server_id, current.volume_id, current.secgroup_id)

    # plan ----------------------------------------------------------------------------------------
    def plan(self, kind: str, spec: InstanceSpec, current: Resources) -> list[PlannedStep]:
        """The cloud calls an operation would make, in order. Reads at most the API discovery documents."""
        server = current.server_id or "(new server)"
        volume = current.volume_id or "(new volume)"
        group = current.secgroup_id or "(new security group)"
        if kind == "provision":
            steps = [
                PlannedStep("GET /flavors, /images, /limits", spec.flavor_id,
                            "preflight: flavor, image, network exist; quota leaves room"),
                PlannedStep("POST /volumes", common.volume_name(spec.instance_id), f"{spec.volume_size} GB"),
                PlannedStep("POST /security-groups", common.secgroup_name(spec.instance_id)),
            ]
            steps += [PlannedStep("POST /security-group-rules", common.secgroup_name(spec.instance_id),
                                  _rule_text(r)) for r in spec.rules]
            steps += [
                PlannedStep("POST /servers", common.server_name(spec.instance_id),
                            f"flavor {spec.flavor_id}, image {spec.image_id}"),
                PlannedStep("POST /servers/{id}/os-volume_attachments", volume, "attach the data volume"),
            ]
            return steps
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
            steps += [PlannedStep("POST /security-group-rules", group, _rule_text(r)) for r in diff.to_create]
            steps += [PlannedStep("DELETE /security-group-rules/{id}", r.cloud_id or "", _rule_text(r))
                      for r in diff.to_delete]
            return steps
        if kind == "delete":
            return [PlannedStep("DELETE /servers/{id}", server),
                    PlannedStep("DELETE /volumes/{id}", volume),
                    PlannedStep("DELETE /security-groups/{id}", group, "its rules go with it")]
        raise EngineError(f"unknown operation kind {kind!r} for a plan; expected one of {', '.join(PLAN_KINDS)}")

    def _in_use_extend_supported(self) -> bool:
        try:
            return os_utils.supports_microversion(self._conn().block_storage, IN_USE_EXTEND_MICROVERSION)
        except common.CLOUD_ERRORS:
            return True


def _detach_all(conn: Connection, volume: Any) -> None:
    """Ask Nova to detach the volume from every server it is attached to (a server already gone is skipped);
    the caller waits for Cinder to show it detached."""
    for attachment in volume.attachments or []:
        owner = attachment.get("server_id")
        server = get_or_none("reading server", conn.compute.get_server, owner) if owner else None
        if server is not None:
            ignore_not_found(f"detaching volume {volume.id} from server {owner}",
                             conn.compute.delete_volume_attachment, server, volume.id, ignore_missing=False)


def _rule_text(rule: RuleSpec) -> str:
    return f"{rule.protocol} {rule.from_port}-{rule.to_port} from {rule.cidr}"


engines.register("natives", lambda settings, connections, _resolve: NativesEngine(settings, connections))
