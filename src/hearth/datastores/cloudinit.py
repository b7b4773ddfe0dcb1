"""Cloud-init user data that turns a stock cloud image (Debian 12, Ubuntu 24.04 generic images) into a Hearth
PostgreSQL server, with no guest agent: Hearth then manages it over the network as the superuser `postgres`.

What the `#cloud-config` document does, in cloud-init's own module order (Debian 12's and Ubuntu's
/etc/cloud/cloud.cfg; `runcmd` only writes a script in the config stage, `scripts-user` runs it in the final one):

- init stage: `write-files` (the non-deferred files: a postgresql-common `createcluster.d` drop-in that puts the
  cluster's data directory under `mount_point`, and a systemd drop-in so `postgresql@.service` waits for the
  mount on every boot), then `disk_setup` + `fs_setup` (ext4, label `hearth-data`, on the raw volume, no
  partition table; `partition: any` + `overwrite: false` skip formatting whenever the volume already carries a
  filesystem), then `mounts` (`volume_device` on `mount_point`). So the volume is mounted before PostgreSQL is
  installed and the cluster is created on it.
- final stage: `package-update-upgrade-install` installs `postgresql-<major>` from the distribution's archive
  (its postinst creates and starts the cluster `main`), then `write-files-deferred` writes, now that the
  `postgres` group exists, the conf.d snippet (`listen_addresses = '*'`, `port`, `password_encryption =
  scram-sha-256`) and pg_hba.conf (local peer for `postgres`, `host all all <cidr> scram-sha-256` for every
  allowed and management CIDR, nothing else), both root:postgres 0640, and the password file, root:root 0600
  on tmpfs (/run), then `scripts-user` runs `runcmd`: the cluster is restarted (new port, listen_addresses and
  pg_hba.conf), psql (as `postgres`, over the local socket, peer auth) reads the password file on its standard
  input, which the root shell opens, and the file is shredded.

`postgresql-<major>` and not the `postgresql` metapackage: the cluster's paths (/etc/postgresql/<major>/main)
depend on the major, so Hearth names it, and a mismatch fails the install loudly instead of running another
version. The distributions' own majors: Debian 12 has 15, Ubuntu 24.04 has 16, Ubuntu 22.04 has 14
(`DISTRIBUTION_MAJORS`); another major needs the PGDG archive, which this document does not configure.

Secrets: the plaintext password is nowhere in the document. The password file holds
`ALTER ROLE postgres PASSWORD '<SCRAM-SHA-256 verifier>'`, computed here, so neither the server, its logs nor the
guest ever see the plaintext, and no command line carries either. But the user data itself, verifier included,
is readable from inside the instance: from the metadata service (169.254.169.254, by any local process, root
or not, for the instance's whole life), from the config drive if one is attached, and in cloud-init's own
root-only copies (/var/lib/cloud/instance/user-data.txt, cloud-config.txt). A verifier does not log in by
itself, but it allows an offline guess of the password: Hearth's generated passwords are long and random, and
Hearth may rotate the password over the network after boot (then the verifier in the user data is stale).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

import yaml

from hearth.datastores.postgresql import scram_verifier

DISTRIBUTION_MAJORS = {"debian-12": 15, "ubuntu-22.04": 14, "ubuntu-24.04": 16}
FILESYSTEM_LABEL = "hearth-data"
PASSWORD_FILE = "/run/hearth/postgres-password.sql"
_PATH = re.compile(r"/[A-Za-z0-9_.\-/]*")


@dataclass(frozen=True, kw_only=True)
class StockImageSetup:
    """What the user data sets up (keyword arguments only). CIDRs are IPv4 or IPv6 networks (host bits are masked
    off); `allowed_cidrs` are the users' networks (may be empty), `management_cidrs` Hearth's own (not empty)."""

    major: int
    port: int = 5432
    admin_password: str = field(repr=False)
    allowed_cidrs: tuple[str, ...]
    management_cidrs: tuple[str, ...]
    volume_device: str = "/dev/vdb"
    mount_point: str = "/var/lib/postgresql"

    def __repr__(self) -> str:
        return (
            f"StockImageSetup(major={self.major!r}, port={self.port!r}, admin_password='***', "
            f"allowed_cidrs={self.allowed_cidrs!r}, management_cidrs={self.management_cidrs!r}, "
            f"volume_device={self.volume_device!r}, mount_point={self.mount_point!r})"
        )


def _networks(kind: str, cidrs: tuple[str, ...] | list[str]) -> list[str]:
    if isinstance(cidrs, str):
        raise ValueError(f"{kind} must be a sequence of CIDRs, not a string")
    out = []
    for cidr in cidrs:
        try:
            out.append(str(ipaddress.ip_network(str(cidr).strip(), strict=False)))
        except ValueError:
            raise ValueError(f"{kind}: {cidr!r} is not an IPv4 or IPv6 CIDR") from None
    return out


def _path(kind: str, value: str) -> str:
    if not _PATH.fullmatch(value) or "/../" in f"{value}/" or value.rstrip("/") == "":
        raise ValueError(f"{kind} must be an absolute path of [A-Za-z0-9_.-/], not {value!r}")
    return value.rstrip("/")


def _hba_networks(setup: StockImageSetup) -> list[str]:
    networks = _networks("management_cidrs", setup.management_cidrs)
    if not networks:
        raise ValueError("management_cidrs is empty: Hearth could not reach the server to manage it")
    for network in _networks("allowed_cidrs", setup.allowed_cidrs):
        if network not in networks:
            networks.append(network)
    return networks


def pg_hba(setup: StockImageSetup) -> str:
    """pg_hba.conf: the postgres superuser over the local socket by peer, every CIDR by SCRAM-SHA-256."""
    lines = [
        "# Written by Hearth (cloud-init user data). Hearth manages this server over the network.",
        "# TYPE  DATABASE  USER      ADDRESS  METHOD",
        "local   all       postgres           peer",
    ]
    lines += [f"host    all       all       {network}  scram-sha-256" for network in _hba_networks(setup)]
    return "\n".join(lines) + "\n"


def _conf(setup: StockImageSetup) -> str:
    return (
        "# Written by Hearth (cloud-init user data).\n"
        "listen_addresses = '*'\n"
        f"port = {setup.port}\n"
        "password_encryption = 'scram-sha-256'\n"
    )


def _password_sql(setup: StockImageSetup) -> str:
    # A verifier is [A-Za-z0-9+/=:$-] only: no quote to escape, whatever the password holds.
    verifier = scram_verifier(setup.admin_password)
    return f"SET password_encryption = 'scram-sha-256';\nALTER ROLE postgres WITH PASSWORD '{verifier}';\n"


def user_data(setup: StockImageSetup) -> str:
    """The `#cloud-config` document for `setup` (see the module's docstring for what it does, and in what order)."""
    if not isinstance(setup.major, int) or isinstance(setup.major, bool) or not 10 <= setup.major <= 99:
        raise ValueError(f"major must be a PostgreSQL major version (10 to 99), not {setup.major!r}")
    if not isinstance(setup.port, int) or isinstance(setup.port, bool) or not 1 <= setup.port <= 65535:
        raise ValueError(f"port must be 1 to 65535, not {setup.port!r}")
    if not isinstance(setup.admin_password, str) or not setup.admin_password or "\x00" in setup.admin_password:
        raise ValueError("admin_password must be a non-empty string without NUL")
    device = _path("volume_device", setup.volume_device)
    mount_point = _path("mount_point", setup.mount_point)
    hba = pg_hba(setup)
    major = setup.major
    etc = f"/etc/postgresql/{major}/main"
    document = {
        "disk_setup": {device: {"table_type": "gpt", "layout": False, "overwrite": False}},
        "fs_setup": [
            {"label": FILESYSTEM_LABEL, "filesystem": "ext4", "device": device, "partition": "any",
             "overwrite": False},
        ],
        "mounts": [[device, mount_point, "ext4", "defaults,nofail,x-systemd.requires=cloud-init.service", "0", "2"]],
        "package_update": True,
        "packages": [f"postgresql-{major}"],
        "write_files": [
            {
                "path": "/etc/postgresql-common/createcluster.d/50-hearth.conf",
                "owner": "root:root",
                "permissions": "0644",
                "content": f"data_directory = '{mount_point}/%v/%c'\n",
            },
            {
                "path": "/etc/systemd/system/postgresql@.service.d/50-hearth-volume.conf",
                "owner": "root:root",
                "permissions": "0644",
                "content": f"[Unit]\nRequiresMountsFor={mount_point}\n",
            },
            {
                "path": f"{etc}/conf.d/50-hearth.conf",
                "owner": "root:postgres",
                "permissions": "0640",
                "content": _conf(setup),
                "defer": True,
            },
            {
                "path": f"{etc}/pg_hba.conf",
                "owner": "root:postgres",
                "permissions": "0640",
                "content": hba,
                "defer": True,
            },
            {
                "path": PASSWORD_FILE,
                "owner": "root:root",
                "permissions": "0600",
                "content": _password_sql(setup),
                "defer": True,
            },
        ],
        "runcmd": [
            # The restart comes first, so that the server listens on `port` (where psql looks) and reads the new
            # pg_hba.conf. Until the password is set, `postgres` has none, and SCRAM refuses it over the network.
            "systemctl daemon-reload",
            "systemctl enable postgresql",
            f"systemctl restart postgresql@{major}-main",
            # psql runs as postgres; the root shell opens the root-only file for it (stdin), so `-f -`. runcmd's
            # script has no `set -e`: the file is shredded even when psql fails.
            f"runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p {setup.port} -d postgres -f - < {PASSWORD_FILE}",
            f"shred -u {PASSWORD_FILE}",
        ],
    }
    return "#cloud-config\n" + yaml.safe_dump(document, sort_keys=False, default_flow_style=False, width=1000)
