"""The service commands behind Trove's datastore routes: databases, users, root, configuration groups and
their parameters.

Unlike instance changes these are synchronous: Hearth talks to the instance's database directly over the
network (short timeouts, `management.manager_for`), so the answer (202, as Trove's) is given once done; there
is no operation to queue and nothing for the task manager to resume.

Order of checks, so a refusal never leaves anything half done: the instance exists (404); the datastore is
one Hearth manages (400); every name, password and parameter is valid (400, before any connection); the
instance is ACTIVE and idle (422, in Trove's words); only then does Hearth connect. Datastore errors become
service errors by their TYPE (`_failure`), never their text. Every change is recorded as an Event on the
instance, never with a password in it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hearth import management, service
from hearth.datastores import parameters
from hearth.datastores import postgresql as pg
from hearth.db.models import Configuration, Event, Instance, OperatingStatus, Task, new_id, utcnow
from hearth.runtime import Runtime
from hearth.views import Links, datastore_version_id, instance_status, timestamp

T = TypeVar("T")
ANY_HOST = "%"
MAX_DESCRIPTION = 1024


class DatastoreFailure(service.ServiceError):
    """The database answered with an error that is neither the request's fault nor transient (500)."""

    status = 500


# --------------------------------------------------------------------------------------------------
# Reaching an instance's database.


def _failure(inst: Instance, err: pg.DatastoreError) -> service.ServiceError:
    """A datastore error as the API's answer, decided by its type (subclasses first)."""
    if isinstance(err, pg.Unreachable):
        return service.Unavailable(f"The database of instance {inst.id} cannot be reached now ({err}); nothing "
                                   "was changed, retry the request later.")
    if isinstance(err, pg.AuthFailed):
        return service.Unavailable(f"Hearth's credentials for the database of instance {inst.id} no longer work; "
                                   "nothing was changed. An operator must restore the instance's admin password.")
    if isinstance(err, pg.NotFound):
        return service.NotFound(_said(err))
    if isinstance(err, pg.Invalid):  # Conflict included: Trove answers 400 for what exists already
        return service.BadRequest(_said(err))
    return DatastoreFailure(f"The database of instance {inst.id} failed the request ({err.__class__.__name__}).")


def _said(err: Exception) -> str:
    """A datastore message as a sentence, bounded (it may quote the user's input)."""
    return service._sentence(service.shown(str(err), 300))


def _invalid(check: Callable[..., T], *args: Any) -> T:
    """Run a name or password check; its refusal is the user's 400 (before any connection)."""
    try:
        return check(*args)
    except pg.Invalid as err:
        raise service.BadRequest(_said(err)) from None


def _managed_instance(runtime: Runtime, project_id: str, instance_id: str) -> Instance:
    """The instance (404) whose datastore Hearth manages (400 naming the datastore otherwise)."""
    inst = service.get_instance(runtime, project_id, instance_id)
    if not management.is_managed(inst.datastore):
        raise service.BadRequest(f"Instance {inst.id} runs {inst.datastore}, which Hearth does not manage: "
                                 "databases, users, root and configuration groups are available for "
                                 f"{', '.join(sorted(management.MANAGED_DATASTORES))} instances.")
    return inst


def _check_ready(inst: Instance) -> None:
    """Trove's 422 for an instance that is not ACTIVE and idle."""
    if inst.task != Task.NONE or instance_status(inst) != "ACTIVE":
        raise service._not_ready(inst)


def _admin_password(runtime: Runtime, inst: Instance) -> str:
    if not inst.admin_password:
        raise service.BadRequest(f"Hearth does not manage the database of instance {inst.id}: its datastore "
                                 f"version ({inst.datastore} {inst.datastore_version}) is set `manage = false`, or "
                                 "the instance was created before Hearth managed databases.")
    box = getattr(runtime, "secrets", None)
    if box is None:
        raise service.Unavailable("Hearth's secret key is not loaded; the database cannot be reached.")
    try:
        return str(box.open(inst.admin_password))
    except Exception:  # a wrong key or a damaged token: never echo either
        raise service.Unavailable(f"The admin password of instance {inst.id} cannot be unsealed with Hearth's "
                                  "key; an operator must check the secret key file.") from None


def _manager(runtime: Runtime, inst: Instance) -> pg.PostgresManager:
    try:
        return management.manager_for(inst, _admin_password(runtime, inst))
    except management.NotManaged as err:
        raise service.BadRequest(service._sentence(str(err))) from None


@contextmanager
def _talking_to(inst: Instance) -> Iterator[None]:
    """Datastore errors raised inside become the API's answer."""
    try:
        yield
    except pg.DatastoreError as err:
        raise _failure(inst, err) from None


def _call(runtime: Runtime, inst: Instance, work: Callable[[pg.PostgresManager], T]) -> T:
    manager = _manager(runtime, inst)
    with _talking_to(inst):
        return work(manager)


def _read(runtime: Runtime, inst: Instance, work: Callable[[pg.PostgresManager], T]) -> T:
    """A read: any status in which the database answers will do (Trove lets reads through while it runs)."""
    if inst.task in Task.ERRORS or inst.task in (Task.BUILDING, Task.DELETING):
        raise service._not_ready(inst)
    return _call(runtime, inst, work)


def _write(runtime: Runtime, inst: Instance, work: Callable[[pg.PostgresManager], T], message: str) -> T:
    """A change: the instance must be ACTIVE and idle; the Event is recorded once the database did it."""
    _check_ready(inst)
    result = _call(runtime, inst, work)
    _record(runtime, inst.id, message)
    return result


def _record(runtime: Runtime, instance_id: str, message: str, level: str = "info") -> None:
    with runtime.sessions.begin() as session:
        session.add(Event(instance_id=instance_id, message=message, level=level))


# --------------------------------------------------------------------------------------------------
# Input.


def _items(value: Any, key: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        raise service.BadRequest(f"{key}: a non-empty list of objects is required.")
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise service.BadRequest(f"{key}: each item must be an object with a string 'name'.")
    return value


def user_name(ref: Any) -> str:
    """Trove's user reference `name` or `name@host`: PostgreSQL users are not host-specific, so only the
    host `%` (any) is accepted."""
    if not isinstance(ref, str):
        raise service.BadRequest("user name: must be a string.")
    name, at, host = ref.rpartition("@") if "@" in ref else (ref, "", ANY_HOST)
    if at and host != ANY_HOST:
        raise service.BadRequest(f"User {service.shown(ref)}: PostgreSQL users are not host-specific; use "
                                 f"'{service.shown(name)}' or '{service.shown(name)}@%'.")
    return _invalid(pg.check_user_name, name)


def _user_item(item: dict[str, Any]) -> dict[str, Any]:
    name = user_name(item["name"])
    host = item.get("host", ANY_HOST)
    if host not in (None, ANY_HOST):
        raise service.BadRequest(f"User {service.shown(name)}: PostgreSQL users are not host-specific; host must "
                                 "be '%' or absent.")
    password = _invalid(pg.check_password, item.get("password"), name)
    databases = item.get("databases") or []
    if not isinstance(databases, list):
        raise service.BadRequest(f"User {service.shown(name)}: databases must be a list of objects with a 'name'.")
    dbs = [_invalid(pg.check_database_name, d.get("name") if isinstance(d, dict) else d) for d in databases]
    return {"name": name, "password": password, "databases": [{"name": d} for d in dbs]}


def _no_repeats(kind: str, names: Iterable[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise service.BadRequest(f"{kind} {service.shown(name)} is named twice in the request.")
        seen.add(name)


# --------------------------------------------------------------------------------------------------
# Databases.


def list_databases(runtime: Runtime, project_id: str, instance_id: str) -> list[dict[str, Any]]:
    inst = _managed_instance(runtime, project_id, instance_id)
    return _read(runtime, inst, lambda m: m.list_databases())


def create_databases(runtime: Runtime, project_id: str, instance_id: str, databases: Any) -> None:
    inst = _managed_instance(runtime, project_id, instance_id)
    items = _items(databases, "databases")
    names = [_invalid(pg.check_database_name, item["name"]) for item in items]
    _no_repeats("Database", names)
    clean = [{k: v for k, v in item.items() if k in ("name", "character_set", "collate")} for item in items]
    _write(runtime, inst, lambda m: m.create_databases(clean), f"databases created: {', '.join(names)}")


def delete_database(runtime: Runtime, project_id: str, instance_id: str, name: str) -> None:
    inst = _managed_instance(runtime, project_id, instance_id)
    name = _invalid(pg.check_database_name, name)
    _write(runtime, inst, lambda m: m.delete_database(name), f"database deleted: {name}")


# --------------------------------------------------------------------------------------------------
# Users.


def list_users(runtime: Runtime, project_id: str, instance_id: str) -> list[dict[str, Any]]:
    inst = _managed_instance(runtime, project_id, instance_id)
    return _read(runtime, inst, lambda m: m.list_users())


def get_user(runtime: Runtime, project_id: str, instance_id: str, ref: str) -> dict[str, Any]:
    inst = _managed_instance(runtime, project_id, instance_id)
    name = user_name(ref)
    return _read(runtime, inst, lambda m: m.get_user(name))


def create_users(runtime: Runtime, project_id: str, instance_id: str, users: Any) -> None:
    inst = _managed_instance(runtime, project_id, instance_id)
    items = [_user_item(item) for item in _items(users, "users")]
    _no_repeats("User", (item["name"] for item in items))
    names = ", ".join(item["name"] for item in items)
    _write(runtime, inst, lambda m: m.create_users(items), f"users created: {names}")


def update_user(runtime: Runtime, project_id: str, instance_id: str, ref: str, changes: Any) -> None:
    """Trove's PUT /users/{name} {"user": {"name"?, "password"?, "host"?}}: rename and/or new password."""
    inst = _managed_instance(runtime, project_id, instance_id)
    name = user_name(ref)
    if not isinstance(changes, dict):
        raise service.BadRequest("user: an object with a new name and/or password is required.")
    new_name = user_name(changes["name"]) if changes.get("name") is not None else None
    if changes.get("host") not in (None, ANY_HOST):
        raise service.BadRequest("user.host: PostgreSQL users are not host-specific; host must be '%' or absent.")
    password = changes.get("password")
    if password is not None:
        _invalid(pg.check_password, password, new_name or name)
    if new_name is None and password is None:
        raise service.BadRequest("Nothing to update: give user.name and/or user.password.")
    what = [f"renamed to {new_name}"] if new_name and new_name != name else []
    what += ["password changed"] if password is not None else []
    _write(runtime, inst, lambda m: m.update_user(name, new_name=new_name, password=password),
           f"user {name} updated: {', '.join(what) or 'no change'}")


def change_passwords(runtime: Runtime, project_id: str, instance_id: str, users: Any) -> None:
    """Trove's PUT /users {"users": [{"name", "password"}]}: every password checked before any is changed."""
    inst = _managed_instance(runtime, project_id, instance_id)
    items = _items(users, "users")
    pairs = [(user_name(item["name"]), item.get("password")) for item in items]
    for name, password in pairs:
        _invalid(pg.check_password, password, name)
    _no_repeats("User", (name for name, _ in pairs))

    def change(manager: pg.PostgresManager) -> None:
        for name, password in pairs:
            manager.update_user(name, password=password)

    _write(runtime, inst, change, f"passwords changed: {', '.join(n for n, _ in pairs)}")


def delete_user(runtime: Runtime, project_id: str, instance_id: str, ref: str) -> None:
    inst = _managed_instance(runtime, project_id, instance_id)
    name = user_name(ref)
    _write(runtime, inst, lambda m: m.delete_user(name), f"user deleted: {name}")


def user_databases(runtime: Runtime, project_id: str, instance_id: str, ref: str) -> list[dict[str, Any]]:
    inst = _managed_instance(runtime, project_id, instance_id)
    name = user_name(ref)
    return _read(runtime, inst, lambda m: m.user_databases(name))


def grant(runtime: Runtime, project_id: str, instance_id: str, ref: str, databases: Any) -> None:
    inst = _managed_instance(runtime, project_id, instance_id)
    name = user_name(ref)
    dbs = [_invalid(pg.check_database_name, item["name"]) for item in _items(databases, "databases")]
    _write(runtime, inst, lambda m: m.grant(name, dbs), f"user {name} granted: {', '.join(dbs)}")


def revoke(runtime: Runtime, project_id: str, instance_id: str, ref: str, database: str) -> None:
    inst = _managed_instance(runtime, project_id, instance_id)
    name = user_name(ref)
    db = _invalid(pg.check_database_name, database)
    _write(runtime, inst, lambda m: m.revoke(name, db), f"user {name} revoked from {db}")


# --------------------------------------------------------------------------------------------------
# Root.


def root_enabled(runtime: Runtime, project_id: str, instance_id: str) -> bool:
    inst = _managed_instance(runtime, project_id, instance_id)
    return _read(runtime, inst, lambda m: m.root_enabled())


def root_enable(runtime: Runtime, project_id: str, instance_id: str, password: Any = None) -> dict[str, Any]:
    """Trove's `{"user": {"name": "root", "password": p}}`, the only time the password is shown."""
    inst = _managed_instance(runtime, project_id, instance_id)
    if password is not None:
        _invalid(pg.check_password, password, pg.ROOT_USER)
    chosen = _write(runtime, inst, lambda m: m.root_enable(password), "root enabled")
    return {"user": {"name": pg.ROOT_USER, "password": chosen}}


def root_disable(runtime: Runtime, project_id: str, instance_id: str) -> None:
    inst = _managed_instance(runtime, project_id, instance_id)
    _write(runtime, inst, lambda m: m.root_disable(), "root disabled")


# --------------------------------------------------------------------------------------------------
# Configuration groups.


def _schema(datastore: str, version: str) -> tuple[parameters.Parameter, ...]:
    schema = parameters.schema_for(datastore, version)
    if schema is None:
        raise service.BadRequest(f"Configuration parameters are not available for {datastore} {version}: "
                                 "Hearth knows none for this datastore version.")
    return schema


def _values(datastore: str, version: str, values: Any) -> dict[str, Any]:
    if not isinstance(values, dict):
        raise service.BadRequest("configuration.values: an object of parameter names to values is required.")
    try:
        return parameters.validate_values(_schema(datastore, version), values)
    except parameters.InvalidParameter as err:
        raise service.BadRequest(service._sentence(str(err))) from None


def _description(value: Any) -> str | None:
    return None if value is None else service.check_text(value, "configuration.description", MAX_DESCRIPTION)


def _get_group(session: Session, project_id: str, configuration_id: str) -> Configuration:
    group = session.get(Configuration, configuration_id) if service._looks_like_id(configuration_id) else None
    if group is None or group.deleted_at is not None or group.project_id != project_id:
        raise service.NotFound(f"Configuration group {service.shown(configuration_id)} could not be found.")
    return group


def _attached(session: Session, group_id: str) -> list[Instance]:
    return list(session.scalars(select(Instance).where(
        Instance.configuration_id == group_id, Instance.deleted_at.is_(None)).order_by(Instance.created_at)))


@dataclass(frozen=True)
class GroupView:
    """A configuration group with what its views need, read in one session."""

    group: Configuration
    instance_count: int

    def summary(self, links: Links) -> dict[str, Any]:
        """Trove's ConfigurationView (the list's entries)."""
        g = self.group
        return {"id": g.id, "name": g.name, "description": g.description, "created": timestamp(g.created_at),
                "updated": timestamp(g.updated_at),
                "datastore_version_id": datastore_version_id(g.datastore, g.datastore_version),
                "datastore_name": g.datastore, "datastore_version_name": g.datastore_version,
                "links": links.of(f"configurations/{g.id}")}

    def detail(self, links: Links) -> dict[str, Any]:
        """Trove's DetailedConfigurationView."""
        return {**self.summary(links), "values": dict(self.group.values or {}),
                "instance_count": self.instance_count, "datastore_version_number": self.group.datastore_version}


def _view(session: Session, group: Configuration) -> GroupView:
    count = session.scalar(select(func.count()).select_from(Instance).where(
        Instance.configuration_id == group.id, Instance.deleted_at.is_(None))) or 0
    return GroupView(group, int(count))


def create_configuration(runtime: Runtime, project_id: str, *, name: Any, values: Any, description: Any = None,
                         datastore: str | None = None, datastore_version: str | None = None) -> GroupView:
    """A new group for one datastore version (the default datastore's default version when not given)."""
    name = service.check_name(name)
    description = _description(description)
    if not runtime.settings.datastores:
        raise service.BadRequest("No datastores are configured.")
    ds = service.find_datastore(runtime, datastore) if datastore else runtime.settings.datastores[0]
    version = service.find_version(ds, datastore_version)
    clean = _values(ds.name, version.name, values)
    with runtime.sessions.begin() as session:
        group = Configuration(id=new_id(), project_id=project_id, name=name, description=description,
                              datastore=ds.name, datastore_version=version.name, values=clean)
        session.add(group)
        session.flush()
        return _view(session, group)


def list_configurations(runtime: Runtime, project_id: str) -> list[GroupView]:
    with runtime.sessions() as session:
        rows = session.scalars(select(Configuration).where(
            Configuration.project_id == project_id, Configuration.deleted_at.is_(None))
            .order_by(Configuration.created_at, Configuration.id))
        return [_view(session, g) for g in rows]


def get_configuration(runtime: Runtime, project_id: str, configuration_id: str) -> GroupView:
    with runtime.sessions() as session:
        return _view(session, _get_group(session, project_id, configuration_id))


def configuration_instances(runtime: Runtime, project_id: str, configuration_id: str) -> list[dict[str, str]]:
    with runtime.sessions() as session:
        _get_group(session, project_id, configuration_id)
        return [{"id": i.id, "name": i.name} for i in _attached(session, configuration_id)]


def update_configuration(runtime: Runtime, project_id: str, configuration_id: str, *, values: Any,
                         name: Any = None, description: Any = None, merge: bool = False) -> GroupView:
    """PUT (merge False: `values` replace the group's) or PATCH (merge True: merged into them). The new
    values are applied to every attached instance first (each must be ACTIVE and idle); the group is saved
    once all took them, so a refusal or an unreachable database leaves the group as it was."""
    new_name = service.check_name(name) if name is not None else None
    new_description = _description(description)
    with runtime.sessions() as session:
        group = _get_group(session, project_id, configuration_id)
        attached = _attached(session, group.id)
    given = _values(group.datastore, group.datastore_version, values)
    old = dict(group.values or {})
    target = {**old, **given} if merge else given
    removed = [k for k in old if k not in target]
    for inst in attached:
        _check_ready(inst)
    for inst in attached:
        _apply(runtime, inst, target, removed, f"configuration group {group.id} updated")
    with runtime.sessions.begin() as session:
        fresh = _get_group(session, project_id, configuration_id)
        fresh.values = target
        if new_name is not None:
            fresh.name = new_name
        if description is not None:
            fresh.description = new_description
        fresh.updated_at = utcnow()
        session.flush()
        return _view(session, fresh)


def delete_configuration(runtime: Runtime, project_id: str, configuration_id: str) -> None:
    """Refused (409) while any instance has the group attached: detach it first."""
    with runtime.sessions.begin() as session:
        group = _get_group(session, project_id, configuration_id)
        attached = _attached(session, group.id)
        if attached:
            raise service.Conflict(f"Configuration group {group.id} is attached to instance(s) "
                                   f"{', '.join(i.id for i in attached)}; detach it first.")
        group.deleted_at = utcnow()


def _apply(runtime: Runtime, inst: Instance, values: dict[str, Any], reset: Sequence[str], message: str,
           attach: bool = False, configuration_id: str | None = None) -> None:
    """Apply `values` (and reset `reset`) on the instance's database, then record the outcome: whether a
    restart is needed, the attached group (`attach`: `configuration_id`, None detaching) and an Event."""
    needs_restart = _call(runtime, inst, lambda m: m.apply_parameters(values, reset=reset))
    with runtime.sessions.begin() as session:
        row = session.get(Instance, inst.id)
        if row is None:
            return
        if attach:
            row.configuration_id = configuration_id
        if needs_restart:
            row.restart_required = True
            row.operating_status = OperatingStatus.RESTART_REQUIRED
        names = ", ".join([*values, *reset]) or "none"
        session.add(Event(instance_id=inst.id, message=f"{message}: parameters {names} applied"
                          + ("; a restart is required for them to take effect" if needs_restart else "")))


def attach_configuration(runtime: Runtime, project_id: str, instance_id: str, configuration_id: str | None) -> None:
    """PUT /instances/{id} {"instance": {"configuration": id | null}}: attach a group (its values applied on
    the database) or detach (the group's parameters reset to the server's defaults). A group of another
    datastore version, or a second group while one is attached, is a 400, as in Trove."""
    inst = service.get_instance(runtime, project_id, instance_id)
    if configuration_id is None:
        if inst.configuration_id is None:
            raise service.BadRequest(f"Instance {inst.id} has no configuration group attached.")
        with runtime.sessions() as session:
            group = session.get(Configuration, inst.configuration_id)
        names = list((group.values or {}) if group is not None else {})
        inst = _managed_instance(runtime, project_id, instance_id)
        _check_ready(inst)
        _apply(runtime, inst, {}, names, f"configuration group {inst.configuration_id} detached", attach=True)
        return
    if not isinstance(configuration_id, str):
        raise service.BadRequest("instance.configuration: a configuration group id (or null to detach) is required.")
    with runtime.sessions() as session:
        group = _get_group(session, project_id, configuration_id)
    if (group.datastore, group.datastore_version) != (inst.datastore, inst.datastore_version):
        raise service.BadRequest(
            f"Configuration group {group.id} is for {group.datastore} {group.datastore_version}; instance "
            f"{inst.id} runs {inst.datastore} {inst.datastore_version}. A group applies only to instances of its "
            "datastore version.")
    if inst.configuration_id not in (None, group.id):
        raise service.BadRequest(f"Instance {inst.id} already has a Configuration Group attached: "
                                 f"{inst.configuration_id}. Detach it first.")
    inst = _managed_instance(runtime, project_id, instance_id)
    _check_ready(inst)
    _apply(runtime, inst, dict(group.values or {}), [], f"configuration group {group.id} attached", attach=True,
           configuration_id=group.id)


def instance_configuration(runtime: Runtime, project_id: str, instance_id: str) -> dict[str, Any]:
    """Trove's GET /instances/{id}/configuration: the current value of every parameter Hearth knows for the
    instance's datastore version, read from its database."""
    inst = _managed_instance(runtime, project_id, instance_id)
    names = [p.name for p in _schema(inst.datastore, inst.datastore_version)]
    return _read(runtime, inst, lambda m: m.current_settings(names))


# --------------------------------------------------------------------------------------------------
# Parameters.


def _version_of(runtime: Runtime, datastore: str | None, version: str) -> tuple[str, str]:
    if datastore is None:
        ds, found = service.find_version_anywhere(runtime, version)
    else:
        ds = service.find_datastore(runtime, datastore)
        found = service.find_version(ds, version)
    return ds.name, found.name


def list_parameters(runtime: Runtime, datastore: str | None, version: str) -> list[dict[str, Any]]:
    """Trove's configuration-parameters of a version (by datastore and version, or by version id alone)."""
    ds, v = _version_of(runtime, datastore, version)
    vid = datastore_version_id(ds, v)
    return [parameters.parameter_view(p, vid) for p in _schema(ds, v)]


def get_parameter(runtime: Runtime, datastore: str | None, version: str, name: str) -> dict[str, Any]:
    ds, v = _version_of(runtime, datastore, version)
    found = next((p for p in _schema(ds, v) if p.name == name), None)
    if found is None:
        raise service.NotFound(f"No configuration parameter found by name {service.shown(name)}.")
    return parameters.parameter_view(found, datastore_version_id(ds, v))
