"""The natives engine's steps for each built-in resource kind: create (or reuse) and delete one resource
with direct Nova, Cinder and Neutron calls, and the waits they need.

Each step records the cloud id in the operation journal the moment the cloud returns it, and first looks
for what an earlier (interrupted) attempt made, so an operation can be resumed or cleaned up from its
journal. `resources.KINDS` says which step belongs to which kind and what each depends on; the natives
engine runs them (in parallel where the dependencies allow).
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from openstack import exceptions as os_exceptions
from openstack.connection import Connection

from hearth.config import Settings
from hearth.engines import common
from hearth.engines.base import EngineError, InstanceSpec, OperationContext, RuleSpec
from hearth.engines.common import WaitKind, call, get_or_none, retried, wait_for, wait_for_gone

SETTLED_SERVER = ("ACTIVE", "SHUTOFF")  # where a resize starts from and returns to (Nova keeps a stopped server off)


@dataclass
class Made:
    """What a create step leaves for the steps after it: the resource's cloud id and what it read last."""

    id: str | None
    value: Any = None


@dataclass
class StepEnv:
    """What one natives step gets: the operation, its (thread-safe) context and the earlier steps' results."""

    spec: InstanceSpec
    ctx: OperationContext
    settings: Settings
    connect: Callable[[], Connection]  # the calling thread's own Connection
    fresh: bool = False  # the operation's first attempt: nothing of an earlier one can exist
    resolved: common.Resolved | None = None
    results: dict[str, Made] = field(default_factory=dict)

    def conn(self) -> Connection:
        return self.connect()


def ordered_ids(*candidates: str | None) -> list[str]:
    return list(dict.fromkeys(c for c in candidates if c))


def plain_server(conn: Connection, server_id: str) -> common.Plain:
    return common.read_plain(conn.compute, f"/servers/{server_id}", "server")


def plain_volume(conn: Connection, volume_id: str) -> common.Plain:
    return common.read_plain(conn.block_storage, f"/volumes/{volume_id}", "volume")


# waits -------------------------------------------------------------------------------------------
def wait_server(conn: Connection, settings: Settings, server_id: str, kind: WaitKind, what: str,
                done: Callable[[Any], bool] | None = None, plain: bool = False) -> Any:
    """`plain`: poll the JSON (common.Plain) when `done` looks only at the status (not at the flavor)."""
    fetch = (lambda: plain_server(conn, server_id)) if plain else (lambda: conn.compute.get_server(server_id))
    return wait_for(fetch, done or (lambda s: s.status == "ACTIVE"), common.server_failure, what,
                    timeout=None, settings=settings, kind=kind)


def wait_volume(conn: Connection, settings: Settings, volume_id: str, kind: WaitKind, what: str,
                done: Callable[[Any], bool]) -> Any:
    return wait_for(lambda: plain_volume(conn, volume_id), done, common.volume_failure, what,
                    timeout=None, settings=settings, kind=kind)


# volume ------------------------------------------------------------------------------------------
def volume_step(env: StepEnv) -> Made:
    conn, spec, ctx = env.conn(), env.spec, env.ctx
    volume = None
    if ctx.journal.get("volume_id"):
        volume = get_or_none("reading volume", conn.block_storage.get_volume, ctx.journal["volume_id"])
    if volume is None and not env.fresh:
        volume = next((v for v in common.find_volumes(conn, spec.instance_id) if v.status != "deleting"), None)
        if volume is not None:
            ctx.record(volume_id=volume.id)
    if volume is not None:
        ctx.event(f"reusing volume {volume.id} from an earlier attempt")
    else:
        attrs: dict[str, Any] = {"name": common.volume_name(spec.instance_id), "size": spec.volume_size,
                                 "metadata": common.resource_metadata(spec),
                                 "description": common.volume_description(spec)}
        if spec.availability_zone:
            attrs["availability_zone"] = spec.availability_zone
        if spec.volume_type:
            attrs["volume_type"] = spec.volume_type
        volume = call("creating the data volume", conn.block_storage.create_volume, **attrs)
        ctx.record(volume_id=volume.id)
        ctx.event(f"volume {volume.id} ({spec.volume_size} GB) created")
    ready = wait_volume(conn, env.settings, volume.id, WaitKind.VOLUME_CREATE,
                        f"volume {volume.id} to become available", lambda v: v.status in ("available", "in-use"))
    return Made(volume.id, ready)


def delete_volume(env: StepEnv, volume_id: str) -> None:
    conn = env.conn()
    volume = get_or_none("reading volume", plain_volume, conn, volume_id)
    if volume is None:
        return
    if volume.status != "deleting":
        detach_all(conn, volume)
        if volume.attachments:
            wait_volume(conn, env.settings, volume_id, WaitKind.VOLUME_DETACH, f"volume {volume_id} to detach",
                        lambda v: not v.attachments and v.status not in ("detaching", "in-use"))
        common.delete_plain(conn.block_storage, f"/volumes/{volume_id}", f"deleting volume {volume_id}")

    def delete_failed(v: Any) -> str | None:
        return common.volume_failure(v) if v.status == "error_deleting" else None

    wait_for_gone(lambda: plain_volume(conn, volume_id), f"deletion of volume {volume_id}",
                  timeout=None, settings=env.settings, is_failed=delete_failed, kind=WaitKind.VOLUME_DELETE)
    env.ctx.event(f"volume {volume_id} deleted")


def detach_all(conn: Connection, volume: Any) -> None:
    """Ask Nova to detach the volume from every server it is attached to (a server already gone is skipped);
    the caller waits for Cinder to show it detached."""
    for attachment in volume.attachments or []:
        owner = attachment.get("server_id")
        server = get_or_none("reading server", conn.compute.get_server, owner) if owner else None
        if server is not None:
            common.ignore_not_found(f"detaching volume {volume.id} from server {owner}",
                                    conn.compute.delete_volume_attachment, server, volume.id, ignore_missing=False)


# security group ------------------------------------------------------------------------------------
def ensure_group(conn: Connection, spec: InstanceSpec, ctx: OperationContext, group_id: str | None = None,
                 look_for_existing: bool = True) -> tuple[str, bool]:
    """The instance's group id, and whether it was created just now (so it has no ingress rules yet)."""
    group = None
    for candidate in ordered_ids(group_id, ctx.journal.get("secgroup_id")):
        group = get_or_none("reading security group", conn.network.get_security_group, candidate)
        if group is not None:
            break
    if group is None and look_for_existing:
        group = next(iter(common.find_secgroups(conn, spec.instance_id)), None)
    created = group is None
    if group is None:
        group = call("creating the security group", conn.network.create_security_group,
                     name=common.secgroup_name(spec.instance_id), description=common.secgroup_description(spec))
        ctx.event(f"security group {group.id} created")
    if ctx.journal.get("secgroup_id") != group.id:
        ctx.record(secgroup_id=group.id)
    return group.id, created


def group_step(env: StepEnv) -> Made:
    group_id, created = ensure_group(env.conn(), env.spec, env.ctx, look_for_existing=not env.fresh)
    return Made(group_id, created)


def delete_group(env: StepEnv, group_id: str) -> None:
    delete_neutron(env, "security-groups", group_id, "security group")


def delete_neutron(env: StepEnv, collection: str, resource_id: str, label: str) -> None:
    """DELETE a Neutron resource, retried while Neutron answers 409 (a port still uses it); a resource gone
    already (404) is fine. Neutron deletes within the request: no read after."""
    conn = env.conn()

    def try_delete() -> bool:
        """True once the delete went through; False while Neutron still sees it in use."""
        response = conn.network.delete(f"/{collection}/{resource_id}")
        if response.status_code == 409:
            return False
        if response.status_code != 404:
            os_exceptions.raise_from_response(response)
        return True

    wait_for(try_delete, bool, lambda _done: None, f"deletion of {label} {resource_id}",
             timeout=min(env.settings.operation_timeout_seconds, 120.0), settings=env.settings,
             after_change=False, kind=WaitKind.NEUTRON_DELETE)
    env.ctx.event(f"{label} {resource_id} deleted")


# rules -------------------------------------------------------------------------------------------
def rules_step(env: StepEnv) -> Made:
    group = env.results["security_group"]
    recorded = {hid: RuleSpec(hid, "", 0, 0, "", cid) for hid, cid in (env.ctx.journal.get("rule_ids") or {}).items()}
    assert group.id is not None
    rules = converge_rules(env.conn(), env.spec, group.id, recorded, env.ctx, group_is_new=bool(group.value))
    return Made(None, rules)


def realised_rules(conn: Connection, group_id: str, recorded: dict[str, RuleSpec]) -> dict[str, RuleSpec]:
    """The group's ingress rules keyed by the Hearth rule they realise (recorded id, else description)."""
    actual = common.ingress_rules(conn, group_id)
    by_cloud_id = {r.cloud_id: hid for hid, r in recorded.items() if r.cloud_id}
    realised: dict[str, RuleSpec] = {}
    for rule in actual:
        key = by_cloud_id.get(rule.id) or common.hearth_rule_id(rule) or f"cloud:{rule.id}"
        if key in realised:
            key = f"cloud:{rule.id}"
        _ethertype, protocol, pmin, pmax, cidr = common.neutron_shape(rule)
        realised[key] = RuleSpec(key, protocol or "any", -1 if pmin is None else pmin,
                                 -1 if pmax is None else pmax, cidr, rule.id)
    return realised


def converge_rules(conn: Connection, spec: InstanceSpec, group_id: str, recorded: dict[str, RuleSpec],
                   ctx: OperationContext, group_is_new: bool = False) -> dict[str, RuleSpec]:
    """Make the group hold exactly spec.rules: create what is missing, then delete what is stale.
    A group created by this attempt holds no ingress rule yet, so its rules are not listed."""
    realised = {} if group_is_new else realised_rules(conn, group_id, recorded)
    diff = common.diff_rules(spec.rules, realised)
    realised = dict(diff.keep)
    for rule in diff.to_create:
        cloud_id = create_rule(conn, rule, group_id)
        realised[rule.id] = dataclasses.replace(rule, cloud_id=cloud_id)
        ctx.event(f"rule {common.rule_text(rule)} added", rule_ids={hid: r.cloud_id for hid, r in realised.items()})
    ordered = {rule.id: realised[rule.id] for rule in spec.rules}
    rule_ids = {hid: r.cloud_id for hid, r in ordered.items()}
    for stale in diff.to_delete:
        if stale.cloud_id is None:  # diff_rules only deletes realised rules; anything else is a bug
            raise EngineError(f"cannot delete rule {stale.id}: it has no Neutron rule id")
        common.delete_plain(conn.network, f"/security-group-rules/{stale.cloud_id}",
                            f"deleting security group rule {stale.cloud_id}")
        ctx.event(f"rule {common.rule_text(stale)} removed", rule_ids=rule_ids)
    if ctx.journal.get("rule_ids") != rule_ids:  # not already written with the last event
        ctx.record(rule_ids=rule_ids)
    return ordered


def create_rule(conn: Connection, rule: RuleSpec, group_id: str) -> str:
    body = common.rule_body(rule, group_id)
    what = f"creating rule {common.rule_text(rule)}"
    try:
        return conn.network.create_security_group_rule(**body).id
    except os_exceptions.ConflictException as exc:
        existing = common.existing_rule_id(str(exc.details or ""))
        if existing is None:  # find the identical rule ourselves
            existing = next((r.id for r in common.ingress_rules(conn, group_id)
                             if common.neutron_shape(r) == common.rule_shape(rule)), None)
        if existing is None:
            raise common.engine_error(what, exc) from None
        return existing
    except common.CLOUD_ERRORS as exc:
        raise common.engine_error(what, exc) from None


# server ------------------------------------------------------------------------------------------
def server_step(env: StepEnv) -> Made:
    conn, spec, ctx, resolved = env.conn(), env.spec, env.ctx, env.resolved
    assert resolved is not None
    group_id = env.results["security_group"].id
    server = None
    if ctx.journal.get("server_id"):
        server = get_or_none("reading server", conn.compute.get_server, ctx.journal["server_id"])
    if server is None and not env.fresh:
        server = next(iter(common.find_servers(conn, spec.instance_id)), None)
        if server is not None:
            ctx.record(server_id=server.id)
    if server is not None:
        ctx.event(f"reusing server {server.id} from an earlier attempt")
    else:
        attrs: dict[str, Any] = {
            "name": common.server_name(spec.instance_id, spec.name),
            "flavor_id": resolved.flavor.id,
            "image_id": resolved.image.id,
            "metadata": common.resource_metadata(spec),
        }
        volume = env.results.get("volume")
        if volume is not None and volume.id and volume.value is not None and volume.value.status == "available":
            # The data volume is mapped at boot, as Trove does: the database (and a stock image's cloud-init,
            # which formats and mounts it on first boot) finds it there from the start; Nova attaches it as
            # part of the build, and the attachment step only confirms it.
            attrs["block_device_mapping"] = [
                {"boot_index": 0, "uuid": resolved.image.id, "source_type": "image", "destination_type": "local",
                 "delete_on_termination": True},
                {"boot_index": -1, "uuid": volume.id, "source_type": "volume", "destination_type": "volume",
                 "delete_on_termination": False},
            ]
        port = env.results.get("port")
        if port is not None and port.id:  # Hearth's own port: it carries the group already
            attrs["networks"] = [{"port": port.id}]
        else:
            attrs["networks"] = [{"uuid": resolved.network.id}] if resolved.network is not None else "auto"
            attrs["security_groups"] = [{"name": group_id}]
        if spec.admin_password:
            attrs["admin_password"] = spec.admin_password
        if spec.user_data:
            attrs["user_data"] = base64.b64encode(spec.user_data.encode()).decode()
        if spec.availability_zone:
            attrs["availability_zone"] = spec.availability_zone
        server = call("creating the server", conn.compute.create_server, **attrs)
        ctx.record(server_id=server.id)
        ctx.event(f"server {server.id} created (flavor {resolved.flavor.name})")
    ready = wait_server(conn, env.settings, server.id, WaitKind.SERVER_BOOT, f"server {server.id} to become ACTIVE",
                        plain=True)
    return Made(server.id, ready)


def delete_server(env: StepEnv, server_id: str) -> None:
    conn = env.conn()
    server = get_or_none("reading server", plain_server, conn, server_id)
    if server is None:
        return
    fault_before = (server.fault or {}).get("message") if server.status == "ERROR" else None

    def delete_failed(s: Any) -> str | None:
        if s.status != "ERROR" or s.task_state == "deleting":
            return None
        if (s.fault or {}).get("message") == fault_before:
            return None
        return common.server_failure(s)

    common.delete_plain(conn.compute, f"/servers/{server_id}", f"deleting server {server_id}")
    wait_for_gone(lambda: plain_server(conn, server_id), f"deletion of server {server_id}",
                  timeout=None, settings=env.settings, is_failed=delete_failed, kind=WaitKind.SERVER_DELETE)
    env.ctx.event(f"server {server_id} deleted")


# restart and rebuild: server actions both engines share (Heat has no reboot; its rebuild is an image change)
def reboot(conn: Connection, settings: Settings, server_id: str, ctx: OperationContext) -> Any:
    """A soft reboot (the database restarts; the volume and addresses stay), sent once per operation: a
    resumed attempt only waits for it to end."""
    if ctx.journal.get("reboot_sent") != server_id:
        server = retried("reading server", plain_server, conn, server_id)
        if server.status not in SETTLED_SERVER:
            raise EngineError(f"cannot restart server {server_id} while it is {server.status}"
                              + (f": {common.server_failure(server)}" if server.status == "ERROR" else ""))
        call(f"rebooting server {server_id}", conn.compute.reboot_server, server_id, "SOFT")
        ctx.step("waiting for the server to restart", reboot_sent=server_id)
    ready = wait_server(conn, settings, server_id, WaitKind.SERVER_REBOOT, f"server {server_id} to restart",
                        lambda s: s.status == "ACTIVE" and not s.task_state, plain=True)
    ctx.event(f"server {server_id} restarted")
    return ready


def rebuild(conn: Connection, settings: Settings, spec: InstanceSpec, server_id: str, ctx: OperationContext) -> Any:
    """Nova's rebuild onto `spec.image_id`, keeping the superuser's password (`spec.admin_password`): the
    server id, its port and its attached data volume stay."""
    image = common.resolve_image(conn, spec.image_id)
    if ctx.journal.get("rebuild_sent") != image.id:
        server = retried("reading server", plain_server, conn, server_id)
        if server.status not in SETTLED_SERVER:
            raise EngineError(f"cannot rebuild server {server_id} while it is {server.status}"
                              + (f": {common.server_failure(server)}" if server.status == "ERROR" else ""))
        attrs: dict[str, Any] = {"admin_password": spec.admin_password} if spec.admin_password else {}
        call(f"rebuilding server {server_id} with image {image.name}", conn.compute.rebuild_server, server_id,
             image.id, **attrs)
        ctx.step(f"waiting for the server to rebuild with image {image.name}", rebuild_sent=image.id)

    def rebuilt(server: Any) -> bool:
        current = server.image.get("id") if isinstance(server.image, dict) else None
        return server.status == "ACTIVE" and not server.task_state and current == image.id

    ready = wait_server(conn, settings, server_id, WaitKind.SERVER_REBUILD,
                        f"server {server_id} to rebuild with image {image.name}", rebuilt, plain=True)
    ctx.event(f"server {server_id} rebuilt with image {image.name}")
    return ready


# port --------------------------------------------------------------------------------------------
def port_step(env: StepEnv) -> Made:
    """The instance's port on its network (a nic's subnet and address when given), in its group. Instances
    without a network let Nova pick one ("auto") and make the port: no step of Hearth's then."""
    conn, spec, ctx = env.conn(), env.spec, env.ctx
    if not spec.network_id:
        return Made(None)
    group_id = env.results["security_group"].id
    port = None
    if ctx.journal.get("port_id"):
        port = get_or_none("reading port", conn.network.get_port, ctx.journal["port_id"])
    if port is None and not env.fresh:
        port = next(iter(common.find_ports(conn, spec.instance_id)), None)
        if port is not None:
            ctx.record(port_id=port.id)
    if port is not None:
        return Made(port.id, port)
    attrs: dict[str, Any] = {"name": common.port_name(spec.instance_id), "network_id": spec.network_id,
                             "security_group_ids": [group_id], "description": common.secgroup_description(spec)}
    fixed = {key: value for key, value in (("subnet_id", spec.subnet_id), ("ip_address", spec.fixed_ip)) if value}
    if fixed:
        attrs["fixed_ips"] = [fixed]
    port = call("creating the port", conn.network.create_port, **attrs)
    ctx.record(port_id=port.id)
    ctx.event(f"port {port.id} created on network {spec.network_id}")
    return Made(port.id, port)


def delete_port(env: StepEnv, port_id: str) -> None:
    delete_neutron(env, "ports", port_id, "port")


# floating IP -------------------------------------------------------------------------------------
def floating_ip_step(env: StepEnv) -> Made:
    """A public instance's floating IP, associated with its port."""
    if not env.spec.is_public:
        return Made(None)
    port = env.results.get("port")
    port_id = port.id if port is not None else None
    return Made(ensure_floating_ip(env.conn(), env.spec, env.ctx, port_id, fresh=env.fresh))


def ensure_floating_ip(conn: Connection, spec: InstanceSpec, ctx: OperationContext, port_id: str | None,
                       fresh: bool = False) -> str:
    """The instance's floating IP, made (or found from an earlier attempt) and associated with `port_id`."""
    if port_id is None:
        raise EngineError("a public instance needs a port of its own: give it a network (nics) or set the "
                          "network setting")
    ip = None
    if ctx.journal.get("floating_ip_id"):
        ip = get_or_none("reading floating IP", conn.network.get_ip, ctx.journal["floating_ip_id"])
    if ip is None and not fresh:
        ip = next(iter(common.find_floating_ips(conn, spec.instance_id)), None)
        if ip is not None:
            ctx.record(floating_ip_id=ip.id)
    if ip is None:
        network = common.resolve_network(conn, spec.public_network)
        ip = call("creating the floating IP", conn.network.create_ip, floating_network_id=network.id,
                  port_id=port_id, description=common.floating_ip_description(spec.instance_id))
        ctx.record(floating_ip_id=ip.id)
        ctx.event(f"floating IP {ip.floating_ip_address} ({ip.id}) created for port {port_id}")
    elif ip.port_id != port_id:
        call(f"associating floating IP {ip.id}", conn.network.update_ip, ip, port_id=port_id)
    return str(ip.id)


def delete_floating_ip(env: StepEnv, ip_id: str) -> None:
    if common.delete_plain(env.conn().network, f"/floatingips/{ip_id}", f"deleting floating IP {ip_id}"):
        env.ctx.event(f"floating IP {ip_id} deleted")


# attachment --------------------------------------------------------------------------------------
def attachment_step(env: StepEnv) -> Made:
    server, volume = env.results["server"], env.results["volume"]
    assert server.id is not None and volume.id is not None
    # Read again: the server's boot attached the volume it mapped (the read before the boot says available).
    attached = ensure_attached(env.conn(), env.settings, server.id, volume.id, env.ctx)
    return Made(None, attached)


def ensure_attached(conn: Connection, settings: Settings, server_id: str, volume_id: str, ctx: OperationContext,
                    volume: Any = None) -> Any:
    """`volume`: the volume as just read by the caller, saving a read."""
    if volume is None or volume.id != volume_id:
        volume = retried("reading volume", conn.block_storage.get_volume, volume_id)
    if volume.status == "in-use" and common.volume_attached_to(volume, server_id):  # nothing to do or wait for
        if ctx.journal.get("volume_attached_to") != server_id:
            ctx.record(volume_attached_to=server_id)
        return volume
    if not common.volume_attached_to(volume, server_id):
        others = [a.get("server_id") for a in volume.attachments or []]
        if others:
            raise EngineError(f"volume {volume_id} is attached to another server ({', '.join(map(str, others))})")
        if volume.status != "attaching":
            call(f"attaching volume {volume_id} to server {server_id}", conn.compute.create_volume_attachment,
                 server_id, volume=volume_id)
        ctx.record(volume_attached_to=server_id)
    volume = wait_volume(conn, settings, volume_id, WaitKind.VOLUME_ATTACH,
                         f"volume {volume_id} to attach to server {server_id}",
                         lambda v: v.status == "in-use" and common.volume_attached_to(v, server_id))
    ctx.record(volume_attached_to=server_id)
    return volume
