"""The floor for hearth_throughput: the cloud calls of N instances made with bare openstacksdk.

Run alone:  .venv/bin/python bench/floor_throughput.py [--instances 200] [--workers 8] [--engines natives]

No API, no database, no task manager: `workers` threads (Hearth's default task manager worker count),
each with its own openstacksdk Connection, take instances one at a time and make the calls an engine
needs for it, polling with Hearth's default schedule (20 ms, x1.5, capped at 250 ms):
- natives: find flavor and image, compute and volume limits (the preflight), create volume, security
  group, one ingress rule and server; wait for server ACTIVE and volume available; attach; wait in-use.
  Delete: delete server, wait gone; delete volume, wait gone; delete security group.
- orchestrator (and migration, which builds new instances as stacks): the same preflight, create the stack
  from Hearth's own template builder, wait for CREATE_COMPLETE. Delete: delete the stack, wait until it is gone.
fakecloud runs as its own process (`fakecloud serve`, zero-delay profile, unlimited quotas), exactly as
for the Hearth run, so the floor and Hearth meet the same cloud. run_all.py does not run this script on its
own: hearth_throughput.py runs it beside each Hearth run (the figures belong in one table).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psutil  # noqa: E402

from _harness import Report  # noqa: E402
from _hearth import BenchError, Stack, diff_counts, registered_engines  # noqa: E402

IMAGE = "postgresql-16"  # the benches' datastore image (_hearth.UNMANAGED_DATASTORES): no database process
FLAVOR = "1"
PORT = 5432


def _poll(fetch: Callable[[], Any], done: Callable[[Any], bool], what: str, timeout: float = 120.0) -> Any:
    delay, deadline = 0.02, time.monotonic() + timeout
    while True:
        found = fetch()
        if done(found):
            return found
        status = getattr(found, "status", "") or getattr(found, "stack_status", "") or ""
        if "ERROR" in str(status).upper() or "FAILED" in str(status).upper():
            raise BenchError(f"{what}: {status}")
        if time.monotonic() > deadline:
            raise BenchError(f"timed out waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)


def _gone(fetch: Callable[[], Any]) -> Callable[[], Any]:
    from openstack import exceptions

    def inner() -> Any:
        try:
            found = fetch()
        except exceptions.NotFoundException:
            return None
        return None if found is None or getattr(found, "status", "") in ("DELETE_COMPLETE",) else found

    return inner


class Floor:
    """The bare-SDK calls per instance, on per-thread Connections."""

    def __init__(self, clouds_yaml: Path, engine: str) -> None:
        self.clouds_yaml = clouds_yaml
        self.engine = engine
        self._local = threading.local()

    def conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            import openstack.config
            from openstack.connection import Connection

            config = openstack.config.OpenStackConfig(config_files=[str(self.clouds_yaml)], load_envvars=False)
            conn = Connection(config=config.get_one(cloud="fakecloud"))
            self._local.conn = conn
        return conn

    def preflight(self, conn: Any) -> tuple[Any, Any]:
        flavor = conn.compute.find_flavor(FLAVOR, ignore_missing=False)
        image = conn.image.find_image(IMAGE, ignore_missing=False)
        conn.compute.get_limits()
        conn.block_storage.get_limits()
        return flavor, image

    def provision(self, instance_id: str) -> dict[str, Any]:
        conn = self.conn()
        flavor, image = self.preflight(conn)
        name = f"floor-{instance_id}"
        if self.engine in ("orchestrator", "migration"):  # both build new instances as Heat stacks
            from hearth.engines import templates
            from hearth.engines.base import InstanceSpec, RuleSpec

            spec = InstanceSpec(instance_id=instance_id, name=name, project_id="demo", flavor_id=flavor.id,
                                image_id=image.id, volume_size=1,
                                rules=(RuleSpec(str(uuid.uuid4()), "tcp", PORT, PORT, "0.0.0.0/0"),))
            stack = conn.orchestration.create_stack(name=name, template=templates.build(spec),
                                                    parameters=templates.parameters(spec), is_rollback_disabled=True)
            _poll(lambda: conn.orchestration.get_stack(stack.id), lambda s: s.status == "CREATE_COMPLETE",
                  f"stack {stack.id}")
            return {"stack": stack.id}
        volume = conn.block_storage.create_volume(name=f"{name}-data", size=1)
        group = conn.network.create_security_group(name=name)
        conn.network.create_security_group_rule(security_group_id=group.id, direction="ingress", ether_type="IPv4",
                                                protocol="tcp", port_range_min=PORT, port_range_max=PORT,
                                                remote_ip_prefix="0.0.0.0/0")
        server = conn.compute.create_server(name=name, flavor_id=flavor.id, image_id=image.id, networks="auto",
                                            security_groups=[{"name": group.id}])
        _poll(lambda: conn.compute.get_server(server.id), lambda s: s.status == "ACTIVE", f"server {server.id}")
        _poll(lambda: conn.block_storage.get_volume(volume.id), lambda v: v.status == "available",
              f"volume {volume.id}")
        conn.compute.create_volume_attachment(server.id, volume=volume.id)
        _poll(lambda: conn.block_storage.get_volume(volume.id), lambda v: v.status == "in-use",
              f"attaching volume {volume.id}")
        return {"server": server.id, "volume": volume.id, "group": group.id}

    def delete(self, made: dict[str, Any]) -> None:
        conn = self.conn()
        if "stack" in made:
            conn.orchestration.delete_stack(made["stack"])
            _poll(_gone(lambda: conn.orchestration.get_stack(made["stack"])), lambda s: s is None, "stack delete")
            return
        conn.compute.delete_server(made["server"])
        _poll(_gone(lambda: conn.compute.get_server(made["server"])), lambda s: s is None, "server delete")
        conn.block_storage.delete_volume(made["volume"])
        _poll(_gone(lambda: conn.block_storage.get_volume(made["volume"])), lambda v: v is None, "volume delete")
        conn.network.delete_security_group(made["group"])


def run_floor(stack: Stack, engine: str, instances: int, workers: int) -> dict[str, float]:
    """Provision then delete `instances` on the stack's cloud; wall seconds, CPU and cloud requests."""
    floor = Floor(stack.clouds_yaml, engine)
    me = psutil.Process()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda _i: floor.conn(), range(workers * 4)))  # connect every thread before timing
        cpu0, cloud0, counts0 = me.cpu_times(), stack.cpu()["fakecloud"], stack.request_counts()
        started = time.perf_counter()
        made = list(pool.map(floor.provision, [str(uuid.uuid4()) for _ in range(instances)]))
        provisioned = time.perf_counter()
        counts1 = stack.request_counts()
        list(pool.map(floor.delete, made))
        deleted = time.perf_counter()
        cpu1, cloud1, counts2 = me.cpu_times(), stack.cpu()["fakecloud"], stack.request_counts()
    left = stack.control.inventory("demo")
    leftovers = {kind: len([r for r in items if (r.get("name") or "").startswith("floor-")])
                 for kind, items in left.items()}
    if any(leftovers.values()):
        raise BenchError(f"the floor left resources behind: {leftovers}")
    create_requests = sum(diff_counts(counts1, counts0).values())
    delete_requests = sum(diff_counts(counts2, counts1).values())
    return {
        "provision_s": provisioned - started,
        "delete_s": deleted - provisioned,
        "client_cpu_s": (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system),
        "cloud_cpu_s": cloud1 - cloud0,
        "provision_requests": create_requests,
        "delete_requests": delete_requests,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--engines", help="comma-separated; default: every registered engine")
    parser.add_argument("--json-out")
    args = parser.parse_args()
    report = Report("floor_throughput")
    report.params.update(instances=args.instances, workers=args.workers)
    for engine in registered_engines(args.engines):
        with Stack(engine=engine, profile="zero", with_hearth=False) as stack:
            got = run_floor(stack, engine, args.instances, args.workers)
        n = args.instances
        report.add(f"{engine}: floor provision throughput", n / got["provision_s"], "inst/s")
        report.add(f"{engine}: floor delete throughput", n / got["delete_s"], "inst/s")
        report.add(f"{engine}: floor cloud requests per instance (create+delete)",
                   (got["provision_requests"] + got["delete_requests"]) / n, "req")
        report.add(f"{engine}: floor client CPU per instance", 1000 * got["client_cpu_s"] / n, "ms")
        report.add(f"{engine}: floor fakecloud CPU per instance", 1000 * got["cloud_cpu_s"] / n, "ms")
    report.print()
    report.write(args.json_out)


if __name__ == "__main__":
    main()
