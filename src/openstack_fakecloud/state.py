"""The cloud: configuration, clock, scheduler, faults, accounting and one backend per service.

Backends hold the resources and are the only code that changes them. They reach each other through
the cloud (`cloud.volume.attach(...)` from Nova), so an attachment or a port is stored once and every
service's view reads the same record.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from openstack_fakecloud.accounting import Accounting
from openstack_fakecloud.backend import Backend
from openstack_fakecloud.clock import Clock, Scheduler, Timer
from openstack_fakecloud.config import CatalogEntry, CloudConfig
from openstack_fakecloud.errors import CloudError, QuotaExceeded
from openstack_fakecloud.faults import FaultRegistry, FaultRule
from openstack_fakecloud.framework import Version, parse_version

log = logging.getLogger(__name__)

STATE_FORMAT = 1

# Status a quota refusal carries in each service (what the real services answer).
QUOTA_STATUS = {"compute": 403, "volume": 413, "network": 409}

# The built-in services: catalog type, name and endpoint path ({project_id} filled per token).
BUILTIN_CATALOG: list[tuple[str, str, str, str]] = [
    # (service key, catalog type, catalog name, path)
    ("identity", "identity", "keystone", "/v3"),
    ("compute", "compute", "nova", "/compute/v2.1"),
    ("volume", "volumev3", "cinderv3", "/volume/v3/{project_id}"),
    ("volume", "block-storage", "cinder", "/volume/v3/{project_id}"),
    ("network", "network", "neutron", "/network"),
    ("image", "image", "glance", "/image"),
    ("orchestration", "orchestration", "heat", "/heat-api/v1/{project_id}"),
]


class Cloud:
    def __init__(self, config: CloudConfig | None = None, base_url: str = "http://127.0.0.1") -> None:
        from openstack_fakecloud.compute.backend import ComputeBackend
        from openstack_fakecloud.guests.plane import GuestPlane
        from openstack_fakecloud.identity.backend import IdentityBackend
        from openstack_fakecloud.image.backend import ImageBackend
        from openstack_fakecloud.network.backend import NetworkBackend
        from openstack_fakecloud.orchestration.backend import OrchestrationBackend
        from openstack_fakecloud.volume.backend import VolumeBackend

        self.config = config or CloudConfig()
        self.base_url = base_url.rstrip("/")
        self.clock = Clock()
        self.scheduler = Scheduler(self.clock)
        self.faults = FaultRegistry(self.config.faults)
        self.accounting = Accounting()
        self.delays = self.config.delays.model_copy()
        self.extra_catalog: list[CatalogEntry] = list(self.config.catalog)
        self.disabled_services: set[str] = set(self.config.disabled_services)
        self.compute_max: Version = parse_version(self.config.compute_max_microversion)
        self.volume_max: Version = parse_version(self.config.volume_max_microversion)
        # Order matters: later backends may read earlier ones while seeding.
        self.identity = IdentityBackend(self)
        self.image = ImageBackend(self)
        self.network = NetworkBackend(self)
        self.volume = VolumeBackend(self)
        self.compute = ComputeBackend(self)
        self.orchestration = OrchestrationBackend(self)
        self.guests = GuestPlane(self)

    @property
    def backends(self) -> list[Backend]:
        return [self.identity, self.image, self.network, self.volume, self.compute, self.orchestration]

    # time -----------------------------------------------------------------------------------
    def after(self, delay_name: str, fn: Any, *args: Any) -> Timer:
        """Schedule a transition after the configured delay of that name."""
        return self.scheduler.call_later(getattr(self.delays, delay_name), fn, *args)

    # faults ---------------------------------------------------------------------------------
    def raise_fault(self, service: str, operation: str, fault: FaultRule) -> None:
        if fault.action == "quota":
            message = fault.message or f"Quota exceeded for {service} operation {operation} (injected)."
            raise QuotaExceeded(message, status=QUOTA_STATUS.get(service, 403), error_type="OverQuota")
        message = fault.message or f"Injected fault: {service} {operation} failed."
        raise CloudError(message, status=fault.status)

    # catalog --------------------------------------------------------------------------------
    def service_enabled(self, service: str) -> bool:
        return service not in self.disabled_services

    def catalog(self, project_id: str) -> list[dict[str, Any]]:
        entries: list[tuple[str, str, str]] = [
            (ctype, name, self.service_url(key, path))
            for key, ctype, name, path in BUILTIN_CATALOG
            if self.service_enabled(key)
        ]
        entries += [
            (e.type, e.name, e.url.replace("{base}", self.base_url))
            for e in self.extra_catalog
            if self.service_enabled(e.type)
        ]
        region = self.config.region
        catalog = []
        for ctype, name, url in entries:
            url = url.replace("{project_id}", project_id).replace("$(project_id)s", project_id)
            catalog.append(
                {
                    "type": ctype,
                    "name": name,
                    "id": f"{ctype}-{name}",
                    "endpoints": [
                        {"id": f"{ctype}-{iface}", "interface": iface, "region": region,
                         "region_id": region, "url": url}
                        for iface in ("public", "internal", "admin")
                    ],
                }
            )
        return catalog

    def service_url(self, key: str, path: str) -> str:
        """A built-in service's endpoint: fakecloud's own, or an external orchestration (upstream Heat)."""
        if key == "orchestration" and self.config.orchestration_url:
            return self.config.orchestration_url.replace("{base}", self.base_url)
        return self.base_url + path

    def register_catalog(self, entry: CatalogEntry) -> None:
        self.extra_catalog = [e for e in self.extra_catalog if e.type != entry.type] + [entry]

    # lifecycle ------------------------------------------------------------------------------
    def reset(self) -> None:
        """Back to a fresh cloud: seeded resources only, no faults, no pending transitions."""
        self.scheduler.clear()
        self.faults = FaultRegistry(self.config.faults)
        self.accounting.reset()
        for backend in self.backends:
            backend.reset()
        self.guests.reset()

    def snapshot(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "clock_offset": self.clock.offset,
            "catalog": [e.model_dump() for e in self.extra_catalog],
            "backends": {b.name: b.dump() for b in self.backends},
        }

    def restore(self, data: dict[str, Any]) -> None:
        if data.get("format") != STATE_FORMAT:
            raise ValueError(f"unsupported state format {data.get('format')!r}")
        self.extra_catalog = [CatalogEntry.model_validate(e) for e in data.get("catalog", [])]
        for backend in self.backends:
            if backend.name in data["backends"]:
                backend.load(data["backends"][backend.name])

    def save(self, path: str | Path) -> None:
        """Write the state atomically (a crash mid-write never leaves a torn file)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "w") as handle:
            json.dump(self.snapshot(), handle)
        os.replace(tmp, path)

    def load(self, path: str | Path) -> bool:
        path = Path(path)
        if not path.exists():
            return False
        self.restore(json.loads(path.read_text()))
        log.info("fakecloud state loaded from %s", path)
        return True
