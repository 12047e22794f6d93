"""The outbox relay: sends a delivery again when its message went missing.

An effect is committed to the outbox (its row and an entry in the pending index) in
the same atomic step as the transition that made it; the message that asks the
``deliver`` actor to send it is enqueued just after. Every path we know keeps that
message: a worker killed between the two leaves its event unacknowledged, and the
redelivery replays the dispatch. But a message that never reached the broker, or was
dropped by a broker fault, would leave the effect pending for ever, and a
safeguarding notice never sent is the worst failure this engine can have (a CI run
saw one such effect after 5,000 events and 8 SIGKILLs, cause not found).

So every worker process runs this relay. Every few seconds one of them (a short
Redis lock) reads the pending index; an entry that has been pending for longer than
the grace period and that no message on the deliveries queue names (ready, delayed,
in flight, retrying or dead-lettered: dramatiq keeps each message's bytes in the
queue's ``.msgs`` hash until it is acknowledged) is sent to ``deliver`` again, at
most ``max_resends`` times, counted (``stats.relayed``) and logged by id. Delivery is
idempotent by effect id, so a resend that races a slow original sends nothing twice.

Only on the Redis broker, whose messages can be read; times are Redis's own clock
(``TIME``), the same for every process, and operational only: no decision reads them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from .keys import Keys

if TYPE_CHECKING:
    from .app import App

__all__ = ["OutboxRelay", "named_entries", "relay_for"]

log = structlog.get_logger("esafety.relay")


def named_entries(raw: bytes | None) -> list[str]:
    """The pending entries (``tag|effect_id``) a deliveries message names."""
    if raw is None:
        return []
    try:
        fields = json.loads(raw)
        tag, ids = fields["args"][0], fields["args"][1]
    except (ValueError, KeyError, IndexError, TypeError):
        return []
    if not isinstance(tag, str) or not isinstance(ids, list):
        return []
    return [f"{tag}|{i}" for i in ids if isinstance(i, str)]


@dataclass
class OutboxRelay:
    """Finds pending effects whose delivery message is gone and sends them again."""

    client: Any  # the store's Redis
    broker_client: Any  # the broker's Redis (often the same server)
    pending_key: str
    prefix: str
    namespace: str
    queue: str
    send: Callable[[str, list[str]], None]
    grace_ms: int = 30_000
    lock_ms: int = 5_000
    max_resends: int = 3
    stats_key: str | None = None
    on_relayed: Callable[[int], object] | None = None  # a metrics counter's inc

    @property
    def _state_key(self) -> str:
        return f"{self.prefix}:outbox:relay"

    def _now_ms(self) -> int:
        seconds, micros = self.client.time()
        return int(seconds) * 1000 + int(micros) // 1000

    def _named_by_messages(self) -> set[str]:
        named: set[str] = set()
        for queue in (self.queue, f"{self.queue}.DQ", f"{self.queue}.XQ"):
            key = f"{self.namespace}:{queue}.msgs"
            for _, raw in self.broker_client.hscan_iter(key, count=500):
                named.update(named_entries(raw))
        return named

    def pending(self) -> list[dict[str, Any]]:
        """Every pending effect, for ``esafety outbox list``: ids, kind, case, recipient ref,
        whether a deliveries message names it, and what the relay did (never contents)."""
        now = self._now_ms()
        entries = sorted(m.decode() for m in self.client.sscan_iter(self.pending_key, count=1000))
        named = self._named_by_messages()
        state = {k.decode(): json.loads(v) for k, v in self.client.hgetall(self._state_key).items()}
        rows = []
        for entry in entries:
            tag, effect_id = entry.split("|", 1)
            raw = self.client.hget(Keys(self.prefix).outbox(tag), effect_id)
            effect = json.loads(raw) if raw else {}
            seen = state.get(entry)
            rows.append(
                {
                    "tag": tag,
                    "effect_id": effect_id,
                    "kind": effect.get("kind", "?"),
                    "case_id": effect.get("case_id", "?"),
                    "recipient": effect.get("recipient", "?"),
                    "message": entry in named,
                    "pending_s": round((now - seen["since"]) / 1000, 1) if seen else None,
                    "resends": seen["resends"] if seen else 0,
                }
            )
        return rows

    def resend(self, entries: list[str]) -> list[str]:
        """Send these pending entries to ``deliver`` now (an operator's word); returns them.

        Safe at any time: delivery is idempotent by effect id."""
        pending = {m.decode() for m in self.client.sscan_iter(self.pending_key, count=1000)}
        chosen = [entry for entry in entries if entry in pending]
        for entry in chosen:
            tag, effect_id = entry.split("|", 1)
            self.send(tag, [effect_id])
            log.info("outbox.resent", tag=tag, effect_id=effect_id)
        return chosen

    def sweep(self) -> list[str]:
        """One pass (if no other process holds the lock); returns the entries sent again."""
        if not self.client.set(f"{self._state_key}:lock", "1", nx=True, px=self.lock_ms):
            return []
        now = self._now_ms()
        pending = {m.decode() for m in self.client.sscan_iter(self.pending_key, count=1000)}
        state = {k.decode(): json.loads(v) for k, v in self.client.hgetall(self._state_key).items()}
        gone = [entry for entry in state if entry not in pending]
        first = {entry: now for entry in pending if entry not in state}
        due = [
            entry
            for entry in pending
            if entry in state
            and now - state[entry]["since"] >= self.grace_ms
            and state[entry]["resends"] < self.max_resends
        ]
        if due:
            named = self._named_by_messages()
            due = [entry for entry in due if entry not in named]
        pipe = self.client.pipeline(transaction=False)
        if gone:
            pipe.hdel(self._state_key, *gone)
        for entry, since in first.items():
            pipe.hset(self._state_key, entry, json.dumps({"since": since, "resends": 0}))
        for entry in due:
            record = {"since": now, "resends": state[entry]["resends"] + 1}
            pipe.hset(self._state_key, entry, json.dumps(record))
        if due and self.stats_key:
            pipe.hincrby(self.stats_key, "relayed", len(due))
        pipe.execute()
        if due and self.on_relayed is not None:
            self.on_relayed(len(due))
        for entry in due:
            tag, effect_id = entry.split("|", 1)
            self.send(tag, [effect_id])
            log.warning(
                "outbox.relayed",
                tag=tag,
                effect_id=effect_id,
                resend=state[entry]["resends"] + 1,
            )
        return due


def relay_for(
    app: App, grace_ms: int = 30_000, on_relayed: Callable[[int], object] | None = None
) -> OutboxRelay | None:
    """The relay of a worker process, or None where the broker's messages cannot be read."""
    broker = app.broker
    client, namespace = getattr(broker, "client", None), getattr(broker, "namespace", None)
    if client is None or namespace is None:
        return None
    actor = app.actors["deliver"]
    return OutboxRelay(
        client=app.store.client,
        broker_client=client,
        pending_key=app.store.keys.pending,
        prefix=app.store.keys.prefix,
        namespace=namespace,
        queue=actor.queue_name,
        send=lambda tag, ids: actor.send(tag, ids),
        grace_ms=grace_ms,
        stats_key=app.store.keys.stats,
        on_relayed=on_relayed,
    )
