"""The PostgreSQL guest: a real PostgreSQL 16 server, from the `pgserver` wheel's binaries, per server.

The server listens on a Unix socket only; the guest plane's listeners put it on the server's addresses (and
filter by security group on the way). Its cluster lives in `pgdata` on the data disk the plane chooses; the
superuser `postgres` has the server's admin password, set at initdb and again when it changes (a rebuild with
a new adminPass), through single-user mode so the password never appears in a command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from openstack_fakecloud.guests.disks import GuestAccount

PORT = 5432
PG_MAJOR = 16  # the pgserver wheel's PostgreSQL
START_TIMEOUT = 60.0  # seconds for initdb plus start-up before the guest is declared failed
STOP_TIMEOUT = 30.0
DATA_FOLDER = "pgdata"  # below the data disk's root: where the image's documentation says the cluster lives
_MARKER = "fakecloud-guest.json"  # beside pgdata: a salted hash of the password the cluster has
# What the guest itself fixes, on the command line (which overrides every configuration file): where it
# listens (the plane's listeners put the Unix socket on the server's addresses) and its logging.
_SETTINGS = {"listen_addresses": "", "port": str(PORT), "logging_collector": "off"}
# The image's defaults for what a user may tune, small by design (a fakecloud host runs many guests). They
# are in a file postgresql.conf includes, so `ALTER SYSTEM` (postgresql.auto.conf, read last) wins over them.
_DEFAULTS = {"shared_buffers": "16MB", "max_connections": "50", "dynamic_shared_memory_type": "mmap"}
DEFAULTS_FILE = "fakecloud-defaults.conf"  # in the data directory
_INCLUDE = f"include_if_exists = '{DEFAULTS_FILE}'"


class GuestFailure(Exception):
    """The guest could not start; the message is what its console shows."""


def binaries() -> Path:
    """Where initdb and postgres are: $FAKECLOUD_PG_BIN, else the pgserver wheel's (found without importing it:
    its import has side effects)."""
    override = os.environ.get("FAKECLOUD_PG_BIN")
    if override:
        return Path(override)
    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None:
        raise GuestFailure("PostgreSQL server binaries are missing: install the `pgserver` package "
                           "(or set FAKECLOUD_PG_BIN)")
    return Path(spec.origin).parent / "pginstall" / "bin"


def _fingerprint(password: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}:{password}".encode()).hexdigest()


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class PostgresGuest:
    """One guest's PostgreSQL: prepared, started, stopped. Its console lines go to `console`."""

    kind = "postgresql"
    port = PORT

    def __init__(self, disk: Path, socket_dir: Path, account: GuestAccount, console: list[str],
                 templates: Path, template_lock: asyncio.Lock) -> None:
        self.disk = disk
        self.template = templates / f"{self.kind}-{PG_MAJOR}"
        self.template_lock = template_lock  # the plane's: one initdb however many guests start at once
        self.data = disk / DATA_FOLDER
        self.socket_dir = socket_dir
        self.account = account
        self.console = console
        self.process: subprocess.Popen[bytes] | None = None
        self._born = time.monotonic()  # console lines carry seconds since, as a kernel's do since boot

    @property
    def socket_path(self) -> str:
        return str(self.socket_dir / f".s.PGSQL.{PORT}")

    def _say(self, line: str) -> None:
        self.console.append(f"[{time.monotonic() - self._born:8.3f}] postgresql: {line}")

    def _as_guest(self) -> dict[str, object]:
        """Popen arguments that run a child as the guest account (uvloop's subprocess API cannot)."""
        if self.account.uid is None:
            return {}
        return {"user": self.account.uid, "group": self.account.gid, "extra_groups": []}

    async def _run(self, *argv: str, stdin: bytes | None = None) -> tuple[int, str]:
        """Run a PostgreSQL tool as the guest account, off the event loop; returns its exit code and output."""
        def run() -> subprocess.CompletedProcess[bytes]:
            return subprocess.run(argv, input=stdin or b"", stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  timeout=START_TIMEOUT, env={"LC_ALL": "C", "PATH": os.environ.get("PATH", "")},
                                  check=False, **self._as_guest())  # type: ignore[call-overload]

        try:
            done = await asyncio.to_thread(run)
        except subprocess.TimeoutExpired:
            raise GuestFailure(f"{Path(argv[0]).name} did not finish in {START_TIMEOUT:.0f} s") from None
        return done.returncode, done.stdout.decode(errors="replace")

    async def start(self, password: str) -> None:
        """Make the cluster if the disk has none, give it the password, start it and wait until it accepts."""
        bin_dir = binaries()
        if not (bin_dir / "postgres").exists():
            raise GuestFailure(f"PostgreSQL server binaries are missing: no {bin_dir / 'postgres'}")
        await self._reap_orphan()
        if not (self.data / "PG_VERSION").exists():
            await self._from_template(bin_dir)
        self._write_defaults()
        await self._set_password(bin_dir, password)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self.account.own(self.socket_dir)
        self.socket_dir.chmod(0o711)  # the plane (root) connects through the socket
        argv = [str(bin_dir / "postgres"), "-D", str(self.data), "-k", str(self.socket_dir)]
        for name, value in _SETTINGS.items():
            argv += ["-c", f"{name}={value}"]
        with open(self.disk / "postgresql.log", "ab") as log:
            self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                            start_new_session=True, **self._as_guest())  # type: ignore[call-overload]
        self._say(f"postgres started (pid {self.process.pid})")
        await self._wait_ready()

    def _write_defaults(self) -> None:
        """Write the image's tunable defaults and include them from postgresql.conf: on every start, so a
        cluster made before the defaults moved out of the command line gets them too."""
        defaults = self.data / DEFAULTS_FILE
        text = "# the fakecloud image's defaults; ALTER SYSTEM overrides them\n" + "".join(
            f"{name} = {_quoted(value)}\n" for name, value in _DEFAULTS.items())
        if not defaults.exists() or defaults.read_text() != text:
            defaults.write_text(text)
            self.account.own(defaults)
            defaults.chmod(0o600)
        conf = self.data / "postgresql.conf"
        lines = conf.read_text().splitlines()
        if _INCLUDE not in lines:
            with open(conf, "a") as handle:  # last, so the defaults win over initdb's values above
                handle.write(f"\n{_INCLUDE}\n")

    async def _from_template(self, bin_dir: Path) -> None:
        """A new cluster is a copy of the image's template cluster (made by initdb once per data root, as an
        image ships a prepared one): a copy takes a tenth of initdb's time, so guests start quickly."""
        async with self.template_lock:
            if not (self.template / "pgdata" / "PG_VERSION").exists():
                self._say("preparing the image's template cluster (initdb, once)")
                await self._initdb(bin_dir, self.template)
        self._say("creating the database cluster from the template")
        # cp as the guest account: the copy is the guest's, modes kept, and shared extents where the file
        # system can (a tenth of a Python copy's time for a cluster's thousand files).
        code, output = await self._run("cp", "-a", "--reflink=auto", str(self.template / "pgdata"), str(self.data))
        if code != 0:
            shutil.rmtree(self.data, ignore_errors=True)
            raise GuestFailure(f"could not create the cluster: {output.strip()[-300:]}")

    async def _initdb(self, bin_dir: Path, where: Path) -> None:
        """initdb into `where/pgdata`, the superuser's password a throwaway (each copy gets its own)."""
        shutil.rmtree(where, ignore_errors=True)
        where.mkdir(parents=True)
        self.account.make_reachable(where.parent)
        self.account.own(where)
        pwfile = where / ".pwfile"
        pwfile.write_text(os.urandom(16).hex())
        self.account.own(pwfile)
        try:
            code, output = await self._run(str(bin_dir / "initdb"), "-D", str(where / "pgdata"), "-U", "postgres",
                                           f"--pwfile={pwfile}", "--auth=scram-sha-256", "-E", "UTF8", "--no-sync",
                                           "--wal-segsize=1",  # 1 MiB WAL files: small copies, small disks
                                           "--no-instructions")
        finally:
            pwfile.unlink(missing_ok=True)
        if code != 0:
            shutil.rmtree(where / "pgdata", ignore_errors=True)
            raise GuestFailure(f"initdb failed: {output.strip().splitlines()[-1] if output.strip() else code}")

    def _remember(self, password: str) -> None:
        salt = os.urandom(8).hex()
        (self.disk / _MARKER).write_text(json.dumps({"salt": salt, "password": _fingerprint(password, salt)}))

    def _knows(self, password: str) -> bool:
        try:
            marker = json.loads((self.disk / _MARKER).read_text())
        except (OSError, ValueError):
            return False
        return marker.get("password") == _fingerprint(password, marker.get("salt", ""))

    async def _set_password(self, bin_dir: Path, password: str) -> None:
        if self._knows(password):
            return
        self._say("setting the superuser password")
        code, output = await self._run(str(bin_dir / "postgres"), "--single", "-D", str(self.data), "-j",
                                       "postgres", stdin=f"ALTER ROLE postgres PASSWORD {_quoted(password)};\n"
                                       .encode())
        if code != 0:
            raise GuestFailure(f"could not set the superuser password: {output.strip()[-300:]}")
        self._remember(password)

    async def _wait_ready(self) -> None:
        """Ready when postmaster.pid says `ready` (PostgreSQL writes it once it accepts connections)."""
        assert self.process is not None
        pid_file = self.data / "postmaster.pid"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT
        while loop.time() < deadline:
            if self.process.poll() is not None:
                raise GuestFailure(f"postgres exited with {self.process.returncode}: {self._log_tail()}")
            with contextlib.suppress(OSError):
                lines = pid_file.read_text().splitlines()
                if len(lines) >= 8 and lines[7].strip() == "ready":
                    self._say(f"accepting connections on port {PORT}")
                    return
            await asyncio.sleep(0.02)
        await self.stop()
        raise GuestFailure(f"postgres did not become ready in {START_TIMEOUT:.0f} s: {self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            lines = (self.disk / "postgresql.log").read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return lines[-1] if lines else "(empty log)"

    async def _reap_orphan(self) -> None:
        """A postmaster left by a fakecloud that was killed still holds the cluster: stop it first."""
        pid_file = self.data / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return
        if str(self.data).encode() not in cmdline:
            return
        self._say(f"stopping a postgres left running (pid {pid})")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)
        for _ in range(int(STOP_TIMEOUT / 0.05)):
            if not Path(f"/proc/{pid}").exists():
                return
            await asyncio.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    async def stop(self) -> None:
        """Fast shutdown (SIGINT: clients disconnected, data flushed); killed if it does not finish in time."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STOP_TIMEOUT
        while process.poll() is None and loop.time() < deadline:
            await asyncio.sleep(0.02)
        if process.poll() is None:
            process.kill()
            await asyncio.to_thread(process.wait)
        self._say("postgres stopped")

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.running and self.process is not None else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None
