"""``simulate``: a seeded synthetic year of a charity group, as JSONL on stdout."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Annotated

import typer

from ..simulate import simulate as generate
from .common import fail

__all__ = ["register", "simulate"]


def simulate(
    members: Annotated[int, typer.Option(min=1, help="Members of the group.")] = 200,
    days: Annotated[int, typer.Option(min=1, help="Days to simulate.")] = 365,
    seed: Annotated[int, typer.Option(help="Same seed, same file.")] = 1,
    start: Annotated[
        str | None, typer.Option(help="First day, RFC 3339 (default 2026-01-05T07:00:00Z).")
    ] = None,
) -> None:
    """Write a realistic, synthetic year of events (no real-looking personal data)."""
    begin = None
    if start is not None:
        try:
            begin = datetime.fromisoformat(start.replace("Z", "+00:00"))
        except ValueError:
            fail(f"--start {start!r} is not an RFC 3339 time", 2)
        if begin.tzinfo is None:
            fail("--start needs a timezone (e.g. ...Z)", 2)
    out = sys.stdout
    for event in generate(members, days, seed, start=begin):
        out.write(json.dumps(event, separators=(",", ":")) + "\n")


def register(app: typer.Typer) -> None:
    app.command()(simulate)
