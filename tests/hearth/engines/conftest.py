"""Fixtures for the engine tests: Settings on a fresh HEARTH_HOME, cloud connections to fakecloud, an
engine by name, and instance specs that name real flavors and images."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openstack
import pytest

from hearth.cloud import CloudConnections
from hearth.config import Settings
from hearth.engines import build_engine
from hearth.engines.base import InstanceSpec, ResourceEngine, RuleSpec

# Every engine must pass the contract suite: the orchestrator and migration engines add their names here.
ENGINE_NAMES = ["natives", "orchestrator", "migration"]

FLAVOR = "2"  # m1.small
BIGGER_FLAVOR = "3"  # m1.medium
IMAGE = "postgresql-16"


@pytest.fixture
def settings(tmp_path: Path, fakecloud: Any) -> Settings:
    clouds_yaml = fakecloud.write_clouds_yaml(tmp_path / "clouds.yaml")
    return Settings(
        home=tmp_path / "home",
        cloud="fakecloud",
        clouds_yaml=clouds_yaml,
        workers=2,
        poll_initial_seconds=0.005,
        poll_factor=1.5,
        poll_max_seconds=0.05,
        operation_timeout_seconds=30.0,
    )


@pytest.fixture
def connections(settings: Settings) -> Iterator[CloudConnections]:
    conns = CloudConnections(settings.cloud, settings.clouds_yaml)
    yield conns
    conns.close()


def make_engine(name: str, settings: Settings, connections: CloudConnections) -> ResourceEngine:
    return build_engine(name, settings, connections)


@pytest.fixture(params=ENGINE_NAMES)
def engine_name(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def engine(engine_name: str, settings: Settings, connections: CloudConnections) -> Iterator[ResourceEngine]:
    built = make_engine(engine_name, settings, connections)
    yield built
    close = getattr(built, "close", None)
    if close is not None:
        close()


@pytest.fixture
def natives(settings: Settings, connections: CloudConnections) -> Iterator[ResourceEngine]:
    built = make_engine("natives", settings, connections)
    yield built
    built.close()  # type: ignore[attr-defined]


@pytest.fixture
def image_id(os_conn: openstack.connection.Connection) -> str:
    # images(name=), not find_image: openstacksdk's Image.find always searches with ignore_missing=True first
    # (openstack/image/v2/image.py), so find_image warns (RemovedInSDK60Warning) whatever its caller passes.
    return next(os_conn.image.images(name=IMAGE)).id


@pytest.fixture
def make_spec(os_conn: openstack.connection.Connection, image_id: str) -> Callable[..., InstanceSpec]:
    """A spec for a new instance (fresh id) in the demo project; keyword arguments override fields."""

    def make(**changes: Any) -> InstanceSpec:
        spec = InstanceSpec(
            instance_id=str(uuid.uuid4()),
            name="orders-db",
            project_id=os_conn.current_project_id,
            flavor_id=FLAVOR,
            image_id=image_id,
            volume_size=2,
            rules=(RuleSpec("rule-pg", "tcp", 5432, 5432, "10.0.0.0/24"),),
        )
        return spec.replace(**changes) if changes else spec

    return make


@pytest.fixture
def frozen_clock(fakecloud: Any) -> Iterator[Any]:
    """fakecloud's clock stopped for the test (and always restarted after it)."""
    fakecloud.control.freeze()
    try:
        yield fakecloud.control
    finally:
        fakecloud.control.freeze(False)


class CloudState:
    """Reads what fakecloud really holds (through openstacksdk and the admin inventory), for assertions."""

    def __init__(self, fakecloud: Any, conn: openstack.connection.Connection) -> None:
        self.fakecloud = fakecloud
        self.conn = conn

    def ingress_rules(self, group_id: str) -> set[tuple[Any, ...]]:
        """(protocol, port min, port max, cidr) of every ingress rule of the group."""
        return {(r.protocol, r.port_range_min, r.port_range_max, r.remote_ip_prefix)
                for r in self.conn.network.security_group_rules(security_group_id=group_id)
                if r.direction == "ingress"}

    def hearth_leftovers(self) -> dict[str, list[str]]:
        """Everything named hearth-* (and every port of a vanished server) left in the demo project."""
        inventory = self.fakecloud.control.inventory("demo")
        server_ids = {s["id"] for s in inventory["servers"]}
        found = {
            kind: [item.get("name") or item["id"] for item in inventory[kind]
                   if str(item.get("name") or "").startswith("hearth-")]
            for kind in ("servers", "volumes", "security_groups")
        }
        found["ports"] = [p["id"] for p in inventory["ports"]
                          if p.get("device_owner", "").startswith("compute:") and p.get("device_id") not in server_ids]
        found["rules"] = [r["id"] for g in inventory["security_groups"] for r in g.get("security_group_rules", [])
                          if str(r.get("description") or "").startswith("hearth:")]
        found["stacks"] = [s.get("stack_name") or s["id"] for s in inventory.get("stacks", [])
                           if str(s.get("stack_name") or "").startswith("hearth-")]
        return {kind: items for kind, items in found.items() if items}

    def writes_since(self, seq: int) -> list[str]:
        """Write requests (other than Keystone logins, and Heat's read-only preview and validate calls, which
        use POST/PUT but change nothing) the cloud received after request `seq`."""
        log = self.fakecloud.control.requests(since=seq)["requests"]
        return [f"{r['method']} {r['path']}" for r in log
                if r["method"] in ("POST", "PUT", "PATCH", "DELETE") and r["service"] != "identity"
                and not (r["service"] == "orchestration" and r["path"].rstrip("/").endswith(("/preview", "/validate")))]

    def request_seq(self) -> int:
        return self.fakecloud.control.requests(log=False)["seq"]


@pytest.fixture
def cloud_state(fakecloud: Any, os_conn: openstack.connection.Connection) -> CloudState:
    return CloudState(fakecloud, os_conn)
