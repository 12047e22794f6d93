"""``outbox list|resend``: the effects committed and not yet delivered, for operators.

``esafety status`` counts them (``outbox_pending``); this names them: effect id, kind,
case, recipient ref, whether a message on the deliveries queue will still send it, and
what the outbox relay did. ``resend`` asks the ``deliver`` actor again at once (safe:
delivery is idempotent by effect id). Never a notice's contents.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ..outbox_relay import OutboxRelay, relay_for
from .common import fail, open_app, print_json

__all__ = ["outbox_list", "outbox_resend", "register"]

JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object on stdout, for tools.")]
outbox_cli = typer.Typer(help="Effects committed and not yet delivered.")


def _relay() -> OutboxRelay:
    relay = relay_for(open_app(quiet=True))
    if relay is None:
        fail("outbox reads dramatiq's Redis queues; on RabbitMQ use its own tools", 2)
    return relay


@outbox_cli.command("list")
def outbox_list(json_out: JsonOpt = False) -> None:
    """Pending effects: ids, kind, case, recipient ref, a message still queued, relay resends."""
    rows = _relay().pending()
    if json_out:
        print_json({"pending": rows})
        return
    table = Table(title=f"Outbox: {len(rows)} pending")
    for column in ("effect", "kind", "case", "recipient", "message queued", "pending s", "resends"):
        table.add_column(column)
    for r in rows:
        waited = "" if r["pending_s"] is None else str(r["pending_s"])
        queued = "yes" if r["message"] else "no"
        ids = (r["effect_id"], r["kind"], r["case_id"], r["recipient"])
        table.add_row(*ids, queued, waited, str(r["resends"]))
    Console().print(table)


@outbox_cli.command("resend")
def outbox_resend(
    effect_ids: Annotated[list[str] | None, typer.Argument(help="Effect ids (see list).")] = None,
    every: Annotated[bool, typer.Option("--all", help="Every pending effect.")] = False,
) -> None:
    """Ask the deliver actor again for these pending effects (each is sent once at most)."""
    if every == bool(effect_ids):
        fail("give effect ids (see esafety outbox list) or --all, one of the two", 2)
    relay = _relay()
    rows = relay.pending()
    wanted = {r["effect_id"] for r in rows} if every else set(effect_ids or [])
    unknown = sorted(wanted - {r["effect_id"] for r in rows})
    if unknown:
        fail(f"not pending: {', '.join(unknown)} (see esafety outbox list)", 1)
    done = relay.resend([f"{r['tag']}|{r['effect_id']}" for r in rows if r["effect_id"] in wanted])
    typer.echo(f"resent {len(done)}")


def register(app: typer.Typer) -> None:
    app.add_typer(outbox_cli, name="outbox")
