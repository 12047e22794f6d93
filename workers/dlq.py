"""Dead letters: messages that failed every retry, read from dramatiq's own XQ.

dramatiq's Redis broker moves a message whose retries are exhausted to
``<namespace>:<queue>.XQ`` (a sorted set of ids by time) and ``.XQ.msgs`` (the
bytes), and keeps neither the reason nor the traceback. The ``Quarantine``
middleware writes the reason beside it (``<prefix>:dlq:reasons``). This module
lists them (ids and reasons only: the bytes hold an event's text), replays them
as fresh messages with their retries reset, and purges them on an operator's word.

Replay enqueues first and removes second: a crash between the two leaves the
letter and a copy on the queue, which the idempotent actors run once.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import q_name
from dramatiq.errors import DecodeError

from .middleware import REASON, dead_letter_key
from .outbox_relay import named_entries
from .store import RedisStore

__all__ = ["DeadLetter", "DeadLetters"]

log = structlog.get_logger("esafety.dlq")
_RESET = ("retries", "traceback", "requeue_timestamp", "eta", "redis_message_id", REASON)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One dead-lettered message, by the Redis id it is stored under; no arguments."""

    id: str
    queue: str
    actor: str
    message_id: str
    attempts: int
    reason: str
    dead_at: str

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _iso(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _fields(raw: bytes | None) -> dict[str, Any]:
    try:
        fields = json.loads(raw or b"")
    except ValueError:
        return {}
    return fields if isinstance(fields, dict) else {}


class DeadLetters:
    """The dead-letter queues of some stages on one Redis broker."""

    def __init__(self, broker: RedisBroker, store: RedisStore, queues: Sequence[str]) -> None:
        self.broker = broker
        self.client = broker.client
        self.store = store
        self.queues = [q_name(q) for q in queues]
        self.reasons_key = dead_letter_key(store)

    def _keys(self, queue: str) -> tuple[str, str]:
        base = f"{self.broker.namespace}:{queue}.XQ"
        return base, f"{base}.msgs"

    def _pick(self, queue: str | None) -> list[str]:
        if queue is None:
            return self.queues
        if q_name(queue) not in self.queues:
            raise ValueError(f"unknown queue {queue!r}; known: {', '.join(self.queues)}")
        return [q_name(queue)]

    def count(self) -> int:
        return sum(int(self.client.zcard(self._keys(q)[0])) for q in self.queues)

    def letters(self, queue: str | None = None) -> list[DeadLetter]:
        """Every dead letter (oldest first), with the reason the middleware recorded."""
        out: list[DeadLetter] = []
        for name in self._pick(queue):
            index, messages = self._keys(name)
            scored = self.client.zrange(index, 0, -1, withscores=True)
            ids = [i.decode() for i, _ in scored]
            raws = self.client.hmget(messages, ids) if ids else []
            reasons = self.client.hmget(self.reasons_key, ids) if ids else []
            for (_, score), redis_id, raw, why in zip(scored, ids, raws, reasons, strict=True):
                fields = _fields(raw)
                record = _fields(why)
                options = fields.get("options")
                options = options if isinstance(options, dict) else {}
                out.append(
                    DeadLetter(
                        id=redis_id,
                        queue=name,
                        actor=str(fields.get("actor_name", "?")),
                        message_id=str(fields.get("message_id", "?")),
                        attempts=int(record.get("attempts", options.get("retries", 0)) or 0),
                        reason=str(record.get("reason") or "unknown (no reason recorded)"),
                        dead_at=_iso(score),
                    )
                )
        return out

    def _selected(self, ids: Iterable[str] | None, queue: str | None) -> list[DeadLetter]:
        letters = self.letters(queue)
        if ids is None:
            return letters
        wanted = set(ids)
        return [letter for letter in letters if letter.id in wanted]

    def replay(self, ids: Iterable[str] | None = None, queue: str | None = None) -> list[str]:
        """Send each chosen letter again as a new message (retries reset); remove it after."""
        done: list[str] = []
        for letter in self._selected(ids, queue):
            _, messages = self._keys(letter.queue)
            raw = self.client.hget(messages, letter.id)
            if raw is None:
                continue  # replayed or purged meanwhile
            try:
                message = Message.decode(raw)
            except DecodeError:
                log.error("dlq.undecodable", redis_id=letter.id, queue=letter.queue)
                continue
            options = {k: v for k, v in message.options.items() if k not in _RESET}
            fresh = dataclasses.replace(message, queue_name=letter.queue, options=options)
            self.broker.enqueue(fresh)
            self._remove(letter)
            log.info("dlq.replayed", redis_id=letter.id, queue=letter.queue, actor=letter.actor)
            done.append(letter.id)
        return done

    def purge(self, ids: Iterable[str] | None = None, queue: str | None = None) -> list[str]:
        """Delete the chosen letters for good (an operator's decision, logged by id).

        A purged delivery is given up: its effects leave the outbox's pending index, or
        the outbox relay (``outbox_relay.py``) would find them with no message and send
        them again."""
        done = []
        for letter in self._selected(ids, queue):
            raw = self.client.hget(self._keys(letter.queue)[1], letter.id)
            if self._remove(letter):
                given_up = named_entries(raw) if letter.actor == "deliver" else []
                if given_up:
                    self.store.client.srem(self.store.keys.pending, *given_up)
                log.warning(
                    "dlq.purged", redis_id=letter.id, queue=letter.queue, effects=len(given_up)
                )
                done.append(letter.id)
        return done

    def _remove(self, letter: DeadLetter) -> bool:
        index, messages = self._keys(letter.queue)
        pipe = self.client.pipeline(transaction=True)
        pipe.zrem(index, letter.id)
        pipe.hdel(messages, letter.id)
        pipe.hdel(self.reasons_key, letter.id)
        removed, _, _ = pipe.execute()
        return bool(removed)
