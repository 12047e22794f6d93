"""``decide``: the one pure function from (case, event, policy, registers, now) to a Decision.

Pure so a year of events can be replayed under another policy in a plain loop,
with no Redis and no queue (E6: a policy change can be tried before it is made).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ..events.envelope import Event
from ..events.models import (
    AllegationReported,
    AppealLodged,
    CaseReviewed,
    ComplaintReceived,
    ConsentRecorded,
    ConsentWithdrawn,
    GuardianRegistered,
    MemberRemovalRequested,
    PostSubmitted,
)
from .alerts import repeat_alert
from .cases import open_allegation, open_appeal, open_complaint, request_removal
from .ids import TimerKind
from .ladder import lift, reinstate
from .model import Case, Command, Decision, Member, Timer
from .policy import Policy
from .posts import open_post
from .registers import ChildRecord, Registers
from .reviews import apply_review, sanction_closed_post
from .screening import Match
from .steps import Builder

__all__ = ["decide", "decide_command", "decide_register", "decide_timer"]


def _actor(event: Event) -> str:
    if isinstance(event.data, CaseReviewed):
        return f"human:{event.data.reviewer_ref}"
    return "system:screening"


def decide(
    case: Case | None,
    event: Event,
    policy: Policy,
    registers: Registers,
    now: datetime,
    *,
    member: Member | None = None,
    linked: Case | None = None,
    text_matches: Sequence[Match] | None = None,
    audit: bool = True,
) -> Decision:
    """The steps an event causes. An event about a case that already exists (a
    republished post, a second appeal with the same id) changes nothing.

    ``text_matches``, when given, stands in for screening the event's text: a replay
    passes the screening recorded in the archive for an event whose text retention
    has erased (E4), or reuses it when the policy's screening is unchanged. ``audit=False``
    (a what-if replay) takes the same steps without writing their audit entries."""
    data = event.data
    b = Builder(
        policy,
        now,
        (event.source, event.id),
        _actor(event),
        case=case,
        member=member,
        event_time=event.time,
        record=audit,
    )
    if isinstance(data, CaseReviewed):
        if case is None:
            from ..events.errors import CaseNotFound

            raise CaseNotFound(data.case_id)
        apply_review(b, case, data, registers)
        return b.build(case, member)
    if case is not None:
        return Decision(noop=True)
    if isinstance(data, PostSubmitted):
        author = member or Member(member_id=data.member_id)
        open_post(b, event, data, registers, author, text_matches=text_matches)
    elif isinstance(data, ComplaintReceived):
        open_complaint(b, event, data, linked, text_matches=text_matches)
    elif isinstance(data, AllegationReported):
        open_allegation(b, event, data)
    elif isinstance(data, AppealLodged):
        open_appeal(b, event, data, linked)
    elif isinstance(data, MemberRemovalRequested):
        request_removal(b, event, data, member or Member(member_id=data.member_id))
    return b.build(case, member)


def decide_timer(
    timer: Timer,
    policy: Policy,
    now: datetime,
    *,
    case: Case | None = None,
    member: Member | None = None,
    audit: bool = True,
) -> Decision:
    """A deadline fell due. Stale timers (the aggregate moved on) decide nothing."""
    origin = ("timer", timer.timer_id)
    b = Builder(policy, now, origin, "system:timers", case=case, member=member, record=audit)
    if timer.kind is TimerKind.SUSPENSION_EXPIRY:
        reinstate(b, timer_id=timer.timer_id)
    else:
        repeat_alert(b, timer)
    return b.build(case, member)


def decide_command(
    command: Command,
    policy: Policy,
    now: datetime,
    *,
    case: Case | None = None,
    member: Member | None = None,
    audit: bool = True,
) -> Decision:
    """A change another aggregate's decision sent here through the outbox."""
    origin = ("command", command.command_id)
    b = Builder(policy, now, origin, "system:commands", case=case, member=member, record=audit)
    if command.kind == "overturn":
        lift(b, case_id=command.case_id)
    elif command.kind == "sanction_post" and case is not None:
        sanction_closed_post(b, case)
    return b.build(case, member)


def _consent(
    record: ChildRecord, data: ConsentRecorded | ConsentWithdrawn, when: datetime
) -> tuple[dict[str, bool], dict[str, str]]:
    """Written consent by purpose (E3), the latest event's word winning by the event's time.

    Workers promise no order: a consent given before a withdrawal but handled after it
    must not bring the consent back. At the same instant the withdrawal wins (E7).
    """
    consent, consent_at = dict(record.consent), dict(record.consent_at)
    given = isinstance(data, ConsentRecorded)
    for purpose in data.purposes:
        before = consent_at.get(purpose)
        last = datetime.fromisoformat(before) if before else None
        if last is None or when > last or (when == last and not given):
            consent[purpose] = given
            consent_at[purpose] = when.isoformat()
    return consent, consent_at


def decide_register(event: Event, record: ChildRecord | None) -> ChildRecord:
    """Consent and guardian events update the registers; a withdrawal counts from the moment
    it is recorded, and an older consent handled later does not undo it (E3)."""
    data = event.data
    assert isinstance(data, ConsentRecorded | ConsentWithdrawn | GuardianRegistered)
    record = record or ChildRecord(child_id=data.child_id)
    consent, consent_at = dict(record.consent), dict(record.consent_at)
    guardians = record.guardians
    if isinstance(data, ConsentRecorded | ConsentWithdrawn):
        consent, consent_at = _consent(record, data, event.time)
    else:
        guardians = tuple(dict.fromkeys((*guardians, *(g.guardian_ref for g in data.guardians))))
    return ChildRecord(
        child_id=data.child_id,
        consent=consent,
        guardians=guardians,
        version=record.version + 1,
        consent_at=consent_at,
    )
