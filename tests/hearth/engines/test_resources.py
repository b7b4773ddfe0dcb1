"""The instance's composition declared once (resources.KINDS): a kind added through the declaration alone is
built, found, drift-checked, rendered into HOT, adopted and deleted by every engine; and the natives dry run
names exactly the writes the operation then sends."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest
from openstack import exceptions as os_exceptions
from openstack.connection import Connection

from hearth.engines import common, heat, natives_steps, resources, templates
from hearth.engines.base import InstanceSpec, LocalContext, PlannedStep, Resources, RuleSpec
from hearth.engines.natives_steps import Made, StepEnv
from hearth.engines.resources import Kind, Observed

BIGGER_FLAVOR = "3"  # m1.medium (the instances start on m1.small)

PROBE = "probe"


def _probe_name(instance_id: str) -> str:
    return f"hearth-{instance_id}-probe"


def _find_probes(conn: Connection, instance_id: str) -> list[Any]:
    name = _probe_name(instance_id)
    found = common.retried(f"listing security groups named {name}",
                           lambda: list(conn.network.security_groups(name=name)))
    return [g for g in found if g.name == name]


def _probe_drift(seen: Observed) -> list[str]:
    live = seen.live.get(PROBE)
    wanted = _probe_name(seen.spec.instance_id)
    if live is None or live.get("name") == wanted:
        return []
    return [f"probe group {live.get('id')} is named {live.get('name')}, not {wanted}"]


def _create_probe(env: StepEnv) -> Made:
    conn = env.conn()
    group = None if env.fresh else next(iter(_find_probes(conn, env.spec.instance_id)), None)
    if group is None:
        group = common.call("creating the probe group", conn.network.create_security_group,
                            name=_probe_name(env.spec.instance_id), description="throwaway kind")
    env.ctx.record(probe_id=group.id)
    return Made(group.id)


#: A throwaway kind: a second, empty security group. Everything about it is in this one entry.
PROBE_KIND = Kind(
    key=PROBE, label="probe group", name=_probe_name, find=_find_probes,
    read=resources.plain_reader("network", "security-groups", "security_group", "probe group"),
    view=lambda _conn, live: {"id": live.get("id"), "name": live.get("name")},
    drift=_probe_drift,
    logical=PROBE,
    hot=lambda spec: {"type": "OS::Neutron::SecurityGroup", "properties": {
        "name": _probe_name(spec.instance_id), "description": "throwaway kind", "rules": []}},
    output="probe_id", output_description="the probe group's id",
    create=_create_probe,
    delete=lambda env, group_id: natives_steps.delete_neutron(env, "security-groups", group_id, "probe group"),
    delete_phase=1,
    plan_create=lambda spec, _cur: [PlannedStep("POST /security-groups", _probe_name(spec.instance_id))],
    plan_delete=lambda _cur, group_id: [PlannedStep("DELETE /security-groups/{id}", group_id or "(new probe)")],
)


@pytest.fixture
def probe_kind():
    with resources.registered(PROBE_KIND) as kind:
        yield kind


def _stack_resource_ids(os_conn: Connection, stack_id: str) -> dict[str, str]:
    stack = heat.read_stack(os_conn, stack_id)
    assert stack is not None
    return {r.name: r.physical_resource_id for r in os_conn.orchestration.resources(stack)}


def test_a_kind_declared_once_is_built_found_checked_and_deleted_by_every_engine(
        probe_kind, engine, make_spec, os_conn, cloud_state):
    spec = make_spec()
    template = templates.build(spec)
    assert template["resources"][PROBE]["type"] == "OS::Neutron::SecurityGroup"  # rendered into HOT
    assert template["outputs"]["probe_id"]["value"] == {"get_resource": PROBE}

    ctx = LocalContext()
    res = engine.provision(spec, ctx)

    probe_id = res.extra_ids[PROBE]
    assert ctx.journal["probe_id"] == probe_id
    assert os_conn.network.get_security_group(probe_id).name == _probe_name(spec.instance_id)  # in the cloud
    if res.stack_id:  # a stack engine made it as part of the stack
        assert _stack_resource_ids(os_conn, res.stack_id)[PROBE] == probe_id
    found = [g.id for kind, g in resources.find_all(os_conn, spec.instance_id) if kind is probe_kind]
    assert found == [probe_id]
    assert engine.describe(spec, res).extra[PROBE]["id"] == probe_id
    assert engine.differences(spec, res) == []

    os_conn.network.update_security_group(probe_id, name="renamed-behind-hearths-back")
    drift = engine.differences(spec, res)
    assert drift == [f"probe group {probe_id} is named renamed-behind-hearths-back, not "
                     f"{_probe_name(spec.instance_id)}"], drift

    engine.delete(spec, res, LocalContext())
    with pytest.raises(os_exceptions.NotFoundException):
        os_conn.network.get_security_group(probe_id)
    assert cloud_state.hearth_leftovers() == {}


def test_a_declared_kind_deleted_outside_hearth_shows_as_gone(probe_kind, natives, make_spec, os_conn):
    spec = make_spec()
    res = natives.provision(spec, LocalContext())
    os_conn.network.delete_security_group(res.extra_ids[PROBE])
    assert natives.differences(spec, res) == [f"probe group {res.extra_ids[PROBE]} no longer exists"]
    natives.delete(spec, res, LocalContext())


def test_a_declared_kind_goes_into_the_adopt_data(probe_kind, natives, make_spec, os_conn, settings, connections):
    from hearth.engines.migration import MigrationEngine

    migration = MigrationEngine(settings, connections, natives=natives)
    spec = make_spec()
    res = natives.provision(spec, LocalContext())
    adopted = migration.adopt(spec, res, LocalContext())
    assert adopted.extra_ids[PROBE] == res.extra_ids[PROBE]
    assert _stack_resource_ids(os_conn, adopted.stack_id)[PROBE] == res.extra_ids[PROBE]  # nothing new made
    migration.delete(spec, adopted, LocalContext())
    with pytest.raises(os_exceptions.NotFoundException):
        os_conn.network.get_security_group(res.extra_ids[PROBE])
    migration.close()


# --------------------------------------------------------------------------------------------------
# The natives dry run names exactly the writes the operation sends.

_ID = re.compile(r"^(?:[0-9a-fA-F]{32}|[0-9a-fA-F-]{36}|\{[a-z_]+\})$")
_SERVICE_ROOTS = ("compute", "v2.1", "v2.0", "v3", "volume", "networking", "network")


def _normalized(write: str) -> str:
    """`POST /v3/<project>/volumes/<id>/action` -> `POST /volumes/{id}/action` (and `{volume_id}` -> `{id}`)."""
    method, path = write.split(" ", 1)
    parts = [p for p in path.split("?")[0].split("/") if p]
    while parts and (parts[0] in _SERVICE_ROOTS or _ID.match(parts[0])):
        parts.pop(0)  # the service's root, version and project
    return f"{method} /" + "/".join("{id}" if _ID.match(p) else p for p in parts)


def _planned_writes(steps: list[PlannedStep]) -> Counter[str]:
    writes = [" ".join(s.action.split()[:2]) for s in steps if s.action.split()[0] in ("POST", "PUT", "PATCH",
                                                                                        "DELETE")]
    return Counter(_normalized(w) for w in writes)


def _sent(cloud_state: Any, seq: int) -> Counter[str]:
    return Counter(_normalized(w) for w in cloud_state.writes_since(seq))


def _check(natives: Any, cloud_state: Any, kind: str, spec: InstanceSpec, current: Resources,
           run: Any) -> Any:
    planned = _planned_writes(natives.plan(kind, spec, current))
    seq = cloud_state.request_seq()
    result = run()
    assert planned and _sent(cloud_state, seq) == planned, (kind, planned)
    return result


def test_the_natives_plan_names_exactly_the_writes_sent(natives, make_spec, cloud_state):
    spec = make_spec(rules=(RuleSpec("rule-pg", "tcp", 5432, 5432, "10.0.0.0/24"),
                            RuleSpec("rule-ssh", "tcp", 22, 22, "192.168.7.0/24")))
    res = _check(natives, cloud_state, "provision", spec, Resources(),
                 lambda: natives.provision(spec, LocalContext()))
    bigger = spec.replace(flavor_id=BIGGER_FLAVOR)
    res = _check(natives, cloud_state, "resize_flavor", bigger, res,
                 lambda: natives.resize_flavor(bigger, res, LocalContext()))
    grown = bigger.replace(volume_size=4)
    res = _check(natives, cloud_state, "resize_volume", grown, res,
                 lambda: natives.resize_volume(grown, res, LocalContext()))
    changed = grown.replace(rules=(RuleSpec("rule-pg", "tcp", 5432, 5432, "10.1.0.0/24"),))
    res = _check(natives, cloud_state, "apply_rules", changed, res,
                 lambda: natives.apply_rules(changed, res, LocalContext()))
    _check(natives, cloud_state, "delete", changed, res, lambda: natives.delete(changed, res, LocalContext()))
    assert cloud_state.hearth_leftovers() == {}


def test_the_natives_plan_of_a_declared_kind_names_its_writes(probe_kind, natives, make_spec, cloud_state):
    spec = make_spec()
    res = _check(natives, cloud_state, "provision", spec, Resources(),
                 lambda: natives.provision(spec, LocalContext()))
    _check(natives, cloud_state, "delete", spec, res, lambda: natives.delete(spec, res, LocalContext()))


def test_the_task_manager_records_a_declared_kind_and_its_delete_removes_it(probe_kind, hearth_runtime):
    """Through the service and the task manager (no engine code, no column of its own): the kind's id is
    recorded with the instance (extra_resource_ids) and the instance's delete removes the resource."""
    from hearth import service
    from hearth.db.models import Instance
    from hearth.taskmanager import TaskManager

    inst = service.create_instance(hearth_runtime, "proj-probe", name="probed", flavor_ref="1",
                                   volume_size=1).record(hearth_runtime)
    manager = TaskManager(hearth_runtime, workers=2)
    assert manager.run_until_idle(60)
    conn = hearth_runtime.connections.get()
    groups = _find_probes(conn, inst.id)
    assert len(groups) == 1
    with hearth_runtime.sessions() as session:
        recorded = session.get(Instance, inst.id)
        assert recorded.task == "NONE" and recorded.extra_resource_ids == {PROBE: groups[0].id}

    service.delete_instance(hearth_runtime, "proj-probe", inst.id).record(hearth_runtime)
    assert manager.run_until_idle(60)
    assert _find_probes(conn, inst.id) == []
    with pytest.raises(os_exceptions.NotFoundException):
        conn.network.get_security_group(groups[0].id)
