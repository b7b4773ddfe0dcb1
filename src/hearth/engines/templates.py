"""HOT templates for Hearth instances: a pure function from desired state to a Heat template.

The same `InstanceSpec` always gives the same template, byte for byte (`render`), so a stack's
template can be compared with the instance's recorded state at any time. Every resource is named
or tagged with the instance id, and the stack is named `hearth-<instance id>`.
"""

from __future__ import annotations

from typing import Any

import yaml

from hearth.engines import resources
from hearth.engines.base import InstanceSpec

HOT_VERSION = "2018-08-31"

# Logical resource names and outputs, as resources.py declares them (kept here for callers of the builder).
SECURITY_GROUP, DATA_VOLUME, PORT, SERVER, ATTACHMENT = (
    resources.SECURITY_GROUP, resources.DATA_VOLUME, resources.PORT, resources.SERVER, resources.ATTACHMENT)
OUTPUT_SERVER, OUTPUT_VOLUME, OUTPUT_SECGROUP = (
    resources.OUTPUT_SERVER, resources.OUTPUT_VOLUME, resources.OUTPUT_SECGROUP)


def stack_name(instance_id: str) -> str:
    return f"hearth-{instance_id}"


def parameters(spec: InstanceSpec) -> dict[str, Any]:
    """The values passed with every create and update: what changes between operations."""
    values: dict[str, Any] = {resources.PARAM_FLAVOR: spec.flavor_id, resources.PARAM_IMAGE: spec.image_id,
                              resources.PARAM_VOLUME_SIZE: spec.volume_size}
    if spec.admin_password is not None:  # plans leave it out (the template's default stands in)
        values[resources.PARAM_ADMIN_PASS] = spec.admin_password
    if spec.user_data is not None:
        values[resources.PARAM_USER_DATA] = spec.user_data
    return values


#: Parameters Heat hides (shows as asterisks): never compared with what the stack holds.
HIDDEN_PARAMETERS = frozenset({resources.PARAM_ADMIN_PASS, resources.PARAM_USER_DATA})


def build(spec: InstanceSpec) -> dict[str, Any]:
    """The HOT template (as a dict, keys in a fixed, readable order) for one instance: its resources and
    outputs are the HOT fragments of resources.KINDS."""
    fragments = resources.hot_resources(spec)
    return {
        "heat_template_version": HOT_VERSION,
        "description": f"Hearth database instance {spec.name} ({spec.instance_id})",
        "parameters": {
            resources.PARAM_FLAVOR: {"type": "string", "description": "Nova flavor of the database server"},
            resources.PARAM_IMAGE: {"type": "string", "description": "Glance image of the datastore version"},
            resources.PARAM_VOLUME_SIZE: {
                "type": "number",
                "description": "Size of the data volume in GiB (grow only)",
                "constraints": [{"range": {"min": 1}}],
            },
            resources.PARAM_ADMIN_PASS: {"type": "string", "hidden": True, "default": "",
                                         "description": "Password of the database superuser (the server's "
                                                        "adminPass)"},
            resources.PARAM_USER_DATA: {"type": "string", "hidden": True, "default": "",
                                        "description": "Cloud-init user data of stock images (empty for images "
                                                       "that take the adminPass)"},
        },
        "resources": fragments,
        "outputs": resources.hot_outputs(fragments),
    }


def render(spec: InstanceSpec) -> str:
    """The template as YAML text: deterministic, so two renders of one spec are identical."""
    return yaml.safe_dump(build(spec), sort_keys=False, default_flow_style=False, width=120)
