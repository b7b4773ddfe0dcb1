"""What metrics and request ids cost (issue 16): hearth_throughput's run with `metrics = true` against the same
run with `metrics = false`, alternating, on the same machine.

    .venv/bin/python bench/metrics_cost.py [--instances 150] [--pairs 2] [--engine natives]

Each run is hearth_throughput.run_hearth: a fresh `fakecloud serve` (zero delays) and Hearth in the production
layout (`hearth serve --no-taskmanager` + `hearth taskmanager`), N creates to ACTIVE then N deletes, timed from
the first POST, with a datastore Hearth does not manage (no PostgreSQL process per instance: the control
plane's own throughput, which is what counting could slow). Request ids are always on (every operation records
its id and every cloud call carries it); `metrics = false` turns off the counting and the cloud-request hook.
Pairs alternate off/on so a drift of the machine hits both. Reported: provision and delete throughput with
metrics on and off (medians), the ratio on/off (goal: >= 0.97, i.e. under 3 % slower), and Hearth's CPU per
instance each way.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Report  # noqa: E402
from _hearth import Stack  # noqa: E402
from hearth_throughput import run_hearth  # noqa: E402

BENCH_RUNS = 1  # one run is `pairs` x 2 throughput runs (a few minutes)


def _run(engine: str, instances: int, workers: int, metrics: bool) -> dict[str, float]:
    env = {"HEARTH_METRICS": "true" if metrics else "false"}
    with Stack(engine=engine, profile="zero", workers=workers, split_taskmanager=True, extra_env=env) as stack:
        return run_hearth(stack, instances, workers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=150)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--engine", default="natives")
    parser.add_argument("--json-out")
    args = parser.parse_args()
    n = args.instances
    runs: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    for _ in range(args.pairs):
        for metrics in (False, True):
            runs[metrics].append(_run(args.engine, n, args.workers, metrics))

    def median(metrics: bool, key: str) -> float:
        return statistics.median(run[key] for run in runs[metrics])

    report = Report("metrics_cost")
    report.params.update(instances=n, workers=args.workers, engine=args.engine, pairs=args.pairs, profile="zero",
                         processes="fakecloud serve, hearth serve --no-taskmanager, hearth taskmanager")
    for phase, key in (("provision", "provision_s"), ("delete", "delete_s")):
        on, off = n / median(True, key), n / median(False, key)
        report.add(f"{phase} throughput, metrics on / off", on / off, "x", ">= 0.97")
        report.add(f"{phase} throughput, metrics on", on, "inst/s")
        report.add(f"{phase} throughput, metrics off", off, "inst/s")
    report.add("Hearth CPU per instance (create+delete), metrics on", 1000 * median(True, "hearth_cpu_s") / n, "ms")
    report.add("Hearth CPU per instance (create+delete), metrics off", 1000 * median(False, "hearth_cpu_s") / n,
               "ms")
    report.notes.append("runs alternate off/on; each: " + "; ".join(
        f"{'on' if m else 'off'} {n / r['provision_s']:.1f}/{n / r['delete_s']:.1f} inst/s"
        for m in (False, True) for r in runs[m]))
    report.print()
    report.write(args.json_out)


if __name__ == "__main__":
    main()
