"""Soak: Hearth's mixed operations through a cloud's weather (5xx, connection resets, latency), per engine.

    .venv/bin/python bench/hearth_soak.py [--ops 300] [--engines natives] [--lanes 16] [--fault-rate 0.10]
    .venv/bin/python bench/hearth_soak.py --ops 60 --engines natives                # a small validation run
    BENCH_SOAK_OPS=60 .venv/bin/python bench/run_all.py --only hearth_soak           # the same through run_all

Two to four minutes for the three engines at the defaults on 2 cores (each pass stops starting lifecycles at
--pass-seconds, so a Hearth that stalls cannot make it run away; in-flight operations still get their timeout).

For each registered engine: `fakecloud serve` (zero-delay profile, unlimited quotas), `hearth serve
--no-taskmanager` and `hearth taskmanager` (SQLite, the operation timeout shortened to --operation-timeout so
a stuck operation cannot outlast the soak). `lanes` client threads each drive their own instances through
Hearth's REST API, one lifecycle after another: create, four changes in random order (one flavor resize 1 <-> 2,
one volume grow, one allowed-CIDR replacement, one more of any of these), then delete; each operation is
waited for before the next (its newest operation in `GET /instances/{id}/operations` succeeded or failed; a
delete: the instance is 404). A lifecycle whose operation failed skips its remaining changes and deletes.

After a warm-up (4 lanes, one lifecycle each, not reported), two passes of the same mix (each lane starts
after a random 0-2 s, so lanes are out of step), each of at least its operation count (or until
--pass-seconds):
- fair weather: --fair-ops operations (default min(120, --ops)), no faults;
- weather: --ops operations (default 300, or $BENCH_SOAK_OPS); on every OpenStack service (compute, volume,
  network, image, identity, orchestration; never fakecloud's admin API) every request is slowed by
  --latency-ms (--spike-rate of them by --spike-ms instead), and --fault-rate of them fail: 40 % with a 500,
  40 % with a 503, 10 % with a connection reset before the handler ran and 10 % with a reset after it ran
  (the cloud changed, the client never heard). Every one of these is transient.
After each pass every instance Hearth still lists is deleted (weather still on for the second), then, with
faults cleared and the cloud settled, fakecloud's inventory (all projects) is searched for what is left.

Reported per engine (the weather pass unless it says fair weather):
- operations not converged: failed, not finished within the operation timeout + margin, refused by the API
  after the client's retries (it retries 5xx, resets and 401/422 with backoff, honouring Retry-After), or
  succeeded with a record that is not what was asked. Every injected fault is transient, so the goal is 0.
- instances whose record differs from the cloud: before each lifecycle's delete, Hearth's view (flavor, volume
  size, allowed CIDRs) against what the cloud holds, read with openstacksdk as admin: the server's flavor, the
  volume's size, the security group's ingress rules (any rule beyond one per allowed CIDR on the datastore
  port counts), and no duplicate resources. An instance in ERROR is compared on the resources that exist.
  A difference the instance itself declares (a `drift` field in its view) is counted apart. Goal 0.
- leaked cloud resources after delete-all: servers, volumes, security groups, ports and stacks named
  `hearth-...` (and ports whose server is gone), whatever their project. Goal 0.
- the weather's time cost: median operation time (request to seen done, converged operations only) with
  weather / in fair weather; p90 and throughput beside it, since retries live in the tail. Both passes run
  the same lanes on the same 2 cores: the fair pass is partly CPU-bound, the weather pass partly waits in
  backoff, so the median ratio understates the cost a little and the p90 shows it.
"""

from __future__ import annotations

import argparse
import collections
import ipaddress
import os
import random
import re
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Report, percentile  # noqa: E402
from _hearth import BenchError, Stack, registered_engines  # noqa: E402
from hearth.engines import common  # noqa: E402

BENCH_RUNS = 1  # run_all.py: one run (35-90 s per engine at the defaults, depending on how Hearth retries)
SERVICES = ("compute", "volume", "network", "image", "identity", "orchestration")
TRANSIENT = frozenset({500, 502, 503, 504})
FLAVORS = ("1", "2")
CHANGES = ("resize flavor", "resize volume", "access")
KINDS = ("create", *CHANGES, "delete")
DONE = frozenset({"succeeded", "failed"})
MARGIN = 30.0  # beyond Hearth's operation timeout: claim latency, the final status write, polling
LIFECYCLE = 6  # operations: create, four changes, delete
STAGGER = 2.0  # seconds: each lane starts after a random share of this


# --------------------------------------------------------------------------------------------------
# The weather


@dataclass(frozen=True)
class Weather:
    fault_rate: float
    latency_ms: int
    spike_ms: int
    spike_rate: float

    def rules(self) -> list[dict[str, Any]]:
        """fakecloud rules per service. Failing rules are drawn in turn, so each probability is conditional on
        the ones before it not firing; the shares of `fault_rate` come out as 40/40/10/10."""
        f = self.fault_rate
        before = [("http_error", 500, 0.4 * f), ("http_error", 503, 0.4 * f), ("disconnect", 0, 0.1 * f)]
        rules: list[dict[str, Any]] = []
        for service in SERVICES:
            if self.spike_rate > 0:
                rules.append({"service": service, "action": "latency", "latency_ms": self.spike_ms,
                              "probability": self.spike_rate})
            if self.latency_ms > 0:
                rules.append({"service": service, "action": "latency", "latency_ms": self.latency_ms})
            taken = 0.0
            for action, status, share in before:
                rule = {"service": service, "action": action, "probability": round(share / (1 - taken), 6)}
                if action == "http_error":
                    rule.update(status=status, message=f"Injected {status} (soak).")
                rules.append(rule)
                taken += share
            rules.append({"service": service, "action": "disconnect", "when": "after",
                          "probability": round(0.1 * f / (1 - taken), 6)})
        return rules

    def describe(self) -> str:
        return (f"{self.fault_rate:.0%} of requests fail (500 40 %, 503 40 %, reset before the handler 10 %, "
                f"reset after it 10 %); latency {self.latency_ms} ms on every request, {self.spike_ms} ms on "
                f"{self.spike_rate:.0%}; services {', '.join(SERVICES)}")


# --------------------------------------------------------------------------------------------------
# Results


@dataclass
class OpResult:
    kind: str
    outcome: str  # converged | failed | timeout | refused | not as asked
    seconds: float
    detail: str = ""


@dataclass
class Check:
    instance_id: str
    status: str
    differences: list[str]
    declared: bool


@dataclass
class PassResult:
    ops: list[OpResult] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    api_retries: collections.Counter[str] = field(default_factory=collections.Counter)
    api_samples: dict[str, str] = field(default_factory=dict)  # the first body of each retried answer
    seconds: float = 0.0
    stopped_by_clock: bool = False
    reserved: int = 0  # operations planned by the lifecycles started so far (so a pass stops near its count)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, op: OpResult) -> None:
        with self.lock:
            self.ops.append(op)

    def reserve(self, target: int) -> bool:
        """Room for one more lifecycle (LIFECYCLE operations) within `target`?"""
        with self.lock:
            if self.reserved >= target:
                return False
            self.reserved += LIFECYCLE
            return True

    def release(self, planned: int, made: int) -> None:
        """A lifecycle cut short (a failed operation) gives back what it did not make."""
        with self.lock:
            self.reserved -= planned - made

    def not_converged(self) -> list[OpResult]:
        return [o for o in self.ops if o.outcome != "converged"]

    def times(self, kind: str | None = None) -> list[float]:
        """Seconds of the converged operations (of one kind), sorted."""
        return sorted(o.seconds for o in self.ops if o.outcome == "converged" and kind in (None, o.kind))

    def median(self) -> float:
        times = self.times()
        return statistics.median(times) if times else float("nan")

    def p90(self) -> float:
        times = self.times()
        return percentile(times, 90) if times else float("nan")


class Refused(Exception):  # noqa: N818 - an outcome, reported as a figure
    """The API did not accept the request, even after the client's retries."""


# --------------------------------------------------------------------------------------------------
# A patient REST client (one per lane): what a well-behaved client of a cloud API does


def _route(path: str) -> str:
    """/instances/<uuid>/action?x -> /instances/{id}/action: retries counted by route, not by instance."""
    return re.sub(r"/[0-9a-f]{8}-[0-9a-f-]{27}", "/{id}", path.split("?", 1)[0])


class Api:
    def __init__(self, base: str, token: str, result: PassResult) -> None:
        self.base = base
        self.http = requests.Session()
        self.http.headers["X-Auth-Token"] = token
        self.result = result

    def _note(self, what: str, body: Any) -> None:
        with self.result.lock:
            self.result.api_retries[what] += 1
            self.result.api_samples.setdefault(what, str(body)[:200])

    def call(self, method: str, path: str, ok: tuple[int, ...], json: Any = None, attempts: int = 7,
             not_ready_retries: int = 3) -> tuple[int, Any]:
        """Retry 5xx, resets and a 401 (Hearth could not check the token) with capped exponential backoff and
        jitter, honouring Retry-After; 422 (not ready) a few times. Anything else is the answer."""
        delay = 0.2
        status, body = 0, None
        for attempt in range(attempts):
            wait = None
            try:
                response = self.http.request(method, self.base + path, json=json, timeout=60)
            except requests.RequestException as err:
                status, body = 0, str(err)
                self._note(f"{method} {_route(path)}: connection error ({type(err).__name__})", body)
            else:
                status = response.status_code
                body = response.json() if response.content and "json" in response.headers.get(
                    "content-type", "") else response.text
                if status in ok:
                    return status, body
                retryable = status in TRANSIENT or status == 401 or (status == 422 and attempt < not_ready_retries)
                if not retryable:
                    return status, body
                self._note(f"{method} {_route(path)}: {status}", body)
                header = response.headers.get("Retry-After", "")
                wait = float(header) if header.replace(".", "", 1).isdigit() else None
            if attempt + 1 < attempts:
                time.sleep(min(wait if wait is not None else delay * random.uniform(0.5, 1.5), 5.0))
                delay = min(delay * 2, 4.0)
        return status, body

    def must(self, method: str, path: str, ok: tuple[int, ...] = (200,)) -> Any:
        status, body = self.call(method, path, ok)
        if status not in ok:
            raise Refused(f"{method} {path}: {status} {str(body)[:200]}")
        return body

    def operations(self, instance_id: str) -> list[dict[str, Any]] | None:
        """The instance's operations, or None once it is gone (404)."""
        status, body = self.call("GET", f"/instances/{instance_id}/operations", (200, 404))
        if status == 404:
            return None
        if status != 200:
            raise Refused(f"GET operations of {instance_id}: {status} {str(body)[:200]}")
        return body["operations"]

    def show(self, instance_id: str) -> dict[str, Any] | None:
        status, body = self.call("GET", f"/instances/{instance_id}", (200, 404))
        if status == 404:
            return None
        if status != 200:
            raise Refused(f"GET {instance_id}: {status} {str(body)[:200]}")
        return body["instance"]

    def list_ids(self) -> list[str]:
        found: list[str] = []
        marker = None
        while True:
            body = self.must("GET", "/instances?limit=1000" + (f"&marker={marker}" if marker else ""))
            found += [i["id"] for i in body["instances"]]
            if not body.get("links") or not body["instances"]:
                return found
            marker = body["instances"][-1]["id"]


# --------------------------------------------------------------------------------------------------
# One operation: issue it, follow its Hearth operation to the end, check the record is what was asked


def _cidrs(values: list[str]) -> set[str]:
    return {str(ipaddress.ip_network(v, strict=False)) for v in values}


def _wait(api: Api, instance_id: str, known: set[str], deadline: float, delete: bool,
          appear_by: float | None = None) -> tuple[str, str]:
    """Follow the first operation not in `known` to its end. (outcome, detail); `appear_by`: give up at that
    time if no new operation shows (the request may not have landed)."""
    interval = 0.05
    while True:
        ops = api.operations(instance_id)
        if ops is None:
            return ("converged", "") if delete else ("failed", "instance vanished")
        new = [o for o in ops if o["id"] not in known]
        if new:
            op = new[0]
            if op["state"] in DONE:
                known.update(o["id"] for o in ops)
                if op["state"] == "succeeded":
                    if delete:  # the record goes with the operation's end: look once more
                        if api.operations(instance_id) is None:
                            return "converged", ""
                        return "failed", "delete succeeded but the instance is still listed"
                    return "converged", ""
                return "failed", f"{op['kind']}: {op.get('error') or ''}"[:300]
        elif appear_by is not None and time.monotonic() > appear_by:
            return "refused", "no operation appeared"
        if time.monotonic() > deadline:
            return "timeout", f"{(new[0]['kind'] + ' ' + new[0]['state']) if new else 'no operation'} at the deadline"
        time.sleep(interval)
        interval = min(interval * 1.4, 0.25)


def run_op(api: Api, kind: str, instance_id: str, known: set[str], issue: Callable[[], tuple[int, Any]],
           asked: Callable[[dict[str, Any]], str | None], timeout: float, started: float | None = None) -> OpResult:
    """Issue, follow, check. `started`: when the request was really made (a create is issued before its id)."""
    started = time.perf_counter() if started is None else started
    deadline = time.monotonic() + timeout
    status, body = issue()
    appear_by = None
    if status not in (200, 202):
        if status not in TRANSIENT and status not in (0, 401, 422):
            return OpResult(kind, "refused", time.perf_counter() - started, f"{status} {str(body)[:200]}")
        appear_by = time.monotonic() + 2.0  # a 5xx may still have queued it: look before calling it refused
    outcome, detail = _wait(api, instance_id, known, deadline, kind == "delete", appear_by)
    seconds = time.perf_counter() - started
    if outcome == "refused":
        detail = f"{status} {str(body)[:200]}"
    if outcome == "converged" and kind != "delete":
        view = api.show(instance_id)
        wrong = "instance gone" if view is None else asked(view)
        if wrong:
            return OpResult(kind, "not as asked", seconds, wrong)
    return OpResult(kind, outcome, seconds, detail)


# --------------------------------------------------------------------------------------------------
# The cloud side: what an instance's resources hold, read with openstacksdk as admin


class CloudReader:
    def __init__(self, clouds_yaml: Path) -> None:
        import openstack

        entry = yaml.safe_load(clouds_yaml.read_text())["clouds"]["fakecloud-admin"]
        self.conn = openstack.connect(auth=entry["auth"], region_name=entry["region_name"],
                                      identity_api_version="3", load_yaml_config=False, load_envvars=False)
        self.flavor_names = self.patient(lambda: {f.id: f.name for f in self.conn.compute.flavors()})

    @staticmethod
    def patient(read: Callable[[], Any], attempts: int = 12) -> Any:
        """Cloud reads go through the same weather: retry the transient ones (5xx, resets)."""
        import keystoneauth1.exceptions
        import openstack.exceptions

        delay = 0.1
        for attempt in range(attempts):
            try:
                return read()
            except openstack.exceptions.HttpException as err:
                if err.status_code not in TRANSIENT or attempt + 1 == attempts:
                    raise
            except keystoneauth1.exceptions.HttpError as err:  # Keystone's own answers (re-authentication)
                if err.http_status not in TRANSIENT or attempt + 1 == attempts:
                    raise
            except keystoneauth1.exceptions.ConnectionError:
                if attempt + 1 == attempts:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
        raise AssertionError("unreachable")

    def compare(self, view: dict[str, Any], port: int) -> list[str]:
        instance_id = view["id"]
        name = f"hearth-{instance_id}"
        errored = view["status"] == "ERROR"
        conn = self.conn
        differences: list[str] = []

        server_name = common.server_name(instance_id, view.get("name"))  # hearth-<id>-<the instance's name>
        servers = self.patient(lambda: [s for s in conn.compute.servers(all_projects=True, name=f"^{name}")
                                        if s.name == server_name])
        volumes = self.patient(lambda: [v for v in conn.block_storage.volumes(all_projects=True, name=f"{name}-data")
                                        if v.name == f"{name}-data"])
        groups = self.patient(lambda: [g for g in conn.network.security_groups(name=name) if g.name == name])
        for what, found in (("server", servers), ("volume", volumes), ("security group", groups)):
            if len(found) > 1:
                differences.append(f"{len(found)} {what}s")
            elif not found and not errored:
                differences.append(f"no {what}")
        wanted_flavor = self.flavor_names.get(str(view["flavor"]["id"]), str(view["flavor"]["id"]))
        for server in servers:
            if server.flavor.name != wanted_flavor:
                differences.append(f"flavor: record {wanted_flavor}, server {server.flavor.name}")
        for volume in volumes:
            if volume.size != view["volume"]["size"]:
                differences.append(f"volume: record {view['volume']['size']} GB, cloud {volume.size} GB")
        recorded = _cidrs(view["access"]["allowed_cidrs"])
        for group in groups:
            rules = self.patient(lambda g=group: list(conn.network.security_group_rules(security_group_id=g.id)))
            open_to: set[str] = set()
            for rule in rules:
                if rule.direction != "ingress":
                    continue
                if rule.port_range_min == port and rule.port_range_max == port and rule.remote_ip_prefix:
                    open_to.add(str(ipaddress.ip_network(rule.remote_ip_prefix, strict=False)))
                else:
                    differences.append(f"extra ingress rule {rule.protocol} {rule.port_range_min}-"
                                       f"{rule.port_range_max} from {rule.remote_ip_prefix or rule.remote_group_id}")
            if open_to != recorded:
                differences.append(f"CIDRs: record {sorted(recorded)}, cloud {sorted(open_to)}")
        return differences


def datastore_port(view: dict[str, Any]) -> int:
    from hearth.config import load_settings

    store = load_settings().datastore(view["datastore"]["type"])
    version = store.version(view["datastore"].get("version")) if store else None
    if version is None:
        raise BenchError(f"unknown datastore {view['datastore']}")
    return version.port


# --------------------------------------------------------------------------------------------------
# Lanes and passes


def _random_cidrs(rng: random.Random) -> list[str]:
    return [f"10.{rng.randrange(256)}.{rng.randrange(256)}.0/24" for _ in range(rng.randint(1, 3))]


def lifecycle(api: Api, reader: CloudReader, rng: random.Random, result: PassResult, stop_at: float,
              timeout: float, name: str) -> int:
    """create, four changes, a record-versus-cloud check, delete; returns how many operations it made."""
    made = 0

    def add(op: OpResult) -> None:
        nonlocal made
        made += 1
        result.add(op)

    cidrs = _random_cidrs(rng)
    body = {"instance": {"name": name, "flavorRef": "1", "volume": {"size": 1}, "access": {"allowed_cidrs": cidrs}}}
    started = time.perf_counter()
    status, answer = api.call("POST", "/instances", (200,), json=body)
    if status != 200:  # a create that was not accepted leaves no id to follow (delete-all finds any orphan)
        add(OpResult("create", "refused", time.perf_counter() - started, f"{status} {str(answer)[:200]}"))
        return made
    instance_id = answer["instance"]["id"]
    known: set[str] = set()
    state = {"flavor": "1", "size": 1, "cidrs": cidrs}

    create = run_op(api, "create", instance_id, known, lambda: (status, answer),
                    lambda v: None if v["status"] == "ACTIVE" else f"status {v['status']}", timeout, started)
    add(create)
    if create.outcome == "converged":
        changes = list(CHANGES) + [rng.choice(CHANGES)]
        rng.shuffle(changes)
        for kind in changes:
            if time.monotonic() > stop_at:
                result.stopped_by_clock = True
                break
            op = change(api, kind, instance_id, known, state, rng, timeout)
            add(op)
            if op.outcome != "converged":
                break
    view = api.show(instance_id)
    if view is not None and view["status"] not in ("BUILD", "RESIZE"):
        differences = reader.compare(view, datastore_port(view))
        with result.lock:
            result.checks.append(Check(instance_id, view["status"], differences, bool(view.get("drift"))))
    known.update(o["id"] for o in api.operations(instance_id) or [])  # an operation that showed up late
    add(run_op(api, "delete", instance_id, known,
               lambda: api.call("DELETE", f"/instances/{instance_id}", (202,)), lambda v: None, timeout))
    return made


def change(api: Api, kind: str, instance_id: str, known: set[str], state: dict[str, Any], rng: random.Random,
           timeout: float) -> OpResult:
    path = f"/instances/{instance_id}"
    if kind == "resize flavor":
        target = FLAVORS[1 - FLAVORS.index(state["flavor"])]
        op = run_op(api, kind, instance_id, known,
                    lambda: api.call("POST", path + "/action", (202,), json={"resize": {"flavorRef": target}}),
                    lambda v: None if str(v["flavor"]["id"]) == target else f"flavor {v['flavor']['id']}", timeout)
        if op.outcome == "converged":
            state["flavor"] = target
        return op
    if kind == "resize volume":
        size = state["size"] + 1
        op = run_op(api, kind, instance_id, known,
                    lambda: api.call("POST", path + "/action", (202,), json={"resize": {"volume": {"size": size}}}),
                    lambda v: None if v["volume"]["size"] == size else f"size {v['volume']['size']}", timeout)
        if op.outcome == "converged":
            state["size"] = size
        return op
    cidrs = _random_cidrs(rng)
    return run_op(api, kind, instance_id, known,
                  lambda: api.call("PUT", path, (202,), json={"instance": {"access": {"allowed_cidrs": cidrs}}}),
                  lambda v: None if _cidrs(v["access"]["allowed_cidrs"]) == _cidrs(cidrs)
                  else f"CIDRs {v['access']['allowed_cidrs']}", timeout)


def run_pass(stack: Stack, readers: list[CloudReader], base: str, token: str, label: str, ops: int,
             budget: float, timeout: float, seed: int) -> PassResult:
    """One lane per reader (each lane reads the cloud with its own openstacksdk Connection)."""
    result = PassResult()
    stop_at = time.monotonic() + budget
    errors: list[BaseException] = []

    def lane(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        api = Api(base, token, result)
        n = 0
        time.sleep(rng.uniform(0, STAGGER))  # lanes out of step, so creates do not all land at once
        try:
            while result.reserve(ops):
                if time.monotonic() > stop_at:
                    result.stopped_by_clock = True
                    return
                made = lifecycle(api, readers[index], rng, result, stop_at, timeout, f"soak-{label}-{index}-{n}")
                result.release(LIFECYCLE, made)
                n += 1
        except BaseException as err:  # a broken bench, not weather: fail the run
            errors.append(err)

    started = time.monotonic()
    threads = [threading.Thread(target=lane, args=(i,), name=f"lane-{i}") for i in range(len(readers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds = time.monotonic() - started
    if errors:
        stack.check()
        raise BenchError(f"{label} pass: a lane broke: {errors[0]!r}") from errors[0]
    return result


def delete_all(base: str, token: str, timeout: float) -> tuple[int, int, list[str]]:
    """Delete every instance Hearth lists; (listed, left after, reasons)."""
    api = Api(base, token, PassResult())
    ids = api.list_ids()
    known: dict[str, set[str]] = {}
    for instance_id in ids:
        ops = api.operations(instance_id)
        known[instance_id] = {o["id"] for o in ops or []}
        api.call("DELETE", f"/instances/{instance_id}", (202,))
    left: list[str] = []
    for instance_id in ids:
        outcome, detail = _wait(api, instance_id, known[instance_id], time.monotonic() + timeout, delete=True)
        if outcome != "converged":
            left.append(f"{instance_id}: {outcome} {detail}"[:200])
    return len(ids), len(left), left


def leaks(stack: Stack, settle: float = 10.0) -> dict[str, list[str]]:
    """What fakecloud holds for Hearth instances, all projects, once deletes in flight have had `settle` s."""
    deadline = time.monotonic() + settle
    while (found := _hearth_resources(stack)) and time.monotonic() < deadline:
        time.sleep(0.25)
    return found


def _hearth_resources(stack: Stack) -> dict[str, list[str]]:
    inventory = stack.control.inventory()

    def named(rows: list[dict[str, Any]]) -> list[str]:
        return [str(r.get("name") or r.get("stack_name")) for r in rows
                if str(r.get("name") or r.get("stack_name") or "").startswith("hearth-")]

    servers = {s["id"] for s in inventory.get("servers", [])}
    found = {kind: named(inventory.get(kind, [])) for kind in ("servers", "volumes", "security_groups", "stacks")}
    found["ports"] = [p["name"] or p["id"] for p in inventory.get("ports", [])
                      if str(p.get("name") or "").startswith("hearth-")
                      or (str(p.get("device_owner") or "").startswith("compute:")
                          and p.get("device_id") not in servers)]
    return {kind: rows for kind, rows in found.items() if rows}


def injected(stack: Stack, since: int) -> tuple[collections.Counter[str], int, int]:
    """fakecloud's answers since `since` that were injected-looking failures (500, 503, reset = 0)."""
    summary = stack.control.requests(since=since)
    statuses = collections.Counter(str(r["status"]) for r in summary["requests"] if r["status"] in (0, 500, 503))
    return statuses, len(summary["requests"]), summary["seq"] - since


# --------------------------------------------------------------------------------------------------


def soak(engine: str, args: argparse.Namespace, weather: Weather, report: Report) -> None:
    env = {"HEARTH_OPERATION_TIMEOUT_SECONDS": str(args.operation_timeout)}
    timeout = args.operation_timeout + MARGIN
    began = time.monotonic()
    with Stack(engine=engine, profile="zero", workers=args.workers, split_taskmanager=True,
               extra_env=env) as stack:
        client = stack.client()  # a demo-project token, taken before any weather
        base, token = client.base, str(client.http.headers["X-Auth-Token"])

        readers = [CloudReader(stack.clouds_yaml) for _ in range(args.lanes)]  # authenticated in fair weather
        run_pass(stack, readers[:4], base, token, "warm-up", 4 * LIFECYCLE, args.pass_seconds, timeout, seed=0)
        fair = run_pass(stack, readers, base, token, "fair", args.fair_ops, args.pass_seconds, timeout, seed=1)
        fair_listed, fair_left, _ = delete_all(base, token, timeout)
        fair_leaks = leaks(stack)

        mark = stack.control.requests(log=False)["seq"]
        for rule in weather.rules():
            stack.control.add_fault(**rule)
        stormy = run_pass(stack, readers, base, token, "weather", args.ops, args.pass_seconds, timeout, seed=2)
        for reader in readers:
            reader.conn.close()
        listed, left, left_why = delete_all(base, token, timeout)
        statuses, logged, total = injected(stack, mark)
        stack.control.clear_faults()
        leaked = leaks(stack)
        stack.check()

    fair_median, median = fair.median(), stormy.median()
    bad = stormy.not_converged()
    differing = [c for c in stormy.checks if c.differences and not c.declared]
    declared = [c for c in stormy.checks if c.differences and c.declared]
    fair_differing = [c for c in fair.checks if c.differences and not c.declared]
    prefix = f"{engine}:"
    report.add(f"{prefix} operations, weather", len(stormy.ops), "ops", f">= {args.ops}")
    report.add(f"{prefix} operations not converged, weather", len(bad), "ops", "<= 0")
    report.add(f"{prefix} operations not converged, fair weather", len(fair.not_converged()), "ops", "<= 0")
    report.add(f"{prefix} instances whose record differs from the cloud", len(differing), "inst", "<= 0")
    report.add(f"{prefix} instances checked against the cloud", len(stormy.checks), "inst")
    report.add(f"{prefix} leaked cloud resources after delete-all", sum(len(v) for v in leaked.values()), "res",
               "<= 0")
    report.add(f"{prefix} instances left after delete-all", left, "inst", "<= 0")
    report.add(f"{prefix} median operation time, fair weather", fair_median, "s")
    report.add(f"{prefix} median operation time, weather", median, "s")
    report.add(f"{prefix} weather cost (median with / without)", median / fair_median if fair_median else 0.0, "x")
    report.add(f"{prefix} p90 operation time, fair weather", fair.p90(), "s")
    report.add(f"{prefix} p90 operation time, weather", stormy.p90(), "s")
    report.add(f"{prefix} operations per second, fair weather", len(fair.ops) / fair.seconds, "ops/s")
    report.add(f"{prefix} operations per second, weather", len(stormy.ops) / stormy.seconds, "ops/s")
    report.add(f"{prefix} cloud answers injected (500/503/reset)", sum(statuses.values()), "req")

    by_kind = collections.Counter(o.kind for o in stormy.ops)
    bad_by_kind = collections.Counter(f"{o.kind}: {o.outcome}" for o in bad)
    def spread(run: PassResult) -> dict[str, str]:
        """Per kind: median / p90 / max seconds."""
        return {k: f"{statistics.median(ts):.2f}/{percentile(ts, 90):.2f}/{ts[-1]:.2f}"
                for k in KINDS if (ts := run.times(k))}

    notes = [
        f"{engine}: {time.monotonic() - began:.0f} s in all; fair pass {fair.seconds:.0f} s ({len(fair.ops)} ops), "
        f"weather pass {stormy.seconds:.0f} s ({len(stormy.ops)} ops: {dict(by_kind)})"
        + ("; a pass reached --pass-seconds before its operation count" if fair.stopped_by_clock
           or stormy.stopped_by_clock else ""),
        f"{engine}: not converged by kind and outcome: {dict(bad_by_kind) or 'none'}",
        f"{engine}: seconds by kind (median/p90/max), weather {spread(stormy)}; fair weather {spread(fair)}",
        f"{engine}: cloud answers in the weather pass: {dict(statuses)} of {logged} logged"
        + (f" ({total} made; the log keeps the newest)" if total > logged else ""),
        f"{engine}: client retries against Hearth's API (weather): {dict(stormy.api_retries) or 'none'}",
        *(f"{engine}: first {what}: {body}" for what, body in sorted(stormy.api_samples.items())
          if not what.endswith(": 503")),
        f"{engine}: delete-all: weather {listed} listed, {left} left; fair weather {fair_listed} listed, "
        f"{fair_left} left; fair-weather leaks {sum(len(v) for v in fair_leaks.values())}",
    ]
    errors = collections.Counter(o.detail.split(" (req-")[0][:160] for o in bad if o.detail)
    notes += [f"{engine}: error x{n}: {text}" for text, n in errors.most_common(6)]
    if leaked:
        notes.append(f"{engine}: leaked {{kind: count}} {({k: len(v) for k, v in leaked.items()})}")
    notes += [f"{engine}: record differs: {c.instance_id} ({c.status}): {'; '.join(c.differences)[:300]}"
              for c in differing[:6]]
    if declared:
        notes.append(f"{engine}: {len(declared)} instance(s) declared their drift")
    if fair_differing:
        notes.append(f"{engine}: FAIR WEATHER record differs on {len(fair_differing)} instance(s): "
                     f"{fair_differing[0].differences}")
    notes += [f"{engine}: left after delete-all: {why}" for why in left_why[:4]]
    report.notes += notes
    for line in notes:
        print("  " + line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ops", type=int, default=int(os.environ.get("BENCH_SOAK_OPS", "300")),
                        help="operations per pass and engine (default 300, or $BENCH_SOAK_OPS)")
    parser.add_argument("--engines", help="comma-separated; default: every registered engine")
    parser.add_argument("--fair-ops", type=int, default=None,
                        help="operations in the fair-weather pass (default: min(120, --ops))")
    parser.add_argument("--lanes", type=int, default=16, help="client threads, each driving its own instances")
    parser.add_argument("--workers", type=int, default=None,
                        help="task manager worker threads (default: Hearth's own, Settings.workers)")
    parser.add_argument("--fault-rate", type=float, default=0.10)
    parser.add_argument("--latency-ms", type=int, default=10, help="added to every cloud request")
    parser.add_argument("--spike-ms", type=int, default=300, help="instead, on --spike-rate of them")
    parser.add_argument("--spike-rate", type=float, default=0.02)
    parser.add_argument("--operation-timeout", type=float, default=45.0, help="Hearth's operation_timeout_seconds")
    parser.add_argument("--pass-seconds", type=float, default=75.0,
                        help="no new lifecycle or change after this long in a pass (in-flight ones finish)")
    parser.add_argument("--json-out")
    args = parser.parse_args()
    args.fair_ops = args.fair_ops or min(120, args.ops)
    weather = Weather(args.fault_rate, args.latency_ms, args.spike_ms, args.spike_rate)
    report = Report("hearth_soak")
    report.params.update(operations=f"at least {args.ops} in the weather pass, {args.fair_ops} in fair weather",
                         lanes=args.lanes, workers=args.workers or "Hearth's default", profile="zero",
                         database="SQLite",
                         processes="fakecloud serve, hearth serve --no-taskmanager, hearth taskmanager",
                         operation_timeout_seconds=args.operation_timeout,
                         pass_seconds=args.pass_seconds, weather=weather.describe(),
                         mix="per lifecycle: create, flavor resize, volume grow, CIDR change, one more change, delete")
    for engine in registered_engines(args.engines):
        print(f"== {engine} ==", flush=True)
        soak(engine, args, weather, report)
    report.print()
    report.write(args.json_out)


if __name__ == "__main__":
    main()
