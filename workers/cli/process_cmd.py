"""``process`` and ``demo``: events from a file, embedded, on the virtual clock."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ...events.errors import PolicyError
from ...workflows.policy import load_policy
from ..app import App, build_app
from ..logs import configure_logging
from ..period_report import period_report
from ..process import Processor
from ..settings import Settings
from ..waiting import waiting_rows
from .common import fail, parse_time, print_json
from .read_cmd import print_timeline, print_waiting
from .report_cmd import print_figures

__all__ = [
    "demo",
    "print_summary",
    "process",
    "register",
    "run_file",
]

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_file(
    path: Path,
    *,
    policy: Path | None,
    until: datetime | None,
    progress: bool,
    verbose: bool = False,
    exact: bool = False,
) -> tuple[App, dict[str, Any]]:
    """Process one file embedded and return the app (for reading) and the report.

    ``exact``: every message through dramatiq's StubBroker and its worker, every commit
    through ``commit.lua`` on fakeredis's Lua, each chain's head signed in its commit:
    the workers' own path, message for message, several times slower. Without it, the
    same handlers run from a local queue and fakeredis applies the same commit plans in
    Python (``process.py``, ``commit_python.py``); the tests hold the two to the same
    report."""
    settings = Settings(redis_url=None)
    configure_logging(settings.log_format, settings.log_level if verbose else "WARNING")
    try:
        loaded = load_policy(policy) if policy else None
    except (PolicyError, OSError) as exc:
        fail(f"policy {policy}: {exc}", 2)
    app = build_app(settings, policy=loaded, embedded=True, applier="lua" if exact else None)
    try:
        lines = path.read_text("utf-8", errors="surrogateescape").splitlines()
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}", 2)
    with Processor(app, broker=exact or None, heads_at_end=not exact) as processor:
        if not progress:
            return app, processor.run(lines, until=until)
        columns = (
            TextColumn("processing"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("events", total=len(lines))
            report = processor.run(
                lines, until=until, progress=lambda n: bar.update(task, completed=n)
            )
    return app, report


def print_summary(report: dict[str, Any], console: Console) -> None:
    events = report["events"]
    console.print(
        f"events: {events['accepted']} accepted, {events['duplicates']} duplicates, "
        f"{events['quarantined']} quarantined (policy {report['policy_version']})"
    )
    table = Table(title="Cases")
    for column in ("case", "kind", "state", "outcome", "rules"):
        table.add_column(column)
    for row in report["cases"]:
        table.add_row(
            row["case_id"], row["kind"], row["state"], row["outcome"], ", ".join(row["rules"])
        )
    console.print(table)
    for member in report["members"]:
        console.print(
            f"member {member['member_id']}: {member['status']}, warnings {member['warnings']}"
        )
    for item in report["quarantine"]:
        console.print(f"quarantined line {item['line']}: {item['error']}")


def process(
    file: Annotated[
        Path, typer.Argument(help="JSONL file of CloudEvents.", exists=True, dir_okay=False)
    ],
    policy: Annotated[Path | None, typer.Option(help="Policy TOML (default: shipped).")] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="The report as one JSON object.")
    ] = False,
    until: Annotated[str | None, typer.Option(help="Move the clock on to this time.")] = None,
    progress: Annotated[bool | None, typer.Option(help="Progress bar (default: on a tty).")] = None,
    verbose: Annotated[bool, typer.Option(help="Audit lines on stderr.")] = False,
    exact: Annotated[
        bool,
        typer.Option(
            help="The workers' path message for message: dramatiq's StubBroker and commit.lua "
            "(slower; the report is the same)."
        ),
    ] = False,
) -> None:
    """Run events through publish, queue, worker and store (embedded), then report."""
    show = sys.stderr.isatty() if progress is None else progress
    _, report = run_file(
        file,
        policy=policy,
        until=parse_time(until, "--until"),
        progress=show,
        verbose=verbose,
        exact=exact,
    )
    if json_out:
        print_json(report)
    else:
        print_summary(report, Console())


def demo(
    json_out: Annotated[
        bool, typer.Option("--json", help="The report as one JSON object.")
    ] = False,
) -> None:
    """Process the shipped examples (every flow) and print each case's timeline.

    The examples take the workers' own path (``process --exact``): a handful of events,
    so the demo shows the real thing, not the fast path a year of events needs."""
    app, report = run_file(
        EXAMPLES / "demo.jsonl", policy=None, until=None, progress=False, exact=True
    )
    if json_out:
        print_json(report)
        return
    console = Console()
    print_summary(report, console)
    for row in report["cases"]:
        print_timeline(app.store, row["case_id"], console)
    for member in report["members"]:
        print_timeline(app.store, f"member:{member['member_id']}", console)
    now = app.clock.now()  # the demo's clock: the last event's time
    console.print()
    print_waiting(waiting_rows(app.store, now), now, console)
    print_figures(period_report(app.store), console)


def register(app: typer.Typer) -> None:
    app.command()(process)
    app.command()(demo)
