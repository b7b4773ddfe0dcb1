"""A small client for Hearth's own REST API, used by the `hearth` CLI (and tests).

Authentication is keystoneauth's, through openstacksdk and a clouds.yaml cloud; the API's address is
the `database` endpoint of the Keystone catalog. Nothing here speaks HTTP to OpenStack by hand.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from keystoneauth1 import exceptions as ksa_exc
from openstack import exceptions as sdk_exc
from openstack.connection import Connection

from hearth.cloud import CloudConnections

OPERATION_DONE = frozenset({"succeeded", "failed"})


class ApiError(Exception):
    """The API refused a request, or could not be reached; `str()` is the message to show users."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def error_message(body: Any, fallback: str) -> str:
    """Trove-style error bodies are `{"badRequest": {"code": 400, "message": "..."}}`."""
    if isinstance(body, dict):
        for value in body.values():
            if isinstance(value, dict) and value.get("message"):
                return str(value["message"])
        for key in ("message", "detail", "error"):
            if isinstance(body.get(key), str):
                return body[key]
            if isinstance(body.get(key), list):  # pydantic/FastAPI validation errors
                return "; ".join(str(item.get("msg", item)) if isinstance(item, dict) else str(item)
                                 for item in body[key])
    return fallback


class HearthClient:
    """Calls Hearth's v1.0 API as the user of a clouds.yaml cloud."""

    def __init__(self, cloud: str = "fakecloud", clouds_yaml: Path | None = None,
                 connection: Connection | None = None) -> None:
        self.cloud = cloud
        if connection is None:
            try:
                connection = CloudConnections(cloud, clouds_yaml).new()
            except sdk_exc.ConfigException as err:
                where = f" in {clouds_yaml}" if clouds_yaml else ""
                raise ApiError(f"cloud {cloud!r} not found{where}: {err}") from None
        self.conn = connection
        self._filter: dict[str, Any] = {"service_type": "database", "interface": "public"}
        region = connection.config.get_region_name()
        if region:
            self._filter["region_name"] = region

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> HearthClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # transport -------------------------------------------------------------------------------
    def request(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200, 201, 202, 204)) -> Any:
        try:
            response = self.conn.session.request(
                path, method, json=body, endpoint_filter=self._filter, raise_exc=False,
                headers={"Accept": "application/json"},
            )
        except ksa_exc.EndpointNotFound:
            raise ApiError(f"cloud {self.cloud!r} has no 'database' service in its catalog; "
                           "is Hearth running (`hearth up`)?") from None
        except ksa_exc.ConnectFailure as err:
            raise ApiError(f"could not reach the Hearth API: {err}") from None
        except ksa_exc.Unauthorized:
            raise ApiError(f"cloud {self.cloud!r} refused the credentials in clouds.yaml", 401) from None
        except ksa_exc.ClientException as err:
            raise ApiError(f"{method} {path} failed: {err}") from None
        try:
            data = response.json() if response.content else None
        except ValueError:
            data = None
        if response.status_code not in ok:
            fallback = f"{method} {path} failed with HTTP {response.status_code}"
            raise ApiError(error_message(data, fallback), response.status_code)
        return data

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def act(self, method: str, path: str, body: Any = None, dry_run: bool = False) -> Any:
        """A mutating call; with `dry_run`, the API's plan (`{"engine", "operation", "steps"}`) instead."""
        if not dry_run:
            return self.request(method, path, body)
        return self.request(method, f"{path}?dry_run=true", body)["plan"]

    # flavors ---------------------------------------------------------------------------------
    def flavors(self) -> list[dict[str, Any]]:
        return self.get("/flavors")["flavors"]

    def resolve_flavor(self, name_or_id: str) -> str:
        """A flavor id from an id or a name (names resolved through `GET /flavors`)."""
        flavors = self.flavors()
        for flavor in flavors:
            if name_or_id in (str(flavor.get("str_id", "")), str(flavor.get("id", ""))):
                return str(flavor.get("str_id") or flavor["id"])
        named = [f for f in flavors if f.get("name") == name_or_id]
        if len(named) == 1:
            return str(named[0].get("str_id") or named[0]["id"])
        if named:
            raise ApiError(f"more than one flavor is named {name_or_id!r}; give its id")
        known = ", ".join(sorted(str(f.get("name")) for f in flavors))
        raise ApiError(f"no flavor {name_or_id!r}; known flavors: {known}")

    # the cloud administrator's management API -----------------------------------------------------
    def mgmt_instances(self, **filters: Any) -> list[dict[str, Any]]:
        """Every project's instances (admin role), all pages, filtered by project, engine, status, drifted."""
        query = {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in filters.items() if v is not None}
        found: list[dict[str, Any]] = []
        while True:
            page = self.get(f"/mgmt/instances?{urlencode(query)}")
            found += page["instances"]
            if not page.get("links") or not page["instances"]:
                return found
            query["marker"] = page["instances"][-1]["id"]

    def mgmt_instance(self, instance_id: str) -> dict[str, Any]:
        return self.get(f"/mgmt/instances/{instance_id}")["instance"]

    def fleet(self) -> dict[str, Any]:
        return self.get("/mgmt/fleet")["fleet"]

    def drift(self, instance_id: str) -> list[str]:
        return self.get(f"/mgmt/instances/{instance_id}/drift")["drift"]

    def reconcile(self, instance_id: str, dry_run: bool = False) -> Any:
        """Admin: converge the cloud back to what Hearth records (drift repair), any project's instance."""
        return self.act("POST", f"/mgmt/instances/{instance_id}/action", {"reconcile": {}}, dry_run)

    def reset_status(self, instance_id: str) -> Any:
        """Admin: an instance left in ERROR goes back to idle (any project's instance)."""
        return self.act("POST", f"/mgmt/instances/{instance_id}/action", {"reset_status": {}}, False)

    def migrate(self, to: str, project: str | None = None, batch: int | None = None, max_in_flight: int = 10,
                dry_run: bool = False) -> dict[str, Any]:
        body = {"to": to, "project": project, "batch": batch, "max_in_flight": max_in_flight, "dry_run": dry_run}
        answer = self.request("POST", "/mgmt/migrations", {"migration": {k: v for k, v in body.items()
                                                                         if v is not None}})
        return answer["plan"] if dry_run else answer["migration"]

    def migration(self, migration_id: str) -> dict[str, Any]:
        return self.get(f"/mgmt/migrations/{migration_id}")["migration"]

    def migration_action(self, migration_id: str, action: str) -> dict[str, Any]:
        return self.request("POST", f"/mgmt/migrations/{migration_id}/action", {action: {}})["migration"]

    def orphans(self) -> list[dict[str, Any]]:
        return self.get("/mgmt/orphans")["orphans"]

    def delete_orphans(self) -> dict[str, Any]:
        return self.request("DELETE", "/mgmt/orphans")

    # instances -------------------------------------------------------------------------------
    def list_instances(self) -> list[dict[str, Any]]:
        return self.get("/instances")["instances"]

    def get_instance(self, instance_id: str) -> dict[str, Any]:
        return self.get(f"/instances/{instance_id}")["instance"]

    def create_instance(self, name: str, flavor: str, size: int, datastore: str | None = None,
                        version: str | None = None, allowed_cidrs: list[str] | None = None,
                        dry_run: bool = False, *, nics: list[dict[str, str]] | None = None,
                        is_public: bool | None = None, databases: list[str] | None = None,
                        users: list[dict[str, Any]] | None = None, configuration: str | None = None,
                        ) -> dict[str, Any]:
        """The new instance, or with `dry_run` the plan of its build.

        `nics` are Trove's (`[{"net-id": ...}]`, also `subnet_id`, `ip_address`), `users` are
        `[{"name", "password", "databases": [{"name"}]}]`, `configuration` a configuration group id."""
        body: dict[str, Any] = {"name": name, "flavorRef": self.resolve_flavor(flavor), "volume": {"size": size}}
        if datastore or version:
            body["datastore"] = {k: v for k, v in (("type", datastore), ("version", version)) if v}
        access: dict[str, Any] = {}
        if is_public is not None:
            access["is_public"] = is_public
        if allowed_cidrs:
            access["allowed_cidrs"] = list(allowed_cidrs)
        if access:
            body["access"] = access
        if nics:
            body["nics"] = [dict(nic) for nic in nics]
        if databases:
            body["databases"] = [{"name": db} for db in databases]
        if users:
            body["users"] = [dict(user) for user in users]
        if configuration:
            body["configuration"] = configuration
        if dry_run:
            return self.act("POST", "/instances", {"instance": body}, dry_run=True)
        return self.request("POST", "/instances", {"instance": body})["instance"]

    def resize_flavor(self, instance_id: str, flavor: str, dry_run: bool = False) -> Any:
        body = {"resize": {"flavorRef": self.resolve_flavor(flavor)}}
        return self.act("POST", f"/instances/{instance_id}/action", body, dry_run)

    def resize_volume(self, instance_id: str, size: int, dry_run: bool = False) -> Any:
        return self.act("POST", f"/instances/{instance_id}/action", {"resize": {"volume": {"size": size}}}, dry_run)

    def update_access(self, instance_id: str, allowed_cidrs: list[str], dry_run: bool = False) -> Any:
        body = {"instance": {"access": {"allowed_cidrs": allowed_cidrs}}}
        return self.act("PUT", f"/instances/{instance_id}", body, dry_run)

    def delete_instance(self, instance_id: str, dry_run: bool = False) -> Any:
        return self.act("DELETE", f"/instances/{instance_id}", None, dry_run)

    def adopt(self, instance_id: str, dry_run: bool = False) -> Any:
        """Admin: move a natives instance into a Heat stack that adopts its resources."""
        return self.act("POST", f"/instances/{instance_id}/action", {"adopt": {}}, dry_run)

    def release(self, instance_id: str, dry_run: bool = False) -> Any:
        """Admin: abandon the instance's stack, handing its resources back to natives."""
        return self.act("POST", f"/instances/{instance_id}/action", {"release": {}}, dry_run)

    def restart(self, instance_id: str, dry_run: bool = False) -> Any:
        """Restart the database (the server and its addresses stay)."""
        return self.act("POST", f"/instances/{instance_id}/action", {"restart": {}}, dry_run)

    def rebuild(self, instance_id: str, image_id: str, dry_run: bool = False) -> Any:
        """Rebuild the instance's server from another guest image (data volume and addresses stay)."""
        return self.act("POST", f"/instances/{instance_id}/action", {"rebuild": {"image_id": image_id}}, dry_run)

    def upgrade(self, instance_id: str, version: str, dry_run: bool = False) -> Any:
        """Move the instance to another version of its datastore."""
        return self.act("PATCH", f"/instances/{instance_id}", {"instance": {"datastore_version": version}}, dry_run)

    def set_configuration(self, instance_id: str, configuration_id: str | None, dry_run: bool = False) -> Any:
        """Attach a configuration group (None: detach the attached one)."""
        return self.act("PUT", f"/instances/{instance_id}", {"instance": {"configuration": configuration_id}},
                        dry_run)

    def events(self, instance_id: str) -> list[dict[str, Any]]:
        return self.get(f"/instances/{instance_id}/events")["events"]

    def operations(self, instance_id: str) -> list[dict[str, Any]]:
        return self.get(f"/instances/{instance_id}/operations")["operations"]

    def find_instance(self, name_or_id: str) -> dict[str, Any]:
        """An instance by id, or by name when exactly one has it."""
        try:
            return self.get_instance(name_or_id)
        except ApiError as err:
            if err.status != 404:
                raise
        named = [i for i in self.list_instances() if i.get("name") == name_or_id]
        if len(named) == 1:
            return self.get_instance(named[0]["id"])
        if named:
            raise ApiError(f"more than one instance is named {name_or_id!r}; give its id", 409)
        raise ApiError(f"no instance {name_or_id!r}", 404)

    # security groups (Hearth's revival of Trove's security-group extension) ------------------
    def security_group(self, ref: str) -> dict[str, Any]:
        """An instance's group, by group id, instance id or (when unique) instance name."""
        try:
            return self.get(f"/security-groups/{ref}")["security_group"]
        except ApiError as err:
            if err.status != 404 or not any(i.get("name") == ref for i in self.list_instances()):
                raise
        return self.get(f"/security-groups/{self.find_instance(ref)['id']}")["security_group"]

    def add_rule(self, group_id: str, cidr: str, dry_run: bool = False) -> Any:
        body = {"security_group_rule": {"group_id": group_id, "cidr": cidr}}
        if dry_run:
            return self.act("POST", "/security-group-rules", body, dry_run=True)
        rules = self.request("POST", "/security-group-rules", body)["security_group_rule"]
        return rules if isinstance(rules, list) else [rules]

    def update_rule(self, rule_id: str, cidr: str, dry_run: bool = False) -> Any:
        body = {"security_group_rule": {"cidr": cidr}}
        if dry_run:
            return self.act("PUT", f"/security-group-rules/{rule_id}", body, dry_run=True)
        data = self.request("PUT", f"/security-group-rules/{rule_id}", body)
        return (data or {}).get("security_group_rule", {})

    def delete_rule(self, rule_id: str, dry_run: bool = False) -> Any:
        return self.act("DELETE", f"/security-group-rules/{rule_id}", None, dry_run)

    # databases, users and root of an instance ---------------------------------------------
    def list_databases(self, instance_id: str) -> list[dict[str, Any]]:
        return self.get(f"/instances/{instance_id}/databases")["databases"]

    def create_databases(self, instance_id: str, names: list[str]) -> Any:
        return self.request("POST", f"/instances/{instance_id}/databases",
                            {"databases": [{"name": n} for n in names]})

    def delete_database(self, instance_id: str, name: str) -> Any:
        return self.request("DELETE", f"/instances/{instance_id}/databases/{_seg(name)}")

    def list_users(self, instance_id: str) -> list[dict[str, Any]]:
        return self.get(f"/instances/{instance_id}/users")["users"]

    def create_users(self, instance_id: str, users: list[dict[str, Any]]) -> Any:
        """`users`: `[{"name", "password", "databases": [{"name"}]}]`."""
        return self.request("POST", f"/instances/{instance_id}/users", {"users": users})

    def get_user(self, instance_id: str, name: str) -> dict[str, Any]:
        return self.get(f"/instances/{instance_id}/users/{_seg(name)}")["user"]

    def update_user(self, instance_id: str, name: str, changes: dict[str, Any]) -> Any:
        """`changes`: any of `name`, `password`, `host`."""
        return self.request("PUT", f"/instances/{instance_id}/users/{_seg(name)}", {"user": changes})

    def delete_user(self, instance_id: str, name: str) -> Any:
        return self.request("DELETE", f"/instances/{instance_id}/users/{_seg(name)}")

    def user_databases(self, instance_id: str, name: str) -> list[dict[str, Any]]:
        return self.get(f"/instances/{instance_id}/users/{_seg(name)}/databases")["databases"]

    def grant(self, instance_id: str, name: str, databases: list[str]) -> Any:
        return self.request("PUT", f"/instances/{instance_id}/users/{_seg(name)}/databases",
                            {"databases": [{"name": db} for db in databases]})

    def revoke(self, instance_id: str, name: str, database: str) -> Any:
        return self.request("DELETE", f"/instances/{instance_id}/users/{_seg(name)}/databases/{_seg(database)}")

    def root_enabled(self, instance_id: str) -> bool:
        return bool(self.get(f"/instances/{instance_id}/root").get("rootEnabled"))

    def enable_root(self, instance_id: str) -> dict[str, Any]:
        """The root user: `{"name", "password"}` (the password is generated by the server)."""
        return self.request("POST", f"/instances/{instance_id}/root")["user"]

    def disable_root(self, instance_id: str) -> Any:
        return self.request("DELETE", f"/instances/{instance_id}/root")

    # configuration groups ----------------------------------------------------------------------
    def list_configurations(self) -> list[dict[str, Any]]:
        return self.get("/configurations")["configurations"]

    def get_configuration(self, configuration_id: str) -> dict[str, Any]:
        return self.get(f"/configurations/{_seg(configuration_id)}")["configuration"]

    def find_configuration(self, name_or_id: str) -> dict[str, Any]:
        """A configuration group by id, or by name when exactly one has it."""
        try:
            return self.get_configuration(name_or_id)
        except ApiError as err:
            if err.status != 404:
                raise
        named = [c for c in self.list_configurations() if c.get("name") == name_or_id]
        if len(named) == 1:
            return self.get_configuration(named[0]["id"])
        if named:
            raise ApiError(f"more than one configuration group is named {name_or_id!r}; give its id", 409)
        raise ApiError(f"no configuration group {name_or_id!r}", 404)

    def create_configuration(self, name: str, values: dict[str, Any], datastore: str | None = None,
                             version: str | None = None, description: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name, "values": values}
        if description is not None:
            body["description"] = description
        if datastore or version:
            body["datastore"] = {k: v for k, v in (("type", datastore), ("version", version)) if v}
        return self.request("POST", "/configurations", {"configuration": body})["configuration"]

    def update_configuration(self, configuration_id: str, values: dict[str, Any], name: str | None = None,
                             description: str | None = None) -> Any:
        """PUT: `values` replace every value of the group."""
        body: dict[str, Any] = {"values": values}
        body.update({k: v for k, v in (("name", name), ("description", description)) if v is not None})
        return self.request("PUT", f"/configurations/{_seg(configuration_id)}", {"configuration": body})

    def patch_configuration(self, configuration_id: str, values: dict[str, Any]) -> Any:
        """PATCH: `values` are set, the group's other values stay."""
        return self.request("PATCH", f"/configurations/{_seg(configuration_id)}",
                            {"configuration": {"values": values}})

    def delete_configuration(self, configuration_id: str) -> Any:
        return self.request("DELETE", f"/configurations/{_seg(configuration_id)}")

    def configuration_instances(self, configuration_id: str) -> list[dict[str, Any]]:
        return self.get(f"/configurations/{_seg(configuration_id)}/instances")["instances"]

    def configuration_parameters(self, datastore: str, version: str) -> list[dict[str, Any]]:
        path = f"/datastores/{_seg(datastore)}/versions/{_seg(version)}/parameters"
        return self.get(path)["configuration-parameters"]

    # waiting ---------------------------------------------------------------------------------
    def operation_ids(self, instance_id: str) -> set[str]:
        """The ids of the instance's operations so far (to tell a new one from older ones)."""
        return {op["id"] for op in self.operations(instance_id)}

    def watch(self, instance_id: str, known: set[str] | None = None, gone_ok: bool = False,
              interval: float = 0.25, timeout: float = 3600.0,
              ) -> Iterator[tuple[dict[str, Any] | None, list[dict[str, Any]]]]:
        """Yield (instance, its operations started after `known`) until none of them is running.

        The instance is None once it is gone (expected only with `gone_ok`, i.e. after a delete, which
        ends when the instance disappears, or when the delete operation fails).
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                # Operations first: an operation ends in the same transaction that updates the instance, so an
                # instance read after seeing it done shows the result (read the other way round, an operation
                # ending between the two reads would leave the stale instance as the last one yielded).
                operations = [op for op in self.operations(instance_id) if known is None or op["id"] not in known]
                instance = self.get_instance(instance_id)
            except ApiError as err:
                if err.status == 404 and gone_ok:
                    yield None, []
                    return
                raise
            yield instance, operations
            running = [op for op in operations if op.get("state") not in OPERATION_DONE]
            failed = [op for op in operations if op.get("state") == "failed"]
            if not running and (not gone_ok or failed or not operations):
                return
            if time.monotonic() > deadline:
                raise ApiError(f"gave up waiting for instance {instance_id} after {timeout:.0f} s")
            time.sleep(interval)

    def wait(self, instance_id: str, known: set[str] | None = None, gone_ok: bool = False,
             progress: Callable[[dict[str, Any] | None, dict[str, Any] | None], None] | None = None,
             timeout: float = 3600.0) -> dict[str, Any] | None:
        """Wait for the operations started after `known` (all, if None); raise ApiError if one failed.

        `progress(instance, running operation)` is called after every poll."""
        instance: dict[str, Any] | None = None
        operations: list[dict[str, Any]] = []
        for instance, operations in self.watch(instance_id, known, gone_ok=gone_ok, timeout=timeout):
            if progress:
                running = [op for op in operations if op.get("state") not in OPERATION_DONE]
                progress(instance, running[0] if running else None)
        failed = [op for op in operations if op.get("state") == "failed"]
        if instance is not None and failed:
            reason = failed[-1].get("error") or fault_message(instance) or "no reason recorded"
            raise ApiError(f"{failed[-1].get('kind', 'operation')} of instance {instance_id} failed "
                           f"({instance.get('status')}): {reason}")
        return instance


def _seg(value: str) -> str:
    """One URL path segment (a database or user name may hold '@', '/' or spaces)."""
    return quote(value, safe="")


def fault_message(instance: dict[str, Any]) -> str | None:
    fault = instance.get("fault")
    if isinstance(fault, dict):
        return fault.get("message")
    return fault or None
