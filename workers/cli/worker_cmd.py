"""``worker``: run and supervise dramatiq worker processes."""

from __future__ import annotations

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
    configure_logging("json" if current.log_format == "auto" else current.log_format)
    raise typer.Exit(Supervisor(processes, threads, chosen).run())


def register(app: typer.Typer) -> None:
    app.command()(worker)
