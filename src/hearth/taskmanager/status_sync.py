"""Status sync: keeps each idle instance's server status current between operations.

Trove reads Nova on every request; Hearth records the server status after each operation and refreshes
it here in the background, with one paginated server list per pass, whatever the instance count. A
server that goes to ERROR, stops, or disappears outside an operation then shows as such, with the cloud's
reason as the instance's fault and an event, instead of an instance that looks ACTIVE forever.

Engine-neutral: it only reads Nova (the orchestrator's servers are Nova servers too), and it never touches
an instance while an operation owns it (every write is conditional on the task still being idle and the
status still being the one read).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select, update

from hearth.db.models import Event, Instance, Task, utcnow
from hearth.engines import common
from hearth.runtime import Runtime

log = logging.getLogger(__name__)

SYNC_FAULT_PREFIX = "The cloud reports: "  # faults this sync set, and may clear when the server recovers
GONE = "DELETED"


def _fault_of(server: Any | None, server_id: str) -> str | None:
    if server is None:
        return f"{SYNC_FAULT_PREFIX}server {server_id} no longer exists."
    if (server.status or "").upper() == "ERROR":
        reason = common.server_failure(server) or "no reason given"
        return f"{SYNC_FAULT_PREFIX}server {server_id} is in ERROR: {reason}"
    return None


def sync_once(runtime: Runtime) -> int:
    """One pass: read every server once, update the idle instances whose server changed. Returns how many."""
    with runtime.sessions() as session:
        idle = session.execute(
            select(Instance.id, Instance.server_id, Instance.server_status, Instance.fault).where(
                Instance.deleted_at.is_(None), Instance.task == Task.NONE, Instance.server_id.is_not(None)
            )
        ).all()
    if not idle:
        return 0
    conn = runtime.connections.get()
    with common.cloud_call("listing servers for the status sync"):
        servers = {server.id: server for server in conn.compute.servers(details=True)}
    changed = 0
    for instance_id, server_id, recorded, fault in idle:
        server = servers.get(server_id)
        status = (server.status or "").upper() if server is not None else GONE
        if status == (recorded or "").upper():
            continue
        new_fault = _fault_of(server, server_id)
        if new_fault is None and fault and fault.startswith(SYNC_FAULT_PREFIX):
            new_fault = None  # the server recovered: the fault this sync set no longer holds
        elif new_fault is None:
            new_fault = fault  # a fault an operation recorded stays until the next operation
        with runtime.sessions() as session, session.begin():
            result = session.execute(
                update(Instance)
                .where(Instance.id == instance_id, Instance.task == Task.NONE, Instance.server_status == recorded)
                .values(server_status=status, fault=new_fault,
                        fault_at=utcnow() if new_fault and new_fault != fault else Instance.fault_at)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:
                continue  # an operation took the instance meanwhile: it records the status itself
            level = "error" if status in ("ERROR", GONE) else "info"
            session.add(Event(instance_id=instance_id, level=level,
                              message=new_fault if level == "error" and new_fault else
                              f"server {server_id} is now {status} (was {recorded or 'unknown'})"))
        changed += 1
    return changed
