"""The database behind an instance, as the task manager sees it: an operation that (re)starts the server ends
when the database answers, a new instance gets the databases and users its create asked for, and a background
check keeps every idle instance's `operating_status` current.

Hearth talks to the database over the network (hearth.management), as its superuser, with the password it
sealed at create time; no guest agent. Errors go by type (hearth.datastores.postgresql): a database that
cannot be reached yet is waited for until `datastore_ready_seconds`, credentials that no longer work are a
terminal fault, and a request the database refuses is the create's fault, with the database's reason.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from hearth import management
from hearth.datastores.postgresql import AuthFailed, DatastoreError, PostgresManager, Unreachable
from hearth.db.models import Configuration, Event, Instance, OperatingStatus, SecurityGroupRule, Task, utcnow
from hearth.engines.base import EngineError, Resources
from hearth.runtime import Runtime

log = logging.getLogger(__name__)

HEALTH_TIMEOUT = 3.0  # seconds one background check may take to connect
HEALTH_THREADS = 16  # checks run side by side: each mostly waits on the network
FINE_POLL, FINE_PERIOD = 0.02, 5.0  # seconds between attempts while the database is coming up, for how long


@dataclass
class Settled:
    """What an operation that restarted the database leaves on the instance."""

    operating_status: str
    restart_required: bool = False
    bootstrapped: bool = False
    used_bytes: int | None = None


def manager(runtime: Runtime, inst: Instance, addresses: list[dict[str, Any]] | None = None,
            connect_timeout: float = 5.0) -> PostgresManager | None:
    """The instance's database manager, or None when Hearth does not manage it (no password recorded: a
    datastore version Hearth does not manage, or an instance from before it managed databases) or it has no
    address yet."""
    if not inst.admin_password:
        return None
    try:
        return management.manager_for(inst, runtime.secrets.open(inst.admin_password), connect_timeout, addresses)
    except management.NotManaged:
        return None


def wait_until_answering(runtime: Runtime, db: PostgresManager, step: Callable[[str], None]) -> int:
    """Poll the database until it answers (returns the bytes it uses); EngineError when it refuses Hearth's
    credentials or has not answered within `datastore_ready_seconds`."""
    started = time.monotonic()
    deadline = started + runtime.settings.datastore_ready_seconds
    step(f"waiting for the database at {db.endpoint.host}:{db.endpoint.port} to answer")
    while True:
        try:
            return db.health()
        except AuthFailed:
            raise EngineError(f"the database at {db.endpoint.host}:{db.endpoint.port} refuses Hearth's "
                              "credentials (its superuser password was changed outside Hearth)") from None
        except Unreachable as err:
            if time.monotonic() + _next_poll(time.monotonic() - started) > deadline:
                raise EngineError(f"the database did not answer within "
                                  f"{runtime.settings.datastore_ready_seconds:g} s: {err}") from None
        time.sleep(_next_poll(time.monotonic() - started))


def _next_poll(waited: float) -> float:
    """How long to wait before the next attempt: a refused connection costs a millisecond, so the first
    seconds (a guest image's database starts in well under one) are polled finely and the end is seen within
    FINE_POLL; a stock image's first boot (cloud-init installs PostgreSQL: minutes) backs off to a second."""
    return FINE_POLL if waited < FINE_PERIOD else min(1.0, FINE_POLL * (1 + (waited - FINE_PERIOD)))


def settle(runtime: Runtime, inst: Instance, kind: str, result: Resources | None,
           restart: Callable[[], Resources], step: Callable[[str], None],
           event: Callable[[str], None]) -> Settled | None:
    """After an operation that (re)started the server: wait for the database; on a new instance, create its
    databases and users and apply its configuration group (restarting once if the group needs it). None when
    Hearth does not manage the instance's database."""
    addresses = result.addresses if result is not None and result.addresses is not None else inst.addresses
    db = manager(runtime, inst, addresses)
    if db is None:
        return None
    used = wait_until_answering(runtime, db, step)
    # Every one of these operations restarted the database process, which applied any pending setting.
    outcome = Settled(OperatingStatus.HEALTHY, used_bytes=used)
    if kind != "provision":
        return outcome
    try:
        if inst.bootstrap:
            _bootstrap(db, json.loads(runtime.secrets.open(inst.bootstrap)), event)
            outcome.bootstrapped = True
        if inst.configuration_id and _configure(runtime, db, inst.configuration_id, event):
            step("restarting the database for its configuration group")
            restart()
            wait_until_answering(runtime, db, step)
    except Unreachable as err:
        raise EngineError(f"the database stopped answering while Hearth set it up: {err}") from None
    except DatastoreError as err:
        raise EngineError(f"the database refused the instance's set-up: {err}") from None
    return outcome


def _bootstrap(db: PostgresManager, wanted: dict[str, Any], event: Callable[[str], None]) -> None:
    """The create's databases, then its users (with their grants); what an earlier attempt made is kept."""
    have_dbs = {d["name"] for d in db.list_databases()}
    databases = [d for d in wanted.get("databases") or [] if d["name"] not in have_dbs]
    if databases:
        db.create_databases(databases)
        event(f"databases created: {', '.join(d['name'] for d in databases)}")
    have_users = {u["name"] for u in db.list_users()}
    users = [u for u in wanted.get("users") or [] if u["name"] not in have_users]
    if users:
        db.create_users(users)
        event(f"users created: {', '.join(u['name'] for u in users)}")


def _configure(runtime: Runtime, db: PostgresManager, configuration_id: str, event: Callable[[str], None]) -> bool:
    """Apply the instance's configuration group; True when the database needs a restart for it."""
    with runtime.sessions() as session:
        group = session.get(Configuration, configuration_id)
        values = dict(group.values) if group is not None and group.deleted_at is None else {}
    if not values:
        return False
    needs_restart = db.apply_parameters(values)
    event(f"configuration group {configuration_id} applied ({', '.join(sorted(values))})"
          + ("; the database restarts for it" if needs_restart else ""))
    return needs_restart


def follow_access(runtime: Runtime, inst: Instance, params: dict[str, Any], event: Callable[..., None]) -> None:
    """After an access change on a stock image: its pg_hba.conf follows the new CIDRs (images that take the
    adminPass filter with the security group alone). A database that cannot take it now keeps its old file;
    the security group already holds the change, and the event says what to do."""
    if not management.boots_with_cloud_init(runtime.settings, inst) or not inst.admin_password:
        return
    db = manager(runtime, inst)
    if db is None:
        return
    managed = [r for r in inst.rules if r.purpose == SecurityGroupRule.MANAGEMENT]
    rules = [SecurityGroupRule(cidr=r["cidr"], purpose=SecurityGroupRule.ACCESS) for r in params.get("rules", [])
             if r["id"] not in {m.id for m in managed}] + managed
    try:
        db.replace_hba(management.hba_text(runtime.settings, inst, rules, runtime.secrets.open(inst.admin_password)))
        event("pg_hba.conf rewritten for the new access")
    except DatastoreError as err:
        event(f"pg_hba.conf not rewritten ({err}); the security group holds the new access, and the next "
              "access change rewrites it", "warning")


# --------------------------------------------------------------------------------------------------
# The background check.


def _status_of(runtime: Runtime, inst: Instance) -> tuple[str, str | None, int | None]:
    """(operating status, why, bytes used) of one idle instance, from one connection attempt."""
    if (inst.server_status or "").upper() in ("SHUTOFF", "SHUTDOWN"):
        return OperatingStatus.SHUTDOWN, "the server is stopped", None
    db = manager(runtime, inst, connect_timeout=HEALTH_TIMEOUT)
    if db is None:
        return inst.operating_status, None, None
    try:
        used = db.health()
    except AuthFailed:
        return OperatingStatus.FAILED, "the database refuses Hearth's credentials", None
    except Unreachable as err:
        return OperatingStatus.SHUTDOWN, f"the database does not answer: {err}", None
    return (OperatingStatus.RESTART_REQUIRED if inst.restart_required else OperatingStatus.HEALTHY), None, used


def check_once(runtime: Runtime) -> int:
    """One pass over the idle, ACTIVE instances whose database Hearth manages: connect to each (side by side),
    record each change of `operating_status` with an event. Returns how many changed."""
    with runtime.sessions() as session:
        idle = list(session.scalars(select(Instance).where(
            Instance.deleted_at.is_(None), Instance.task == Task.NONE, Instance.admin_password.is_not(None))))
    if not idle:
        return 0
    with ThreadPoolExecutor(max_workers=min(HEALTH_THREADS, len(idle)), thread_name_prefix="hearth-health") as pool:
        found = list(pool.map(lambda inst: _status_of(runtime, inst), idle))
    changed = 0
    now = utcnow()
    for inst, (status, why, used) in zip(idle, found, strict=True):
        if used is not None and used != inst.volume_used_bytes:
            with runtime.sessions.begin() as session:
                session.execute(update(Instance).where(Instance.id == inst.id).values(volume_used_bytes=used)
                                .execution_options(synchronize_session=False))
        if status == inst.operating_status:
            continue
        with runtime.sessions.begin() as session:
            result = session.execute(
                update(Instance).where(Instance.id == inst.id, Instance.task == Task.NONE,
                                       Instance.operating_status == inst.operating_status)
                .values(operating_status=status, service_status_updated=now)
                .execution_options(synchronize_session=False))
            if result.rowcount != 1:
                continue  # an operation took the instance meanwhile: it sets the status itself
            level = "info" if status in (OperatingStatus.HEALTHY, OperatingStatus.RESTART_REQUIRED) else "warning"
            session.add(Event(instance_id=inst.id, level=level,
                              message=f"database is {status} (was {inst.operating_status or 'unknown'})"
                              + (f": {why}" if why else "")))
        changed += 1
    return changed
