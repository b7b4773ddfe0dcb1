"""`hearth instance ... --dry-run`, `adopt`, `release` and the engine in `show`, as subprocesses against
`hearth up`, restarted with another engine setting (HEARTH_ENGINE) on the same home."""

from __future__ import annotations

import uuid

import yaml
from hearth_cli_support import HearthUp, only

from hearth.client import HearthClient
from hearth.up import SERVICE_PROJECT

OPERATOR = "fakecloud-operator"


def _add_operator(up: HearthUp) -> None:
    """A user with the admin role on the demo project (adopt/release are admin-only), as a clouds.yaml cloud."""
    password = uuid.uuid4().hex
    name = f"operator-{password[:6]}"
    up.control.add_user(name, password, "demo", roles=["admin", "member"])
    clouds = yaml.safe_load(up.clouds_yaml.read_text())
    entry = yaml.safe_load(yaml.safe_dump(clouds["clouds"]["fakecloud"]))
    entry["auth"].update(username=name, password=password)
    clouds["clouds"][OPERATOR] = entry
    up.clouds_yaml.write_text(yaml.safe_dump(clouds))


def _stack_names(up: HearthUp) -> list[str]:
    return [s.get("stack_name") for s in up.control.inventory(SERVICE_PROJECT).get("stacks", [])]


def test_dry_run_adopt_release_from_the_cli(hearth_up: HearthUp, api: HearthClient) -> None:
    hearth_up.hearth("instance", "create", "legacy", "--flavor", "m1.tiny", "--size", "1", "--wait")
    instance = only([i for i in api.list_instances() if i["name"] == "legacy"], "instance named legacy")
    iid = instance["id"]
    assert "natives" in hearth_up.hearth("instance", "show", iid).stdout
    seq = hearth_up.control.requests(log=False)["seq"]

    planned = hearth_up.hearth("instance", "resize-flavor", iid, "m1.small", "--dry-run").stdout
    assert "dry run" in planned and "resize_flavor" in planned and "POST /servers/{id}/action resize" in planned
    planned = hearth_up.hearth("instance", "create", "never", "--flavor", "m1.tiny", "--size", "1", "--dry-run").stdout
    assert "POST /servers" in planned
    assert "never" not in [i["name"] for i in api.list_instances()]
    writes = [r for r in hearth_up.control.requests(since=seq)["requests"]
              if r["method"] != "GET" and r["service"] not in ("identity", "database")]
    assert writes == []

    # adopt needs engine = migration
    _add_operator(hearth_up)
    refused = hearth_up.hearth("instance", "adopt", iid, "--cloud", OPERATOR, ok=False)
    assert refused.returncode == 1 and "engine = migration" in refused.stderr

    hearth_up.stop()
    hearth_up.env["HEARTH_ENGINE"] = "migration"
    try:
        hearth_up.start()
        _add_operator(hearth_up)
        denied = hearth_up.hearth("instance", "adopt", iid, ok=False)  # the demo user is no admin
        assert denied.returncode == 1 and "admin" in denied.stderr

        plan = hearth_up.hearth("instance", "adopt", iid, "--cloud", OPERATOR, "--dry-run").stdout
        assert "stack adopt" in plan
        hearth_up.hearth("instance", "adopt", iid, "--cloud", OPERATOR, "--wait")
        shown = hearth_up.hearth("instance", "show", iid).stdout
        assert "orchestrator" in shown and "ADOPT_COMPLETE" in shown
        assert f"hearth-{iid}" in _stack_names(hearth_up)

        hearth_up.hearth("instance", "release", iid, "--cloud", OPERATOR, "--wait")
        shown = hearth_up.hearth("instance", "show", iid).stdout
        assert "natives" in shown and "ADOPT_COMPLETE" not in shown
        assert f"hearth-{iid}" not in _stack_names(hearth_up)

        hearth_up.hearth("instance", "delete", iid, "--wait")
    finally:
        hearth_up.stop()
        hearth_up.env.pop("HEARTH_ENGINE", None)
        hearth_up.start()
