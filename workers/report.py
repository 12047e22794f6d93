"""The report of ``process``: DESIGN.md's public contract, read from the store.

Refs, ids, rule ids and clause ids only: nothing in it carries text, names or
contacts.
"""

from __future__ import annotations

from typing import Any

from ..workflows.ids import TimerKind
from ..workflows.model import Case, Member
from ..workflows.steps import iso
from .store import RedisStore

__all__ = [
    "build_report",
    "case_row",
    "member_row",
    "store_policy_version",
]


def case_row(case: Case) -> dict[str, Any]:
    return {
        "case_id": case.case_id,
        "kind": case.kind.value,
        "state": case.state.value,
        "outcome": case.outcome.value,
        "rules": list(case.rules),
        "clauses": list(case.clauses),
        "member_id": case.member_id,
        "linked_case": case.linked_case,
        "version": case.version,
    }


def member_row(member: Member) -> dict[str, Any]:
    return {
        "member_id": member.member_id,
        "status": member.status.value,
        "warnings": member.warnings,
        "suspended_until": member.suspended_until,
    }


def build_report(store: RedisStore) -> dict[str, Any]:
    stats = store.stats()
    timers = []
    for timer in store.timers():
        key = "member_id" if timer.kind is TimerKind.SUSPENSION_EXPIRY else "case_id"
        timers.append({"kind": timer.kind.value, key: timer.target, "due": iso(timer.due)})
    return {
        "events": {k: stats.get(k, 0) for k in ("accepted", "quarantined", "duplicates")},
        "cases": [case_row(c) for c in store.cases()],
        "members": [member_row(m) for m in store.members()],
        "effects": [
            {
                "effect_id": e.effect_id,
                "kind": e.kind.value,
                "case_id": e.case_id,
                "recipient": e.recipient,
            }
            for e in store.effects()
        ],
        "quarantine": [
            {"line": q["line"], "error": q["error"]} for q in store.quarantine_entries()
        ],
        "timers": timers,
        "policy_version": store_policy_version(store),
    }


def store_policy_version(store: RedisStore) -> str | None:
    raw = store.client.get(f"{store.keys.prefix}:policy_version")
    return raw.decode() if raw else None
