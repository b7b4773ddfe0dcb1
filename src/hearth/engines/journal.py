"""A typed view over an operation's journal (`OperationContext.journal`, persisted by the task manager as one
JSON dict): the resource ids a resumed attempt reads back, apart from the progress notes.

The dict stays the storage (the OperationContext protocol is unchanged); this only names what is in it.
Resource ids sit under each kind's `journal_key` (resources.KINDS: server_id, volume_id, secgroup_id, ...);
everything else is a progress note, under one of the NOTE_* keys below.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hearth.engines import resources
from hearth.engines.base import PROVISION_CLEAN, Resources

# Progress notes: how far an operation got (never a cloud resource's id of a kind).
NOTE_PROVISION_STARTED = "provision_started"  # an attempt got past preflight and may have created resources
NOTE_PROVISION_CLEAN = PROVISION_CLEAN  # set by the task manager on a delete, see base.PROVISION_CLEAN
NOTE_RULE_IDS = "rule_ids"  # Hearth rule id -> Neutron rule id, as converged so far
NOTE_VOLUME_ATTACHED_TO = "volume_attached_to"
NOTE_VOLUME_STEP = "volume_step"
NOTE_STACK_ID = "stack_id"  # the instance's stack, once one exists (create or find)
NOTE_STACK_UPDATE = "stack_update"  # a stack update was sent: the stack may already hold the new template
NOTE_STACK_RETRIES = "stack_retries"  # stack creates retried after a Heat outage
NOTE_ADOPT_STACK_ID = "adopt_stack_id"  # the stack an adopt created
NOTE_RELEASED_STACK_ID = "released_stack_id"  # the stack a release abandoned
#: A fleet migration's plan found the cloud equal to the record at this time (epoch seconds): a move queued soon
#: after trusts that check instead of reading every resource again (migration.CHECK_TRUST_SECONDS).
NOTE_CHECKED_AT = "cloud_checked_at"
NOTE_VERIFIED = "verified"  # adopt/release: how the cloud differed from the record at the end ([]: not at all)


class Journal:
    """Read access to a journal dict, typed: `ids` (kind key -> cloud id) and `notes` (the rest)."""

    __slots__ = ("data",)

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data

    @property
    def ids(self) -> dict[str, str]:
        """The resource ids recorded so far, by kind key (what a resumed attempt reuses or cleans up)."""
        return resources.ids_of(Resources(), self.data)

    def id(self, kind: resources.Kind) -> str | None:
        value = self.data.get(kind.journal_key)
        return str(value) if value else None

    @property
    def notes(self) -> dict[str, Any]:
        id_keys = {kind.journal_key for kind in resources.KINDS}
        return {key: value for key, value in self.data.items() if key not in id_keys}

    @property
    def provision_started(self) -> bool:
        return bool(self.data.get(NOTE_PROVISION_STARTED))

    @property
    def provision_clean(self) -> bool:
        return bool(self.data.get(NOTE_PROVISION_CLEAN))

    @property
    def rule_ids(self) -> dict[str, str]:
        return dict(self.data.get(NOTE_RULE_IDS) or {})

    @property
    def stack_id(self) -> str | None:
        return self.data.get(NOTE_STACK_ID) or None

    @property
    def stack_update_sent(self) -> bool:
        return NOTE_STACK_UPDATE in self.data

    @property
    def stack_retries(self) -> int:
        return int(self.data.get(NOTE_STACK_RETRIES) or 0)

    @property
    def adopt_stack_id(self) -> str | None:
        return self.data.get(NOTE_ADOPT_STACK_ID) or None

    @property
    def released_stack_id(self) -> str | None:
        return self.data.get(NOTE_RELEASED_STACK_ID) or None


def id_entries(ids: Mapping[str, str]) -> dict[str, str]:
    """The journal entries (for ctx.record) recording resource ids given by kind key."""
    return resources.journal_ids(ids)
