"""Deadlines and the escalation chain (E1, S5).

An alert or a complaint not dealt with by its deadline repeats to the next ref of
the policy's chain, with a new deadline of the same length; at the end of the
chain it repeats to the last ref. ``acknowledge``, or any other decision a lead
records on the case, stops the repeats: a person has seen it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from .ids import CaseKind, Clause, EffectKind, State, TimerKind
from .model import Case, Timer
from .steps import Builder, iso

__all__ = [
    "MISSED_TRIGGER",
    "alert_interval",
    "chain_ref",
    "escalate_with_deadline",
    "repeat_alert",
]

#: the step a missed deadline writes (metrics count it: ``esafety_deadlines_missed``)
MISSED_TRIGGER = "remind"


def alert_interval(case: Case, b: Builder) -> timedelta:
    if case.kind is CaseKind.COMPLAINT:
        return timedelta(hours=b.policy.deadlines.complaint_response_hours)
    return b.policy.allegation_deadline(case.category or "other")


def chain_ref(b: Builder, case: Case, level: int) -> str:
    """Who a repeat at ``level`` goes to; past the end of the chain, its last ref.

    An allegation's alert moves one step up at each missed deadline (E1). A complaint's
    first reminder goes to the DSL who owes the answer (S5, the policy's default), and
    only further missed deadlines move it up the chain.
    """
    chain = b.policy.escalation.chain
    step = level - 1 if case.kind is CaseKind.COMPLAINT else level
    return chain[min(step, len(chain) - 1)]


def _kind_and_clause(case: Case) -> tuple[EffectKind, Clause]:
    if case.kind is CaseKind.COMPLAINT:
        return EffectKind.RESPONSE_REMINDER, Clause.S5
    return EffectKind.DSL_ALERT, Clause.E1


def escalate_with_deadline(b: Builder, *, start: datetime, reason: str) -> None:
    """Alert the first ref of the chain now and start the deadline."""
    assert b.case is not None
    case = b.case
    clause = Clause.S5 if case.kind is CaseKind.COMPLAINT else Clause.E1
    kind = (
        TimerKind.COMPLAINT_RESPONSE
        if case.kind is CaseKind.COMPLAINT
        else TimerKind.ALERT_DEADLINE
    )
    due = start + alert_interval(case, b)
    alert = b.effect(
        EffectKind.DSL_ALERT,
        b.policy.escalation.chain[0],
        case_id=case.case_id,
        clauses=(clause.value,),
        detail={"reason": reason, "due": iso(due)},
    )
    timer = b.timer(kind, tag=case.tag, target=case.case_id, due=due, level=0)
    b.move(
        "escalate",
        clauses=(clause.value,),
        effects=[alert],
        detail={"due": iso(due)},
        update={"pending_timer": timer.timer_id, "escalation_level": 0},
    )


def repeat_alert(b: Builder, timer: Timer) -> None:
    """The deadline passed unacknowledged: alert the next ref and start a new deadline."""
    case = b.case
    if case is None or case.pending_timer != timer.timer_id or case.acknowledged:
        return
    if case.state not in (State.ESCALATION, State.PARENT_NOTIFICATION):
        return
    level = timer.level + 1
    recipient = chain_ref(b, case, level)
    kind, clause = _kind_and_clause(case)
    due = timer.due + alert_interval(case, b)
    alert = b.effect(
        kind,
        recipient,
        case_id=case.case_id,
        clauses=(clause.value,),
        detail={
            "reason": "deadline_passed",
            "level": str(level),
            "deadline_missed": iso(timer.due),
            "due": iso(due),
        },
    )
    follow = b.timer(timer.kind, tag=case.tag, target=case.case_id, due=due, level=level)
    b.move(
        MISSED_TRIGGER,
        clauses=(clause.value,),
        effects=[alert],
        detail={"level": level, "deadline_missed": iso(timer.due), "due": iso(due)},
        update={"pending_timer": follow.timer_id, "escalation_level": level},
    )
