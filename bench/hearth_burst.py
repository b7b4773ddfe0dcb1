"""A burst: `instances` provisions at once per engine, on fakecloud's `realistic` delays, against their bound.

Run alone:  .venv/bin/python bench/hearth_burst.py [--instances 100] [--engines natives] [--workers N]

For each registered engine (natives first): `fakecloud serve --profile realistic` (unlimited quotas),
`hearth serve --no-taskmanager` and `hearth taskmanager` (SQLite, Hearth's default task manager threads unless
--workers says otherwise) as separate processes, the production layout.
1. The floor, alone on that cloud once Hearth is idle (its start-up warm-up settled): bare openstacksdk
   provisions the same `instances` at once, one thread and Connection each (floor_throughput.Floor: the
   engine's calls with Hearth's preflight and polling schedule; the stack engines create the stack from
   Hearth's own template), clocked from the first call until the last instance is complete; its client CPU
   (this process, psutil) over those creates. Then the floor deletes what it made.
2. Hearth, once its start-up warm-up has settled (the task manager's first connection): `instances`
   client threads POST one create each at once; the clock runs from the first POST until the instance list
   (polled every 20 ms, hearth_latency.wait_batch) shows the last one ACTIVE. CPU per create is read per
   process (API, task manager; psutil) over the same span, so the API's CPU includes serving the POSTs and the
   list polls. Then every instance is deleted (until the list has none) and nothing may be left on the cloud.
Bound: the larger of the delay profile's critical path for one provision (hearth_latency.bounds: natives
max(volume_create, server_boot) + volume_attach; stack engines Heat's overhead and check ticks) and the bare
SDK's time for the same burst on the same cloud. Target: last ACTIVE / bound <= 1.25 (issue 17).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psutil  # noqa: E402

from _harness import Report  # noqa: E402
from _hearth import BenchError, Stack, diff_counts, registered_engines  # noqa: E402
from floor_throughput import Floor  # noqa: E402
from hearth_latency import bounds, wait_batch  # noqa: E402

BENCH_RUNS = 1  # run_all.py: one run per `make bench` (100 boots per engine; about 2.5 minutes for the three engines)
PREFIXES = ("hearth-", "floor-")  # every cloud resource Hearth or the floor names


def leftovers(stack: Stack) -> dict[str, int]:
    found = {kind: len([r for r in items if (r.get("name") or "").startswith(PREFIXES)])
             for kind, items in stack.control.inventory("demo").items()}
    return {kind: n for kind, n in found.items() if n}


def run_floor(stack: Stack, engine: str, n: int) -> dict[str, float]:
    """Bare openstacksdk: n provisions at once (one thread and Connection each), then their deletes."""
    floor = Floor(stack.clouds_yaml, engine)
    me = psutil.Process()
    ready, go = threading.Barrier(n), threading.Barrier(n)
    spans: list[tuple[float, float]] = []

    def connect(_i: int) -> None:  # n distinct threads, each with its Connection before the clock starts
        floor.conn()
        ready.wait()

    def provision(_i: int) -> dict[str, Any]:
        go.wait()
        began = time.perf_counter()
        made = floor.provision(str(uuid.uuid4()))
        spans.append((began, time.perf_counter()))
        return made

    with ThreadPoolExecutor(n) as pool:
        list(pool.map(connect, range(n)))
        cpu0, cloud0, counts0 = me.cpu_times(), stack.cpu()["fakecloud"], stack.request_counts()
        made = list(pool.map(provision, range(n)))
        cpu1, cloud1, counts1 = me.cpu_times(), stack.cpu()["fakecloud"], stack.request_counts()
        list(pool.map(floor.delete, made))
    return {"provision_s": max(e for _, e in spans) - min(b for b, _ in spans),
            "client_cpu_s": (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system),
            "cloud_cpu_s": cloud1 - cloud0,
            "requests": sum(diff_counts(counts1, counts0).values())}


def settle(stack: Stack, quiet: float = 0.05, window: float = 0.5, timeout: float = 30.0) -> None:
    """Wait until Hearth's processes use under `quiet` CPU-s per `window` (the start-up warm-up is over)."""
    deadline = time.monotonic() + timeout
    last = stack.cpu()["hearth"]
    while time.monotonic() < deadline:
        time.sleep(window)
        now = stack.cpu()["hearth"]
        if now - last < quiet:
            return
        last = now
    raise BenchError(f"Hearth did not settle within {timeout:.0f}s of starting")


def run_hearth(stack: Stack, n: int) -> dict[str, float]:
    """n creates POSTed at once, until the last is ACTIVE; then all deleted, until none is listed."""
    api = stack.client()
    clients = [stack.client() for _ in range(n)]
    settle(stack)
    barrier = threading.Barrier(n)
    began = [0.0] * n

    def create(i: int) -> str:
        barrier.wait()
        began[i] = time.perf_counter()
        return clients[i].create(f"burst-{i:03d}", flavor="1", size=1)

    cpu0 = {s.name: s.cpu_seconds() for s in stack.services}
    cloud0, counts0 = stack.cpu()["fakecloud"], stack.request_counts()
    with ThreadPoolExecutor(n) as pool:
        ids = list(pool.map(create, range(n)))
        posted = time.perf_counter()
        active = wait_batch(api, ids, "provision", timeout=300)
        cpu1 = {s.name: s.cpu_seconds() for s in stack.services}
        cloud1, counts1 = stack.cpu()["fakecloud"], stack.request_counts()
        deleting = time.perf_counter()
        list(pool.map(lambda i: clients[i].delete(ids[i]), range(n)))
        gone = wait_batch(api, ids, "delete", timeout=300)
    stack.check()
    if api.list_all():
        raise BenchError("Hearth still lists instances after the deletes")
    got = {"post_s": posted - min(began), "active_s": active - min(began), "delete_s": gone - deleting,
           "cloud_cpu_s": cloud1 - cloud0, "requests": sum(diff_counts(counts1, counts0).values())}
    got.update({f"cpu:{name}": cpu1[name] - cpu0[name] for name in cpu0})
    return got


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--engines", help="comma-separated; default: every registered engine")
    parser.add_argument("--workers", type=int, default=None,
                        help="task manager worker threads (default: Hearth's own default, Settings.workers)")
    parser.add_argument("--json-out")
    args = parser.parse_args()
    from hearth.config import Settings
    from openstack_fakecloud.config import PROFILES

    n = args.instances
    workers = args.workers
    delays = PROFILES["realistic"].model_dump()
    report = Report("hearth_burst")
    default_workers = f"{Settings.model_fields['workers'].default} (Hearth's default)"
    report.params.update(instances=n, database="SQLite", workers=workers or default_workers,
                         profile="realistic: " + ", ".join(f"{k} {v:g}" for k, v in delays.items() if v),
                         processes="fakecloud serve, hearth serve --no-taskmanager, hearth taskmanager")
    for engine in registered_engines(args.engines):
        with Stack(engine=engine, profile="realistic", workers=workers, split_taskmanager=True) as stack:
            settle(stack)  # the task manager's connection warm-up must not load the floor's cloud
            floor = run_floor(stack, engine, n)
            if leftovers(stack):
                raise BenchError(f"the floor left cloud resources behind: {leftovers(stack)}")
            got = run_hearth(stack, n)
            if leftovers(stack):
                raise BenchError(f"{engine} left cloud resources behind: {leftovers(stack)}")
        critical = bounds(engine, delays, 0.0)["provision"] or 0.0
        bound = max(critical, floor["provision_s"])
        hearth_cpu = sum(v for k, v in got.items() if k.startswith("cpu:"))
        report.add(f"{engine}: last ACTIVE / bound", got["active_s"] / bound, "x", "<= 1.25")
        report.add(f"{engine}: last ACTIVE", got["active_s"], "s")
        report.add(f"{engine}: bound", bound, "s")
        report.add(f"{engine}: critical path (1 provision)", critical, "s")
        report.add(f"{engine}: bare SDK, last complete", floor["provision_s"], "s")
        report.add(f"{engine}: last ACTIVE / critical path", got["active_s"] / critical, "x")
        report.add(f"{engine}: Hearth CPU per create (API + task manager)", 1000 * hearth_cpu / n, "ms")
        report.add(f"{engine}: Hearth API CPU per create", 1000 * got["cpu:hearth-api"] / n, "ms")
        report.add(f"{engine}: Hearth task manager CPU per create", 1000 * got["cpu:hearth-taskmanager"] / n, "ms")
        report.add(f"{engine}: bare SDK client CPU per create", 1000 * floor["client_cpu_s"] / n, "ms")
        report.add(f"{engine}: fakecloud CPU per create, Hearth", 1000 * got["cloud_cpu_s"] / n, "ms")
        report.add(f"{engine}: fakecloud CPU per create, bare SDK", 1000 * floor["cloud_cpu_s"] / n, "ms")
        report.add(f"{engine}: cloud requests per create, Hearth", got["requests"] / n, "req")
        report.add(f"{engine}: cloud requests per create, bare SDK", floor["requests"] / n, "req")
        report.add(f"{engine}: time to accept {n} POSTs", got["post_s"], "s")
        report.add(f"{engine}: delete, until none is listed", got["delete_s"], "s")
    report.notes.append("the bound is the larger of the critical path and the bare SDK's burst on the same cloud; "
                        "Hearth's CPU spans the POSTs to the last ACTIVE, list polls (every 20 ms) included")
    report.print()
    report.write(args.json_out)


if __name__ == "__main__":
    main()
