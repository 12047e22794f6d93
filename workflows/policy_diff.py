"""``policy diff``: what changes between two policy files, in words a lead can check.

Why words and not a text diff: a lead approving a new policy (E6: reviewed
annually) needs to read "warnings that bring removal (S2): 2 -> 3", not TOML
lines; and a word list is a set, so what matters is which words came or went.
Pure: two loaded policies in, lines out.
"""

from __future__ import annotations

from typing import Any

from .policy import Policy

__all__ = ["LABELS", "diff_policies"]

#: plain words for the settings a lead changes most, with the clause they serve
LABELS: dict[str, str] = {
    "version": "policy version (E6)",
    "sanctions.warnings_for_removal": "warnings that bring removal (S2)",
    "sanctions.removal": "what the removal at that count is (S2)",
    "sanctions.temporary_removal_days": "length of a temporary removal in days (S2)",
    "sanctions.after_temporary_removal": "a breach after a temporary removal brings (S2)",
    "sanctions.threat": "a threat of violence brings (S3)",
    "sanctions.warn_on_child_image": "warn a member who posts a child's image without consent (E3)",
    "escalation.chain": "escalation chain (E1)",
    "escalation.review_ref": "who reviews posts screening is unsure of",
    "deadlines.allegation_default_hours": "hours to acknowledge an allegation (E1)",
    "deadlines.complaint_response_hours": "hours to answer a complaint (S5)",
    "consent.group_post_purpose": "consent purpose a group post needs (E3)",
    "personal_info.allowlist": "published contacts that do not count as personal information (E4)",
    "links.blocklist": "blocked link domains (C5)",
    "links.review": "link domains a person checks (C5)",
}
_SKIP = {"files"}


def _label(path: str) -> str:
    if path in LABELS:
        return LABELS[path]
    parts = path.split(".")
    if parts[0] == "rules" and len(parts) >= 2:
        return f"rule {parts[1]}: {'.'.join(parts[2:]) or 'table'}"
    return path


def _show(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, str):
        return repr(value)
    return str(value)


def _sets(path: str, old: list[Any], new: list[Any]) -> list[str]:
    if path.endswith("chain"):
        return [f"{_label(path)}: {_show(old)} -> {_show(new)}"]
    added = [v for v in new if v not in old]
    removed = [v for v in old if v not in new]
    lines = []
    if added:
        lines.append(f"{_label(path)}: {len(added)} added {_show(added)}")
    if removed:
        lines.append(f"{_label(path)}: {len(removed)} removed {_show(removed)}")
    if not lines and old != new:
        lines.append(f"{_label(path)}: same items, new order")
    return lines


def _walk(path: str, old: Any, new: Any) -> list[str]:
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        lines: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            if key in _SKIP and not path:
                continue
            sub = f"{path}.{key}" if path else str(key)
            if key not in old:
                lines.append(f"{_label(sub)}: added {_show(new[key])}")
            elif key not in new:
                lines.append(f"{_label(sub)}: removed (was {_show(old[key])})")
            else:
                lines.extend(_walk(sub, old[key], new[key]))
        return lines
    if isinstance(old, list) and isinstance(new, list):
        return _sets(path, old, new)
    return [f"{_label(path)}: {_show(old)} -> {_show(new)}"]


def _data_files(old: Policy, new: Policy) -> list[str]:
    before: dict[str, str] = dict(getattr(old, "files", {}) or {})
    after: dict[str, str] = dict(getattr(new, "files", {}) or {})
    lines = []
    for ref in sorted(set(before) | set(after)):
        if before.get(ref) == after.get(ref):
            continue
        old_words = set((before.get(ref) or "").splitlines())
        new_words = set((after.get(ref) or "").splitlines())
        lines.append(
            f"data file {ref}: {len(new_words - old_words)} lines added, "
            f"{len(old_words - new_words)} removed"
        )
    return lines


def diff_policies(old: Policy, new: Policy) -> list[str]:
    """Every difference, one line each, in words; empty when the two enforce the same."""
    before = old.model_dump(mode="json", exclude=_SKIP)
    after = new.model_dump(mode="json", exclude=_SKIP)
    return _walk("", before, after) + _data_files(old, new)
