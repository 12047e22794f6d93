"""What waits on a person: open cases a lead may decide now, the most urgent first.

A safeguarding lead's first question is not "every case" but "what needs me, and what
is late". A case waits on a person when a decision can be recorded on it now
(``allowed_decisions``); its deadline is its pending timer (an alert to acknowledge, a
complaint to answer), read from the timer index. A deadline that passes unanswered
repeats the alert up the chain with a new deadline (``alerts.repeat_alert``), so a
live case is rarely overdue for long; its escalation level counts the deadlines it
missed. So: overdue cases first; then those with a deadline running, the ones that
missed more deadlines first, then the nearest; then those without one (a lead has seen
them, or the kind has none), those not yet seen first; the oldest case breaks ties.
Ids, refs and times only: no content.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..workflows.ids import State
from ..workflows.model import Case, Timer
from ..workflows.reviews import allowed_decisions
from ..workflows.steps import iso
from .report import case_row
from .store import RedisStore

__all__ = ["deadline_of", "waiting_rows"]

_NEVER = "9999-12-31T23:59:59Z"


def _row(case: Case, timer: Timer | None, now: datetime) -> dict[str, Any]:
    overdue_s = int((now - timer.due).total_seconds()) if timer is not None else None
    return {
        **case_row(case),
        "opened_at": case.opened_at,
        "escalation_level": case.escalation_level,
        "acknowledged": case.acknowledged,
        "allowed_decisions": allowed_decisions(case),
        "deadline": iso(timer.due) if timer is not None else None,
        "deadline_kind": timer.kind.value if timer is not None else None,
        "overdue": overdue_s is not None and overdue_s > 0,
        "overdue_s": max(overdue_s, 0) if overdue_s is not None else None,
    }


def deadline_of(store: RedisStore, case: Case) -> Timer | None:
    """An open case's pending deadline (its timer in the index), if it has one; a closed
    case has none (a timer left in the index fires and changes nothing)."""
    if case.pending_timer is None or case.state is State.CLOSED:
        return None
    return next((t for t in store.timers() if t.timer_id == case.pending_timer), None)


def waiting_rows(store: RedisStore, now: datetime) -> list[dict[str, Any]]:
    """Open cases on which a decision can be recorded now, the most urgent first (see
    the module's doc for the order)."""
    timers = {timer.timer_id: timer for timer in store.timers()}
    rows = [
        _row(case, timers.get(case.pending_timer or ""), now)
        for case in store.cases()
        if allowed_decisions(case)
    ]
    rows.sort(
        key=lambda r: (
            not r["overdue"],
            r["deadline"] is None,
            -r["escalation_level"] if r["deadline"] else 0,
            r["deadline"] or _NEVER,
            r["acknowledged"],
            r["opened_at"],
        )
    )
    return rows
