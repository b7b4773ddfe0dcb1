"""A small client for fakecloud's admin API, for tests, benchmarks and `hearth up`."""

from __future__ import annotations

from typing import Any

import requests


class CloudControl:
    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.base = base_url.rstrip("/") + "/_fakecloud"
        self.session = requests.Session()
        self.timeout = timeout

    def _call(self, method: str, path: str, json: Any = None, params: dict | None = None) -> Any:
        response = self.session.request(method, self.base + path, json=json, params=params, timeout=self.timeout)
        if response.status_code >= 400:
            raise RuntimeError(f"fakecloud admin {method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/health")

    def reset(self) -> None:
        self._call("POST", "/reset")

    def add_fault(self, **rule: Any) -> dict[str, Any]:
        """Arm a rule (fields of openstack_fakecloud.faults.FaultRule): action http_error, latency, quota, disconnect,
        error_status or stuck; `when="after"` lets the handler's change happen before the failure."""
        return self._call("POST", "/faults", json=rule)["fault"]

    def faults(self) -> list[dict[str, Any]]:
        return self._call("GET", "/faults")["faults"]

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def clock(self) -> dict[str, Any]:
        return self._call("GET", "/clock")

    def advance(self, seconds: float) -> dict[str, Any]:
        return self._call("POST", "/clock", json={"advance": seconds})

    def freeze(self, frozen: bool = True) -> dict[str, Any]:
        return self._call("POST", "/clock", json={"frozen": frozen})

    def set_delays(self, profile: str | None = None, **delays: float) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if profile:
            body["profile"] = profile
        if delays:
            body["delays"] = delays
        return self._call("PUT", "/delays", json=body)["delays"]

    def set_microversions(self, compute: str | None = None, volume: str | None = None) -> dict[str, str]:
        body = {k: v for k, v in (("compute", compute), ("volume", volume)) if v}
        return self._call("PUT", "/microversions", json=body)

    def requests(self, since: int = 0, log: bool = True, request_id: str | None = None) -> dict[str, Any]:
        """The request accounting; `request_id` keeps the requests whose global or local id is that one."""
        params: dict[str, Any] = {"since": since, "log": "1" if log else "0"}
        if request_id:
            params["request_id"] = request_id
        return self._call("GET", "/requests", params=params)

    def reset_requests(self) -> None:
        self._call("DELETE", "/requests")

    def inventory(self, project: str | None = None) -> dict[str, list[dict[str, Any]]]:
        return self._call("GET", "/inventory", params={"project": project} if project else None)["resources"]

    def guests(self) -> list[dict[str, Any]]:
        return self._call("GET", "/guests")["guests"]

    def volume_usage(self, volume_id: str) -> dict[str, Any]:
        return self._call("GET", f"/volumes/{volume_id}/usage")

    def register_service(self, type: str, name: str, url: str) -> None:
        self._call("POST", "/catalog", json={"type": type, "name": name, "url": url})

    def add_user(self, name: str, password: str, project: str, roles: list[str] | None = None) -> dict:
        return self._call("POST", "/users", json={"name": name, "password": password, "project": project,
                                                  "roles": roles or ["member", "reader"]})["user"]

    def save(self, path: str) -> None:
        self._call("POST", "/save", json={"path": path})
