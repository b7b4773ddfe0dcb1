"""The engines side by side: seconds and cloud HTTP calls per operation, 15 instances per engine.

For each registered engine, on fakecloud's zero-delay profile, through Hearth's REST API (fakecloud and
`hearth serve` as separate processes): provision 15 instances, resize all their flavors, grow all their
volumes, change all their access CIDRs, then delete them. Each step is issued for the 15 at once and waited
for; the figures are wall seconds per operation (step time / 15) and fakecloud's request count per operation
(its accounting before and after the step, / 15), split into writes and reads (reads include polling).

    .venv/bin/python bench/hearth_engine_ops.py [--instances 15] [--engines natives,orchestrator]
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Report  # noqa: E402
from _hearth import BenchError, HearthClient, Stack, diff_counts, registered_engines  # noqa: E402

BENCH_RUNS = 2  # run_all.py: runs per `make bench` (15 instances: ~15 s a run for the three engines)
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _wait_operations_done(api: HearthClient, ids: list[str], timeout: float = 300.0) -> None:
    """Access updates leave the status ACTIVE: wait until each instance's newest operation has finished."""
    pending = set(ids)
    deadline = time.monotonic() + timeout
    while pending:
        for instance_id in list(pending):
            operations = api.call("GET", f"/instances/{instance_id}/operations", 200)["operations"]
            newest = operations[-1]
            if newest["state"] == "failed":
                raise BenchError(f"operation {newest['kind']} on {instance_id} failed: {newest.get('error')}")
            if newest["state"] == "succeeded":
                pending.discard(instance_id)
        if pending:
            if time.monotonic() > deadline:
                raise BenchError(f"{len(pending)} operation(s) did not finish in {timeout:.0f}s")
            api.stack.check()
            time.sleep(0.05)


def _step(stack: Stack, api: HearthClient, ids: list[str], issue: Callable[[str], None],
          wait: Callable[[], object]) -> tuple[float, collections.Counter]:
    before = stack.request_counts()
    started = time.perf_counter()
    for instance_id in ids:
        issue(instance_id)
    wait()
    elapsed = time.perf_counter() - started
    return elapsed, diff_counts(stack.request_counts(), before)


def measure(engine: str, n: int) -> dict[str, tuple[float, collections.Counter]]:
    with Stack(engine=engine, profile="zero", workers=16) as stack:
        api = stack.client()
        ids: list[str] = []

        def create(i: str) -> None:
            ids.append(api.create(f"ops-{engine}-{i}", flavor="1", size=1, cidrs=["10.0.0.0/24"]))

        steps: dict[str, tuple[float, collections.Counter]] = {}
        steps["provision"] = _step(stack, api, [str(i) for i in range(n)], create,
                                   lambda: api.wait_all(ids, "ACTIVE"))
        steps["resize flavor"] = _step(stack, api, ids, lambda i: api.resize_flavor(i, "2"),
                                       lambda: api.wait_all(ids, "ACTIVE"))
        steps["resize volume"] = _step(stack, api, ids, lambda i: api.resize_volume(i, 2),
                                       lambda: api.wait_all(ids, "ACTIVE"))
        steps["CIDR change"] = _step(stack, api, ids, lambda i: api.set_cidrs(i, ["10.1.0.0/24"]),
                                     lambda: _wait_operations_done(api, ids))
        steps["delete"] = _step(stack, api, ids, api.delete, lambda: api.wait_all(ids, "GONE"))
        leftovers = {kind: [r for r in rows if str(r.get("name", "")).startswith("hearth-")]
                     for kind, rows in stack.control.inventory("demo").items()}
        left = {kind: len(rows) for kind, rows in leftovers.items() if rows}
        if left:
            raise BenchError(f"{engine}: resources left after delete: {left}")
        return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=15)
    parser.add_argument("--engines", default=None, help="comma-separated subset of the registered engines")
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args()
    n = args.instances
    report = Report("hearth_engine_ops")
    report.params.update(instances=n, profile="zero", workers=16, database="SQLite",
                         note="each step issued for all instances at once, then waited for")
    for engine in registered_engines(args.engines):
        for operation, (seconds, counts) in measure(engine, n).items():
            writes = sum(c for (_, method, _), c in counts.items() if method in WRITES)
            reads = sum(c for (_, method, _), c in counts.items() if method not in WRITES)
            by_service = collections.Counter()
            for (service, method, _), c in counts.items():
                if method in WRITES:
                    by_service[service] += c
            report.add(f"{engine}: {operation}, seconds per operation", seconds / n, "s")
            report.add(f"{engine}: {operation}, cloud calls per operation", (writes + reads) / n, "req")
            report.add(f"{engine}: {operation}, cloud writes per operation", writes / n, "req")
            report.notes.append(f"{engine} {operation}: writes by service "
                                f"{dict(sorted((s, round(c / n, 2)) for s, c in by_service.items()))}")
    report.print()
    report.write(args.json_out)


if __name__ == "__main__":
    main()
