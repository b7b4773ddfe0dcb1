"""fakecloud guests: boot-to-accepting-connections, memory per running guest, and the API with guests present.

Run alone:  .venv/bin/python bench/guest_bench.py [--guests 10] [--json-out result.json]

How it measures (so the figures can be judged):
- fakecloud runs in a CHILD process (`fakecloud serve` on a free loopback port, zero delays), so this
  process's clients do not share its interpreter.
- Boot to accepting: the clock starts before `POST /servers` (openstacksdk) for a server of the
  `postgresql-16-guest` image (a 1 GiB volume is attached as it would be by a DBaaS, after ACTIVE) and stops
  at the first successful `SELECT 1` through psycopg at the server's fixed IP. Once for one guest, then for
  N guests created back to back (all figures from the first create); the median and the slowest of the N.
  The first guest of a cloud also builds the template cluster (initdb, about 0.6 s of CPU on a quiet
  machine); later ones copy it. Each guest starts on its root disk at ACTIVE and restarts on the volume once
  it is attached, as a DBaaS's would.
- Memory per guest: the proportional set size (PSS, shared pages divided among sharers) of every
  PostgreSQL process of the guests, from /proc via psutil, divided by the number of guests; RSS of
  fakecloud itself beside it.
- The API with guests present: p50/p99 of `GET /servers/{id}` over keep-alive HTTP (http.client) with no
  guest, then with N idle guests, then with N guests each serving a client that runs queries in a loop
  through fakecloud's filtering proxy (the proxy shares fakecloud's event loop, so this is the contention).
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import openstack
import psutil
import psycopg
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Report, free_port, percentile, rss_mb  # noqa: E402

BENCH_RUNS = 2  # run_all.py: runs per `make bench`
IMAGE = "postgresql-16-guest"
WAIT = {"interval": 0.05, "wait": 120}


def start_cloud(workdir: Path) -> tuple[subprocess.Popen, str, Path]:
    port = free_port()
    clouds = workdir / "clouds.yaml"
    proc = subprocess.Popen([str(Path(sys.executable).parent / "fakecloud"), "serve", "--port", str(port),
                             "--clouds-yaml", str(clouds)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/_fakecloud/ready")
            if conn.getresponse().status == 200:
                return proc, url, clouds
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("fakecloud did not start")


def connect_sdk(clouds: Path) -> openstack.connection.Connection:
    entry = yaml.safe_load(clouds.read_text())["clouds"]["fakecloud"]
    return openstack.connect(auth=entry["auth"], region_name=entry.get("region_name", "RegionOne"),
                             identity_api_version=3)


def accept(address: str, password: str, timeout: float = 120.0) -> float:
    """Seconds (monotonic clock) at which a real client first ran a query on the guest."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(host=address, port=5432, user="postgres", password=password, dbname="postgres",
                                 connect_timeout=2) as db:
                db.execute("SELECT 1")
            return time.monotonic()
        except psycopg.OperationalError:
            time.sleep(0.01)
    raise TimeoutError(f"guest at {address} never accepted")


def boot(conn, name: str, image_id: str) -> tuple[object, str]:
    server = conn.compute.create_server(name=name, image_id=image_id, flavor_id="1", networks="auto",
                                        security_groups=[{"name": "bench-db"}])
    return server, server.admin_password


def boot_and_time(conn, count: int, image_id: str) -> list[float]:
    """Create `count` guests back to back; seconds from the first create to each one accepting."""
    started = time.monotonic()
    made = [boot(conn, f"bench-pg-{count}-{i}", image_id) for i in range(count)]
    ready = []
    for server, password in made:
        server = conn.compute.wait_for_server(server, **WAIT)
        volume = conn.block_storage.create_volume(name=f"{server.name}-data", size=1)
        conn.block_storage.wait_for_status(volume, "available", **WAIT)
        conn.compute.create_volume_attachment(server, volume=volume)
        ready.append((server.addresses["private"][0]["addr"], password))
    return [accept(address, password) - started for address, password in ready]


def guest_processes(cloud_pid: int) -> list[psutil.Process]:
    """PostgreSQL processes started by the cloud (each guest's postmaster and its children)."""
    postmasters = [p for p in psutil.Process(cloud_pid).children() if p.name() == "postgres"]
    return postmasters + [c for p in postmasters for c in p.children(recursive=True)]


def api_latency(url: str, token: str, server_id: str, requests: int) -> tuple[float, float]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    headers = {"X-Auth-Token": token, "OpenStack-API-Version": "compute 2.79"}
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        conn.request("GET", f"/compute/v2.1/servers/{server_id}", headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"GET /servers/{server_id}: {response.status}")
        samples.append(time.perf_counter() - started)
    conn.close()
    samples.sort()
    return percentile(samples, 50) * 1000, percentile(samples, 99) * 1000


def query_load(targets: list[tuple[str, str]], stop: threading.Event, counts: list[int]) -> None:
    """One client per guest, each running short queries until told to stop."""
    def client(index: int, address: str, password: str) -> None:
        with psycopg.connect(host=address, port=5432, user="postgres", password=password, dbname="postgres",
                             autocommit=True) as db:
            while not stop.is_set():
                db.execute("SELECT count(*) FROM pg_class").fetchone()
                counts[index] += 1

    threads = [threading.Thread(target=client, args=(i, a, p), daemon=True) for i, (a, p) in enumerate(targets)]
    for thread in threads:
        thread.start()
    stop.wait()
    for thread in threads:
        thread.join(10)


def run(args: argparse.Namespace) -> Report:
    report = Report("guests")
    report.params.update(cores=os.cpu_count(), guests=args.guests, api_requests=args.requests)
    with tempfile.TemporaryDirectory(prefix="guestbench-") as tmp:
        proc, url, clouds = start_cloud(Path(tmp))
        try:
            conn = connect_sdk(clouds)
            group = conn.network.create_security_group(name="bench-db")
            conn.network.create_security_group_rule(security_group_id=group.id, direction="ingress",
                                                    ethertype="IPv4", protocol="tcp", port_range_min=5432,
                                                    port_range_max=5432, remote_ip_prefix="127.0.0.1/32")
            image_id = next(conn.image.images(name=IMAGE)).id
            plain = conn.compute.create_server(name="bench-plain", image_id=next(conn.image.images(
                name="cirros-0.6.2")).id, flavor_id="1", networks="auto")
            plain = conn.compute.wait_for_server(plain, **WAIT)
            token = conn.auth_token
            base_p50, base_p99 = api_latency(url, token, plain.id, args.requests)
            base_rss = rss_mb(proc.pid)

            (first,) = boot_and_time(conn, 1, image_id)
            (one,) = boot_and_time(conn, 1, image_id)
            many = boot_and_time(conn, args.guests, image_id)
            running = [s for s in conn.compute.servers() if s.name.startswith("bench-pg-")]
            processes = guest_processes(proc.pid)
            pss = sum(p.memory_full_info().pss for p in processes) / (1 << 20)
            idle_p50, idle_p99 = api_latency(url, token, plain.id, args.requests)

            loaded = run_loaded(url, token, plain.id, args, conn, image_id)
            report.add("boot to accepting connections, first guest of the cloud (builds the template)", first, "s")
            report.add("boot to accepting connections, 1 guest", one, "s", "< 3")
            report.add(f"boot to accepting connections, {args.guests} at once, median", statistics.median(many), "s")
            report.add(f"boot to accepting connections, {args.guests} at once, slowest", max(many), "s", "< 15")
            report.add("memory per running guest (PSS of its PostgreSQL processes)", pss / len(running), "MiB",
                       "< 64")
            report.add("fakecloud RSS before guests", base_rss, "MiB")
            report.add(f"fakecloud RSS with {len(running)} guests", rss_mb(proc.pid), "MiB")
            report.add("GET /servers/{id} p50, no guests", base_p50, "ms")
            report.add("GET /servers/{id} p99, no guests", base_p99, "ms")
            report.add(f"GET /servers/{{id}} p50, {len(running)} idle guests", idle_p50, "ms")
            report.add(f"GET /servers/{{id}} p99, {len(running)} idle guests", idle_p99, "ms")
            report.add("GET /servers/{id} p50, guests under query load", loaded["p50"], "ms")
            report.add("GET /servers/{id} p99, guests under query load", loaded["p99"], "ms")
            report.add("guest queries/s during that load (all guests)", loaded["qps"], "q/s")
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
    return report


def run_loaded(url: str, token: str, server_id: str, args: argparse.Namespace, conn, image_id: str) -> dict:
    """API latency while `args.load_guests` fresh guests each serve a client querying in a loop."""
    made = [boot(conn, f"bench-load-{i}", image_id) for i in range(args.load_guests)]
    targets = []
    for server, password in made:
        server = conn.compute.wait_for_server(server, **WAIT)
        address = server.addresses["private"][0]["addr"]
        accept(address, password)
        targets.append((address, password))
    stop, counts = threading.Event(), [0] * len(targets)
    loader = threading.Thread(target=query_load, args=(targets, stop, counts), daemon=True)
    loader.start()
    time.sleep(0.5)
    started = time.monotonic()
    before = sum(counts)
    p50, p99 = api_latency(url, token, server_id, args.requests)
    qps = (sum(counts) - before) / (time.monotonic() - started)
    stop.set()
    loader.join(15)
    return {"p50": p50, "p99": p99, "qps": qps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--guests", type=int, default=10, help="guests booted at once")
    parser.add_argument("--load-guests", type=int, default=4, help="guests serving query clients under load")
    parser.add_argument("--requests", type=int, default=2000, help="API requests per latency phase")
    parser.add_argument("--json-out", help="write the result here for run_all.py")
    args = parser.parse_args()
    report = run(args)
    report.print()
    report.write(args.json_out)
    if any(m.met() is False for m in report.metrics):
        print("some figures miss their goals (see above)")


if __name__ == "__main__":
    main()
