"""One worker process: build the app, run a dramatiq Worker until SIGTERM.

A heartbeat thread keeps this process's broker id fresh in Redis, so that the
short heartbeat timeout used for fast redelivery never mistakes a busy process
for a dead one.
"""

from __future__ import annotations

import argparse
import signal
import threading
import time
from types import FrameType

import structlog

from .app import build_app
from .logs import configure_logging
from .settings import Settings

__all__ = ["main"]

log = structlog.get_logger("esafety.worker")


def _heartbeat(broker: object, stop: threading.Event, interval: float) -> None:
    client = getattr(broker, "client", None)
    namespace = getattr(broker, "namespace", None)
    broker_id = getattr(broker, "broker_id", None)
    if client is None or namespace is None or broker_id is None:
        return
    while not stop.wait(interval):
        try:
            client.zadd(f"{namespace}:__heartbeats__", {broker_id: int(time.time() * 1000)})
        except Exception as exc:  # a lost connection must not kill the heartbeat thread
            log.warning("heartbeat.failed", error=type(exc).__name__)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="esafety-worker-process")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--queues", default="")
    args = parser.parse_args(argv)
    settings = Settings()
    configure_logging(
        "json" if settings.log_format == "auto" else settings.log_format, settings.log_level
    )
    app = build_app(settings)
    queues = {q for q in args.queues.split(",") if q} or None
    worker = app.worker(threads=args.threads, queues=queues)
    stop = threading.Event()

    def on_signal(signum: int, _: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    worker.start()
    beat = threading.Thread(
        target=_heartbeat,
        args=(app.broker, stop, settings.heartbeat_timeout_ms / 5000),
        daemon=True,
    )
    beat.start()
    log.info("worker.ready", threads=args.threads, queues=sorted(queues or []))
    stop.wait()
    log.info("worker.stopping")
    worker.stop(timeout=30_000)
    app.broker.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
