"""A cloud outage in the middle of a batch: fakecloud stops for 30 s (every connection refused), comes back
with its state, and every operation Hearth had accepted completes; none is left in ERROR, nothing is made
twice, and nothing is left behind after the deletes.

The cloud here is the test's own (not the session's): it is stopped and started again on the same port,
with its state file, as a real cloud's API comes back after a restart.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from openstack_fakecloud.server import CloudServer
from openstack_fakecloud.testing import RunningCloud

OUTAGE_SECONDS = 30.0
BATCH = 6


class RestartableCloud(RunningCloud):
    """A fakecloud that can be stopped and started again on the same port with the state it saved."""

    def __init__(self, state_file: Path) -> None:
        self.state_file = state_file
        super().__init__(CloudServer(state_file=state_file).start())

    def stop(self) -> None:
        self.server.stop()  # graceful: the lifespan saves the state

    def restart(self) -> None:
        self.server = CloudServer(port=self.server.port, state_file=self.state_file).start()


@pytest.fixture
def fakecloud(tmp_path: Path) -> Iterator[RestartableCloud]:
    cloud = RestartableCloud(tmp_path / "fakecloud-state.json")
    try:
        yield cloud
    finally:
        cloud.server.stop()


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'hearth.sqlite'}"


@pytest.fixture(params=["natives", "orchestrator"])
def hearth_settings(hearth_settings, request):
    return hearth_settings.model_copy(update={"engine": request.param, "retry_max_seconds": 2.0})


def test_operations_in_flight_during_an_outage_complete_when_the_cloud_returns(hearth_api):
    cloud: RestartableCloud = hearth_api.cloud
    api = hearth_api.client()
    cloud.control.set_delays(server_boot=2.0, volume_create=1.0, volume_attach=0.5, stack_overhead=0.5)
    ids = []
    for index in range(BATCH):
        response = api.post("/instances", json={"instance": {"name": f"db{index}", "flavorRef": "1",
                                                            "volume": {"size": 1}}})
        assert response.status_code == 200, response.text
        ids.append(response.json()["instance"]["id"])
    time.sleep(0.5)  # the batch is under way: servers booting, volumes being made

    cloud.stop()
    down_since = time.monotonic()
    # Requests that need the cloud now are a 503 to retry; the record is still served.
    refused = api.post("/instances", json={"instance": {"name": "late", "flavorRef": "1", "volume": {"size": 1}}})
    assert refused.status_code == 503, refused.text
    assert int(refused.headers["Retry-After"]) > 0
    listed = api.get("/instances").json()["instances"]
    assert {i["id"] for i in listed} == set(ids)
    assert {i["status"] for i in listed} <= {"BUILD", "ACTIVE"}
    time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down_since)))
    assert not any(api.get(f"/instances/{iid}").json()["instance"]["status"] == "ERROR" for iid in ids)

    cloud.restart()
    hearth_api.settle(180)
    shown = [api.get(f"/instances/{iid}").json()["instance"] for iid in ids]
    assert [s["status"] for s in shown] == ["ACTIVE"] * BATCH, [(s["status"], s.get("fault")) for s in shown]
    inventory = cloud.control.inventory("demo")
    for iid in ids:  # exactly one server and one volume each, attached: nothing was made twice
        servers = [s for s in inventory["servers"] if s["name"].startswith(f"hearth-{iid}")]
        volumes = [v for v in inventory["volumes"] if v["name"] == f"hearth-{iid}-data"]
        assert len(servers) == 1 and servers[0]["status"] == "ACTIVE", servers
        assert len(volumes) == 1 and volumes[0]["status"] == "in-use", volumes
    events = [e["message"] for e in api.get(f"/instances/{ids[0]}/events").json()["events"]]
    assert any("could not be reached" in e or "answered 50" in e for e in events), events

    for iid in ids:
        assert api.delete(f"/instances/{iid}").status_code == 202
    hearth_api.settle(120)
    assert hearth_api.leftovers() == {}
