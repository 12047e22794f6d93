"""A case's audit entries as a chronology a lead could hand to an inspector."""

from __future__ import annotations

from typing import Any

from ..workflows.model import AuditEntry

__all__ = ["describe", "timeline_rows"]

_WORDS = {
    "screen": "screened",
    "warn": "sanctioned under the code of conduct",
    "escalate": "escalated to the safeguarding lead",
    "notify_parents": "parents or carers notified",
    "close": "closed",
    "acknowledge": "alert acknowledged",
    "remind": "deadline passed; alert repeated up the chain",
    "refer_external": "referred to an external body",
    "withhold_parent_notification": "parent notification withheld by decision",
    "record": "decision recorded",
    "suspend": "member temporarily removed",
    "remove": "member removed",
    "reinstate": "member reinstated",
    "overturn": "warning overturned on appeal",
}


def describe(entry: AuditEntry) -> str:
    """What happened, in words, without any content of the case."""
    words = _WORDS.get(entry.trigger, entry.trigger)
    if entry.trigger == "warn" and entry.case_id.startswith("member:"):
        words = f"warning recorded (warnings in force: {entry.detail.get('warnings', '?')})"
    if entry.rules:
        words += f"; rules: {', '.join(entry.rules)}"
    outcome = entry.detail.get("outcome") or entry.detail.get("member_outcome")
    if outcome:
        words += f"; outcome: {outcome}"
    return words


def timeline_rows(entries: list[AuditEntry]) -> list[dict[str, Any]]:
    return [
        {
            "seq": e.seq,
            "at": e.at,
            "actor": e.actor,
            "what": describe(e),
            "from": e.from_,
            "to": e.to,
            "trigger": e.trigger,
            "rules": list(e.rules),
            "clauses": list(e.clauses),
            "policy_version": e.policy_version,
            "notices": [
                {"kind": x["kind"], "recipient": x["recipient"], "effect_id": x["effect_id"]}
                for x in e.effects
            ],
            "event_id": e.event_id,
            "hash": e.hash,
        }
        for e in entries
    ]
