"""Signed events (E5): HMAC-SHA256 per source; forged or unsigned events are quarantined.

With signing required, a forged event changes no case and leaves a quarantine
entry that names the reason and keeps a hash, never the bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from esafety.events.envelope import parse_event
from esafety.events.errors import ForgedEvent
from esafety.events.publish import encode_event
from esafety.events.signing import (
    SIGNATURE_ATTRIBUTE,
    SignatureCheck,
    sign_envelope,
    signing_input,
    verify_payload,
)
from esafety.workers.app import App, DramatiqSender, build_app
from esafety.workers.clock import VirtualClock
from esafety.workers.process import Processor
from esafety.workers.settings import Settings
from pydantic import SecretStr

from tests.helpers import jsonl, post

KEY = "k" * 32
SOURCE = "facebook/group/test"


def event(**extra: Any) -> dict[str, Any]:
    return post("p-s1", "m-s1", "Zebulon Quixworth says hello ✓", source=SOURCE, **extra)


def test_signed_bytes_are_canonical_json_without_the_signature() -> None:
    body = event()
    signed = sign_envelope(body, KEY.encode())
    expected = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert signing_input(signed) == expected.encode()
    digest = hmac.new(KEY.encode(), expected.encode(), hashlib.sha256).hexdigest()
    assert signed[SIGNATURE_ATTRIBUTE] == digest
    assert "✓" in signing_input(signed).decode()  # non-ASCII as itself, not \\u escapes


def test_verify_accepts_good_and_names_each_failure() -> None:
    check = SignatureCheck({SOURCE: KEY.encode()}, required=True)
    assert check.verify(sign_envelope(event(), KEY.encode())) is True
    reasons = {
        "unsigned": event(),
        "does not match": sign_envelope(event(), b"wrong key"),
        "malformed": {**event(), SIGNATURE_ATTRIBUTE: "xyz"},
        "no key is configured": sign_envelope({**event(), "source": "other"}, KEY.encode()),
    }
    for reason, body in reasons.items():
        with pytest.raises(ForgedEvent, match=reason):
            check.verify(body)
    tampered = sign_envelope(event(), KEY.encode())
    tampered["data"] = {**tampered["data"], "text": "changed"}
    with pytest.raises(ForgedEvent, match="does not match"):
        check.verify(tampered)


def test_a_source_with_a_key_must_sign_even_when_not_required() -> None:
    check = SignatureCheck({SOURCE: KEY.encode()}, required=False)
    with pytest.raises(ForgedEvent, match="unsigned"):
        check.verify(event())
    assert check.verify({**event(), "source": "elsewhere"}) is False
    assert verify_payload("not json", check, 1000) is False  # left to the parser


def test_unreadable_payload_is_forged_when_signing_is_required() -> None:
    check = SignatureCheck({}, required=True)
    with pytest.raises(ForgedEvent, match="not JSON"):
        verify_payload("{broken", check, 1000)
    with pytest.raises(ForgedEvent, match="max_payload_bytes"):
        verify_payload("x" * 2000, check, 1000)


def test_publish_forwards_a_signed_event_unchanged() -> None:
    body = sign_envelope({**event(), "time": "2026-11-24T11:00:00+01:00"}, KEY.encode())
    sent = json.loads(encode_event(parse_event(body)))
    assert sent == body  # not normalised: the worker checks the bytes that were signed
    SignatureCheck({SOURCE: KEY.encode()}, required=True).verify(sent)


def app(**settings: Any) -> App:
    keys = {SOURCE: SecretStr(KEY)}
    config = Settings(redis_url=None, event_keys=keys, require_signed_events=True, **settings)
    return build_app(config, embedded=True, clock=VirtualClock())


def run(app: App, lines: list[str]) -> dict[str, Any]:
    with Processor(app) as processor:
        return processor.run(lines)


def test_forged_event_changes_no_case_and_quarantine_keeps_no_bytes() -> None:
    engine = app()
    good = sign_envelope(event(id="ev-good"), KEY.encode())
    forged = sign_envelope(
        post("p-s2", "m-s1", "Zebulon Quixworth forged", source=SOURCE, id="ev-forged"),
        b"an attacker's key",
    )
    unsigned = post("p-s3", "m-s1", "Zebulon Quixworth unsigned", source=SOURCE, id="ev-unsigned")
    report = run(engine, jsonl([good, forged, unsigned]).splitlines())
    assert [c["case_id"] for c in report["cases"]] == ["post:p-s1"]
    entries = engine.store.quarantine_entries(raw=True)
    assert sorted(e["event_id"] for e in entries) == ["ev-forged", "ev-unsigned"]
    reasons = {e["event_id"]: e["error"] for e in entries}
    assert "signature does not match" in reasons["ev-forged"]
    assert "unsigned" in reasons["ev-unsigned"]
    for entry in entries:
        assert entry["raw"] == b""
        assert "sha256 " in entry["error"]
        assert "Zebulon" not in json.dumps({k: str(v) for k, v in entry.items()})
    assert report["events"]["quarantined"] == 2
    assert not engine.store.client.exists(engine.store.keys.quarantine_raw)  # none kept apart


def test_forged_event_written_straight_to_the_queue_is_quarantined() -> None:
    """Someone with enqueue rights bypasses publish(): the worker still checks."""
    engine = app()
    forged = json.dumps(post("p-x", "m-x", "hello", source=SOURCE, id="ev-direct"))
    assert engine.engine.handle_event(forged) == "quarantined"
    assert engine.store.cases() == []


def test_the_cli_publisher_signs_with_its_source_key() -> None:
    """``sign_events``: the engine's own publisher (review, publish) signs for its source."""
    engine = app(sign_events=True)
    with Processor(engine) as processor:
        parsed = parse_event(event(id="ev-cli"))
        DramatiqSender(engine).send(encode_event(parsed), event=parsed)
        processor.join()
    assert [c.case_id for c in engine.store.cases()] == ["post:p-s1"]
    assert engine.store.quarantine_entries() == []
