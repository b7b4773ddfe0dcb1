"""Shared plumbing for the bench scripts: the result format run_all.py reads, percentiles, wrk, RSS.

A bench script is a plain program. It prints a human-readable report and, when given
`--json-out PATH`, writes one JSON document there:

    {"name": "fakecloud", "params": {...}, "metrics": [
        {"name": "GET /servers/{id} throughput", "value": 2400.0, "unit": "req/s", "target": ">= 2000"}, ...]}

run_all.py runs each script several times and only reports figures from runs that exited 0.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import socket
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Metric:
    name: str
    value: float
    unit: str
    target: str | None = None  # e.g. ">= 2000" or "< 20"; checked by `met`

    def met(self) -> bool | None:
        if not self.target:
            return None
        op, _, bound = self.target.partition(" ")
        limit = float(bound)
        return {">=": self.value >= limit, ">": self.value > limit, "<=": self.value <= limit,
                "<": self.value < limit}[op]


@dataclass
class Report:
    name: str
    params: dict[str, Any] = field(default_factory=dict)
    metrics: list[Metric] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, name: str, value: float, unit: str, target: str | None = None) -> None:
        self.metrics.append(Metric(name, round(float(value), 3), unit, target))

    def print(self) -> None:
        print(f"\n== {self.name} ==")
        for key, value in self.params.items():
            print(f"  {key}: {value}")
        width = max(len(m.name) for m in self.metrics) if self.metrics else 10
        for m in self.metrics:
            verdict = {True: "ok", False: "MISSED", None: ""}[m.met()]
            target = f"(target {m.target})" if m.target else ""
            print(f"  {m.name:<{width}}  {m.value:>12,.2f} {m.unit:<6} {target} {verdict}")
        for note in self.notes:
            print(f"  note: {note}")

    def write(self, path: str | Path | None) -> None:
        if path is None:
            return
        data = {"name": self.name, "params": self.params, "notes": self.notes,
                "metrics": [asdict(m) for m in self.metrics]}
        Path(path).write_text(json.dumps(data, indent=2))


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        raise ValueError("no samples")
    rank = max(1, math.ceil(pct / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident set size of a process, in MiB (read from /proc so no extra dependency is needed)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no VmRSS for pid {pid}")


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


WRK_SCRIPT = r"""
local paths = {}
local token = os.getenv("BENCH_TOKEN")
for line in io.lines(os.getenv("BENCH_PATHS")) do paths[#paths + 1] = line end
local counter = 0
local errors = 0

request = function()
  counter = counter + 1
  local path = paths[(counter % #paths) + 1]
  return wrk.format("GET", path, {["X-Auth-Token"] = token,
                                 ["OpenStack-API-Version"] = "compute 2.79",
                                 ["X-OpenStack-Nova-API-Version"] = "2.79"})
end

response = function(status, headers, body)
  if status ~= 200 then errors = errors + 1 end
end

done = function(summary, latency, requests)
  io.write(string.format(
    "WRKJSON {\"requests\": %d, \"duration_us\": %d, \"errors_socket\": %d, \"status_errors\": %d, " ..
    "\"p50_us\": %d, \"p90_us\": %d, \"p99_us\": %d, \"max_us\": %d, \"mean_us\": %f}\n",
    summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
"""


def run_wrk(base_url: str, paths: list[str], token: str, connections: int, duration: float,
            threads: int = 1) -> dict[str, Any]:
    """GET the given paths round-robin on keep-alive connections; returns wrk's figures."""
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp, "bench.lua")
        script.write_text(WRK_SCRIPT)
        path_file = Path(tmp, "paths.txt")
        path_file.write_text("\n".join(paths) + "\n")
        env = dict(os.environ, BENCH_TOKEN=token, BENCH_PATHS=str(path_file))
        cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s", "--timeout", "10s",
               "-s", str(script), base_url]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=duration + 60)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr or proc.stdout}")
    match = re.search(r"WRKJSON (\{.*\})", proc.stdout)
    if not match:
        raise RuntimeError(f"wrk printed no summary:\n{proc.stdout}\n{proc.stderr}")
    data = json.loads(match.group(1))
    # wrk counts non-2xx/3xx as status errors, but our Lua `response` also counts non-200s.
    data["rps"] = data["requests"] / (data["duration_us"] / 1e6)
    return data


def git_commit(repo: Path) -> str:
    """HEAD plus '(dirty)' when the working tree differs; never writes the index."""
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short=12", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        status = subprocess.run(["git", "--no-optional-locks", "-C", str(repo), "status", "--porcelain",
                                 "--untracked-files=no"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" (uncommitted changes present)" if status.strip() else "")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"
