"""The CloudEvents 1.0 structured-mode envelope and the parser that checks it.

Parsing is where bad input is told apart from good: every failure raises
:class:`InvalidEvent` naming the field and the event id, never the content, so
the error can be logged and quarantined safely.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import InvalidEvent, LimitExceeded
from .limits import Limits
from .models import EVENT_MODELS, EventData

__all__ = ["Envelope", "Event", "parse_event", "validate_envelope"]

_EXTENSION_NAME = re.compile(r"^[a-z0-9]{1,20}$")
_MAX_DEPTH = 16
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class Envelope(BaseModel):
    """CloudEvents 1.0 attributes; extension attributes are allowed if well named."""

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: str
    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    type: str = Field(min_length=1)
    time: datetime
    datacontenttype: str | None = "application/json"
    data: dict[str, Any]

    @field_validator("specversion")
    @classmethod
    def _v1(cls, value: str) -> str:
        if value != "1.0":
            raise ValueError("specversion must be '1.0'")
        return value

    @field_validator("time")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("time must carry a timezone (RFC 3339, e.g. 2026-11-24T10:00:00Z)")
        try:
            return value.astimezone(UTC)
        except OverflowError:  # year 1 or 9999 with an offset: pydantic only maps ValueError
            raise ValueError("time is out of range once converted to UTC") from None


@dataclass(frozen=True, slots=True)
class Event:
    """A validated event: the envelope's attributes and its typed data."""

    id: str
    source: str
    type: str
    time: datetime
    data: EventData
    extensions: dict[str, str]
    signed: dict[str, Any] | None = None

    def envelope_dict(self) -> dict[str, Any]:
        """The event as a CloudEvents JSON object (what ``publish`` sends).

        A signed event is forwarded exactly as its producer sent it (``signed``),
        so that the worker checks the bytes that were signed (``events/signing.py``).
        """
        if self.signed is not None:
            return dict(json.loads(json.dumps(self.signed)))
        body: dict[str, Any] = {
            "specversion": "1.0",
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "time": self.time.strftime("%Y-%m-%dT%H:%M:%S.%fZ").replace(".000000Z", "Z"),
            "datacontenttype": "application/json",
            "data": self.data.model_dump(mode="json", exclude_defaults=True),
        }
        body.update(self.extensions)
        return body


def _depth(value: Any, level: int = 0) -> int:
    if level > _MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


def _field_path(error: Any) -> str:
    return ".".join(str(part) for part in error["loc"]) or "(root)"


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON objects with a repeated key are refused: parsers disagree on which value wins,
    which is how a payload smuggles one id past a check and another into the store."""
    body = dict(pairs)
    if len(body) != len(pairs):
        keys = [k for k, _ in pairs]
        repeated = next(k for k in keys if keys.count(k) > 1)
        raise InvalidEvent(f"duplicate key {repeated[:40]!r} in a JSON object", field="(payload)")
    return body


def _check_unicode(body: dict[str, Any]) -> None:
    """A lone surrogate (``"\\ud800"`` is valid JSON) is not text: refuse it here, before it
    reaches a Redis key or a file that must be UTF-8."""
    try:
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidEvent(
            "payload holds a lone surrogate (not valid Unicode)", field="(payload)"
        ) from None


def _first_error(exc: ValidationError, prefix: str) -> tuple[str, str]:
    error = exc.errors(include_input=False, include_url=False)[0]
    path = _field_path(error)
    return (f"{prefix}{path}" if path != "(root)" else prefix.rstrip(".") or path), error["msg"]


# A lone surrogate in decoded text comes from a literal one in a ``str`` (strict UTF-8
# refuses it in bytes) or from a ``\\uD800``-``\\uDFFF`` escape; either must be seen.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _decode(raw: bytes | str, limits: Limits) -> tuple[dict[str, Any], bool]:
    """The decoded object, and whether it can hold a lone surrogate (checked after)."""
    surrogates = False
    if isinstance(raw, str):
        try:
            size = len(raw.encode("utf-8"))
        except UnicodeEncodeError:
            size, surrogates = len(raw.encode("utf-8", "surrogatepass")), True
    else:
        size = len(raw)
    if size > limits.max_payload_bytes:
        raise LimitExceeded(
            f"payload is {size} bytes, over the max_payload_bytes limit of "
            f"{limits.max_payload_bytes}",
            field="(payload)",
        )
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        body = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except UnicodeDecodeError as exc:
        raise InvalidEvent(f"payload is not UTF-8 (byte {exc.start})", field="(payload)") from None
    except RecursionError:
        raise InvalidEvent("payload nests too deeply", field="(payload)") from None
    except ValueError as exc:
        message = getattr(exc, "msg", "not JSON")
        raise InvalidEvent(f"malformed JSON: {message}", field="(payload)") from None
    if not isinstance(body, dict):
        raise InvalidEvent("payload must be a JSON object", field="(payload)")
    # each level is an object or array: with no more brackets than the limit (counted in
    # strings too, so more than there are), no walk is needed to know it is not exceeded
    if text.count("{") + text.count("[") > _MAX_DEPTH and _depth(body) > _MAX_DEPTH:
        raise InvalidEvent(f"payload nests deeper than {_MAX_DEPTH} levels", field="(payload)")
    return body, surrogates or (("\\u" in text) and _SURROGATE_ESCAPE.search(text) is not None)


def _safe_id(body: dict[str, Any]) -> str | None:
    value = body.get("id")
    return value[:80] if isinstance(value, str) and value else None


def validate_envelope(body: dict[str, Any]) -> Envelope:
    """Check the CloudEvents attributes of a decoded object."""
    event_id = _safe_id(body)
    try:
        envelope = Envelope.model_validate(body)
    except ValidationError as exc:
        field, message = _first_error(exc, "")
        raise InvalidEvent(f"field {field!r}: {message}", event_id=event_id, field=field) from None
    for name, value in (envelope.model_extra or {}).items():
        if not _EXTENSION_NAME.match(name) or not isinstance(value, str):
            raise InvalidEvent(
                f"extension attribute {name[:40]!r} must be a lowercase alphanumeric name "
                "with a string value",
                event_id=event_id,
                field=name[:40],
            )
    return envelope


def _check_id(value: str, where: str, limits: Limits, event_id: str | None) -> None:
    """Ids, refs and names of things: bounded, and no control characters (they end up in
    Redis keys, file names and a lead's terminal, where an escape sequence is an attack)."""
    if len(value) > limits.max_id_chars:
        raise LimitExceeded(
            f"field {where!r} has {len(value)} characters, over the max_id_chars limit "
            f"of {limits.max_id_chars}",
            event_id=event_id,
            field=where,
        )
    if _CONTROL.search(value):
        raise InvalidEvent(
            f"field {where!r} holds a control character", event_id=event_id, field=where
        )


def _check_limits(data: dict[str, Any], limits: Limits, event_id: str, path: str = "data") -> None:
    for key, value in data.items():
        where = f"{path}.{key}"
        if isinstance(value, str) and key not in {"text", "note"}:
            _check_id(value, where, limits, event_id)
        elif isinstance(value, str):
            limit, name = limits.max_text_chars, "max_text_chars"
            if len(value) > limit:
                raise LimitExceeded(
                    f"field {where!r} has {len(value)} characters, over the {name} limit "
                    f"of {limit}",
                    event_id=event_id,
                    field=where,
                )
        elif isinstance(value, list):
            if len(value) > limits.max_list_items:
                raise LimitExceeded(
                    f"field {where!r} has {len(value)} items, over the max_list_items limit "
                    f"of {limits.max_list_items}",
                    event_id=event_id,
                    field=where,
                )
            for index, item in enumerate(value):
                if isinstance(item, dict):
                    _check_limits(item, limits, event_id, f"{where}.{index}")
                elif isinstance(item, str):
                    _check_id(item, f"{where}.{index}", limits, event_id)


def parse_event(raw: bytes | str | dict[str, Any], limits: Limits | None = None) -> Event:
    """Decode, check and type one CloudEvents JSON object.

    Raises :class:`InvalidEvent` (or :class:`LimitExceeded`) naming the field and
    the event id; the message holds no content of the event.
    """
    limits = limits or Limits()
    if isinstance(raw, dict):
        body, surrogates = raw, True
    else:
        body, surrogates = _decode(raw, limits)
    if surrogates:  # else no string in it can hold one: the text had none to decode
        _check_unicode(body)
    envelope = validate_envelope(body)
    _check_id(envelope.id, "id", limits, None)
    _check_id(envelope.source, "source", limits, envelope.id)
    model = EVENT_MODELS.get(envelope.type)
    if model is None:
        raise InvalidEvent(
            f"field 'type': unknown event type (known: {', '.join(sorted(EVENT_MODELS))})",
            event_id=envelope.id,
            field="type",
        )
    _check_limits(envelope.data, limits, envelope.id)
    try:
        data = model.model_validate(envelope.data)
    except ValidationError as exc:
        field, message = _first_error(exc, "data.")
        raise InvalidEvent(
            f"field {field!r}: {message}", event_id=envelope.id, field=field
        ) from None
    extensions = {k: str(v) for k, v in (envelope.model_extra or {}).items()}
    return Event(
        id=envelope.id,
        source=envelope.source,
        type=envelope.type,
        time=envelope.time,
        data=data,  # type: ignore[arg-type]
        extensions=extensions,
        signed=json.loads(json.dumps(body)) if "esafetysig" in extensions else None,
    )
