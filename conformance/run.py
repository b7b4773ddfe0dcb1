#!/usr/bin/env python3
"""`make conformance`: run OpenStack's own tempest suites against Hearth + fakecloud and ratchet the result.

Why this exists: fakecloud's fidelity is judged by tests nobody on this project wrote. This driver starts
`hearth up` on fixed loopback ports with conformance/fakecloud-tempest.yaml, runs each scoped suite in its own
tempest workspace, reads the outcome from the subunit stream stestr recorded (never from tempest's human output),
writes conformance/RESULTS.md and conformance/results/<suite>.json, and fails when a test listed in
conformance/passing.txt no longer passes.

Ratchet policy (passing.txt): a check run never edits the list. `--update` (make conformance-update) adds every
test that passed in this run and drops listed ids that no longer exist in a suite that ran (a renamed or removed
upstream test); it never drops a listed test that still exists but failed: that stays a regression (and the run
still exits non-zero) until someone removes the line by hand, so a loss of fidelity is always a visible diff.

Stdlib only: runs with the system python3. The subunit parsing runs in the conformance virtualenv's python
(conformance/subunit_to_json.py), which has python-subunit.

Network: everything here talks to 127.0.0.1 only (hearth binds loopback; every URL in tempest.conf is 127.0.0.1;
run_validation is off, so tempest never dials a server address, and fakecloud guests bind loopback addresses only).
"""
from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
API_PORT = 48779
CLOUD_PORT = 48780

# name -> tempest --regex. Order is the order of RESULTS.md.
SUITES: dict[str, str] = {
    "compute": r"^tempest\.api\.compute\.(servers|flavors|volumes)\.",
    "volume": r"^tempest\.api\.volume\.",
    "network": r"^tempest\.api\.network\.",
    "image": r"^tempest\.api\.image\.v2\.",
    "identity": r"^tempest\.api\.identity\.v3\.",
    "heat": r"^heat_tempest_plugin\.tests\.api\.",
    "trove": r"trove_tempest_plugin\.tests\.scenario\.(test_instance_basic|test_instance_actions"
             r"|test_instance_update_access)\.\w+PostgreSQL",
}

PASSED = {"success", "xfail"}
SKIPPED = {"skip"}
_ATTRS = re.compile(r"\[[^\]]*\]$")


def test_key(test_id: str) -> str:
    """The ratchet key of a test: its id without tempest's '[id-...,smoke]' attribute suffix.

    Attributes (tags such as 'smoke' or 'slow') change upstream without the test changing; keying on them
    would turn a harmless retag into a 'regression'.
    """
    return _ATTRS.sub("", test_id)


@dataclass
class SuiteResult:
    """One suite's run: its outcomes as read from subunit, plus the wall time and how the runner ended."""

    name: str
    regex: str
    wall_seconds: float = 0.0
    exit_code: int | None = None
    timed_out: bool = False
    error: str = ""
    tests: list[dict[str, Any]] = field(default_factory=list)

    def count(self, statuses: set[str]) -> int:
        return sum(1 for t in self.tests if t["status"] in statuses)

    @property
    def passed(self) -> int:
        return self.count(PASSED)

    @property
    def skipped(self) -> int:
        return self.count(SKIPPED)

    @property
    def failed(self) -> int:
        return len(self.tests) - self.passed - self.skipped


# --- the cloud ----------------------------------------------------------------------------------------------

class Hearth:
    """`hearth up` in the background with fresh state, on the fixed loopback ports tempest.conf names."""

    def __init__(self, hearth_bin: Path, work: Path) -> None:
        self.hearth_bin = hearth_bin
        self.home = work / "hearth-home"
        self.log_path = work / "hearth.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 180.0) -> None:
        """Start and wait for GET /readyz: hearth accepts connections only once fakecloud and the API are ready."""
        for port in (API_PORT, CLOUD_PORT):
            if _answers(f"http://127.0.0.1:{port}/"):
                raise SystemExit(f"port {port} on 127.0.0.1 already answers: stop whatever runs there first")
        shutil.rmtree(self.home, ignore_errors=True)  # fresh state: no leftovers from the previous run
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [str(self.hearth_bin), "up", "--port", str(API_PORT), "--cloud-port", str(CLOUD_PORT),
             "--cloud-config", str(HERE / "fakecloud-tempest.yaml"), "--home", str(self.home)],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"hearth up exited with {self.proc.returncode}; see {self.log_path}")
            if _answers(f"http://127.0.0.1:{API_PORT}/readyz", want_ok=True):
                return
            time.sleep(0.5)
        self.stop()
        raise SystemExit(f"hearth up did not become ready in {timeout:.0f}s; see {self.log_path}")

    def stop(self) -> None:
        """SIGTERM the process group (hearth and the guests it started), SIGKILL what is left after 30 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        _kill_group(self.proc, grace=30.0)


def _answers(url: str, want_ok: bool = False) -> bool:
    """Whether something answers HTTP at url (with a 2xx when want_ok)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return 200 <= resp.status < 300 or not want_ok
    except urllib.error.HTTPError:
        return not want_ok
    except (OSError, ValueError):
        return False


def _kill_group(proc: subprocess.Popen[bytes], grace: float) -> None:
    """Stop a process started with start_new_session=True, with everything it spawned."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


# --- one suite ----------------------------------------------------------------------------------------------

def init_workspace(venv: Path, work: Path, suite: str) -> Path:
    """A fresh `tempest init` workspace per suite, so each has its own stestr repository and logs."""
    ws = work / suite
    shutil.rmtree(ws, ignore_errors=True)
    # The workspace registry goes under work/ too: the default (~/.tempest/workspace.yaml) refuses a name twice
    # and would collect an entry per run on a developer's machine.
    registry = work / "workspace.yaml"
    subprocess.run([str(venv / "bin" / "tempest"), "workspace", "remove", "--name", suite,
                    "--workspace-path", str(registry)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run([str(venv / "bin" / "tempest"), "init", "--name", suite, "--workspace-path", str(registry),
                    str(ws)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    conf = (HERE / "tempest.conf.template").read_text()
    conf = conf.replace("@@WS@@", str(ws)).replace("@@LOCK@@", str(work / "tempest_lock"))
    (ws / "etc" / "tempest.conf").write_text(conf)
    shutil.copy(HERE / "accounts.yaml", ws / "etc" / "accounts.yaml")
    return ws


def run_suite(venv: Path, work: Path, name: str, regex: str, concurrency: int, timeout: float) -> SuiteResult:
    """Run one suite with `tempest run` and read its outcomes back from `stestr last --subunit`."""
    result = SuiteResult(name, regex)
    ws = init_workspace(venv, work, name)
    env = dict(os.environ, OS_TEST_TIMEOUT=os.environ.get("OS_TEST_TIMEOUT", "300"))  # bound one hung test
    start = time.monotonic()
    with (ws / "run.log").open("wb") as log:
        proc = subprocess.Popen([str(venv / "bin" / "tempest"), "run", "--concurrency", str(concurrency),
                                 "--regex", regex], cwd=ws, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            result.exit_code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            result.timed_out = True
            _kill_group(proc, grace=10.0)
    result.wall_seconds = time.monotonic() - start
    subunit = subprocess.run([str(venv / "bin" / "stestr"), "last", "--subunit"], cwd=ws, capture_output=True)
    if subunit.returncode != 0 or not subunit.stdout:
        result.error = f"no subunit stream (tempest exit {result.exit_code}); see {ws / 'run.log'}"
        return result
    parsed = subprocess.run([str(venv / "bin" / "python"), str(HERE / "subunit_to_json.py")],
                            input=subunit.stdout, capture_output=True, check=True)
    result.tests = json.loads(parsed.stdout)
    _class_fixture_requests(result.tests, ws / "logs" / "tempest.log")
    if result.timed_out:
        result.error = f"timed out after {timeout:.0f}s; tests that had not finished are missing"
    return result


_CLASS_FIXTURE = re.compile(r"^(setUpClass|tearDownClass) \((?:.*\.)?(\w+)\)$")
_LOGGED_REQUEST = re.compile(r"Request \((\w+):(\w+)\): (\d{3}) ([A-Z]+) (\S+)")


def _class_fixture_requests(tests: list[dict[str, Any]], log: Path) -> None:
    """Fill error_requests of failed setUpClass/tearDownClass entries from tempest.log.

    subunit carries no captured logging for class fixtures, yet a class failing in setUpClass is usually the
    widest fidelity gap (every test of the class is lost), so its failing route matters most.
    """
    wanted = {m[2]: t for t in tests if t["status"] not in PASSED | SKIPPED
              and not t.get("error_requests") and (m := _CLASS_FIXTURE.match(t["id"]))}
    if not wanted or not log.exists():
        return
    with log.open(errors="replace") as fh:
        for line in fh:
            m = _LOGGED_REQUEST.search(line)
            if m and m[1] in wanted and m[2] in ("setUpClass", "tearDownClass") and int(m[3]) >= 400:
                wanted[m[1]].setdefault("error_requests", []).append(f"{m[3]} {m[4]} {m[5]}")
    for t in wanted.values():
        t["error_requests"] = t["error_requests"][-3:]


# --- reporting ----------------------------------------------------------------------------------------------

_UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}")


def failure_cause(test: dict[str, Any]) -> str:
    """A short, groupable cause: the exception line plus the error body tempest printed ('Details: ...').

    The body is where fakecloud says what it refused ('There is no such action: rebuild', 'The resource could
    not be found: POST /compute/v2.1/os-server-groups'), which is what a fidelity fix needs; ids are masked so
    that the same cause in different tests groups together.
    """
    lines = [ln.strip() for ln in test.get("traceback", "").splitlines() if ln.strip()]
    exc_at = next((i for i in range(len(lines) - 1, -1, -1) if re.match(r"^[\w.]+: ", lines[i])
                   and not lines[i].startswith(("Details:", "Body:", "Response"))), None)
    if exc_at is None:
        return lines[-1][:200] if lines else test["status"]
    cause = lines[exc_at]
    details = next((ln for ln in lines[exc_at + 1:] if ln.startswith("Details:")), "")
    if details:
        cause = f"{cause.split(':')[0]}: {details}"
    if re.fullmatch(r".*Details: \d{3}", cause) and test.get("error_requests"):
        # a bare status (405 and friends have no body): name the route it came from
        cause += " from " + re.sub(r"^\d{3} |https?://[^/]+", "", test["error_requests"][-1])
    if "response:" in cause:  # gabbi (heat): the expected status line, then the body with the error message
        message = re.search(r'"message": "([^"]*)"', "\n".join(lines[exc_at:]))
        cause = cause.split("response:")[0] + (f"response: {message[1]}" if message else "")
    return re.sub(r"/v3/[0-9a-f]{32}/|/v1/[0-9a-f]{32}/", lambda m: m[0][:4] + "<project>/",
                  _UUID.sub("<id>", cause))[:240]


def write_json(result: SuiteResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "suite": result.name, "regex": result.regex, "wall_seconds": round(result.wall_seconds, 1),
        "exit_code": result.exit_code, "timed_out": result.timed_out, "error": result.error,
        "summary": {"passed": result.passed, "failed": result.failed, "skipped": result.skipped},
        "tests": [dict(t, cause=failure_cause(t) if t["status"] not in PASSED | SKIPPED else "")
                  for t in sorted(result.tests, key=lambda t: t["id"])],
    }
    path.write_text(json.dumps(payload, indent=1) + "\n")


def fakecloud_revision() -> str:
    """The commit the run measured, marked dirty when src/ has uncommitted changes (then it measured those too)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=ROOT, capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head} (+ uncommitted changes under src/)" if dirty else head


def write_markdown(results: list[SuiteResult], path: Path, started: dt.datetime, total: float,
                   revision: str) -> None:
    """RESULTS.md: the table a reader wants first, then skips by reason and failures by cause."""
    out = [
        "# Conformance results (tempest against Hearth + fakecloud)",
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC",
        f"- fakecloud commit: {revision}",
        f"- total wall time: {total / 60:.1f} min",
        "- written by `make conformance` (conformance/run.py); per-test outcomes in conformance/results/<suite>.json",
        "",
        "A class that fails in setUpClass counts once (as its `setUpClass (...)` entry).",
        "",
        "| suite | regex | passed | failed | skipped | pass rate (non-skipped) | wall time |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        ran = r.passed + r.failed
        rate = f"{100 * r.passed / ran:.0f}%" if ran else "n/a"
        note = f" ({r.error})" if r.error else ""
        regex = r.regex.replace("|", "\\|")  # a bare | would split the table cell
        out.append(f"| {r.name}{note} | `{regex}` | {r.passed} | {r.failed} | {r.skipped} | {rate} "
                   f"| {r.wall_seconds / 60:.1f} min |")
    out += ["", "## Skips by reason", ""]
    for r in results:
        reasons = Counter(t["reason"] or "(no reason given)" for t in r.tests if t["status"] in SKIPPED)
        if not reasons:
            continue
        out += [f"### {r.name} ({r.skipped})", ""]
        out += [f"- {n} × {reason.replace(chr(10), ' ')[:200]}" for reason, n in reasons.most_common()]
        out.append("")
    out += ["## Failures by exception (automatic grouping; see results/<suite>.json for tracebacks)", ""]
    for r in results:
        causes = Counter(failure_cause(t) for t in r.tests if t["status"] not in PASSED | SKIPPED)
        if not causes:
            continue
        out += [f"### {r.name} ({r.failed})", ""]
        out += [f"- {n} × `{cause}`" for cause, n in causes.most_common()]
        out.append("")
    path.write_text("\n".join(out).rstrip() + "\n")


# --- the ratchet --------------------------------------------------------------------------------------------

def read_passing(path: Path) -> set[str]:
    if not path.exists():
        return set()
    return {ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")}


def write_passing(path: Path, keys: set[str]) -> None:
    header = ("# Tests that passed against fakecloud (conformance/run.py). `make conformance` fails if one of these\n"
              "# no longer passes. `make conformance-update` adds new passes and drops ids that no longer exist;\n"
              "# it never drops a test that exists but fails: remove such a line by hand, in review.\n")
    path.write_text(header + "".join(f"{k}\n" for k in sorted(keys)))


def ratchet(results: list[SuiteResult], path: Path, update: bool) -> list[str]:
    """Listed tests (of the suites that ran) that did not pass now; with update, also rewrite the list."""
    listed = read_passing(path)
    regexes = [re.compile(r.regex) for r in results]
    in_scope = {k for k in listed if any(rx.search(k) for rx in regexes)}
    seen = {test_key(t["id"]) for r in results for t in r.tests}
    passed = {test_key(t["id"]) for r in results for t in r.tests if t["status"] in PASSED}
    # A suite that timed out or produced no stream says nothing about its tests' existence: don't drop them.
    incomplete = [re.compile(r.regex) for r in results if r.error]
    regressions = sorted(k for k in in_scope - passed
                         if k in seen or any(rx.search(k) for rx in incomplete))
    if update:
        vanished = {k for k in in_scope - seen if not any(rx.search(k) for rx in incomplete)}
        write_passing(path, (listed - vanished) | passed)
        print(f"passing.txt: +{len(passed - listed)} new, -{len(vanished)} no longer exist, "
              f"{len((listed - vanished) | passed)} listed")
    return regressions


# --- main ---------------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suites", default=os.environ.get("CONFORMANCE_SUITES", ",".join(SUITES)),
                        help="comma-separated subset of: " + ", ".join(SUITES))
    parser.add_argument("--update", action="store_true", default=os.environ.get("CONFORMANCE_UPDATE") == "1",
                        help="rewrite passing.txt from this run (also CONFORMANCE_UPDATE=1)")
    parser.add_argument("--jobs", type=int, default=int(os.environ.get("CONFORMANCE_JOBS", "1")),
                        help="suites run side by side against the one cloud (default 1)")
    parser.add_argument("--concurrency", type=int, default=2, help="tempest workers per suite")
    parser.add_argument("--suite-timeout", type=float, default=float(os.environ.get("CONFORMANCE_SUITE_TIMEOUT",
                                                                                    "1200")))
    parser.add_argument("--venv", type=Path, default=ROOT / ".conformance-venv")
    parser.add_argument("--hearth", type=Path, default=ROOT / ".venv" / "bin" / "hearth")
    parser.add_argument("--revision", help="what RESULTS.md names as the measured commit, when --hearth runs "
                                           "another tree than this checkout (default: this checkout's HEAD)")
    parser.add_argument("--work", type=Path, default=HERE / ".work", help="workspaces and logs (gitignored)")
    args = parser.parse_args(argv)

    names = [s.strip() for s in args.suites.split(",") if s.strip()]
    unknown = [n for n in names if n not in SUITES]
    if unknown:
        parser.error(f"unknown suite(s) {unknown}; known: {', '.join(SUITES)}")
    args.work.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC)
    t0 = time.monotonic()
    hearth = Hearth(args.hearth, args.work)
    hearth.start()
    print(f"hearth up on 127.0.0.1:{API_PORT} (fakecloud :{CLOUD_PORT}); log {hearth.log_path}", flush=True)
    results: list[SuiteResult] = []
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = {pool.submit(run_suite, args.venv, args.work, n, SUITES[n], args.concurrency,
                                   args.suite_timeout): n for n in names}
            for fut in concurrent.futures.as_completed(futures):
                r = fut.result()
                results.append(r)
                print(f"{r.name:9} passed {r.passed:4}, failed {r.failed:4}, skipped {r.skipped:4} "
                      f"in {r.wall_seconds / 60:5.1f} min {r.error}", flush=True)
    finally:
        hearth.stop()
    results.sort(key=lambda r: names.index(r.name))
    total = time.monotonic() - t0
    for r in results:
        write_json(r, HERE / "results" / f"{r.name}.json")
    if set(names) == set(SUITES):
        write_markdown(results, HERE / "RESULTS.md", started, total, args.revision or fakecloud_revision())
    else:  # a subset would leave RESULTS.md with some suites only: it describes whole runs
        print("a subset of the suites ran: conformance/RESULTS.md is left as it was", flush=True)

    regressions = ratchet(results, HERE / "passing.txt", args.update)
    p, f, s = (sum(getattr(r, a) for r in results) for a in ("passed", "failed", "skipped"))
    # Worded so that CI does not mistake it for a test runner's closing "N passed, N failed" line: known fidelity
    # gaps fail here by design, and only the ratchet decides the exit code.
    print(f"conformance: passed {p}, failed {f}, skipped {s} in {total / 60:.1f} min; see conformance/RESULTS.md")
    if regressions:
        print(f"\n{len(regressions)} test(s) in conformance/passing.txt did not pass:", file=sys.stderr)
        for k in regressions:
            print(f"  {k}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
