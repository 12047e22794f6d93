"""structlog, configured in one function, with redaction before any renderer.

Redaction by construction (E4): whatever a developer later logs by mistake, a
value under a field that can carry content is replaced by a hash, and email
addresses and phone numbers are scrubbed from every other string.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

__all__ = ["configure_logging", "redact", "redact_value"]

_CONTENT_KEYS = frozenset(
    {
        "text",
        "note",
        "contact",
        "name",
        "email",
        "phone",
        "body",
        "raw",
        "content",
        "message_body",
        "address",
        "guardians",
        "data",
        "args",
        "kwargs",
    }
)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"(?<![\w-])\+?\d[\d ()\-.]{6,}\d(?![\w-])")


def _digest(value: Any) -> str:
    return "sha256:" + hashlib.sha256(repr(value).encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _phone(match: re.Match[str]) -> str:
    found = match.group()
    digits = sum(c.isdigit() for c in found)
    if digits < 9 or re.fullmatch(r"\d{4}-\d{2}-\d{2}", found):
        return found
    return "[phone]"


def redact_value(value: Any, depth: int = 0) -> Any:
    """Scrub emails and phone numbers from strings, recursing into containers."""
    if depth > 8:
        return "[redacted:deep]"
    if isinstance(value, str):
        return _PHONE.sub(_phone, _EMAIL.sub("[email]", value))
    if isinstance(value, dict):
        return {
            k: (_digest(v) if str(k).lower() in _CONTENT_KEYS else redact_value(v, depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(v, depth + 1) for v in value]
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {redact_value(str(value), depth + 1)}"
    if isinstance(value, int | float | bool) or value is None:
        return value
    return redact_value(repr(value), depth + 1)


def redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: hash content fields, scrub contacts from everything else."""
    for key in list(event_dict):
        if key.lower() in _CONTENT_KEYS:
            event_dict[key] = _digest(event_dict[key])
        else:
            event_dict[key] = redact_value(event_dict[key])
    return event_dict


def configure_logging(fmt: str = "auto", level: str = "INFO", stream: TextIO | None = None) -> None:
    """JSON lines in workers, a readable console on a terminal (``fmt='auto'``)."""
    stream = stream or sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer(sort_keys=True)
        if use_json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
