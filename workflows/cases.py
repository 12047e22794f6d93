"""Opening complaint, allegation, appeal and member-request cases (S4, S5, E1)."""

from __future__ import annotations

from collections.abc import Sequence

from ..events.envelope import Event
from ..events.errors import CaseNotFound
from ..events.models import (
    AllegationReported,
    AppealLodged,
    ComplaintReceived,
    MemberRemovalRequested,
)
from .alerts import escalate_with_deadline
from .audit import text_hash
from .ids import CaseKind, Clause, EffectKind, MemberStatus, Outcome
from .model import Case, Member, member_tag
from .screening import Match, screen_text
from .steps import Builder, iso

__all__ = ["open_allegation", "open_appeal", "open_complaint", "request_removal"]


def _new(event: Event, case_id: str, kind: CaseKind, tag: str, **fields: object) -> Case:
    return Case.model_validate(
        {
            "case_id": case_id,
            "kind": kind,
            "tag": tag,
            "opened_at": iso(event.time),
            "source": event.source,
            "event_id": event.id,
            **fields,
        }
    )


def open_complaint(
    b: Builder,
    event: Event,
    data: ComplaintReceived,
    linked: Case | None,
    *,
    text_matches: Sequence[Match] | None = None,
) -> None:
    """S5: acknowledged at once, screened with what it points at, escalated with a deadline."""
    case_id = f"complaint:{data.complaint_id}"
    b.case = _new(
        event,
        case_id,
        CaseKind.COMPLAINT,
        case_id,
        member_id=data.about_member_id or (linked.member_id if linked else None),
        linked_case=f"post:{data.about_post_id}" if data.about_post_id else None,
        text_sha256=text_hash(data.text),
    )
    matches = list(text_matches) if text_matches is not None else screen_text(data.text, b.policy)
    rules = tuple(sorted({m.rule.value for m in matches} | set(linked.rules if linked else ())))
    ack = b.effect(
        EffectKind.COMPLAINANT_ACK,
        data.complainant_ref,
        case_id=case_id,
        clauses=(Clause.S5.value,),
    )
    b.move(
        "screen",
        rules=rules,
        clauses=(Clause.S5.value,),
        effects=[ack],
        detail={
            "matches": [m.as_dict() for m in matches],
            "linked_case": b.case.linked_case,
            "linked_outcome": linked.outcome.value if linked else None,
            "text_sha256": b.case.text_sha256,
        },
        update={"rules": rules},
    )
    escalate_with_deadline(b, start=event.time, reason="complaint")


def open_allegation(b: Builder, event: Event, data: AllegationReported) -> None:
    """E1: every allegation escalates to the lead with a deadline by category."""
    case_id = f"allegation:{data.allegation_id}"
    b.case = _new(
        event,
        case_id,
        CaseKind.ALLEGATION,
        case_id,
        category=data.category.value,
        subject_ref=data.subject_ref,
        children=data.children,
        text_sha256=text_hash(data.text),
    )
    b.move(
        "screen",
        clauses=(Clause.E1.value,),
        detail={
            "category": data.category.value,
            "subject_role": data.subject_role.value,
            "children": len(data.children),
            "text_sha256": b.case.text_sha256,
        },
    )
    escalate_with_deadline(b, start=event.time, reason=f"allegation:{data.category.value}")


def open_appeal(b: Builder, event: Event, data: AppealLodged, linked: Case | None) -> None:
    """An appeal opens a linked case for a reviewer; the appealed case must exist.

    Cites E1: the engine's own sanctions are open to a fair second look.
    """
    if linked is None:
        raise CaseNotFound(data.case_id)
    case_id = f"appeal:{data.appeal_id}"
    b.case = _new(
        event,
        case_id,
        CaseKind.APPEAL,
        case_id,
        member_id=data.member_id,
        linked_case=data.case_id,
        text_sha256=text_hash(data.text),
    )
    b.move(
        "screen",
        detail={
            "linked_case": data.case_id,
            "linked_outcome": linked.outcome.value,
            # an appeal about another member's case can change nobody's record: say so
            "appellant_is_member": linked.member_id == data.member_id,
            "text_sha256": b.case.text_sha256,
        },
    )
    alert = b.effect(
        EffectKind.DSL_ALERT,
        b.policy.escalation.review_ref,
        case_id=case_id,
        clauses=(Clause.E1.value,),
        detail={"reason": "appeal"},
    )
    b.move(
        "escalate",
        clauses=(Clause.E1.value,),
        effects=[alert],
        detail={"linked_case": data.case_id},
    )


def request_removal(b: Builder, event: Event, data: MemberRemovalRequested, member: Member) -> None:
    """S4: a member may leave at any time; immediate, recorded, no sanction.

    The member case shares the member's own audit chain (``member:<id>``).
    """
    case_id = f"member:{data.member_id}"
    b.member = member
    b.case = _new(
        event,
        case_id,
        CaseKind.MEMBER,
        member_tag(data.member_id),
        member_id=data.member_id,
        seq=member.seq,
        head=member.head,
    )
    notice = b.effect(
        EffectKind.REMOVAL_NOTICE,
        data.member_id,
        case_id=case_id,
        clauses=(Clause.S4.value,),
        detail={"removal": "at_own_request"},
    )
    status = MemberStatus.REMOVED
    b.move(
        "close",
        clauses=(Clause.S4.value,),
        effects=[notice],
        detail={"member_status": f"{member.status.value}->{status.value}"},
        update={"outcome": Outcome.LEFT},
    )
    b.member = member.model_copy(
        update={
            "status": status,
            "removal_case": case_id,
            "removal_kind": "request",
            "pending_timer": None,
            "suspended_until": None,
            "seq": b.case.seq,
            "head": b.case.head,
        }
    )
