"""A case's audit entries as a chronology a lead could hand to an inspector."""

from __future__ import annotations

from typing import Any

from ..workflows.model import AuditEntry
from .store import RedisStore

__all__ = ["describe", "linked_cases", "member_rows", "timeline_rows"]

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
    "evidence_viewed": "evidence viewed",
    "evidence_erased": "evidence erased",
    "evidence_expired": "evidence removed at the end of its retention period",
}
_LINK_KEYS = ("linked_case", "appealed_case", "case")


_BASIS = {
    "ladder": "warnings reached the policy's count (S2)",
    "threat": "a threat of violence (S3)",
    "request": "at the member's own request (S4)",
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
        "remove": f"{d.get('removal', '')}: {_BASIS.get(d.get('basis', ''), d.get('basis', ''))}",
        "reinstate": "temporary removal ended",
        "overturn": f"{d['case']} no longer counts" if d.get("case") else "",
    }.get(entry.trigger, "")
    if entry.trigger == "close" and d.get("appealed_case"):
        parts = f"appeal upheld: {d['appealed_case']} overturned"
    if entry.trigger.startswith("evidence_"):
        who = f"by {d['viewed_by']}; " if d.get("viewed_by") else ""
        why = "at the member's request; " if d.get("reason") == "erasure_request" else ""
        parts = f"{who}{why}{d['items']} item(s)" if "items" in d else "audit keeps the hashes"
    if "note_sha256" in d:
        parts = "; ".join(p for p in (parts, "note kept as evidence") if p)
    return parts


def _late(entry: AuditEntry) -> str | None:
    """A decision dated before the close that arrived after it (reviews.py), in words."""
    d = entry.detail
    decision, closed = d.get("decision"), d.get("decided_before_close")
    if entry.trigger != "record" or not decision or not closed:
        return None
    acted = "carried out" if entry.effects else "recorded"
    late = f"decided before the case closed at {closed}, {acted} after it"
    specifics = _specifics(entry.model_copy(update={"trigger": decision}))
    inner = "; ".join(p for p in (specifics, late) if p)
    return f"{_WORDS.get(decision, decision)} ({inner})"


def describe(entry: AuditEntry) -> str:
    """What happened, in words, without any content of the case."""
    late = _late(entry)
    if late is not None:
        return late
    words = _WORDS.get(entry.trigger, entry.trigger)
    if entry.trigger == "remind" and entry.case_id.startswith("complaint:"):
        words = "response deadline passed; reminder sent"
    if _specifics(entry):
        words += f" ({_specifics(entry)})"
    if entry.trigger == "warn" and entry.case_id.startswith("member:"):
        words = f"warning recorded (warnings in force: {entry.detail.get('warnings', '?')})"
    if entry.trigger == "warn" and entry.detail.get("member_outcome") == "no_sanction":
        # E3: a child's image posted in good faith is taken down; its author is not warned
        words = "post deleted; no sanction to its author"
        if entry.rules:
            words += f"; rules: {', '.join(entry.rules)}"
        return words
    if entry.trigger == "close" and entry.case_id.startswith("member:") and "S4" in entry.clauses:
        return "member left at their own request (S4); no sanction"
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
            "case_id": e.case_id,
            "linked_cases": _links(e),
        }
        for e in entries
    ]


def _links(entry: AuditEntry) -> list[str]:
    """Cases a step names: the post a complaint is about, the case an appeal is about."""
    found = (entry.detail.get(key) for key in _LINK_KEYS)
    return sorted({v for v in found if isinstance(v, str) and ":" in v and v != entry.case_id})


def linked_cases(store: RedisStore, case_id: str) -> list[str]:
    """Cases linked to this one either way (its linked case, and cases that link to it)."""
    case = store.case(case_id)
    found = {case.linked_case} if case is not None and case.linked_case else set()
    found |= {c.case_id for c in store.cases() if c.linked_case == case_id}
    for entry in store.audit(case_id):
        found.update(_links(entry))
    return sorted(found - {case_id})


def member_rows(store: RedisStore, member_id: str) -> list[dict[str, Any]]:
    """A member's history across cases: every case about them and their own chain, in time.

    At the same moment a case's steps come before what they did to the member (a post is
    screened and sanctioned, then the warning is recorded): the sort is stable, and the
    member's chain goes last.
    """
    cases = [c.case_id for c in store.cases() if c.member_id == member_id]
    rows = [row for chain in cases for row in timeline_rows(store.audit(chain))]
    rows.sort(key=lambda r: r["at"])
    rows += timeline_rows(store.audit(f"member:{member_id}"))
    return sorted(rows, key=lambda r: r["at"])
