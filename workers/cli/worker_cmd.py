"""``worker``: run and supervise dramatiq worker processes."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from ..engine import QUEUES
from ..logs import configure_logging
from ..supervisor import Supervisor
from .common import fail, settings

__all__ = [
    "register",
    "worker",
]


def worker(
    processes: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    threads: Annotated[int, typer.Option(min=1, help="Threads per process.")] = 8,
    queues: Annotated[
        str, typer.Option(help=f"Comma-separated subset of {','.join(QUEUES)}.")
    ] = "",
    prefetch: Annotated[
        str,
        typer.Option(help="Prefetch per queue, e.g. events=256,deliveries=32 (else settings)."),
    ] = "",
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Serve /metrics and /healthz here (else ESAFETY_METRICS_PORT)."),
    ] = None,
) -> None:
    """Run worker processes on the configured broker; restart any that dies."""
    current = settings()
    if current.embedded:
        fail(
            "worker needs a broker: set ESAFETY_REDIS_URL (and ESAFETY_BROKER_URL for RabbitMQ)", 2
        )
    chosen = [q for q in queues.split(",") if q]
    unknown = sorted(set(chosen) - set(QUEUES))
    if unknown:
        fail(f"unknown queue(s) {', '.join(unknown)}; known: {', '.join(QUEUES)}", 2)
    env = {"ESAFETY_PREFETCH_BY_QUEUE": json.dumps(_prefetch(prefetch))} if prefetch else {}
    configure_logging(current.log_format, current.log_level)
    supervisor = Supervisor(
        processes,
        threads,
        chosen,
        env=env,
        metrics_port=current.metrics_port if metrics_port is None else metrics_port,
        metrics_host=current.metrics_host,
        metrics_dir=current.metrics_dir,
    )
    raise typer.Exit(supervisor.run())


def _prefetch(spec: str) -> dict[str, int]:
    """``events=256,deliveries=32`` -> {"events": 256, "deliveries": 32}."""
    out: dict[str, int] = {}
    for part in filter(None, spec.split(",")):
        queue, _, count = part.partition("=")
        if queue not in QUEUES or not count.isdigit() or int(count) < 1:
            fail(f"--prefetch {part!r}: use QUEUE=N with QUEUE in {', '.join(QUEUES)}", 2)
        out[queue] = int(count)
    return out


def register(app: typer.Typer) -> None:
    app.command()(worker)
