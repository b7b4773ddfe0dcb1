"""python-troveclient, unchanged, through the Keystone catalog's `database` endpoint."""

from __future__ import annotations

import pytest
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3
from troveclient import exceptions as trove_exceptions
from troveclient.v1 import client as trove_client


@pytest.fixture
def trove(hearth_api):
    sess = ks_session.Session(auth=v3.Password(**hearth_api.cloud.auth("demo")))
    return trove_client.Client(session=sess, region_name="RegionOne")


def test_troveclient_drives_an_instance(hearth_api, trove):
    assert {f.name for f in trove.flavors.list()} >= {"m1.tiny", "m1.small"}
    assert [d.name for d in trove.datastores.list()] == ["postgresql", "mysql"]

    created = trove.instances.create("tc-db", "1", volume={"size": 1}, datastore="postgresql",
                                     datastore_version="16")
    assert created.status == "BUILD"
    hearth_api.settle()
    inst = trove.instances.get(created.id)
    assert (inst.status, inst.volume["size"], inst.flavor["id"]) == ("ACTIVE", 1, "1")
    assert [i.id for i in trove.instances.list()] == [created.id]

    trove.instances.resize_volume(created.id, 2)
    hearth_api.settle()
    assert trove.instances.get(created.id).volume["size"] == 2
    assert hearth_api.cloud_resource("volumes", created.id)["size"] == 2

    server_id = hearth_api.cloud_resource("servers", created.id)["id"]
    trove.instances.resize_instance(created.id, "2")
    hearth_api.settle()
    assert trove.instances.get(created.id).flavor["id"] == "2"
    conn = hearth_api.cloud.connect()  # the cloud itself: the same server now runs flavor 2, volume still attached
    server = conn.compute.get_server(server_id)
    assert (server.status, server.flavor.original_name) == ("ACTIVE", conn.compute.get_flavor("2").name)
    volume = conn.block_storage.get_volume(hearth_api.cloud_resource("volumes", created.id)["id"])
    assert (volume.size, [a["server_id"] for a in volume.attachments]) == (2, [server_id])

    trove.instances.update(created.id, allowed_cidrs=["10.20.0.0/16"])
    hearth_api.settle()
    assert trove.instances.get(created.id).access["allowed_cidrs"] == ["10.20.0.0/16"]
    assert hearth_api.cloud_rules(created.id) == {("tcp", 5432, 5432, "10.20.0.0/16")}

    rules = trove.security_group_rules.create(created.id, "10.30.0.0/16")
    assert [r["cidr"] for r in rules] == ["10.30.0.0/16"]
    hearth_api.settle()
    group = trove.security_groups.get(created.id)
    assert sorted(r["cidr"] for r in group.rules) == ["10.20.0.0/16", "10.30.0.0/16"]
    trove.security_group_rules.delete(rules[0]["id"])
    hearth_api.settle()
    assert hearth_api.cloud_rules(created.id) == {("tcp", 5432, 5432, "10.20.0.0/16")}

    with pytest.raises(trove_exceptions.BadRequest, match="must be larger than the current volume size of '2'"):
        trove.instances.resize_volume(created.id, 1)

    trove.instances.delete(created.id)
    hearth_api.settle()
    with pytest.raises(trove_exceptions.NotFound):
        trove.instances.get(created.id)
    assert hearth_api.leftovers() == {}
