"""Neutron's standard-attr-tag: tags on networks, subnets, ports, security groups, routers, floating IPs and
subnet pools (`/v2.0/{collection}/{id}/tags[/{tag}]`).

Why apart: the tag API is one controller over every taggable resource in Neutron too. It finds the record
through the backend's own visibility-checked getters (a resource the caller cannot see is a 404), lets only
its project or an admin change the tags (403), and bumps the record's revision like any other update.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from openstack_fakecloud.errors import BadRequest, Forbidden, NotFound

if TYPE_CHECKING:
    from openstack_fakecloud.network.backend import NetworkBackend

MAX_TAG_LEN = 255  # neutron/extensions/tagging.py

# URL collection -> (the backend getter, Neutron's singular name for errors and policy)
TAGGABLE: dict[str, tuple[Callable[[NetworkBackend], Callable[..., Any]], str]] = {
    "networks": (lambda net: net.get_network, "network"),
    "subnets": (lambda net: net.get_subnet, "subnet"),
    "ports": (lambda net: net.get_port, "port"),
    "security-groups": (lambda net: net.get_security_group, "security_group"),
    "routers": (lambda net: net.get_router, "router"),
    "floatingips": (lambda net: net.get_floating_ip, "floatingip"),
    "subnetpools": (lambda net: net.subnetpools.get, "subnetpool"),
}


def check_tag(tag: Any) -> str:
    if not isinstance(tag, str) or not tag or len(tag) > MAX_TAG_LEN:
        raise BadRequest(f"Invalid input for operation: '{tag}' is not a valid string of at most {MAX_TAG_LEN} "
                         "characters.", error_type="InvalidInput")
    return tag


def check_tags(body: Any) -> list[str]:
    """A `{"tags": [...]}` body: unique strings (Neutron's validate_list_of_unique_strings)."""
    if not isinstance(body, dict) or not isinstance(body.get("tags"), list):
        raise BadRequest("Invalid input for operation: Invalid tags body.", error_type="InvalidInput")
    tags = [check_tag(t) for t in body["tags"]]
    if len(set(tags)) != len(tags):
        raise BadRequest(f"Invalid input for operation: Duplicate items in the list: {tags}.",
                         error_type="InvalidInput")
    return tags


def tagged(net: NetworkBackend, collection: str, resource_id: str, project_id: str, admin: bool,
           write: bool = False) -> Any:
    """The record whose tags are asked for; `write`: the caller must own it (or be an admin)."""
    if collection not in TAGGABLE:
        raise NotFound(f"The resource could not be found: {collection}.")
    getter, singular = TAGGABLE[collection]
    record = getter(net)(resource_id, project_id, admin)
    if write and not admin and record.project_id != project_id:
        raise Forbidden(f"(rule:update_{singular}_tags) is disallowed by policy")
    return record


def set_tags(record: Any, tags: list[str], now: str) -> list[str]:
    """Replace the record's tags (kept in first-seen order, without duplicates)."""
    unique = list(dict.fromkeys(tags))
    if unique != record.tags:
        record.tags = unique
        record.updated_at = now
        record.revision_number += 1
    return list(record.tags)


def require_tag(record: Any, tag: str) -> None:
    if tag not in record.tags:
        raise NotFound(f"Tag {tag} could not be found.", error_type="TagNotFound")
