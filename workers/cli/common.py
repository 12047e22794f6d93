"""Shared pieces of the CLI: settings, the store for read commands, JSON output."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import typer

from ..app import App, build_app
from ..logs import configure_logging
from ..settings import Settings

__all__ = ["fail", "open_app", "print_json", "settings"]


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
