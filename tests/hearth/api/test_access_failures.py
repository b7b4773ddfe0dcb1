"""Every failure path of an access change ends with the recorded CIDRs equal to the rules Neutron holds:
a CIDR the cloud lets in is always one the API lists.

Natives creates the new rule before it deletes the old one; the orchestrator updates the stack and Heat
does both. Each test breaks one step, lets the operation end (completed or failed), and compares the API's
`allowed_cidrs` with the security group's ingress rules read from the cloud.
"""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def db_url(tmp_path) -> str:
    """SQLite only: these paths are about the engines and the cloud; the requeue and claim statements they share
    with PostgreSQL run there in test_weather.py (and `make test` stays under its time)."""
    return f"sqlite:///{tmp_path / 'hearth.sqlite'}"


@pytest.fixture
def hearth_settings(hearth_settings, request):
    """The shared settings with the engine (and any other setting) a test names through indirect params."""
    update: dict[str, Any] = getattr(request, "param", {"engine": "natives"})
    return hearth_settings.model_copy(update=update)


def recorded_cidrs(api, iid: str) -> set[str]:
    return set(api.get(f"/instances/{iid}").json()["instance"]["access"]["allowed_cidrs"])


def cloud_cidrs(hearth_api, iid: str) -> set[str]:
    return {cidr for (_protocol, _low, _high, cidr) in hearth_api.cloud_rules(iid)}


def change_access(hearth_api, api, iid: str, cidrs: list[str]) -> dict[str, Any]:
    response = api.put(f"/instances/{iid}", json={"instance": {"access": {"allowed_cidrs": cidrs}}})
    assert response.status_code == 202, response.text
    hearth_api.settle(60)
    return api.get(f"/instances/{iid}").json()["instance"]


def event_messages(api, iid: str) -> list[str]:
    return [e["message"] for e in api.get(f"/instances/{iid}/events").json()["events"]]


@pytest.mark.parametrize("hearth_settings", [{"engine": "natives"}], indirect=True)
def test_natives_old_rule_delete_answering_503_still_completes_the_change(hearth_api):
    api = hearth_api.client()
    iid = hearth_api.create(api, access={"allowed_cidrs": ["10.1.0.0/16"]})["id"]
    # more failures than one call's own retries: the operation itself is requeued and resumed
    hearth_api.cloud.control.add_fault(service="network", operation="security_group_rule.delete",
                                       action="http_error", status=503, count=5)
    shown = change_access(hearth_api, api, iid, ["10.2.0.0/16"])
    assert shown["status"] == "ACTIVE" and "fault" not in shown, shown
    assert recorded_cidrs(api, iid) == {"10.2.0.0/16"} == cloud_cidrs(hearth_api, iid)
    assert any("Neutron answered 503" in m and "retrying in" in m for m in event_messages(api, iid))


@pytest.mark.parametrize("hearth_settings", [{"engine": "natives"}], indirect=True)
def test_natives_old_rule_that_cannot_be_deleted_stays_listed(hearth_api):
    """The new rule exists and Neutron refuses for good to delete the old one: both CIDRs are open, so both
    are listed (never "one CIDR shown, two allowed")."""
    api = hearth_api.client()
    iid = hearth_api.create(api, access={"allowed_cidrs": ["10.1.0.0/16"]})["id"]
    hearth_api.cloud.control.add_fault(service="network", operation="security_group_rule.delete",
                                       action="http_error", status=403, message="Policy forbids it.")
    shown = change_access(hearth_api, api, iid, ["10.2.0.0/16"])
    assert shown["status"] == "ACTIVE", shown  # a refused rule change never breaks the server
    assert "access update failed" in shown["fault"]["message"] and "Policy forbids it." in shown["fault"]["message"]
    assert recorded_cidrs(api, iid) == {"10.1.0.0/16", "10.2.0.0/16"} == cloud_cidrs(hearth_api, iid)
    rules = api.get(f"/security-groups/{iid}").json()["security_group"]["rules"]
    assert {r["cidr"] for r in rules} == {"10.1.0.0/16", "10.2.0.0/16"}

    hearth_api.cloud.control.clear_faults()  # once Neutron allows it, the next change converges
    change_access(hearth_api, api, iid, ["10.2.0.0/16"])
    assert recorded_cidrs(api, iid) == {"10.2.0.0/16"} == cloud_cidrs(hearth_api, iid)


@pytest.mark.parametrize("hearth_settings", [{"engine": "natives"}], indirect=True)
def test_natives_new_rule_refused_leaves_the_old_access_recorded(hearth_api):
    """Neutron refuses the new rule (over quota): nothing changed, and the record says so."""
    api = hearth_api.client()
    iid = hearth_api.create(api, access={"allowed_cidrs": ["10.1.0.0/16"]})["id"]
    hearth_api.cloud.control.add_fault(service="network", operation="security_group_rule.create", action="quota")
    shown = change_access(hearth_api, api, iid, ["10.2.0.0/16", "10.3.0.0/16"])
    assert shown["status"] == "ACTIVE" and "access update failed" in shown["fault"]["message"], shown
    assert recorded_cidrs(api, iid) == {"10.1.0.0/16"} == cloud_cidrs(hearth_api, iid)


@pytest.mark.parametrize("hearth_settings", [{"engine": "orchestrator"}, {"engine": "migration"}], indirect=True)
def test_stack_update_whose_polls_fail_is_decided_by_the_stack(hearth_api):
    """Heat accepts the update, several status polls answer 503, and Heat finishes anyway: the change is
    recorded (the polls decided nothing)."""
    api = hearth_api.client()
    iid = hearth_api.create(api, access={"allowed_cidrs": ["10.1.0.0/16"]})["id"]
    hearth_api.cloud.control.add_fault(service="orchestration", operation="stack.show", action="http_error",
                                       status=503, count=8)
    shown = change_access(hearth_api, api, iid, ["10.2.0.0/16"])
    assert shown["status"] == "ACTIVE" and "fault" not in shown, shown
    assert recorded_cidrs(api, iid) == {"10.2.0.0/16"} == cloud_cidrs(hearth_api, iid)


@pytest.mark.parametrize("hearth_settings", [{"engine": "orchestrator"}, {"engine": "migration"}], indirect=True)
def test_stack_update_whose_answer_was_lost_is_not_applied_twice(hearth_api):
    """Heat takes the update and the answer is lost (503 after the change): the resumed operation finds the
    stack already holding the new rules."""
    api = hearth_api.client()
    iid = hearth_api.create(api, access={"allowed_cidrs": ["10.1.0.0/16"]})["id"]
    hearth_api.cloud.control.add_fault(service="orchestration", operation="stack.update", action="http_error",
                                       status=503, when="after", count=1)
    shown = change_access(hearth_api, api, iid, ["10.2.0.0/16", "10.3.0.0/16"])
    assert shown["status"] == "ACTIVE" and "fault" not in shown, shown
    assert recorded_cidrs(api, iid) == {"10.2.0.0/16", "10.3.0.0/16"} == cloud_cidrs(hearth_api, iid)


@pytest.mark.parametrize("hearth_settings", [{"engine": "orchestrator", "operation_timeout_seconds": 4.0}],
                         indirect=True)
def test_access_change_while_heat_stays_unreadable_fails_at_its_timeout_with_the_record_true(hearth_api):
    """Heat answers 503 to every read until the operation's timeout: the operation retries (each retry an
    event), then fails saying the cloud kept failing; the failed operation re-reads the group from Neutron
    (Heat's outage does not hide it), and the record lists exactly what is open."""
    api = hearth_api.client()
    iid = hearth_api.create(api, access={"allowed_cidrs": ["10.1.0.0/16"]})["id"]
    hearth_api.cloud.control.add_fault(service="orchestration", operation="stack.show", action="http_error",
                                       status=503)
    shown = change_access(hearth_api, api, iid, ["10.2.0.0/16"])
    assert shown["status"] == "ACTIVE", shown
    assert "access update failed: the cloud kept failing" in shown["fault"]["message"], shown
    assert "Injected fault" in shown["fault"]["message"], shown  # the cloud's own words
    assert recorded_cidrs(api, iid) == cloud_cidrs(hearth_api, iid) == {"10.1.0.0/16"}
    messages = event_messages(api, iid)
    assert sum("Heat answered 503" in m for m in messages) >= 3, messages
    assert any("resumed after a transient cloud fault" in m for m in messages), messages
    assert any("access re-read from the cloud" in m for m in messages), messages

    hearth_api.cloud.control.clear_faults()  # Heat is back: the same change now goes through
    change_access(hearth_api, api, iid, ["10.2.0.0/16"])
    assert recorded_cidrs(api, iid) == cloud_cidrs(hearth_api, iid) == {"10.2.0.0/16"}


@pytest.mark.parametrize("hearth_settings", [{"engine": "natives"}], indirect=True)
def test_a_failed_resize_whose_cloud_cannot_be_reread_is_marked_drifted(hearth_api):
    """Nova refuses the resize for good, and Cinder cannot be read afterwards: the record cannot be checked, so
    the instance says so (`drift`) until an operation succeeds again."""
    api = hearth_api.client()
    iid = hearth_api.create(api)["id"]
    control = hearth_api.cloud.control
    control.add_fault(service="compute", operation="server.action", action="http_error", status=403,
                      message="Resizing is not allowed by policy.")
    control.add_fault(service="volume", operation="volume.show", action="http_error", status=503)
    response = api.post(f"/instances/{iid}/action", json={"resize": {"flavorRef": "2"}})
    assert response.status_code == 202, response.text
    hearth_api.settle(60)
    shown = api.get(f"/instances/{iid}").json()["instance"]
    assert "resize failed" in shown["fault"]["message"] and "not allowed by policy" in shown["fault"]["message"]
    assert "could not be read" in shown["drift"], shown
    assert shown["flavor"]["id"] == "1" and hearth_api.cloud_resource("servers", iid)["flavor"]["original_name"] == \
        "m1.tiny"
    assert any(m.startswith("drift:") for m in event_messages(api, iid))

    control.clear_faults()
    response = api.post(f"/instances/{iid}/action", json={"resize": {"flavorRef": "2"}})
    assert response.status_code == 202, response.text
    hearth_api.settle(60)
    shown = api.get(f"/instances/{iid}").json()["instance"]
    assert shown["status"] == "ACTIVE" and "drift" not in shown and shown["flavor"]["id"] == "2", shown
