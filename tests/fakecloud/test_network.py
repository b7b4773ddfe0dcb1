"""Neutron v2.0 over real HTTP: security groups and rules (with Neutron's validation), ports, quotas."""

import ipaddress
import json

import openstack.exceptions
import pytest
import requests


def _raw(conn, fakecloud, method, path, **kwargs):
    headers = {"X-Auth-Token": conn.session.get_token()}
    return requests.request(method, fakecloud.url + "/network/v2.0" + path, headers=headers, timeout=10, **kwargs)


def _rule(conn, group, **attrs):
    attrs.setdefault("direction", "ingress")
    return conn.network.create_security_group_rule(security_group_id=group.id, **attrs)


def test_discovery_documents(fakecloud):
    for path in ("/network", "/network/"):
        body = requests.get(fakecloud.url + path, timeout=10).json()
        assert body["versions"][0]["id"] == "v2.0"
        assert body["versions"][0]["links"][0]["href"].endswith("/network/v2.0/")
    resources = requests.get(fakecloud.url + "/network/v2.0", timeout=10).json()["resources"]
    assert {"security_groups", "security_group_rules", "ports"} <= {r["collection"].replace("-", "_")
                                                                    for r in resources}


def test_extensions(os_conn, fakecloud):
    aliases = {e.alias for e in os_conn.network.extensions()}
    assert {"security-group", "stateful-security-group", "standard-attr-description", "quotas", "project-id",
            "port-security", "standard-attr-tag"} <= aliases
    assert os_conn.network.find_extension("security-group", ignore_missing=False).alias == "security-group"
    assert _raw(os_conn, fakecloud, "GET", "/extensions/no-such-thing").status_code == 404


def test_new_group_has_two_default_egress_rules(os_conn):
    group = os_conn.network.create_security_group(name="db", description="database access")
    assert group.name == "db" and group.description == "database access" and group.stateful is True
    rules = group.security_group_rules
    assert len(rules) == 2
    assert {(r["direction"], r["ethertype"], r["protocol"], r["remote_ip_prefix"]) for r in rules} == {
        ("egress", "IPv4", None, None), ("egress", "IPv6", None, None)}
    fetched = os_conn.network.get_security_group(group.id)
    assert {r["id"] for r in fetched.security_group_rules} == {r["id"] for r in rules}


def test_every_project_has_a_default_group(os_conn):
    group = os_conn.network.find_security_group("default", ignore_missing=False)
    assert group.project_id == os_conn.current_project_id
    rules = group.security_group_rules
    assert sorted((r["direction"], r["ethertype"]) for r in rules) == [
        ("egress", "IPv4"), ("egress", "IPv6"), ("ingress", "IPv4"), ("ingress", "IPv6")]
    ingress = [r for r in rules if r["direction"] == "ingress"]
    assert all(r["remote_group_id"] == group.id and r["belongs_to_default_sg"] for r in ingress)


def test_rule_ports_as_strings_are_stored_as_ints(os_conn, fakecloud):
    group = os_conn.network.create_security_group(name="pg")
    rule = _rule(os_conn, group, ether_type="IPv4", protocol="tcp", port_range_min="5432",
                 port_range_max="5432", remote_ip_prefix="10.0.0.5/24")
    raw = _raw(os_conn, fakecloud, "GET", f"/security-group-rules/{rule.id}").json()["security_group_rule"]
    assert raw["port_range_min"] == 5432 and raw["port_range_max"] == 5432
    assert raw["remote_ip_prefix"] == "10.0.0.0/24" and raw["normalized_cidr"] == "10.0.0.0/24"
    assert raw["protocol"] == "tcp" and raw["belongs_to_default_sg"] is False
    group = os_conn.network.get_security_group(group.id)
    assert rule.id in {r["id"] for r in group.security_group_rules}
    listed = list(os_conn.network.security_group_rules(security_group_id=group.id, direction="ingress"))
    assert [r.id for r in listed] == [rule.id]


def test_duplicate_rule_is_409_with_neutrons_message(os_conn):
    group = os_conn.network.create_security_group(name="dup")
    first = _rule(os_conn, group, protocol="tcp", port_range_min=22, port_range_max=22,
                  remote_ip_prefix="192.168.0.0/16")
    with pytest.raises(openstack.exceptions.ConflictException) as err:
        # Protocol 6 is tcp, and host bits do not make it a different rule.
        _rule(os_conn, group, protocol="6", port_range_min="22", port_range_max=22, remote_ip_prefix="192.168.1.1/16")
    assert err.value.status_code == 409
    assert f"Security group rule already exists. Rule id is {first.id}." in str(err.value)


def test_bad_cidr_is_400(os_conn, fakecloud):
    group = os_conn.network.create_security_group(name="cidr")
    with pytest.raises(openstack.exceptions.BadRequestException) as err:
        _rule(os_conn, group, protocol="tcp", port_range_min=80, port_range_max=80, remote_ip_prefix="10.0.0.300/24")
    assert "Invalid input for remote_ip_prefix. Reason: '10.0.0.300/24' is not a valid IP subnet." in str(err.value)
    response = _raw(os_conn, fakecloud, "POST", "/security-group-rules", json={"security_group_rule": {
        "security_group_id": group.id, "direction": "ingress", "remote_ip_prefix": "nonsense"}})
    assert response.status_code == 400
    assert set(response.json()["NeutronError"]) >= {"type", "message", "detail"}


def test_ethertype_must_match_cidr_family(os_conn):
    group = os_conn.network.create_security_group(name="family")
    with pytest.raises(openstack.exceptions.BadRequestException) as err:
        _rule(os_conn, group, ether_type="IPv4", remote_ip_prefix="2001:db8::/32")
    assert "Conflicting value ethertype IPv4 for CIDR 2001:db8::/32" in str(err.value)
    rule = _rule(os_conn, group, ether_type="IPv6", remote_ip_prefix="2001:db8::/32")
    assert rule.ether_type == "IPv6"


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ({"protocol": "icmp", "port_range_min": 5432, "port_range_max": 5432}, "Invalid value for ICMP type"),
        ({"port_range_min": 22, "port_range_max": 22}, "Must also specify protocol if port range is given."),
        ({"protocol": "gre", "port_range_min": 22, "port_range_max": 22}, "Invalid protocol 47 for port range"),
        ({"protocol": "udp", "port_range_min": 100, "port_range_max": 10},
         "For TCP/UDP protocols, port_range_min must be <= port_range_max"),
        ({"protocol": "tcp", "port_range_min": 70000, "port_range_max": 70000}, "Invalid value for port 70000."),
        ({"protocol": "bogus"}, "Security group rule protocol bogus not supported."),
        ({"direction": "sideways"}, "Invalid input for direction."),
        ({"ether_type": "IPv5"}, "ethertype 'IPv5' not supported"),
        ({"remote_ip_prefix": "10.0.0.0/8", "remote_group_id": "x"}, "Only remote_ip_prefix or remote_group_id"),
    ],
)
def test_rule_validation_is_400(os_conn, attrs, message):
    group = os_conn.network.create_security_group(name="invalid")
    with pytest.raises(openstack.exceptions.BadRequestException) as err:
        _rule(os_conn, group, **attrs)
    assert message in str(err.value)
    assert len(os_conn.network.get_security_group(group.id).security_group_rules) == 2


def test_icmp_type_and_code_are_allowed(os_conn):
    group = os_conn.network.create_security_group(name="ping")
    rule = _rule(os_conn, group, protocol="icmp", port_range_min=8, port_range_max=0)
    assert (rule.protocol, rule.port_range_min, rule.port_range_max) == ("icmp", 8, 0)


def test_rule_in_unknown_group_is_404(os_conn):
    with pytest.raises(openstack.exceptions.NotFoundException) as err:
        os_conn.network.create_security_group_rule(security_group_id="no-such-group", direction="ingress")
    assert "Security group no-such-group does not exist" in str(err.value)


def test_bulk_rule_create_is_atomic(os_conn, fakecloud):
    group = os_conn.network.create_security_group(name="bulk")
    rules = [{"security_group_id": group.id, "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
              "port_range_min": str(port), "port_range_max": str(port), "remote_ip_prefix": "0.0.0.0/0"}
             for port in (80, 443, 8080)]
    created = _raw(os_conn, fakecloud, "POST", "/security-group-rules", json={"security_group_rules": rules})
    assert created.status_code == 201
    body = created.json()["security_group_rules"]
    assert [r["port_range_min"] for r in body] == [80, 443, 8080]
    bad = [dict(rules[0], port_range_min=9000, port_range_max=9000), dict(rules[1], remote_ip_prefix="300.0.0.0/8")]
    refused = _raw(os_conn, fakecloud, "POST", "/security-group-rules", json={"security_group_rules": bad})
    assert refused.status_code == 400
    assert len(os_conn.network.get_security_group(group.id).security_group_rules) == 5
    again = _raw(os_conn, fakecloud, "POST", "/security-group-rules", json={"security_group_rules": rules[:1]})
    assert again.status_code == 409 and again.json()["NeutronError"]["type"] == "SecurityGroupRuleExists"


def test_rule_delete(os_conn):
    group = os_conn.network.create_security_group(name="del-rule")
    rule = _rule(os_conn, group, protocol="tcp", port_range_min=3306, port_range_max=3306)
    os_conn.network.delete_security_group_rule(rule, ignore_missing=False)
    with pytest.raises(openstack.exceptions.NotFoundException):
        os_conn.network.get_security_group_rule(rule.id)
    with pytest.raises(openstack.exceptions.NotFoundException):
        os_conn.network.delete_security_group_rule(rule, ignore_missing=False)
    assert rule.id not in {r["id"] for r in os_conn.network.get_security_group(group.id).security_group_rules}


def test_group_update_and_delete(os_conn):
    group = os_conn.network.create_security_group(name="old")
    rule = _rule(os_conn, group, protocol="udp", port_range_min=53, port_range_max=53)
    updated = os_conn.network.update_security_group(group, name="new", description="renamed")
    assert (updated.name, updated.description) == ("new", "renamed")
    os_conn.network.delete_security_group(group, ignore_missing=False)
    with pytest.raises(openstack.exceptions.NotFoundException) as err:
        os_conn.network.get_security_group(group.id)
    assert f"Security group {group.id} does not exist" in str(err.value)
    with pytest.raises(openstack.exceptions.NotFoundException):
        os_conn.network.get_security_group_rule(rule.id)


def test_default_group_is_protected(os_conn):
    default = os_conn.network.find_security_group("default", ignore_missing=False)
    with pytest.raises(openstack.exceptions.ConflictException):
        os_conn.network.delete_security_group(default)
    with pytest.raises(openstack.exceptions.ConflictException):
        os_conn.network.create_security_group(name="default")
    assert os_conn.network.get_security_group(default.id).name == "default"


def test_group_in_use_by_a_port_cannot_be_deleted(os_conn):
    group = os_conn.network.create_security_group(name="in-use")
    network = os_conn.network.find_network("private", ignore_missing=False)
    port = os_conn.network.create_port(network_id=network.id, security_group_ids=[group.id], name="p1")
    assert port.security_group_ids == [group.id]
    with pytest.raises(openstack.exceptions.ConflictException) as err:
        os_conn.network.delete_security_group(group)
    assert f"Security Group {group.id} in use." in str(err.value)
    os_conn.network.update_port(port, security_group_ids=[])
    os_conn.network.delete_security_group(group, ignore_missing=False)
    with pytest.raises(openstack.exceptions.NotFoundException):
        os_conn.network.find_security_group(group.id, ignore_missing=False)


def test_rule_quota_is_409_overquota(os_conn, os_admin, fakecloud):
    project = os_conn.current_project_id
    group = os_conn.network.create_security_group(name="quota")
    used = os_conn.network.get_quota(project, details=True).security_group_rules["used"]
    assert used == 6  # default group's 4 and this group's 2
    os_admin.network.update_quota(project, security_group_rules=used + 1)
    assert os_conn.network.get_quota(project).security_group_rules == used + 1
    _rule(os_conn, group, protocol="tcp", port_range_min=1, port_range_max=1)
    with pytest.raises(openstack.exceptions.ConflictException) as err:
        _rule(os_conn, group, protocol="tcp", port_range_min=2, port_range_max=2)
    assert "Quota exceeded for resources: ['security_group_rule']." in str(err.value)
    refused = _raw(os_conn, fakecloud, "POST", "/security-group-rules", json={"security_group_rule": {
        "security_group_id": group.id, "direction": "egress", "protocol": "udp"}})
    assert refused.json()["NeutronError"]["type"] == "OverQuota"
    with pytest.raises(openstack.exceptions.ForbiddenException):
        os_conn.network.update_quota(project, security_group_rules=1000)


def test_default_network_and_subnet(os_conn, fakecloud):
    networks = {n.name: n for n in os_conn.network.networks()}
    assert {"private", "public"} <= set(networks)
    private, public = networks["private"], networks["public"]
    assert private.project_id == os_conn.current_project_id and private.status == "ACTIVE"
    assert public.is_shared and public.is_router_external
    subnet = os_conn.network.get_subnet(private.subnet_ids[0])
    cidr = ipaddress.ip_network(subnet.cidr)
    assert cidr.prefixlen == 16 and cidr.subnet_of(ipaddress.ip_network("127.0.0.0/8")), "reachable from the host"
    assert cidr != ipaddress.ip_network("127.0.0.0/16"), "the host's own services keep 127.0.0.0/16"
    assert (subnet.name, subnet.gateway_ip) == ("private-subnet", str(cidr[1]))
    assert subnet.allocation_pools == [{"start": str(cidr[2]), "end": str(cidr[-2])}]
    public_subnet = os_conn.network.get_subnet(public.subnet_ids[0])
    assert ipaddress.ip_network(public_subnet.cidr).subnet_of(ipaddress.ip_network("127.0.0.0/8"))
    assert not ipaddress.ip_network(public_subnet.cidr).overlaps(cidr)
    external = list(os_conn.network.networks(is_router_external=True))
    assert [n.name for n in external] == ["public"]
    only_ids = _raw(os_conn, fakecloud, "GET", "/networks", params={"fields": "id", "name": "private"}).json()
    assert only_ids == {"networks": [{"id": private.id}]}


def test_ports_get_distinct_addresses(os_conn, fakecloud):
    network = os_conn.network.find_network("private", ignore_missing=False)
    ports = [os_conn.network.create_port(network_id=network.id, device_id=f"dev-{i}", device_owner="compute:nova")
             for i in range(3)]
    addresses = [p.fixed_ips[0]["ip_address"] for p in ports]
    assert len(set(addresses)) == 3 and len({p.mac_address for p in ports}) == 3
    cidr = ipaddress.ip_network(os_conn.network.get_subnet(network.subnet_ids[0]).cidr)
    assert all(ipaddress.ip_address(a) in cidr for a in addresses)
    default = os_conn.network.find_security_group("default", ignore_missing=False)
    assert all(p.security_group_ids == [default.id] for p in ports)
    listed = list(os_conn.network.ports(device_id="dev-1"))
    assert [p.id for p in listed] == [ports[1].id]
    assert fakecloud.cloud.network.server_addresses("dev-1") == {"private": [{
        "addr": addresses[1], "version": 4, "OS-EXT-IPS:type": "fixed",
        "OS-EXT-IPS-MAC:mac_addr": ports[1].mac_address}]}
    os_conn.network.delete_port(ports[0], ignore_missing=False)
    again = os_conn.network.create_port(network_id=network.id, name="reuse")
    assert again.fixed_ips[0]["ip_address"] == addresses[0]
    with pytest.raises(openstack.exceptions.ConflictException):
        os_conn.network.create_port(network_id=network.id, fixed_ips=[{"ip_address": addresses[1]}])


def test_addresses_are_handed_out_in_order_and_released_ones_reused(os_conn):
    network = os_conn.network.find_network("private", ignore_missing=False)

    def port(**attrs):
        return os_conn.network.create_port(network_id=network.id, **attrs)

    def address(p):
        return p.fixed_ips[0]["ip_address"]

    subnet_id = network.subnet_ids[0]
    cidr = ipaddress.ip_network(os_conn.network.get_subnet(subnet_id).cidr)

    def nth(n: int) -> str:
        return str(cidr[n])

    first, second, third = port(), port(), port()
    assert [address(p) for p in (first, second, third)] == [nth(2), nth(3), nth(4)]
    pinned = port(fixed_ips=[{"ip_address": nth(263)}])  # outside the first /24, inside the /16
    assert address(pinned) == nth(263)
    os_conn.network.delete_port(second, ignore_missing=False)
    assert address(port()) == nth(3), "the released address is handed out again first"
    assert address(port()) == nth(5), "then the cursor carries on"
    # A request refused halfway (its second address is taken) gives back the address it had picked.
    with pytest.raises(openstack.exceptions.ConflictException):
        port(fixed_ips=[{"subnet_id": subnet_id}, {"subnet_id": subnet_id, "ip_address": nth(2)}])
    assert address(port()) == nth(6)
    os_conn.network.delete_port(pinned, ignore_missing=False)
    assert address(port(fixed_ips=[{"ip_address": nth(263)}])) == nth(263)


def test_server_deletion_keeps_a_port_the_user_made(os_conn):
    network = os_conn.network.find_network("private", ignore_missing=False)
    mine = os_conn.network.create_port(network_id=network.id, name="mine")
    image = next(os_conn.image.images(name="cirros-0.6.2"))
    server = os_conn.compute.create_server(name="on-my-port", image_id=image.id, flavor_id="1",
                                           networks=[{"port": mine.id}, {"uuid": network.id}])
    server = os_conn.compute.wait_for_server(server, interval=0.05, wait=10)
    ports = {p.id: p for p in os_conn.network.ports(device_id=server.id)}
    assert mine.id in ports and len(ports) == 2
    (made,) = [p for p in ports.values() if p.id != mine.id]
    assert ports[mine.id].device_owner == "compute:nova"
    shown = os_conn.compute.get_server(server.id)
    assert [a["addr"] for a in shown.addresses["private"]] == [
        mine.fixed_ips[0]["ip_address"], made.fixed_ips[0]["ip_address"]]
    os_conn.compute.delete_server(server)
    os_conn.compute.wait_for_delete(server, interval=0.05, wait=10)
    kept = os_conn.network.get_port(mine.id)
    assert (kept.device_id, kept.device_owner, kept.status) == ("", "", "DOWN")
    assert kept.fixed_ips == mine.fixed_ips
    with pytest.raises(openstack.exceptions.NotFoundException):  # the port Nova made went with the server
        os_conn.network.find_port(made.id, ignore_missing=False)
    assert list(os_conn.network.ports(device_id=server.id)) == []


def test_projects_are_isolated_and_admin_sees_all(os_conn, os_admin):
    admin_group = os_admin.network.create_security_group(name="admin-only")
    demo_group = os_conn.network.create_security_group(name="demo-only")
    with pytest.raises(openstack.exceptions.NotFoundException):
        os_conn.network.get_security_group(admin_group.id)
    with pytest.raises(openstack.exceptions.NotFoundException):
        os_conn.network.delete_security_group(admin_group.id, ignore_missing=False)
    assert admin_group.id not in {g.id for g in os_conn.network.security_groups()}
    everything = {g.id for g in os_admin.network.security_groups()}
    assert {admin_group.id, demo_group.id} <= everything
    only_demo = list(os_admin.network.security_groups(project_id=os_conn.current_project_id))
    assert {g.name for g in only_demo} == {"default", "demo-only"}
    assert os_admin.network.get_security_group(demo_group.id).project_id == os_conn.current_project_id


def test_request_faults_apply_by_op(os_conn, fakecloud):
    fakecloud.control.add_fault(service="network", operation="security_group.create", action="http_error",
                                status=503, count=1)
    with pytest.raises(openstack.exceptions.HttpException) as err:
        os_conn.network.create_security_group(name="flaky")
    assert err.value.status_code == 503
    assert os_conn.network.create_security_group(name="flaky").name == "flaky"


def test_state_is_saved_and_inventoried(os_conn, fakecloud, tmp_path):
    group = os_conn.network.create_security_group(name="kept")
    rule = _rule(os_conn, group, protocol="tcp", port_range_min=5432, port_range_max=5432)
    inventory = fakecloud.control.inventory("demo")
    kept = [g for g in inventory["security_groups"] if g["id"] == group.id]
    assert rule.id in {r["id"] for r in kept[0]["security_group_rules"]}
    assert "private" in {n["name"] for n in inventory["networks"]}
    path = tmp_path / "state.json"
    fakecloud.control.save(str(path))
    saved = json.loads(path.read_text())["backends"]["network"]
    assert rule.id in {r["id"] for r in saved["security_group_rules"]}


def test_port_fixed_ips_can_be_changed_and_a_taken_address_is_refused(os_conn):
    network = os_conn.network.find_network("private", ignore_missing=False)
    subnet_id = network.subnet_ids[0]
    wanted = str(ipaddress.ip_network(os_conn.network.get_subnet(subnet_id).cidr)[775])
    first = os_conn.network.create_port(network_id=network.id)
    second = os_conn.network.create_port(network_id=network.id)
    moved = os_conn.network.update_port(first, fixed_ips=[{"subnet_id": subnet_id, "ip_address": wanted}])
    assert [ip["ip_address"] for ip in moved.fixed_ips] == [wanted]
    taken = second.fixed_ips[0]["ip_address"]
    with pytest.raises(openstack.exceptions.ConflictException):
        os_conn.network.update_port(first, fixed_ips=[{"subnet_id": subnet_id, "ip_address": taken}])
    assert [ip["ip_address"] for ip in os_conn.network.get_port(first.id).fixed_ips] == [wanted]
    replacement = os_conn.network.create_port(network_id=network.id)
    assert replacement.fixed_ips[0]["ip_address"] != wanted


# networks: update, external visibility ---------------------------------------------------------
def test_network_update(os_conn, fakecloud):
    network = os_conn.network.create_network(name="before")
    revision = network.revision_number  # the SDK updates `network` in place
    updated = os_conn.network.update_network(network, name="after", description="renamed", is_admin_state_up=False,
                                             mtu=1400)
    assert (updated.name, updated.description, updated.is_admin_state_up, updated.mtu) == (
        "after", "renamed", False, 1400)
    assert updated.revision_number == revision + 1
    shown = _raw(os_conn, fakecloud, "GET", f"/networks/{network.id}").json()["network"]
    assert (shown["name"], shown["admin_state_up"], shown["mtu"]) == ("after", False, 1400)

    def put(body, conn=os_conn):
        return _raw(conn, fakecloud, "PUT", f"/networks/{network.id}", json={"network": body})

    too_big = put({"mtu": 9000})
    assert too_big.status_code == 400
    assert too_big.json()["NeutronError"]["message"] == ("Invalid input for operation: Requested MTU is too big, "
                                                         "maximum is 1500.")
    assert put({"mtu": -1}).status_code == 400
    assert put({"status": "DOWN"}).json()["NeutronError"]["message"] == "Cannot update read-only attribute status"
    assert put({"colour": "red"}).json()["NeutronError"]["message"] == "Unrecognized attribute(s) 'colour'"
    shared = put({"shared": True})
    assert shared.status_code == 403
    assert shared.json()["NeutronError"]["message"] == "(rule:update_network:shared) is disallowed by policy"
    missing = _raw(os_conn, fakecloud, "PUT", "/networks/no-such-net", json={"network": {"name": "x"}})
    assert missing.status_code == 404


def test_unsharing_a_network_others_use_is_409(os_conn, os_admin, fakecloud):
    shared = os_admin.network.create_network(name="common", shared=True)
    os_admin.network.create_subnet(network_id=shared.id, cidr="192.168.50.0/24", ip_version=4)
    renamed = os_conn.network.update_network  # the demo project may not touch admin's network
    with pytest.raises(openstack.exceptions.ForbiddenException):
        renamed(shared, name="mine")
    port = os_conn.network.create_port(network_id=shared.id)
    response = _raw(os_admin, fakecloud, "PUT", f"/networks/{shared.id}", json={"network": {"shared": False}})
    assert response.status_code == 409
    assert response.json()["NeutronError"] == {
        "type": "InvalidSharedSetting", "detail": "",
        "message": f"Unable to reconfigure sharing settings for network {shared.id}. Multiple projects are using it."}
    os_conn.network.delete_port(port)
    assert os_admin.network.update_network(shared, is_shared=False).is_shared is False


def test_external_networks_are_visible_to_every_project(os_conn, os_admin, fakecloud):
    external = os_admin.network.create_network(name="ext", is_router_external=True)
    subnet = os_admin.network.create_subnet(network_id=external.id, cidr="203.0.113.0/24", ip_version=4)
    assert (external.is_router_external, external.is_shared) == (True, False)
    assert external.id in {n.id for n in os_conn.network.networks()}
    shown = os_conn.network.get_network(external.id)
    assert shown.project_id == os_admin.current_project_id, "still owned by its creator"
    assert os_conn.network.get_subnet(subnet.id).cidr == "203.0.113.0/24"
    assert subnet.id in {s.id for s in os_conn.network.subnets()}
    port = _raw(os_conn, fakecloud, "POST", "/ports", json={"port": {"network_id": external.id}})
    assert port.status_code == 403
    assert port.json()["NeutronError"]["message"] == (f"Tenant {os_conn.current_project_id} not allowed to create "
                                                      "port on this network")
    with pytest.raises(openstack.exceptions.ForbiddenException):
        os_conn.network.update_network(external, name="taken")
    with pytest.raises(openstack.exceptions.ForbiddenException):
        os_conn.network.delete_subnet(subnet)
    private = os_admin.network.create_network(name="admin-only")
    assert private.id not in {n.id for n in os_conn.network.networks()}
    with pytest.raises(openstack.exceptions.NotFoundException):
        os_conn.network.get_network(private.id)


# subnets: pools, DNS, routes, delete --------------------------------------------------------------
def test_subnet_pools_dns_and_routes_are_stored_and_shown(os_conn, fakecloud):
    network = os_conn.network.create_network(name="pooled")
    subnet = os_conn.network.create_subnet(
        network_id=network.id, cidr="10.10.0.0/24", ip_version=4, gateway_ip="10.10.0.1",
        allocation_pools=[{"start": "10.10.0.100", "end": "10.10.0.101"}, {"start": "10.10.0.50", "end": "10.10.0.50"}],
        dns_nameservers=["8.8.8.8", "1.1.1.1"], host_routes=[{"destination": "10.20.0.0/16", "nexthop": "10.10.0.254"}])
    shown = _raw(os_conn, fakecloud, "GET", f"/subnets/{subnet.id}").json()["subnet"]
    assert shown["allocation_pools"] == [{"start": "10.10.0.50", "end": "10.10.0.50"},
                                         {"start": "10.10.0.100", "end": "10.10.0.101"}]
    assert shown["dns_nameservers"] == ["8.8.8.8", "1.1.1.1"]
    assert shown["host_routes"] == [{"destination": "10.20.0.0/16", "nexthop": "10.10.0.254"}]
    ports = [os_conn.network.create_port(network_id=network.id) for _ in range(3)]
    assert [p.fixed_ips[0]["ip_address"] for p in ports] == ["10.10.0.50", "10.10.0.100", "10.10.0.101"]
    full = _raw(os_conn, fakecloud, "POST", "/ports", json={"port": {"network_id": network.id}})
    assert full.status_code == 409 and full.json()["NeutronError"]["type"] == "IpAddressGenerationFailure"
    outside = os_conn.network.create_port(network_id=network.id,
                                          fixed_ips=[{"subnet_id": subnet.id, "ip_address": "10.10.0.7"}])
    assert outside.fixed_ips[0]["ip_address"] == "10.10.0.7", "an address asked for may lie outside the pools"
    os_conn.network.delete_port(ports[1])
    assert os_conn.network.create_port(network_id=network.id).fixed_ips[0]["ip_address"] == "10.10.0.100"


def test_default_pool_skips_a_gateway_in_the_middle(os_conn, fakecloud):
    network = os_conn.network.create_network(name="mid-gw")
    subnet = os_conn.network.create_subnet(network_id=network.id, cidr="10.30.0.0/29", ip_version=4,
                                           gateway_ip="10.30.0.3")
    assert subnet.allocation_pools == [{"start": "10.30.0.1", "end": "10.30.0.2"},
                                       {"start": "10.30.0.4", "end": "10.30.0.6"}]
    addresses = [os_conn.network.create_port(network_id=network.id).fixed_ips[0]["ip_address"] for _ in range(5)]
    assert addresses == ["10.30.0.1", "10.30.0.2", "10.30.0.4", "10.30.0.5", "10.30.0.6"]


@pytest.mark.parametrize(("pools", "gateway", "status", "error_type", "message"), [
    ([{"start": "10.40.0.10", "end": "10.40.1.5"}], "10.40.0.1", 400, "OutOfBoundsAllocationPool",
     "The allocation pool 10.40.0.10-10.40.1.5 spans beyond the subnet cidr 10.40.0.0/24."),
    ([{"start": "10.40.0.0", "end": "10.40.0.5"}], "10.40.0.254", 400, "OutOfBoundsAllocationPool",
     "The allocation pool 10.40.0.0-10.40.0.5 spans beyond the subnet cidr 10.40.0.0/24."),
    ([{"start": "10.40.0.20", "end": "10.40.0.10"}], "10.40.0.1", 400, "InvalidAllocationPool",
     "The allocation pool 10.40.0.20-10.40.0.10 is not valid."),
    ([{"start": "10.40.0.10", "end": "10.40.0.20"}, {"start": "10.40.0.15", "end": "10.40.0.30"}], "10.40.0.1", 409,
     "OverlappingAllocationPools",
     "Found overlapping allocation pools: 10.40.0.10-10.40.0.20 10.40.0.15-10.40.0.30 for subnet 10.40.0.0/24."),
    ([{"start": "10.40.0.1", "end": "10.40.0.20"}], None, 409, "GatewayConflictWithAllocationPools",
     "Gateway ip 10.40.0.1 conflicts with allocation pool 10.40.0.1-10.40.0.20."),
    ([{"start": "10.40.0.10"}], "10.40.0.1", 400, "HTTPBadRequest",
     "Invalid input for allocation_pools. Reason: Invalid data format for IP pool: '{'start': '10.40.0.10'}'."),
])
def test_bad_allocation_pools_are_refused(os_conn, fakecloud, pools, gateway, status, error_type, message):
    network = os_conn.network.create_network(name="bad-pools")
    body = {"network_id": network.id, "cidr": "10.40.0.0/24", "ip_version": 4, "allocation_pools": pools}
    if gateway is not None:
        body["gateway_ip"] = gateway
    response = _raw(os_conn, fakecloud, "POST", "/subnets", json={"subnet": body})
    assert response.status_code == status
    error = response.json()["NeutronError"]
    assert (error["type"], error["message"]) == (error_type, message)
    assert os_conn.network.get_network(network.id).subnet_ids == []


def test_bad_dns_or_routes_are_400(os_conn, fakecloud):
    network = os_conn.network.create_network(name="bad-dns")
    base = {"network_id": network.id, "cidr": "10.50.0.0/24", "ip_version": 4}
    for extra in ({"dns_nameservers": ["not-an-ip"]}, {"dns_nameservers": ["8.8.8.8", "8.8.8.8"]},
                  {"host_routes": [{"destination": "10.0.0.0/33", "nexthop": "10.50.0.1"}]},
                  {"host_routes": [{"destination": "10.0.0.0/8"}]}):
        response = _raw(os_conn, fakecloud, "POST", "/subnets", json={"subnet": {**base, **extra}})
        assert response.status_code == 400, extra


def test_subnet_delete(os_conn, fakecloud):
    network = os_conn.network.create_network(name="deletable")
    subnet = os_conn.network.create_subnet(network_id=network.id, cidr="10.60.0.0/24", ip_version=4)
    port = os_conn.network.create_port(network_id=network.id)
    busy = _raw(os_conn, fakecloud, "DELETE", f"/subnets/{subnet.id}")
    assert busy.status_code == 409
    assert busy.json()["NeutronError"] == {
        "type": "SubnetInUse", "detail": "",
        "message": f"Unable to complete operation on subnet {subnet.id}: One or more ports have an IP allocation "
                   "from this subnet."}
    os_conn.network.delete_port(port)
    gone = _raw(os_conn, fakecloud, "DELETE", f"/subnets/{subnet.id}")
    assert gone.status_code == 204 and gone.content == b""
    assert os_conn.network.get_network(network.id).subnet_ids == []
    assert _raw(os_conn, fakecloud, "GET", f"/subnets/{subnet.id}").status_code == 404
    assert _raw(os_conn, fakecloud, "DELETE", f"/subnets/{subnet.id}").status_code == 404
    os_conn.network.delete_network(network, ignore_missing=False)


# tempest's Neutron surface: bulk create, the fixed_ips filter, agents, external network delete -------------------
def test_bulk_create_is_all_or_nothing(os_conn, fakecloud):
    made = _raw(os_conn, fakecloud, "POST", "/networks", json={"networks": [{"name": "b1"}, {"name": "b2"}]})
    assert made.status_code == 201
    nets = made.json()["networks"]
    assert [n["name"] for n in nets] == ["b1", "b2"]
    subnets = _raw(os_conn, fakecloud, "POST", "/subnets", json={"subnets": [
        {"network_id": nets[0]["id"], "cidr": "10.20.0.0/24", "ip_version": 4},
        {"network_id": nets[1]["id"], "cidr": "10.21.0.0/24", "ip_version": 4}]})
    assert subnets.status_code == 201 and len(subnets.json()["subnets"]) == 2
    ports = _raw(os_conn, fakecloud, "POST", "/ports", json={"ports": [{"network_id": n["id"]} for n in nets]})
    assert ports.status_code == 201 and [p["network_id"] for p in ports.json()["ports"]] == [n["id"] for n in nets]
    # the second item fails: the first is rolled back
    before = {p.id for p in os_conn.network.ports()}
    failed = _raw(os_conn, fakecloud, "POST", "/ports", json={"ports": [{"network_id": nets[0]["id"]},
                                                                         {"network_id": "no-such-network"}]})
    assert failed.status_code == 404
    assert {p.id for p in os_conn.network.ports()} == before
    assert _raw(os_conn, fakecloud, "POST", "/networks", json={"networks": []}).status_code == 400


def test_ports_filter_by_fixed_ip(os_conn, os_admin, fakecloud):
    net = os_conn.network.create_network(name="filter")
    subnet = os_conn.network.create_subnet(network_id=net.id, cidr="10.30.0.0/24", ip_version=4)
    first = os_conn.network.create_port(network_id=net.id)
    os_conn.network.create_port(network_id=net.id)
    address = first.fixed_ips[0]["ip_address"]
    for conn in (os_conn, os_admin):
        found = _raw(conn, fakecloud, "GET", "/ports", params={"fixed_ips": f"ip_address={address}"}).json()["ports"]
        assert [p["id"] for p in found] == [first.id]
    on_subnet = _raw(os_conn, fakecloud, "GET", "/ports", params={"fixed_ips": f"subnet_id={subnet.id}"}).json()
    assert len(on_subnet["ports"]) == 2


def test_agents_list_is_empty(os_conn, os_admin, fakecloud):
    for conn in (os_conn, os_admin):
        response = _raw(conn, fakecloud, "GET", "/agents")
        assert response.status_code == 200 and response.json()["agents"] == []


def test_deleting_an_external_network_deletes_its_floating_ips(os_admin, fakecloud):
    external = os_admin.network.create_network(name="ext-gone", is_router_external=True)
    os_admin.network.create_subnet(network_id=external.id, cidr="198.51.100.0/24", ip_version=4)
    fip = os_admin.network.create_ip(floating_network_id=external.id)
    os_admin.network.delete_network(external)
    assert fip.id not in {f.id for f in os_admin.network.ips()}
    assert not [p for p in os_admin.network.ports() if p.network_id == external.id]


def test_tags_on_resources_and_tag_filters(os_conn, os_admin, fakecloud):
    net = os_conn.network.create_network(name="tagged")
    subnet = os_conn.network.create_subnet(network_id=net.id, cidr="10.40.0.0/24", ip_version=4)
    port = os_conn.network.create_port(network_id=net.id)
    group = os_conn.network.create_security_group(name="tagged-sg")
    for collection, rid in (("networks", net.id), ("subnets", subnet.id), ("ports", port.id),
                            ("security-groups", group.id)):
        base = f"/{collection}/{rid}/tags"
        assert _raw(os_conn, fakecloud, "PUT", f"{base}/red").status_code == 201
        assert _raw(os_conn, fakecloud, "GET", f"{base}/red").status_code == 204
        assert _raw(os_conn, fakecloud, "GET", f"{base}/blue").status_code == 404
        assert _raw(os_conn, fakecloud, "GET", base).json() == {"tags": ["red"]}
        replaced = _raw(os_conn, fakecloud, "PUT", base, json={"tags": ["a", "b", "c"]})
        assert replaced.status_code == 200 and sorted(replaced.json()["tags"]) == ["a", "b", "c"]
        assert _raw(os_conn, fakecloud, "PUT", base, json={"tags": ["a", "a"]}).status_code == 400
        assert _raw(os_conn, fakecloud, "DELETE", f"{base}/b").status_code == 204
        assert _raw(os_conn, fakecloud, "DELETE", f"{base}/b").status_code == 404
        singular = collection.rstrip("s").replace("-", "_")
        shown = _raw(os_conn, fakecloud, "GET", f"/{collection}/{rid}").json()[singular]
        assert sorted(shown["tags"]) == ["a", "c"]
    nets = _raw(os_conn, fakecloud, "GET", "/networks", params={"tags": "a,c"}).json()["networks"]
    assert [n["id"] for n in nets] == [net.id]
    any_of = _raw(os_conn, fakecloud, "GET", "/networks", params={"tags-any": "zzz,c"}).json()["networks"]
    assert [n["id"] for n in any_of] == [net.id]
    assert net.id not in [n["id"] for n in _raw(os_conn, fakecloud, "GET", "/networks",
                                                   params={"not-tags-any": "a"}).json()["networks"]]
    assert _raw(os_conn, fakecloud, "DELETE", f"/networks/{net.id}/tags").status_code == 204
    assert _raw(os_conn, fakecloud, "GET", f"/networks/{net.id}/tags").json() == {"tags": []}
    # another project's resource: not seen (404); the shared public network: seen but not taggable (403)
    private = os_admin.network.create_network(name="admins")
    assert _raw(os_conn, fakecloud, "PUT", f"/networks/{private.id}/tags/x").status_code == 404
    public = os_conn.network.find_network("public", ignore_missing=False)
    assert _raw(os_conn, fakecloud, "PUT", f"/networks/{public.id}/tags/x").status_code == 403
    assert _raw(os_conn, fakecloud, "GET", f"/widgets/{net.id}/tags").status_code == 404


def test_subnet_pools_are_stored_tagged_and_only_grow(os_conn, os_admin, fakecloud):
    made = _raw(os_conn, fakecloud, "POST", "/subnetpools",
                json={"subnetpool": {"name": "pool", "prefixes": ["10.50.0.0/16", "10.51.0.0/16"]}})
    assert made.status_code == 201
    pool = made.json()["subnetpool"]
    assert (pool["prefixes"], pool["ip_version"]) == (["10.50.0.0/15"], 4)  # collapsed, as Neutron stores them
    assert (pool["min_prefixlen"], pool["default_prefixlen"], pool["max_prefixlen"]) == (8, 8, 32)
    assert _raw(os_conn, fakecloud, "PUT", f"/subnetpools/{pool['id']}/tags/blue").status_code == 201
    assert _raw(os_conn, fakecloud, "GET", f"/subnetpools/{pool['id']}").json()["subnetpool"]["tags"] == ["blue"]
    shrink = _raw(os_conn, fakecloud, "PUT", f"/subnetpools/{pool['id']}",
                  json={"subnetpool": {"prefixes": ["10.50.0.0/16"]}})
    assert shrink.status_code == 400
    grown = _raw(os_conn, fakecloud, "PUT", f"/subnetpools/{pool['id']}",
                 json={"subnetpool": {"prefixes": ["10.50.0.0/15", "10.60.0.0/16"], "name": "bigger"}})
    assert grown.status_code == 200 and grown.json()["subnetpool"]["prefixes"] == ["10.50.0.0/15", "10.60.0.0/16"]
    bad = [{"prefixes": ["10.0.0.0/8", "fd00::/64"]}, {"prefixes": ["10.0.0.0/8"], "min_prefixlen": 30,
                                                         "max_prefixlen": 24}, {"name": "no-prefixes"}]
    for body in bad:
        assert _raw(os_conn, fakecloud, "POST", "/subnetpools", json={"subnetpool": body}).status_code == 400
    shared = {"subnetpool": {"name": "s", "prefixes": ["10.70.0.0/16"], "shared": True}}
    assert _raw(os_conn, fakecloud, "POST", "/subnetpools", json=shared).status_code == 403
    assert _raw(os_admin, fakecloud, "POST", "/subnetpools", json=shared).status_code == 201
    listed = _raw(os_conn, fakecloud, "GET", "/subnetpools").json()["subnetpools"]
    assert {p["name"] for p in listed} == {"bigger", "s"}  # its own, and the shared one
    network = fakecloud.cloud.network
    saved = network.dump()
    network.load(saved)
    assert network.subnetpools.by_id[pool["id"]].tags == ["blue"]
    assert _raw(os_conn, fakecloud, "DELETE", f"/subnetpools/{pool['id']}").status_code == 204
    assert _raw(os_conn, fakecloud, "GET", f"/subnetpools/{pool['id']}").status_code == 404
