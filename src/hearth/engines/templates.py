"""HOT templates for Hearth instances: a pure function from desired state to a Heat template.

The same `InstanceSpec` always gives the same template, byte for byte (`render`), so a stack's
template can be compared with the instance's recorded state at any time. Every resource is named
or tagged with the instance id, and the stack is named `hearth-<instance id>`.
"""

from __future__ import annotations

from typing import Any

import yaml

from hearth.engines import common
from hearth.engines.base import InstanceSpec, RuleSpec

HOT_VERSION = "2018-08-31"

# Logical resource names inside every Hearth stack.
SECURITY_GROUP = "security_group"
DATA_VOLUME = "data_volume"
PORT = "port"
SERVER = "server"
ATTACHMENT = "data_volume_attachment"

OUTPUT_SERVER = "server_id"
OUTPUT_VOLUME = "volume_id"
OUTPUT_SECGROUP = "security_group_id"


def stack_name(instance_id: str) -> str:
    return f"hearth-{instance_id}"


def parameters(spec: InstanceSpec) -> dict[str, Any]:
    """The values passed with every create and update: what changes between operations."""
    return {"flavor": spec.flavor_id, "image": spec.image_id, "volume_size": spec.volume_size}


def _rule(rule: RuleSpec) -> dict[str, Any]:
    shape = common.rule_body(rule, secgroup_id="")
    entry: dict[str, Any] = {
        "direction": "ingress",
        "ethertype": rule.ethertype,
        "remote_mode": "remote_ip_prefix",
        "remote_ip_prefix": shape["remote_ip_prefix"],
    }
    if shape["protocol"]:
        entry["protocol"] = shape["protocol"]
        entry["port_range_min"] = shape["port_range_min"]
        entry["port_range_max"] = shape["port_range_max"]
    return entry


def _sorted_rules(rules: tuple[RuleSpec, ...]) -> list[RuleSpec]:
    """Rules in a stable order (by what they open, then Hearth id) so equal specs render equally."""
    return sorted(rules, key=lambda r: (r.protocol, r.from_port, r.to_port, r.cidr, r.id))


def build(spec: InstanceSpec) -> dict[str, Any]:
    """The HOT template (as a dict, keys in a fixed, readable order) for one instance."""
    metadata = common.resource_metadata(spec)
    resources: dict[str, Any] = {
        SECURITY_GROUP: {
            "type": "OS::Neutron::SecurityGroup",
            "properties": {
                "name": common.secgroup_name(spec.instance_id),
                "description": common.secgroup_description(spec),
                "rules": [_rule(r) for r in _sorted_rules(spec.rules)],
            },
        },
        DATA_VOLUME: {
            "type": "OS::Cinder::Volume",
            "properties": {
                "name": common.volume_name(spec.instance_id),
                "size": {"get_param": "volume_size"},
                "metadata": metadata,
            },
        },
    }
    server_properties: dict[str, Any] = {
        "name": common.server_name(spec.instance_id),
        "flavor": {"get_param": "flavor"},
        "flavor_update_policy": "RESIZE",
        "image": {"get_param": "image"},
        "metadata": metadata,
    }
    if spec.network_id:
        resources[PORT] = {
            "type": "OS::Neutron::Port",
            "properties": {
                "name": f"hearth-{spec.instance_id}-port",
                "network": spec.network_id,
                "security_groups": [{"get_resource": SECURITY_GROUP}],
            },
        }
        server_properties["networks"] = [{"port": {"get_resource": PORT}}]
    else:
        server_properties["networks"] = [{"allocate_network": "auto"}]
        server_properties["security_groups"] = [{"get_resource": SECURITY_GROUP}]
    if spec.availability_zone:
        server_properties["availability_zone"] = spec.availability_zone
        resources[DATA_VOLUME]["properties"]["availability_zone"] = spec.availability_zone
    resources[SERVER] = {"type": "OS::Nova::Server", "properties": server_properties}
    resources[ATTACHMENT] = {
        "type": "OS::Cinder::VolumeAttachment",
        "properties": {"instance_uuid": {"get_resource": SERVER}, "volume_id": {"get_resource": DATA_VOLUME}},
    }
    return {
        "heat_template_version": HOT_VERSION,
        "description": f"Hearth database instance {spec.name} ({spec.instance_id})",
        "parameters": {
            "flavor": {"type": "string", "description": "Nova flavor of the database server"},
            "image": {"type": "string", "description": "Glance image of the datastore version"},
            "volume_size": {
                "type": "number",
                "description": "Size of the data volume in GiB (grow only)",
                "constraints": [{"range": {"min": 1}}],
            },
        },
        "resources": resources,
        "outputs": {
            OUTPUT_SERVER: {"description": "Nova server id", "value": {"get_resource": SERVER}},
            OUTPUT_VOLUME: {"description": "Cinder volume id", "value": {"get_resource": DATA_VOLUME}},
            OUTPUT_SECGROUP: {"description": "Neutron security group id", "value": {"get_resource": SECURITY_GROUP}},
        },
    }


def render(spec: InstanceSpec) -> str:
    """The template as YAML text: deterministic, so two renders of one spec are identical."""
    return yaml.safe_dump(build(spec), sort_keys=False, default_flow_style=False, width=120)
