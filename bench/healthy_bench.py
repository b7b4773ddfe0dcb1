"""Databases (issue 14): time to HEALTHY against its floor, and the cost of the background health check.

Run alone:  .venv/bin/python bench/healthy_bench.py [--singles 5] [--batches 3] [--batch 10] [--passes 5]

fakecloud (`fakecloud serve`, zero delays, unlimited quotas) and Hearth (`hearth serve`, API and task manager in
one process, SQLite, the default datastore postgresql 16 = image `postgresql-16-guest`, whose servers run a real
PostgreSQL) are separate processes (bench/_hearth.Stack). Hearth's own background check is off
(HEARTH_HEALTH_CHECK_SECONDS=0) so it does not run during the timings; part 2 runs it on purpose.

1. Time to HEALTHY, through the REST API: a create as Trove's tests make it (flavor 1, 1 GB volume, one nic on
   the demo project's private network, a database and a user with access to it), timed from just before the
   POST until a GET of the instance shows status ACTIVE and operating_status HEALTHY (polled every 20 ms;
   for the batch, every pending instance every 20 ms, one poller). `singles` runs of 1 instance and `batches`
   runs of `batch` instances POSTed at once (one client thread each); the median is reported.
   The floor, measured in the same cloud interleaved with Hearth's runs (floor run, then Hearth run): bare
   openstacksdk makes the same resources on the critical path (volume create, security group + one rule, a
   port with it on the private network; once the volume is available, server boot from the same image on that
   port with the volume mapped at boot, as Hearth boots it; until ACTIVE), polling every 10 ms, PLUS the
   guest's start time:
   from that server being ACTIVE to its PostgreSQL first answering `SELECT 1` through psycopg (polled every
   10 ms from a thread started at ACTIVE). Floor of one instance = SDK path + guest start; of a batch =
   max over the instances of (its SDK path end + its guest start) - the first request. The floor's resources
   are deleted after each floor run; Hearth's instances stay for part 2.
   Targets: Hearth / floor <= 1.10 for one instance, <= 1.25 for the batch.
2. The background check: `hearth.taskmanager.database.check_once(runtime)` (16 threads, one connection + one
   query per idle managed instance) run in THIS process on a Runtime over Hearth's own database and secret
   key, against every instance part 1 left (N = singles + batches * batch real guests). One warm-up pass,
   then `passes` measured passes; per pass: connections opened (psycopg.connect calls, counted by a wrapper
   during the pass), CPU seconds of this process (psutil; it does nothing else meanwhile), fakecloud's CPU
   (its guest-port proxy carries every connection), the guests' CPU (psutil: every guest postmaster's own and
   reaped children's CPU, i.e. the backends each check forked, minus the same guests' CPU over an equally
   long idle window), and wall time. Per 1,000 instances is an EXTRAPOLATION (linear in N, wall time at 16
   threads): 1,000 real PostgreSQL guests do not fit on this machine (each guest is a PostgreSQL cluster).
Only loopback addresses are dialled (every fakecloud address is 127.x). Guest addresses are the same in every
fakecloud on a machine: run it under `flock /tmp/hearth-guests.lock` with no other guest-booting fakecloud
(conformance, pytest) running; `make bench` takes that lock around run_all.py.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import os
import statistics
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Report  # noqa: E402
from _hearth import BenchError, HearthClient, Stack  # noqa: E402

BENCH_RUNS = 1  # run_all.py: one invocation already repeats (singles, batches, passes) and reports medians
IMAGE = "postgresql-16-guest"
PORT = 5432
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


def loopback(address: str) -> str:
    if ipaddress.ip_address(address) not in LOOPBACK:
        raise BenchError(f"refusing to dial {address}: only loopback addresses")
    return address


def poll(fetch: Any, done: Any, what: str, interval: float = 0.01, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = fetch()
        if done(found):
            return found
        if "ERROR" in str(getattr(found, "status", "")).upper():
            raise BenchError(f"{what}: {found.status}")
        if time.monotonic() > deadline:
            raise BenchError(f"timed out waiting for {what}")
        time.sleep(interval)


def accept(address: str, password: str, timeout: float = 120.0) -> float:
    """perf_counter when the guest first answered a query."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(host=loopback(address), port=PORT, user="postgres", password=password,
                                 dbname="postgres", connect_timeout=2) as db:
                db.execute("SELECT 1")
            return time.perf_counter()
        except psycopg.OperationalError:
            time.sleep(0.01)
    raise BenchError(f"guest at {address} never answered")


def bootstrap(address: str, password: str) -> float:
    """Seconds for what Hearth's create does once the database answers: the database, then the user with its
    grant (bare psycopg, one connection); not part of the floor the targets use, reported beside it."""
    began = time.perf_counter()
    with psycopg.connect(host=loopback(address), port=PORT, user="postgres", password=password, dbname="postgres",
                         connect_timeout=2, autocommit=True) as db:
        db.execute("CREATE DATABASE orders")
        db.execute("CREATE ROLE app LOGIN PASSWORD 'PassW0rd-app'")
        db.execute("GRANT ALL PRIVILEGES ON DATABASE orders TO app")
    return time.perf_counter() - began


def on_volume(address: str, password: str, volume_id: str, timeout: float = 120.0) -> float:
    """perf_counter when the guest first answered from its data volume (fakecloud restarts a guest on its
    volume once attached: `SHOW data_directory` then names the volume)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(host=loopback(address), port=PORT, user="postgres", password=password,
                                 dbname="postgres", connect_timeout=2) as db:
                row = db.execute("SHOW data_directory").fetchone()
            if row and volume_id in str(row[0]):
                return time.perf_counter()
        except psycopg.OperationalError:
            pass
        time.sleep(0.01)
    raise BenchError(f"guest at {address} never answered from volume {volume_id}")


# --------------------------------------------------------------------------------------------------
# The floor: bare openstacksdk + the guest's start


class Floor:
    def __init__(self, stack: Stack, threads: int) -> None:
        import openstack.config
        from openstack.connection import Connection

        config = openstack.config.OpenStackConfig(config_files=[str(stack.clouds_yaml)], load_envvars=False)
        self.conns = [Connection(config=config.get_one(cloud="fakecloud")) for _ in range(threads)]
        conn = self.conns[0]
        self.image = conn.image.find_image(IMAGE, ignore_missing=False)
        self.flavor = conn.compute.find_flavor("1", ignore_missing=False)
        self.network = next(n for n in conn.network.networks(name="private")
                            if n.project_id == conn.current_project_id)
        for c in self.conns:  # every connection authenticated and its endpoints discovered before timing
            c.compute.get_limits()
            c.block_storage.get_limits()
            list(c.network.security_groups(name="none"))

    def one(self, i: int, barrier: threading.Barrier) -> dict[str, Any]:
        conn = self.conns[i]
        name = f"floor-{uuid.uuid4().hex[:8]}"
        barrier.wait()
        t0 = time.perf_counter()
        volume = conn.block_storage.create_volume(name=f"{name}-data", size=1)
        group = conn.network.create_security_group(name=name)
        conn.network.create_security_group_rule(security_group_id=group.id, direction="ingress", ether_type="IPv4",
                                                protocol="tcp", port_range_min=PORT, port_range_max=PORT,
                                                remote_ip_prefix="0.0.0.0/0")
        port = conn.network.create_port(name=f"{name}-port", network_id=self.network.id,
                                        security_group_ids=[group.id])
        poll(lambda: conn.block_storage.get_volume(volume.id), lambda v: v.status == "available", "volume")
        server = conn.compute.create_server(  # the data volume mapped at boot, as Hearth (and Trove) boot it
            name=name, flavor_id=self.flavor.id, image_id=self.image.id, networks=[{"port": port.id}],
            block_device_mapping=[
                {"boot_index": 0, "uuid": self.image.id, "source_type": "image", "destination_type": "local",
                 "delete_on_termination": True},
                {"boot_index": -1, "uuid": volume.id, "source_type": "volume", "destination_type": "volume",
                 "delete_on_termination": False}])
        password = server.admin_password
        server = poll(lambda: conn.compute.get_server(server.id), lambda s: s.status == "ACTIVE", "server")
        t_active = time.perf_counter()
        address = port.fixed_ips[0]["ip_address"]
        answered: list[float] = []
        waiter = threading.Thread(target=lambda: answered.append(accept(address, password)), daemon=True)
        waiter.start()
        t_sdk = t_active  # ACTIVE: Nova attached the mapped volume as part of the build
        waiter.join(130)
        if not answered:
            raise BenchError(f"floor guest {address} never answered")
        t_volume = on_volume(address, password, volume.id)
        return {"t0": t0, "sdk_end": t_sdk, "guest_start": answered[0] - t_active, "sdk": t_sdk - t0,
                "t_volume": t_volume,
                "bootstrap": bootstrap(address, password), "made": (server.id, volume.id, port.id, group.id)}

    def run(self, count: int) -> dict[str, float]:
        barrier = threading.Barrier(count)
        with ThreadPoolExecutor(count) as pool:
            done = list(pool.map(lambda i: self.one(i, barrier), range(count)))
        first = min(d["t0"] for d in done)
        floor = max(d["sdk_end"] + d["guest_start"] for d in done) - first
        with_db = max(d["sdk_end"] + d["guest_start"] + d["bootstrap"] for d in done) - first
        self.cleanup([d["made"] for d in done])
        return {"floor": floor, "end_to_end": max(d["t_volume"] for d in done) - first,
                "with_db": with_db, "bootstrap": statistics.median(d["bootstrap"] for d in done),
                "sdk": max(d["sdk_end"] for d in done) - first,
                "guest_start": statistics.median(d["guest_start"] for d in done),
                "guest_start_max": max(d["guest_start"] for d in done)}

    def cleanup(self, made: list[tuple[str, str, str, str]]) -> None:
        from openstack import exceptions

        conn = self.conns[0]
        for made_one in made:
            conn.compute.delete_server(made_one[0])
        for made_one in made:
            with contextlib.suppress(exceptions.NotFoundException):
                poll(lambda s=made_one[0]: conn.compute.get_server(s), lambda _s: False, "server delete", 0.05, 30)
        for _server_id, volume_id, port_id, group_id in made:
            poll(lambda v=volume_id: conn.block_storage.get_volume(v), lambda v: v.status == "available",
                 "detach", 0.05, 30)
            conn.block_storage.delete_volume(volume_id)
            conn.network.delete_port(port_id, ignore_missing=True)
            conn.network.delete_security_group(group_id)


# --------------------------------------------------------------------------------------------------
# Hearth


def create_body(name: str, network_id: str) -> dict[str, Any]:
    return {"instance": {"name": name, "flavorRef": "1", "volume": {"size": 1}, "nics": [{"net-id": network_id}],
                         "databases": [{"name": "orders"}],
                         "users": [{"name": "app", "password": "PassW0rd-app", "databases": [{"name": "orders"}]}]}}


def hearth_run(clients: list[HearthClient], poller: HearthClient, network_id: str) -> tuple[float, list[str]]:
    """POST len(clients) creates at once; seconds from the first POST until the last is ACTIVE and HEALTHY."""
    count = len(clients)
    barrier = threading.Barrier(count)
    began = [0.0] * count

    def post(i: int) -> str:
        barrier.wait()
        began[i] = time.perf_counter()
        body = create_body(f"healthy-{uuid.uuid4().hex[:8]}", network_id)
        return clients[i].call("POST", "/instances", 200, json=body)["instance"]["id"]

    with ThreadPoolExecutor(count) as pool:
        ids = list(pool.map(post, range(count)))
    pending, done_at = set(ids), 0.0
    deadline = time.monotonic() + 300
    while pending:
        for instance_id in list(pending):
            inst = poller.show(instance_id)
            if inst["status"] in ("ERROR", "FAILED"):
                raise BenchError(f"{instance_id} went {inst['status']}: {inst.get('fault')}")
            if inst["status"] == "ACTIVE" and inst.get("operating_status") == "HEALTHY":
                pending.discard(instance_id)
                done_at = time.perf_counter()
        if pending:
            if time.monotonic() > deadline:
                raise BenchError(f"{len(pending)} instance(s) not HEALTHY in 300 s")
            poller.stack.check()
            time.sleep(0.02)
    return done_at - min(began), ids


# --------------------------------------------------------------------------------------------------
# The background check


def guest_cpu(cloud_pid: int) -> float:
    """CPU seconds of every guest postmaster, its live children and the children it has reaped."""
    total = 0.0
    for proc in psutil.Process(cloud_pid).children():
        with contextlib.suppress(psutil.Error):
            if proc.name() != "postgres":
                continue
            t = proc.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
            for child in proc.children():
                with contextlib.suppress(psutil.Error):
                    c = child.cpu_times()
                    total += c.user + c.system
    return total


def health_passes(stack: Stack, passes: int) -> dict[str, float]:
    from hearth.config import Settings
    from hearth.runtime import build_runtime
    from hearth.taskmanager import database

    assert stack.tmp is not None
    env = stack.hearth_env()
    settings = Settings(home=Path(env["HEARTH_HOME"]), db_url=env["HEARTH_DB_URL"], cloud="fakecloud",
                        clouds_yaml=stack.clouds_yaml, health_check_seconds=0, log_level="WARNING")
    runtime = build_runtime(settings, migrate=False)
    connects = [0]
    real_connect = psycopg.connect
    lock = threading.Lock()

    def counting(*args: Any, **kwargs: Any) -> Any:
        with lock:
            connects[0] += 1
        return real_connect(*args, **kwargs)

    me = psutil.Process()
    assert stack.cloud is not None
    cloud_pid = stack.cloud.pid
    psycopg.connect = counting  # type: ignore[assignment]
    try:
        database.check_once(runtime)  # warm-up: volume.used recorded, threads and imports made
        samples: list[dict[str, float]] = []
        for _ in range(passes):
            time.sleep(0.5)
            c0, g0, f0, n0 = me.cpu_times(), guest_cpu(cloud_pid), stack.cloud.cpu_seconds(), connects[0]
            t0 = time.perf_counter()
            changed = database.check_once(runtime)
            wall = time.perf_counter() - t0
            c1, g1, f1, n1 = me.cpu_times(), guest_cpu(cloud_pid), stack.cloud.cpu_seconds(), connects[0]
            time.sleep(0.2)
            i0 = guest_cpu(cloud_pid)  # the guests' own background CPU over an equally long idle window
            time.sleep(wall)
            idle = guest_cpu(cloud_pid) - i0
            samples.append({"wall": wall, "cpu": (c1.user + c1.system) - (c0.user + c0.system),
                            "guests": (g1 - g0) - idle, "guests_idle": idle, "cloud": f1 - f0,
                            "connects": n1 - n0, "changed": changed})
    finally:
        psycopg.connect = real_connect  # type: ignore[assignment]
        runtime.close()
    return {key: statistics.median(s[key] for s in samples) for key in samples[0]}


def run(args: argparse.Namespace) -> Report:
    report = Report("healthy_bench")
    report.params.update(cores=os.cpu_count(), singles=args.singles, batches=args.batches, batch=args.batch,
                         passes=args.passes, image=IMAGE, profile=args.profile)
    from hearth.config import Settings

    workers = Settings.model_fields["workers"].default  # Hearth's default task manager threads (the Stack's is 8)
    report.params["workers"] = workers
    with Stack(engine="natives", profile=args.profile, workers=workers, datastores=None,  # guests: real databases
               extra_env={"HEARTH_HEALTH_CHECK_SECONDS": "0"}) as stack:
        floor = Floor(stack, args.batch)
        network_id = floor.network.id
        poller = stack.client()
        clients = [stack.client() for _ in range(args.batch)]
        # warm-up, not reported: the first guest of a cloud builds the template cluster (initdb), and Hearth's
        # first create makes its connections
        floor.run(1)
        _, warm = hearth_run(clients[:1], poller, network_id)
        f1, h1, f1_parts = [], [], []
        for _ in range(args.singles):
            got = floor.run(1)
            f1.append(got["floor"])
            f1_parts.append(got)
            h1.append(hearth_run(clients[:1], poller, network_id)[0])
        fn, hn, fn_parts = [], [], []
        for _ in range(args.batches):
            got = floor.run(args.batch)
            fn.append(got["floor"])
            fn_parts.append(got)
            hn.append(hearth_run(clients, poller, network_id)[0])
        live = len(poller.list_all())
        check = health_passes(stack, args.passes)

    n = args.batch
    med = statistics.median
    report.add("1 instance: POST to ACTIVE+HEALTHY", med(h1), "s")
    report.add("1 instance: floor (bare-SDK path + guest start)", med(f1), "s")
    report.add("1 instance: floor, bare-SDK path", med(p["sdk"] for p in f1_parts), "s")
    report.add("1 instance: floor, guest start (server ACTIVE to SELECT 1)", med(p["guest_start"] for p in f1_parts),
               "s")
    report.add("1 instance: Hearth / floor", med(h / f for h, f in zip(h1, f1, strict=True)), "x", "<= 1.10")
    report.add("1 instance: bare-SDK end to end (POST to answering on its volume)",
               med(p["end_to_end"] for p in f1_parts), "s")
    report.add("1 instance: Hearth / bare-SDK end to end",
               med(h / p["end_to_end"] for h, p in zip(h1, f1_parts, strict=True)), "x")
    report.add("1 instance: floor's database + user (bare psycopg, not in the floor)",
               med(p["bootstrap"] for p in f1_parts), "s")
    report.add("1 instance: Hearth / (floor + database and user)",
               med(h / p["with_db"] for h, p in zip(h1, f1_parts, strict=True)), "x")
    report.add(f"{n} at once: POST to last ACTIVE+HEALTHY", med(hn), "s")
    report.add(f"{n} at once: floor (bare-SDK path + guest start)", med(fn), "s")
    report.add(f"{n} at once: floor, bare-SDK path", med(p["sdk"] for p in fn_parts), "s")
    report.add(f"{n} at once: floor, guest start, median", med(p["guest_start"] for p in fn_parts), "s")
    report.add(f"{n} at once: floor, guest start, slowest", med(p["guest_start_max"] for p in fn_parts), "s")
    report.add(f"{n} at once: Hearth / floor", med(h / f for h, f in zip(hn, fn, strict=True)), "x", "<= 1.25")
    report.add(f"{n} at once: bare-SDK end to end (POST to last answering on its volume)",
               med(p["end_to_end"] for p in fn_parts), "s")
    report.add(f"{n} at once: Hearth / bare-SDK end to end",
               med(h / p["end_to_end"] for h, p in zip(hn, fn_parts, strict=True)), "x")
    report.add(f"{n} at once: Hearth / (floor + database and user)",
               med(h / p["with_db"] for h, p in zip(hn, fn_parts, strict=True)), "x")
    report.add("health check: managed instances checked (N, real guests)", live, "inst")
    report.add("health check: connections opened per pass", check["connects"], "conn")
    report.add("health check: wall time per pass", check["wall"], "s")
    report.add("health check: Hearth process CPU per pass", check["cpu"], "s")
    report.add("health check: fakecloud CPU per pass (guest-port proxy)", check["cloud"], "s")
    report.add("health check: guests' CPU per pass (minus idle)", check["guests"], "s")
    report.add("health check: Hearth CPU per check", 1000 * check["cpu"] / live, "ms")
    report.add("health check: guest CPU per check", 1000 * check["guests"] / live, "ms")
    scale = 1000 / live
    report.add("health check per 1,000 instances (extrapolated): connections", check["connects"] * scale, "conn")
    report.add("health check per 1,000 instances (extrapolated): Hearth CPU", check["cpu"] * scale, "s")
    report.add("health check per 1,000 instances (extrapolated): guests' CPU", check["guests"] * scale, "s")
    report.add("health check per 1,000 instances (extrapolated): wall time at 16 threads", check["wall"] * scale, "s")
    report.notes.append(f"per-1,000 figures are a linear extrapolation from N={live} real guests: 1,000 real "
                        f"PostgreSQL guests do not fit on this {os.cpu_count()}-core machine")
    report.notes.append(f"Hearth per run, 1 instance: {', '.join(f'{v:.2f}' for v in h1)} s; floor: "
                        f"{', '.join(f'{v:.2f}' for v in f1)} s; {n} at once: {', '.join(f'{v:.2f}' for v in hn)} s; "
                        f"floor: {', '.join(f'{v:.2f}' for v in fn)} s")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--singles", type=int, default=5)
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--profile", choices=("zero", "realistic"), default="zero",
                        help="fakecloud's delays: zero measures Hearth's own overhead, realistic a cloud's pace")
    parser.add_argument("--json-out")
    args = parser.parse_args()
    report = run(args)
    report.print()
    report.write(args.json_out)


if __name__ == "__main__":
    main()
