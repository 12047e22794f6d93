"""The ``esafety`` command: one module per command group, thin over the library."""

from __future__ import annotations

import typer

from . import (
    archive_cmd,
    audit_cmd,
    bench_cmd,
    eval_cmd,
    evidence_cmd,
    outbox_cmd,
    policy_cmd,
    process_cmd,
    publish_cmd,
    queue_cmd,
    read_cmd,
    replay_cmd,
    report_cmd,
    simulate_cmd,
    status_cmd,
    worker_cmd,
)

__all__ = ["build_cli", "run"]


def build_cli() -> typer.Typer:
    cli = typer.Typer(
        name="esafety",
        help="E-safety case engine: events in, cases through the policy, an audit entry "
        "at every step.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    for group in (
        process_cmd,
        publish_cmd,
        read_cmd,
        report_cmd,
        worker_cmd,
        status_cmd,
        queue_cmd,
        outbox_cmd,
        audit_cmd,
        evidence_cmd,
        policy_cmd,
        replay_cmd,
        archive_cmd,
        simulate_cmd,
        bench_cmd,
        eval_cmd,
    ):
        group.register(cli)
    return cli


def run() -> None:
    build_cli()()
