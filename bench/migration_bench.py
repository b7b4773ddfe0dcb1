"""Fleet migration onto Heat (issue 15): how fast `hearth admin migrate --to orchestrator` moves a fleet,
against adopting the same kind of instances one by one with bare openstacksdk and Heat's stack adopt.

    .venv/bin/python bench/migration_bench.py [--fleet 200] [--floor 50] [--in-flight 10] [--json-out F]

1. fakecloud (zero delays) and `hearth serve` (engine natives, a datastore version Hearth does not manage, so
   no database process per instance): `fleet` instances in project demo and `floor` in project floor, built.
2. Hearth restarted with engine = migration; as the cloud administrator, POST /mgmt/migrations
   {"to": "orchestrator", "project": demo, "max_in_flight": in_flight}; timed until the migration is finished
   (polled every 50 ms). Rate: instances moved per second; every instance must be moved and verified (same ids,
   no differences), none refused.
3. The floor: the `floor` project's instances adopted one after another by bare openstacksdk (the template is
   Hearth's HOT for the instance, built locally; the existing ids found through Nova, Cinder and Neutron; then
   Heat's stack adopt, waited until ADOPT_COMPLETE at 10 ms polls). Rate: instances per second.
Goal: Hearth's rate >= 0.7 x the floor's, and no instance refused.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from _harness import Report  # noqa: E402
from _hearth import BenchError, HearthClient, Stack, diff_counts  # noqa: E402

BENCH_RUNS = 1  # one run takes a few minutes (hundreds of instances built, then moved)


def _client(stack: Stack, user: str, password: str, project: str) -> HearthClient:
    from keystoneauth1 import session as ks_session
    from keystoneauth1.identity import v3

    auth = v3.Password(auth_url=f"{stack.cloud_url}/v3", username=user, password=password, project_name=project,
                       user_domain_name="Default", project_domain_name="Default")
    sess = ks_session.Session(auth=auth)
    return HearthClient(stack, f"{stack.api_url}/v1.0/{sess.get_project_id()}", sess.get_token())


def _build(client: HearthClient, prefix: str, count: int) -> list[str]:
    ids = [client.create(f"{prefix}-{i}") for i in range(count)]
    client.wait_all(ids, "ACTIVE", timeout=900)
    return ids


def _floor(stack: Stack, ids: list[str]) -> float:
    """Seconds to adopt `ids` one by one with bare openstacksdk and Heat's adopt."""
    import openstack.config
    from openstack.connection import Connection

    from hearth.engines import resources, templates
    from hearth.engines.base import InstanceSpec, Resources, RuleSpec
    from hearth.engines.common import find_secgroups, find_servers, find_volumes

    config = openstack.config.OpenStackConfig(config_files=[str(stack.clouds_yaml)], load_envvars=False)
    conn = Connection(config=config.get_one(cloud="fakecloud"))
    started = time.perf_counter()
    for instance_id in ids:
        server = find_servers(conn, instance_id)[0]
        volume = find_volumes(conn, instance_id)[0]
        group = find_secgroups(conn, instance_id)[0]
        rules = tuple(RuleSpec(r.id, "tcp", 5432, 5432, r.remote_ip_prefix)
                      for r in conn.network.security_group_rules(security_group_id=group.id)
                      if r.direction == "ingress")
        spec = InstanceSpec(instance_id=instance_id, name=server.name.split("-", 6)[-1], project_id="floor",
                            flavor_id=server.flavor.original_name or "1", image_id=server.image.id, volume_size=1,
                            rules=rules)
        current = Resources(server_id=server.id, volume_id=volume.id, secgroup_id=group.id)
        template = templates.build(spec)
        entries = resources.adopt_entries(conn, spec, resources.ids_of(current))
        data = {"name": templates.stack_name(instance_id), "action": "CREATE", "status": "COMPLETE",
                "template": template, "environment": {"parameters": templates.parameters(spec)},
                "resources": {logical: {"name": logical, "type": d["type"], "action": "CREATE", "status": "COMPLETE",
                                        "metadata": {}, "resource_data": {}, **entries.get(logical, {})}
                              for logical, d in template["resources"].items()}}
        name = templates.stack_name(instance_id)
        answer = conn.orchestration.post("/stacks", json={
            "stack_name": name, "template": template, "parameters": templates.parameters(spec),
            "adopt_stack_data": json.dumps(data), "disable_rollback": True})
        if answer.status_code != 201:
            raise BenchError(f"floor adopt of {instance_id} refused: {answer.status_code} {answer.text[:300]}")
        stack_id = answer.json()["stack"]["id"]
        while True:
            status = conn.orchestration.get(f"/stacks/{name}/{stack_id}").json()["stack"]
            if status["stack_status"] == "ADOPT_COMPLETE":
                break
            if status["stack_status"].endswith("FAILED") or not status["stack_status"].startswith("ADOPT"):
                raise BenchError(f"floor adopt of {instance_id}: {status['stack_status']} "
                                 f"{status.get('stack_status_reason')}")
            time.sleep(0.01)
    return time.perf_counter() - started


def run(args: argparse.Namespace) -> Report:
    report = Report(name="migration_bench", params={"fleet": args.fleet, "floor": args.floor,
                                                      "in_flight": args.in_flight, "profile": "zero"})
    with Stack(engine="natives", profile="zero", workers=32) as stack:
        demo = stack.client()
        stack.control.add_user("floor", "floor-pw", "floor")
        floor_client = _client(stack, "floor", "floor-pw", "floor")
        _build(demo, "fleet", args.fleet)
        floor_ids = _build(floor_client, "floor", args.floor)
        project = demo.base.rsplit("/", 1)[-1]

        assert stack.api is not None
        stack.api.stop()
        stack.engine = "migration"
        stack.start_hearth()
        admin = _client(stack, "admin", "admin", "admin")
        before = stack.request_counts()
        started = time.perf_counter()
        job = admin.call("POST", "/mgmt/migrations", 202, json={"migration": {
            "to": "orchestrator", "project": project, "max_in_flight": args.in_flight}})["migration"]
        while job["state"] != "finished":
            if time.perf_counter() - started > 1800:
                raise BenchError(f"migration not finished after 30 min: {job['counts']}")
            time.sleep(0.05)
            job = admin.call("GET", f"/mgmt/migrations/{job['id']}", 200)["migration"]
        hearth_seconds = time.perf_counter() - started
        hearth_requests = diff_counts(stack.request_counts(), before)
        counts = job["counts"]
        if counts["moved"] != args.fleet or counts["refused"] or counts["failed"]:
            raise BenchError(f"the migration did not move every instance: {counts}")
        before = stack.request_counts()
        floor_seconds = _floor(stack, floor_ids)
        floor_requests = diff_counts(stack.request_counts(), before)

    hearth_rate, floor_rate = args.fleet / hearth_seconds, args.floor / floor_seconds
    report.add(f"Hearth: {args.fleet} instances, {args.in_flight} in flight", hearth_seconds, "s")
    report.add("Hearth: instances moved per second", hearth_rate, "inst/s")
    report.add(f"floor: {args.floor} instances adopted one by one (bare SDK + Heat adopt)", floor_seconds, "s")
    report.add("floor: instances adopted per second", floor_rate, "inst/s")
    report.add("Hearth / floor (rate)", hearth_rate / floor_rate, "x", target=">= 0.7")
    report.add("instances refused", counts["refused"], "inst", target="<= 0")
    report.add("Hearth: cloud requests per instance moved", sum(hearth_requests.values()) / args.fleet, "req")
    report.add("floor: cloud requests per instance adopted", sum(floor_requests.values()) / args.floor, "req")
    for who, requests, number in (("Hearth", hearth_requests, args.fleet), ("floor", floor_requests, args.floor)):
        report.notes.append(f"{who} per instance: " + ", ".join(
            f"{method} {route} {count / number:.2f}" for (_service, method, route), count in requests.most_common(12)))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fleet", type=int, default=200)
    parser.add_argument("--floor", type=int, default=50)
    parser.add_argument("--in-flight", type=int, default=10)
    parser.add_argument("--json-out")
    args = parser.parse_args()
    report = run(args)
    report.print()
    if args.json_out:
        report.write(args.json_out)


if __name__ == "__main__":
    main()
