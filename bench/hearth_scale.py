"""Hearth's read path with 10,000 instances in the database, on SQLite and on PostgreSQL.

Run alone:  .venv/bin/python bench/hearth_scale.py [--instances 10000] [--walks 3] [--gets 1000]

For each database: `fakecloud serve`, `hearth serve --no-taskmanager` (the API) and `hearth taskmanager`,
three processes. The rows are SEEDED DIRECTLY through Hearth's SQLAlchemy models (not through the API: 10,000
creates would measure the create path, not the reads): N ACTIVE instances of the demo project, each with one
access rule, a succeeded provision operation and two events, in batches of 1,000 rows per commit.
Then, from one client (requests, keep-alive, sequential, so the figure is latency, not contention):
- `GET /v1.0/{project}/instances?limit=100` walked marker by marker through all N instances, `walks` times
  (every walk must return each instance exactly once);
- `GET /v1.0/{project}/instances/{id}` for `gets` random ids.
p50/p99 are client-side (request to complete response). Peak RSS is VmHWM of the API and task manager
processes after the load. Targets: p99 < 50 ms, each process < 300 MB.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Report, percentile  # noqa: E402
from _hearth import BenchError, HearthClient, Stack, temp_postgres  # noqa: E402

BENCH_RUNS = 2  # run_all.py: runs per `make bench` (keeps the whole under 10 minutes)


def seed(db_url: str, project_id: str, count: int) -> float:
    from hearth.db.models import Event, Instance, Operation, OperationState, SecurityGroupRule, Task, utcnow
    from hearth.db.session import make_engine, session_factory

    engine = make_engine(db_url)
    sessions = session_factory(engine)
    began = time.perf_counter()
    base = utcnow() - timedelta(days=1)
    try:
        for start in range(0, count, 1000):
            with sessions.begin() as session:
                for i in range(start, min(count, start + 1000)):
                    created = base + timedelta(milliseconds=5 * i)
                    inst = Instance(id=str(uuid.uuid4()), project_id=project_id, name=f"scale-{i:05d}",
                                    engine="natives", datastore="postgresql", datastore_version="16", flavor_id="1",
                                    volume_size=1, image_id=str(uuid.uuid4()), port=5432, task=Task.NONE,
                                    server_status="ACTIVE", server_id=str(uuid.uuid4()),
                                    volume_id=str(uuid.uuid4()), secgroup_id=str(uuid.uuid4()),
                                    created_at=created, updated_at=created)
                    session.add(inst)
                    session.add(SecurityGroupRule(instance_id=inst.id, protocol="tcp", from_port=5432, to_port=5432,
                                                  cidr="0.0.0.0/0", cloud_rule_id=str(uuid.uuid4()),
                                                  created_at=created))
                    op = Operation(id=str(uuid.uuid4()), instance_id=inst.id, kind="provision", params={},
                                   state=OperationState.SUCCEEDED, journal={"server_id": inst.server_id},
                                   attempts=1, created_at=created, started_at=created, finished_at=created)
                    session.add(op)
                    session.add(Event(instance_id=inst.id, operation_id=op.id, message="create requested",
                                      at=created))
                    session.add(Event(instance_id=inst.id, operation_id=op.id, message="create succeeded",
                                      at=created))
    finally:
        engine.dispose()
    return time.perf_counter() - began


def walk(api: HearthClient, expected: int) -> list[float]:
    latencies: list[float] = []
    seen: set[str] = set()
    marker = None
    while True:
        path = "/instances?limit=100" + (f"&marker={marker}" if marker else "")
        began = time.perf_counter()
        page = api.call("GET", path, 200)
        latencies.append(time.perf_counter() - began)
        ids = [inst["id"] for inst in page["instances"]]
        if seen.intersection(ids):
            raise BenchError("a page repeated instances of an earlier page")
        seen.update(ids)
        if not page.get("links"):
            break
        marker = ids[-1]
    if len(seen) != expected:
        raise BenchError(f"the paginated walk returned {len(seen)} instances, expected {expected}")
    return latencies


def measure(report: Report, label: str, db_url: str | None, args: argparse.Namespace) -> None:
    with contextlib.ExitStack() as scope:
        url = scope.enter_context(temp_postgres()) if db_url == "postgresql" else None
        stack = scope.enter_context(Stack(engine="natives", profile="zero", db_url=url, split_taskmanager=True))
        api = stack.client()
        project_id = api.base.rsplit("/", 1)[-1]
        seconds = seed(stack.hearth_env()["HEARTH_DB_URL"], project_id, args.instances)
        report.params[f"{label} seeding, s"] = round(seconds, 1)
        walk(api, args.instances)  # warm-up (caches, connection pool, the query plans)
        pages = sorted(x for _ in range(args.walks) for x in walk(api, args.instances))
        ids = list(api.list_all().keys())
        rng = random.Random(7)
        singles: list[float] = []
        for _ in range(args.gets):
            instance_id = rng.choice(ids)
            began = time.perf_counter()
            shown = api.show(instance_id)
            singles.append(time.perf_counter() - began)
            if shown["id"] != instance_id or shown["status"] != "ACTIVE":
                raise BenchError(f"GET instances/{instance_id} answered {shown}")
        singles.sort()
        stack.check()
        assert stack.api is not None and stack.taskmanager is not None
        report.add(f"{label}: GET instances?limit=100 p50", 1000 * percentile(pages, 50), "ms")
        report.add(f"{label}: GET instances?limit=100 p99", 1000 * percentile(pages, 99), "ms", "< 50")
        report.add(f"{label}: GET instances/{{id}} p50", 1000 * percentile(singles, 50), "ms")
        report.add(f"{label}: GET instances/{{id}} p99", 1000 * percentile(singles, 99), "ms", "< 50")
        report.add(f"{label}: API process peak RSS", stack.api.peak_rss_mb(), "MiB", "< 300")
        report.add(f"{label}: task manager process peak RSS", stack.taskmanager.peak_rss_mb(), "MiB", "< 300")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--walks", type=int, default=2, help="full paginated walks measured")
    parser.add_argument("--gets", type=int, default=1000, help="single-instance GETs measured")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--json-out")
    args = parser.parse_args()
    report = Report("hearth_scale")
    report.params.update(instances=args.instances, seeding="direct inserts through the SQLAlchemy models",
                         processes="fakecloud serve, hearth serve --no-taskmanager, hearth taskmanager",
                         client="one keep-alive client, sequential requests")
    for name in args.databases.split(","):
        measure(report, "SQLite" if name == "sqlite" else "PostgreSQL", name, args)
    report.print()
    report.write(args.json_out)


if __name__ == "__main__":
    main()
