"""OS::Neutron::FloatingIP and OS::Neutron::FloatingIPAssociation on fakecloud's network backend.

Both go through the methods POST/PUT/DELETE /v2.0/floatingips reach, so Neutron's quota and association
checks apply (a port's subnet must reach the external network through a router). As in Heat's
neutron/floatingip.py: a FloatingIP's `port_id`/`fixed_ip_address` change re-associates it in place, its
delete deletes it (Neutron disassociates on the way); an association's delete sets the floating IP's
port to none.
"""

from __future__ import annotations

import contextlib
from typing import Any

from openstack_fakecloud.errors import NotFound
from openstack_fakecloud.network.requests import parse_floating_ip, parse_floating_ip_update
from openstack_fakecloud.orchestration.constraints import Custom, find_network
from openstack_fakecloud.orchestration.properties import MAP, STRING, Schema
from openstack_fakecloud.orchestration.resources.base import Resource


def _floating_view(fip: Any) -> dict[str, Any]:
    from openstack_fakecloud.network.views import floating_ip

    return floating_ip(fip)


class FloatingIP(Resource):
    properties_schema = {
        "floating_network": Schema(STRING, required=True, constraints=(Custom(name="neutron.network"),)),
        "floating_subnet": Schema(STRING),
        "value_specs": Schema(MAP, default={}),
        "port_id": Schema(STRING, update_allowed=True),
        "fixed_ip_address": Schema(STRING, update_allowed=True, constraints=(Custom(name="ip_addr"),)),
        "floating_ip_address": Schema(STRING, constraints=(Custom(name="ip_addr"),)),
        "dns_name": Schema(STRING, update_allowed=True),
        "dns_domain": Schema(STRING, update_allowed=True),
    }
    attributes_schema = {
        "router_id": "ID of the router used as gateway, set when associated with a port.",
        "tenant_id": "The tenant owning this floating IP.",
        "floating_network_id": "ID of the network in which this IP is allocated.",
        "fixed_ip_address": "IP address of the associated port, if specified.",
        "floating_ip_address": "The allocated address of this IP.",
        "port_id": "ID of the port associated with this IP.",
    }

    def _fip(self) -> Any:
        if not self.record.physical_id:
            raise NotFound("no floating IP")
        return self.cloud.network.get_floating_ip(self.record.physical_id, self.ctx.project_id)

    def handle_create(self, props: dict[str, Any]) -> None:
        network = find_network(self.cloud, self.ctx.project_id, props["floating_network"], self.ctx.is_admin)
        body: dict[str, Any] = {str(k): v for k, v in (props.get("value_specs") or {}).items()}
        body["floating_network_id"] = network.id
        if props.get("floating_subnet"):
            subnet = props["floating_subnet"]
            named = [s.id for s in self.cloud.network.list_subnets(self.ctx.project_id, self.ctx.is_admin)
                     if s.network_id == network.id and subnet in (s.id, s.name)]
            body["subnet_id"] = named[0] if len(named) == 1 else subnet
        for key in ("port_id", "fixed_ip_address", "floating_ip_address"):
            if props.get(key):
                body[key] = props[key]
        fip = self.cloud.network.create_floating_ip(self.ctx.project_id, self.ctx.is_admin, parse_floating_ip(body))
        self.record.physical_id = fip.id

    def handle_update(self, old: dict[str, Any], new: dict[str, Any], changed: set[str]) -> None:
        if not changed & {"port_id", "fixed_ip_address"}:
            return
        body = {"port_id": new.get("port_id") or None, "fixed_ip_address": new.get("fixed_ip_address") or None}
        self.cloud.network.update_floating_ip(self.record.physical_id or "", self.ctx.project_id, self.ctx.is_admin,
                                              parse_floating_ip_update(body))

    def handle_delete(self) -> None:
        if not self.record.physical_id:
            return
        try:
            self.cloud.network.delete_floating_ip(self.record.physical_id, self.ctx.project_id, False)
        except NotFound:
            return

    def live(self) -> Any:
        return self._fip()

    def attribute(self, name: str) -> Any:
        try:
            fip = self._fip()
        except NotFound:
            return None
        view = _floating_view(fip)
        if name in self.attributes_schema:
            return view.get(name)
        return super().attribute(name)

    def show(self) -> Any:
        try:
            return _floating_view(self._fip())
        except NotFound:
            return None


class FloatingIPAssociation(Resource):
    properties_schema = {
        "floatingip_id": Schema(STRING, required=True, update_allowed=True),
        "port_id": Schema(STRING, required=True, update_allowed=True),
        "fixed_ip_address": Schema(STRING, update_allowed=True, constraints=(Custom(name="ip_addr"),)),
    }

    def _set(self, fip_id: str, port_id: str | None, fixed_ip: str | None) -> None:
        self.cloud.network.update_floating_ip(fip_id, self.ctx.project_id, self.ctx.is_admin, parse_floating_ip_update(
            {"port_id": port_id, "fixed_ip_address": fixed_ip}))

    def handle_create(self, props: dict[str, Any]) -> None:
        self._set(props["floatingip_id"], props["port_id"], props.get("fixed_ip_address") or None)
        self.record.physical_id = self.record.id  # Heat: resource_id_set(self.id)

    def handle_update(self, old: dict[str, Any], new: dict[str, Any], changed: set[str]) -> None:
        if "floatingip_id" in changed:
            with contextlib.suppress(NotFound):
                self._set(old["floatingip_id"], None, None)
        self._set(new["floatingip_id"], new["port_id"], new.get("fixed_ip_address") or None)

    def handle_delete(self) -> None:
        if not self.record.physical_id:
            return
        try:
            self._set(self.record.properties["floatingip_id"], None, None)
        except NotFound:
            return


def resource_mapping() -> dict[str, type[Resource]]:
    return {"OS::Neutron::FloatingIP": FloatingIP, "OS::Neutron::FloatingIPAssociation": FloatingIPAssociation}
