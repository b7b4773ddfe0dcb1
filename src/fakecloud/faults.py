"""Fault injection: rules that make a service operation fail, stall or slow down.

A rule names a service and an operation (either may be `*`), what happens, and how often
(a probability and an optional count). Request-level rules (http_error, latency, quota) act before
the handler runs; resource-level rules (error_status, stuck) are taken by the backends at the moment
they schedule a transition, so a server really goes to ERROR or a resize really stays in RESIZE.
"""

from __future__ import annotations

import random
import threading
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

FaultAction = Literal["http_error", "latency", "quota", "error_status", "stuck"]
REQUEST_ACTIONS: frozenset[str] = frozenset({"http_error", "latency", "quota"})
RESOURCE_ACTIONS: frozenset[str] = frozenset({"error_status", "stuck"})


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
    fired: int = 0

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
        self, service: str, operation: str, actions: frozenset[str], project_id: str | None = None
    ) -> FaultRule | None:
        if not self._rules:
            return None
        with self._lock:
            for rule in self._rules:
                if rule.action not in actions or not rule.matches(service, operation, project_id):
                    continue
                if rule.probability < 1.0 and self._random.random() >= rule.probability:
                    continue
                rule.fired += 1
                if rule.count is not None:
                    rule.count -= 1
                    if rule.count == 0:
                        self._rules.remove(rule)
                return rule
        return None
