"""Human review decisions: checked against the case's kind and state, then applied.

A decision the state does not allow is refused with the case id, its state and the
decisions it allows, so the lead knows what they can do instead.

One exception, because workers promise no order between events: a decision dated
before the case closed that arrives after the close (a referral to the police and then
the close, published together, taken by two worker threads) is not refused. An action
(a referral, the guardians' notices) is still carried out, and an acknowledgement or a
withheld notification is recorded; each as a ``record`` step on the closed case that
says it was decided before the close. A second outcome (uphold, dismiss, overturn,
close) is still refused: the case's outcome was decided.
"""

from __future__ import annotations

from typing import Any

from ..events.errors import DecisionRefused
from ..events.models import CaseReviewed, ReviewDecision
from .audit import text_hash
from .ids import CaseKind, Clause, EffectKind, Outcome, State
from .ladder import sanction_breach
from .model import Case, member_tag
from .posts import close, sanction_post
from .registers import Registers
from .steps import Builder, iso

__all__ = ["LATE_DECISIONS", "allowed_decisions", "apply_review", "sanction_closed_post"]

D = ReviewDecision
_BY_KIND: dict[CaseKind, tuple[ReviewDecision, ...]] = {
    CaseKind.POST: (D.ACKNOWLEDGE, D.UPHOLD, D.DISMISS, D.CLOSE),
    CaseKind.COMPLAINT: (D.ACKNOWLEDGE, D.UPHOLD, D.DISMISS, D.REFER_EXTERNAL, D.CLOSE),
    CaseKind.ALLEGATION: (
        D.ACKNOWLEDGE,
        D.UPHOLD,
        D.DISMISS,
        D.REFER_EXTERNAL,
        D.NOTIFY_PARENTS,
        D.WITHHOLD_PARENT_NOTIFICATION,
        D.CLOSE,
    ),
    CaseKind.APPEAL: (D.OVERTURN, D.DISMISS, D.CLOSE),
    CaseKind.MEMBER: (D.CLOSE,),
}


def allowed_decisions(case: Case) -> list[str]:
    """The decisions a person may record on ``case`` now."""
    if case.state is State.CLOSED:
        return []
    allowed = list(_BY_KIND[case.kind])
    if case.state is not State.ESCALATION:
        # parents were told already (or the case is not escalated): neither decision fits
        for late in (D.NOTIFY_PARENTS, D.WITHHOLD_PARENT_NOTIFICATION):
            if late in allowed:
                allowed.remove(late)
    return [d.value for d in allowed]


def _seen(case: Case) -> dict[str, object]:
    """A decision a lead records shows the alert was seen: repeats up the chain stop (E1)."""
    if case.kind in (CaseKind.ALLEGATION, CaseKind.COMPLAINT) and not case.acknowledged:
        return {"acknowledged": True, "pending_timer": None}
    return {}


def _closing_clauses(case: Case) -> tuple[str, ...]:
    """A closed allegation cites E1 (closed only by a recorded decision), a complaint S5."""
    if case.kind is CaseKind.ALLEGATION:
        return (Clause.E1.value,)
    if case.kind is CaseKind.COMPLAINT:
        return (Clause.S5.value,)
    return ()


#: decisions still carried out (or recorded) when they arrive after a close they predate
LATE_DECISIONS = frozenset(
    {D.ACKNOWLEDGE, D.REFER_EXTERNAL, D.NOTIFY_PARENTS, D.WITHHOLD_PARENT_NOTIFICATION}
)


_PARENTS = (D.NOTIFY_PARENTS, D.WITHHOLD_PARENT_NOTIFICATION)


def _decided_before_close(b: Builder, case: Case, decision: ReviewDecision) -> bool:
    """A late decision of :data:`LATE_DECISIONS`, dated before the case's closing step
    (or in its second: times are kept to the second, and carrying out a referral the
    lead asked for is the safe side of the tie), that the case allowed when it closed.

    Telling the guardians, or deciding not to, is allowed in order only while the case
    is escalated (a notice moves it on; withholding does not): late, only if it closed
    from escalation and no late notice went out before (one notice, never two)."""
    if not (
        case.state is State.CLOSED
        and case.closed_at
        and b.event_time is not None
        and iso(b.event_time) <= case.closed_at
        and decision in LATE_DECISIONS
        and decision in _BY_KIND[case.kind]
    ):
        return False
    if decision in _PARENTS:  # in order, withholding keeps the case escalated: notify may follow
        told = D.NOTIFY_PARENTS.value in case.late_decisions
        return case.closed_from == State.ESCALATION.value and not told
    return True


def _guardian_notices(
    b: Builder,
    case: Case,
    registers: Registers,
    trigger: str = "notify_parents",
    update: dict[str, Any] | None = None,
    **late: str,
) -> None:
    """E2: the children's guardians, never a guardian who is the allegation's subject."""
    notices = [
        b.effect(
            EffectKind.GUARDIAN_NOTICE,
            guardian,
            case_id=case.case_id,
            clauses=(Clause.E2.value,),
            detail={"child_id": child, "reason": "allegation"},
            key=child,
        )
        for child in case.children
        for guardian in registers.guardians_of(child)
        if guardian != case.subject_ref
    ]
    withheld = sum(
        1 for child in case.children for g in registers.guardians_of(child) if g == case.subject_ref
    )
    missing = sum(1 for child in case.children if not registers.guardians_of(child))
    b.move(
        trigger,
        clauses=(Clause.E2.value,),
        effects=notices,
        detail={
            **late,
            "withheld_from_subject": withheld,
            "children_without_guardian_record": missing,
            "registers": registers.versions(),
        },
        update=update if update is not None else _seen(case),
    )


def _uphold(b: Builder, case: Case) -> None:
    if case.kind is CaseKind.POST and case.outcome is Outcome.REVIEW:
        sanction_post(b, case.source, case.rules, case.clauses)
        close(b, Outcome.WARNED)
        return
    if case.kind is CaseKind.COMPLAINT and case.linked_case and case.member_id:
        b.command(
            "sanction_post",
            tag=member_tag(case.member_id),
            target=case.linked_case,
            case_id=case.case_id,
        )
    if case.kind is CaseKind.POST:
        close(b, case.outcome)
    else:
        b.move(
            "close",
            clauses=_closing_clauses(case),
            detail={"outcome": "upheld"},
            update={"outcome": Outcome.UPHELD},
        )


def _dismiss(b: Builder, case: Case) -> None:
    if case.kind is CaseKind.APPEAL and case.member_id:
        notice = b.effect(
            EffectKind.APPEAL_OUTCOME_NOTICE,
            case.member_id,
            case_id=case.case_id,
            clauses=(Clause.E1.value,),
            detail={"result": "dismissed", "appealed_case": case.linked_case or ""},
        )
        b.move(
            "close",
            clauses=(Clause.E1.value,),
            effects=[notice],
            update={"outcome": Outcome.DISMISSED},
        )
        return
    outcome = Outcome.NO_ACTION if case.outcome is Outcome.REVIEW else Outcome.DISMISSED
    if case.kind is CaseKind.POST and case.outcome is not Outcome.REVIEW:
        outcome = case.outcome
    b.move(
        "close",
        clauses=_closing_clauses(case),
        detail={"outcome": outcome.value},
        update={"outcome": outcome},
    )


def _overturn(b: Builder, case: Case) -> None:
    assert case.member_id and case.linked_case
    b.command(
        "overturn", tag=member_tag(case.member_id), target=case.member_id, case_id=case.linked_case
    )
    notice = b.effect(
        EffectKind.APPEAL_OUTCOME_NOTICE,
        case.member_id,
        case_id=case.case_id,
        clauses=(Clause.E1.value,),
        detail={"result": "overturned", "appealed_case": case.linked_case},
    )
    b.move(
        "close",
        clauses=(Clause.E1.value,),
        effects=[notice],
        detail={"appealed_case": case.linked_case},
        update={"outcome": Outcome.OVERTURNED},
    )


def _refer(
    b: Builder,
    case: Case,
    trigger: str,
    detail: dict[str, str],
    update: dict[str, Any] | None = None,
) -> None:
    """E1: a referral to the body the policy names for the case's category."""
    body = b.policy.external_body(case.category)
    referral = b.effect(
        EffectKind.EXTERNAL_REFERRAL,
        body,
        case_id=case.case_id,
        clauses=(Clause.E1.value,),
        detail={"category": case.category or ""},
    )
    b.move(
        trigger,
        clauses=(Clause.E1.value,),
        effects=[referral],
        detail={**detail, "body": body},
        update=update or {},
    )


def _apply_late(
    b: Builder, case: Case, decision: ReviewDecision, registers: Registers, note: dict[str, str]
) -> None:
    """A decision dated before the close, arriving after it: carried out or recorded as a
    ``record`` step on the closed case, saying which decision and that it came late."""
    late = {"decision": decision.value, "decided_before_close": case.closed_at}
    kept: dict[str, Any] = {"late_decisions": (*case.late_decisions, decision.value)}
    if decision is D.NOTIFY_PARENTS:
        _guardian_notices(b, case, registers, "record", update=kept, **late)
        return
    if decision is D.REFER_EXTERNAL:
        _refer(b, case, "record", {**late, **note}, kept)
        return
    clause = Clause.E2 if decision is D.WITHHOLD_PARENT_NOTIFICATION else Clause.E1
    b.move("record", clauses=(clause.value,), detail={**late, **note}, update=kept)


def apply_review(b: Builder, case: Case, data: CaseReviewed, registers: Registers) -> None:
    """Check the decision against the case, then record it as one or more steps."""
    decision = data.decision
    allowed = allowed_decisions(case)
    note = {"note_sha256": text_hash(data.note)} if data.note else {}
    if decision.value not in allowed:
        if not _decided_before_close(b, case, decision):
            raise DecisionRefused(case.case_id, case.state.value, decision.value, allowed)
        b.case = case
        _apply_late(b, case, decision, registers, note)
        return
    b.case = case
    if decision is D.ACKNOWLEDGE:
        b.move(
            "acknowledge",
            clauses=(Clause.E1.value,),
            detail=note,
            update={"acknowledged": True, "pending_timer": None},
        )
    elif decision is D.UPHOLD:
        _uphold(b, case)
    elif decision is D.DISMISS:
        _dismiss(b, case)
    elif decision is D.REFER_EXTERNAL:
        _refer(b, case, "refer_external", note, _seen(case))
    elif decision is D.NOTIFY_PARENTS:
        _guardian_notices(b, case, registers)
    elif decision is D.WITHHOLD_PARENT_NOTIFICATION:
        b.move(
            "withhold_parent_notification",
            clauses=(Clause.E2.value,),
            detail=note,
            update=_seen(case),
        )
    elif decision is D.OVERTURN:
        _overturn(b, case)
    else:
        b.move(
            "close",
            clauses=_closing_clauses(case),
            detail=note,
            update={
                "outcome": case.outcome if case.outcome is not Outcome.OPEN else Outcome.CLOSED
            },
        )


def sanction_closed_post(b: Builder, case: Case) -> None:
    """A complaint upheld against a post: the post is sanctioned as screening would have."""
    b.case = case
    if case.outcome not in (Outcome.NO_ACTION, Outcome.REVIEW):
        return
    if case.state is not State.CLOSED:
        sanction_post(b, case.source, case.rules, case.clauses)
        close(b, Outcome.WARNED)
        return
    delete = b.effect(
        EffectKind.DELETE_POST, case.source, case_id=case.case_id, clauses=case.clauses
    )
    outcome = sanction_breach(b, case_id=case.case_id, rules=case.rules, clauses=case.clauses)
    b.move(
        "record",
        rules=case.rules,
        clauses=(*case.clauses, Clause.S1.value),
        effects=[delete],
        detail={"member_outcome": outcome.value, "by": "complaint_upheld"},
        update={"outcome": outcome},
    )
