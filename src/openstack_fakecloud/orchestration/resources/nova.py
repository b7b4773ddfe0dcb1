"""OS::Nova::Server on fakecloud's compute backend (the same methods the Nova routes call)."""

from __future__ import annotations

import base64
from typing import Any

from openstack_fakecloud.compute.backend import NetworkRequest, ServerCreate, ServerRebuild
from openstack_fakecloud.errors import NotFound
from openstack_fakecloud.network.requests import parse_port_update
from openstack_fakecloud.orchestration.constraints import AllowedValues, Custom, find_flavor, find_image, find_network
from openstack_fakecloud.orchestration.errors import ResourceFailure, ResourcePropertyConflict, StackValidationFailed
from openstack_fakecloud.orchestration.properties import BOOLEAN, LIST, MAP, STRING, Schema
from openstack_fakecloud.orchestration.resources.base import Resource

_NETWORK_ITEM = {
    "network": Schema(STRING, constraints=(Custom(name="neutron.network"),)),
    "fixed_ip": Schema(STRING, constraints=(Custom(name="ip_addr"),)),
    "port": Schema(STRING),
    "subnet": Schema(STRING),
    "floating_ip": Schema(STRING),
    "tag": Schema(STRING),
    "allocate_network": Schema(STRING, update_allowed=True, constraints=(AllowedValues(allowed=("none", "auto")),)),
    "port_extra_properties": Schema(MAP, update_allowed=True),
}


def _values(*allowed: str) -> tuple[AllowedValues]:
    return (AllowedValues(allowed=allowed),)


class NovaServer(Resource):
    properties_schema = {
        "flavor": Schema(STRING, required=True, update_allowed=True, constraints=(Custom(name="nova.flavor"),)),
        "flavor_update_policy": Schema(STRING, default="RESIZE", update_allowed=True,
                                       constraints=_values("RESIZE", "REPLACE")),
        "image": Schema(STRING, update_allowed=True, constraints=(Custom(name="glance.image"),)),
        "image_update_policy": Schema(STRING, default="REBUILD", update_allowed=True,
                                      constraints=_values("REBUILD", "REPLACE", "REBUILD_PRESERVE_EPHEMERAL")),
        "name": Schema(STRING, update_allowed=True),
        "networks": Schema(LIST, update_allowed=True, schema=Schema(MAP, schema=_NETWORK_ITEM)),
        "metadata": Schema(MAP, default={}, update_allowed=True),
        "user_data": Schema(STRING, default="", update_allowed=True),
        "user_data_update_policy": Schema(STRING, default="REPLACE", update_allowed=True,
                                          constraints=_values("REPLACE", "IGNORE", "REBUILD")),
        "software_config_transport": Schema(STRING, default="POLL_SERVER_CFN", update_allowed=True,
                                            constraints=_values("POLL_SERVER_CFN", "POLL_SERVER_HEAT",
                                                                "POLL_TEMP_URL", "ZAQAR_MESSAGE")),
        "admin_pass": Schema(STRING, update_allowed=True),
        "tags": Schema(LIST, update_allowed=True, schema=Schema(STRING)),
        "deployment_swift_data": Schema(MAP, default={}, update_allowed=True),
        "block_device_mapping": Schema(LIST, schema=Schema(MAP)),
        "block_device_mapping_v2": Schema(LIST, schema=Schema(MAP)),
        "key_name": Schema(STRING),
        "availability_zone": Schema(STRING),
        "security_groups": Schema(LIST, default=[]),
        "scheduler_hints": Schema(MAP),
        "user_data_format": Schema(STRING, default="HEAT_CFNTOOLS",
                                   constraints=_values("HEAT_CFNTOOLS", "RAW", "SOFTWARE_CONFIG")),
        "config_drive": Schema(BOOLEAN),
        "diskConfig": Schema(STRING, constraints=_values("AUTO", "MANUAL")),
        "reservation_id": Schema(STRING),
        "personality": Schema(MAP, default={}),
    }
    attributes_schema = {
        "name": "Name of the server.",
        "addresses": "A dict of all network addresses with corresponding port_id and subnets.",
        "networks": "A dict of assigned network addresses of the form {network name or id: [addresses]}.",
        "first_address": "Convenience attribute: the first assigned IPv4 address (deprecated).",
        "instance_name": "AWS compatible instance name.",
        "accessIPv4": "The manually assigned alternative public IPv4 address of the server.",
        "accessIPv6": "The manually assigned alternative public IPv6 address of the server.",
        "console_urls": "URLs of the server's consoles.",
        "tags": "Tags from the server.",
        "os_collect_config": "The os-collect-config configuration for the server's local agent.",
    }

    def validate(self, props: dict[str, Any]) -> None:
        if props.get("block_device_mapping") and props.get("block_device_mapping_v2"):
            raise ResourcePropertyConflict("block_device_mapping", "block_device_mapping_v2")
        if not props.get("image") and not (props.get("block_device_mapping") or props.get("block_device_mapping_v2")):
            raise StackValidationFailed(f"Neither image nor bootable volume is specified for instance "
                                        f"{self.record.name}")

    # helpers -----------------------------------------------------------------------------------
    def _server(self) -> Any:
        if not self.record.physical_id:
            raise NotFound("no server")
        return self.cloud.compute.get_server(self.record.physical_id, self.ctx.project_id)

    def _networks(self, items: list[dict[str, Any]] | None) -> Any:
        if not items:
            return None
        requests = []
        for item in items:
            if item.get("allocate_network") in ("none", "auto") and len(items) == 1:
                return item["allocate_network"]
            network_id = None
            if item.get("network"):
                network_id = find_network(self.cloud, self.ctx.project_id, item["network"], self.ctx.is_admin).id
            requests.append(NetworkRequest(uuid=network_id, port=item.get("port"), fixed_ip=item.get("fixed_ip"),
                                           tag=item.get("tag")))
        return requests

    # create ------------------------------------------------------------------------------------
    def handle_create(self, props: dict[str, Any]) -> None:
        flavor = find_flavor(self.cloud, props["flavor"])
        image = find_image(self.cloud, props["image"]) if props.get("image") else None
        user_data = props.get("user_data") or None
        request = ServerCreate(
            name=props.get("name") or self.physical_name(), flavor_ref=flavor.id,
            image_ref=image.id if image is not None else None, networks=self._networks(props.get("networks")),
            security_groups=[str(g) for g in props.get("security_groups") or []],
            metadata={str(k): str(v) for k, v in (props.get("metadata") or {}).items()},
            key_name=props.get("key_name"), availability_zone=props.get("availability_zone"),
            user_data=base64.b64encode(user_data.encode()).decode() if user_data else None,
            tags=list(props.get("tags") or []), config_drive=bool(props.get("config_drive")),
            block_device_mapping=list(props.get("block_device_mapping_v2") or props.get("block_device_mapping") or []),
            admin_pass=props.get("admin_pass") or None,  # Heat: `self.properties[ADMIN_PASS] or None`
        )
        server, _password = self.cloud.compute.create_server(self.ctx.project_id, self.ctx.user_id, request)
        self.record.physical_id = server.id

    def check_create_complete(self) -> bool:
        server = self._server()
        if server.status == "ERROR":
            raise _in_error(server)
        return server.status == "ACTIVE"

    # update ------------------------------------------------------------------------------------
    def needs_replace(self, old: dict[str, Any], new: dict[str, Any], changed: set[str]) -> bool:
        if "flavor" in changed and new.get("flavor_update_policy") == "REPLACE":
            return True
        if "image" in changed and new.get("image_update_policy") == "REPLACE":
            return True
        if "user_data" in changed and new.get("user_data_update_policy") == "REPLACE":
            return True
        # fakecloud's compute backend has no interface attach/detach yet: the nearest faithful outcome for a
        # networks change is a replacement.
        return "networks" in changed

    def handle_update(self, old: dict[str, Any], new: dict[str, Any], changed: set[str]) -> None:
        """Heat's order: metadata, tags, name at once; then resize, user_data rebuild and image rebuild as
        updaters pushed to completion one after the other (check_update_complete)."""
        compute = self.cloud.compute
        server = self._server()
        if "metadata" in changed:
            compute.set_metadata(server, {str(k): str(v) for k, v in (new.get("metadata") or {}).items()}, True)
        if "tags" in changed:
            compute.replace_tags(server, [str(t) for t in new.get("tags") or []])
        if "name" in changed:
            compute.update_server(server, {"name": new.get("name") or self.physical_name()})
        steps: list[dict[str, Any]] = []
        if "flavor" in changed:
            flavor = find_flavor(self.cloud, new["flavor"])
            if flavor.id != server.flavor.id:
                steps.append({"op": "resize", "flavor": flavor.id, "flavor_ref": new["flavor"]})
        if "user_data" in changed and new.get("user_data_update_policy") == "REBUILD":
            steps.append({"op": "rebuild", "image": server.image_id, "user_data": True})
        if "image" in changed:
            image = find_image(self.cloud, new["image"]) if new.get("image") else None
            if image is not None:
                steps.append({"op": "rebuild", "image": image.id, "image_ref": new["image"],
                              "preserve_ephemeral": new.get("image_update_policy") == "REBUILD_PRESERVE_EPHEMERAL"})
        # An admin_pass change alone: Heat calls Nova's changePassword. fakecloud's Nova has no such action,
        # so the new password takes effect at the next rebuild (it is the rebuild's adminPass).
        self.data.pop("step", None)
        self.data["updates"] = steps

    def prepare_for_replace(self) -> None:
        """Heat's prepare_ports_for_replace: the ports the template handed in (`networks: [{port: ...}]`) are
        detached from the old server so that its replacement can be booted on them."""
        if not self.record.physical_id:
            return
        network = self.cloud.network
        given = {str(item["port"]) for item in self.record.properties.get("networks") or [] if item.get("port")}
        for port in network.ports_of_device(self.record.physical_id):
            if port.id in given:
                network.update_port(port.id, self.ctx.project_id, False,
                                    parse_port_update({"device_id": "", "device_owner": ""}))

    def _start(self, step: dict[str, Any]) -> None:
        compute = self.cloud.compute
        server = self._server()
        if step["op"] == "resize":
            compute.resize(server, step["flavor"])
            step["state"] = "resizing"
            return
        props = self.record.properties  # the new properties: the engine records them after handle_update
        rebuild = ServerRebuild(image_ref=step["image"], admin_pass=props.get("admin_pass") or None)
        if step.get("user_data"):
            user_data = props.get("user_data") or ""
            rebuild.user_data = base64.b64encode(user_data.encode()).decode() if user_data else ""
        else:
            rebuild.metadata = {str(k): str(v) for k, v in (props.get("metadata") or {}).items()}
        compute.rebuild(server, rebuild)
        step["state"] = "rebuilding"

    def _progress(self, step: dict[str, Any]) -> bool:
        server = self._server()
        state = step["state"]
        if state == "rebuilding":
            # nova client plugin's check_rebuild: done once the status leaves REBUILD; ERROR fails
            if server.status == "REBUILD":
                return False
            if server.status == "ERROR":
                raise ResourceFailure("Error", f"Rebuilding server failed, status '{server.status}'")
            return True
        if server.status == "ERROR":
            raise ResourceFailure("Error", f"Resizing to '{step.get('flavor_ref')}' failed, status 'ERROR'")
        if state == "resizing" and server.status == "VERIFY_RESIZE":
            self.cloud.compute.confirm_resize(server)
            step["state"] = "confirming"
            return False
        return state == "confirming" and server.status == "ACTIVE" and server.flavor.id == step.get("flavor")

    def check_update_complete(self) -> bool:
        steps = self.data.get("updates") or []
        while steps:
            step = steps[0]
            if "state" not in step:
                self._start(step)
                return False
            if not self._progress(step):
                return False
            steps.pop(0)
        self.data.pop("updates", None)
        return True

    # check -------------------------------------------------------------------------------------
    def live(self) -> Any:
        return self._server()

    def handle_check(self) -> None:
        self.verify_checks([("status", "ACTIVE", self._server().status)])

    def drifted(self, props: dict[str, Any]) -> set[str]:
        """The flavor is observed: a server resized behind Heat is resized back by a converging update."""
        server = self._server()
        if props.get("flavor") and find_flavor(self.cloud, props["flavor"]).id != server.flavor.id:
            return {"flavor"}
        return set()

    # delete ------------------------------------------------------------------------------------
    def handle_delete(self) -> None:
        try:
            server = self._server()
        except NotFound:
            return
        self.cloud.compute.delete_server(server)

    def check_delete_complete(self) -> bool:
        try:
            server = self._server()
        except NotFound:
            return True
        if server.status == "ERROR" and server.task_state is None:
            raise _in_error(server)
        return False

    # attributes --------------------------------------------------------------------------------
    def attribute(self, name: str) -> Any:
        try:
            server = self._server()
        except NotFound:
            return None
        network = self.cloud.network
        if name == "name":
            return server.name
        if name == "addresses":
            return network.server_addresses(server.id)
        if name == "networks":
            result: dict[str, list[str]] = {}
            for port in network.ports_of_device(server.id):
                ips = [ip["ip_address"] for ip in port.fixed_ips]
                net = network.networks.get(port.network_id)
                for key in filter(None, (net.name if net else None, port.network_id)):
                    result.setdefault(key, []).extend(ips)
            return result
        if name == "first_address":
            for addresses in network.server_addresses(server.id).values():
                for address in addresses:
                    if address.get("version") == 4:
                        return address["addr"]
            return ""
        if name == "instance_name":
            return f"instance-{server.seq:08x}"
        if name == "accessIPv4":
            return server.access_ipv4
        if name == "accessIPv6":
            return server.access_ipv6
        if name == "tags":
            return list(server.tags)
        if name in ("console_urls", "os_collect_config"):
            return {}
        return super().attribute(name)

    def show(self) -> Any:
        from openstack_fakecloud.compute.views import server_detail

        try:
            server = self._server()
        except NotFound:
            return None
        return server_detail(self.cloud, server, self.cloud.compute_max, False)


def _in_error(server: Any) -> ResourceFailure:
    fault = server.fault or {}
    return ResourceFailure("ResourceInError", f'Went to status ERROR due to "Message: {fault.get("message", "Unknown")}'
                                              f', Code: {fault.get("code", 500)}"')


def resource_mapping() -> dict[str, type[Resource]]:
    return {"OS::Nova::Server": NovaServer}
