"""``archive export``: the event archive as JSONL, the input of ``process`` and ``replay``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ..archive import export_lines, read_archive
from .common import open_app, parse_time

__all__ = ["archive_app", "export", "register"]

archive_app = typer.Typer(help="The archive of accepted events.", no_args_is_help=True)


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
