"""Commands for producers: ``publish``, ``review`` and ``schema``."""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import redis
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ...events.errors import InvalidEvent
from ...events.models import ReviewDecision
from ...events.publish import publish as publish_event
from ...events.schema import json_schema
from ..app import App, DramatiqSender
from .common import fail, open_app, print_json

__all__ = [
    "publish",
    "publish_lines",
    "register",
    "review",
    "schema",
]


def _with_retry(action: Callable[[], Any], attempts: int = 6) -> Any:
    """Retry a lost connection with exponential backoff (0.2 s doubling)."""
    for attempt in range(attempts):
        try:
            return action()
        except (redis.ConnectionError, redis.TimeoutError, ConnectionError) as exc:
            if attempt == attempts - 1:
                fail(f"broker unreachable after {attempts} attempts: {type(exc).__name__}", 1)
            time.sleep(0.2 * 2**attempt)
    return None


def publish_lines(
    app: App, lines: list[str], progress: Callable[[int], None] | None = None
) -> dict[str, int]:
    """Validate and send each line; a bad line is quarantined with its line number."""
    counts = {"sent": 0, "quarantined": 0}
    run = uuid.uuid4().hex  # a retried line is kept once; the same file again, again
    for number, raw in enumerate(lines, start=1):
        if progress and number % 100 == 0:
            progress(number)
        if not raw.strip():
            continue
        try:
            _with_retry(partial(app.publish, raw, line=number, scope=run))
        except InvalidEvent:
            counts["quarantined"] += 1  # kept by ``app.publish`` with its line number
            continue
        counts["sent"] += 1
    return counts


def publish(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="JSONL of events.")],
    json_out: Annotated[bool, typer.Option("--json")] = False,
    progress: Annotated[
        bool | None, typer.Option(help="Progress bar (default: on a tty, 1,000+ lines).")
    ] = None,
) -> None:
    """Validate and enqueue every line; bad lines go to quarantine with their raw bytes."""
    app = open_app(quiet=True)
    lines = file.read_text("utf-8", errors="surrogateescape").splitlines()
    show = (sys.stderr.isatty() and len(lines) >= 1000) if progress is None else progress
    if show:
        columns = (TextColumn("publishing"), BarColumn(), MofNCompleteColumn())
        with Progress(
            *columns, TimeRemainingColumn(), console=Console(stderr=True), transient=True
        ) as bar:
            task = bar.add_task("lines", total=len(lines))
            counts = publish_lines(app, lines, lambda n: bar.update(task, completed=n))
    else:
        counts = publish_lines(app, lines)
    typer.echo(
        f"published {counts['sent']}, quarantined {counts['quarantined']} "
        "(duplicates are counted by the workers: see `esafety status`)",
        err=True,
    )
    if json_out:
        print_json(counts)


def review(
    case_id: str,
    decision: Annotated[ReviewDecision, typer.Option(help="The decision.")],
    by: Annotated[str, typer.Option("--by", help="Your reviewer ref (never a name).")],
    note: Annotated[str, typer.Option(help="Kept as evidence; the audit holds its hash.")] = "",
) -> None:
    """Record a review decision on a case (publishes esafety.case.reviewed)."""
    app = open_app(quiet=True)
    found = app.store.case(case_id)
    if found is None:
        typer.echo(
            f"note: case {case_id!r} is not in the store yet; the workers retry the review "
            "with backoff, then quarantine it if the case never appears",
            err=True,
        )
    else:
        from ...workflows.reviews import allowed_decisions

        allowed = allowed_decisions(found)
        if decision.value not in allowed:
            fail(
                f"case {case_id!r} is {found.state.value!r}: decision {decision.value!r} is "
                f"not allowed (allowed: {', '.join(allowed) or 'none'})",
                1,
            )
    body = {
        "specversion": "1.0",
        "id": f"review-{uuid.uuid4()}",
        "source": "esafety/cli",
        "type": "esafety.case.reviewed",
        "time": app.clock.now().strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "data": {
            "case_id": case_id,
            "reviewer_ref": by,
            "decision": decision.value,
            **({"note": note} if note else {}),
        },
    }
    event = _with_retry(lambda: publish_event(body, sender=DramatiqSender(app)))
    typer.echo(f"review {event.id} published for {case_id}", err=True)


def schema() -> None:
    """JSON Schema (2020-12) of every event the engine accepts."""
    typer.echo(json.dumps(json_schema(), indent=2))


def register(app: typer.Typer) -> None:
    app.command()(publish)
    app.command()(review)
    app.command()(schema)
