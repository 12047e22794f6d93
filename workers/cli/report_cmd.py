"""``report``: a period's safeguarding figures for the trustees' review (E6)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ..period_report import period_report
from .common import fail, open_app, parse_time, print_json

__all__ = ["print_figures", "register", "report"]


def _duration(seconds: int | None) -> str:
    if seconds is None:
        return ""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if not minutes:
        return f"{secs} s"
    return f"{minutes} min {secs} s" if secs else f"{minutes} min"


def _counts(console: Console, title: str, counts: dict[str, Any]) -> None:
    shown = ", ".join(f"{name} {n}" for name, n in counts.items()) or "none"
    console.print(f"[bold]{title}[/bold]: {shown}", highlight=False)


def print_figures(figures: dict[str, Any], console: Console) -> None:
    """The figures as a lead or a trustee reads them."""
    period = figures["period"]
    console.print(
        f"[bold]Safeguarding figures[/bold] from {period['since'] or 'the start'} "
        f"to {period['until'] or 'now'} (policy {', '.join(figures['policy_versions']) or '-'})",
        highlight=False,
    )
    _counts(console, "cases opened", figures["cases_opened"])
    for kind, outcomes in figures["cases_closed"].items():
        _counts(console, f"{kind} cases closed", outcomes)
    _counts(console, "posts screened, by rule", figures["screening_rules"])
    _counts(console, "members", figures["member_steps"])
    _counts(console, "notices", figures["notices"])
    _counts(console, "deadlines missed", figures["deadlines_missed"])
    table = Table(title="First response by a person after an escalation")
    for column in ("kind", "escalated", "answered", "by deadline", "median", "longest"):
        table.add_column(column)
    for kind, row in figures["first_response"].items():
        table.add_row(
            kind,
            str(row["escalated"]),
            str(row["answered"]),
            f"{row['by_deadline']} of {row['with_deadline']}" if row["with_deadline"] else "",
            _duration(row["median_s"]),
            _duration(row["max_s"]),
        )
    console.print(table)


def report(
    since: Annotated[str | None, typer.Option(help="From this time (RFC 3339).")] = None,
    until: Annotated[str | None, typer.Option(help="Up to this time, excluded.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object, for tools.")] = False,
) -> None:
    """A period's figures from the audit trail: cases, rules, sanctions, notices, missed
    deadlines, time to a person's first response. Counts only, no ids or content."""
    start, end = parse_time(since, "--since"), parse_time(until, "--until")
    if start and end and end <= start:
        fail("--until must be after --since", 2)
    app = open_app(quiet=True)
    figures = period_report(app.store, start, end)
    if json_out:
        print_json(figures)
        return
    print_figures(figures, Console())


def register(app: typer.Typer) -> None:
    app.command()(report)
