"""Shared pieces of the CLI: settings, the store for read commands, JSON output."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any, NoReturn

import typer

from ..app import App, build_app
from ..logs import configure_logging
from ..settings import Settings

__all__ = ["fail", "open_app", "parse_time", "print_json", "settings"]


def settings() -> Settings:
    return Settings()


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"esafety: {message}", err=True)
    raise typer.Exit(code)


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, sort_keys=False, separators=(",", ":")) + "\n")


def open_app(*, need_store: bool = True, quiet: bool = False) -> App:
    """The app for a command that reads or writes the shared store (Redis)."""
    current = settings()
    configure_logging(current.log_format, "WARNING" if quiet else current.log_level)
    if need_store and current.embedded:
        fail("this command reads the shared store: set ESAFETY_REDIS_URL (redis://host:6379/0)", 2)
    return build_app(current)


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
    return moment.astimezone(UTC)  # the same instant; stored times are UTC (``...Z``)
