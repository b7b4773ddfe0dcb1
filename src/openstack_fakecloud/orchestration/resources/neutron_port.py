"""OS::Neutron::Port on fakecloud's network backend (the methods POST/PUT /v2.0/ports reach).

A change to `network` or `mac_address` replaces the port; everything else (name, fixed_ips,
security_groups, admin_state_up, device_id/owner) is updated in place. A server that names the
port in `networks: [{port: ...}]` binds it through the compute backend, as Nova does.
"""

from __future__ import annotations

from typing import Any

from openstack_fakecloud.errors import NotFound
from openstack_fakecloud.network.requests import FixedIp, parse_port_update
from openstack_fakecloud.orchestration.constraints import AllowedValues, Custom, find_network
from openstack_fakecloud.orchestration.errors import ResourceFailure
from openstack_fakecloud.orchestration.properties import BOOLEAN, LIST, MAP, STRING, Schema
from openstack_fakecloud.orchestration.resources.base import Resource

_FIXED_IP = {
    "subnet": Schema(STRING),
    "subnet_id": Schema(STRING),
    "ip_address": Schema(STRING, constraints=(Custom(name="ip_addr"),)),
}
_PAIR = {"mac_address": Schema(STRING), "ip_address": Schema(STRING, required=True)}
_VNIC = ("normal", "direct", "macvtap", "direct-physical", "baremetal", "virtio-forwarder", "smart-nic")


class NeutronPort(Resource):
    properties_schema = {
        "network": Schema(STRING, required=True, constraints=(Custom(name="neutron.network"),)),
        "mac_address": Schema(STRING),
        "name": Schema(STRING, update_allowed=True),
        "device_id": Schema(STRING, default="", update_allowed=True),
        "device_owner": Schema(STRING, default="", update_allowed=True),
        "fixed_ips": Schema(LIST, update_allowed=True, schema=Schema(MAP, schema=_FIXED_IP)),
        "security_groups": Schema(LIST, update_allowed=True),
        "dns_name": Schema(STRING, update_allowed=True),
        "tags": Schema(LIST, update_allowed=True, schema=Schema(STRING)),
        "value_specs": Schema(MAP, default={}, update_allowed=True),
        "admin_state_up": Schema(BOOLEAN, default=True, update_allowed=True),
        "allowed_address_pairs": Schema(LIST, update_allowed=True, schema=Schema(MAP, schema=_PAIR)),
        "binding:vnic_type": Schema(STRING, default="normal", update_allowed=True,
                                    constraints=(AllowedValues(allowed=_VNIC),)),
        "port_security_enabled": Schema(BOOLEAN, update_allowed=True),
        "qos_policy": Schema(STRING, update_allowed=True),
        "propagate_uplink_status": Schema(BOOLEAN, update_allowed=True),
        "no_fixed_ips": Schema(BOOLEAN, default=False, update_allowed=True),
        "replacement_policy": Schema(STRING, default="AUTO",
                                     constraints=(AllowedValues(allowed=("REPLACE_ALWAYS", "AUTO")),)),
    }
    attributes_schema = {name: "" for name in (
        "admin_state_up", "device_id", "device_owner", "fixed_ips", "mac_address", "name", "network_id", "network",
        "security_groups", "status", "tenant_id", "allowed_address_pairs", "subnets", "port_security_enabled",
        "qos_policy_id", "dns_assignment", "propagate_uplink_status")}

    # helpers -----------------------------------------------------------------------------------
    def _port(self) -> Any:
        if not self.record.physical_id:
            raise NotFound("no port")
        return self.cloud.network.get_port(self.record.physical_id, self.ctx.project_id)

    def _groups(self, refs: list[Any] | None) -> list[str] | None:
        """Names or ids -> ids; None leaves Neutron's default group to apply."""
        if refs is None:
            return None
        network = self.cloud.network
        return [network.find_security_group(self.ctx.project_id, str(ref)).id for ref in refs]

    def _subnet_id(self, network_id: str, ref: str) -> str:
        network = self.cloud.network
        subnets = [s for s in network.list_subnets(self.ctx.project_id, self.ctx.is_admin)
                   if s.network_id == network_id]
        for subnet in subnets:
            if subnet.id == ref:
                return subnet.id
        named = [s for s in subnets if s.name == ref]
        if len(named) != 1:
            raise ResourceFailure("NotFound" if not named else "PhysicalResourceNameAmbiguity",
                                  f"Unable to find subnet with name or id '{ref}'")
        return named[0].id

    def _fixed_ips(self, network_id: str, props: dict[str, Any]) -> list[FixedIp] | None:
        if props.get("no_fixed_ips"):
            return []
        items = props.get("fixed_ips")
        if not items:
            return None
        result = []
        for item in items:
            ref = item.get("subnet") or item.get("subnet_id")
            subnet_id = self._subnet_id(network_id, str(ref)) if ref else None
            result.append(FixedIp(subnet_id=subnet_id, ip_address=str(item["ip_address"]) if item.get("ip_address")
                                  else None))
        return result

    # create ------------------------------------------------------------------------------------
    def handle_create(self, props: dict[str, Any]) -> None:
        network = self.cloud.network
        net = find_network(self.cloud, self.ctx.project_id, props["network"], self.ctx.is_admin)
        fixed_ips = self._fixed_ips(net.id, props)
        port = network.create_port(
            self.ctx.project_id, net.id, props.get("device_id") or "", props.get("device_owner") or "",
            self._groups(props.get("security_groups")), name=props.get("name") or self.physical_name(),
            admin_state_up=props.get("admin_state_up") is not False, fixed_ips=fixed_ips,
            mac_address=props.get("mac_address"), admin=self.ctx.is_admin, created_by_nova=False,
        )
        if fixed_ips == []:
            network.reassign_fixed_ips(port, [])
        self.record.physical_id = port.id
        if props.get("port_security_enabled") is not None:
            network.update_port(port.id, self.ctx.project_id, False,
                                parse_port_update({"port_security_enabled": props["port_security_enabled"]}))

    # update ------------------------------------------------------------------------------------
    def needs_replace(self, old: dict[str, Any], new: dict[str, Any], changed: set[str]) -> bool:
        return new.get("replacement_policy") == "REPLACE_ALWAYS"

    def handle_update(self, old: dict[str, Any], new: dict[str, Any], changed: set[str]) -> None:
        network = self.cloud.network
        port = self._port()
        body: dict[str, Any] = {}
        if "name" in changed:
            body["name"] = new.get("name") or self.physical_name()
        if "security_groups" in changed:
            groups = self._groups(new.get("security_groups"))
            body["security_groups"] = groups if groups is not None else [
                network.default_security_group(self.ctx.project_id).id]
        for key in ("admin_state_up", "port_security_enabled"):
            if key in changed and new.get(key) is not None:
                body[key] = new[key]
        for key in ("device_id", "device_owner"):
            if key in changed:
                body[key] = new.get(key) or ""
        if body:
            network.update_port(port.id, self.ctx.project_id, False, parse_port_update(body))
        if changed & {"fixed_ips", "no_fixed_ips"}:
            self.cloud.network.reassign_fixed_ips(port, self._fixed_ips(port.network_id, new))

    # delete ------------------------------------------------------------------------------------
    def handle_delete(self) -> None:
        try:
            port = self._port()
        except NotFound:
            return
        self.cloud.network.delete_port(port.id, self.ctx.project_id, False)

    # check and attributes ------------------------------------------------------------------------
    def live(self) -> Any:
        return self._port()

    def attribute(self, name: str) -> Any:
        from openstack_fakecloud.network import views

        network = self.cloud.network
        try:
            port = self._port()
        except NotFound:
            return None
        view = views.port(port)
        if name == "network":
            return views.network(network.get_network(port.network_id, self.ctx.project_id))
        if name == "subnets":
            ids = dict.fromkeys(ip["subnet_id"] for ip in port.fixed_ips)
            return [views.subnet(network.get_subnet(i, self.ctx.project_id, False)) for i in ids]
        if name in view:
            return view[name]
        return super().attribute(name)

    def show(self) -> Any:
        from openstack_fakecloud.network.views import port as port_view

        try:
            return port_view(self._port())
        except NotFound:
            return None


def resource_mapping() -> dict[str, type[Resource]]:
    return {"OS::Neutron::Port": NeutronPort}
