"""Hearth's critical path and API economy per engine, under fakecloud's `realistic` delay profile.

Run alone:  .venv/bin/python bench/hearth_latency.py [--engines natives] [--batch 20] [--workers 20]

For each registered engine (natives first): `fakecloud serve --profile realistic`, `hearth serve
--no-taskmanager` and `hearth taskmanager` (SQLite, `workers` task manager threads) as separate processes,
as a production deployment runs them (`--one-process`: API and task manager in one `hearth serve`). One
instance goes through provision, resize flavor (1 -> 2), resize volume (1 -> 2 GB), a CIDR change
(0.0.0.0/0 -> 10.0.0.0/8) and delete; then `batch` instances do the same, each operation requested for all
of them at once (one client thread per instance). Each time runs from the request until the client sees the
operation succeeded (`GET /instances/{id}/operations` polled every 20 ms per instance; delete: until the
instance is 404);
for the batch, from the first request until the last instance is done (one poller: the instance list every
20 ms; a CIDR change keeps the status ACTIVE and is seen in the listed allowed CIDRs, see wait_batch).
Warm-up: the single instance goes through every operation once before the measured pass, so every thread
has its cloud connection and Hearth's adaptive polling has seen each kind of wait once (steady state).

Lower bounds come from the delay profile and the steps' dependencies (delays in seconds, D):
- natives: provision volume_create + server_boot + volume_attach (the data volume is mapped at boot, as Trove
  does, so the server waits for it; bare openstacksdk's batch floor below still boots in parallel with the
  volume and attaches after, the faster path a client not caring about first boot could take); resize flavor
  server_resize + server_confirm_resize; resize volume volume_extend (Cinder >= 3.42 extends in use); CIDR change has no
  delay at all, so its bound is the floor: the same two Neutron calls (create rule, delete rule) made with
  bare openstacksdk, measured against the same cloud in the same run (one per thread for the batch).
- orchestrator: Heat starts a stack action after `stack_overhead` (h) and checks a resource that is in
  progress every h, so each asynchronous step costs ceil(D/h)*h: provision h + ceil(max(volume_create,
  server_boot)/h)*h + ceil(volume_attach/h)*h, and likewise for resize (resize then confirm) and extend;
  a CIDR change is h plus the floor of the rule calls.
- migration: builds new instances as stacks, so the orchestrator bounds; any other engine: the natives ones.
- For the stack engines the bound is also checked against the cloud itself: once per run (beside the first
  stack engine's warm-up pass), bare openstacksdk creates a stack from Hearth's template and makes the three
  updates (flavor, volume, CIDR), polling every 10 ms, against the same fakecloud. Where fakecloud's Heat
  takes longer than the formula (its check of a resource that finishes exactly on a check tick can land on
  the next tick: a create takes ~4.8 s, not 4.5; a rule change needs a check tick after the overhead:
  ~0.6 s), that measured time is the bound: no client can see the stack done before Heat says so. Both
  figures are reported.
- The batch's bound is also checked against the cloud at the same concurrency: once per run, alone on the
  cloud before Hearth's passes, bare openstacksdk makes the same calls for `batch` instances at once (one
  thread and Connection each, polling every 10 ms): natives_floor (the natives engine's calls) and
  stack_floor(batch) (Hearth's template, then the three updates). Twenty boots, resizes or stack updates at
  once cost the cloud and the client CPU on this 2-core machine, so even that bare client ends later than
  the formula (provision ~1.2x it, a stack rule change ~2.8x); the batch's bound is the larger of the formula
  and this measured floor, and the ratio to the formula alone is reported beside it.
Targets: time / bound <= 1.10 for one instance, <= 1.25 for the batch.

API economy: fakecloud's accounting counts every request of the single-instance operations (polling
included): reported per operation in total, as GETs of one resource by id (the polling) and as writes.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Report  # noqa: E402
from _hearth import BenchError, HearthClient, Stack, diff_counts, registered_engines, temp_postgres  # noqa: E402

OPS = ("provision", "resize_flavor", "resize_volume", "apply_rules", "delete")
LABEL = {"provision": "provision", "resize_flavor": "resize flavor", "resize_volume": "resize volume",
         "apply_rules": "CIDR change", "delete": "delete"}
BENCH_RUNS = 2  # run_all.py: runs per `make bench` (keeps the whole under 10 minutes)
STACK_ENGINES = ("orchestrator", "migration")  # both build new instances as Heat stacks
NEW_CIDRS = ["10.0.0.0/8"]  # the CIDR change: 0.0.0.0/0 -> this


def bounds(engine: str, delays: dict[str, float], rule_floor: float) -> dict[str, float | None]:
    d = delays
    if engine in STACK_ENGINES:
        h = d["stack_overhead"]

        def step(x: float) -> float:
            return math.ceil(x / h - 1e-9) * h if h > 0 else x

        return {"provision": h + step(max(d["volume_create"], d["server_boot"])) + step(d["volume_attach"]),
                "resize_flavor": h + step(d["server_resize"]) + step(d["server_confirm_resize"]),
                "resize_volume": h + step(d["volume_extend"]),
                "apply_rules": h + rule_floor,
                "delete": None}
    # natives maps the data volume at boot (as Trove does, so the database and a stock image's cloud-init find
    # it from the first start): the server waits for the volume, and Nova's build attaches it before ACTIVE.
    return {"provision": d["volume_create"] + d["server_boot"] + d["volume_attach"],
            "resize_flavor": d["server_resize"] + d["server_confirm_resize"],
            "resize_volume": d["volume_extend"],
            "apply_rules": rule_floor,
            "delete": None}


def wait_done(api: HearthClient, instance_id: str, kind: str, timeout: float = 120.0) -> float:
    """Poll until the newest operation of `kind` succeeded (delete: until 404); returns perf_counter then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if kind == "delete":
            response = api.http.get(f"{api.base}/instances/{instance_id}", timeout=30)
            if response.status_code == 404:
                return time.perf_counter()
        else:
            ops = [o for o in api.call("GET", f"/instances/{instance_id}/operations", 200)["operations"]
                   if o["kind"] == kind]
            if ops and ops[-1]["state"] == "succeeded":
                return time.perf_counter()
            if ops and ops[-1]["state"] == "failed":
                raise BenchError(f"{kind} of {instance_id} failed: {ops[-1]['error']}")
        api.stack.check()
        time.sleep(0.02)
    raise BenchError(f"{kind} of {instance_id} did not finish in {timeout:.0f}s")


def start(api: HearthClient, kind: str, instance_id: str | None, name: str) -> str:
    if kind == "provision":
        return api.create(name, flavor="1", size=1)
    assert instance_id is not None
    if kind == "resize_flavor":
        api.resize_flavor(instance_id, "2")
    elif kind == "resize_volume":
        api.resize_volume(instance_id, 2)
    elif kind == "apply_rules":
        api.set_cidrs(instance_id, NEW_CIDRS)
    elif kind == "delete":
        api.delete(instance_id)
    return instance_id


def wait_batch(api: HearthClient, ids: list[str], kind: str, timeout: float = 180.0) -> float:
    """One poller for the whole batch (so the measuring does not load Hearth): the list every 20 ms until
    every instance is ACTIVE (or gone, for delete). A CIDR change leaves the status ACTIVE, but the list
    shows it too: the new CIDR is listed (pending) at once and the old one only goes when the change
    succeeded, so an instance is done when its allowed CIDRs are exactly the new ones (a failed change
    drops the new CIDR instead; the operation's error is then reported). Reading every pending instance's
    operations each round instead was 20 requests per 20 ms, which loaded Hearth more than the change itself.
    Returns perf_counter when the last one was done."""
    pending = set(ids)
    deadline = time.monotonic() + timeout
    while pending:
        listed = api.list_all()
        for instance_id in list(pending):
            inst = listed.get(instance_id)
            if kind == "delete":
                if inst is None:
                    pending.discard(instance_id)
                continue
            if inst is None or inst["status"] == "ERROR":
                raise BenchError(f"{kind} of {instance_id}: {inst and api.show(instance_id).get('fault')}")
            if kind == "apply_rules":
                cidrs = inst["access"]["allowed_cidrs"]
                if cidrs == NEW_CIDRS:
                    pending.discard(instance_id)
                elif NEW_CIDRS[0] not in cidrs:
                    ops = [o for o in api.call("GET", f"/instances/{instance_id}/operations", 200)["operations"]
                           if o["kind"] == kind]
                    raise BenchError(f"{kind} of {instance_id} failed: {ops[-1]['error'] if ops else cidrs}")
            elif inst["status"] == "ACTIVE":
                pending.discard(instance_id)
        if pending:
            if time.monotonic() > deadline:
                raise BenchError(f"{kind}: {len(pending)} instance(s) not done in {timeout:.0f}s")
            api.stack.check()
            time.sleep(0.02)
    return time.perf_counter()


def run_ops(api: HearthClient, clients: list[HearthClient]) -> dict[str, float]:
    """Every operation in turn on all instances at once (client i requests for instance i); op -> seconds
    from the first request until the last instance is done."""
    results: dict[str, float] = {}
    current: list[str | None] = [None] * len(clients)
    for kind in OPS:
        barrier = threading.Barrier(len(clients))
        began: list[float] = [0.0] * len(clients)

        def one(i: int, kind: str = kind, barrier: threading.Barrier = barrier, began: list[float] = began,
                current: list[str | None] = current) -> str:
            barrier.wait()
            began[i] = time.perf_counter()
            return start(clients[i], kind, current[i], f"lat-{i}")

        with ThreadPoolExecutor(len(clients)) as pool:
            current = list(pool.map(one, range(len(clients))))
        results[kind] = wait_batch(api, [i for i in current if i], kind) - min(began)
    return results


def stack_floor(stack: Stack, threads: int = 1) -> dict[str, float]:
    """Bare openstacksdk against the same cloud: `threads` stacks from Hearth's template at once (one thread
    and Connection each), then the three updates the latency ops make, each phase started for all stacks at
    once and polled every 10 ms until Heat reports each complete; seconds per phase, from the first request
    until the last stack was complete."""
    import uuid

    import openstack.config
    from openstack.connection import Connection

    from hearth.engines import templates
    from hearth.engines.base import InstanceSpec, RuleSpec
    from hearth.engines.heat import read_stack

    config = openstack.config.OpenStackConfig(config_files=[str(stack.clouds_yaml)], load_envvars=False)
    conns = [Connection(config=config.get_one(cloud="fakecloud")) for _ in range(threads)]
    image = conns[0].image.find_image("postgresql-16", ignore_missing=False)
    ends = {"provision": ("CREATE_COMPLETE",), "resize_flavor": ("UPDATE_COMPLETE",),
            "resize_volume": ("UPDATE_COMPLETE",), "apply_rules": ("UPDATE_COMPLETE",)}
    kinds = tuple(ends)
    barrier = threading.Barrier(threads)

    def one(i: int) -> dict[str, tuple[float, float]]:
        conn = conns[i]
        rule = RuleSpec(str(uuid.uuid4()), "tcp", 5432, 5432, "0.0.0.0/0")
        spec = InstanceSpec(instance_id=str(uuid.uuid4()), name=f"floor-{i}", project_id="demo", flavor_id="1",
                            image_id=image.id, volume_size=1, rules=(rule,))
        specs = {"resize_flavor": spec.replace(flavor_id="2")}
        specs["resize_volume"] = specs["resize_flavor"].replace(volume_size=2)
        specs["apply_rules"] = specs["resize_volume"].replace(
            rules=(RuleSpec(rule.id, "tcp", 5432, 5432, "10.0.0.0/8"),))
        spans: dict[str, tuple[float, float]] = {}
        created = None
        for kind in kinds:
            barrier.wait()
            began = time.perf_counter()
            if created is None:
                created = conn.orchestration.create_stack(
                    name=f"floor-{spec.instance_id}", template=templates.build(spec),
                    parameters=templates.parameters(spec), is_rollback_disabled=True)
            else:
                target = specs[kind]
                conn.orchestration.update_stack(conn.orchestration.get_stack(created.id),
                                                template=templates.build(target),
                                                parameters=templates.parameters(target))
            while True:
                status = conn.orchestration.get_stack(created.id).status
                if status in ends[kind]:
                    spans[kind] = (began, time.perf_counter())
                    break
                if status.endswith("FAILED") or time.perf_counter() - began > 60:
                    raise BenchError(f"the stack floor's {kind} ended {status}")
                time.sleep(0.01)
        assert created is not None
        conn.orchestration.delete_stack(created.id)
        while read_stack(conn, created.id) is not None:
            time.sleep(0.05)
        conn.close()
        return spans

    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(one, range(threads)))
    return {kind: max(r[kind][1] for r in results) - min(r[kind][0] for r in results) for kind in kinds}


def natives_floor(stack: Stack, threads: int) -> dict[str, float]:
    """Bare openstacksdk, `threads` instances at once (one thread and Connection each): the natives engine's
    calls for provision (volume, group and rule, server; attach once both are ready), resize flavor (resize,
    confirm), resize volume (extend in use) and the CIDR change (create rule, delete rule), each phase started
    for all at once and polled every 10 ms; seconds per phase from the first request to the last done."""
    import openstack.config
    from openstack.connection import Connection

    config = openstack.config.OpenStackConfig(config_files=[str(stack.clouds_yaml)], load_envvars=False)
    conns = [Connection(config=config.get_one(cloud="fakecloud")) for _ in range(threads)]
    for c in conns:
        c.block_storage.default_microversion = "3.42"  # extend in use, as the natives engine does
    image = conns[0].image.find_image("postgresql-16", ignore_missing=False)
    barrier = threading.Barrier(threads)

    def poll(fetch: Any, done: Any, what: str) -> Any:
        deadline = time.monotonic() + 60
        while True:
            found = fetch()
            if done(found):
                return found
            if "error" in str(getattr(found, "status", "")).lower() or time.monotonic() > deadline:
                raise BenchError(f"the natives floor's {what} ended {getattr(found, 'status', '?')}")
            time.sleep(0.01)

    def one(i: int) -> dict[str, tuple[float, float]]:
        conn, spans = conns[i], {}
        barrier.wait()
        began = time.perf_counter()
        volume = conn.block_storage.create_volume(name=f"floor-lat-{i}", size=1)
        group = conn.network.create_security_group(name=f"floor-lat-{i}")
        rule = conn.network.create_security_group_rule(
            security_group_id=group.id, direction="ingress", ether_type="IPv4", protocol="tcp",
            port_range_min=5432, port_range_max=5432, remote_ip_prefix="0.0.0.0/0")
        server = conn.compute.create_server(name=f"floor-lat-{i}", flavor_id="1", image_id=image.id,
                                            networks="auto", security_groups=[{"name": group.id}])
        poll(lambda: conn.compute.get_server(server.id), lambda s: s.status == "ACTIVE", "boot")
        poll(lambda: conn.block_storage.get_volume(volume.id), lambda v: v.status == "available", "volume")
        conn.compute.create_volume_attachment(server.id, volume=volume.id)
        poll(lambda: conn.block_storage.get_volume(volume.id), lambda v: v.status == "in-use", "attach")
        spans["provision"] = (began, time.perf_counter())
        barrier.wait()
        began = time.perf_counter()
        conn.compute.resize_server(server.id, "2")
        poll(lambda: conn.compute.get_server(server.id), lambda s: s.status == "VERIFY_RESIZE", "resize")
        conn.compute.confirm_server_resize(server.id)
        poll(lambda: conn.compute.get_server(server.id), lambda s: s.status == "ACTIVE", "confirm")
        spans["resize_flavor"] = (began, time.perf_counter())
        barrier.wait()
        began = time.perf_counter()
        conn.block_storage.extend_volume(volume.id, 2)
        poll(lambda: conn.block_storage.get_volume(volume.id), lambda v: v.status == "in-use" and v.size == 2,
             "extend")
        spans["resize_volume"] = (began, time.perf_counter())
        barrier.wait()
        began = time.perf_counter()
        conn.network.create_security_group_rule(
            security_group_id=group.id, direction="ingress", ether_type="IPv4", protocol="tcp",
            port_range_min=5432, port_range_max=5432, remote_ip_prefix="10.0.0.0/8")
        conn.network.delete_security_group_rule(rule.id)
        spans["apply_rules"] = (began, time.perf_counter())
        # The floor's server, volume and group (floor-lat-*) stay: this cloud is thrown away with the engine's
        # pass, Hearth's passes never look at them, and deleting them cost ~3 s of `make bench` per run.
        conn.close()
        return spans

    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(one, range(threads)))
    return {kind: max(r[kind][1] for r in results) - min(r[kind][0] for r in results) for kind in results[0]}


def rule_floor(stack: Stack, threads: int) -> float:
    """Bare openstacksdk: create a group, then time create-rule + delete-rule (`threads` at once)."""
    import openstack.config
    from openstack.connection import Connection

    def conn() -> Connection:
        config = openstack.config.OpenStackConfig(config_files=[str(stack.clouds_yaml)], load_envvars=False)
        return Connection(config=config.get_one(cloud="fakecloud"))

    conns = [conn() for _ in range(threads)]
    groups = [c.network.create_security_group(name=f"floor-rules-{i}") for i, c in enumerate(conns)]
    old = [c.network.create_security_group_rule(security_group_id=g.id, direction="ingress", ether_type="IPv4",
                                                protocol="tcp", port_range_min=5432, port_range_max=5432,
                                                remote_ip_prefix="0.0.0.0/0")
           for c, g in zip(conns, groups, strict=True)]
    barrier = threading.Barrier(threads)

    def one(i: int) -> tuple[float, float]:
        barrier.wait()
        began = time.perf_counter()
        conns[i].network.create_security_group_rule(security_group_id=groups[i].id, direction="ingress",
                                                    ether_type="IPv4", protocol="tcp", port_range_min=5432,
                                                    port_range_max=5432, remote_ip_prefix="10.0.0.0/8")
        conns[i].network.delete_security_group_rule(old[i].id)
        return began, time.perf_counter()

    with ThreadPoolExecutor(threads) as pool:
        spans = list(pool.map(one, range(threads)))
    for c, g in zip(conns, groups, strict=True):
        c.network.delete_security_group(g.id)
        c.close()
    return max(e for _, e in spans) - min(b for b, _ in spans)


def economy(stack: Stack, api: HearthClient) -> tuple[dict[str, float], dict[str, Counter]]:
    """One instance through every operation; seconds and the cloud requests of each."""
    times: dict[str, float] = {}
    requests: dict[str, Counter] = {}
    instance_id: str | None = None
    for kind in OPS:
        before = stack.request_counts()
        began = time.perf_counter()
        instance_id = start(api, kind, instance_id, "lat-single")
        times[kind] = wait_done(api, instance_id, kind) - began
        requests[kind] = diff_counts(stack.request_counts(), before)
    return times, requests


def classify(counts: Counter) -> dict[str, int]:
    total = sum(counts.values())
    polls = sum(n for (service, method, route), n in counts.items()
                if method == "GET" and (route.endswith("{id}") or "{stack_id}" in route or route.endswith("}"))
                and service != "identity")
    writes = sum(n for (_s, method, _r), n in counts.items() if method in ("POST", "PUT", "PATCH", "DELETE")
                 and _s != "identity")
    return {"total": total, "polls": polls, "writes": writes, "other": total - polls - writes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engines", help="comma-separated; default: every registered engine")
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--workers", type=int, default=20, help="task manager worker threads")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--one-process", dest="split", action="store_false",
                        help="run the API and the task manager in one process (as `hearth up` does) instead of "
                             "the production layout: hearth serve --no-taskmanager + hearth taskmanager")
    parser.add_argument("--json-out")
    args = parser.parse_args()
    from openstack_fakecloud.config import PROFILES

    delays = PROFILES["realistic"].model_dump()
    report = Report("hearth_latency")
    report.params.update(profile="realistic: " + ", ".join(f"{k} {v:g}" for k, v in delays.items() if v),
                         batch=args.batch, workers=args.workers, database=args.db,
                         processes=("fakecloud serve, hearth serve --no-taskmanager, hearth taskmanager" if args.split
                                    else "fakecloud serve + hearth serve (API and task manager in one process)"))
    worst: dict[str, str] = {}
    cloud_floor: dict[str, float] | None = None  # the stack floor, measured once per run (see the docstring)
    batch_floors: dict[str, dict[str, float]] = {}  # "stacks" / "natives": the bare-SDK floor at the batch size
    for engine in registered_engines(args.engines):
        calls = "stacks" if engine in STACK_ENGINES else "natives"
        with contextlib.ExitStack() as scope:
            db_url = scope.enter_context(temp_postgres()) if args.db == "postgresql" else None
            stack = scope.enter_context(Stack(engine=engine, profile="realistic", workers=args.workers,
                                              db_url=db_url, split_taskmanager=args.split))
            if calls not in batch_floors:  # alone on the cloud (Hearth idle), before Hearth's own passes
                batch_floors[calls] = (stack_floor(stack, args.batch) if calls == "stacks"
                                       else natives_floor(stack, args.batch))
            api = stack.client()
            floor_1 = rule_floor(stack, 1)
            floor_n = rule_floor(stack, args.batch)
            floor_pool = None
            if engine in STACK_ENGINES and cloud_floor is None:
                # Measured beside the warm-up pass (whose times are not reported): the stack floor is Heat's own
                # timing, which a second client does not change, and this keeps `make bench` under 10 minutes.
                floor_pool = ThreadPoolExecutor(1)
                floor_future = floor_pool.submit(stack_floor, stack)
            economy(stack, api)  # warm-up: connections made, each kind of wait seen once (steady state)
            if floor_pool is not None:
                cloud_floor = floor_future.result()
                floor_pool.shutdown()
            single, requests = economy(stack, api)
            clients = [stack.client() for _ in range(args.batch)]
            batch = run_ops(api, clients)
        b1, bn = bounds(engine, delays, floor_1), bounds(engine, delays, floor_n)
        for kind in OPS:
            label = LABEL[kind]
            if engine in STACK_ENGINES and cloud_floor and kind in cloud_floor:
                report.add(f"{engine}: {label}, formula bound", b1[kind] or 0, "s")
                report.add(f"{engine}: {label}, bare-SDK stack time", cloud_floor[kind], "s")
                b1[kind] = max(b1[kind] or 0, cloud_floor[kind])
            if bn[kind]:
                formula_n = bn[kind] or 0.0
                sdk_n = batch_floors[calls].get(kind, 0.0)
                report.add(f"{engine}: {label}, bare-SDK, {args.batch} at once", sdk_n, "s")
                report.add(f"{engine}: {label}, {args.batch} at once / formula bound", batch[kind] / formula_n, "x")
                bn[kind] = max(formula_n, sdk_n, b1[kind] or 0)
            if b1[kind]:
                report.add(f"{engine}: {label}, 1 instance / bound", single[kind] / b1[kind], "x", "<= 1.10")
                report.add(f"{engine}: {label}, {args.batch} at once / bound", batch[kind] / bn[kind], "x",
                           "<= 1.25")
                report.add(f"{engine}: {label}, lower bound (1 instance)", b1[kind], "s")
                report.add(f"{engine}: {label}, lower bound ({args.batch} at once)", bn[kind], "s")
            report.add(f"{engine}: {label}, 1 instance", single[kind], "s")
            report.add(f"{engine}: {label}, {args.batch} at once", batch[kind], "s")
        for kind in OPS:
            split = classify(requests[kind])
            report.add(f"{engine}: cloud requests, {LABEL[kind]}", split["total"], "req")
            report.add(f"{engine}: cloud requests, {LABEL[kind]}: polling GETs", split["polls"], "req")
            top = requests[kind].most_common(1)[0]
            worst[f"{engine} {LABEL[kind]}"] = f"{top[1]}x {top[0][1]} {top[0][2]}"
    report.notes.append("most frequent request per operation (1 instance): "
                        + "; ".join(f"{k}: {v}" for k, v in worst.items()))
    report.print()
    report.write(args.json_out)


if __name__ == "__main__":
    main()
