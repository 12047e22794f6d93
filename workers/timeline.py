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


def _specifics(entry: AuditEntry) -> str:
    """Deadlines, levels, bodies and counts a lead needs to read a step (issue 6)."""
    d = entry.detail
    parts = {
        "escalate": f"to be acknowledged by {d['due']}" if d.get("due") else "",
        "remind": (
            f"missed {d.get('deadline_missed', '?')}; level {d.get('level', '?')}; "
            f"next deadline {d.get('due', '?')}"
        ),
        "notify_parents": (
            f"withheld from the allegation's subject: {d['withheld_from_subject']}"
            if "withheld_from_subject" in d
            else ""
        ),
        "refer_external": f"to {d['body']}" if d.get("body") else "",
        "suspend": f"until {d['until']}" if d.get("until") else "",
        "remove": f"{d.get('removal', '')} removal ({d.get('basis', '')})".strip(),
        "reinstate": "temporary removal ended",
        "overturn": f"{d['case']} no longer counts" if d.get("case") else "",
    }.get(entry.trigger, "")
    if entry.trigger == "close" and d.get("appealed_case"):
        parts = f"appeal upheld: {d['appealed_case']} overturned"
    if "note_sha256" in d:
        parts = "; ".join(p for p in (parts, "note kept as evidence") if p)
    return parts


def describe(entry: AuditEntry) -> str:
    """What happened, in words, without any content of the case."""
    words = _WORDS.get(entry.trigger, entry.trigger)
    if _specifics(entry):
        words += f" ({_specifics(entry)})"
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
