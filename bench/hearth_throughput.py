"""Hearth throughput per engine: N instances through the REST API to ACTIVE, then deleted, against the floor.

Run alone:  .venv/bin/python bench/hearth_throughput.py [--instances 200] [--engines natives,orchestrator]

For each registered engine (hearth.engines.available(), natives first):
1. The floor (floor_throughput.py): the same instances' cloud calls with bare openstacksdk in `workers`
   threads, against a fresh `fakecloud serve` (zero-delay profile, unlimited quotas). orchestrator and
   migration make the same stack calls, so their floor is measured once per run and shared.
2. Hearth: a fresh `fakecloud serve`, `hearth serve --no-taskmanager` (the API) and `hearth taskmanager`
   (`workers` worker threads), SQLite, each its own process: the layout of a production deployment, where
   API and task manager are separate services (`--one-process`: one `hearth serve` with both, as `hearth up`
   runs them). Warm-up: `workers` instances are created and deleted first, so every
   worker thread has its cloud connection (steady state; a cold start adds ~4 requests per thread).
   Then `workers` client threads POST the N creates; the clock runs from the first POST until a paginated
   `GET /instances` (polled every 250 ms) shows all N ACTIVE. Then the same for DELETE until all are gone.
Reported: instances/s for provision and delete and Hearth's share of the floor's figure (target >= 70%),
CPU seconds per instance in Hearth's process and in fakecloud's (psutil, /proc), and cloud HTTP requests per
instance (fakecloud's accounting: every request Hearth made, including Keystone token validations of the
client's calls). The CPU of the client and of the listing polls it makes is Hearth's cost of serving it.
Any error, ERROR status or leftover cloud resource fails the run.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Report  # noqa: E402
from _hearth import BenchError, Stack, diff_counts, registered_engines  # noqa: E402
from floor_throughput import run_floor  # noqa: E402

BENCH_RUNS = 2  # run_all.py: runs per `make bench` (keeps the whole under 10 minutes)
STACK_ENGINES = ("orchestrator", "migration")  # floor_throughput makes the same stack calls for both


def _in_threads(stack: Stack, threads: int, fn_name: str, items: list[Any]) -> list[Any]:
    """Call client.<fn_name>(item) for every item from `threads` clients (one HTTP session each)."""
    clients = [stack.client() for _ in range(threads)]
    chunks = [items[i::threads] for i in range(threads)]
    with ThreadPoolExecutor(threads) as pool:
        pairs = zip(clients, chunks, strict=True)
        parts = list(pool.map(lambda pair: [getattr(pair[0], fn_name)(x) for x in pair[1]], pairs))
    return [x for part in parts for x in part]


def run_hearth(stack: Stack, instances: int, workers: int) -> dict[str, float]:
    api = stack.client()
    warm = _in_threads(stack, workers, "create", [f"warm-{i}" for i in range(workers)])
    api.wait_all(warm, "ACTIVE", interval=0.05)
    _in_threads(stack, workers, "delete", warm)
    api.wait_all(warm, "GONE", interval=0.05)

    cpu0, counts0 = stack.cpu(), stack.request_counts()
    started = time.perf_counter()
    ids = _in_threads(stack, workers, "create", [f"bench-{i:04d}" for i in range(instances)])
    posted = time.perf_counter()
    api.wait_all(ids, "ACTIVE", interval=0.25, timeout=600)
    provisioned = time.perf_counter()
    cpu1, counts1 = stack.cpu(), stack.request_counts()
    _in_threads(stack, workers, "delete", ids)
    api.wait_all(ids, "GONE", interval=0.25, timeout=600)
    deleted = time.perf_counter()
    cpu2, counts2 = stack.cpu(), stack.request_counts()
    stack.check()
    leftovers = {kind: len([r for r in items if (r.get("name") or "").startswith("hearth-")])
                 for kind, items in stack.control.inventory("demo").items()}
    if any(leftovers.values()):
        raise BenchError(f"Hearth left cloud resources behind: {leftovers}")
    return {
        "post_s": posted - started,
        "provision_s": provisioned - started,
        "delete_s": deleted - provisioned,
        "hearth_cpu_s": cpu2["hearth"] - cpu0["hearth"],
        "cloud_cpu_s": cpu2["fakecloud"] - cpu0["fakecloud"],
        "hearth_cpu_create_s": cpu1["hearth"] - cpu0["hearth"],
        "provision_requests": sum(diff_counts(counts1, counts0).values()),
        "delete_requests": sum(diff_counts(counts2, counts1).values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--workers", type=int, default=8, help="task manager workers = floor threads")
    parser.add_argument("--engines", help="comma-separated; default: every registered engine")
    parser.add_argument("--one-process", dest="split", action="store_false",
                        help="run the API and the task manager in one process (as `hearth up` does) instead of "
                             "the production layout: hearth serve --no-taskmanager + hearth taskmanager")
    parser.add_argument("--json-out")
    args = parser.parse_args()
    n = args.instances
    report = Report("hearth_throughput")
    processes = ("fakecloud serve, hearth serve --no-taskmanager, hearth taskmanager" if args.split else
                 "fakecloud serve + hearth serve (API and task manager in one process)")
    report.params.update(instances=n, workers=args.workers, profile="zero", database="SQLite", processes=processes)
    floors: dict[str, dict[str, float]] = {}
    for engine in registered_engines(args.engines):
        # orchestrator and migration build new instances with the same stack calls: one floor serves both
        calls = "stacks" if engine in STACK_ENGINES else engine
        if calls not in floors:
            with Stack(engine=engine, profile="zero", with_hearth=False) as stack:
                floors[calls] = run_floor(stack, engine, n, args.workers)
        floor = floors[calls]
        with Stack(engine=engine, profile="zero", workers=args.workers, split_taskmanager=args.split) as stack:
            got = run_hearth(stack, n, args.workers)
        prov, dele = n / got["provision_s"], n / got["delete_s"]
        fprov, fdele = n / floor["provision_s"], n / floor["delete_s"]
        report.add(f"{engine}: provision throughput", prov, "inst/s")
        report.add(f"{engine}: provision throughput, floor", fprov, "inst/s")
        report.add(f"{engine}: provision, share of floor", 100 * prov / fprov, "%", ">= 70")
        report.add(f"{engine}: delete throughput", dele, "inst/s")
        report.add(f"{engine}: delete throughput, floor", fdele, "inst/s")
        report.add(f"{engine}: delete, share of floor", 100 * dele / fdele, "%", ">= 70")
        report.add(f"{engine}: Hearth CPU per instance (create+delete)", 1000 * got["hearth_cpu_s"] / n, "ms")
        report.add(f"{engine}: fakecloud CPU per instance (create+delete)", 1000 * got["cloud_cpu_s"] / n, "ms")
        report.add(f"{engine}: floor client CPU per instance (create+delete)", 1000 * floor["client_cpu_s"] / n,
                   "ms")
        report.add(f"{engine}: cloud requests per instance, provision", got["provision_requests"] / n, "req")
        report.add(f"{engine}: cloud requests per instance, delete", got["delete_requests"] / n, "req")
        report.add(f"{engine}: floor cloud requests per instance (create+delete)",
                   (floor["provision_requests"] + floor["delete_requests"]) / n, "req")
        report.add(f"{engine}: time to accept {n} POSTs", got["post_s"], "s")
    report.print()
    report.write(args.json_out)


if __name__ == "__main__":
    main()
