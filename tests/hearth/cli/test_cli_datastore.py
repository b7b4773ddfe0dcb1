"""The `hearth` CLI's datastore-facing options and commands: --nic, --public/--private, --database, --user,
--configuration on `instance create`; the addresses and connection string of `instance show`; restart.

Option syntax is checked before any request: those tests run the CLI in-process with a client that fails the
test if it is ever built. The rest run `hearth` as a subprocess against a real `hearth up`."""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer
from hearth_cli_support import HearthUp, settle
from typer.testing import CliRunner

from hearth import cli
from hearth.client import HearthClient

CREATE = ["instance", "create", "db1", "--flavor", "m1.small", "--size", "1"]


@pytest.fixture
def no_requests(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """No cloud to talk to: an empty HEARTH_HOME and a clouds.yaml that does not exist, so a CLI that tried to
    build an API client before rejecting its options would fail with a clouds.yaml error, not the option's."""
    monkeypatch.setenv("HEARTH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(tmp_path / "no-clouds.yaml"))
    monkeypatch.delenv("OS_CLOUD", raising=False)


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli.app, list(args), env={"COLUMNS": "250", "NO_COLOR": "1"})


# option syntax, before any request ----------------------------------------------------------
@pytest.mark.parametrize(("nic", "why"), [
    ("net-id", "not KEY=VALUE"),
    ("net-id=", "not KEY=VALUE"),
    ("port-id=abc", "unknown key 'port-id'"),
    ("net-id=a,net-id=b", "net-id is given twice"),
    ("net-id=a,v4-fixed-ip=10.0.0.300", "is not an IP address"),
    ("v4-fixed-ip=10.0.0.5", "needs net-id= or subnet-id="),
])
def test_create_rejects_a_bad_nic_before_any_request(no_requests: None, nic: str, why: str) -> None:
    result = invoke(*CREATE, "--nic", nic)
    assert result.exit_code == 2, result.output
    assert "--nic" in result.output
    assert why in " ".join(result.output.split()).replace("│", "").replace("  ", " ") or why in result.output


@pytest.mark.parametrize(("user", "why"), [
    ("bob", "no ':' between name and password"),
    (":hunter2pw", "the user's name is missing"),
    ("bob:", "has no password"),
    ("bob:@db1", "has no password"),
    ("bob:hunter2pw@db1,,db2", "empty database name"),
])
def test_create_rejects_a_bad_user_before_any_request_without_echoing_the_password(
        no_requests: None, user: str, why: str) -> None:
    result = invoke(*CREATE, "--user", user)
    assert result.exit_code == 2, result.output
    flat = re.sub(r"[\s│]+", " ", result.output)
    assert "--user" in flat
    assert why in flat
    assert "hunter2pw" not in result.output


def test_parse_nic_and_user_give_troves_wire_shapes() -> None:
    assert cli.parse_nic("net-id=n1") == {"net-id": "n1"}
    assert cli.parse_nic("net-id=n1, v4-fixed-ip=10.0.0.5") == {"net-id": "n1", "ip_address": "10.0.0.5"}
    assert cli.parse_nic("subnet-id=s1,ip-address=10.0.0.6") == {"subnet_id": "s1", "ip_address": "10.0.0.6"}
    assert cli.parse_user("bob:pw") == {"name": "bob", "password": "pw", "databases": []}
    assert cli.parse_user("bob:pw@db1,db2") == {"name": "bob", "password": "pw",
                                                 "databases": [{"name": "db1"}, {"name": "db2"}]}
    # the last '@' starts the database list: a password holding '@' ends with one
    assert cli.parse_user("bob:p@ss@") == {"name": "bob", "password": "p@ss", "databases": []}
    assert cli.parse_user("bob:p@ss@db1")["password"] == "p@ss"
    with pytest.raises(typer.BadParameter):
        cli.parse_nic("net-id=a,bogus")


def test_config_values_are_checked_before_any_request(no_requests: None) -> None:
    result = invoke("config", "create", "cfg1", "--value", "max_connections")
    assert result.exit_code == 2, result.output
    assert "KEY=VALUE" in result.output
    assert cli.parse_value("max_connections=100") == ("max_connections", 100)
    assert cli.parse_value("autovacuum=true") == ("autovacuum", True)
    assert cli.parse_value("timezone=UTC") == ("timezone", "UTC")
    assert cli.parse_value("search_path=a,b") == ("search_path", "a,b")


def test_connection_string_prefers_the_public_address_and_never_holds_a_password() -> None:
    instance = {"datastore": {"type": "postgresql", "version": "16"},
                "addresses": [{"address": "10.0.0.3", "type": "private", "network": "n"},
                              {"address": "172.24.4.9", "type": "public", "network": "public"}]}
    assert cli.connection_string(instance, "bob", "db1") == "postgresql://bob@172.24.4.9:5432/db1"
    private = {"datastore": {"type": "postgresql"}, "addresses": [{"address": "10.0.0.3", "type": "private"}]}
    assert cli.connection_string(private) == "postgresql://USER@10.0.0.3:5432/postgres"
    assert cli.connection_string({"datastore": {"type": "postgresql"}, "ip": ["fd00::5"]}, "u", "d") \
        == "postgresql://u@[fd00::5]:5432/d"
    assert cli.connection_string({"datastore": {"type": "postgresql"}}) is None


# against a running `hearth up` ------------------------------------------------------------------
@pytest.mark.cli
def test_create_and_show_through_the_cli(hearth_up: HearthUp, api: HearthClient) -> None:
    planned = hearth_up.hearth("instance", "create", "cli-db", "--flavor", "m1.small", "--size", "1",
                               "--datastore", "postgresql", "--private", "--dry-run")
    assert "dry run" in planned.stdout
    assert [i for i in api.list_instances() if i.get("name") == "cli-db"] == []

    created = hearth_up.hearth("instance", "create", "cli-db", "--flavor", "m1.small", "--size", "1",
                               "--datastore", "postgresql", "--wait")
    assert "cli-db" in created.stdout
    instance = only_named(api, "cli-db")
    assert instance["status"] == "ACTIVE"
    shown = hearth_up.hearth("instance", "show", "cli-db").stdout
    assert instance["id"] in shown
    assert "ACTIVE" in shown
    assert "password" not in shown.lower()
    hearth_up.hearth("instance", "delete", "cli-db", "--wait")


@pytest.mark.cli
def test_configuration_group_lifecycle(hearth_up: HearthUp, api: HearthClient) -> None:
    parameters = hearth_up.hearth("config", "parameters", "postgresql", "16").stdout
    assert "max_connections" in parameters

    created = hearth_up.hearth("config", "create", "cfg-cli", "--datastore", "postgresql", "--version", "16",
                               "--value", "max_connections=77", "--description", "from the CLI").stdout
    assert "cfg-cli" in created and "77" in created
    group = only([c for c in api.list_configurations() if c.get("name") == "cfg-cli"])
    assert api.get_configuration(group["id"])["values"] == {"max_connections": 77}
    assert group["id"] in hearth_up.hearth("config", "list").stdout
    assert "77" in hearth_up.hearth("config", "show", "cfg-cli").stdout

    hearth_up.hearth("config", "patch", "cfg-cli", "--value", "max_connections=88")
    assert api.get_configuration(group["id"])["values"] == {"max_connections": 88}
    hearth_up.hearth("config", "update", group["id"], "--value", "max_connections=99")
    assert api.get_configuration(group["id"])["values"] == {"max_connections": 99}
    assert "Name" in hearth_up.hearth("config", "instances", "cfg-cli").stdout

    hearth_up.hearth("config", "delete", "cfg-cli")
    assert [c for c in api.list_configurations() if c.get("name") == "cfg-cli"] == []
    missing = hearth_up.hearth("config", "show", "cfg-cli", ok=False)
    assert missing.returncode == 1
    assert "no configuration group 'cfg-cli'" in missing.stderr


@pytest.mark.cli
def test_api_refusals_are_one_line_errors(hearth_up: HearthUp) -> None:
    missing = hearth_up.hearth("database", "list", "no-such-instance", ok=False)
    assert missing.returncode == 1
    assert "no instance 'no-such-instance'" in missing.stderr
    rebuild = hearth_up.hearth("instance", "upgrade", "no-such-instance", "16", ok=False)
    assert rebuild.returncode == 1
    assert "Traceback" not in rebuild.stderr


def only(items: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(items) == 1, items
    return items[0]


def only_named(api: HearthClient, name: str) -> dict[str, Any]:
    named = [i for i in api.list_instances() if i.get("name") == name]
    assert len(named) == 1, named
    settle(api, named[0]["id"])
    return api.get_instance(named[0]["id"])


@pytest.mark.cli
def test_a_database_you_connect_to_through_the_cli(hearth_up: HearthUp, api: HearthClient) -> None:
    import ipaddress

    import psycopg

    hearth_up.hearth("instance", "create", "shop", "--flavor", "m1.small", "--size", "1", "--public",
                     "--database", "orders", "--user", "app:PassW0rd-app@orders", "--wait")
    instance = only_named(api, "shop")
    assert (instance["status"], instance["operating_status"]) == ("ACTIVE", "HEALTHY")
    shown = hearth_up.hearth("instance", "show", "shop").stdout
    found = re.search(r"postgresql://app@([0-9.]+):5432/orders", shown)
    assert found, shown
    address = found.group(1)
    assert ipaddress.ip_address(address) in ipaddress.ip_network("127.0.0.0/8")  # loopback only, then dial
    with psycopg.connect(host=address, port=5432, user="app", password="PassW0rd-app", dbname="orders",
                         connect_timeout=5, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (n int)")

    hearth_up.hearth("database", "create", "shop", "reports")
    assert "reports" in hearth_up.hearth("database", "list", "shop").stdout
    hearth_up.hearth("user", "grant", "shop", "app", "reports")
    with psycopg.connect(host=address, port=5432, user="app", password="PassW0rd-app", dbname="reports",
                         connect_timeout=5) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("reports",)
    enabled = hearth_up.hearth("root", "enable", "shop").stdout
    assert "root" in enabled
    hearth_up.hearth("instance", "restart", "shop", "--wait")
    assert only_named(api, "shop")["operating_status"] == "HEALTHY"
    hearth_up.hearth("instance", "delete", "shop", "--wait")
