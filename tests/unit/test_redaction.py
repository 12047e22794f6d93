"""Redaction by construction (E4): hostile shapes reach the renderer clean.

Each test logs something a developer might log by mistake, through the real
configuration, and scans the rendered output for the planted content.
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass
from typing import Any

import pytest
import structlog
from dramatiq import Message
from esafety.events.envelope import parse_event
from esafety.events.errors import InvalidEvent
from esafety.workers.logs import format_exception, redact_text, redact_value

from tests.helpers import post

NAME = "Zebulon Quixworth"
EMAIL = "zebulon.q@example.org"
PHONE = "+44 7700 900123"
TEXT = f"{NAME} lives at 4 Privet Drive, mail {EMAIL} or ring {PHONE}"


def leaks(output: str) -> list[str]:
    flat = output.lower()
    squashed = "".join(flat.split())
    found = []
    for needle in (NAME, EMAIL, PHONE, "privet drive", "zebulon"):
        low = needle.lower()
        if low in flat or "".join(low.split()) in squashed:
            found.append(needle)
    digits = "".join(c for c in PHONE if c.isdigit())
    if digits in "".join(c for c in output if c.isdigit()):
        found.append("phone digits")
    return found


def test_content_fields_are_hashed_at_any_depth(rendered: io.StringIO) -> None:
    log = structlog.get_logger("t")
    log.info(
        "step",
        text=TEXT,
        post_text=TEXT,
        nested={"a": [{"b": {"note": TEXT, "ok": "id-1"}}], "contact": EMAIL},
        deep=[[[[[[[[[[TEXT]]]]]]]]]],
    )
    line = json.loads(rendered.getvalue())
    assert line["nested"]["a"][0]["b"]["ok"] == "id-1"
    assert line["text"].startswith("sha256:")
    assert leaks(rendered.getvalue()) == []


def test_emails_and_phones_are_scrubbed_from_any_string(rendered: io.StringIO) -> None:
    structlog.get_logger("t").warning("contact", reason=f"write to {EMAIL} or {PHONE}")
    line = json.loads(rendered.getvalue())
    assert line["reason"] == "write to [email] or [phone]"


def test_exception_messages_are_hashed_unless_ours(rendered: io.StringIO) -> None:
    log = structlog.get_logger("t")
    log.error("failed", error=ValueError(TEXT), ours=InvalidEvent("bad field", event_id="e-1"))
    try:
        try:
            raise KeyError(TEXT)
        except KeyError as inner:
            raise RuntimeError(f"while handling {NAME}") from inner
    except RuntimeError:
        log.exception("crashed")
    out = rendered.getvalue()
    assert "InvalidEvent: event 'e-1': bad field" in out
    assert "Traceback" in out and "KeyError" in out and "RuntimeError" in out
    assert leaks(out) == []


def test_repr_and_str_of_an_event_do_not_leak(rendered: io.StringIO) -> None:
    event = parse_event(post("p-1", "m-1", TEXT))
    log = structlog.get_logger("t")
    log.info("got", event_repr=repr(event), as_json=json.dumps(post("p-1", "m-1", TEXT)))
    log.info("got", event_obj=event, model=event.data, envelope=event.envelope_dict())
    log.info(f"got {event!r}")
    out = rendered.getvalue()
    assert "p-1" in out  # ids stay readable
    assert leaks(out) == []


def test_unknown_objects_and_bytes_become_type_and_hash(rendered: io.StringIO) -> None:
    class Opaque:
        def __repr__(self) -> str:
            return TEXT

    @dataclass
    class Holder:
        member_id: str
        comment: str

    structlog.get_logger("t").info(
        "x", obj=Opaque(), raw_bytes=TEXT.encode(), holder=Holder("m-1", TEXT), ids={"a", "b"}
    )
    out = rendered.getvalue()
    assert "Opaque sha256:" in out and '"member_id": "m-1"' in out
    assert leaks(out) == []


def test_stdlib_and_dramatiq_records_are_redacted(rendered: io.StringIO) -> None:
    body = json.dumps(post("p-1", "m-1", TEXT))
    message = Message(
        queue_name="events", actor_name="handle_event", args=(body,), kwargs={}, options={}
    )
    logger = logging.getLogger("dramatiq.worker.WorkerThread")
    logger.debug("Received message %s with id %r.", message, message.message_id)
    logger.error("Failed to process %s", body, exc_info=ValueError(TEXT))
    logging.getLogger("other").warning("mapping %(text)s", {"text": TEXT})
    out = rendered.getvalue()
    assert message.message_id in out  # named by id (here, or by issue 5's filter on dramatiq)
    assert redact_value(message) == (
        f"handle_event(<arguments redacted>) message_id={message.message_id}"
    )
    assert leaks(out) == []


@pytest.mark.parametrize(
    "shape",
    [
        f"text='{TEXT}'",
        f'"note": "{TEXT}"',
        f"{{'contact': '{EMAIL}'}}",
        json.dumps(json.dumps({"data": {"text": TEXT}})),  # JSON inside a JSON string
        f"input_value='{TEXT}', input_type=str",  # a pydantic error
        f"Post_Text = '{TEXT}'",
    ],
)
def test_quoted_content_inside_strings(shape: str) -> None:
    assert leaks(redact_text(shape)) == []


def test_redact_value_keeps_ids_numbers_and_structure() -> None:
    value: dict[str, Any] = {"case_id": "post:p-1", "seq": 3, "ok": True, "rules": ["spam"]}
    assert redact_value(value) == value
    assert redact_value({"when": "2026-11-24"}) == {"when": "2026-11-24"}


def test_format_exception_walks_the_chain() -> None:
    try:
        raise ValueError(TEXT)
    except ValueError as exc:
        text = format_exception(exc)
    assert text.startswith("Traceback") and "ValueError: [message redacted" in text
    assert leaks(text) == []


def test_hashes_and_long_ids_are_not_phone_numbers() -> None:
    """The first entry of every chain has an all-zero prev_hash: it must log as it is."""
    genesis = "0" * 64
    assert redact_text(genesis) == genesis
    assert redact_value({"prev_hash": genesis, "id": "1234567890123456"})["prev_hash"] == genesis
    assert redact_text("2026-01-29T22:40:23.123456Z") == "2026-01-29T22:40:23.123456Z"


@pytest.mark.parametrize(
    "text",
    [
        "call 07700 900123",
        "ring 07700900123 or 07700 900456",
        "numbers: 07700 900123 07700 900456",
        "+44 (0)20 7946 0958",
        "07700-900-123",
    ],
)
def test_phone_numbers_are_still_scrubbed(text: str) -> None:
    out = redact_text(text)
    assert "[phone]" in out
    assert "900" not in out and "7946" not in out


def test_a_string_is_scrubbed_every_time_it_is_seen() -> None:
    """Clean strings are remembered to skip the scans; one that needed scrubbing never is."""
    dirty = "ring 07700 900123 or mail a.b@example.org"
    first, second = redact_text(dirty), redact_text(dirty)
    assert first == second
    assert "[phone]" in second and "[email]" in second and "900123" not in second
    clean = "post:p-0001"
    assert redact_text(clean) is clean and redact_text(clean) is clean


def test_digits_of_other_scripts_count_toward_a_phone_number() -> None:
    """The digit count reads ASCII through a byte table; other scripts' digits still count."""
    digits = "".join(chr(0x0660 + int(d)) for d in "07700 900123" if d != " ")
    arabic_indic = f"call {digits[:5]} {digits[5:]}"  # a phone number in Arabic-Indic digits
    out = redact_text(arabic_indic)
    assert "[phone]" in out and digits[5:] not in out
