"""Comparing two outcomes of the same events: what happened (or a baseline replay)
against a replay under another policy.

The comparison holds ids, refs, rule ids and clause ids only, like the report of
``process``: a what-if never shows post text, names or contacts (E4).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..workflows.model import Case, Effect
from .report import case_row as report_case_row

__all__ = ["Snapshot", "case_row", "compare", "effect_row"]


#: what a comparison looks at in a case: the outcome, not the bookkeeping (version, links)
_COMPARED = ("case_id", "kind", "state", "outcome", "rules", "member_id")


def case_row(case: Case) -> dict[str, Any]:
    """The report's row for a case (report.py), cut to what a comparison looks at."""
    row = report_case_row(case)
    return {name: row[name] for name in _COMPARED}


def effect_row(effect: Effect) -> dict[str, Any]:
    return {
        "effect_id": effect.effect_id,
        "kind": effect.kind.value,
        "case_id": effect.case_id,
        "recipient": effect.recipient,
        "clauses": list(effect.clauses),
    }


@dataclass
class Snapshot:
    """The rows a comparison reads: cases, members and effects, and the policy version."""

    policy_version: str | None
    cases: dict[str, dict[str, Any]]
    members: dict[str, dict[str, Any]]
    effects: dict[str, dict[str, Any]]

    @classmethod
    def of_replay(cls, replay: Any) -> Snapshot:
        """What a :class:`~esafety.workers.replay.Replay` gives."""
        return cls(
            replay.policy.stamp,
            {row["case_id"]: row for row in replay.case_rows()},
            {row["member_id"]: row for row in replay.member_rows()},
            {row["effect_id"]: row for row in replay.effect_rows()},
        )

    @classmethod
    def of_store(cls, store: Any, policy_version: str | None) -> Snapshot:
        """What happened, read from the live store (a RedisStore)."""
        members = {
            m.member_id: {
                "member_id": m.member_id,
                "status": m.status.value,
                "warnings": m.warnings,
            }
            for m in store.members()
        }
        return cls(
            policy_version,
            {c.case_id: case_row(c) for c in store.cases()},
            members,
            {e.effect_id: effect_row(e) for e in store.effects()},
        )


def _counts(rows: Iterable[dict[str, Any]], key: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for row in rows:
        for value in row[key]:
            out[value] = out.get(value, 0) + 1
    return out


def _tally(before: dict[str, int], after: dict[str, int]) -> dict[str, dict[str, int]]:
    return {
        name: {"before": before.get(name, 0), "after": after.get(name, 0)}
        for name in sorted(set(before) | set(after))
    }


def _case_changes(before: Snapshot, after: Snapshot) -> list[dict[str, Any]]:
    out = []
    for case_id in sorted(set(before.cases) | set(after.cases)):
        old, new = before.cases.get(case_id), after.cases.get(case_id)
        pick = ("state", "outcome", "rules")
        if old and new and (old["outcome"], old["rules"]) == (new["outcome"], new["rules"]):
            continue
        base = old or new
        assert base is not None
        out.append(
            {
                "case_id": case_id,
                "kind": base["kind"],
                "member_id": base["member_id"],
                "before": {k: old[k] for k in pick} if old else None,
                "after": {k: new[k] for k in pick} if new else None,
            }
        )
    return out


def _member_changes(before: Snapshot, after: Snapshot) -> list[dict[str, Any]]:
    out = []
    for member_id in sorted(set(before.members) | set(after.members)):
        default = {"status": "active", "warnings": 0}
        old = before.members.get(member_id, default)
        new = after.members.get(member_id, default)
        pair = ({k: old[k] for k in default}, {k: new[k] for k in default})
        if pair[0] != pair[1]:
            out.append({"member_id": member_id, "before": pair[0], "after": pair[1]})
    return out


def compare(before: Snapshot, after: Snapshot) -> dict[str, Any]:
    """The difference a policy change makes: ids, refs, rule and clause ids only."""
    cases = _case_changes(before, after)
    members = _member_changes(before, after)
    added = [after.effects[i] for i in after.effects if i not in before.effects]
    dropped = [before.effects[i] for i in before.effects if i not in after.effects]
    effect_kinds = (
        _counts(({"k": [r["kind"]]} for r in before.effects.values()), "k"),
        _counts(({"k": [r["kind"]]} for r in after.effects.values()), "k"),
    )
    return {
        "policies": {"before": before.policy_version, "after": after.policy_version},
        "summary": {
            "cases_changed": len(cases),
            "members_changed": len(members),
            "effects_added": len(added),
            "effects_dropped": len(dropped),
        },
        "cases": cases,
        "members": members,
        "effects_added": added,
        "effects_dropped": dropped,
        "rules": _tally(
            _counts(before.cases.values(), "rules"), _counts(after.cases.values(), "rules")
        ),
        "clauses": _tally(
            _counts(before.effects.values(), "clauses"), _counts(after.effects.values(), "clauses")
        ),
        "effects_by_kind": _tally(*effect_kinds),
    }
