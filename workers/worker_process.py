"""One worker process: build the app, run a dramatiq Worker until SIGTERM.

A heartbeat thread keeps this process's broker id fresh in Redis, so that the
short heartbeat timeout used for fast redelivery never mistakes a busy process
for a dead one, and records the process as live in the store (``esafety
status`` counts workers there, on Redis and on RabbitMQ alike; dramatiq's own
heartbeats also list every producer that enqueued lately).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable
from types import FrameType

import dramatiq
import structlog

from .app import App, build_app
from .clock import ScaledClock
from .logs import configure_logging
from .outbox_relay import relay_for
from .settings import Settings

__all__ = ["STOP_TIMEOUT_MS", "main", "run"]

log = structlog.get_logger("esafety.worker")

#: how long SIGTERM waits for the messages in flight before giving up on them
STOP_TIMEOUT_MS = 30_000
_FORGET_AFTER_MS = 3_600_000


def _beat(app: App, member: str) -> None:
    now = int(time.time() * 1000)
    pipe = app.store.client.pipeline(transaction=False)
    pipe.zadd(app.store.keys.workers, {member: now})
    pipe.zremrangebyscore(app.store.keys.workers, 0, now - _FORGET_AFTER_MS)
    pipe.execute()
    broker = app.broker
    client, namespace = getattr(broker, "client", None), getattr(broker, "namespace", None)
    broker_id = getattr(broker, "broker_id", None)
    if client is not None and namespace is not None and broker_id is not None:
        client.zadd(f"{namespace}:__heartbeats__", {broker_id: now})


def _heartbeat(app: App, member: str, stop: threading.Event, interval: float) -> None:
    while True:
        try:
            _beat(app, member)
        except Exception as exc:  # a lost connection must not kill the heartbeat thread
            log.warning("heartbeat.failed", error=type(exc).__name__)
        if stop.wait(interval):
            return


def _every(
    stop: threading.Event, interval_ms: int, action: Callable[[], object], what: str
) -> None:
    """Run ``action`` every ``interval_ms`` in a daemon thread until ``stop``; a failed
    run (Redis away) is logged and tried again at the next."""

    def loop() -> None:
        while not stop.wait(interval_ms / 1000):
            try:
                action()
            except Exception as exc:
                log.warning(f"{what}.failed", error=type(exc).__name__)

    threading.Thread(target=loop, name=what, daemon=True).start()


def run(
    settings: Settings,
    threads: int,
    queues: set[str] | None,
    extra_middleware: Iterable[dramatiq.Middleware] = (),
    prepare: Callable[[App], None] | None = None,
) -> int:
    """Serve until SIGTERM or SIGINT; finish (or hand back) the messages in flight.

    ``prepare`` changes the app before the worker starts (``bench``'s store floor)."""
    app = build_app(settings)
    if prepare is not None:
        prepare(app)
    if isinstance(app.clock, ScaledClock):  # tests only: never in production (README)
        log.warning("clock.scaled", speed=app.clock.speed, epoch=app.clock.epoch.isoformat())
    on_relayed = None
    if settings.metrics_dir:
        from .metrics import install_metrics

        on_relayed = install_metrics(app).relayed.inc
    for extra in extra_middleware:
        app.broker.add_middleware(extra)
    app.broker.emit_after("process_boot")  # as dramatiq's CLI does: starts TimeLimit's timer
    worker = app.worker(threads=threads, queues=queues)
    stop = threading.Event()

    def on_signal(signum: int, _: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    worker.start()
    member = f"{socket.gethostname()}/{os.getpid()}"
    beat = threading.Thread(
        target=_heartbeat,
        args=(app, member, stop, settings.heartbeat_timeout_ms / 5000),
        daemon=True,
    )
    beat.start()
    maintain = getattr(app.broker, "maintain", None)
    if maintain is not None:
        _every(stop, settings.maintenance_interval_ms, maintain, "maintenance")
    relay = relay_for(app, grace_ms=settings.outbox_relay_grace_ms, on_relayed=on_relayed)
    if relay is not None:
        _every(stop, settings.outbox_relay_interval_ms, relay.sweep, "outbox_relay")
    log.info(
        "worker.ready",
        threads=threads,
        queues=sorted(queues or []),
        pid=os.getpid(),
        broker_id=getattr(app.broker, "broker_id", None),  # whose unacked set is whose
    )
    stop.wait()
    log.info("worker.stopping", pid=os.getpid())
    worker.stop(timeout=STOP_TIMEOUT_MS)
    beat.join(timeout=5)
    try:
        app.store.client.zrem(app.store.keys.workers, member)
    except Exception as exc:
        log.warning("worker.unregister_failed", error=type(exc).__name__)
    app.broker.close()
    log.info("worker.stopped", pid=os.getpid())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="esafety-worker-process")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--queues", default="")
    args = parser.parse_args(argv)
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    return run(settings, args.threads, {q for q in args.queues.split(",") if q} or None)


if __name__ == "__main__":
    raise SystemExit(main())
