"""Heat stack throughput through openstacksdk against an in-process fakecloud (zero-delay profile).

Each stack is a server + a volume + its attachment + a security group with 2 rules. Phase one
creates every stack and waits for CREATE_COMPLETE one at a time, then deletes them one at a time;
phase two does the same with several client threads, each with its own Connection. The last line
of stdout is the JSON summary bench/run_all.py collects. Exits 1 if any stack fails.

    .venv/bin/python bench/heat_bench.py [--stacks 200] [--threads 8] [--json-out PATH]
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

from fakecloud.config import CloudConfig, Quotas
from fakecloud.testing import running_cloud

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
    parser.add_argument("--stacks", type=int, default=200)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--json-out", help="also write the summary here")
    args = parser.parse_args()
    many = 10 * args.stacks + 100
    quotas = Quotas(instances=many, cores=many, ram=many * 512, volumes=many, gigabytes=many,
                    security_groups=many, security_group_rules=many * 4, ports=many)
    config = CloudConfig(profile="zero", quotas=quotas)
    results: dict[str, Any] = {"stacks": args.stacks, "threads": args.threads}
    failed = None
    with running_cloud(config) as fc:
        fc.control.set_delays(profile="zero")
        try:
            seq = sequential(fc.connect, args.stacks)
            par = concurrent(fc.connect, args.stacks, args.threads)
        except Failed as err:
            failed = str(err)
        else:
            results.update({
                "seconds_per_stack_create": round(seq["create_wall"] / args.stacks, 4),
                "seconds_per_stack_delete": round(seq["delete_wall"] / args.stacks, 4),
                "create_p50_seconds": round(seq["create_p50"], 4), "create_max_seconds": round(seq["create_max"], 4),
                "delete_p50_seconds": round(seq["delete_p50"], 4), "delete_max_seconds": round(seq["delete_max"], 4),
                "concurrent_stacks_created_per_second": round(args.stacks / par["create_wall"], 2),
                "concurrent_stacks_deleted_per_second": round(args.stacks / par["delete_wall"], 2),
                "concurrent_seconds_per_stack_create": round(par["create_wall"] / args.stacks, 4),
                "concurrent_seconds_per_stack_delete": round(par["delete_wall"] / args.stacks, 4),
            })
            left = fc.control.inventory()
            results["leftover_resources"] = sum(len(v) for k, v in left.items()
                                                if k in ("servers", "volumes", "stacks"))
            if results["leftover_resources"]:
                failed = f"{results['leftover_resources']} resources left after deleting every stack"
    if failed:
        results["error"] = failed
        print(f"heat bench FAILED: {failed}", file=sys.stderr)
    summary = {"name": "heat", "results": results}
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(summary, indent=2))
    for key, value in results.items():
        print(f"  {key}: {value}")
    print(json.dumps(summary))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
