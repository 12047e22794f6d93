"""Build the dramatiq broker: Redis by default, RabbitMQ for amqp://, the StubBroker embedded.

One function, called from the entry points; importing this module sets nothing up.
Also the queue names of each stage and a Worker whose prefetch is set per queue.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from .engine import QUEUES
from .settings import Settings

__all__ = ["StageWorker", "build_broker", "is_amqp", "middleware", "queue_names"]


def is_amqp(settings: Settings) -> bool:
    url = settings.broker_url.get_secret_value() if settings.broker_url else ""
    return url.startswith("amqp")


def queue_names(settings: Settings, *, embedded: bool = False) -> dict[str, str]:
    """Each stage's dramatiq queue name.

    On Redis the namespace already prefixes every key. AMQP has no key namespace, so
    there the namespace prefixes the queue names (``esafety-dramatiq.events``): one
    vhost can hold several deployments, and each test run its own queues.
    """
    if embedded or not is_amqp(settings):
        return {stage: stage for stage in QUEUES}
    return {stage: f"{settings.broker_namespace}.{stage}" for stage in QUEUES}


class StageWorker(dramatiq.Worker):  # type: ignore[misc]
    """A dramatiq ``Worker`` with a prefetch per queue.

    dramatiq has one ``queue_prefetch`` for every queue of a worker; stages differ
    (many small events, few slow deliveries), so each consumer gets its own, read
    from the configuration. Delay queues keep dramatiq's delay prefetch.
    """

    def __init__(
        self,
        broker: dramatiq.Broker,
        *,
        prefetch: Mapping[str, int],
        default_prefetch: int = 0,
        **options: Any,
    ) -> None:
        super().__init__(broker, **options)
        self.prefetch = dict(prefetch)
        self.default_prefetch: int = default_prefetch or int(self.queue_prefetch)

    def _add_consumer(self, queue_name: str, *, delay: bool = False) -> None:
        self.queue_prefetch = self.prefetch.get(queue_name, self.default_prefetch)
        super()._add_consumer(queue_name, delay=delay)


def middleware(settings: Settings) -> list[dramatiq.Middleware]:
    """dramatiq's defaults, with retries from the settings and the current message exposed."""
    return [
        AgeLimit(),
        TimeLimit(),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        Retries(
            max_retries=settings.max_retries,
            min_backoff=settings.min_backoff_ms,
            max_backoff=settings.max_backoff_ms,
        ),
        CurrentMessage(),
    ]


def build_broker(settings: Settings, *, embedded: bool) -> dramatiq.Broker:
    """The broker for this process.

    On Redis, a dead worker's messages come back only when maintenance finds its
    heartbeat stale: the heartbeat timeout is short and each worker runs the
    maintenance every second (``GuardedRedisBroker.maintain``, both from the
    settings), so that takes seconds, not minutes.
    """
    if embedded:
        return StubBroker(middleware=middleware(settings))
    if settings.broker_url is not None and is_amqp(settings):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        url = settings.broker_url.get_secret_value()
        return RabbitmqBroker(url=url, middleware=middleware(settings), confirm_delivery=True)
    from .redis_guard import GuardedRedisBroker

    assert settings.redis_url is not None
    url = (settings.broker_url or settings.redis_url).get_secret_value()
    return GuardedRedisBroker(
        url=url,
        middleware=middleware(settings),
        namespace=settings.broker_namespace,
        heartbeat_timeout=settings.heartbeat_timeout_ms,
        maintenance_chance=settings.maintenance_chance,
        dead_message_ttl=settings.dead_letter_ttl_ms,
    )
