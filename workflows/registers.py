"""The consent register (E3) and guardian directory (E2), as read before a decision.

A decision reads a snapshot; the versions it read go into the audit entry, so a
lead can tell which consent record a removal was based on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["ChildRecord", "Registers"]


@dataclass(frozen=True, slots=True)
class ChildRecord:
    """What the registers hold about one child: consents by purpose and guardian refs."""

    child_id: str
    consent: Mapping[str, bool] = field(default_factory=dict)
    guardians: tuple[str, ...] = ()
    version: int = 0
    # when each purpose's consent was last given or withdrawn (the event's time, RFC 3339)
    consent_at: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Registers:
    children: Mapping[str, ChildRecord] = field(default_factory=dict)

    def has_consent(self, child_id: str, purpose: str) -> bool:
        record = self.children.get(child_id)
        return bool(record and record.consent.get(purpose, False))

    def guardians_of(self, child_id: str) -> tuple[str, ...]:
        record = self.children.get(child_id)
        return record.guardians if record else ()

    def versions(self) -> dict[str, int]:
        return {child: record.version for child, record in sorted(self.children.items())}
