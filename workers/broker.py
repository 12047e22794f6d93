"""Build the dramatiq broker: Redis by default, RabbitMQ for amqp://, the StubBroker embedded.

One function, called from the entry points; importing this module sets nothing up.
"""

from __future__ import annotations

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

from .settings import Settings

__all__ = ["build_broker", "middleware"]


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
    heartbeat stale: the heartbeat timeout is short and maintenance runs on every
    command (both from the settings) so that takes seconds, not minutes.
    """
    if embedded:
        return StubBroker(middleware=middleware(settings))
    if settings.broker_url is not None:
        url = settings.broker_url.get_secret_value()
        if url.startswith("amqp"):
            from dramatiq.brokers.rabbitmq import RabbitmqBroker

            return RabbitmqBroker(url=url, middleware=middleware(settings), confirm_delivery=True)
    from dramatiq.brokers.redis import RedisBroker

    assert settings.redis_url is not None
    url = (settings.broker_url or settings.redis_url).get_secret_value()
    return RedisBroker(
        url=url,
        middleware=middleware(settings),
        namespace=settings.broker_namespace,
        heartbeat_timeout=settings.heartbeat_timeout_ms,
        maintenance_chance=settings.maintenance_chance,
    )
