"""Fault injection: rules that make a service operation fail, stall, slow down or drop the connection.

A rule names a service and an operation (either may be `*`), what happens, and how often
(a probability and an optional count). Request-level rules act in the wire layer around the handler:

- `latency` sleeps `latency_ms` first. Latency rules are drawn apart from the failing ones, so one request
  can be both slow and failed (a degraded cloud is both at once).
- `http_error` answers `status` (500 by default) in the service's own error shape; `quota` answers the
  service's over-quota error (Nova 403, Cinder 413, Neutron 409).
- `disconnect` answers nothing: the server resets the TCP connection (a load balancer or a restarting API
  worker does that), so the client reads a reset (or, if it was still uploading a body, the end of the stream
  with no response), which keystoneauth raises as `ConnectFailure`. Taking such a rule raises DropConnection,
  so it works wherever a handler takes request faults (Cinder's action URL takes its sub-operations').

`when` places a request-level rule: `before` (the default) fires before the handler runs, so the cloud is
unchanged; `after` fires once the handler has done its work, so the cloud changed but the client got a 5xx
or a reset instead of the answer (a create that "failed" yet made its server). `after` applies to the
route's own operation (for Cinder's action URL, `volume.action`).

Resource-level rules (error_status, stuck) are taken by the backends at the moment they schedule a
transition, so a server really goes to ERROR or a resize really stays in RESIZE.
"""

from __future__ import annotations

import random
import threading
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

FaultAction = Literal["http_error", "latency", "quota", "disconnect", "error_status", "stuck"]
FaultWhen = Literal["before", "after"]
LATENCY_ACTIONS: frozenset[str] = frozenset({"latency"})
FAILING_ACTIONS: frozenset[str] = frozenset({"http_error", "quota", "disconnect"})
REQUEST_ACTIONS: frozenset[str] = LATENCY_ACTIONS | FAILING_ACTIONS
RESOURCE_ACTIONS: frozenset[str] = frozenset({"error_status", "stuck"})
_AFTER_ACTIONS: frozenset[str] = frozenset({"http_error", "latency", "disconnect"})


class DropConnection(Exception):  # noqa: N818 - an instruction to the wire layer, not an error
    """Taking a `disconnect` rule raises this: the wire layer resets the client's connection, answering nothing."""


class FaultRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    service: str = "*"
    operation: str = "*"
    action: FaultAction
    status: int = 500
    message: str | None = None
    latency_ms: int = 0
    probability: float = Field(default=1.0, ge=0.0, le=1.0)
    count: int | None = Field(default=None, ge=1)
    project_id: str | None = None
    when: FaultWhen = "before"
    fired: int = 0

    @model_validator(mode="after")
    def _when_fits_the_action(self) -> FaultRule:
        """Refuse a rule that could never fire as asked, rather than accept it and stay silent."""
        if self.when == "after" and self.action not in _AFTER_ACTIONS:
            raise ValueError(f"when='after' applies to {sorted(_AFTER_ACTIONS)}, not {self.action!r}")
        return self

    def matches(self, service: str, operation: str, project_id: str | None) -> bool:
        return (
            self.service in ("*", service)
            and self.operation in ("*", operation)
            and (self.project_id is None or self.project_id == project_id)
        )


class FaultRegistry:
    """The active rules. `take` consumes one firing of the first matching rule."""

    def __init__(self, rules: list[FaultRule] | None = None, seed: int | None = None) -> None:
        self._rules: list[FaultRule] = [r.model_copy() for r in rules or []]
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self._rules.append(rule)
        return rule

    def remove(self, rule_id: str) -> bool:
        with self._lock:
            before = len(self._rules)
            self._rules = [r for r in self._rules if r.id != rule_id]
            return len(self._rules) != before

    def clear(self) -> None:
        with self._lock:
            self._rules = []

    def rules(self) -> list[FaultRule]:
        return list(self._rules)

    def take(
        self, service: str, operation: str, actions: frozenset[str], project_id: str | None = None,
        when: FaultWhen = "before",
    ) -> FaultRule | None:
        """The first matching rule that fires, or None. A `disconnect` rule raises DropConnection instead:
        no caller can answer it, and the wire layer catches it wherever in a handler it is taken."""
        if not self._rules:
            return None
        with self._lock:
            taken = None
            for rule in self._rules:
                if (rule.action not in actions or rule.when != when
                        or not rule.matches(service, operation, project_id)):
                    continue
                if rule.probability < 1.0 and self._random.random() >= rule.probability:
                    continue
                rule.fired += 1
                if rule.count is not None:
                    rule.count -= 1
                    if rule.count == 0:
                        self._rules.remove(rule)
                taken = rule
                break
        if taken is not None and taken.action == "disconnect":
            raise DropConnection()
        return taken
