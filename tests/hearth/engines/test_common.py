"""The shared engine code: polling against real resources, error mapping, naming, rule diffs, preflight."""

from __future__ import annotations

import time

import openstack
import pytest
from keystoneauth1 import exceptions as ks_exceptions
from openstack import exceptions as os_exceptions

from hearth.engines import common
from hearth.engines.base import EngineError, RuleSpec
from openstack_fakecloud.config import CloudConfig, FlavorSpec, ImageSpec
from openstack_fakecloud.testing import running_cloud

# --- waiting -------------------------------------------------------------------------------------


def test_poll_delays_grow_by_the_factor_up_to_the_cap(settings):
    tuned = settings.model_copy(update={"poll_initial_seconds": 0.1, "poll_factor": 2.0, "poll_max_seconds": 0.5})
    delays = common._delays(tuned)
    assert [next(delays) for _ in range(6)] == [0.1, 0.2, 0.4, 0.5, 0.5, 0.5]


def test_wait_for_backs_off_then_returns_the_ready_resource(settings, os_conn, fakecloud, frozen_clock):
    fakecloud.control.set_delays(volume_create=60)
    volume = os_conn.block_storage.create_volume(name="wait-test", size=1)
    tuned = settings.model_copy(update={"poll_initial_seconds": 0.01, "poll_factor": 2.0, "poll_max_seconds": 0.08})
    polls: list[str] = []

    def fetch():
        found = os_conn.block_storage.get_volume(volume.id)
        polls.append(found.status)
        return found

    with pytest.raises(EngineError, match=r"timed out after 0.4s waiting for volume wait-test .*last status: creating"):
        common.wait_for(fetch, lambda v: v.status == "available", common.volume_failure, "volume wait-test",
                        timeout=0.4, settings=tuned)
    # with fixed 0.01 s sleeps there would be ~40 polls; backing off to 0.08 s gives far fewer
    assert 3 <= len(polls) < 20
    assert set(polls) == {"creating"}

    frozen_clock.advance(60)
    ready = common.wait_for(fetch, lambda v: v.status == "available", common.volume_failure, "volume wait-test",
                            timeout=5, settings=tuned)
    assert ready.id == volume.id and ready.status == "available"


def test_a_learnt_wait_looks_first_near_its_expected_end(settings, os_conn, fakecloud):
    """A kind of wait seen before is first looked at after most of its learnt duration (a look right after
    the request would find the change under way); with after_change=False it is looked at at once."""
    fakecloud.control.set_delays(volume_create=0.4)
    tuned = settings.model_copy(update={"poll_initial_seconds": 0.01, "poll_factor": 1.5, "poll_max_seconds": 0.05})
    what = "creation of volume learn-test"

    def wait(after_change: bool = True) -> list[float]:
        volume = os_conn.block_storage.create_volume(name="learn-test", size=1)
        started, looks = time.monotonic(), []

        def fetch():
            looks.append(time.monotonic() - started)
            return os_conn.block_storage.get_volume(volume.id)

        common.wait_for(fetch, lambda v: v.status == "available", common.volume_failure, what, timeout=10,
                        settings=tuned, after_change=after_change)
        return looks

    first = wait()
    assert first[0] < 0.1 and len(first) > 3  # never seen: looked at at once, then geometrically
    learnt = common.expected_duration(common.wait_kind(what))
    assert learnt is not None and learnt >= 0.4
    second = wait()
    assert second[0] >= common.EARLY * learnt * 0.95  # slept through most of the expected time first
    assert len(second) < len(first)
    third = wait(after_change=False)
    assert third[0] < 0.1


def test_wait_for_raises_the_servers_fault(settings, os_conn, fakecloud, image_id):
    fakecloud.control.add_fault(service="compute", operation="server.create", action="error_status",
                                message="No valid host was found. There are not enough hosts available.")
    server = os_conn.compute.create_server(name="doomed", flavor_id="1", image_id=image_id, networks="auto")
    with pytest.raises(EngineError) as raised:
        common.wait_for(lambda: os_conn.compute.get_server(server.id), lambda s: s.status == "ACTIVE",
                        common.server_failure, "server doomed", timeout=None, settings=settings)
    assert str(raised.value) == (f"server doomed failed: server {server.id} went to ERROR: "
                                 "No valid host was found. There are not enough hosts available.")


def test_wait_for_raises_on_a_volume_in_error(settings, os_conn, fakecloud):
    fakecloud.control.add_fault(service="volume", operation="volume.create", action="error_status")
    volume = os_conn.block_storage.create_volume(name="bad", size=1)
    with pytest.raises(EngineError, match=f"volume bad failed: volume {volume.id} is in status error"):
        common.wait_for(lambda: os_conn.block_storage.get_volume(volume.id), lambda v: v.status == "available",
                        common.volume_failure, "volume bad", timeout=None, settings=settings)


def test_wait_for_gone_treats_not_found_as_done(settings, os_conn, fakecloud):
    fakecloud.control.set_delays(volume_delete=0.05)
    volume = os_conn.block_storage.create_volume(name="short-lived", size=1)
    common.wait_for(lambda: os_conn.block_storage.get_volume(volume.id), lambda v: v.status == "available",
                    common.volume_failure, "volume", timeout=None, settings=settings)
    os_conn.block_storage.delete_volume(volume.id)
    common.wait_for_gone(lambda: os_conn.block_storage.get_volume(volume.id), "volume deletion",
                         timeout=None, settings=settings)
    with pytest.raises(os_exceptions.NotFoundException):
        os_conn.block_storage.get_volume(volume.id)
    # and a resource that never existed is gone at once
    common.wait_for_gone(lambda: os_conn.block_storage.get_volume("0" * 32), "volume deletion",
                         timeout=None, settings=settings)


def test_wait_for_maps_errors_raised_while_polling(settings, os_conn):
    with pytest.raises(EngineError, match=r"checking server x failed: .*could not be found.*\(HTTP 404\)"):
        common.wait_for(lambda: os_conn.compute.get_server("no-such-server"), lambda s: True, lambda s: None,
                        "server x", timeout=None, settings=settings)


# --- error mapping -------------------------------------------------------------------------------


def test_not_found_is_mapped_with_the_clouds_message(os_conn):
    with pytest.raises(EngineError) as raised, common.cloud_call("reading server abc"):
        os_conn.compute.get_server("abc")
    assert str(raised.value) == "reading server abc failed: Instance abc could not be found. (HTTP 404)"


def test_bad_request_is_mapped(os_conn):
    with pytest.raises(EngineError, match=r"^extending volume failed: .*must be greater.*\(HTTP 400\)$"):
        volume = os_conn.block_storage.create_volume(name="small", size=2)
        os_conn.block_storage.wait_for_status(volume, "available", interval=0.01, wait=10)
        common.call("extending volume", os_conn.block_storage.extend_volume, volume.id, 1)


def test_conflict_is_mapped_and_names_the_existing_rule(os_conn):
    group = os_conn.network.create_security_group(name="dup-test")
    body = common.rule_body(RuleSpec("r", "tcp", 80, 80, "10.0.0.0/8"), group.id)
    first = os_conn.network.create_security_group_rule(**body)
    with pytest.raises(EngineError) as raised:
        common.call("creating rule", os_conn.network.create_security_group_rule, **body)
    assert "(HTTP 409)" in str(raised.value)
    assert common.existing_rule_id(str(raised.value)) == first.id


def test_injected_server_error_is_mapped(os_conn, fakecloud):
    fakecloud.control.add_fault(service="volume", operation="volume.create", action="http_error", status=503,
                                message="Cinder is down for maintenance")
    with pytest.raises(common.CloudUnavailable,
                       match=r"^creating volume failed: Cinder is down for maintenance \(HTTP 503\)$"):
        common.call("creating volume", os_conn.block_storage.create_volume, name="x", size=1)


def test_client_errors_are_not_outages(os_conn):
    """4xx is the caller's problem: a plain EngineError, never CloudUnavailable."""
    with pytest.raises(EngineError) as raised:
        common.call("reading server abc", os_conn.compute.get_server, "abc")
    assert not isinstance(raised.value, common.CloudUnavailable)


def test_cloud_error_messages_are_masked(os_conn, fakecloud, image_id):
    """A cloud that echoes credentials in its error body (a proxy, a misconfigured service): the EngineError
    built from it by common.call carries neither the token nor the password."""
    token, password = "gAAAAAsecret", "hunter2"
    fakecloud.control.add_fault(service="compute", operation="server.create", action="http_error", status=500,
                                message=f'boom X-Auth-Token: {token} "password": "{password}"')
    with pytest.raises(EngineError) as raised:
        common.call("creating server", os_conn.compute.create_server, name="masked", flavor_id="1",
                    image_id=image_id, networks="none")
    message = str(raised.value)
    assert message.startswith("creating server failed: boom") and message.endswith("(HTTP 500)"), message
    assert token not in message and password not in message, message
    assert "X-Auth-Token: ***" in message and '"password": "***' in message, message


def test_authentication_failure_is_mapped_once(fakecloud):
    """keystoneauth's own messages ("... (HTTP 401) (Request-ID: ...)") are normalised to ours."""
    auth = dict(fakecloud.auth("demo"), password="wrong-password")
    conn = openstack.connect(**auth, region_name="RegionOne", identity_api_version="3", load_yaml_config=False,
                             load_envvars=False)
    with pytest.raises(EngineError) as raised:
        common.call("listing servers", lambda: list(conn.compute.servers()))
    message = str(raised.value)
    assert message.startswith("listing servers failed:")
    assert message.endswith("(HTTP 401)") and message.count("HTTP 401") == 1, message


def test_connection_failure_is_mapped():
    conn = openstack.connect(auth_url="http://127.0.0.1:9/v3", username="u", password="p",
                             project_name="p", user_domain_name="Default", project_domain_name="Default",
                             region_name="RegionOne", identity_api_version="3", load_yaml_config=False,
                             load_envvars=False, api_timeout=2)
    with pytest.raises(common.CloudUnavailable) as raised:
        common.call("listing servers", lambda: list(conn.compute.servers()))
    assert str(raised.value).startswith("listing servers failed:")


def test_error_text_describes_raw_cloud_exceptions_scrubbed(os_conn, fakecloud):
    token = "gAAAAAsecretsecretsecretsecret"
    fakecloud.control.add_fault(service="compute", operation="server.show", action="http_error", status=500,
                                message=f"boom X-Auth-Token: {token}")
    with pytest.raises(os_exceptions.HttpException) as raised:
        os_conn.compute.get_server("abc")
    text = common.error_text(raised.value)
    assert text.startswith("boom") and text.endswith("(HTTP 500)"), text
    assert token not in text and "X-Auth-Token: ***" in text
    assert common.error_text(EngineError("already ours")) == "already ours"


def test_scrub_removes_tokens_and_passwords():
    text = ('X-Auth-Token: gAAAAABlongfernettokenvalue0123456789abcdef {"password": "hunter2", '
            '"token": "abc123"} adminPass=zzz')
    cleaned = common.scrub(text)
    for secret in ("gAAAAABlongfernettokenvalue0123456789abcdef", "hunter2", "abc123", "zzz"):
        assert secret not in cleaned


def test_describe_exception_of_plain_keystoneauth_errors():
    message, status = common.describe_exception(ks_exceptions.Unauthorized(message="Bad credentials",
                                                                           http_status=401))
    assert (message, status) == ("Bad credentials", 401)


# --- naming and leftovers ------------------------------------------------------------------------


def test_names_and_metadata(make_spec):
    spec = make_spec()
    assert common.server_name(spec.instance_id) == f"hearth-{spec.instance_id}"
    assert common.volume_name(spec.instance_id) == f"hearth-{spec.instance_id}-data"
    assert common.secgroup_name(spec.instance_id) == f"hearth-{spec.instance_id}"
    assert common.resource_metadata(spec) == {"hearth_instance_id": spec.instance_id,
                                              "hearth_project_id": spec.project_id}
    assert spec.instance_id in common.secgroup_description(spec)


def test_find_leftovers_by_name_and_metadata(os_conn, make_spec):
    spec, other = make_spec(), make_spec()
    mine = os_conn.block_storage.create_volume(name=common.volume_name(spec.instance_id), size=1,
                                               metadata=common.resource_metadata(spec))
    # same name, but the metadata says it belongs to another instance: not ours
    os_conn.block_storage.create_volume(name=common.volume_name(spec.instance_id), size=1,
                                        metadata=common.resource_metadata(other))
    os_conn.block_storage.create_volume(name=common.volume_name(other.instance_id), size=1)
    group = os_conn.network.create_security_group(name=common.secgroup_name(spec.instance_id))

    assert [v.id for v in common.find_volumes(os_conn, spec.instance_id)] == [mine.id]
    assert [g.id for g in common.find_secgroups(os_conn, spec.instance_id)] == [group.id]
    assert common.find_servers(os_conn, spec.instance_id) == []


# --- preflight -----------------------------------------------------------------------------------


def test_preflight_passes_and_resolves_names(os_conn, make_spec):
    resolved = common.preflight(os_conn, make_spec(flavor_id="m1.small", image_id="postgresql-16"))
    assert resolved.flavor.id == "2"
    assert resolved.image.name == "postgresql-16"


def test_preflight_refuses_volume_count_quota(os_conn, os_admin, make_spec):
    os_admin.block_storage.update_quota_set(os_conn.current_project_id, volumes=1)
    os_conn.block_storage.create_volume(name="taken", size=1)
    with pytest.raises(EngineError, match=r"quota exceeded: volumes: need 1, 0 of 1 left"):
        common.preflight(os_conn, make_spec())


def test_preflight_reports_a_cloud_outage_as_unavailable(os_conn, fakecloud, make_spec):
    fakecloud.control.add_fault(service="compute", operation="limits.show", action="http_error", status=503,
                                message="Nova is down")
    with pytest.raises(common.CloudUnavailable, match=r"reading compute limits failed: Nova is down \(HTTP 503\)"):
        common.preflight(os_conn, make_spec())


def test_preflight_reports_an_unknown_flavor_as_bad_input(os_conn, make_spec):
    with pytest.raises(EngineError, match="flavor 'no-such-flavor' does not exist") as raised:
        common.preflight(os_conn, make_spec(flavor_id="no-such-flavor"))
    assert not isinstance(raised.value, common.CloudUnavailable)


def test_preflight_refuses_an_image_bigger_than_the_flavor_disk(make_spec):
    config = CloudConfig(images=[ImageSpec(name="big-image", min_disk=10)],
                         flavors=[FlavorSpec(id="tiny-disk", name="tiny-disk", ram=512, vcpus=1, disk=1)])
    with running_cloud(config) as cloud:
        conn = cloud.connect()
        with pytest.raises(EngineError, match="flavor 'tiny-disk' has a 1 GB disk, image 'big-image' needs 10 GB"):
            common.preflight(conn, make_spec(flavor_id="tiny-disk", image_id="big-image"))
        conn.close()


# --- rules ---------------------------------------------------------------------------------------

A = RuleSpec("a", "tcp", 5432, 5432, "10.0.0.0/24")
B = RuleSpec("b", "tcp", 22, 22, "192.168.0.0/16")


def _realised(rule: RuleSpec, cloud_id: str) -> RuleSpec:
    return RuleSpec(rule.id, rule.protocol, rule.from_port, rule.to_port, rule.cidr, cloud_id)


def test_diff_rules_add_keep_remove():
    diff = common.diff_rules([A, B], {"a": _realised(A, "c-a")})
    assert diff.keep == {"a": _realised(A, "c-a")}
    assert diff.to_create == [B]
    assert diff.to_delete == []

    diff = common.diff_rules([B], {"a": _realised(A, "c-a"), "b": _realised(B, "c-b")})
    assert diff.keep == {"b": _realised(B, "c-b")}
    assert diff.to_create == []
    assert diff.to_delete == [_realised(A, "c-a")]


def test_diff_rules_cidr_change_is_create_then_delete():
    moved = RuleSpec("a", "tcp", 5432, 5432, "10.9.0.0/16")
    diff = common.diff_rules([moved], {"a": _realised(A, "c-a")})
    assert diff.to_create == [moved]
    assert diff.to_delete == [_realised(A, "c-a")]
    assert diff.keep == {}


def test_diff_rules_adopts_an_identical_rule_under_another_id():
    renamed = RuleSpec("a2", "tcp", 5432, 5432, "10.0.0.7/24")  # same network once normalized
    diff = common.diff_rules([renamed], {"a": _realised(A, "c-a")})
    assert diff.empty
    assert diff.keep == {"a2": _realised(renamed, "c-a")}


def test_diff_rules_ignores_unrealised_current_rules():
    diff = common.diff_rules([A], {"a": A})  # recorded but never given a cloud id
    assert diff.to_create == [A] and diff.to_delete == []


def test_rule_body():
    assert common.rule_body(A, "g1") == {
        "security_group_id": "g1", "direction": "ingress", "ether_type": "IPv4", "protocol": "tcp",
        "port_range_min": 5432, "port_range_max": 5432, "remote_ip_prefix": "10.0.0.0/24", "description": "hearth:a"}
    v6 = common.rule_body(RuleSpec("c", "udp", 53, 53, "2001:db8::/32"), "g1")
    assert v6["ether_type"] == "IPv6" and v6["protocol"] == "udp"
    icmp = common.rule_body(RuleSpec("d", "icmp", -1, -1, "0.0.0.0/0"), "g1")
    assert icmp["port_range_min"] is None and icmp["port_range_max"] is None


def test_rule_body_is_accepted_by_neutron(os_conn):
    group = os_conn.network.create_security_group(name="body-test")
    for rule in (A, RuleSpec("v6", "udp", 53, 53, "2001:db8::/32"), RuleSpec("ping", "icmp", -1, -1, "0.0.0.0/0")):
        created = os_conn.network.create_security_group_rule(**common.rule_body(rule, group.id))
        assert common.neutron_shape(created) == common.rule_shape(rule)
        assert common.hearth_rule_id(created) == rule.id


def test_canonical_cidr_normalizes_defaults_and_refuses_invalid():
    assert common.canonical_cidr("10.0.0.7/24") == "10.0.0.0/24"
    assert common.canonical_cidr("2001:db8::1/32", "IPv6") == "2001:db8::/32"
    assert common.canonical_cidr(None) == "0.0.0.0/0"
    assert common.canonical_cidr("", "IPv6") == "::/0"
    with pytest.raises(EngineError, match=r"'10.0.0.300/24' is not a valid CIDR"):
        common.canonical_cidr("10.0.0.300/24")
    with pytest.raises(EngineError, match="is not a valid CIDR"):
        common.rule_body(RuleSpec("bad", "tcp", 80, 80, "not-a-network"), "g1")


def test_ingress_rules_lists_only_the_groups_ingress_rules(os_conn):
    group = os_conn.network.create_security_group(name="ingress-test")
    other = os_conn.network.create_security_group(name="ingress-other")
    created = os_conn.network.create_security_group_rule(**common.rule_body(A, group.id))
    os_conn.network.create_security_group_rule(**common.rule_body(B, other.id))
    all_rules = list(os_conn.network.security_group_rules(security_group_id=group.id))
    assert any(r.direction == "egress" for r in all_rules)  # Neutron's defaults, which Hearth leaves alone
    assert [r.id for r in common.ingress_rules(os_conn, group.id)] == [created.id]


def test_status_of():
    class Thing:
        status = "ACTIVE"

    assert common.status_of(Thing()) == "ACTIVE"
    assert common.status_of(object()) == "unknown"
    assert common.status_of(object(), missing="") == ""


def test_one_slow_period_does_not_change_what_a_wait_kind_expects_and_a_faster_cloud_is_learnt_soon():
    """Learnt waits are keyed by the declared WaitKind: a slow spell shorter than half the window leaves the
    expectation where it was, and once the cloud is faster for good the expectation follows within a window."""
    kind = common.WaitKind.VOLUME_ATTACH
    for _ in range(common.LEARN_WINDOW):
        common._learn(kind, 1.0)
    common._learn(kind, 20.0)
    common._learn(kind, 20.0)  # two slow waits in a window of five
    assert common.expected_duration(kind) == 1.0
    assert common.expected_duration(common.WaitKind.VOLUME_DETACH) is None  # another kind learnt nothing
    for _ in range(common.LEARN_WINDOW // 2 + 1):
        common._learn(kind, 0.2)
    assert common.expected_duration(kind) == 0.2
