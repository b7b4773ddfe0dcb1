"""Run every benchmark in bench/ several times and write bench/RESULTS.md.

    .venv/bin/python bench/run_all.py [--runs 3] [--only fakecloud_bench] [-- extra args for the scripts]

A benchmark is any `bench/*.py` not starting with `_` or `floor_` (floors are run by the benchmark that
compares against them) and not this file. Each run writes its figures with `--json-out`; the table shows the
median of the runs with min and max. A script may set `BENCH_RUNS = n` at module level (how many runs keep
`make bench` under 10 minutes); `--runs` overrides every script. If any run of any script
exits non-zero or writes no figures, nothing from that benchmark is reported, RESULTS.md says it failed,
and this script exits 1. Text after the KEEP_MARKER line in RESULTS.md (analysis) is carried over.

hearth_soak runs once (BENCH_RUNS = 1, 2-4 minutes: mixed operations per engine
through injected 5xx, resets and latency; a figure that misses its goal is a finding, not a failed run).
Environment for a quicker pass: BENCH_SOAK_OPS=60 (operations per pass instead of 300).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
DEFAULT_RUNS = 3
KEEP_MARKER = "<!-- hand-written analysis below: run_all.py keeps it -->"
sys.path.insert(0, str(BENCH))

from _harness import Metric, cpu_model, git_commit  # noqa: E402


def scripts(only: list[str] | None) -> list[Path]:
    found = sorted(p for p in BENCH.glob("*.py")
                   if not p.name.startswith(("_", "floor_")) and p.name != Path(__file__).name)
    if only:
        found = [p for p in found if p.stem in only]
    return found


def runs_for(script: Path, forced: int | None) -> int:
    if forced:
        return forced
    match = re.search(r"^BENCH_RUNS = (\d+)", script.read_text(), re.MULTILINE)
    return int(match.group(1)) if match else DEFAULT_RUNS


def run_once(script: Path, extra: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        proc = subprocess.run([sys.executable, str(script), "--json-out", str(out), *extra], cwd=BENCH.parent)
        if proc.returncode != 0:
            raise RuntimeError(f"{script.name} exited with {proc.returncode}")
        if not out.exists():
            raise RuntimeError(f"{script.name} exited 0 but wrote no result")
        data = json.loads(out.read_text())
    if not data.get("metrics"):
        raise RuntimeError(f"{script.name} reported no metrics")
    return data


def table(runs: list[dict[str, Any]]) -> list[str]:
    names = [m["name"] for m in runs[0]["metrics"]]
    by_name: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for run in runs:
        for metric in run["metrics"]:
            by_name.setdefault(metric["name"], []).append(metric)
    lines = ["| metric | median | min | max | unit | target | met (median) |", "|---|---:|---:|---:|---|---|---|"]
    for name, metrics in by_name.items():
        if len(metrics) != len(runs):
            raise RuntimeError(f"metric {name!r} is missing from some runs")
        values = [m["value"] for m in metrics]
        median = statistics.median(values)
        target = metrics[0].get("target")
        met = Metric(name, median, metrics[0]["unit"], target).met()
        verdict = {True: "yes", False: "**NO**", None: ""}[met]
        lines.append(f"| {name} | {median:,.2f} | {min(values):,.2f} | {max(values):,.2f} | {metrics[0]['unit']} "
                     f"| {target or ''} | {verdict} |")
    return lines


def merge_sections(previous: str, fresh: list[str]) -> list[str]:
    """The previous file's `## name` sections, with those in `fresh` replaced (or added), in name order."""
    def split(lines: list[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        name = None
        for line in lines:
            if line.startswith("## "):
                name = line[3:].strip()
                found[name] = []
            if name is not None:
                found[name].append(line)
        return found

    merged = split(previous.splitlines())
    merged.update(split(fresh))
    return [line for name in sorted(merged) for line in merged[name]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=None, help=f"runs per script (default: BENCH_RUNS or "
                        f"{DEFAULT_RUNS})")
    parser.add_argument("--only", action="append", help="run only this script (stem), may repeat")
    parser.add_argument("--output", default=str(BENCH / "RESULTS.md"))
    parser.add_argument("extra", nargs="*", help="arguments passed to every script (after --)")
    args = parser.parse_args()

    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = [
        "# Benchmark results",
        "",
        f"- commit: `{git_commit(BENCH.parent)}`",
        f"- date: {now}",
        f"- machine: {os.cpu_count()} cores ({cpu_model()}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}",
        "- each figure: median of the runs (count per section), with min and max "
        "(`make bench` = `.venv/bin/python bench/run_all.py`)",
        "",
    ]
    sections: list[str] = []
    failed: list[str] = []
    began = time.monotonic()
    for script in scripts(args.only):
        count = runs_for(script, args.runs)
        print(f"### {script.name}: {count} runs", flush=True)
        script_began = time.monotonic()
        try:
            runs = [run_once(script, args.extra) for _ in range(count)]
            body = table(runs)
        except Exception as err:  # any failure: report no figure from this benchmark
            print(f"!!! {script.name} FAILED: {err}", file=sys.stderr, flush=True)
            failed.append(script.name)
            sections += [f"## {script.stem}", "", f"**FAILED**: {err}. No figures are reported.", ""]
            continue
        last = runs[-1]
        sections += [f"## {script.stem}", "", f"- runs: {count} ({time.monotonic() - script_began:.0f} s in all)"]
        sections += [f"- {key}: {value}" for key, value in last.get("params", {}).items()]
        sections += [""] + body + [""]
        sections += [f"- note: {note}" for note in last.get("notes", [])]
        sections.append("")
    took = time.monotonic() - began
    header.insert(-1, f"- wall time: {took:.0f} s" + (f" (partial run: {', '.join(args.only)}; the other sections "
                                                     "are from the previous run)" if args.only else
                                                     " for the whole `make bench`"))
    output = Path(args.output)
    kept = ""
    if output.exists() and KEEP_MARKER in output.read_text():
        kept = KEEP_MARKER + output.read_text().split(KEEP_MARKER, 1)[1]
    if args.only and output.exists():  # a partial run replaces its own sections and keeps the others
        sections = merge_sections(output.read_text().split(KEEP_MARKER, 1)[0], sections)
    output.write_text("\n".join(header + sections) + ("\n" + kept if kept else ""))
    print(f"wrote {args.output}")
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
