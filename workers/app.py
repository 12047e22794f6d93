"""``build_app``: the one place where a broker, store, notifier and clock are made.

Actors are registered on the broker built here, never on a global one at import
time; ``setup_dramatiq`` gives dramatiq's own CLI a ``module:callable``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import dramatiq
import redis
from dramatiq.middleware import CurrentMessage

from ..events.envelope import Event, parse_event
from ..events.errors import InvalidEvent
from ..events.publish import publish as publish_event
from ..events.signing import SIGNATURE_ATTRIBUTE, SignatureCheck, sign_envelope
from ..workflows.model import Timer
from ..workflows.policy import Policy, default_policy, load_policy
from .broker import StageWorker, build_broker, queue_names
from .clock import Clock, ScaledClock, SystemClock, VirtualClock, real_delay_ms
from .engine import QUEUES, Engine
from .evidence import EvidenceStore, RetentionSweeper
from .keys import Keys
from .middleware import Quarantine
from .notifier import MemoryNotifier, Notifier, notifier_from_settings
from .settings import Settings
from .signing import app_head_signer
from .store import Applier, RedisStore

__all__ = [
    "ActorDispatch",
    "App",
    "DramatiqSender",
    "build_app",
    "clock_from_settings",
    "setup_dramatiq",
]


def _retries() -> int:
    message = CurrentMessage.get_current_message()
    return int(message.options.get("retries", 0)) if message else 0


@dataclass
class App:
    settings: Settings
    broker: dramatiq.Broker
    store: RedisStore
    engine: Engine
    clock: Clock
    notifier: Notifier
    policy: Policy
    actors: dict[str, dramatiq.Actor[Any, Any]]
    embedded: bool
    evidence: EvidenceStore | None = None

    def worker(self, threads: int = 1, queues: set[str] | None = None) -> dramatiq.Worker:
        """A worker for some stages (all by default), prefetch per queue from the settings."""
        names = self.queue_map()
        return StageWorker(
            self.broker,
            worker_threads=threads,
            queues={names.get(q, q) for q in queues} if queues else None,
            worker_timeout=self.settings.worker_timeout_ms,
            prefetch={names.get(q, q): n for q, n in self.settings.prefetch_by_queue.items()},
            default_prefetch=self.settings.queue_prefetch,
        )

    def queue_map(self) -> dict[str, str]:
        """Stage (events, timers, commands, deliveries) -> the broker's queue name."""
        return queue_names(self.settings, embedded=self.embedded)

    def queue_names(self) -> list[str]:
        return [self.queue_map()[stage] for stage in QUEUES]

    def publish(
        self, raw: bytes | str, *, line: int | None = None, scope: str | None = None
    ) -> Event:
        """A producer's publish: validate and enqueue ``raw``; bad input is quarantined
        with its raw bytes (stage ``publish``), then :class:`InvalidEvent` is raised.

        ``events.publish`` only validates and hands bytes to a sender (no store there);
        a producer holding an app calls this, so nothing it was given is lost: the error
        names the problem, and the bytes wait in the quarantine for ``quarantine replay``.
        """
        try:
            event = parse_event(raw, self.settings.limits())
        except InvalidEvent as exc:
            self.reject(raw, exc, line, scope)
            raise
        return publish_event(event, sender=DramatiqSender(self, line))

    def reject(
        self,
        raw: bytes | str,
        error: InvalidEvent,
        line: int | None = None,
        scope: str | None = None,
    ) -> bool:
        """Keep input refused before it was queued: its raw bytes and the error, stage
        ``publish``, at the app's clock; False if it was already kept.

        A line read from a file with ``surrogateescape`` gets its own bytes back (an
        invalid byte stays that byte). Within one ``scope`` (one run over a file) the
        same bytes at the same line are kept once, so a publish retried after a lost
        reply does not quarantine its line twice; without a scope every call is kept."""
        data = raw if isinstance(raw, bytes) else _raw_bytes(raw)
        mark = None
        if scope is not None:
            mark = hashlib.sha256(f"{scope}\x1f{line}\x1f".encode() + data).hexdigest()
        return self.store.quarantine(
            raw=data,
            error=str(error),
            stage="publish",
            at=self.clock.now(),
            line=line,
            event_id=error.event_id,
            dedup=mark,
        )


def _raw_bytes(text: str) -> bytes:
    """The bytes a string was read from (``surrogateescape``), or, for a string that
    holds lone surrogates of its own, its ``surrogatepass`` encoding."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


class ActorDispatch:
    """Hands follow-up work to the next stage's actor; timers as delayed messages."""

    def __init__(
        self, actors: dict[str, dramatiq.Actor[Any, Any]], clock: Clock, delayed_timers: bool
    ) -> None:
        self.actors = actors
        self.clock = clock
        self.delayed_timers = delayed_timers

    def deliver(self, tag: str, effect_ids: list[str]) -> None:
        self.actors["deliver"].send(tag, effect_ids)

    def schedule(self, timer_json: str, timer: Timer) -> None:
        if not self.delayed_timers:
            return  # a virtual clock fires timers from the store's index in due order
        delay = real_delay_ms(self.clock, timer.due)
        self.actors["fire_timer"].send_with_options(args=(timer_json,), delay=delay)

    def command(self, command_json: str) -> None:
        self.actors["apply_command"].send(command_json)


class DramatiqSender:
    """A :class:`Sender` that enqueues validated event bytes for ``handle_event``."""

    def __init__(self, app: App, line: int | None = None) -> None:
        self.actor = app.actors["handle_event"]
        self.line = line
        self.keys = app.settings.event_key_bytes() if app.settings.sign_events else {}

    def send(self, body: bytes, *, event: Event) -> None:
        key = self.keys.get(event.source)
        if key is not None and SIGNATURE_ATTRIBUTE not in event.extensions:  # E5
            body = json.dumps(sign_envelope(json.loads(body), key), ensure_ascii=False).encode()
        self.actor.send(body.decode("utf-8"), self.line)


def _client(settings: Settings, embedded: bool) -> redis.Redis:
    if embedded:
        import fakeredis

        return fakeredis.FakeRedis()
    assert settings.redis_url is not None
    return redis.Redis.from_url(settings.redis_url.get_secret_value(), health_check_interval=30)


def _register(
    broker: dramatiq.Broker, engine: Engine, names: dict[str, str]
) -> dict[str, dramatiq.Actor[Any, Any]]:
    """One actor per stage, each on its own queue so each can be scaled alone."""

    def handle_event(body: str, line: int | None = None) -> None:
        engine.handle_event(body, line)

    def fire_timer(timer_json: str) -> None:
        timer = Timer.model_validate_json(timer_json)
        if engine.dispatch is not None and timer.due > engine.clock.now():
            # a delayed message woke early (rounding, another process's clock): wait on
            engine.dispatch.schedule(timer_json, timer)
            return
        engine.fire_timer(timer_json)

    def apply_command(command_json: str) -> None:
        engine.apply_command(command_json)

    def deliver(tag: str, effect_ids: list[str]) -> None:
        engine.deliver(tag, effect_ids)

    stages = [
        (handle_event, "events"),
        (fire_timer, "timers"),
        (apply_command, "commands"),
        (deliver, "deliveries"),
    ]
    # a notice is tried as often as the policy says (``[delivery] retries``), then
    # dead-lettered; the other stages retry by the workers' setting
    options: dict[str, dict[str, Any]] = {"deliver": {}}
    if engine.policy.delivery.retries is not None:
        options["deliver"]["max_retries"] = engine.policy.delivery.retries
    return {
        fn.__name__: dramatiq.actor(
            fn,
            broker=broker,
            actor_name=fn.__name__,
            queue_name=names[queue],
            **options.get(fn.__name__, {}),
        )
        for fn, queue in stages
    }


def clock_from_settings(settings: Settings) -> Clock:
    """The system clock, or a :class:`ScaledClock` when a test set ``ESAFETY_TEST_CLOCK_*``."""
    if settings.test_clock_epoch is None and settings.test_clock_speed == 1.0:
        return SystemClock()
    epoch = settings.test_clock_epoch or SystemClock().now()
    origin = settings.test_clock_origin
    return ScaledClock(
        epoch, epoch.timestamp() if origin is None else origin, settings.test_clock_speed
    )


def build_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    notifier: Notifier | None = None,
    policy: Policy | None = None,
    client: redis.Redis | None = None,
    embedded: bool | None = None,
    applier: Applier | None = None,
) -> App:
    """Build everything a process needs. With no ``ESAFETY_REDIS_URL``: fakeredis and the
    StubBroker, the same store code and scripts."""
    settings = settings or Settings()
    embedded = settings.embedded if embedded is None else embedded
    clock = clock or (VirtualClock() if embedded else clock_from_settings(settings))
    policy = policy or (
        load_policy(settings.policy_path) if settings.policy_path else default_policy()
    )
    store = RedisStore(
        client or _client(settings, embedded), Keys(settings.key_prefix), applier=applier
    )
    notifier = notifier or (
        MemoryNotifier()
        if embedded
        else notifier_from_settings(settings, store.client, settings.key_prefix)
    )
    broker = build_broker(settings, embedded=embedded)
    broker.add_middleware(Quarantine(store, clock))
    heads = app_head_signer(settings, store)  # signs each changed chain's head (issue 9)
    engine = Engine(
        store=store,
        policy=policy,
        clock=clock,
        notifier=notifier,
        limits=settings.limits(),
        conflict_retries=settings.conflict_retries,
        not_found_retries=0 if embedded else settings.not_found_retries,
        retries_of_current=_retries,
        heads=heads,
        signatures=SignatureCheck(settings.event_key_bytes(), settings.require_signed_events),
    )
    evidence = EvidenceStore(store, policy, clock, heads)
    if not embedded:  # the retention job (E4) runs in every worker process
        broker.add_middleware(RetentionSweeper(evidence, settings.evidence_sweep_s))
    actors = _register(broker, engine, queue_names(settings, embedded=embedded))
    engine.dispatch = ActorDispatch(
        actors, clock, delayed_timers=not isinstance(clock, VirtualClock)
    )
    return App(settings, broker, store, engine, clock, notifier, policy, actors, embedded, evidence)


def setup_dramatiq() -> None:
    """For ``dramatiq esafety.workers.app:setup_dramatiq``: build the app, set its broker."""
    from .logs import configure_logging

    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    app = build_app(settings)
    dramatiq.set_broker(app.broker)
