"""PostgreSQL, managed over the network with no guest agent: psycopg 3 (sync), as the superuser `postgres`.

Every method opens a short autocommit connection, does its work and closes it. Identifiers are quoted with
`psycopg.sql.Identifier` and values with `sql.Literal`; passwords are sent as SCRAM-SHA-256 verifiers computed
here (RFC 5802/7677), so a plaintext password never reaches the server, its logs or `pg_stat_activity`.

Errors are typed, from psycopg's exception classes and SQLSTATEs, never from message text:
`Unreachable` (transient: retry later), `AuthFailed` (the stored password no longer works), `Invalid` (the
request is wrong; `Conflict` and `NotFound` refine it), `DatastoreError` (anything else). No message carries a
password.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import re
import secrets
import stringprep
import time
import unicodedata
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

RESERVED_DATABASES = frozenset({"postgres", "template0", "template1"})
RESERVED_USERS = frozenset({"postgres", "root"})
ROOT_USER = "root"
MIN_PASSWORD_LENGTH = 8
_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,63}")
_CHARSET = re.compile(r"[A-Za-z0-9_\-]{1,32}")
_COLLATION = re.compile(r"[A-Za-z0-9_.@\-]{1,64}")
_SCRAM_ITERATIONS = 4096
_RELOAD_WAIT = 2.0  # seconds pg_reload_conf is given to reach this session
_TRANSIENT = frozenset({"57P01", "57P02", "57P03", "53300"})  # shutdown, crash, starting up, too many clients


class DatastoreError(Exception):
    """Something went wrong talking to the datastore."""


class Unreachable(DatastoreError):
    """Transient: the server cannot be reached, timed out, or is starting up or shutting down."""


class AuthFailed(DatastoreError):
    """The server refused the stored credentials: the admin password no longer works."""


class Invalid(DatastoreError):
    """The request is wrong; the message says what to fix."""


class Conflict(Invalid):
    """What the request creates exists already."""


class NotFound(Invalid):
    """The request names a database or user that does not exist."""


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    password: str
    user: str = "postgres"

    def __repr__(self) -> str:
        return f"Endpoint(host={self.host!r}, port={self.port!r}, password='***', user={self.user!r})"

    __str__ = __repr__


# -- name rules (used by the API layer for 400s before any connection) ------------------------------------


def _check_name(kind: str, name: Any, reserved: frozenset[str]) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise Invalid(f"invalid {kind} name {name!r}: use 1 to 63 letters, digits, '_', '-' or '.'")
    if name.lower().startswith("pg_"):
        raise Invalid(f"invalid {kind} name {name!r}: names starting with 'pg_' are reserved by PostgreSQL")
    if name in reserved:
        raise Invalid(f"{kind} name {name!r} is reserved")
    return name


def check_database_name(name: Any) -> str:
    return _check_name("database", name, RESERVED_DATABASES)


def check_user_name(name: Any) -> str:
    return _check_name("user", name, RESERVED_USERS)


def check_password(password: Any, user: str | None = None) -> str:
    if not isinstance(password, str):
        raise Invalid("the password must be a string")
    if "\0" in password:
        raise Invalid("the password must not contain a NUL character")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(f"the password is too short: use at least {MIN_PASSWORD_LENGTH} characters")
    if len(set(password)) == 1:
        raise Invalid("the password must not repeat a single character")
    if user is not None and password == user:
        raise Invalid("the password must not be the user name")
    return password


# -- SCRAM-SHA-256 verifiers (RFC 5802, RFC 7677; SASLprep as PostgreSQL's pg_saslprep) ----------------------


def _saslprep(password: str) -> bytes:
    """RFC 4013 as PostgreSQL applies it: when the result would be prohibited, the raw bytes are used
    (libpq does the same on login, so either way the client and the verifier agree)."""
    if password.isascii():
        return password.encode()
    mapped = "".join(" " if stringprep.in_table_c12(c) else c for c in password if not stringprep.in_table_b1(c))
    normal = unicodedata.normalize("NFKC", mapped)
    prohibited = (stringprep.in_table_c12, stringprep.in_table_c21_c22, stringprep.in_table_c3,
                  stringprep.in_table_c4, stringprep.in_table_c5, stringprep.in_table_c6, stringprep.in_table_c7,
                  stringprep.in_table_c8, stringprep.in_table_c9, stringprep.in_table_a1)
    if not normal or any(test(c) for c in normal for test in prohibited):
        return password.encode()
    rtl = [stringprep.in_table_d1(c) for c in normal]
    if any(rtl) and (not (rtl[0] and rtl[-1]) or any(stringprep.in_table_d2(c) for c in normal)):
        return password.encode()
    return normal.encode()


def scram_verifier(password: str, salt: bytes | None = None, iterations: int = _SCRAM_ITERATIONS) -> str:
    """The verifier PostgreSQL stores for `password`: SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", _saslprep(password), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = base64.b64encode
    return (f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}$"
            f"{b64(hashlib.sha256(client_key).digest()).decode()}:{b64(server_key).decode()}")


def _password(password: str) -> sql.Composable:
    return sql.Literal(scram_verifier(password))


# -- errors ------------------------------------------------------------------------------------------------


def _connect_error(error: psycopg.Error, endpoint: Endpoint, dbname: str) -> DatastoreError:
    """libpq reports no SQLSTATE for a failed connection; what it knows is whether the server took the password:
    a refusal after it did is an authentication failure (the databases we connect to exist)."""
    pgconn = getattr(error, "pgconn", None)
    where = f"{endpoint.host}:{endpoint.port}"
    if error.sqlstate in ("28P01", "28000") or (pgconn is not None and getattr(pgconn, "used_password", False)):
        return AuthFailed(f"PostgreSQL at {where} refused user {endpoint.user!r} (database {dbname!r}): "
                          "the stored password does not work")
    return Unreachable(f"cannot connect to PostgreSQL at {where}: the server is unreachable, "
                       "not accepting connections yet, or shutting down")


def _query_error(error: psycopg.Error) -> DatastoreError:
    state = error.sqlstate or ""
    detail = error.diag.message_primary or type(error).__name__
    if isinstance(error, psycopg.OperationalError) and (not state or state.startswith("08") or state in _TRANSIENT):
        return Unreachable(f"the PostgreSQL connection was lost: {detail}")
    if state in ("28P01", "28000"):
        return AuthFailed(detail)
    if state in ("42710", "42P04"):  # duplicate_object, duplicate_database
        return Conflict(detail)
    if state in ("3D000", "42704"):  # invalid_catalog_name, undefined_object
        return NotFound(detail)
    if state[:2] in ("22", "42", "2B", "55", "0L", "0P") or isinstance(error, psycopg.ProgrammingError):
        return Invalid(detail)
    return DatastoreError(f"PostgreSQL error {state or type(error).__name__}: {detail}")


# -- the manager -------------------------------------------------------------------------------------------


def _names(items: Iterable[Any], key: str = "name") -> list[str]:
    out = []
    for item in items:
        if not isinstance(item, dict) or key not in item:
            raise Invalid(f"each item must be an object with a {key!r}")
        out.append(item[key])
    return out


def _duplicates(kind: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise Invalid(f"{kind} {name!r} is named twice in the request")
        seen.add(name)


def _setting_value(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


class PostgresManager:
    """The operations Hearth performs on one PostgreSQL instance."""

    def __init__(self, endpoint: Endpoint, connect_timeout: float = 5.0) -> None:
        self.endpoint = endpoint
        self.connect_timeout = connect_timeout

    def __repr__(self) -> str:
        return f"PostgresManager({self.endpoint!r})"

    def _open(self, dbname: str) -> psycopg.Connection[Any]:
        ep = self.endpoint
        try:
            return psycopg.connect(host=ep.host, port=ep.port, user=ep.user, password=ep.password, dbname=dbname,
                                   connect_timeout=max(2, round(self.connect_timeout)), application_name="hearth",
                                   autocommit=True)
        except psycopg.Error as error:
            raise _connect_error(error, ep, dbname) from None

    @contextmanager
    def _session(self, dbname: str = "postgres", *, exists: bool = True) -> Iterator[psycopg.Connection[Any]]:
        """A session in `dbname`. With exists=False the database may have been dropped since the caller saw it:
        a refusal is then told apart from a password that stopped working by asking `postgres`."""
        try:
            conn = self._open(dbname)
        except AuthFailed:
            if exists or self._database_exists(dbname):
                raise
            raise NotFound(f"database {dbname!r} does not exist") from None
        try:
            yield conn
        except psycopg.Error as error:
            raise _query_error(error) from None
        finally:
            conn.close()

    def _session_in(self, dbname: str) -> contextlib.AbstractContextManager[psycopg.Connection[Any]]:
        return self._session(dbname, exists=dbname == "postgres")

    def _database_exists(self, name: str) -> bool:
        with self._session() as db:
            return db.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None

    # -- health

    def health(self) -> int:
        """The database answers (or this raises); returns the bytes its databases use (Trove's volume.used):
        one query, so a health check costs one connection and one round trip."""
        with self._session() as db:
            row = db.execute("SELECT coalesce(sum(pg_database_size(oid)), 0) FROM pg_database").fetchone()
        return int(row[0]) if row is not None else 0

    def server_version(self) -> str:
        with self._session() as db:
            row = db.execute("SHOW server_version").fetchone()
        assert row is not None
        return str(row[0]).split()[0]

    # -- databases

    def list_databases(self) -> list[dict[str, str]]:
        with self._session() as db:
            rows = db.execute(
                "SELECT datname, pg_encoding_to_char(encoding), datcollate FROM pg_database "
                "WHERE NOT datistemplate AND datname <> ALL(%s) ORDER BY datname",
                (sorted(RESERVED_DATABASES),)).fetchall()
        return [{"name": name, "character_set": charset, "collate": collate} for name, charset, collate in rows]

    def create_databases(self, items: list[dict[str, Any]]) -> None:
        names = [check_database_name(name) for name in _names(items)]
        _duplicates("database", names)
        for item in items:
            charset, collate = item.get("character_set"), item.get("collate")
            if charset is not None and (not isinstance(charset, str) or not _CHARSET.fullmatch(charset)):
                raise Invalid(f"invalid character_set {charset!r} for database {item['name']!r}")
            if collate is not None and (not isinstance(collate, str) or not _COLLATION.fullmatch(collate)):
                raise Invalid(f"invalid collate {collate!r} for database {item['name']!r}")
        with self._session() as db:
            existing = {row[0] for row in db.execute(
                "SELECT datname FROM pg_database WHERE datname = ANY(%s)", (names,))}
            if existing:
                raise Conflict(f"database {sorted(existing)[0]!r} exists already")
            for item in items:
                options = []
                if item.get("character_set") or item.get("collate"):
                    options.append(sql.SQL("TEMPLATE template0"))
                if item.get("character_set"):
                    options.append(sql.SQL("ENCODING {}").format(sql.Literal(item["character_set"])))
                if item.get("collate"):
                    options.append(sql.SQL("LC_COLLATE {0} LC_CTYPE {0}").format(sql.Literal(item["collate"])))
                name = sql.Identifier(item["name"])
                db.execute(sql.SQL("CREATE DATABASE {} {}").format(name, sql.SQL(" ").join(options)))
                db.execute(sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC").format(name))

    def delete_database(self, name: str) -> None:
        check_database_name(name)
        with self._session() as db:
            db.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))

    # -- users

    def _login_roles(self, db: psycopg.Connection[Any], name: str | None = None) -> list[dict[str, Any]]:
        rows = db.execute(
            "SELECT r.rolname, coalesce(array_agg(d.datname ORDER BY d.datname) FILTER (WHERE d.datname IS NOT NULL),"
            " '{}') FROM pg_roles r LEFT JOIN pg_database d ON NOT d.datistemplate AND d.datname <> ALL(%(reserved)s)"
            " AND EXISTS (SELECT 1 FROM aclexplode(d.datacl) a WHERE a.grantee = r.oid"
            " AND a.privilege_type = 'CONNECT')"
            " WHERE r.rolcanlogin AND r.rolname <> ALL(%(users)s) AND r.rolname NOT LIKE 'pg\\_%%'"
            " AND (%(name)s::text IS NULL OR r.rolname = %(name)s) GROUP BY r.rolname ORDER BY r.rolname",
            {"reserved": sorted(RESERVED_DATABASES), "users": sorted(RESERVED_USERS), "name": name}).fetchall()
        return [{"name": role, "host": "%", "databases": [{"name": d} for d in dbs]} for role, dbs in rows]

    def list_users(self) -> list[dict[str, Any]]:
        with self._session() as db:
            return self._login_roles(db)

    def get_user(self, name: str) -> dict[str, Any]:
        check_user_name(name)
        with self._session() as db:
            found = self._login_roles(db, name)
        if not found:
            raise NotFound(f"user {name!r} does not exist")
        return found[0]

    def user_databases(self, name: str) -> list[dict[str, str]]:
        return self.get_user(name)["databases"]

    def create_users(self, items: list[dict[str, Any]]) -> None:
        names = [check_user_name(name) for name in _names(items)]
        _duplicates("user", names)
        wanted: set[str] = set()
        for item in items:
            check_password(item.get("password"), item["name"])
            if item.get("host", "%") not in ("%", None):
                raise Invalid(f"user {item['name']!r}: PostgreSQL users are not host-specific, host must be '%'")
            wanted.update(check_database_name(d) for d in _names(item.get("databases") or []))
        with self._session() as db:
            existing = {row[0] for row in db.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", (names,))}
            if existing:
                raise Conflict(f"user {sorted(existing)[0]!r} exists already")
            self._require_databases(db, wanted)
            for item in items:
                db.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(item["name"]), _password(item["password"])))
        for item in items:
            databases = _names(item.get("databases") or [])
            if databases:
                self.grant(item["name"], databases)

    def _require_databases(self, db: psycopg.Connection[Any], names: Iterable[str]) -> None:
        names = sorted(set(names))
        found = {row[0] for row in db.execute(
            "SELECT datname FROM pg_database WHERE datname = ANY(%s) AND NOT datistemplate", (names,))}
        missing = [name for name in names if name not in found]
        if missing:
            raise NotFound(f"database {missing[0]!r} does not exist")

    def _require_user(self, db: psycopg.Connection[Any], name: str) -> None:
        if db.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone() is None:
            raise NotFound(f"user {name!r} does not exist")

    def update_user(self, name: str, new_name: str | None = None, password: str | None = None) -> None:
        """Rename and/or change the password (a rename keeps SCRAM verifiers, so the password still works)."""
        check_user_name(name)
        if new_name is not None and new_name != name:
            check_user_name(new_name)
        if password is not None:
            check_password(password, new_name or name)
        with self._session() as db:
            self._require_user(db, name)
            if password is not None:
                db.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(name), _password(password)))
            if new_name is not None and new_name != name:
                db.execute(sql.SQL("ALTER ROLE {} RENAME TO {}").format(sql.Identifier(name),
                                                                       sql.Identifier(new_name)))

    def _connectable_databases(self, db: psycopg.Connection[Any]) -> list[str]:
        return [row[0] for row in db.execute(
            "SELECT datname FROM pg_database WHERE datallowconn ORDER BY datname").fetchall()]

    def delete_user(self, name: str) -> None:
        """Objects the user owns go to `postgres`, its privileges everywhere are dropped, then the role."""
        check_user_name(name)
        with self._session() as db:
            self._require_user(db, name)
            databases = self._connectable_databases(db)
        role = sql.Identifier(name)
        for dbname in databases:
            try:
                with self._session_in(dbname) as there:
                    there.execute(sql.SQL("REASSIGN OWNED BY {} TO postgres").format(role))
                    there.execute(sql.SQL("DROP OWNED BY {}").format(role))
            except NotFound:
                continue  # dropped meanwhile: nothing of the user's is left in it
        with self._session() as db:
            db.execute(sql.SQL("DROP ROLE {}").format(role))

    def grant(self, name: str, databases: list[str]) -> None:
        """Full use of each database, including creating tables in its `public` schema (PostgreSQL 15+ no
        longer lets every user do that)."""
        check_user_name(name)
        for dbname in databases:
            check_database_name(dbname)
        with self._session() as db:
            self._require_user(db, name)
            self._require_databases(db, databases)
            for dbname in databases:
                db.execute(sql.SQL("GRANT ALL ON DATABASE {} TO {}").format(sql.Identifier(dbname),
                                                                           sql.Identifier(name)))
        for dbname in databases:
            with self._session_in(dbname) as there:
                there.execute(sql.SQL("GRANT ALL ON SCHEMA public TO {}").format(sql.Identifier(name)))

    def revoke(self, name: str, database: str) -> None:
        """Take the database and its `public` schema back: the user can no longer connect to it."""
        check_user_name(name)
        check_database_name(database)
        with self._session() as db:
            self._require_user(db, name)
            self._require_databases(db, [database])
            db.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(sql.Identifier(database),
                                                                          sql.Identifier(name)))
        with self._session_in(database) as there:
            there.execute(sql.SQL("REVOKE ALL ON SCHEMA public FROM {}").format(sql.Identifier(name)))

    # -- root

    def root_enable(self, password: str | None = None) -> str:
        """Make `root` a superuser that can log in, with `password` or a generated one; returns the password."""
        password = password if password is not None else secrets.token_urlsafe(24)
        check_password(password, ROOT_USER)
        verifier = _password(password)
        with self._session() as db:
            exists = db.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ROOT_USER,)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            db.execute(sql.SQL(verb + " ROLE {} SUPERUSER LOGIN PASSWORD {}").format(sql.Identifier(ROOT_USER),
                                                                                     verifier))
        return password

    def root_disable(self) -> None:
        with self._session() as db:
            if db.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ROOT_USER,)).fetchone():
                db.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(ROOT_USER)))

    def root_enabled(self) -> bool:
        with self._session() as db:
            row = db.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (ROOT_USER,)).fetchone()
        return bool(row and row[0])

    # -- configuration

    def apply_parameters(self, values: dict[str, Any], reset: Iterable[str] = ()) -> bool:
        """ALTER SYSTEM SET/RESET, reload, and return whether PostgreSQL says a restart is needed for any of them."""
        reset = list(reset)
        names = [*values, *reset]
        if not names:
            return False
        with self._session() as db:
            known = {row[0] for row in db.execute("SELECT name FROM pg_settings WHERE name = ANY(%s)",
                                                  ([n.lower() for n in names],))}
            unknown = [n for n in names if n.lower() not in known]
            if unknown:
                raise Invalid(f"unknown configuration parameter {unknown[0]!r}")
            for name, value in values.items():
                db.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name.lower()),
                                                                      sql.Literal(_setting_value(value))))
            for name in reset:
                db.execute(sql.SQL("ALTER SYSTEM RESET {}").format(sql.Identifier(name.lower())))
            loaded = db.execute("SELECT pg_conf_load_time()").fetchone()
            db.execute("SELECT pg_reload_conf()")
            # The postmaster re-reads the files, then signals every backend, this one included: once this
            # session's load time moves, its pg_settings (pending_restart) reflect the new files.
            deadline = time.monotonic() + _RELOAD_WAIT
            while time.monotonic() < deadline:
                if db.execute("SELECT pg_conf_load_time()").fetchone() != loaded:
                    break
                time.sleep(0.02)
            row = db.execute("SELECT coalesce(bool_or(pending_restart), false) FROM pg_settings WHERE name = ANY(%s)",
                             ([n.lower() for n in names],)).fetchone()
        return bool(row and row[0])

    def replace_hba(self, text: str) -> None:
        """Rewrite the server's pg_hba.conf with `text` and reload (stock images, whose pg_hba follows the
        instance's access). PostgreSQL checks the new file first (pg_hba_file_rules): a file it would refuse
        is put back as it was, and Invalid says which line. Lines are written by COPY, one row each: `text`
        must hold no backslash or tab (pg_hba lines of CIDRs and keywords have none)."""
        lines = text.rstrip("\n").split("\n")
        if any(ch in text for ch in "\\\t\x00"):
            raise Invalid("pg_hba.conf lines must not contain backslashes, tabs or NUL")
        with self._session() as db:
            row = db.execute("SHOW hba_file").fetchone()
            assert row is not None
            path = str(row[0])
            before = db.execute("SELECT pg_read_file(%s)", (path,)).fetchone()
            self._write_lines(db, path, lines)
            errors = db.execute("SELECT line_number, error FROM pg_hba_file_rules WHERE error IS NOT NULL").fetchall()
            if errors:
                if before is not None:
                    self._write_lines(db, path, str(before[0]).rstrip("\n").split("\n"))
                raise Invalid("PostgreSQL refuses the new pg_hba.conf: "
                              + "; ".join(f"line {n}: {e}" for n, e in errors))
            db.execute("SELECT pg_reload_conf()")

    @staticmethod
    def _write_lines(db: psycopg.Connection[Any], path: str, lines: list[str]) -> None:
        db.execute(sql.SQL("COPY (SELECT unnest({}::text[])) TO {}").format(sql.Literal(lines), sql.Literal(path)))

    def current_settings(self, names: Iterable[str]) -> dict[str, str]:
        wanted = [n.lower() for n in names]
        with self._session() as db:
            rows = db.execute("SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(%s)",
                              (wanted,)).fetchall()
        return dict(rows)
