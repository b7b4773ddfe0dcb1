"""Hostile and absurd input through the real API, on SQLite and PostgreSQL: each is a 4xx whose message says
what to fix, and changes nothing, neither in Hearth's tables nor in the cloud (fakecloud's inventory)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from hearth import service
from hearth.db.models import Event, Instance, Operation, SecurityGroupRule
from hearth.engines import common, templates
from hearth.engines.base import InstanceSpec, RuleSpec


def _rows(hearth_api: Any) -> dict[str, int]:
    with hearth_api.runtime.sessions() as session:
        return {model.__name__: session.scalar(select(func.count()).select_from(model))
                for model in (Instance, Operation, SecurityGroupRule, Event)}


class Unchanged:
    """Snapshot of Hearth's rows and the demo project's cloud resources; `check()` asserts both still equal."""

    def __init__(self, hearth_api: Any) -> None:
        self.hearth_api = hearth_api
        self.rows, self.cloud = _rows(hearth_api), hearth_api.cloud_ids()

    def check(self) -> None:
        assert _rows(self.hearth_api) == self.rows
        assert self.hearth_api.cloud_ids() == self.cloud


@pytest.fixture
def ready(hearth_api: Any) -> tuple[Any, dict[str, Any]]:
    api = hearth_api.client()
    inst = hearth_api.create(api)
    assert inst["status"] == "ACTIVE"
    return api, inst


@pytest.fixture
def admin(hearth_api: Any) -> Iterator[Any]:
    conn = hearth_api.cloud.connect("admin")
    yield conn
    conn.close()


def _create(api: Any, dry_run: bool = False, **fields: Any) -> Any:
    body = {"name": "db1", "flavorRef": "1", "volume": {"size": 1}, **fields}
    return api.post("/instances" + ("?dry_run=true" if dry_run else ""), json={"instance": body})


# --------------------------------------------------------------------------------------------------
# Control characters (PostgreSQL refuses a NUL in text: these were 500s) and lone surrogates.


def test_control_characters_in_names_and_bodies_are_400(hearth_api, ready, fault_of):
    api, inst = ready
    iid = inst["id"]
    unchanged = Unchanged(hearth_api)
    for name in ("db\x00one", "line\nbreak", "bell\x07", "c1\x85"):
        fault_of(_create(api, name=name), 400, "badRequest", "name: must not contain control characters")
        fault_of(api.put(f"/instances/{iid}", json={"instance": {"name": name}}), 400, "badRequest",
                 "name: must not contain control characters")
    message = fault_of(_create(api, name="nul\x00"), 400, "badRequest")
    assert "\\x00 at position 3" in message and "\x00" not in message
    # a lone surrogate is valid JSON but no database (or JSON encoder) can store it, even quoted in a message
    raw = '{"instance": {"name": "half\\ud800", "flavorRef": "1", "volume": {"size": 1}}}'
    fault_of(api.post("/instances", data=raw, headers={"Content-Type": "application/json"}), 400, "badRequest",
             "instance.name")
    raw = '{"\\ud800": {}}'
    fault_of(api.post(f"/instances/{iid}/action", data=raw, headers={"Content-Type": "application/json"}), 400,
             "badRequest", "valid string")
    fault_of(_create(api, availability_zone="nova\x00"), 400, "badRequest", "availability_zone")
    fault_of(_create(api, access={"allowed_cidrs": ["10.0.0.0/8\x00"]}), 400, "badRequest",
             "'10.0.0.0/8\\x00' is not a valid CIDR")
    fault_of(api.put(f"/instances/{iid}", json={"instance": {"access": {"allowed_cidrs": ["\x00"]}}}), 400,
             "badRequest", "not a valid CIDR")
    fault_of(api.put(f"/instances/{iid}?dry_run=true", json={"instance": {"name": "x\x1b[31m"}}), 400,
             "badRequest", "control characters")
    # ids in bodies and query strings: not found (or a bad marker), never a database error
    fault_of(api.post("/security-group-rules", json={"security_group_rule": {"group_id": f"{iid}\x00",
                                                                              "cidr": "10.0.0.0/8"}}),
             404, "itemNotFound", "\\x00")
    fault_of(api.get("/instances", params={"marker": f"{iid}\x00"}), 400, "badRequest", "marker")
    fault_of(_create(api, flavorRef="1\x00"), 404, "itemNotFound", "Flavor 1\\x00")
    fault_of(_create(api, datastore={"type": "postgresql\x00"}), 404, "itemNotFound", "postgresql\\x00")
    unchanged.check()
    shown = api.get(f"/instances/{iid}").json()["instance"]
    assert shown["name"] == "db1" and shown["access"]["allowed_cidrs"] == ["0.0.0.0/0"]


def test_control_characters_in_paths_are_400_before_any_lookup(hearth_api, ready, fault_of):
    api, inst = ready
    iid = inst["id"]
    unchanged = Unchanged(hearth_api)
    for method, path in [("GET", f"/instances/{iid}%00"), ("GET", "/instances/%00"),
                         ("DELETE", f"/instances/{iid[:8]}%00{iid[9:]}"), ("GET", f"/instances/{iid}%0a/events"),
                         ("POST", "/instances/%00/action"), ("GET", "/security-groups/%1b"),
                         ("DELETE", "/security-group-rules/%00"), ("GET", "/flavors/%00"),
                         ("GET", "/datastores/%7f"), ("GET", "/datastores/versions/%00")]:
        body = {"resize": {"volume": {"size": 2}}} if method == "POST" else None
        fault_of(api.request(method, path, json=body), 400, "badRequest", "control character", "check the URL")
    # the project id is a path segment too (an admin token may name any project)
    admin = hearth_api.client("admin")
    admin.project_id = "demo%00"
    fault_of(admin.get("/instances"), 400, "badRequest", "control character")
    # percent-encoded bytes that are not UTF-8 are an unknown id, not a crash
    fault_of(api.get("/instances/%ed%a0%80"), 404, "itemNotFound")
    unchanged.check()
    assert api.get(f"/instances/{iid}").status_code == 200


# --------------------------------------------------------------------------------------------------
# Numbers and sizes.


def test_booleans_are_not_numbers_and_sizes_are_bounded(hearth_api, ready, fault_of):
    api, inst = ready
    iid = inst["id"]
    unchanged = Unchanged(hearth_api)
    fault_of(_create(api, volume={"size": True}), 400, "badRequest", "instance.volume.size", "not true or false")
    fault_of(_create(api, flavorRef=True), 400, "badRequest", "instance.flavorRef", "not true or false")
    fault_of(_create(api, volume={"size": 2**63}), 400, "badRequest", "instance.volume.size",
             str(service.MAX_VOLUME_GB))
    fault_of(_create(api, volume={"size": 1.5}), 400, "badRequest", "instance.volume.size")
    fault_of(_create(api, name="n" * 256), 400, "badRequest", "instance.name", "255")
    fault_of(_create(api, availability_zone="z" * 256), 400, "badRequest", "instance.availability_zone")
    action = f"/instances/{iid}/action"
    fault_of(api.post(action, json={"resize": {"volume": {"size": True}}}), 400, "badRequest", "not true or false")
    fault_of(api.post(action, json={"resize": {"flavorRef": False}}), 400, "badRequest", "not true or false")
    fault_of(api.post(action, json={"resize": {"volume": {"size": 2**63}}}), 400, "badRequest",
             str(service.MAX_VOLUME_GB))
    # a size the cloud's volume quota cannot hold is refused before it is accepted, as on create
    fault_of(api.post(action, json={"resize": {"volume": {"size": 6000}}}), 413, "overLimit",
             "Quota exceeded", "volume gigabytes: need 5999")
    fault_of(api.post(action + "?dry_run=true", json={"resize": {"volume": {"size": 6000}}}), 413, "overLimit")
    unchanged.check()
    assert api.get(f"/instances/{iid}").json()["instance"]["volume"]["size"] == 1
    # digit strings stay accepted, as Trove's schema allows
    assert _create(api, dry_run=True, volume={"size": "2"}).status_code == 200


def test_flavor_resize_checks_the_compute_quota_first(hearth_api, ready, admin, fault_of):
    api, inst = ready
    admin.compute.update_quota_set(hearth_api.credentials("demo").project_id, cores=2)
    unchanged = Unchanged(hearth_api)
    fault_of(api.post(f"/instances/{inst['id']}/action", json={"resize": {"flavorRef": "4"}}), 413, "overLimit",
             "cores: need 3, 1 of 2 left")
    unchanged.check()
    assert api.post(f"/instances/{inst['id']}/action", json={"resize": {"flavorRef": "3"}}).status_code == 202


# --------------------------------------------------------------------------------------------------
# Allowed CIDRs: linear dedup, a ceiling on the list, the cloud's rule quota, a ceiling on the body.


def test_allowed_cidrs_dedup_is_linear_and_the_list_is_capped(hearth_api, fault_of):
    api = hearth_api.client()
    unchanged = Unchanged(hearth_api)
    too_many = [f"10.{i // 256}.{i % 256}.0/24" for i in range(service.MAX_ALLOWED_CIDRS + 1)]
    fault_of(_create(api, access={"allowed_cidrs": too_many}), 400, "badRequest", "allowed_cidrs",
             str(service.MAX_ALLOWED_CIDRS))
    unchanged.check()
    # a ceiling's worth of spellings of one network: one rule (linear: a dict, not a list scan)
    started = time.monotonic()
    same = [f"10.0.0.{i % 256}/24" for i in range(service.MAX_ALLOWED_CIDRS)]
    plan = _create(api, dry_run=True, access={"allowed_cidrs": same, "is_public": False})
    assert plan.status_code == 200, plan.text
    rules = [s for s in plan.json()["plan"]["steps"] if s["action"] == "POST /security-group-rules"]
    assert [s["detail"] for s in rules] == ["tcp 5432-5432 from 10.0.0.0/24"]
    assert time.monotonic() - started < 5
    assert service.normalize_cidrs(["10.0.0.7/24", "::1/64", "10.0.0.0/24", "0::1/64"]) == ["10.0.0.0/24", "::/64"]


def test_create_beyond_the_rule_quota_is_413(hearth_api, fault_of):
    """600 CIDRs cannot fit Neutron's default 500 rules (the group's 2 egress rules count too)."""
    api = hearth_api.client()
    unchanged = Unchanged(hearth_api)
    cidrs = [f"10.{i // 256}.{i % 256}.0/24" for i in range(600)]
    fault_of(_create(api, access={"allowed_cidrs": cidrs}), 413, "overLimit", "security group rules: need 60")
    fault_of(_create(api, dry_run=True, access={"allowed_cidrs": cidrs}), 413, "overLimit", "security group rules")
    unchanged.check()


def test_access_changes_check_the_rule_quota(hearth_api, ready, admin, fault_of):
    api, inst = ready
    iid = inst["id"]
    project = hearth_api.credentials("demo").project_id
    used = admin.network.get_quota(project, details=True).security_group_rules["used"]
    admin.network.update_quota(project, security_group_rules=used + 2)
    unchanged = Unchanged(hearth_api)
    three = ["10.1.0.0/16", "10.2.0.0/16", "10.3.0.0/16"]
    fault_of(api.put(f"/instances/{iid}", json={"instance": {"access": {"allowed_cidrs": three}}}), 413, "overLimit",
             "security group rules: need 3, 2 of")
    admin.network.update_quota(project, security_group_rules=used)
    group = api.get(f"/security-groups/{iid}").json()["security_group"]
    fault_of(api.post("/security-group-rules", json={"security_group_rule": {"group_id": group["id"],
                                                                              "cidr": "10.9.0.0/16"}}),
             413, "overLimit", "security group rules: need 1, 0 of")
    rule_id = group["rules"][0]["id"]
    fault_of(api.put(f"/security-group-rules/{rule_id}", json={"security_group_rule": {"cidr": "10.8.0.0/16"}}),
             413, "overLimit", "security group rules")
    unchanged.check()
    # removing rules needs no room: accepted and applied
    assert api.put(f"/instances/{iid}", json={"instance": {"access": {"allowed_cidrs": []}}}).status_code == 202
    hearth_api.settle()
    assert hearth_api.cloud_rules(iid) == set()


def test_request_bodies_are_capped(hearth_api, fault_of):
    """60,000 CIDRs used to hold a core for a minute; any body over the limit is refused unread."""
    from hearth.api.limits import MAX_BODY_BYTES

    api = hearth_api.client()
    unchanged = Unchanged(hearth_api)
    huge = {"instance": {"name": "db1", "flavorRef": "1", "volume": {"size": 1},
                         "access": {"allowed_cidrs": [f"10.{i // 256 % 256}.{i % 256}.0/24" for i in range(60_000)]}}}
    started = time.monotonic()
    fault_of(api.post("/instances", json=huge), 413, "overLimit", f"larger than {MAX_BODY_BYTES} bytes")
    assert time.monotonic() - started < 5

    def chunks() -> Iterator[bytes]:  # no Content-Length: the body is streamed (chunked)
        yield b'{"instance": {"name": "db1", "flavorRef": "1", "volume": {"size": 1}, "x": "'
        for _ in range(MAX_BODY_BYTES // 1024 + 1):
            yield b"y" * 1024
        yield b'"}}'

    fault_of(api.post("/instances", data=chunks(), headers={"Content-Type": "application/json"}),
             413, "overLimit", "larger than")
    fault_of(api.put(f"/instances/{uuid.uuid4()}", data=b" " * (MAX_BODY_BYTES + 1),
                     headers={"Content-Type": "application/json"}), 413, "overLimit")
    unchanged.check()
    # just under the limit is an ordinary request
    assert api.post("/instances?dry_run=true", json={"instance": {
        "name": "db1", "flavorRef": "1", "volume": {"size": 1}}}).status_code == 200


# --------------------------------------------------------------------------------------------------
# What the cloud must have room for, or have at all: security groups, availability zones.


def test_create_checks_the_security_group_quota_and_the_availability_zone(hearth_api, admin, fault_of):
    api = hearth_api.client()
    project = hearth_api.credentials("demo").project_id
    admin.network.update_quota(project, security_groups=1)  # the project's default group uses it
    unchanged = Unchanged(hearth_api)
    fault_of(_create(api), 413, "overLimit", "security groups: need ")
    admin.network.update_quota(project, security_groups=10)
    fault_of(_create(api, availability_zone="nowhere"), 400, "badRequest",
             "Availability zone 'nowhere' does not exist in the compute service (its zones: nova).")
    fault_of(_create(api, availability_zone="nova:host1", dry_run=True), 400, "badRequest", "Availability zone")
    unchanged.check()
    inst = hearth_api.create(api, availability_zone="nova")
    assert inst["status"] == "ACTIVE"
    assert hearth_api.cloud_resource("volumes", inst["id"])["availability_zone"] == "nova"


def test_the_longest_name_fits_the_security_group_description(hearth_api):
    api = hearth_api.client()
    name = "n" * service.MAX_NAME
    inst = hearth_api.create(api, name=name)
    assert (inst["status"], inst["name"]) == ("ACTIVE", name)
    description = hearth_api.cloud_resource("security_groups", inst["id"])["description"]
    assert len(description) <= common.DESCRIPTION_MAX
    assert description.startswith("Hearth instance nnn") and description.endswith(f"... ({inst['id']})")


def test_both_engines_bound_the_security_group_description():
    """The orchestrator's template and the natives engine describe the group with the same bounded helper."""
    spec = InstanceSpec(instance_id=str(uuid.uuid4()), name="é" * 255, project_id="p", flavor_id="1",
                        image_id="i", volume_size=1, rules=(RuleSpec("r", "tcp", 5432, 5432, "10.0.0.0/8"),))
    group = templates.build(spec)["resources"][templates.SECURITY_GROUP]["properties"]
    assert group["description"] == common.secgroup_description(spec)
    assert len(group["description"]) == common.DESCRIPTION_MAX
    assert common.secgroup_description(spec.replace(name="db1")) == f"Hearth instance db1 ({spec.instance_id})"
