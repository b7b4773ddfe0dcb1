"""The HOT template builder: deterministic, complete, tagged with the instance id."""

import yaml

from hearth.engines import templates
from hearth.engines.base import InstanceSpec, RuleSpec


def _spec(**changes) -> InstanceSpec:
    base = InstanceSpec(
        instance_id="0b0c9c9e-1111-4222-8333-444455556666",
        name="db1",
        project_id="p1",
        flavor_id="2",
        image_id="img-1",
        volume_size=1,
        rules=(
            RuleSpec(id="r2", protocol="tcp", from_port=5432, to_port=5432, cidr="10.0.0.0/24"),
            RuleSpec(id="r1", protocol="tcp", from_port=5432, to_port=5432, cidr="192.168.1.0/24"),
        ),
    )
    return base.replace(**changes)


def test_same_spec_renders_identically_whatever_the_rule_order():
    spec = _spec()
    reordered = spec.replace(rules=tuple(reversed(spec.rules)))
    assert templates.render(spec) == templates.render(spec)
    assert templates.render(spec) == templates.render(reordered)


def test_template_holds_every_resource_named_for_the_instance():
    spec = _spec()
    template = yaml.safe_load(templates.render(spec))
    resources = template["resources"]
    assert set(resources) == {"security_group", "data_volume", "server", "data_volume_attachment"}
    assert resources["server"]["properties"]["name"] == f"hearth-{spec.instance_id}-{spec.name}"
    assert resources["server"]["properties"]["flavor_update_policy"] == "RESIZE"
    assert resources["data_volume"]["properties"]["name"] == f"hearth-{spec.instance_id}-data"
    assert resources["security_group"]["properties"]["name"] == f"hearth-{spec.instance_id}"
    assert resources["server"]["properties"]["metadata"]["hearth_instance_id"] == spec.instance_id
    cidrs = [r["remote_ip_prefix"] for r in resources["security_group"]["properties"]["rules"]]
    assert cidrs == ["10.0.0.0/24", "192.168.1.0/24"]
    assert set(template["outputs"]) == {"server_id", "volume_id", "security_group_id"}
    assert templates.stack_name(spec.instance_id) == f"hearth-{spec.instance_id}"


def test_network_gives_a_port_carrying_the_group():
    template = templates.build(_spec(network_id="net-1"))
    port = template["resources"]["port"]
    assert port["properties"]["network"] == "net-1"
    assert port["properties"]["security_groups"] == [{"get_resource": "security_group"}]
    assert template["resources"]["server"]["properties"]["networks"] == [{"port": {"get_resource": "port"}}]
    assert "security_groups" not in template["resources"]["server"]["properties"]


def test_parameters_carry_what_operations_change():
    assert templates.parameters(_spec(flavor_id="3", volume_size=2)) == {
        "flavor": "3", "image": "img-1", "volume_size": 2,
    }
