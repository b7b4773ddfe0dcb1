"""A cloud fault under upstream Heat: the Hearth instance ends in ERROR showing Heat's reason, and its delete
(a real stack delete) leaves nothing behind. Driven through Hearth's REST API and task manager."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import load_module
from hearth.config import Settings

_hearth = load_module("hearth_api_fixtures", Path(__file__).resolve().parents[1] / "hearth" / "conftest.py")
hearth_runtime = _hearth.hearth_runtime
hearth_api = _hearth.hearth_api


@pytest.fixture
def hearth_settings(tmp_path: Path, fakecloud) -> Settings:
    clouds_yaml = fakecloud.write_clouds_yaml(tmp_path / "clouds.yaml")
    return Settings(home=tmp_path, db_url=f"sqlite:///{tmp_path / 'hearth.sqlite'}", cloud="fakecloud",
                    clouds_yaml=clouds_yaml, engine="orchestrator", workers=2, heartbeat_seconds=0.5,
                    stale_after_seconds=30.0, token_cache_seconds=60.0, operation_timeout_seconds=300.0)


def test_server_error_under_upstream_heat_leaves_error_with_heats_reason_and_delete_cleans_up(hearth_api):
    api = hearth_api.client()
    # persistent: upstream Heat deletes and re-creates a server in ERROR 5 times (backing off 2+4+...+32 s)
    hearth_api.cloud.control.add_fault(service="compute", operation="server.create", action="error_status",
                                       message="No valid host was found. There are not enough hosts available.")
    inst = hearth_api.create(api)
    iid = inst["id"]

    assert inst["status"] == "ERROR"
    message = inst["fault"]["message"]
    assert "CREATE_FAILED" in message and "No valid host was found" in message, message
    server = hearth_api.cloud_resource("servers", iid)
    assert server["status"] == "ERROR"  # Heat left it there: rollback is off, so the reason stays readable
    ops = api.get(f"/instances/{iid}/operations").json()["operations"]
    assert ops[0]["state"] == "failed" and "No valid host" in ops[0]["error"]
    assert hearth_api.cloud.control.faults()[0]["fired"] == 6  # Heat's first boot and its 5 retries
    hearth_api.cloud.control.clear_faults()

    assert api.delete(f"/instances/{iid}").status_code == 202
    hearth_api.settle(180)
    assert api.get(f"/instances/{iid}").status_code == 404
    assert hearth_api.leftovers() == {}
