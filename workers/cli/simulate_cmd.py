"""``simulate``: a seeded synthetic year of a charity group, as JSONL on stdout."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from ..simulate import simulate as generate
from .common import parse_time

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
    begin = parse_time(start, "--start")
    out = sys.stdout
    for event in generate(members, days, seed, start=begin):
        out.write(json.dumps(event, separators=(",", ":")) + "\n")


def register(app: typer.Typer) -> None:
    app.command()(simulate)
