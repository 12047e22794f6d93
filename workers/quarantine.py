"""The quarantine: input that could not be processed, kept with its raw bytes and reason.

DESIGN: "nothing rejected is silently dropped: it goes to a quarantine with its raw
bytes". Entries come from three places: ``publish`` (stage ``publish``), the
engine (``consume``: an invalid event, a refused review, a case still missing
after the retries) and the ``Quarantine`` middleware (``message``: bytes that are
no message for our actors).

The stream entry holds ids, stage, time, error (ids and field names, never content)
and the SHA-256 and length of the bytes; the bytes themselves live apart, in the
evidence key space (``keys.quarantine_raw``, one hash: entry id -> bytes, fenced by
the evidence ACL), written by the same script as the entry. Listing reads the stream
only; the bytes are read only when asked for (``raw``), and an entry written before
they moved out of the stream (an inline ``raw`` field) is still read. ``replay``
re-publishes an entry's bytes after a fix (a case that now exists, a review decision
that is now allowed) and removes the entry, with its bytes, once the engine has
accepted the event.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..events.envelope import Event, parse_event
from ..events.errors import InvalidEvent
from ..events.limits import Limits
from ..workflows.routing import route
from .store import RedisStore

__all__ = ["QuarantineBox", "Quarantined", "ReplayResult", "seen_key"]


@dataclass(frozen=True, slots=True)
class Quarantined:
    """One entry without its bytes: what ``list`` and ``show`` print."""

    id: str
    stage: str
    error: str
    at: str
    line: int | None
    event_id: str | None
    size: int
    sha256: str

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """``outcome``: accepted, quarantined (again: ``new_id``), invalid, pending, skipped,
    missing."""

    id: str
    outcome: str
    detail: str = ""
    new_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def seen_key(store: RedisStore, event: Event) -> str | None:
    """The idempotency key the engine writes when it commits this event (None: no case yet)."""
    r = route(event)
    if r.register_child is not None:
        tag: str | None = f"c:{r.register_child}"
    else:
        tag = r.tag or (store.tag_of(r.case_id) if r.case_id else None)
    return store.keys.seen(tag, event.source, event.id) if tag else None


def _entry(entry_id: bytes, fields: dict[bytes, bytes]) -> tuple[Quarantined, bytes | None]:
    """The entry, and its bytes if it still holds them inline (written before they moved)."""
    item = {k.decode(): v for k, v in fields.items()}
    inline = item.get("raw")
    line = item.get("line", b"").decode()
    size = item.get("size", b"").decode()
    return (
        Quarantined(
            id=entry_id.decode(),
            stage=item.get("stage", b"?").decode(),
            error=item.get("error", b"").decode("utf-8", "replace"),
            at=item.get("at", b"").decode(),
            line=int(line) if line.isdigit() else None,
            event_id=item.get("event_id", b"").decode("utf-8", "replace") or None,
            size=int(size) if size.isdigit() else len(inline or b""),
            sha256=item["sha256"].decode()
            if "sha256" in item
            else hashlib.sha256(inline or b"").hexdigest(),
        ),
        inline,
    )


# KEYS: quarantine stream, raw bytes hash, stats; ARGV: entry id. The entry, its bytes
# and the count go together.
_REMOVE = """
if redis.call("XDEL", KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call("HDEL", KEYS[2], ARGV[1])
redis.call("HINCRBY", KEYS[3], "quarantined", -1)
return 1
"""


class QuarantineBox:
    """Read, remove and replay quarantine entries of one store."""

    def __init__(self, store: RedisStore, limits: Limits | None = None) -> None:
        self.store = store
        self.client = store.client
        self.keys = store.keys
        self.limits = limits or Limits()
        self._remove = self.client.register_script(_REMOVE)

    def entries(self, count: int | None = None) -> list[Quarantined]:
        rows = self.client.xrange(self.keys.quarantine, count=count)
        return [_entry(entry_id, fields)[0] for entry_id, fields in rows]

    def get(self, entry_id: str) -> Quarantined | None:
        """One entry, without its bytes (no evidence read)."""
        rows = self.client.xrange(self.keys.quarantine, entry_id, entry_id)
        return _entry(*rows[0])[0] if rows else None

    def raw(self, entry_id: str) -> bytes | None:
        """An entry's raw bytes: content, an evidence read (``b""``: none were kept, as for
        a forged event; None: no such entry)."""
        rows = self.client.xrange(self.keys.quarantine, entry_id, entry_id)
        if not rows:
            return None
        _, inline = _entry(*rows[0])
        if inline is not None:
            return inline
        kept = self.client.hget(self.keys.quarantine_raw, entry_id)
        return bytes(kept) if kept is not None else b""

    def expire_raw(self, cutoff: datetime, limit: int = 500) -> int:
        """Remove the bytes of entries quarantined before ``cutoff`` (the policy's
        ``retention.quarantine_days``); the entries stay. Oldest first from the last
        entry checked, stopping at the first one still within retention; how many went."""
        start = self.client.get(self.keys.quarantine_swept)
        low = f"({start.decode()}" if start else "-"
        stamp = cutoff.strftime("%Y-%m-%dT%H:%M:%SZ")  # the entries' ``at``, compared as text
        expired: list[str] = []
        last = None
        for entry_id, fields in self.client.xrange(self.keys.quarantine, low, "+", count=limit):
            if fields.get(b"at", b"").decode() >= stamp:
                break
            last = entry_id.decode()
            expired.append(last)
        if last is None:
            return 0
        pipe = self.client.pipeline(transaction=True)
        pipe.hdel(self.keys.quarantine_raw, *expired)
        pipe.set(self.keys.quarantine_swept, last)
        removed, _ = pipe.execute()
        return int(removed)

    def remove(self, entry_id: str) -> bool:
        """Drop an entry and its bytes (accepted on replay, or superseded by a newer one)."""
        keys = [self.keys.quarantine, self.keys.quarantine_raw, self.keys.stats]
        return bool(self._remove(keys=keys, args=[entry_id]))

    def _dedup_marks(self, entry_id: str, raw: bytes, event: Event) -> list[str]:
        rows = self.client.xrange(self.keys.quarantine, entry_id, entry_id)
        mark = rows[0][1].get(b"dedup", b"").decode() if rows else ""
        if mark:
            return [mark]
        origin = "\x1f".join((event.source, event.id)).encode("utf-8", "surrogatepass")
        return [hashlib.sha256(origin).hexdigest(), hashlib.sha256(raw).hexdigest()]

    def _newer(self, after: str, event_id: str) -> Quarantined | None:
        for entry_id, fields in self.client.xrange(self.keys.quarantine, f"({after}", "+"):
            entry, _ = _entry(entry_id, fields)
            if entry.event_id == event_id:
                return entry
        return None

    def replay(
        self, entry_id: str, send: Callable[[Event], Any], *, wait_s: float = 30.0
    ) -> ReplayResult:
        """Re-publish an entry's bytes; remove it once the engine commits the event.

        Its dedup mark is lifted first so a second refusal is recorded (as a new entry,
        which then replaces this one). With no answer within ``wait_s`` (no worker
        running) the mark is put back and the entry kept: it is never lost.
        """
        entry = self.get(entry_id)
        if entry is None:
            return ReplayResult(entry_id, "missing", "no such quarantine entry")
        if entry.stage == "message":
            return ReplayResult(entry_id, "skipped", "a broker message, not an event")
        raw = self.raw(entry_id)
        if not raw:
            return ReplayResult(
                entry_id,
                "invalid",
                "its bytes are not kept (a forged event's never are; others are removed "
                "after the policy's retention.quarantine_days)",
            )
        try:
            event = parse_event(raw, self.limits)
        except InvalidEvent as exc:
            return ReplayResult(entry_id, "invalid", str(exc))
        seen = seen_key(self.store, event)
        if seen and self.client.exists(seen):
            self.remove(entry_id)
            return ReplayResult(entry_id, "accepted", "already committed")
        marks = self._dedup_marks(entry_id, raw, event)
        last = self.client.xrevrange(self.keys.quarantine, count=1)
        after = last[0][0].decode() if last else "0-0"
        self.client.srem(self.keys.quarantine_seen, *marks)
        send(event)
        return self._await(entry_id, event, after, marks[0], time.monotonic() + wait_s)

    def _await(
        self, entry_id: str, event: Event, after: str, mark: str, deadline: float
    ) -> ReplayResult:
        while time.monotonic() < deadline:
            seen = seen_key(self.store, event)
            if seen and self.client.exists(seen):
                self.remove(entry_id)
                return ReplayResult(entry_id, "accepted")
            newer = self._newer(after, event.id)
            if newer is not None:
                self.remove(entry_id)
                return ReplayResult(entry_id, "quarantined", newer.error, newer.id)
            time.sleep(0.05)
        self.client.sadd(self.keys.quarantine_seen, mark)
        return ReplayResult(entry_id, "pending", "no worker answered: the entry is kept")
