"""``archive export``: the event archive as JSONL, the input of ``process`` and ``replay``."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from ..archive import export_lines, read_archive
from .common import fail, open_app

__all__ = ["archive_app", "export", "parse_time", "register"]

archive_app = typer.Typer(help="The archive of accepted events.", no_args_is_help=True)


def parse_time(value: str | None, option: str) -> datetime | None:
    """An RFC 3339 option value with a timezone, or a usage error naming the option."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        fail(f"{option} {value!r} is not an RFC 3339 time (e.g. 2027-01-01T00:00:00Z)", 2)
    if moment.tzinfo is None:
        fail(f"{option} needs a timezone (e.g. ...Z)", 2)
    return moment


@archive_app.command()
def export(
    from_: Annotated[str | None, typer.Option("--from", help="Events at or after.")] = None,
    to: Annotated[str | None, typer.Option("--to", help="Events at or before.")] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File (default stdout).")
    ] = None,
) -> None:
    """Write archived events as CloudEvents JSONL (erased text left empty, screening kept)."""
    start, end = parse_time(from_, "--from"), parse_time(to, "--to")
    app = open_app(quiet=True)
    items = read_archive(app.store.client, app.store.keys.prefix, start=start, end=end)
    sink = output.open("w", encoding="utf-8") if output else sys.stdout
    count = 0
    try:
        for line in export_lines(items):
            sink.write(line + "\n")
            count += 1
    finally:
        if output:
            sink.close()
    typer.echo(f"esafety: {count} archived events exported", err=True)


def register(app: typer.Typer) -> None:
    app.add_typer(archive_app, name="archive")
