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
"""

from __future__ import annotations

import base64
import json
from typing import Any

import structlog
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import q_name

from .middleware import POISON, message_problem

__all__ = ["GuardedRedisBroker"]

log = structlog.get_logger("esafety.guard")


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


class GuardedRedisBroker(RedisBroker):  # type: ignore[misc]
    """A ``RedisBroker`` whose fetch turns bad bytes into poison messages for quarantine."""

    def do_fetch(self, queue_name: str, count: int) -> list[bytes | None]:
        batch: list[bytes | None] = self._dispatch("fetch")(queue_name, count)
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
