"""`hearth admin ...`: the cloud administrator's view through the CLI, as a subprocess against `hearth up`, with
the `fakecloud-admin` clouds.yaml entry `hearth up` writes; a project's own user is refused."""

from __future__ import annotations

import pytest
from hearth_cli_support import HearthUp, connect

from hearth.client import HearthClient
from hearth.up import SERVICE_CLOUD_NAME

pytestmark = pytest.mark.cli


def test_the_administrator_sees_every_project(hearth_up: HearthUp, api: HearthClient) -> None:
    hearth_up.hearth("instance", "create", "fleet-db", "--flavor", "m1.small", "--size", "1", "--wait")
    instance = next(i for i in api.list_instances() if i["name"] == "fleet-db")

    listed = hearth_up.hearth("admin", "list").stdout
    assert instance["id"] in listed and "fleet-db" in listed
    assert instance["id"] in hearth_up.hearth("admin", "list", "--engine", "natives", "--status", "ACTIVE").stdout
    assert instance["id"] not in hearth_up.hearth("admin", "list", "--engine", "orchestrator").stdout
    summary = hearth_up.hearth("admin", "summary").stdout
    assert "engine natives" in summary and "drifted" in summary
    shown = hearth_up.hearth("admin", "show", instance["id"])
    assert "fleet-db" in shown.stdout and "project" in shown.stderr

    assert "no drift" in hearth_up.hearth("admin", "drift", instance["id"]).stdout
    # this hearth up runs engine = natives: moving the fleet onto Heat needs engine = migration, and says so
    refused_move = hearth_up.hearth("admin", "migrate", "--to", "orchestrator", "--dry-run", ok=False)
    assert refused_move.returncode == 1 and "engine = migration" in refused_move.stderr
    refused = hearth_up.hearth("admin", "list", "--cloud", "fakecloud", ok=False)
    assert refused.returncode == 1 and "admin role" in refused.stderr

    # a rule opened behind Hearth's back: drift shows it, reconcile plans and then removes it
    conn = connect(hearth_up.clouds_yaml, SERVICE_CLOUD_NAME)  # Hearth's own project, where its resources are
    group = next(g for g in conn.network.security_groups() if g.name == f"hearth-{instance['id']}")
    conn.network.create_security_group_rule(security_group_id=group.id, direction="ingress", protocol="tcp",
                                            port_range_min=5432, port_range_max=5432,
                                            remote_ip_prefix="203.0.113.0/24")
    drifted = hearth_up.hearth("admin", "drift", instance["id"], ok=False)
    assert drifted.returncode == 1 and "203.0.113.0/24" in drifted.stdout
    planned = hearth_up.hearth("admin", "reconcile", instance["id"], "--dry-run").stdout
    assert "repair" in planned and "203.0.113.0/24" in planned
    hearth_up.hearth("admin", "reconcile", instance["id"], "--wait")
    assert "no drift" in hearth_up.hearth("admin", "drift", instance["id"]).stdout
    assert not [r for r in conn.network.security_group_rules(security_group_id=group.id)
                if r.remote_ip_prefix == "203.0.113.0/24"]
    assert "ACTIVE" in hearth_up.hearth("admin", "reset-status", instance["id"]).stdout  # not in ERROR: unchanged
    hearth_up.hearth("instance", "delete", "fleet-db", "--wait")


def test_orphans_through_the_cli(hearth_up: HearthUp) -> None:
    import uuid

    conn = connect(hearth_up.clouds_yaml, SERVICE_CLOUD_NAME)  # Hearth's own project, where orphans are
    lost = str(uuid.uuid4())
    group = conn.network.create_security_group(name=f"hearth-{lost}")
    listed = hearth_up.hearth("admin", "orphans").stdout
    assert group.id in listed and "does not exist" in listed
    assert conn.network.get_security_group(group.id).id == group.id  # listing deletes nothing
    removed = hearth_up.hearth("admin", "orphans", "--delete")
    assert "deleted 1" in removed.stderr
    assert list(conn.network.security_groups(name=f"hearth-{lost}")) == []
