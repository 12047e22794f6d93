"""structlog, configured in one function, with redaction before any renderer.

Redaction by construction (E4): whatever a developer later logs by mistake, a
value under a field that can carry content (text, note, contact, name, email,
phone, body...) is replaced by a hash; email addresses and phone numbers are
scrubbed from every other string, and so is a quoted value that follows a
content field's name inside a string (``text='...'`` in a ``repr``,
``"note": "..."`` in JSON). Objects are never ``repr``-ed into a log: models
and dataclasses are logged as their fields (so their content fields are hashed
too), anything else as its type and a hash. Exception messages are kept only
for esafety's own errors (whose messages hold ids by contract), I/O and broker
errors; any other message is hashed, in tracebacks too. Logs from the standard
library (dramatiq's own, which print a message's arguments, that is the event
with its text) go through the same redaction and renderer.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
import sys
import traceback
from collections.abc import Mapping, MutableMapping
from datetime import date, datetime
from enum import Enum
from pathlib import PurePath
from typing import Any, TextIO
from uuid import UUID

import structlog

from ..events.errors import EsafetyError

__all__ = [
    "RedactingFilter",
    "configure_logging",
    "format_exception",
    "redact",
    "redact_text",
    "redact_value",
]

_CONTENT_KEYS = frozenset(
    {
        "text",
        "note",
        "notes",
        "contact",
        "contacts",
        "name",
        "names",
        "full_name",
        "first_name",
        "last_name",
        "display_name",
        "username",
        "email",
        "phone",
        "body",
        "raw",
        "content",
        "message_body",
        "address",
        "postcode",
        "guardians",
        "data",
        "args",
        "kwargs",
        "input",
        "input_value",
        "payload",
        "comment",
        "description",
    }
)
_CONTENT_SUFFIXES = ("_text", "_note", "_notes", "_email", "_phone", "_contact", "_address")
_PASS_KEYS = frozenset({"_record", "_from_structlog"})
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"(?<![\w-])\+?\d[\d ()\-.]{6,}\d(?![\w-])")
_QUOTED = r"""'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|\\"(?:[^\\]|\\(?!"))*\\\""""
_EMBEDDED = re.compile(
    r"(?P<key>(?<![\w])(?:"
    + "|".join(sorted((re.escape(k) for k in _CONTENT_KEYS), key=len, reverse=True))
    + r"|\w+(?:"
    + "|".join(re.escape(s) for s in _CONTENT_SUFFIXES)
    + r"))(?:\\?['\"])?\s*[:=]\s*)(?P<value>"
    + _QUOTED
    + ")",
    re.IGNORECASE,
)
# a date, or a run of digits longer than any E.164 number (15): an id or a hash, such
# as the all-zero ``prev_hash`` of a chain's first entry, not a phone number
_NOT_A_PHONE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{16,}")
# a phone number needs nine digits in one run of digits and separators (a date has eight)
_DIGIT_RUN = re.compile(r"\d(?:[ ()\-.+]*\d){8}")
_SAFE_MESSAGES = (EsafetyError, OSError, TimeoutError)
_SAFE_MODULES = ("redis.", "dramatiq.", "esafety.")
_MAX_DEPTH = 8


def _digest(value: Any) -> str:
    data = value if isinstance(value, bytes) else repr(value).encode("utf-8", "surrogatepass")
    return "sha256:" + hashlib.sha256(data).hexdigest()[:16]


_KEY_VERDICTS: dict[str, bool] = {}


def _is_content_key(key: Any) -> bool:
    """Whether a field name can carry content; remembered, since lines reuse few names."""
    name = str(key)
    verdict = _KEY_VERDICTS.get(name)
    if verdict is None:
        lower = name.lower()
        verdict = lower in _CONTENT_KEYS or lower.endswith(_CONTENT_SUFFIXES)
        if len(_KEY_VERDICTS) < 10_000:  # bounded: names chosen by hostile input stop here
            _KEY_VERDICTS[name] = verdict
    return verdict


def _phone(match: re.Match[str]) -> str:
    found = match.group()
    digits = sum(c.isdigit() for c in found)
    if digits < 9 or _NOT_A_PHONE.fullmatch(found):
        return found
    return "[phone]"


#: short strings that were found clean lately: an audit line repeats most of its values
#: (the policy version, actors, states, a chain's ids, the previous entry's hash, the
#: second's timestamp), and each would otherwise pay the scans again. Only strings the
#: scrub leaves unchanged are kept, so this never holds what a log must not show (and
#: those appear verbatim in the lines anyway).
_CLEAN: set[str] = set()
_CLEAN_MAX_CHARS = 128
_CLEAN_SIZE = 4096
_ASCII_DIGITS = b"0123456789"


def _digit_count(value: str) -> int:
    """How many digits ``value`` holds; ASCII text through ``bytes.translate`` (a C table,
    not a dict lookup a character), anything else (other scripts' digits) counted as such."""
    if value.isascii():
        data = value.encode("ascii")
        return len(data) - len(data.translate(None, _ASCII_DIGITS))
    return sum(c.isdigit() for c in value)


def _scrub(value: str) -> str:
    quoted = "'" in value or '"' in value
    if quoted:
        value = _EMBEDDED.sub(lambda m: f"{m['key']}'[redacted {_digest(m['value'])}]'", value)
    if "@" in value:
        value = _EMAIL.sub("[email]", value)
    if _digit_count(value) < 9 or not _DIGIT_RUN.search(value):
        return value
    return _PHONE.sub(_phone, value)


def redact_text(value: str) -> str:
    """Hash quoted values after content field names, scrub emails and phone numbers.

    The fast path skips a pattern that cannot match: an embedded value needs a quote, an
    email an ``@``, a phone number at least 9 digits (``_phone``); and a short string found
    clean lately is not scanned again (a bounded set). Every
    audit line passes here; measured by ``esafety bench``, this took half a worker's CPU
    per event before the fast paths.
    """
    if value in _CLEAN:
        return value
    out = _scrub(value)
    if out is value and len(value) <= _CLEAN_MAX_CHARS:
        if len(_CLEAN) >= _CLEAN_SIZE:
            _CLEAN.clear()  # bounded, and cheap: refilled by the next lines
        _CLEAN.add(value)
    return out


def _exception_message(exc: BaseException) -> str:
    message = str(exc)
    module = type(exc).__module__ + "."
    if isinstance(exc, _SAFE_MESSAGES) or module.startswith(_SAFE_MODULES):
        return redact_text(message)
    return f"[message redacted {_digest(message)}]" if message else ""


def _exception_line(exc: BaseException) -> str:
    message = _exception_message(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def format_exception(exc: BaseException) -> str:
    """A traceback with each exception's message redacted (frames and code lines kept)."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        stack = "".join(traceback.format_tb(current.__traceback__))
        parts.append(f"Traceback (most recent call last):\n{stack}{_exception_line(current)}")
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    return "\n\nwhich happened while handling:\n\n".join(parts)


def _message_summary(value: Any) -> str | None:
    """A dramatiq message prints its arguments (the event and its text): name it by id."""
    if hasattr(value, "actor_name") and hasattr(value, "message_id"):
        return f"{value.actor_name}(<arguments redacted>) message_id={value.message_id}"
    return None


def _fields_of(value: Any) -> dict[str, Any] | None:
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):
        try:
            return dict(dump(mode="json"))
        except Exception:
            return None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    return None


def _scalar(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID | PurePath):
        return redact_text(str(value))
    return None


def redact_value(value: Any, depth: int = 0) -> Any:
    """Redact any value: containers recursively, objects as their fields or a hash."""
    kind = type(value)
    if kind is str:  # the common cases first: most of a line is short strings and numbers
        return redact_text(value)
    if kind is int or kind is float or kind is bool or value is None:
        return value
    if depth > _MAX_DEPTH:
        return "[redacted:deep]"
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return f"[bytes {_digest(bytes(value))}]"
    if isinstance(value, Mapping):
        return {
            str(k): _digest(v) if _is_content_key(k) else redact_value(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(v, depth + 1) for v in value]
    if isinstance(value, BaseException):
        return _exception_line(value)
    summary = _message_summary(value)
    if summary is not None:
        return summary
    scalar = _scalar(value)
    if scalar is not None:
        return scalar
    fields = _fields_of(value)
    if fields is not None:
        return {"type": type(value).__name__, **redact_value(fields, depth + 1)}
    return f"<{type(value).__name__} {_digest(value)}>"


def _exc_info(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Like structlog's ``format_exc_info``, with every exception message redacted."""
    info = event_dict.pop("exc_info", None)
    if info is True:
        info = sys.exc_info()
    exc = info if isinstance(info, BaseException) else info[1] if isinstance(info, tuple) else None
    if exc is not None:
        event_dict["exception"] = format_exception(exc)
    return event_dict


def redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: hash content fields, scrub everything else (see module doc)."""
    for key in list(event_dict):
        if key in _PASS_KEYS:
            continue
        value = event_dict[key]
        event_dict[key] = _digest(value) if _is_content_key(key) else redact_value(value)
    return event_dict


class RedactingFilter(logging.Filter):
    """For standard-library records: arguments are redacted before the message is formatted."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, Mapping):
            record.args = {
                k: _digest(v) if _is_content_key(k) else _safe_arg(v)
                for k, v in record.args.items()
            }
        elif record.args:
            record.args = tuple(_safe_arg(a) for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact_text(record.msg)
        else:
            record.msg = str(redact_value(record.msg))
        return True


def _safe_arg(value: Any) -> Any:
    if isinstance(value, bool | int | float) or value is None:
        return value
    redacted = redact_value(value)
    return redacted if isinstance(redacted, str) else str(redacted)


def _renderer(use_json: bool, stream: TextIO) -> Any:
    if use_json:
        return structlog.processors.JSONRenderer(sort_keys=True)
    return structlog.dev.ConsoleRenderer(colors=stream.isatty())


def _stdlib(stream: TextIO, level: int, renderer: Any) -> None:
    """Route standard-library logging (dramatiq's) through the same redaction and renderer."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_esafety", False)]:
        root.removeHandler(handler)
    handler = logging.StreamHandler(stream)
    handler._esafety = True  # type: ignore[attr-defined]
    handler.addFilter(RedactingFilter())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_logger_name,
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                _exc_info,
                redact,
            ],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    handler.setLevel(level)
    root.addHandler(handler)
    root.setLevel(level)


class _Stderr:
    """Whatever ``sys.stderr`` is when a line is written (a test runner swaps it, then
    closes its own; a logger bound to that one would fail every later line)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def configure_logging(fmt: str = "auto", level: str = "INFO", stream: TextIO | None = None) -> None:
    """JSON lines in workers, a readable console on a terminal (``fmt='auto'``)."""
    stream = stream or _Stderr()  # type: ignore[assignment]
    assert stream is not None
    use_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    renderer = _renderer(use_json, stream)
    number = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _exc_info,
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(number),
        logger_factory=structlog.WriteLoggerFactory(file=stream),  # one write per line
        cache_logger_on_first_use=False,
    )
    _stdlib(stream, number, renderer)
