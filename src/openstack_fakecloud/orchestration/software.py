"""Heat's software configs and deployments: stored records, as the /software_configs and
/software_deployments APIs keep them (heat/engine/service_software_config.py).

Nothing runs them: fakecloud has no in-guest agent, so a deployment only moves when a client PUTs
its status (which is what os-collect-config would do), and its config is what the server's
deployment metadata lists.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from openstack_fakecloud.orchestration.errors import EntityNotFound, HeatError


@dataclass(slots=True)
class SoftwareConfig:
    id: str
    project_id: str
    name: str | None
    group: str
    config: Any
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    options: dict[str, Any]
    creation_time: str

    def view(self, detail: bool = True, include_project: bool = False) -> dict[str, Any]:
        result: dict[str, Any] = {"id": self.id, "name": self.name, "group": self.group,
                                  "creation_time": self.creation_time}
        if detail:
            result.update(config=self.config, inputs=self.inputs, outputs=self.outputs, options=self.options)
        if include_project:
            result["project"] = self.project_id
        return result


@dataclass(slots=True)
class SoftwareDeployment:
    id: str
    project_id: str
    config_id: str
    server_id: str
    input_values: dict[str, Any]
    action: str | None
    status: str | None
    status_reason: str
    creation_time: str
    output_values: dict[str, Any] = field(default_factory=dict)
    updated_time: str | None = None
    stack_user_project_id: str | None = None

    def view(self) -> dict[str, Any]:
        result: dict[str, Any] = {"id": self.id, "server_id": self.server_id, "config_id": self.config_id,
                                  "input_values": self.input_values, "output_values": self.output_values,
                                  "action": self.action, "status": self.status,
                                  "status_reason": self.status_reason, "creation_time": self.creation_time}
        if self.updated_time:
            result["updated_time"] = self.updated_time
        return result


def _io_list(value: Any, kind: str) -> list[dict[str, Any]]:
    """Inputs/outputs: a list of maps with a name; `type` defaults to String (Heat's IOConfig)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise HeatError("Software Config I/O Schema must be in a list", error_type="HTTPBadRequest")
    result = []
    for item in value:
        if not isinstance(item, dict):
            raise HeatError("Software Config I/O Schema must be a dict", error_type="HTTPBadRequest")
        if not item.get("name"):
            raise HeatError(f"Property error: {kind}: Property name not assigned", error_type="HTTPBadRequest")
        entry = {"type": "String", **{k: v for k, v in item.items() if v is not None}}
        if kind == "outputs":
            entry.setdefault("error_output", False)
        result.append(entry)
    return result


class SoftwareStore:
    """The configs and deployments of every project; `now` stamps them with the cloud's wall time."""

    def __init__(self, now: Callable[[], str]) -> None:
        self.now = now
        self.configs: dict[str, SoftwareConfig] = {}
        self.deployments: dict[str, SoftwareDeployment] = {}

    # configs ----------------------------------------------------------------------------------------
    def create_config(self, project_id: str, body: dict[str, Any]) -> SoftwareConfig:
        options = body.get("options") or {}
        if not isinstance(options, dict):
            raise HeatError("The 'options' of a software config must be a map.", error_type="HTTPBadRequest")
        config = SoftwareConfig(id=str(uuid.uuid4()), project_id=project_id, name=body.get("name"),
                                group=str(body.get("group") or "Heat::Ungrouped"), config=body.get("config"),
                                inputs=_io_list(body.get("inputs"), "inputs"),
                                outputs=_io_list(body.get("outputs"), "outputs"), options=options,
                                creation_time=self.now())
        self.configs[config.id] = config
        return config

    def config(self, project_id: str | None, config_id: str) -> SoftwareConfig:
        config = self.configs.get(config_id)
        if config is None or project_id not in (None, config.project_id):
            raise EntityNotFound("Software Config", config_id)
        return config

    def list_configs(self, project_id: str | None, limit: int | None, marker: str | None) -> list[SoftwareConfig]:
        configs = sorted((c for c in self.configs.values() if project_id in (None, c.project_id)),
                         key=lambda c: c.creation_time)
        if marker:
            ids = [c.id for c in configs]
            if marker not in ids:
                raise EntityNotFound("Software Config", marker)
            configs = configs[ids.index(marker) + 1:]
        return configs[:limit] if limit is not None else configs

    def delete_config(self, project_id: str, config_id: str) -> None:
        config = self.config(project_id, config_id)
        if any(d.config_id == config.id for d in self.deployments.values()):
            raise HeatError(f"Software config with id {config.id} can not be deleted as it is referenced.",
                            error_type="InvalidRestrictedAction")
        del self.configs[config.id]

    # deployments ------------------------------------------------------------------------------------
    def create_deployment(self, project_id: str, body: dict[str, Any]) -> SoftwareDeployment:
        config = self.config(project_id, str(body.get("config_id")))
        server_id = body.get("server_id")
        if not server_id:
            raise HeatError("server_id must be specified", error_type="HTTPBadRequest")
        user_project = body.get("stack_user_project_id")
        if user_project is not None and len(str(user_project)) > 64:
            raise HeatError('Invalid: "stack_user_project_id" should be no more than 64 characters',
                            error_type="Invalid")
        deployment = SoftwareDeployment(
            id=str(uuid.uuid4()), project_id=project_id, config_id=config.id, server_id=str(server_id),
            input_values=dict(body.get("input_values") or {}), action=body.get("action"),
            status=body.get("status"), status_reason=str(body.get("status_reason") or ""),
            creation_time=self.now(), stack_user_project_id=user_project)
        self.deployments[deployment.id] = deployment
        return deployment

    def deployment(self, project_id: str | None, deployment_id: str) -> SoftwareDeployment:
        deployment = self.deployments.get(deployment_id)
        if deployment is None or project_id not in (None, deployment.project_id):
            raise EntityNotFound("Software Deployment", deployment_id)
        return deployment

    def list_deployments(self, project_id: str, server_id: str | None) -> list[SoftwareDeployment]:
        return sorted((d for d in self.deployments.values() if d.project_id == project_id
                       and server_id in (None, d.server_id)), key=lambda d: d.creation_time)

    def update_deployment(self, project_id: str, deployment_id: str, body: dict[str, Any]) -> SoftwareDeployment:
        """Only the keys the request sets (and that are not empty) change, as in Heat."""
        deployment = self.deployment(project_id, deployment_id)
        if body.get("config_id"):
            deployment.config_id = self.config(project_id, str(body["config_id"])).id
        for key in ("input_values", "output_values"):
            if body.get(key):
                setattr(deployment, key, dict(body[key]))
        for key in ("action", "status", "status_reason"):
            if body.get(key):
                setattr(deployment, key, str(body[key]))
        deployment.updated_time = self.now()
        return deployment

    def delete_deployment(self, project_id: str, deployment_id: str) -> None:
        del self.deployments[self.deployment(project_id, deployment_id).id]

    def metadata(self, project_id: str, server_id: str) -> list[dict[str, Any]]:
        """The configs deployed to a server, by config name: what its agent would read."""
        configs = [self.configs[d.config_id] for d in self.list_deployments(project_id, server_id)
                   if d.config_id in self.configs]
        return [c.view() for c in sorted(configs, key=lambda c: c.name or "")]

    # persistence ------------------------------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        return {"software_configs": [asdict(c) for c in self.configs.values()],
                "software_deployments": [asdict(d) for d in self.deployments.values()]}

    def load(self, data: dict[str, Any]) -> None:
        self.configs = {c["id"]: SoftwareConfig(**c) for c in data.get("software_configs", [])}
        self.deployments = {d["id"]: SoftwareDeployment(**d) for d in data.get("software_deployments", [])}
