"""Check audit chains against their hashes and their signed heads, and name what broke.

The chain (each entry's ``hash`` over its content, ``prev_hash`` the previous
entry's) shows changes inside it; the signed head (``workers/signing.py``) shows
cuts at its end and wholesale rewrites. Every finding names the chain, the entry
(seq and where it was found) and one kind:

- ``changed``: an entry's content no longer matches its hash, or it was re-hashed
  so that the next entry no longer points at it;
- ``removed``: a seq is missing from the middle of the chain;
- ``inserted``: an entry that is not on the chain (a second entry for a seq, or
  one past the signed head);
- ``reordered``: the entries are all there but not in chain order;
- ``truncated``: entries up to the signed head are missing at the end;
- ``rewritten``: the chain holds together but does not end at its signed head,
  or the signed head does not verify under a trusted key;
- ``unsigned``: the chain has no signed head, so a cut or rewrite cannot be ruled out.

This module reads nothing: it checks :class:`ChainRecord` values that come from
Redis or from an export file (``workers/audit_export.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ..workflows.audit import GENESIS, entry_hash
from .signing import verify_head

__all__ = ["KINDS", "ChainRecord", "Finding", "Report", "verify_chain", "verify_records"]

KINDS = ("changed", "removed", "inserted", "reordered", "truncated", "rewritten", "unsigned")


@dataclass(frozen=True, slots=True)
class Finding:
    case_id: str
    kind: str
    seq: int | None
    detail: str
    where: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "kind": self.kind,
            "seq": self.seq,
            "where": self.where,
            "detail": self.detail,
        }

    def __str__(self) -> str:
        at = f" seq {self.seq}" if self.seq is not None else ""
        where = f" ({self.where})" if self.where else ""
        return f"{self.case_id}:{at} {self.kind}{where}: {self.detail}"


@dataclass
class ChainRecord:
    """A chain as found: entries in stored order as (where, raw JSON), and its signed head.

    ``anchored``: the entries are a window (``export --since``); the first entry's
    ``prev_hash`` is taken as given instead of starting from genesis.
    """

    case_id: str
    entries: list[tuple[str, str]] = field(default_factory=list)
    head: dict[str, Any] | None = None
    anchored: bool = False


@dataclass(frozen=True, slots=True)
class _Item:
    position: int
    where: str
    seq: int
    hash: str
    prev: str
    intact: bool


@dataclass
class Report:
    chains: int = 0
    entries: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def broken_chains(self) -> list[str]:
        return sorted({f.case_id for f in self.findings})

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "chains": self.chains,
            "entries": self.entries,
            "broken": self.broken_chains(),
            "findings": [f.as_dict() for f in self.findings],
        }


def _parse(record: ChainRecord, out: list[Finding]) -> list[_Item]:
    items: list[_Item] = []
    for position, (where, raw) in enumerate(record.entries):
        try:
            entry = json.loads(raw)
            seq, hash_, prev = entry["seq"], entry["hash"], entry["prev_hash"]
            if not isinstance(seq, int) or not isinstance(hash_, str) or not isinstance(prev, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            out.append(Finding(record.case_id, "changed", None, "entry is unreadable", where))
            continue
        intact = entry_hash(entry) == hash_ and entry.get("case_id") == record.case_id
        if not intact:
            out.append(
                Finding(record.case_id, "changed", seq, "content does not match its hash", where)
            )
        items.append(_Item(position, where, seq, hash_, prev, intact))
    return items


def _choose(
    by_seq: dict[int, list[_Item]], head: Mapping[str, Any] | None, case_id: str, out: list[Finding]
) -> dict[int, _Item]:
    """One entry per seq: the one the next entry (or the signed head) points at."""
    chosen: dict[int, _Item] = {}
    for seq in sorted(by_seq):
        candidates = by_seq[seq]
        wanted = {i.prev for i in by_seq.get(seq + 1, [])}
        if head is not None and head.get("seq") == seq:
            wanted.add(str(head.get("hash")))
        before = chosen.get(seq - 1)
        best = max(
            candidates,
            key=lambda i: (
                i.hash in wanted,
                before is not None and i.prev == before.hash,
                i.intact,
                -i.position,
            ),
        )
        chosen[seq] = best
        for other in candidates:
            if other is not best:
                out.append(
                    Finding(case_id, "inserted", seq, "a second entry for this seq", other.where)
                )
    return chosen


def _longest_run(positions: list[int]) -> set[int]:
    """Indexes of a longest increasing subsequence (entries that are in order)."""
    tails: list[int] = []
    links: list[int] = [-1] * len(positions)
    tail_index: list[int] = []
    for index, value in enumerate(positions):
        low, high = 0, len(tails)
        while low < high:
            mid = (low + high) // 2
            if tails[mid] < value:
                low = mid + 1
            else:
                high = mid
        if low == len(tails):
            tails.append(value)
            tail_index.append(index)
        else:
            tails[low] = value
            tail_index[low] = index
        links[index] = tail_index[low - 1] if low else -1
    keep: set[int] = set()
    index = tail_index[-1] if tail_index else -1
    while index >= 0:
        keep.add(index)
        index = links[index]
    return keep


def _order(chosen: dict[int, _Item], case_id: str, out: list[Finding]) -> None:
    ordered = [chosen[s] for s in sorted(chosen)]
    keep = _longest_run([i.position for i in ordered])
    for index, item in enumerate(ordered):
        if index not in keep:
            out.append(
                Finding(case_id, "reordered", item.seq, "stored out of chain order", item.where)
            )


def _links(record: ChainRecord, chosen: dict[int, _Item], out: list[Finding]) -> None:
    if not chosen:
        return
    first = min(chosen)
    start = first if record.anchored else 1
    for seq in range(start, max(chosen) + 1):
        item = chosen.get(seq)
        if item is None:
            out.append(Finding(record.case_id, "removed", seq, "this entry is missing"))
            continue
        if seq == start:
            if not record.anchored and item.prev != GENESIS and item.intact:
                out.append(Finding(record.case_id, "changed", seq, "first entry is not at genesis"))
            continue
        before = chosen.get(seq - 1)
        if before is not None and item.prev != before.hash and item.intact:
            out.append(
                Finding(
                    record.case_id,
                    "changed",
                    before.seq,
                    "re-hashed: the next entry does not point at it",
                    before.where,
                )
            )


def _against_head(
    record: ChainRecord,
    chosen: dict[int, _Item],
    trusted: Mapping[str, Ed25519PublicKey],
    out: list[Finding],
) -> None:
    case_id, head = record.case_id, record.head
    if head is None:
        if chosen:
            out.append(Finding(case_id, "unsigned", None, "the chain has no signed head"))
        elif not record.entries:
            gone = "the case is on record but its entries and signed head are gone"
            out.append(Finding(case_id, "removed", None, gone))
        return
    why = verify_head(head, trusted)
    if why is None and head.get("case_id") != case_id:
        why = f"the signed head belongs to {str(head.get('case_id'))[:80]!r}"
    if why is not None:
        out.append(Finding(case_id, "rewritten", None, why))
        return
    head_seq, last = int(head["seq"]), max(chosen, default=0)
    if last < head_seq:
        first = last + 1
        out.append(
            Finding(
                case_id,
                "truncated",
                first,
                f"entries {first}..{head_seq} are missing (signed head at seq {head_seq})",
            )
        )
    elif head_seq in chosen and chosen[head_seq].hash != head["hash"]:
        out.append(
            Finding(
                case_id,
                "rewritten",
                head_seq,
                "the chain does not end at its signed head (re-hashed)",
                chosen[head_seq].where,
            )
        )
    for seq in sorted(s for s in chosen if s > head_seq):
        out.append(Finding(case_id, "inserted", seq, "past the signed head", chosen[seq].where))


def verify_chain(record: ChainRecord, trusted: Mapping[str, Ed25519PublicKey]) -> list[Finding]:
    """Every finding about one chain (empty: it verifies)."""
    out: list[Finding] = []
    items = _parse(record, out)
    by_seq: dict[int, list[_Item]] = {}
    for item in items:
        by_seq.setdefault(item.seq, []).append(item)
    chosen = _choose(by_seq, record.head, record.case_id, out)
    _order(chosen, record.case_id, out)
    _links(record, chosen, out)
    _against_head(record, chosen, trusted, out)
    return out


def verify_records(
    records: Iterable[ChainRecord], trusted: Mapping[str, Ed25519PublicKey]
) -> Report:
    report = Report()
    for record in records:
        report.chains += 1
        report.entries += len(record.entries)
        report.findings.extend(verify_chain(record, trusted))
    return report
