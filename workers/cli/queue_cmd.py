"""``quarantine list|show|replay`` and ``dlq list|replay|purge``: what failed, and why.

For operators: ids, stages and reasons only. A quarantined payload's raw bytes are
kept in the evidence keys and printed by ``quarantine show ID --raw`` and nowhere
else (they may hold a post's text); a dead letter's arguments are never printed.
"""

from __future__ import annotations

import base64
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ...events.envelope import Event
from ...events.publish import publish
from ..app import App, DramatiqSender
from ..broker import is_amqp
from ..dlq import DeadLetters
from ..quarantine import QuarantineBox
from .common import fail, open_app, print_json

__all__ = [
    "dlq_list",
    "dlq_purge",
    "dlq_replay",
    "quarantine_list",
    "quarantine_replay",
    "quarantine_show",
    "register",
]

JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object on stdout, for tools.")]
Ids = Annotated[list[str] | None, typer.Argument(help="Entry ids (see list).")]
AllOpt = Annotated[bool, typer.Option("--all", help="Every entry.")]
QueueOpt = Annotated[str | None, typer.Option(help="Only this stage's queue.")]

quarantine_cli = typer.Typer(help="Input that could not be processed, kept with its raw bytes.")
dlq_cli = typer.Typer(help="Messages that failed every retry (dramatiq's dead-letter queues).")


def _box(app: App) -> QuarantineBox:
    return QuarantineBox(app.store, app.settings.limits())


def _dead(app: App) -> DeadLetters:
    if is_amqp(app.settings):
        fail("dlq reads dramatiq's Redis dead-letter queues; on RabbitMQ use its own tools", 2)
    return DeadLetters(app.broker, app.store, app.queue_names())


def _chosen(ids: list[str] | None, every: bool) -> list[str] | None:
    if every and ids:
        fail("give entry ids or --all, not both", 2)
    if not every and not ids:
        fail("give entry ids (see the list command) or --all", 2)
    return None if every else list(ids or [])


@quarantine_cli.command("list")
def quarantine_list(json_out: JsonOpt = False) -> None:
    """Entries: id, stage, line, event id, reason (never the payload)."""
    entries = _box(open_app(quiet=True)).entries()
    if json_out:
        print_json({"quarantine": [e.as_dict() for e in entries]})
        return
    table = Table(title=f"Quarantine ({len(entries)})")
    for column in ("id", "at", "stage", "line", "event id", "bytes", "reason"):
        table.add_column(column)
    for e in entries:
        line = "" if e.line is None else str(e.line)
        table.add_row(e.id, e.at, e.stage, line, e.event_id or "", str(e.size), e.error)
    Console().print(table)


@quarantine_cli.command("show")
def quarantine_show(
    entry_id: str,
    raw: Annotated[
        bool,
        typer.Option(
            "--raw",
            help="Also print the raw bytes: CONTENT (a post's text, names, contacts), read "
            "from the evidence keys; like `esafety evidence`, for those allowed to see it.",
        ),
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """One entry: id, stage, reason, SHA-256 and size of the bytes.

    With --raw it prints content: the raw bytes, which may hold a post's text, names and
    contacts (they are kept apart, in the evidence keys; the evidence ACL applies).
    """
    box = _box(open_app(quiet=True))
    entry = box.get(entry_id)
    if entry is None:
        fail(f"no quarantine entry {entry_id!r}; see `esafety quarantine list`", 1)
    payload = (box.raw(entry_id) or b"") if raw else b""
    if json_out:
        body = entry.as_dict()
        if raw:
            body["raw_base64"] = base64.b64encode(payload).decode()
        print_json(body)
        return
    for name, value in entry.as_dict().items():
        typer.echo(f"{name}: {'' if value is None else value}")
    if not raw:
        typer.echo("raw: hidden (may hold personal content); add --raw to print it")
        return
    typer.echo("raw:")
    sys.stdout.flush()
    sys.stdout.buffer.write(payload + b"\n")


@quarantine_cli.command("replay")
def quarantine_replay(
    ids: Ids = None,
    every: AllOpt = False,
    wait: Annotated[float, typer.Option(help="Seconds to wait for a worker's answer.")] = 30.0,
    json_out: JsonOpt = False,
) -> None:
    """Publish entries again after a fix; an entry the engine accepts is removed."""
    chosen = _chosen(ids, every)
    app = open_app(quiet=True)
    box = _box(app)
    targets = chosen if chosen is not None else [e.id for e in box.entries()]
    sender = DramatiqSender(app)

    def send(event: Event) -> None:
        publish(event, sender=sender)

    results = [box.replay(entry_id, send, wait_s=wait) for entry_id in targets]
    if json_out:
        print_json({"replayed": [r.as_dict() for r in results]})
    else:
        for r in results:
            extra = f" -> {r.new_id}" if r.new_id else ""
            typer.echo(f"{r.id}: {r.outcome}{extra} {r.detail}".rstrip())
    if any(r.outcome in {"missing", "pending"} for r in results):
        raise typer.Exit(1)


@dlq_cli.command("list")
def dlq_list(queue: QueueOpt = None, json_out: JsonOpt = False) -> None:
    """Dead letters: id, queue, actor, failed attempts, when, reason (never the arguments)."""
    try:
        letters = _dead(open_app(quiet=True)).letters(queue)
    except ValueError as exc:
        fail(str(exc), 2)
    if json_out:
        print_json({"dead_letters": [d.as_dict() for d in letters]})
        return
    table = Table(title=f"Dead letters ({len(letters)})")
    for column in ("id", "dead at", "queue", "actor", "attempts", "reason"):
        table.add_column(column)
    for d in letters:
        table.add_row(d.id, d.dead_at, d.queue, d.actor, str(d.attempts), d.reason)
    Console().print(table)


@dlq_cli.command("replay")
def dlq_replay(
    ids: Ids = None, every: AllOpt = False, queue: QueueOpt = None, json_out: JsonOpt = False
) -> None:
    """Send dead letters again as new messages with their retries reset."""
    chosen = _chosen(ids, every)
    try:
        done = _dead(open_app(quiet=True)).replay(chosen, queue)
    except ValueError as exc:
        fail(str(exc), 2)
    _report("replayed", done, chosen, json_out)


@dlq_cli.command("purge")
def dlq_purge(
    ids: Ids = None,
    every: AllOpt = False,
    queue: QueueOpt = None,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: the letters are deleted.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Delete dead letters for good (needs --yes)."""
    chosen = _chosen(ids, every)
    if not yes:
        fail("purge deletes dead letters for good: add --yes to confirm", 2)
    try:
        done = _dead(open_app(quiet=True)).purge(chosen, queue)
    except ValueError as exc:
        fail(str(exc), 2)
    _report("purged", done, chosen, json_out)


def _report(verb: str, done: list[str], chosen: list[str] | None, json_out: bool) -> None:
    missing = sorted(set(chosen or []) - set(done))
    if json_out:
        print_json({verb: done, "missing": missing})
    else:
        typer.echo(
            f"{verb} {len(done)}" + (f"; not found: {', '.join(missing)}" if missing else "")
        )
    if missing:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(quarantine_cli, name="quarantine")
    app.add_typer(dlq_cli, name="dlq")
