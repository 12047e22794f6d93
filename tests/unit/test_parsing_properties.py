"""Properties of parsing (hypothesis): whatever arrives, ``parse_event`` either returns an
event or raises ``InvalidEvent``; its reasons name fields and limits, never content;
a valid event survives publish's encoding unchanged; and the engine never raises on
an event body, it quarantines.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from esafety.events.envelope import parse_event
from esafety.events.errors import InvalidEvent, LimitExceeded
from esafety.events.limits import Limits
from esafety.events.publish import encode_event
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esafety.testing import fake_app
from tests.conftest import NOW

MARKER = "ZQXMARKER"
PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=20,
)
ids = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x2FFF, exclude_categories=["Cs"]),
    min_size=1,
    max_size=40,
).filter(lambda s: not any(0x7F <= ord(c) <= 0x9F for c in s))


def _valid(post_id: str, member_id: str, text: str, event_id: str) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "facebook/group/props",
        "type": "esafety.post.submitted",
        "time": "2026-11-24T10:00:00Z",
        "data": {"post_id": post_id, "member_id": member_id, "text": text},
    }


def _outcome(raw: Any) -> str:
    try:
        parse_event(raw)
    except InvalidEvent as exc:
        assert str(exc)
        return "invalid"
    return "ok"


@PROPERTY
@given(st.binary(max_size=2_000))
def test_any_bytes_parse_or_raise_invalid_event(raw: bytes) -> None:
    _outcome(raw)


@PROPERTY
@given(st.text(max_size=2_000))
def test_any_text_parses_or_raises_invalid_event(raw: str) -> None:
    _outcome(raw)


@PROPERTY
@given(json_values)
def test_any_json_value_parses_or_raises_invalid_event(value: Any) -> None:
    _outcome(json.dumps(value))


@PROPERTY
@given(
    st.sampled_from(["id", "source", "type", "time", "specversion", "data"]),
    st.sampled_from(["post_id", "member_id", "text", "media", "links"]),
    json_values,
    st.booleans(),
)
def test_a_mutated_event_is_refused_without_quoting_what_was_sent(
    top: str, field: str, value: Any, in_data: bool
) -> None:
    body = _valid("p1", "m1", MARKER, "e1")
    if in_data:
        body["data"][field] = value if value != "" else [MARKER]
    else:
        body[top] = value
    try:
        parse_event(json.dumps(body))
    except InvalidEvent as exc:
        assert MARKER not in str(exc)


@PROPERTY
@given(ids, ids, st.text(max_size=300), ids)
def test_a_valid_event_round_trips_through_publish_encoding(
    post_id: str, member_id: str, text: str, event_id: str
) -> None:
    body = _valid(post_id, member_id, text, event_id)
    first = parse_event(json.dumps(body))
    again = parse_event(encode_event(first))
    assert (again.id, again.source, again.type, again.time) == (
        first.id,
        first.source,
        first.type,
        first.time,
    )
    assert again.data == first.data


@PROPERTY
@given(st.integers(min_value=1, max_value=400), st.integers(min_value=0, max_value=800))
def test_text_over_the_configured_limit_names_the_limit(limit: int, length: int) -> None:
    body = _valid("p1", "m1", "t" * length, "e1")
    limits = Limits(max_text_chars=limit)
    if length <= limit:
        parse_event(json.dumps(body), limits)
        return
    with pytest.raises(LimitExceeded) as caught:
        parse_event(json.dumps(body), limits)
    assert f"max_text_chars limit of {limit}" in str(caught.value)
    assert caught.value.field == "data.text"


@PROPERTY
@given(st.integers(min_value=0, max_value=20), st.integers(min_value=0, max_value=40))
def test_lists_over_the_configured_limit_name_the_limit(limit: int, length: int) -> None:
    body = _valid("p1", "m1", "hi", "e1")
    body["data"]["links"] = [f"https://example.org/{n}" for n in range(length)]
    limits = Limits(max_list_items=limit)
    if length <= limit:
        parse_event(json.dumps(body), limits)
        return
    with pytest.raises(LimitExceeded, match=f"max_list_items limit of {limit}"):
        parse_event(json.dumps(body), limits)


@PROPERTY
@given(st.integers(min_value=200, max_value=5_000), st.integers(min_value=0, max_value=6_000))
def test_payload_size_over_the_configured_limit_names_the_limit(limit: int, extra: int) -> None:
    raw = json.dumps(_valid("p1", "m1", "x" * extra, "e1")).encode()
    limits = Limits(max_payload_bytes=limit)
    if len(raw) <= limit:
        _outcome(raw)
        return
    with pytest.raises(LimitExceeded, match=f"max_payload_bytes limit of {limit}"):
        parse_event(raw, limits)


@PROPERTY
@given(st.integers(min_value=20, max_value=60), ids, st.integers(min_value=0, max_value=40))
def test_ids_over_the_configured_limit_name_the_limit(
    limit: int, member_id: str, repeat: int
) -> None:
    member_id = member_id * repeat or member_id
    body = _valid("p1", member_id, "hi", "e1")  # the source has 20 characters
    limits = Limits(max_id_chars=limit)
    if len(member_id) <= limit:
        parse_event(json.dumps(body), limits)
        return
    with pytest.raises(LimitExceeded, match=f"max_id_chars limit of {limit}"):
        parse_event(json.dumps(body), limits)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=500), json_values.map(json.dumps)))
def test_the_engine_never_raises_on_a_body_it_quarantines_instead(body: str) -> None:
    app = fake_app(NOW)
    outcome = app.engine.handle_event(body)
    if _outcome(body) == "invalid":
        assert outcome == "quarantined"
        [entry] = app.store.quarantine_entries(raw=True)
        assert entry["error"] and entry["raw"] == body.encode("utf-8", "surrogatepass")
