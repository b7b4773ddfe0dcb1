"""The user data for stock cloud images: checked by cloud-init's own schema checker (Debian 12's cloud-init,
unpacked by `make cloud-init-schema` under .cache/cloud-init), and for what it means."""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest
import yaml

from hearth.datastores.cloudinit import PASSWORD_FILE, StockImageSetup, pg_hba, user_data
from hearth.datastores.postgresql import Endpoint, Invalid, PostgresManager, scram_verifier
from openstack_fakecloud.guests.disks import GuestAccount
from openstack_fakecloud.guests.postgres import binaries

ROOT = Path(__file__).resolve().parents[3]
CACHE = ROOT / ".cache" / "cloud-init"
PACKAGES = CACHE / "root" / "usr" / "lib" / "python3" / "dist-packages"

# cloud-init's module order (Debian 12's and Ubuntu's /etc/cloud/cloud.cfg, the part that matters here; checked
# against the unpacked package's cloud.cfg below): mounts run in the init stage, packages in the final one, and
# runcmd's script (written in the config stage) by scripts-user, last of the final stage.
STAGES = {
    "cloud_init_modules": ["write-files", "disk_setup", "mounts"],
    "cloud_config_modules": ["runcmd"],
    "cloud_final_modules": ["package-update-upgrade-install", "write-files-deferred", "scripts-user"],
}
MODULE_OF_KEY = {
    "disk_setup": "disk_setup", "fs_setup": "disk_setup", "mounts": "mounts",
    "package_update": "package-update-upgrade-install", "packages": "package-update-upgrade-install",
    "runcmd": "scripts-user",
}

SETUPS = {
    "ipv4": StockImageSetup(
        major=15, admin_password="Zq3xK9vT2mLp8wRs", allowed_cidrs=("10.0.0.0/24", "172.16.5.7/16"),
        management_cidrs=("192.168.10.0/24",),
    ),
    "ipv6": StockImageSetup(
        major=16, admin_password="plain-password-1", allowed_cidrs=("2001:db8:1::/48", "fd00::1/64"),
        management_cidrs=("2001:db8:ffff::/64",),
    ),
    "mixed-port": StockImageSetup(
        major=16, port=5433, admin_password="mixed-password-2", allowed_cidrs=("0.0.0.0/0", "::/0"),
        management_cidrs=("10.1.0.0/16", "fd12:3456::/32"),
    ),
    "no-allowed": StockImageSetup(
        major=16, admin_password="no-allowed-pass3", allowed_cidrs=(), management_cidrs=("10.9.0.0/16",),
    ),
    "quotes": StockImageSetup(
        major=16, admin_password="it's \"quoted\" ''; DROP ROLE x; --", allowed_cidrs=("10.0.0.0/8",),
        management_cidrs=("10.0.0.0/8",),
    ),
    "backslashes": StockImageSetup(
        major=14, admin_password="back\\slash\\\\ $HOME `id` \\' \\n #{x} %s: - [a]", allowed_cidrs=("10.2.0.0/16",),
        management_cidrs=("192.0.2.0/24",),
    ),
    "unicode-volume": StockImageSetup(
        major=16, admin_password="pässwörd-✓-長い", allowed_cidrs=("198.51.100.0/24",),
        management_cidrs=("203.0.113.0/24",), volume_device="/dev/disk/by-id/virtio-hearth0",
        mount_point="/srv/pgdata",
    ),
}


def _checker_missing_reason() -> str | None:
    missing = [tool for tool in ("apt-get", "dpkg", "make", "python3") if shutil.which(tool) is None]
    if missing:
        tools = ", ".join(missing)
        return f"cloud-init's schema checker comes from Debian's cloud-init package: no {tools} on this machine"
    return None


@pytest.fixture(scope="module")
def cloud_init() -> Path:
    """The unpacked cloud-init, installed on first use by `make cloud-init-schema` (apt-get download + dpkg -x)."""
    if not (CACHE / ".installed").exists():
        reason = _checker_missing_reason()
        if reason:
            pytest.skip(reason)
        done = subprocess.run(["make", "-s", "cloud-init-schema"], cwd=ROOT, capture_output=True, text=True,
                              timeout=900)
        assert done.returncode == 0, f"make cloud-init-schema failed:\n{done.stdout}\n{done.stderr}"
    return CACHE


def _schema_check(tmp_path: Path, document: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "user-data.yaml"
    path.write_text(document, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(PACKAGES), "LANG": "C.UTF-8"}
    return subprocess.run(
        [str(CACHE / "venv" / "bin" / "python"), "-m", "cloudinit.cmd.main", "schema", "--config-file", str(path)],
        capture_output=True, text=True, env=env, timeout=120,
    )


def _known_keys() -> set[str]:
    schema = json.loads((PACKAGES / "cloudinit" / "config" / "schemas" / "schema-cloud-config-v1.json").read_text())
    keys: set[str] = set()
    for definition in schema["$defs"].values():
        keys |= set(definition.get("properties", {}))
    return keys


def _doc(setup: StockImageSetup) -> tuple[str, dict]:
    text = user_data(setup)
    return text, yaml.safe_load(text)


def _file(document: dict, path: str) -> dict:
    (entry,) = [f for f in document["write_files"] if f["path"] == path]
    return entry


# -- cloud-init's own checker ------------------------------------------------------------------------------------


def test_checker_is_real(cloud_init: Path, tmp_path: Path) -> None:
    bad = "#cloud-config\npackages: 5\nfs_setup: [{label: x, filesystem: ext4, device: /dev/vdb, overwrite: 'no'}]\n"
    done = _schema_check(tmp_path, bad)
    assert done.returncode != 0
    assert "packages: 5 is not of type 'array'" in done.stderr
    assert "overwrite: 'no' is not of type 'boolean'" in done.stderr


@pytest.mark.parametrize("name", sorted(SETUPS))
def test_schema_valid(cloud_init: Path, tmp_path: Path, name: str) -> None:
    text, document = _doc(SETUPS[name])
    done = _schema_check(tmp_path, text)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Valid cloud-config" in done.stdout
    assert "deprecat" not in (done.stdout + done.stderr).lower()
    # cloud-init 22.4's schema lets unknown top-level keys through: every key must be one of its modules'.
    assert set(document) <= _known_keys()


def test_module_order_is_cloud_inits(cloud_init: Path) -> None:
    config = yaml.safe_load((CACHE / "root" / "etc" / "cloud" / "cloud.cfg").read_text())
    for stage, modules in STAGES.items():
        listed = [m if isinstance(m, str) else m[0] for m in config[stage]]
        assert [m for m in listed if m in modules] == modules, stage


# -- what the document means ---------------------------------------------------------------------------------------


def _order(module: str) -> tuple[int, int]:
    for s, modules in enumerate(STAGES.values()):
        if module in modules:
            return s, modules.index(module)
    raise AssertionError(module)


@pytest.mark.parametrize("name", sorted(SETUPS))
def test_volume_mounted_before_postgresql_installed(name: str) -> None:
    setup = SETUPS[name]
    text, document = _doc(setup)
    assert text.startswith("#cloud-config\n")
    assert document["disk_setup"] == {setup.volume_device: {"table_type": "gpt", "layout": False, "overwrite": False}}
    (fs,) = document["fs_setup"]
    assert fs["device"] == setup.volume_device and fs["filesystem"] == "ext4" and fs["overwrite"] is False
    assert fs["partition"] == "any"  # any existing filesystem on the volume is kept, never reformatted
    (mount,) = document["mounts"]
    assert mount[:3] == [setup.volume_device, setup.mount_point, "ext4"]
    assert document["packages"] == [f"postgresql-{setup.major}"]
    # mounts (init stage) before packages (final stage), and the password is set (runcmd, by scripts-user) after.
    assert _order(MODULE_OF_KEY["fs_setup"]) < _order(MODULE_OF_KEY["mounts"]) < _order(MODULE_OF_KEY["packages"])
    assert _order("package-update-upgrade-install") < _order("write-files-deferred") < _order("scripts-user")
    # the cluster is created on the volume, and waits for it on every boot
    created = _file(document, "/etc/postgresql-common/createcluster.d/50-hearth.conf")
    assert "defer" not in created and created["content"] == f"data_directory = '{setup.mount_point}/%v/%c'\n"
    unit = _file(document, "/etc/systemd/system/postgresql@.service.d/50-hearth-volume.conf")
    assert f"RequiresMountsFor={setup.mount_point}\n" in unit["content"]


@pytest.mark.parametrize("name", sorted(SETUPS))
def test_password_only_in_root_only_file(name: str) -> None:
    setup = SETUPS[name]
    text, document = _doc(setup)
    assert setup.admin_password not in text
    assert setup.admin_password not in repr(setup) and "***" in repr(setup)
    secret = _file(document, PASSWORD_FILE)
    assert secret["owner"] == "root:root" and secret["permissions"] == "0600" and secret["defer"] is True
    assert PASSWORD_FILE.startswith("/run/")  # tmpfs: never on a disk
    (line,) = [x for x in secret["content"].splitlines() if x.startswith("ALTER ROLE")]
    verifier = line.removeprefix("ALTER ROLE postgres WITH PASSWORD '").removesuffix("';")
    mechanism, rest = verifier.split("$", 1)
    iterations, salt = rest.split("$")[0].split(":")
    assert mechanism == "SCRAM-SHA-256"
    assert scram_verifier(setup.admin_password, base64.b64decode(salt), int(iterations)) == verifier
    # the verifier is in that file's content and nowhere else
    others = dict(document, write_files=[f for f in document["write_files"] if f["path"] != PASSWORD_FILE])
    assert verifier not in yaml.safe_dump(others)
    # runcmd: psql reads the file on stdin (opened by root), then it is shredded, with no secret on a command line
    runcmd = document["runcmd"]
    (psql,) = [i for i, c in enumerate(runcmd) if "psql" in c]
    assert runcmd[psql].startswith("runuser -u postgres -- psql ") and runcmd[psql].endswith(f"-f - < {PASSWORD_FILE}")
    assert runcmd[psql + 1:] == [f"shred -u {PASSWORD_FILE}"]
    assert runcmd.index(f"systemctl restart postgresql@{setup.major}-main") < psql
    for entry in document["write_files"]:
        assert int(entry["permissions"], 8) & 0o022 == 0, entry["path"]
        if entry["path"].startswith("/etc/postgresql/"):
            assert entry["owner"] == "root:postgres" and entry["permissions"] == "0640" and entry["defer"] is True


@pytest.mark.parametrize("name", sorted(SETUPS))
def test_configuration_and_pg_hba(name: str) -> None:
    setup = SETUPS[name]
    _, document = _doc(setup)
    conf = _file(document, f"/etc/postgresql/{setup.major}/main/conf.d/50-hearth.conf")["content"]
    assert "listen_addresses = '*'\n" in conf and f"port = {setup.port}\n" in conf
    assert "password_encryption = 'scram-sha-256'\n" in conf
    hba = _file(document, f"/etc/postgresql/{setup.major}/main/pg_hba.conf")["content"]
    assert hba == pg_hba(setup)
    rules = [line.split() for line in hba.splitlines() if line and not line.startswith("#")]
    assert rules[0] == ["local", "all", "postgres", "peer"]
    wanted = {ipaddress.ip_network(c, strict=False) for c in setup.allowed_cidrs + setup.management_cidrs}
    hosts = rules[1:]
    assert all(r[:3] == ["host", "all", "all"] and r[4:] == ["scram-sha-256"] for r in hosts)
    assert {ipaddress.ip_network(r[3]) for r in hosts} == wanted
    assert len(hosts) == len(wanted)


def test_rejects() -> None:
    base = dict(major=16, admin_password="a-password-123", allowed_cidrs=("10.0.0.0/8",),
                management_cidrs=("192.168.0.0/16",))
    for change, message in [
        ({"management_cidrs": ()}, "management_cidrs is empty"),
        ({"allowed_cidrs": ("10.0.0.0/8\nhost all all 0.0.0.0/0 trust",)}, "not an IPv4 or IPv6 CIDR"),
        ({"allowed_cidrs": ("all",)}, "not an IPv4 or IPv6 CIDR"),
        ({"allowed_cidrs": "10.0.0.0/8"}, "not a string"),
        ({"port": 0}, "port"),
        ({"major": "16"}, "major"),
        ({"admin_password": ""}, "admin_password"),
        ({"mount_point": "relative/path"}, "mount_point"),
        ({"mount_point": "/var/lib/'x'"}, "mount_point"),
        ({"volume_device": "/dev/vdb; rm -rf /"}, "volume_device"),
    ]:
        with pytest.raises(ValueError, match=message):
            user_data(StockImageSetup(**{**base, **change}))


# -- a real PostgreSQL takes the files -----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_real_postgresql_takes_the_files() -> None:
    """The pgserver wheel's PostgreSQL 16 with the document's pg_hba.conf, conf.d snippet and password file: the
    files parse, and the password (set from the file, in single-user mode: the socket's peer rule needs an OS
    account named postgres) logs in over TCP with SCRAM. Loopback only: listen_addresses is overridden."""
    account = GuestAccount.for_this_process()
    as_account = {} if account.uid is None else {"user": account.uid, "group": account.gid, "extra_groups": []}
    bin_dir = binaries()
    setup = StockImageSetup(major=16, port=_free_port(), admin_password="it's a \\ \"test\" 🔑",
                            allowed_cidrs=("10.0.0.0/8", "2001:db8::/32"), management_cidrs=("127.0.0.0/8",))
    _, document = _doc(setup)
    etc = f"/etc/postgresql/{setup.major}/main"
    with tempfile.TemporaryDirectory() as top:
        root = Path(top)
        account.own(root)
        account.make_reachable(root)
        data, sockets = root / "data", root / "sockets"

        def run(*argv: str, stdin: str = "") -> str:
            done = subprocess.run(argv, input=stdin.encode(), capture_output=True, timeout=120,
                                  env={"LC_ALL": "C", "PATH": os.environ.get("PATH", "")}, **as_account)
            assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
            return done.stdout.decode()

        run(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=peer", "-E", "UTF8", "--no-sync")
        (data / "conf.d").mkdir()
        (data / "conf.d" / "50-hearth.conf").write_text(_file(document, f"{etc}/conf.d/50-hearth.conf")["content"])
        (data / "pg_hba.conf").write_text(_file(document, f"{etc}/pg_hba.conf")["content"])
        with open(data / "postgresql.conf", "a") as conf:
            conf.write("include_dir = 'conf.d'\nshared_buffers = '16MB'\ndynamic_shared_memory_type = 'mmap'\n")
        run(str(bin_dir / "postgres"), "--single", "-D", str(data), "postgres",
            stdin=_file(document, PASSWORD_FILE)["content"])
        sockets.mkdir()
        account.own(sockets)
        server = subprocess.Popen([str(bin_dir / "postgres"), "-D", str(data), "-k", str(sockets),
                                   "-c", "listen_addresses=127.0.0.1"], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, **as_account)
        try:
            dsn = {"host": "127.0.0.1", "port": setup.port, "dbname": "postgres", "user": "postgres"}
            deadline = time.monotonic() + 60
            while True:
                try:
                    db = psycopg.connect(**dsn, password=setup.admin_password, connect_timeout=5)
                    break
                except psycopg.OperationalError:
                    assert server.poll() is None and time.monotonic() < deadline, server.stderr
                    time.sleep(0.2)
            with db:
                rules = db.execute("SELECT type, address, auth_method, error FROM pg_hba_file_rules").fetchall()
                assert all(error is None for *_, error in rules), rules
                assert {(t, a) for t, a, _, _ in rules} == {
                    ("local", None), ("host", "127.0.0.0"), ("host", "10.0.0.0"), ("host", "2001:db8::")}
                settings = dict(db.execute("SELECT name, sourcefile FROM pg_settings WHERE name IN "
                                           "('port', 'password_encryption')").fetchall())
                assert all(str(f).endswith("conf.d/50-hearth.conf") for f in settings.values()), settings
                assert db.execute("SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid "
                                  "WHERE rolname = 'postgres'").fetchone() == (True,)
            with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
                psycopg.connect(**dsn, password=setup.admin_password + "x", connect_timeout=5).close()
            # an access change: Hearth rewrites pg_hba.conf through the database and PostgreSQL reloads it
            manager = PostgresManager(Endpoint("127.0.0.1", setup.port, setup.admin_password))
            changed = StockImageSetup(major=16, port=setup.port, admin_password=setup.admin_password,
                                      allowed_cidrs=("192.0.2.0/24",), management_cidrs=("127.0.0.0/8",))
            manager.replace_hba(pg_hba(changed))
            with psycopg.connect(**dsn, password=setup.admin_password, connect_timeout=5) as db:
                rules = db.execute("SELECT type, address FROM pg_hba_file_rules").fetchall()
                assert set(rules) == {("local", None), ("host", "127.0.0.0"), ("host", "192.0.2.0")}
            with pytest.raises(Invalid, match="refuses the new pg_hba.conf"):
                manager.replace_hba("host all all 10.0.0.0/8 no-such-method\n")
            with psycopg.connect(**dsn, password=setup.admin_password, connect_timeout=5) as db:  # put back
                assert ("host", "192.0.2.0") in db.execute("SELECT type, address FROM pg_hba_file_rules").fetchall()
        finally:
            server.terminate()
            server.wait(timeout=30)
