"""What Hearth costs when nobody uses it, and how fast its task manager notices work queued elsewhere.

Run alone:  .venv/bin/python bench/hearth_idle.py [--settle 10] [--idle 20] [--pickups 10]

1. A whole `hearth up` (one process: fakecloud, the API, the task manager) on a fresh home: its CPU use in
   milli-CPU-seconds per second (ms/s; 1 ms/s = 0.001 CPU-s/s) over the first `settle` seconds after the API
   first answers (start-up, imports excluded), then over `idle` seconds with no request at all. Goal: idle at
   or under Trove's 5.5 ms/s (0.0055 CPU-s/s), measured beside it on this machine.
2. Pick-up latency across processes, on SQLite and on PostgreSQL (skipped if 127.0.0.1:5432 does not answer):
   `hearth serve --no-taskmanager` + `hearth taskmanager`, `pickups` creates one after another, each the
   operation's started_at minus its created_at (both stamped by Hearth, same host clock): how long a queued
   operation waits before a worker in the other process claims it. Goal: p50 no worse than the ~10 ms the
   stat loop gave.
Well under a minute in all.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Report, free_port, percentile  # noqa: E402
from _hearth import BIN, ROOT, BenchError, Service, Stack, _wait_http, temp_postgres  # noqa: E402

BENCH_RUNS = 2  # run_all.py: about 45 s a run
IDLE_GOAL = 5.5  # ms of CPU per s of idle upstream Trove 26 (fake mode) on this machine


def _tree_cpu(proc: psutil.Process) -> float:
    """CPU seconds of a process and its children (user + system)."""
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            times = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def idle_up(report: Report, settle: float, idle: float) -> None:
    """CPU of an idle `hearth up`: the start-up window, then the steady state."""
    with tempfile.TemporaryDirectory(prefix="hearth-idle-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HEARTH_", "OS_"))}
        env["HEARTH_LOG_LEVEL"] = "WARNING"
        port, cloud_port = free_port(), free_port()
        log = Path(tmp) / "up.log"
        handle = log.open("wb")
        proc = subprocess.Popen([str(BIN / "hearth"), "up", "--port", str(port), "--cloud-port", str(cloud_port),
                                 "--home", str(Path(tmp) / "home")], stdout=handle, stderr=subprocess.STDOUT,
                                env=env, cwd=ROOT, start_new_session=True)
        handle.close()
        service = Service("hearth-up", proc, log)
        try:
            _wait_http(service, f"http://127.0.0.1:{port}/")
            ps = psutil.Process(proc.pid)
            at_ready, ready = _tree_cpu(ps), time.monotonic()
            time.sleep(settle)
            service.check()
            at_settle = _tree_cpu(ps)
            startup = (at_settle - at_ready) / (time.monotonic() - ready)
            window_start = time.monotonic()
            time.sleep(idle)
            service.check()
            idle_cpu = _tree_cpu(ps) - at_settle
            elapsed = time.monotonic() - window_start
        finally:
            service.stop()
    report.add(f"hearth up, first {settle:.0f} s after the API answers", startup * 1000.0, "ms/s")
    report.add(f"hearth up, idle ({idle:.0f} s after the first {settle:.0f})", idle_cpu / elapsed * 1000.0, "ms/s",
               f"<= {IDLE_GOAL}")


def pickups(report: Report, label: str, db_url: str | None, count: int) -> None:
    """Creates queued by the API process, claimed by the separate task manager process."""
    from sqlalchemy import select

    from hearth.db.models import Operation
    from hearth.db.session import make_engine

    with Stack(engine="natives", profile="zero", workers=4, db_url=db_url, split_taskmanager=True) as stack:
        api = stack.client()
        engine = make_engine(stack.hearth_env()["HEARTH_DB_URL"])
        time.sleep(2.0)  # past the task manager's start-up: its workers are idle and watching
        waits: list[float] = []
        try:
            for i in range(count):
                instance_id = api.create(f"pickup{i}")
                deadline = time.monotonic() + 30
                while True:
                    with engine.connect() as conn:
                        row = conn.execute(select(Operation.created_at, Operation.started_at)
                                           .where(Operation.instance_id == instance_id)).first()
                    if row is not None and row.started_at is not None:
                        waits.append((row.started_at - row.created_at).total_seconds() * 1000.0)
                        break
                    if time.monotonic() > deadline:
                        raise BenchError(f"{label}: operation of {instance_id} not claimed within 30 s")
                    stack.check()
                    time.sleep(0.005)
                api.wait_all([instance_id], "ACTIVE")
                time.sleep(0.3)  # the task manager is idle again before the next one
        finally:
            engine.dispose()
    waits.sort()
    report.add(f"{label}: pick-up latency p50", statistics.median(waits), "ms", "<= 15")
    report.add(f"{label}: pick-up latency max", percentile(waits, 100), "ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settle", type=float, default=10.0)
    parser.add_argument("--idle", type=float, default=20.0)
    parser.add_argument("--pickups", type=int, default=10)
    parser.add_argument("--json-out")
    args = parser.parse_args()
    report = Report("hearth_idle", params={"settle_s": args.settle, "idle_s": args.idle, "pickups": args.pickups})
    idle_up(report, args.settle, args.idle)
    pickups(report, "SQLite", None, args.pickups)
    try:
        with temp_postgres() as url:
            pickups(report, "PostgreSQL", url, args.pickups)
    except BenchError as exc:
        if "unreachable" not in str(exc):
            raise
        report.notes.append(f"PostgreSQL skipped: {exc}")
    report.print()
    report.write(args.json_out)


if __name__ == "__main__":
    main()
