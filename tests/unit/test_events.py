"""Envelope and event validation: errors name the field and the event id, never content."""

from __future__ import annotations

import json
from typing import Any

import pytest
from esafety.events import (
    EVENT_MODELS,
    InvalidEvent,
    LimitExceeded,
    Limits,
    encode_event,
    json_schema,
    parse_event,
    publish,
)
from esafety.events.envelope import Event

from tests.helpers import envelope, post

SECRET = "MARKER-Jane-Doe-07700900123"


def test_valid_post_parses_to_typed_data() -> None:
    event = parse_event(json.dumps(post("p1", "m1", "hello", links=["https://a.org"])))
    assert event.type == "esafety.post.submitted"
    assert event.data.post_id == "p1"  # type: ignore[union-attr]
    assert event.time.tzinfo is not None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**post("p", "m", "x"), "specversion": "0.3"}, "specversion"),
        ({k: v for k, v in post("p", "m", "x").items() if k != "source"}, "source"),
        ({**post("p", "m", "x"), "time": "2026-11-24T10:00:00"}, "time"),
        ({**post("p", "m", "x"), "type": "esafety.unknown"}, "type"),
        (
            envelope("esafety.post.submitted", {"post_id": "p", "member_id": 7, "text": "x"}),
            "data.member_id",
        ),
        (
            envelope(
                "esafety.post.submitted",
                {"post_id": "p", "member_id": "m", "text": "x", "extra": SECRET},
            ),
            "data.extra",
        ),
        (
            envelope(
                "esafety.allegation.reported",
                {
                    "allegation_id": "a",
                    "reporter_ref": "r",
                    "category": "gossip",
                    "subject_role": "staff",
                },
            ),
            "data.category",
        ),
    ],
)
def test_errors_name_the_field_and_event_id(body: dict, field: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_event(json.dumps(body))
    assert info.value.field == field
    assert body["id"] in str(info.value)
    assert SECRET not in str(info.value)


def test_text_never_appears_in_error_messages() -> None:
    body = envelope("esafety.post.submitted", {"post_id": "p", "member_id": ["no"], "text": SECRET})
    with pytest.raises(InvalidEvent) as info:
        parse_event(json.dumps(body))
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"{not json", "malformed JSON"),
        (b"[1, 2]", "JSON object"),
        (b"\xff\xfe\x00", "not UTF-8"),
        (b"[" * 5000 + b"]" * 5000, "nests too deeply"),
        (b'{"a":' * 100 + b"1" + b"}" * 100, "nests deeper"),
    ],
)
def test_undecodable_payloads(raw: bytes, words: str) -> None:
    with pytest.raises(InvalidEvent, match=words):
        parse_event(raw)


def _post_text(text: str) -> str:
    return json.dumps(post("p", "m", text), ensure_ascii=False)


@pytest.mark.parametrize(
    "raw",
    [
        _post_text("x").replace('"x"', '"\\ud800"'),  # an escaped lone surrogate
        _post_text("x").replace('"x"', '"\\uDFFF x"'),  # upper case hex
        _post_text("x").replace('"text"', '"\\udc00"'),  # in a key
        _post_text("x\ud800"),  # a literal one in a str
        _post_text("x\ud800").encode("utf-8", "surrogatepass"),  # in bytes: not UTF-8
    ],
)
def test_every_way_to_a_lone_surrogate_is_refused(raw: str | bytes) -> None:
    with pytest.raises(InvalidEvent, match=r"surrogate|not UTF-8"):
        parse_event(raw)


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (_post_text("x").replace('"x"', '"\\ud83d\\ude00"'), "\U0001f600"),  # a pair
        (_post_text("x").replace('"x"', '"\\\\ud800"'), "\\ud800"),  # an escaped backslash
        (_post_text("{[{[{[{[{[{[{[{[{[{[ no nesting"), "{[{[{[{[{[{[{[{[{[{[ no nesting"),
    ],
)
def test_what_only_looks_like_a_surrogate_or_nesting_is_text(raw: str, text: str) -> None:
    event = parse_event(raw)
    assert event.data.text == text  # type: ignore[union-attr]


def test_nesting_one_past_the_limit_is_refused_and_at_the_limit_kept() -> None:
    body = post("p", "m", "x")
    for depth, ok in ((14, True), (15, False)):  # the envelope and data are two levels
        nested: Any = "x"
        for _ in range(depth):
            nested = [nested]
        body["data"]["links"] = nested
        if ok:
            with pytest.raises(InvalidEvent, match=r"data\.links"):  # parsed, then typed
                parse_event(json.dumps(body))
        else:
            with pytest.raises(InvalidEvent, match="nests deeper"):
                parse_event(json.dumps(body))


def test_limits_name_the_limit() -> None:
    limits = Limits(max_payload_bytes=10_000, max_text_chars=50, max_list_items=2)
    with pytest.raises(LimitExceeded, match="max_text_chars"):
        parse_event(json.dumps(post("p", "m", "x" * 51)), limits)
    with pytest.raises(LimitExceeded, match="max_list_items"):
        parse_event(json.dumps(post("p", "m", "x", links=["a", "b", "c"])), limits)
    with pytest.raises(LimitExceeded, match="max_payload_bytes"):
        parse_event(json.dumps(post("p", "m", "x" * 20_000)), limits)


def test_publish_validates_before_sending() -> None:
    sent: list[bytes] = []

    class ListSender:
        def send(self, body: bytes, *, event: Event) -> None:
            sent.append(body)

    with pytest.raises(InvalidEvent):
        publish({"specversion": "1.0"}, sender=ListSender())
    assert sent == []
    event = publish(post("p1", "m1", "hello"), sender=ListSender())
    assert sent == [encode_event(event)]
    assert parse_event(sent[0]) == event


def test_schema_covers_every_event_type() -> None:
    schema = json_schema()
    types = {option["properties"]["type"]["const"] for option in schema["oneOf"]}
    assert types == set(EVENT_MODELS)
    json.dumps(schema)
