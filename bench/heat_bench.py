"""Heat stack throughput through openstacksdk against an in-process fakecloud (zero-delay profile).

Each stack is a server + a volume + its attachment + a security group with 2 rules. Phase one
creates every stack and waits for CREATE_COMPLETE one at a time, then deletes them one at a time;
phase two does the same with several client threads, each with its own Connection. With `--json-out`
it writes the figures in bench/_harness.py's Report format, which bench/run_all.py tabulates. Exits 1
(and writes no figures) if any stack fails or anything is left behind.

    .venv/bin/python bench/heat_bench.py [--stacks 100] [--threads 8] [--json-out PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openstack

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Report  # noqa: E402
from openstack_fakecloud.config import CloudConfig, Quotas
from openstack_fakecloud.testing import running_cloud

BENCH_RUNS = 2  # run_all.py: runs per `make bench` (keeps the whole under 10 minutes)
WAIT = {"interval": 0.02, "wait": 120}
TEMPLATE = {
    "heat_template_version": "2021-04-16",
    "resources": {
        "sg": {"type": "OS::Neutron::SecurityGroup", "properties": {"rules": [
            {"protocol": "tcp", "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "10.0.0.0/8"},
            {"protocol": "tcp", "port_range_min": 443, "port_range_max": 443, "remote_ip_prefix": "0.0.0.0/0"}]}},
        "server": {"type": "OS::Nova::Server", "properties": {
            "flavor": "m1.tiny", "image": "cirros-0.6.2", "security_groups": [{"get_resource": "sg"}]}},
        "vol": {"type": "OS::Cinder::Volume", "properties": {"size": 1}},
        "att": {"type": "OS::Cinder::VolumeAttachment", "properties": {
            "instance_uuid": {"get_resource": "server"}, "volume_id": {"get_resource": "vol"}}},
    },
}


class Failed(Exception):
    pass


def create_one(conn: openstack.connection.Connection, name: str) -> Any:
    stack = conn.orchestration.create_stack(name=name, template=json.loads(json.dumps(TEMPLATE)))
    try:
        return conn.orchestration.wait_for_status(stack, "CREATE_COMPLETE", failures=["CREATE_FAILED"], **WAIT)
    except openstack.exceptions.ResourceFailure as err:
        raise Failed(f"{name}: {err}") from None


def delete_one(conn: openstack.connection.Connection, stack: Any) -> None:
    conn.orchestration.delete_stack(stack)
    conn.orchestration.wait_for_delete(stack, **WAIT)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def sequential(connect: Callable[[], openstack.connection.Connection], count: int) -> dict[str, float]:
    conn = connect()
    stacks, create_times, delete_times = [], [], []
    start = time.perf_counter()
    for i in range(count):
        seconds, stack = timed(lambda i=i: create_one(conn, f"seq-{i}"))
        create_times.append(seconds)
        stacks.append(stack)
    create_wall = time.perf_counter() - start
    start = time.perf_counter()
    for stack in stacks:
        seconds, _ = timed(lambda stack=stack: delete_one(conn, stack))
        delete_times.append(seconds)
    delete_wall = time.perf_counter() - start
    conn.close()
    return {"create_wall": create_wall, "delete_wall": delete_wall,
            "create_p50": statistics.median(create_times), "delete_p50": statistics.median(delete_times),
            "create_max": max(create_times), "delete_max": max(delete_times)}


def concurrent(connect: Callable[[], openstack.connection.Connection], count: int, threads: int) -> dict[str, float]:
    """Each thread creates its share, all wait at a barrier, then each deletes its share."""
    errors: list[str] = []
    barrier = threading.Barrier(threads + 1)
    marks: dict[str, float] = {}

    def worker(index: int) -> None:
        conn = connect()
        mine = [f"par-{index}-{i}" for i in range(index, count, threads)]
        stacks = []
        try:
            barrier.wait()
            for name in mine:
                stacks.append(create_one(conn, name))
        except Exception as err:  # noqa: BLE001 - reported and counted as a failure
            errors.append(str(err))
        barrier.wait()
        try:
            barrier.wait()
            for stack in stacks:
                delete_one(conn, stack)
        except Exception as err:  # noqa: BLE001
            errors.append(str(err))
        barrier.wait()
        conn.close()

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in workers:
        thread.start()
    for phase in ("create", "delete"):
        barrier.wait()
        marks[f"{phase}_start"] = time.perf_counter()
        barrier.wait()
        marks[f"{phase}_wall"] = time.perf_counter() - marks[f"{phase}_start"]
    for thread in workers:
        thread.join()
    if errors:
        raise Failed("; ".join(errors[:5]))
    return {"create_wall": marks["create_wall"], "delete_wall": marks["delete_wall"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stacks", type=int, default=100)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--json-out", help="also write the summary here")
    args = parser.parse_args()
    many = 10 * args.stacks + 100
    quotas = Quotas(instances=many, cores=many, ram=many * 512, volumes=many, gigabytes=many,
                    security_groups=many, security_group_rules=many * 4, ports=many)
    config = CloudConfig(profile="zero", quotas=quotas)
    failed = None
    with running_cloud(config) as fc:
        fc.control.set_delays(profile="zero")
        try:
            seq = sequential(fc.connect, args.stacks)
            par = concurrent(fc.connect, args.stacks, args.threads)
        except Failed as err:
            failed = str(err)
        else:
            left = fc.control.inventory()
            leftover = sum(len(v) for k, v in left.items() if k in ("servers", "volumes", "stacks"))
            if leftover:
                failed = f"{leftover} resources left after deleting every stack"
    if failed:
        print(f"heat bench FAILED: {failed}", file=sys.stderr)
        return 1
    report = Report("heat_bench")
    report.params.update(stacks=args.stacks, threads=args.threads, profile="zero",
                         stack="server + volume + attachment + security group with 2 rules",
                         cloud="in-process fakecloud (running_cloud), openstacksdk wait_for_status every 20 ms")
    n = args.stacks
    report.add("sequential: time per stack create", 1000 * seq["create_wall"] / n, "ms")
    report.add("sequential: time per stack delete", 1000 * seq["delete_wall"] / n, "ms")
    report.add("sequential: create p50", 1000 * seq["create_p50"], "ms")
    report.add("sequential: create max", 1000 * seq["create_max"], "ms")
    report.add("sequential: delete p50", 1000 * seq["delete_p50"], "ms")
    report.add("sequential: delete max", 1000 * seq["delete_max"], "ms")
    report.add(f"{args.threads} threads: stacks created per second", n / par["create_wall"], "stacks/s")
    report.add(f"{args.threads} threads: stacks deleted per second", n / par["delete_wall"], "stacks/s")
    report.print()
    report.write(args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
