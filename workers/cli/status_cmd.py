"""``status``: queues, delayed and dead messages, quarantine, live workers, open cases."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ..status import collect_status, drained
from .common import fail, open_app, print_json

__all__ = ["print_status", "register", "status"]


def print_status(report: dict[str, Any], console: Console) -> None:
    table = Table(title=f"Queues ({report['broker']})")
    for column in ("queue", "ready", "in flight", "delayed", "retrying"):
        table.add_column(column, justify="right" if column != "queue" else "left")
    for name, q in report["queues"].items():
        cells = [q[k] for k in ("ready", "in_flight", "delayed", "retrying")]
        table.add_row(name, *("?" if c is None else str(c) for c in cells))
    console.print(table)
    events = report["events"]
    console.print(
        f"events: {events['accepted']} accepted, {events['duplicates']} duplicates, "
        f"{events['quarantined']} quarantined"
    )
    console.print(
        f"dead letters: {report['dead_letters']}   quarantine: {report['quarantine']}   "
        f"outbox pending: {report['outbox_pending']} (relayed {report['outbox_relayed']})   "
        f"oldest waiting: "
        f"{report['oldest_waiting_s']} s   live workers: {report['workers']}"
    )
    states = ", ".join(f"{s} {n}" for s, n in report["cases_open"].items()) or "none"
    console.print(f"cases open: {states}")
    console.print("drained" if drained(report) else "working")


def status(
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object, for tools.")] = False,
) -> None:
    """Queue depths, delayed and dead messages, quarantine, live workers, cases open."""
    app = open_app(quiet=True)
    try:
        report = collect_status(app)
    except Exception as exc:  # an unreachable broker or store: say which, exit 1
        fail(f"cannot read the broker or store: {type(exc).__name__}: {exc}", 1)
    if json_out:
        print_json(report)
    else:
        print_status(report, Console())


def register(app: typer.Typer) -> None:
    app.command()(status)
