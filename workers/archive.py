"""The event archive: every accepted envelope, in commit order, so what happened can be replayed.

Why an archive apart from the audit: the audit holds what was decided, with hashes
in place of content; a what-if under a new policy (E6) needs what was *asked*, the
events themselves. Each accepted event is appended to one Redis stream in the same
atomic commit as its decision, so the archive never holds an event that was not
decided, nor misses one that was.

Text fields (post and complaint text, allegation and appeal text, review notes,
guardian contacts) are content the evidence retention governs (E4): they are kept
apart from the stream, in one hash per case under the evidence key space
(``<prefix>:ev:archive:<case id>``), so erasing a case's evidence erases its text
here too while the stream itself, which holds ids, refs and rule ids only, stays
append-only. Each entry records the screening result of its decision (rule,
clauses, span, confidence: never the words), so an event whose text is gone
replays with what screening found at the time, and a replay says how many it had
to treat that way.

Exported, an entry is the CloudEvents envelope again (text restored, or empty when
erased) with three extension attributes, so the file is the input of both
``process`` and ``replay``: ``esafetyscreening`` (the recorded matches, JSON),
``esafetypolicy`` (the policy version that decided it) and ``esafetyerased``
(``text`` when the text is gone).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis

from ..events.envelope import Event, parse_event
from ..events.errors import InvalidEvent
from ..workflows.model import Decision
from ..workflows.routing import route

__all__ = [
    "EXT_ERASED",
    "EXT_POLICY",
    "EXT_SCREENING",
    "ArchivedEvent",
    "archive_key",
    "archive_ops",
    "erase_texts",
    "export_lines",
    "read_archive",
    "read_jsonl",
    "screening_of",
    "text_key",
]

EXT_SCREENING = "esafetyscreening"
EXT_POLICY = "esafetypolicy"
EXT_ERASED = "esafetyerased"
#: fields of ``data`` that carry content (E4), by where they sit
_TEXT_FIELDS = ("text", "note")


def archive_key(prefix: str) -> str:
    """The stream of accepted events, oldest first (a global index, like ``idx:*``)."""
    return f"{prefix}:archive"


def text_key(prefix: str, subject: str) -> str:
    """One case's (or one child's register) archived texts, under the evidence key space."""
    return f"{prefix}:ev:archive:{subject}"


def _subject(event: Event) -> str:
    r = route(event)
    return r.case_id or r.tag or "none"


def _ref(event: Event) -> str:
    digest = hashlib.sha256(f"{event.source}\x1f{event.id}".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:32]


def _split(envelope: dict[str, Any]) -> dict[str, str]:
    """Take the content fields out of ``envelope`` (in place); return them by path."""
    data = envelope["data"]
    texts = {name: data.pop(name) for name in _TEXT_FIELDS if data.get(name)}
    for index, guardian in enumerate(data.get("guardians", ())):
        if guardian.get("contact"):
            texts[f"guardians.{index}.contact"] = guardian.pop("contact")
    return texts


def _merge(envelope: dict[str, Any], texts: dict[str, str] | None) -> bool:
    """Put the content fields back; False when they were erased (left empty)."""
    data = envelope["data"]
    if texts is None:
        if envelope["type"] in {"esafety.post.submitted", "esafety.complaint.received"}:
            data.setdefault("text", "")
        return False
    for path, value in texts.items():
        if path.startswith("guardians."):
            _, index, name = path.split(".")
            data["guardians"][int(index)][name] = value
        else:
            data[path] = value
    return True


def screening_of(decision: Decision) -> list[dict[str, Any]] | None:
    """What screening found when the decision was made (None: the event was not screened)."""
    for entry in decision.audit:
        if entry.trigger == "screen" and "matches" in entry.detail:
            return list(entry.detail["matches"])
    return None


def archive_ops(
    prefix: str, event: Event, decision: Decision | None, policy_version: str
) -> dict[str, list[list[Any]]]:
    """The commit plan's writes that archive ``event`` (same atomic step as its decision)."""
    envelope = event.envelope_dict()
    for name in (EXT_SCREENING, EXT_POLICY, EXT_ERASED):
        envelope.pop(name, None)
    texts = _split(envelope)
    subject = _subject(event)
    entry: dict[str, Any] = {
        "ref": _ref(event),
        "subject": subject,
        "policy": policy_version,
        "envelope": envelope,
        "texts": sorted(texts),
    }
    screening = screening_of(decision) if decision is not None else None
    if screening is not None:
        entry["screening"] = screening
    ops: dict[str, list[list[Any]]] = {
        "xadds": [[archive_key(prefix), json.dumps(entry, separators=(",", ":"))]]
    }
    if texts:
        ops["hsets"] = [[text_key(prefix, subject), entry["ref"], json.dumps(texts)]]
    return ops


@dataclass(frozen=True, slots=True)
class ArchivedEvent:
    """One archived event as a replay reads it."""

    event: Event
    policy_version: str | None = None
    screening: tuple[dict[str, Any], ...] | None = None
    erased: bool = False

    def envelope(self) -> dict[str, Any]:
        """The CloudEvents object for export, with the archive's extension attributes."""
        body = self.event.envelope_dict()
        if self.screening is not None:
            body[EXT_SCREENING] = json.dumps(list(self.screening), separators=(",", ":"))
        if self.policy_version:
            body[EXT_POLICY] = self.policy_version
        if self.erased:
            body[EXT_ERASED] = "text"
        return body


def _in_window(event: Event, start: datetime | None, end: datetime | None) -> bool:
    return (start is None or event.time >= start) and (end is None or event.time <= end)


def _decode(entry: dict[str, Any], texts: bytes | None) -> ArchivedEvent:
    envelope = entry["envelope"]
    stored = json.loads(texts) if texts else None
    kept = _merge(envelope, stored)
    screening = entry.get("screening")
    return ArchivedEvent(
        event=parse_event(envelope),
        policy_version=entry.get("policy"),
        screening=tuple(screening) if screening is not None else None,
        erased=bool(entry.get("texts")) and not kept,
    )


def read_archive(
    client: redis.Redis,
    prefix: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    chunk: int = 1000,
) -> Iterator[ArchivedEvent]:
    """The archive in commit order, texts restored where retention still keeps them."""
    cursor = "-"
    while True:
        rows = client.xrange(archive_key(prefix), min=cursor, max="+", count=chunk)
        if cursor != "-":
            rows = rows[1:]
        if not rows:
            return
        entries = [json.loads(fields[b"e"]) for _, fields in rows]
        pipe = client.pipeline(transaction=False)
        for entry in entries:
            pipe.hget(text_key(prefix, entry["subject"]), entry["ref"])
        for entry, texts in zip(entries, pipe.execute(), strict=True):
            item = _decode(entry, texts)
            if _in_window(item.event, start, end):
                yield item
        cursor = rows[-1][0].decode()


def erase_texts(client: redis.Redis, prefix: str, subjects: Iterable[str]) -> int:
    """Erase the archived texts of these cases (evidence retention, E4); returns how many."""
    keys = [text_key(prefix, s) for s in subjects]
    return int(client.delete(*keys)) if keys else 0


def _archived(body: dict[str, Any]) -> ArchivedEvent:
    screening = body.pop(EXT_SCREENING, None)
    policy = body.pop(EXT_POLICY, None)
    erased = body.pop(EXT_ERASED, None) == "text"
    return ArchivedEvent(
        event=parse_event(body),
        policy_version=policy,
        screening=tuple(json.loads(screening)) if screening is not None else None,
        erased=erased,
    )


def read_jsonl(
    lines: Iterable[str], *, start: datetime | None = None, end: datetime | None = None
) -> Iterator[tuple[int, ArchivedEvent | InvalidEvent]]:
    """An exported archive (or any file of events), line by line; bad lines as errors."""
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise InvalidEvent("payload must be a JSON object", field="(payload)")
            item = _archived(body)
        except InvalidEvent as exc:
            yield number, exc
            continue
        except ValueError as exc:
            yield number, InvalidEvent(f"malformed JSON or extension: {exc}", field="(payload)")
            continue
        if _in_window(item.event, start, end):
            yield number, item


def export_lines(items: Iterable[ArchivedEvent]) -> Iterator[str]:
    """JSONL of the archive: one CloudEvents object per line."""
    for item in items:
        yield json.dumps(item.envelope(), separators=(",", ":"), ensure_ascii=False)
