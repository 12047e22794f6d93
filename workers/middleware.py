"""Worker-boundary middleware: what a worker does with a message it cannot use.

STYLE 9: a permanent error goes to quarantine with the raw bytes, a transient one
retries with backoff and then dead-letters; decode failures live here, never in an
actor. DESIGN: "nothing rejected is silently dropped".

``Quarantine`` does four things, each where dramatiq gives a hook:

* ``before_process_message``: a message the guarded consumer (``redis_guard.py``)
  could not decode arrives marked as poison; a decodable message whose arguments do
  not fit its actor (garbage written straight into Redis) is caught here. Either is
  kept in the quarantine stream with its raw bytes and the reason, then skipped, so
  it is acknowledged and the worker carries on.
* ``after_process_message``: the reason of a failure is kept on the message, and a
  failure caused by a lost Redis connection waits for Redis first. Without that wait
  dramatiq's Retries cannot re-enqueue (Redis is down), the error is only logged,
  and the message is then acknowledged when Redis returns: lost.
* ``after_nack``: a message dead-lettered after its retries gets its reason written
  beside dramatiq's XQ (``<prefix>:dlq:reasons``), which keeps only the bytes.
* ``before_worker_boot``: dramatiq's own log lines print a message as
  ``actor(args)``, i.e. an event's post text; a filter leaves the ids only (E4).
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import dramatiq
import redis
import structlog
from dramatiq.broker import MessageProxy
from dramatiq.common import q_name
from dramatiq.middleware import Middleware, SkipMessage
from pydantic import BaseModel, ValidationError

from ..events.errors import EsafetyError
from ..workflows.model import Command, Timer
from .clock import Clock
from .store import RedisStore

__all__ = [
    "POISON",
    "REASON",
    "Quarantine",
    "argument_problem",
    "dead_letter_key",
    "message_problem",
    "reason_of",
]

log = structlog.get_logger("esafety.middleware")

POISON = "esafety_poison"
REASON = "esafety_error"
_FIELDS = {
    "queue_name": str,
    "actor_name": str,
    "args": list,
    "kwargs": dict,
    "options": dict,
    "message_id": str,
    "message_timestamp": int,
}
# Options that dramatiq's middleware does arithmetic on: a wrong type there is logged
# and swallowed by dramatiq, and the message acknowledged without a retry.
_INT_OPTIONS = (
    "eta",
    "retries",
    "requeue_timestamp",
    "max_retries",
    "min_backoff",
    "max_backoff",
    "time_limit",
    "max_age",
)
# Options that make dramatiq call other actors or evaluate callables: never ours.
_FORBIDDEN_OPTIONS = frozenset(
    {
        "pipe_target",
        "pipe_ignore",
        "on_success",
        "on_failure",
        "on_retry_exhausted",
        "throws",
        "retry_when",
        "callbacks",
    }
)
_MAX_EFFECTS = 10_000


def dead_letter_key(store: RedisStore) -> str:
    """Hash of redis message id -> why it was dead-lettered (JSON)."""
    return f"{store.keys.prefix}:dlq:reasons"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _options_problem(options: dict[str, Any]) -> str | None:
    if not isinstance(options.get("redis_message_id", ""), str):
        return "option 'redis_message_id' is not a string"
    for name in _INT_OPTIONS:
        if name in options and not _is_int(options[name]):
            return f"option {name!r} is not an integer"
    forbidden = sorted(_FORBIDDEN_OPTIONS & set(options))
    if forbidden:
        return f"option {forbidden[0]!r} is not allowed here"
    return None


def message_problem(fields: Any, queue_name: str, actors: Mapping[str, Any]) -> str | None:
    """Why decoded message fields cannot be handed to dramatiq on ``queue_name``, or None.

    Checks what dramatiq's worker relies on without checking (field types, the queue,
    a known actor, option types); a message that fails would otherwise kill a worker
    thread, skip a retry or sit unacknowledged for ever.
    """
    if not isinstance(fields, dict):
        return "not a JSON object"
    unknown = sorted(set(fields) - set(_FIELDS))
    if unknown:
        return f"unknown field {unknown[0][:40]!r}"
    for name, kind in _FIELDS.items():
        value = fields.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            return f"field {name!r} is missing or not a {kind.__name__}"
    if fields["queue_name"] != queue_name:
        return "field 'queue_name' does not match the queue the message was on"
    actor = actors.get(fields["actor_name"])
    if actor is None or actor.queue_name != q_name(queue_name):
        return f"no actor {fields['actor_name'][:60]!r} on queue {q_name(queue_name)!r}"
    return _options_problem(fields["options"])


def _model_problem(model: type[BaseModel], what: str, raw: Any) -> str | None:
    if not isinstance(raw, str):
        return f"argument 0 is not a {what} (JSON string)"
    try:
        model.model_validate_json(raw)
    except ValidationError as exc:
        error = exc.errors(include_input=False, include_url=False)[0]
        where = ".".join(str(p) for p in error["loc"]) or "(root)"
        return f"argument 0 is not a {what}: {where}: {error['msg']}"
    return None


def _event_args(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    line = args[1] if len(args) > 1 else kwargs.get("line")
    if not 1 <= len(args) <= 2 or set(kwargs) - {"line"} or (len(args) == 2 and kwargs):
        return "handle_event takes (body, line=None)"
    if not isinstance(args[0], str):
        return "argument 'body' is not a string"
    if line is not None and not _is_int(line):
        return "argument 'line' is not an integer"
    return None


def _deliver_args(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    if len(args) != 2 or kwargs:
        return "deliver takes (tag, effect_ids)"
    tag, effect_ids = args
    if not isinstance(tag, str) or not isinstance(effect_ids, list):
        return "deliver takes a tag (string) and effect ids (list)"
    if len(effect_ids) > _MAX_EFFECTS or not all(isinstance(e, str) for e in effect_ids):
        return "argument 'effect_ids' is not a list of strings"
    return None


def _single(
    model: type[BaseModel], what: str
) -> Callable[[tuple[Any, ...], dict[str, Any]], str | None]:
    def check(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
        if len(args) != 1 or kwargs:
            return f"takes one argument (a {what})"
        return _model_problem(model, what, args[0])

    return check


_ARGUMENTS: dict[str, Callable[[tuple[Any, ...], dict[str, Any]], str | None]] = {
    "handle_event": _event_args,
    "fire_timer": _single(Timer, "timer"),
    "apply_command": _single(Command, "command"),
    "deliver": _deliver_args,
}


def argument_problem(
    actor_name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    fn: Callable[..., Any] | None = None,
) -> str | None:
    """Why these arguments do not fit the actor, or None.

    Our four actors get their types checked; any actor's function (``fn``) must at
    least accept the arguments, so a wrong count fails here and not in a worker thread.
    """
    check = _ARGUMENTS.get(actor_name)
    if check is not None:
        return check(tuple(args), dict(kwargs))
    if fn is not None:
        signature = inspect.signature(fn)
        try:
            signature.bind(*args, **kwargs)
        except TypeError:
            bare = signature.replace(
                parameters=[p.replace(annotation=p.empty) for p in signature.parameters.values()],
                return_annotation=signature.empty,
            )
            return f"arguments do not fit {actor_name}{bare}"
    return None


def reason_of(exc: BaseException) -> str:
    """Why a message failed, in words safe to keep and show (E4).

    Our errors carry ids only, and redis errors a host and port; any other exception
    may quote its input (pydantic does, smtplib quotes addresses), so only its type
    (and an OSError's errno) is kept.
    """
    if isinstance(exc, EsafetyError | redis.RedisError):
        return f"{type(exc).__name__}: {str(exc)[:300]}"
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"{type(exc).__name__}: errno {exc.errno} ({exc.strerror})"
    return type(exc).__name__


class _IdsOnly(logging.Filter):
    """Replaces a message in a dramatiq log record by ``actor#message_id``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_safe_arg(a) for a in record.args)
        return True


def _safe_arg(value: Any) -> Any:
    if isinstance(value, dramatiq.Message | MessageProxy):
        return f"{value.actor_name}#{value.message_id}"
    return value


class Quarantine(Middleware):  # type: ignore[misc]
    """Quarantines messages no actor can take, records dead-letter reasons, waits out Redis."""

    def __init__(self, store: RedisStore, clock: Clock, *, redis_wait_s: float = 600.0) -> None:
        self.store = store
        self.clock = clock
        self.redis_wait_s = redis_wait_s
        self.filter = _IdsOnly()

    # -- quarantine ------------------------------------------------------------
    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        poison = message.options.get(POISON)
        if poison is not None:
            raw = base64.b64decode(poison["raw"]) if isinstance(poison, dict) else b""
            reason = poison.get("reason", "undecodable") if isinstance(poison, dict) else "?"
            self._keep(message, raw, f"not a message for this queue: {reason}", poison=True)
            raise SkipMessage()
        actor = broker.actors.get(message.actor_name)
        fn = getattr(actor, "fn", None)
        problem = argument_problem(message.actor_name, message.args, message.kwargs, fn)
        if problem is not None:
            self._keep(message, self._raw(broker, message), problem)
            raise SkipMessage()

    def _raw(self, broker: dramatiq.Broker, message: Any) -> bytes:
        """The bytes as they sat in Redis (what a producer wrote), else re-encoded."""
        client = getattr(broker, "client", None)
        namespace = getattr(broker, "namespace", None)
        redis_id = message.options.get("redis_message_id")
        if client is not None and namespace and isinstance(redis_id, str):
            raw = client.hget(f"{namespace}:{message.queue_name}.msgs", redis_id)
            if raw is not None:
                return bytes(raw)
        return bytes(message.encode())

    def _keep(self, message: Any, raw: bytes, reason: str, poison: bool = False) -> None:
        where = f"queue {q_name(message.queue_name)!r}"
        error = (
            f"{where}: {reason}" if poison else f"{where}, actor {message.actor_name!r}: {reason}"
        )

        def write() -> bool:
            return self.store.quarantine(
                raw=raw,
                error=error,
                stage="message",
                at=self.clock.now(),
                dedup="message:" + hashlib.sha256(raw).hexdigest(),
            )

        self._with_redis(write)
        log.warning("message.quarantined", queue=message.queue_name, reason=error)

    # -- failures and dead letters --------------------------------------------------
    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if exception is None:
            return
        message.options[REASON] = reason_of(exception)
        if isinstance(exception, redis.ConnectionError | redis.TimeoutError):
            self._wait_for_redis(broker)

    def after_nack(self, broker: dramatiq.Broker, message: Any) -> None:
        exception = getattr(message, "_exception", None)
        reason = message.options.get(REASON) or (reason_of(exception) if exception else "failed")
        record = {
            "queue": q_name(message.queue_name),
            "actor": message.actor_name,
            "message_id": message.message_id,
            "attempts": message.options.get("retries", 0),  # failed runs, as Retries counts
            "reason": reason,
            "at": self.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        redis_id = str(message.options.get("redis_message_id", message.message_id))
        key = dead_letter_key(self.store)
        self._with_redis(lambda: self.store.client.hset(key, redis_id, json.dumps(record)))
        log.error("message.dead_lettered", redis_id=redis_id, **record)

    # -- Redis outages ------------------------------------------------------------------
    def _clients(self, broker: dramatiq.Broker | None) -> list[Any]:
        clients = [self.store.client]
        broker_client = getattr(broker, "client", None)
        if broker_client is not None and broker_client is not self.store.client:
            clients.append(broker_client)
        return clients

    def _wait_for_redis(self, broker: dramatiq.Broker | None) -> None:
        """Block until every Redis this worker writes to answers (or ``redis_wait_s``)."""
        deadline = time.monotonic() + self.redis_wait_s
        pause = 0.1
        while time.monotonic() < deadline:
            try:
                for client in self._clients(broker):
                    client.ping()
                return
            except (redis.ConnectionError, redis.TimeoutError):
                time.sleep(pause)
                pause = min(pause * 2, 2.0)
        log.error("redis.unreachable", waited_s=self.redis_wait_s)

    def _with_redis(self, action: Callable[[], Any], attempts: int = 5) -> Any:
        """Run a write, waiting out a Redis outage between attempts (the last one raises)."""
        for _ in range(attempts - 1):
            try:
                return action()
            except (redis.ConnectionError, redis.TimeoutError):
                self._wait_for_redis(None)
        return action()

    # -- logs -------------------------------------------------------------------------
    def before_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        names = ["dramatiq.worker.WorkerThread", "dramatiq.middleware.retries.Retries"]
        for queue in {*broker.get_declared_queues(), *broker.get_declared_delay_queues()}:
            names.append(f"dramatiq.worker.ConsumerThread({queue})")
        for name in names:
            logging.getLogger(name).addFilter(self.filter)
