"""A period's safeguarding figures, for the trustees' review of the procedures (E6).

The policy is reviewed every year and its procedures are checked: how many concerns came
in, what was done, how fast a person answered an alert or a complaint, how often a
deadline was missed. Everything here is counted from the audit chains (the record an
inspector trusts), by each entry's time, so a period's figures do not change when a case
moves on later; only the outcomes of cases closed in the period are read from the cases.
Counts, kinds, rule ids and durations only: no ids of people, no content.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

from ..workflows.alerts import MISSED_TRIGGER
from ..workflows.model import AuditEntry
from ..workflows.steps import iso
from .store import RedisStore

__all__ = ["period_report"]

_FAR_PAST, _FAR_FUTURE = "0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z"
_MEMBER_STEPS = {
    "warn": "warnings",
    "suspend": "temporary_removals",
    "remove": "removals",
    "reinstate": "reinstatements",
    "overturn": "overturned_on_appeal",
}


def _seconds(start: str, end: str) -> float:
    parse = datetime.fromisoformat
    return (parse(end.replace("Z", "+00:00")) - parse(start.replace("Z", "+00:00"))).total_seconds()


def _response(chain: list[AuditEntry]) -> tuple[float, bool | None] | None:
    """Seconds from the escalation to the first person's decision, and whether that came
    by the escalation's deadline (None: it had none); None if no one has answered yet."""
    escalated = next((e for e in chain if e.trigger == "escalate"), None)
    answered = next(  # a decision, not a look at the evidence (which answers nothing)
        (
            e
            for e in chain
            if e.actor.startswith("human:") and not e.trigger.startswith("evidence_")
        ),
        None,
    )
    if escalated is None or answered is None:
        return None
    due = escalated.detail.get("due")
    return _seconds(escalated.at, answered.at), (answered.at <= str(due)) if due else None


def _durations(escalated: int, values: list[tuple[float, bool | None]]) -> dict[str, Any]:
    seconds = sorted(v for v, _ in values)
    return {
        "escalated": escalated,
        "answered": len(seconds),
        "unanswered": escalated - len(seconds),
        "with_deadline": sum(1 for _, kept in values if kept is not None),
        "by_deadline": sum(1 for _, kept in values if kept),
        "median_s": round(statistics.median(seconds)) if seconds else None,
        "max_s": round(seconds[-1]) if seconds else None,
    }


def period_report(
    store: RedisStore, since: datetime | None = None, until: datetime | None = None
) -> dict[str, Any]:
    """Figures for audit entries at ``since`` <= at < ``until`` (either may be open)."""
    since, until = (t.astimezone(UTC) if t else None for t in (since, until))
    start = iso(since) if since else _FAR_PAST
    end = iso(until) if until else _FAR_FUTURE
    opened: Counter[str] = Counter()
    closed: dict[str, Counter[str]] = defaultdict(Counter)
    rules: Counter[str] = Counter()
    notices: Counter[str] = Counter()
    missed: Counter[str] = Counter()
    members: Counter[str] = Counter()
    responses: dict[str, list[tuple[float, bool | None]]] = defaultdict(list)
    escalations: Counter[str] = Counter()
    versions: set[str] = set()
    outcomes = {case.case_id: case.outcome.value for case in store.cases()}
    for chain_id, chain in store.iter_audit():
        kind = chain_id.split(":", 1)[0]
        within = [e for e in chain if start <= e.at < end]
        for entry in within:
            versions.add(entry.policy_version)
            notices.update(effect["kind"] for effect in entry.effects)
            if entry.trigger == MISSED_TRIGGER:
                missed[kind] += 1
            if kind == "member" and entry.trigger in _MEMBER_STEPS:
                members[_MEMBER_STEPS[entry.trigger]] += 1
            if chain_id not in outcomes:
                continue  # a member's status history, not a case
            if entry.from_ == "received":  # a case's first step (a member's history has none)
                opened[kind] += 1
            if entry.trigger == "screen" and kind == "post":  # a complaint repeats its post's
                rules.update(entry.rules)
            if entry.to == "closed" and entry.from_ != "closed":
                # the outcome the close wrote (a later step may change the case's own)
                closed[kind][str(entry.detail.get("outcome") or outcomes[chain_id])] += 1
        if chain_id in outcomes and any(e.trigger == "escalate" for e in within):
            escalations[kind] += 1  # escalated in the period: answered since, or not yet
            response = _response(chain)
            if response is not None:
                responses[kind].append(response)
    return {
        "period": {"since": iso(since) if since else None, "until": iso(until) if until else None},
        "cases_opened": dict(sorted(opened.items())),
        "cases_closed": {k: dict(sorted(v.items())) for k, v in sorted(closed.items())},
        "screening_rules": dict(sorted(rules.items())),
        "member_steps": dict(sorted(members.items())),
        "notices": dict(sorted(notices.items())),
        "deadlines_missed": dict(sorted(missed.items())),
        "first_response": {
            kind: _durations(n, responses[kind]) for kind, n in sorted(escalations.items())
        },
        "policy_versions": sorted(versions),
    }
