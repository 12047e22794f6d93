"""The aggregates and what a decision produces: cases, members, effects, timers, audit.

Plain pydantic models so the store can keep them as JSON and a replay can rebuild
them without Redis.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .ids import CaseKind, EffectKind, MemberStatus, Outcome, State, TimerKind

__all__ = [
    "AuditEntry",
    "Case",
    "Command",
    "Decision",
    "Effect",
    "Member",
    "Timer",
    "case_tag",
    "member_tag",
]


def member_tag(member_id: str) -> str:
    """Hash tag shared by a member, their post cases and their outbox rows."""
    return f"m:{member_id}"


def case_tag(case_id: str) -> str:
    """Hash tag of a case that is its own aggregate (complaint, allegation, appeal)."""
    return case_id


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Effect(_Model):
    """Something to do in the world, addressed to a ref, never a contact."""

    effect_id: str
    kind: EffectKind
    case_id: str
    recipient: str
    clauses: tuple[str, ...] = ()
    detail: dict[str, str] = {}


class Timer(_Model):
    """A deadline; its handler re-checks the aggregate so a stale timer does nothing."""

    timer_id: str
    kind: TimerKind
    tag: str
    target: str
    due: datetime
    level: int = 0


class Command(_Model):
    """A change that a decision sends to another aggregate, applied once by its own actor."""

    command_id: str
    kind: str
    tag: str
    target: str
    case_id: str
    detail: dict[str, str] = {}


class AuditEntry(_Model):
    """One step of one chain (a case, or a member's status history)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    case_id: str
    seq: int
    at: str
    actor: str
    event_id: str
    from_: str = Field(alias="from")
    to: str
    trigger: str
    rules: tuple[str, ...] = ()
    clauses: tuple[str, ...] = ()
    effects: tuple[dict[str, str], ...] = ()
    policy_version: str
    detail: dict[str, Any] = {}
    prev_hash: str
    hash: str

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class Case(_Model):
    case_id: str
    kind: CaseKind
    tag: str
    state: State = State.RECEIVED
    outcome: Outcome = Outcome.OPEN
    rules: tuple[str, ...] = ()
    clauses: tuple[str, ...] = ()
    member_id: str | None = None
    opened_at: str = ""
    source: str = ""
    event_id: str = ""
    linked_case: str | None = None
    category: str | None = None
    subject_ref: str | None = None
    children: tuple[str, ...] = ()
    escalation_level: int = 0
    acknowledged: bool = False
    pending_timer: str | None = None
    #: the closing step's time (its event's ``time``): a lead's decision dated before it
    #: that arrives after it (workers promise no order) is still carried out (reviews.py)
    closed_at: str = ""
    #: the state the case closed from, and the late decisions carried out since
    #: (reviews.py: the guardians are told, or not, at most once, as in order)
    closed_from: str = ""
    late_decisions: tuple[str, ...] = ()
    version: int = 0
    seq: int = 0
    head: str = ""
    text_sha256: str = ""
    matches: tuple[dict[str, Any], ...] = ()


class Member(_Model):
    member_id: str
    status: MemberStatus = MemberStatus.ACTIVE
    warning_cases: tuple[str, ...] = ()
    overturned: tuple[str, ...] = ()
    removal_case: str | None = None
    removal_kind: str | None = None
    suspended_until: str | None = None
    temporary_removals: int = 0
    pending_timer: str | None = None
    # C7 repeats: (digest of the words, event time) of recent posts; hashes, never text
    recent_posts: tuple[tuple[str, str], ...] = ()
    version: int = 0
    seq: int = 0
    head: str = ""

    @property
    def warnings(self) -> int:
        """Warnings in force: an overturned warning no longer counts."""
        return len(self.warning_cases)

    @property
    def chain_id(self) -> str:
        return f"member:{self.member_id}"


class Decision(_Model):
    """What ``decide`` returns: new aggregates, audit entries, effects, timers, commands."""

    case: Case | None = None
    member: Member | None = None
    audit: tuple[AuditEntry, ...] = ()
    effects: tuple[Effect, ...] = ()
    timers: tuple[Timer, ...] = ()
    commands: tuple[Command, ...] = ()
    noop: bool = False
