"""What `reconcile` does the same way on every engine, before and after the engine's own repair.

Reconcile converges the cloud to what Hearth records (natives applies the difference itself; the stack
engines ask Heat for a check and a converging update). Around that, the same rules hold for every engine:

- an instance whose server or data volume is gone cannot be repaired: the database lived there, and making
  a new one would hide the loss. The operation fails and says so; delete the instance.
- a server stopped outside Hearth is started through Nova (Heat has no start, and its check would otherwise
  find the server not ACTIVE and have the update replace it);
- a data volume grown outside Hearth keeps its size: Cinder cannot shrink a volume and the data is on it, so
  the record takes the cloud's size (with an event saying so) instead of the cloud taking the record's;
- after the repair the cloud is compared again, and what still differs fails the operation with the list.
"""

from __future__ import annotations

from collections.abc import Mapping

from openstack.connection import Connection

from hearth.config import Settings
from hearth.engines import common, natives_steps, resources
from hearth.engines.base import EngineError, InstanceSpec, OperationContext, PlannedStep
from hearth.engines.common import WaitKind

#: The kinds without which nothing can be repaired: they hold the database.
IRREPLACEABLE = ("server", "volume")


def prepare(conn: Connection, settings: Settings, spec: InstanceSpec, ids: Mapping[str, str],
            ctx: OperationContext) -> InstanceSpec:
    """The desired state to converge to: the recorded one, with a volume grown outside Hearth kept grown; a
    stopped server is started. Refuses an instance whose server or volume is gone (see the module docstring)."""
    missing = resources.missing_required(ids)
    if missing:
        raise EngineError(f"cannot reconcile: Hearth has no recorded {', '.join(k.label for k in missing)} for "
                          "the instance (it was never fully built); delete it")
    live = resources.read_live(conn, {key: ids[key] for key in IRREPLACEABLE})
    gone = [f"{key} {ids[key]}" for key in IRREPLACEABLE if live.get(key) is None]
    if gone:
        raise EngineError(f"cannot reconcile: the instance's {' and '.join(gone)} no longer exist(s) in the cloud; "
                          "its data lived there, so nothing can be rebuilt in its place. Delete the instance")
    server = live["server"] or {}
    if server.get("status") == "SHUTOFF":
        ctx.step(f"starting server {ids['server']}, stopped outside Hearth")
        common.call(f"starting server {ids['server']}", conn.compute.start_server, ids["server"])
        natives_steps.wait_server(conn, settings, ids["server"], WaitKind.SERVER_SETTLE,
                                  f"server {ids['server']} to start", lambda s: s.status == "ACTIVE")
        ctx.event(f"server {ids['server']} was stopped outside Hearth; started it")
    volume = live["volume"] or {}
    size = int(volume.get("size") or spec.volume_size)
    if size > spec.volume_size:
        ctx.event(f"volume {ids['volume']} was grown outside Hearth to {size} GB (Hearth recorded "
                  f"{spec.volume_size} GB); Cinder cannot shrink a volume and the data is on it, so Hearth now "
                  f"records {size} GB", "warning")
        return spec.replace(volume_size=size)
    return spec


def verify(conn: Connection, spec: InstanceSpec, ids: Mapping[str, str], ctx: OperationContext) -> None:
    """After the repair: the cloud holds the desired state, or the operation fails with what still differs."""
    left = resources.differences(conn, spec, ids)
    if left:
        raise EngineError("reconcile could not converge the cloud: " + "; ".join(left))
    ctx.event("reconciled: the cloud holds what Hearth records")


def planned(found: list[str]) -> list[PlannedStep]:
    """A reconcile's dry run: what it would repair (the differences found now), each as a step."""
    if not found:
        return [PlannedStep("nothing to repair", "instance", "the cloud holds what Hearth records")]
    return [PlannedStep("repair", getattr(difference, "kind", "instance"), str(difference)) for difference in found]
