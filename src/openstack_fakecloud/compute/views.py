"""Nova's JSON views, shaped by the negotiated microversion (what each field looks like and when it appears).

Views only read: the server record here, its ports from Neutron and its attachments from Cinder.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import TYPE_CHECKING, Any

from openstack_fakecloud.compute.backend import (
    AVAILABILITY_ZONE,
    HOST,
    Flavor,
    InstanceAction,
    Keypair,
    Server,
    ServerGroup,
)
from openstack_fakecloud.framework import Version

if TYPE_CHECKING:
    from openstack_fakecloud.state import Cloud

V2_2, V2_3, V2_9, V2_13, V2_16, V2_19, V2_26 = (2, 2), (2, 3), (2, 9), (2, 13), (2, 16), (2, 19), (2, 26)
V2_54, V2_64 = (2, 54), (2, 64)
V2_36, V2_47, V2_51, V2_55, V2_57, V2_58, V2_61, V2_62 = (
    (2, 36), (2, 47), (2, 51), (2, 55), (2, 57), (2, 58), (2, 61), (2, 62))
V2_63, V2_70, V2_71, V2_73, V2_75, V2_79, V2_89, V2_96 = (
    (2, 63), (2, 70), (2, 71), (2, 73), (2, 75), (2, 79), (2, 89), (2, 96))

# Nova's fixed per-project limits that fakecloud does not model as quotas.
FIXED_LIMITS = {"metadata_items": 128, "key_pairs": 100, "server_groups": 10, "server_group_members": 10,
                "injected_files": 5, "injected_file_content_bytes": 10240, "injected_file_path_bytes": 255}


def _links(cloud: Cloud, kind: str, ident: str) -> list[dict[str, str]]:
    base = cloud.base_url + "/compute"
    return [{"rel": "self", "href": f"{base}/v2.1/{kind}/{ident}"},
            {"rel": "bookmark", "href": f"{base}/{kind}/{ident}"}]


# flavors ------------------------------------------------------------------------------------
def flavor_brief(cloud: Cloud, flavor: Flavor, version: Version) -> dict[str, Any]:
    view: dict[str, Any] = {"id": flavor.id, "name": flavor.name, "links": _links(cloud, "flavors", flavor.id)}
    if version >= V2_55:
        view["description"] = flavor.description
    return view


def flavor_detail(cloud: Cloud, flavor: Flavor, version: Version) -> dict[str, Any]:
    view = flavor_brief(cloud, flavor, version)
    view.update({
        "ram": flavor.ram, "disk": flavor.disk, "vcpus": flavor.vcpus,
        # Nova printed a zero swap as "" until 2.75.
        "swap": flavor.swap if flavor.swap or version >= V2_75 else "",
        "OS-FLV-EXT-DATA:ephemeral": flavor.ephemeral, "OS-FLV-DISABLED:disabled": False,
        "os-flavor-access:is_public": flavor.is_public, "rxtx_factor": flavor.rxtx_factor,
    })
    if version >= V2_61:
        view["extra_specs"] = dict(flavor.extra_specs)
    return view


def embedded_flavor(cloud: Cloud, flavor: Flavor, version: Version) -> dict[str, Any]:
    """The server's flavor: a copy of its values from 2.47, a link to the flavor before."""
    if version >= V2_47:
        return {"vcpus": flavor.vcpus, "ram": flavor.ram, "disk": flavor.disk, "ephemeral": flavor.ephemeral,
                "swap": flavor.swap, "original_name": flavor.name, "extra_specs": dict(flavor.extra_specs)}
    return {"id": flavor.id, "links": [{"rel": "bookmark", "href": f"{cloud.base_url}/compute/flavors/{flavor.id}"}]}


# servers ------------------------------------------------------------------------------------
def server_brief(cloud: Cloud, server: Server) -> dict[str, Any]:
    return {"id": server.id, "name": server.name, "links": _links(cloud, "servers", server.id)}


def server_created(cloud: Cloud, server: Server, admin_pass: str) -> dict[str, Any]:
    """The 202 body of a create: no status, so clients must poll. The only view that carries adminPass."""
    return {"id": server.id, "links": _links(cloud, "servers", server.id), "OS-DCF:diskConfig": server.disk_config,
            "security_groups": [{"name": g["name"]} for g in server.security_groups], "adminPass": admin_pass}


def server_detail(cloud: Cloud, server: Server, version: Version, is_admin: bool) -> dict[str, Any]:
    status = server.status
    image: Any = ""
    if server.image_id:
        image = {"id": server.image_id,
                 "links": [{"rel": "bookmark", "href": f"{cloud.base_url}/compute/images/{server.image_id}"}]}
    volumes = []
    for attachment in cloud.volume.attachments_of_server(server.id):
        entry: dict[str, Any] = {"id": attachment.volume_id}
        if version >= V2_3:
            options = server.volume_options.get(attachment.volume_id, {})
            entry["delete_on_termination"] = bool(options.get("delete_on_termination", False))
        volumes.append(entry)
    view: dict[str, Any] = {
        "id": server.id,
        "name": server.name,
        "status": status,
        "tenant_id": server.project_id,
        "user_id": server.user_id,
        "metadata": dict(server.metadata),
        "hostId": "" if status == "BUILD" else server.host_id,
        "image": image,
        "flavor": embedded_flavor(cloud, server.flavor, version),
        "created": server.created,
        "updated": server.updated,
        "addresses": cloud.network.server_addresses(server.id),
        "accessIPv4": server.access_ipv4,
        "accessIPv6": server.access_ipv6,
        "links": _links(cloud, "servers", server.id),
        "key_name": server.key_name,
        "config_drive": server.config_drive,
        "OS-DCF:diskConfig": server.disk_config,
        "OS-EXT-AZ:availability_zone": server.availability_zone,
        "OS-EXT-STS:task_state": server.task_state,
        "OS-EXT-STS:vm_state": server.vm_state,
        "OS-EXT-STS:power_state": server.power_state,
        "OS-SRV-USG:launched_at": server.launched_at,
        "OS-SRV-USG:terminated_at": None,
        "os-extended-volumes:volumes_attached": volumes,
    }
    if status in _PROGRESS_STATUSES:
        view["progress"] = 0
    if server.security_groups:  # Nova leaves the key out for a server in no group
        view["security_groups"] = [{"name": g["name"]} for g in server.security_groups]
    if status in ("ERROR", "DELETED") and server.fault is not None:
        view["fault"] = dict(server.fault)
    if is_admin:
        view["OS-EXT-SRV-ATTR:host"] = None if status == "BUILD" else HOST
        view["OS-EXT-SRV-ATTR:hypervisor_hostname"] = None if status == "BUILD" else HOST
        view["OS-EXT-SRV-ATTR:instance_name"] = f"instance-{server.seq:08x}"
        if version >= V2_3:
            view.update({
                "OS-EXT-SRV-ATTR:reservation_id": server.reservation_id or f"r-{server.seq:08x}",
                "OS-EXT-SRV-ATTR:launch_index": server.launch_index,
                "OS-EXT-SRV-ATTR:hostname": server.name,
                "OS-EXT-SRV-ATTR:kernel_id": "",
                "OS-EXT-SRV-ATTR:ramdisk_id": "",
                "OS-EXT-SRV-ATTR:root_device_name": "/dev/vda",
                "OS-EXT-SRV-ATTR:user_data": server.user_data,
            })
        if version >= V2_16:
            view["host_status"] = "UP"
    if version >= V2_9:
        view["locked"] = server.locked
    if version >= V2_19:
        view["description"] = server.description
    if version >= V2_26:
        view["tags"] = list(server.tags)
    if version >= V2_63:
        view["trusted_image_certificates"] = None
    if version >= V2_71:
        view["server_groups"] = cloud.compute.server_groups_of(server)
    if version >= V2_73:
        view["locked_reason"] = server.locked_reason
    if version >= V2_96:
        view["pinned_availability_zone"] = None
    return view


# The statuses in which Nova's view shows `progress`.
_PROGRESS_STATUSES = frozenset({"ACTIVE", "BUILD", "REBUILD", "RESIZE", "VERIFY_RESIZE", "MIGRATING"})

# The fields Nova's update answer shows below 2.75 (and, with the microversion fields, its show view's core).
_UPDATE_FIELDS = frozenset({
    "id", "name", "status", "tenant_id", "user_id", "metadata", "hostId", "image", "flavor", "created", "updated",
    "addresses", "accessIPv4", "accessIPv6", "links", "OS-DCF:diskConfig", "progress", "fault",
    "locked", "description", "tags", "trusted_image_certificates", "server_groups", "locked_reason",
    "pinned_availability_zone",
})


def server_updated(cloud: Cloud, server: Server, version: Version, is_admin: bool) -> dict[str, Any]:
    """PUT /servers/{id}: the show view, but below 2.75 Nova leaves out the extended attributes (AZ, key name,
    config drive, OS-EXT-*, OS-SRV-USG, security groups, volumes) and shows addresses unextended."""
    view = server_detail(cloud, server, version, is_admin)
    if version >= V2_75:
        return view
    view = {key: value for key, value in view.items() if key in _UPDATE_FIELDS}
    view["addresses"] = addresses(cloud, server)
    if version < V2_71:
        view.pop("server_groups", None)
    return view


def server_rebuilt(cloud: Cloud, server: Server, version: Version, is_admin: bool) -> dict[str, Any]:
    """The rebuild answer: the update view, plus key_name from 2.54 and user_data from 2.57."""
    view = server_updated(cloud, server, version, is_admin)
    if version >= V2_54:
        view["key_name"] = server.key_name
    if version >= V2_57:
        view["user_data"] = server.user_data
    return view


def server_group_view(group: ServerGroup, version: Version) -> dict[str, Any]:
    """os-server-groups: `policies` and `metadata` until 2.64, then `policy` and `rules`; owners from 2.13."""
    view: dict[str, Any] = {"id": group.id, "name": group.name, "members": list(group.members)}
    if version >= V2_64:
        view["policy"] = group.policy
        view["rules"] = dict(group.rules)
    else:
        view["policies"] = [group.policy]
        view["metadata"] = {}
    if version >= V2_13:
        view["project_id"] = group.project_id
        view["user_id"] = group.user_id
    return view


def proxied_volume(volume: Any) -> dict[str, Any]:
    """A Cinder volume as Nova's os-volumes proxy shows it (camelCase; `[{}]` when attached nowhere)."""
    attachments = [{"id": a.id, "volumeId": volume.id, "serverId": a.server_id, "device": a.device}
                   for a in volume.attachments if a.status in ("attached", "detaching")]
    return {
        "id": volume.id, "status": volume.status, "size": volume.size,
        "availabilityZone": volume.availability_zone, "createdAt": volume.created_at,
        "attachments": attachments or [{}], "displayName": volume.name,
        "displayDescription": volume.description, "volumeType": volume.volume_type,
        "snapshotId": volume.snapshot_id, "metadata": dict(volume.metadata),
    }


def addresses(cloud: Cloud, server: Server) -> dict[str, list[dict[str, Any]]]:
    """Nova's plain addresses (`/ips`, and the update answer): version and address, no OS-EXT-IPS fields."""
    return {label: [{"version": ip["version"], "addr": ip["addr"]} for ip in ips]
            for label, ips in cloud.network.server_addresses(server.id).items()}


# instance actions ---------------------------------------------------------------------------
def instance_action(action: InstanceAction, version: Version, events: bool = False,
                    is_admin: bool = False) -> dict[str, Any]:
    """os-instance-actions: `updated_at` from 2.58. In a show, events go to admins (with tracebacks) at every
    microversion and to owners from 2.51; 2.62 adds an obfuscated hostId, and the host for admins."""
    view: dict[str, Any] = {
        "action": action.action, "instance_uuid": action.instance_uuid, "request_id": action.request_id,
        "user_id": action.user_id, "project_id": action.project_id, "start_time": action.start_time,
        "message": action.message,
    }
    if version >= V2_58:
        view["updated_at"] = action.updated_at
    if events and (is_admin or version >= V2_51):
        rendered = []
        for event in action.events:
            entry: dict[str, Any] = {"event": event.event, "start_time": event.start_time,
                                     "finish_time": event.finish_time, "result": event.result}
            if is_admin:
                entry["traceback"] = event.traceback
            if version >= V2_62:
                if is_admin:
                    entry["host"] = HOST
                entry["hostId"] = hashlib.sha224((action.project_id + HOST).encode()).hexdigest()
            rendered.append(entry)
        view["events"] = rendered
    return view


# attachments, interfaces, security groups ---------------------------------------------------
def attachment_view(server: Server, attachment: Any, version: Version, created: bool = False) -> dict[str, Any]:
    """Nova's volumeAttachment: `id` is the volume id (dropped from reads at 2.89, for attachment_id)."""
    options = server.volume_options.get(attachment.volume_id, {})
    view: dict[str, Any] = {"device": attachment.device, "serverId": server.id, "volumeId": attachment.volume_id}
    if created or version < V2_89:
        view["id"] = attachment.volume_id
    if version >= V2_70:
        view["tag"] = options.get("tag")
    if version >= V2_79:
        view["delete_on_termination"] = bool(options.get("delete_on_termination", False))
    if version >= V2_89:
        view["attachment_id"] = attachment.id
        view["bdm_uuid"] = options.get("bdm_uuid")
    return view


def interface_view(port: Any, version: Version) -> dict[str, Any]:
    view: dict[str, Any] = {
        "port_state": port.status, "port_id": port.id, "net_id": port.network_id, "mac_addr": port.mac_address,
        "fixed_ips": [{"subnet_id": ip["subnet_id"], "ip_address": ip["ip_address"]} for ip in port.fixed_ips],
    }
    if version >= V2_70:
        view["tag"] = None
    return view


def security_group_view(group: Any) -> dict[str, Any]:
    return {"id": group.id, "name": group.name, "description": getattr(group, "description", ""),
            "tenant_id": group.project_id, "rules": []}


def keypair_view(keypair: Keypair, version: Version, private_key: str | None = None, detail: bool = False,
                 created: bool = False) -> dict[str, Any]:
    """Nova's keypair: `type` from 2.2; a create and a show carry the owner's user_id."""
    view: dict[str, Any] = {"name": keypair.name, "public_key": keypair.public_key,
                            "fingerprint": keypair.fingerprint}
    if version >= V2_2:
        view["type"] = keypair.type
    if private_key is not None:
        view["private_key"] = private_key
    if created:
        view["user_id"] = keypair.user_id
    if detail:
        view.update({"user_id": keypair.user_id, "created_at": keypair.created_at, "deleted": False,
                     "deleted_at": None, "updated_at": None,
                     "id": int(keypair.fingerprint.replace(":", "")[:6], 16)})
    return view


# limits and quotas --------------------------------------------------------------------------
def limits_view(limits: dict[str, int], usage: dict[str, int], version: Version) -> dict[str, Any]:
    absolute: dict[str, Any] = {
        "maxTotalInstances": limits["instances"], "totalInstancesUsed": usage["instances"],
        "maxTotalCores": limits["cores"], "totalCoresUsed": usage["cores"],
        "maxTotalRAMSize": limits["ram"], "totalRAMUsed": usage["ram"],
        "maxServerMeta": FIXED_LIMITS["metadata_items"], "maxImageMeta": FIXED_LIMITS["metadata_items"],
        "maxTotalKeypairs": FIXED_LIMITS["key_pairs"], "maxServerGroups": FIXED_LIMITS["server_groups"],
        "maxServerGroupMembers": FIXED_LIMITS["server_group_members"], "totalServerGroupsUsed": 0,
    }
    if version < V2_57:
        absolute["maxPersonality"] = FIXED_LIMITS["injected_files"]
        absolute["maxPersonalitySize"] = FIXED_LIMITS["injected_file_content_bytes"]
    if version < V2_36:
        absolute.update({"maxSecurityGroups": limits["security_groups"],
                         "maxSecurityGroupRules": limits["security_group_rules"], "maxTotalFloatingIps": 10,
                         "totalSecurityGroupsUsed": 0, "totalFloatingIpsUsed": 0})
    return {"limits": {"rate": [], "absolute": absolute}}


def quota_set_view(project_id: str, limits: dict[str, int], usage: dict[str, int] | None,
                   version: Version) -> dict[str, Any]:
    """os-quota-sets: plain limits, or {"in_use", "limit", "reserved"} per resource for /detail."""
    values = {"instances": limits["instances"], "cores": limits["cores"], "ram": limits["ram"],
              "key_pairs": FIXED_LIMITS["key_pairs"], "metadata_items": FIXED_LIMITS["metadata_items"],
              "server_groups": FIXED_LIMITS["server_groups"],
              "server_group_members": FIXED_LIMITS["server_group_members"]}
    if version < V2_57:
        for key in ("injected_files", "injected_file_content_bytes", "injected_file_path_bytes"):
            values[key] = FIXED_LIMITS[key]
    if version < V2_36:
        values.update({"fixed_ips": -1, "floating_ips": 10, "security_groups": limits["security_groups"],
                       "security_group_rules": limits["security_group_rules"]})
    quota_set: dict[str, Any] = {"id": project_id}
    for key, limit in values.items():
        quota_set[key] = limit if usage is None else {"limit": limit, "in_use": usage.get(key, 0), "reserved": 0}
    return {"quota_set": quota_set}


def availability_zones(detail: bool) -> dict[str, Any]:
    zone: dict[str, Any] = {"zoneName": AVAILABILITY_ZONE, "zoneState": {"available": True}, "hosts": None}
    if detail:
        zone["hosts"] = {HOST: {"nova-compute": {"available": True, "active": True, "updated_at": None}}}
    return {"availabilityZoneInfo": [zone]}


def hypervisor(cloud: Cloud, version: Version, _admin: bool, detail: bool = False) -> dict[str, Any]:
    """The one compute host every server runs on (HOST); its id is a uuid from 2.53, an integer before."""
    ident: int | str = 1 if version < (2, 53) else str(uuid.uuid5(uuid.NAMESPACE_URL, f"fakecloud:{HOST}"))
    view: dict[str, Any] = {"id": ident, "hypervisor_hostname": HOST, "state": "up", "status": "enabled"}
    if detail:
        servers = list(cloud.compute.servers.values())
        view.update({"host_ip": "127.0.0.1", "hypervisor_type": "fake", "hypervisor_version": 1000,
                     "service": {"host": HOST, "id": ident, "disabled_reason": None}})
        if version < (2, 88):
            view.update({"vcpus": 1024, "vcpus_used": sum(s.flavor.vcpus for s in servers),
                         "memory_mb": 1 << 22, "memory_mb_used": sum(s.flavor.ram for s in servers),
                         "local_gb": 1 << 14, "local_gb_used": sum(s.flavor.disk for s in servers),
                         "free_ram_mb": (1 << 22) - sum(s.flavor.ram for s in servers),
                         "free_disk_gb": (1 << 14) - sum(s.flavor.disk for s in servers),
                         "current_workload": 0, "running_vms": len(servers), "disk_available_least": 1 << 14,
                         "cpu_info": "{}"})
    return view
