"""dramatiq's Redis broker with a guard on what it fetches.

dramatiq decodes a fetched message inside its consumer, before any middleware hook:
bytes that are not a dramatiq message (written straight into Redis by something
other than ``publish()``) raise there, the consumer thread restarts, and the
messages it had prefetched stay in its unacknowledged set until the process dies.
A message that decodes but has a foreign queue name or a string where dramatiq
does arithmetic kills a worker thread or is acknowledged without its retry.

The guard vets each fetched batch: every message must decode, have the shape
dramatiq relies on (``middleware.message_problem``) and carry the Redis id it is
stored under (one HMGET per batch). A message that fails is swapped for a *poison*
message under its real id, holding its raw bytes and the reason; the
``Quarantine`` middleware keeps it in the quarantine stream and acknowledges it.
So the decision and the record live in middleware; this only makes sure bad
bytes reach it.

The guard also reclaims what a lost connection strands. When Redis dies after it
ran a fetch but before the reply arrived (``appendfsync always`` keeps the fetch),
the fetched ids sit in this live process's unacknowledged set, which dramatiq's
maintenance never requeues (the process's heartbeat is fresh): the messages are
never run. A consumer whose delay queue died with its connection drops the delayed
messages it held the same way. So the broker remembers which ids it fetched and has
not yet acknowledged, and after a consumer (re)starts or a fetch fails it requeues
the ids in its unacknowledged set that nobody here holds (all of a delay queue's).

It does the queue maintenance, on a schedule (``maintain``: a thread in each worker
calls it every second) instead of inside dramatiq's commands: dramatiq's maintenance
runs KEYS over the whole database for each dead worker (``scripts/maintain.lua`` says
why that cannot stay).

And it hands back what a clean stop leaves behind. dramatiq's Redis consumer
fetches a batch into memory and passes it on one message at a time; when the
worker stops, the rest of that batch is in this process's unacknowledged set and
nothing requeues it (dramatiq's maintenance only requeues a *dead* process's set,
a heartbeat timeout later). The consumer here requeues its unread batch on close.
"""

from __future__ import annotations

import base64
import json
import threading
from pathlib import Path
from typing import Any

import redis
import structlog
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.common import current_millis, q_name

from .middleware import POISON, message_problem

__all__ = ["GuardedRedisBroker"]

log = structlog.get_logger("esafety.guard")
_MAINTAIN = (Path(__file__).parent / "scripts" / "maintain.lua").read_text()


def _decode(data: bytes) -> tuple[dict[str, Any] | None, str | None]:
    try:
        fields = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 (byte {exc.start})"
    except RecursionError:
        return None, "JSON nests too deeply"
    except ValueError:
        return None, "not JSON"
    return (fields, None) if isinstance(fields, dict) else (None, "not a JSON object")


class _HandingBackConsumer(_RedisConsumer):  # type: ignore[misc]
    """dramatiq's Redis consumer, which requeues its unread prefetched batch on close."""

    def close(self) -> None:
        cache: list[bytes | None] = self.message_cache
        unread = [data for data in cache if data is not None]
        cache.clear()
        ids = [Message.decode(data).options["redis_message_id"] for data in unread]
        if ids:
            log.info("guard.handed_back", queue=self.queue_name, count=len(ids))
            self.broker.do_requeue(self.queue_name, *ids)
        super().close()


class GuardedRedisBroker(RedisBroker):  # type: ignore[misc]
    """A ``RedisBroker`` whose fetch turns bad bytes into poison messages for quarantine
    and reclaims unacknowledged messages that a lost connection stranded."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._lock = threading.Lock()
        self._held: dict[str, set[str]] = {}
        self._stranded: set[str] = set()
        self._maintain = self.client.register_script(_MAINTAIN)

    def maintain(self) -> tuple[int, int, int]:
        """Requeue dead workers' unacknowledged messages and drop their heartbeats, and
        expire dead letters past their TTL: (workers removed, requeued, expired)."""
        queues = sorted(self.get_declared_queues() | self.get_declared_delay_queues())
        reply = self._maintain(
            keys=[f"{self.namespace}:__heartbeats__"],
            args=[
                self.namespace,
                current_millis(),
                self.heartbeat_timeout,
                self.dead_message_ttl,
                *queues,
            ],
        )
        dead, requeued, expired = (int(n) for n in reply)
        if dead or requeued or expired:
            log.info("guard.maintained", dead=dead, requeued=requeued, expired=expired)
        return dead, requeued, expired

    @property
    def consumer_class(self) -> type[_RedisConsumer]:
        return _HandingBackConsumer

    # -- what this process holds ------------------------------------------------------
    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> Any:
        with self._lock:
            self._stranded.add(queue_name)  # a (re)started consumer: check before fetching
        return super().consume(queue_name, prefetch, timeout)

    def _hold(self, queue_name: str, ids: list[str]) -> None:
        with self._lock:
            self._held.setdefault(queue_name, set()).update(ids)

    def _release(self, queue_name: str, ids: tuple[str, ...]) -> None:
        with self._lock:
            self._held.get(queue_name, set()).difference_update(ids)

    def do_ack(self, queue_name: str, redis_id: str) -> Any:
        result = self._dispatch("ack")(queue_name, redis_id)
        self._release(queue_name, (redis_id,))
        return result

    def do_nack(self, queue_name: str, redis_id: str) -> Any:
        result = self._dispatch("nack")(queue_name, redis_id)
        self._release(queue_name, (redis_id,))
        return result

    def do_requeue(self, queue_name: str, *redis_ids: str) -> Any:
        result = self._dispatch("requeue")(queue_name, *redis_ids)
        self._release(queue_name, redis_ids)
        return result

    def _reclaim(self, queue_name: str) -> None:
        """Requeue the ids of our unacknowledged set that nothing in this process holds."""
        acks, _ = self._keys(queue_name)
        ids = {i.decode() for i in self.client.smembers(acks)}
        with self._lock:
            held = set() if queue_name.endswith(".DQ") else self._held.get(queue_name, set())
            stranded = sorted(ids - held)
        if stranded:
            log.warning("guard.reclaimed", queue=queue_name, count=len(stranded))
            self.do_requeue(queue_name, *stranded)  # requeues only ids still in our set

    # -- fetch ---------------------------------------------------------------------------
    def do_fetch(self, queue_name: str, count: int) -> list[bytes | None]:
        try:
            if queue_name in self._stranded:
                self._reclaim(queue_name)
                with self._lock:
                    self._stranded.discard(queue_name)
            batch: list[bytes | None] = self._dispatch("fetch")(queue_name, count)
        except (redis.ConnectionError, redis.TimeoutError):
            with self._lock:
                self._stranded.add(queue_name)  # the fetch may have run: its reply was lost
            raise
        return self._vet(queue_name, batch) if batch else batch

    def _keys(self, queue_name: str) -> tuple[str, str]:
        acks = f"{self.namespace}:__acks__.{self.broker_id}.{queue_name}"
        return acks, f"{self.namespace}:{queue_name}.msgs"

    def _vet(self, queue_name: str, batch: list[bytes | None]) -> list[bytes | None]:
        problems: dict[int, str] = {}
        claimed: dict[int, str] = {}
        for index, data in enumerate(batch):
            if data is None:
                continue
            fields, problem = _decode(data)
            problem = problem or message_problem(fields, queue_name, self.actors)
            if problem is None and fields is not None:
                redis_id = fields["options"].get("redis_message_id")
                if isinstance(redis_id, str):
                    claimed[index] = redis_id
                else:
                    problem = "option 'redis_message_id' is missing"
            if problem is not None:
                problems[index] = problem
        problems.update(self._mismatched(queue_name, batch, claimed))
        self._hold(queue_name, [i for n, i in claimed.items() if n not in problems])
        if problems or None in batch:
            batch = self._poison(queue_name, batch, problems, set(claimed.values()))
        return batch

    def _mismatched(
        self, queue_name: str, batch: list[bytes | None], claimed: dict[int, str]
    ) -> dict[int, str]:
        """Messages whose claimed id does not hold these bytes (acking it would ack another)."""
        if not claimed:
            return {}
        _, messages = self._keys(queue_name)
        stored = self.client.hmget(messages, list(claimed.values()))
        return {
            index: "option 'redis_message_id' does not name this message"
            for (index, _), value in zip(claimed.items(), stored, strict=True)
            if value != batch[index]
        }

    def _poison(
        self,
        queue_name: str,
        batch: list[bytes | None],
        problems: dict[int, str],
        taken: set[str],
    ) -> list[bytes | None]:
        """Swap each bad message for a poison one under its real id (found in our acks)."""
        acks, messages = self._keys(queue_name)
        ids = [i.decode() for i in self.client.smembers(acks)]
        values = self.client.hmget(messages, ids) if ids else []
        orphans = [i for i, v in zip(ids, values, strict=True) if v is None]
        if orphans:  # an id pushed with no message: nothing to process, never acked
            self.client.srem(acks, *orphans)
        free = {i: v for i, v in zip(ids, values, strict=True) if v is not None and i not in taken}
        out = list(batch)
        for index, problem in problems.items():
            data = batch[index]
            real = next((i for i, v in free.items() if v == data), None)
            if real is None:
                log.error("guard.unmatched", queue=queue_name, reason=problem)
                out[index] = None
                continue
            free.pop(real)
            self._hold(queue_name, [real])
            out[index] = self._poison_message(queue_name, real, data or b"", problem)
        return out

    def _poison_message(self, queue_name: str, redis_id: str, raw: bytes, problem: str) -> bytes:
        actor = next(a for a in self.actors.values() if a.queue_name == q_name(queue_name))
        message = Message(
            queue_name=queue_name,
            actor_name=actor.actor_name,
            args=(),
            kwargs={},
            options={
                "redis_message_id": redis_id,
                POISON: {"reason": problem, "raw": base64.b64encode(raw).decode()},
            },
        )
        return bytes(message.encode())
