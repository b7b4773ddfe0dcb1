"""The raw Heat API client the orchestration tests share, for what openstacksdk hides or reports differently
(status codes, ADOPT_COMPLETE, the plugin's wire details)."""

from __future__ import annotations

import time
from typing import Any

import openstack
import pytest
import requests


class Heat:
    """Raw HTTP against one project's orchestration endpoint."""

    def __init__(self, fakecloud: Any, conn: openstack.connection.Connection) -> None:
        self.base = f"{fakecloud.url}/heat-api/v1/{conn.current_project_id}"
        self.headers = {"X-Auth-Token": conn.session.get_token()}

    def call(self, method: str, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        return requests.request(method, self.base + path, json=body, headers=self.headers, timeout=10, **kwargs)

    def ok(self, method: str, path: str, body: Any = None, status: int = 200, **kwargs: Any) -> Any:
        """The answer's JSON, once its status is the one expected."""
        response = self.call(method, path, body, **kwargs)
        assert response.status_code == status, response.text
        return response.json() if response.content else None

    def create(self, name: str, template: Any, **extra: Any) -> requests.Response:
        return self.call("POST", "/stacks", {"stack_name": name, "template": template, **extra})

    def created(self, name: str, template: dict[str, Any], **extra: Any) -> str:
        """POST /stacks, expecting 201; the stack's canonical /stacks/{name}/{id} path."""
        body = self.ok("POST", "/stacks", {"stack_name": name, "template": template, **extra}, status=201)
        return f"/stacks/{name}/{body['stack']['id']}"

    def status(self, name: str, stack_id: str) -> tuple[str, str]:
        stack = self.call("GET", f"/stacks/{name}/{stack_id}").json()["stack"]
        return stack["stack_status"], stack["stack_status_reason"]

    def wait(self, path: str, status: str, timeout: float = 15) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            stack = self.ok("GET", path)["stack"]
            if stack["stack_status"] == status or time.monotonic() > deadline:
                assert stack["stack_status"] == status, stack["stack_status_reason"]
                return stack
            time.sleep(0.05)


@pytest.fixture
def heat(fakecloud, os_conn) -> Heat:
    return Heat(fakecloud, os_conn)
