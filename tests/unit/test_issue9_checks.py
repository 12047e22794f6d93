"""Issue 9, the points its other tests leave implicit.

- the redaction processor hashes a value under each field the issue names (text, note,
  contact, name, email, phone), at the top level and nested;
- a worker's app (not embedded) runs the scheduled retention job at the configured interval;
- a forged review of an existing case changes nothing about it (state, seq, head, audit);
- the timeline gives, per step, the actor as ``system:...`` or ``human:<ref>``, words, the
  clauses, the policy version and each notice's kind and recipient ref.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from pathlib import Path

import fakeredis
import pytest
import structlog
from cryptography.hazmat.primitives import serialization
from esafety.events.signing import sign_envelope
from esafety.workers.app import App, build_app
from esafety.workers.clock import VirtualClock
from esafety.workers.evidence import RetentionSweeper
from esafety.workers.process import Processor
from esafety.workers.settings import Settings
from esafety.workers.signing import generate_key_file
from esafety.workers.timeline import timeline_rows
from pydantic import SecretStr

from tests.conftest import EXAMPLES
from tests.helpers import envelope, jsonl, post

SECRET = "Zebulon Quixworth"
FIELDS = ["text", "note", "contact", "name", "email", "phone"]


@pytest.mark.parametrize("field", FIELDS)
def test_each_content_field_is_hashed_top_level_and_nested(
    field: str, rendered: io.StringIO
) -> None:
    structlog.get_logger("t").info("step", **{field: SECRET}, wrap={"inner": {field: SECRET}})
    (line,) = [json.loads(x) for x in rendered.getvalue().splitlines() if '"step"' in x]
    assert str(line[field]).startswith("sha256:"), line
    assert str(line["wrap"]["inner"][field]).startswith("sha256:"), line
    low = rendered.getvalue().lower()
    assert "zebulon" not in low and "quixworth" not in low


def test_a_worker_app_runs_the_retention_job_on_its_interval(tmp_path: Path) -> None:
    key = tmp_path / "audit.pem"
    generate_key_file(key)
    settings = Settings(
        redis_url="redis://127.0.0.1:1/0", audit_key_path=str(key), evidence_sweep_s=123.0
    )
    worker = build_app(settings, embedded=False, client=fakeredis.FakeRedis())
    sweepers = [m for m in worker.broker.middleware if isinstance(m, RetentionSweeper)]
    assert [s.interval for s in sweepers] == [123.0]
    assert sweepers[0].evidence is worker.evidence


SOURCE = "facebook/group/test"
KEY = "k" * 32


def _signed_app() -> App:
    settings = Settings(
        redis_url=None, event_keys={SOURCE: SecretStr(KEY)}, require_signed_events=True
    )
    return build_app(settings, embedded=True, clock=VirtualClock())


def test_a_forged_review_of_an_existing_case_changes_nothing() -> None:
    app = _signed_app()
    opened = sign_envelope(post("p-f1", "m-f1", "this is total shit", id="ev-open"), KEY.encode())
    with Processor(app) as processor:
        processor.run(jsonl([opened]).splitlines())
    before = app.store.case("post:p-f1")
    assert before is not None
    audit_before = [e.hash for e in app.store.audit("post:p-f1")]
    forged = sign_envelope(
        envelope(
            "esafety.case.reviewed",
            {
                "case_id": "post:p-f1",
                "reviewer_ref": "mallory",
                "decision": "overturn",
                "note": "MARKER forged",
            },
            id="ev-forged-review",
        ),
        b"not the source's key",
    )
    assert app.engine.handle_event(json.dumps(forged)) == "quarantined"
    after = app.store.case("post:p-f1")
    assert after is not None
    assert after.model_dump() == before.model_dump()
    assert [e.hash for e in app.store.audit("post:p-f1")] == audit_before
    (entry,) = [
        e for e in app.store.quarantine_entries(raw=True) if e["event_id"] == "ev-forged-review"
    ]
    assert "signature does not match" in entry["error"] and entry["raw"] == b""
    assert "MARKER" not in json.dumps({k: str(v) for k, v in entry.items()})


def test_timeline_rows_say_who_what_clause_policy_and_notices() -> None:
    app = build_app(Settings(redis_url=None), embedded=True, clock=VirtualClock())
    with Processor(app) as processor:
        processor.run((EXAMPLES / "demo.jsonl").read_text().splitlines())
    rows = timeline_rows(app.store.audit("allegation:alg-1"))
    assert rows and all(r["policy_version"] == app.policy.stamp for r in rows)
    assert all(r["actor"].startswith(("system:", "human:")) for r in rows)
    assert all(isinstance(r["what"], str) and r["what"] for r in rows)
    assert "human:dsl" in {r["actor"] for r in rows}
    assert all("E1" in r["clauses"] or "E2" in r["clauses"] for r in rows)
    notices = [(n["kind"], n["recipient"]) for r in rows for n in r["notices"]]
    assert ("dsl_alert", "dsl") in notices and ("dsl_alert", "deputy-dsl") in notices
    assert ("external_referral", "police") in notices
    times = [r["at"] for r in rows]
    assert times == sorted(times)


class _SlowSweep:
    """An evidence store whose sweep takes a while, to catch a shutdown that does not wait."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.finished = threading.Event()

    def sweep(self) -> int:
        self.started.set()
        time.sleep(0.3)
        self.finished.set()
        return 1


def test_worker_shutdown_waits_for_a_sweep_under_way() -> None:
    """Else its commit and its log line land after shutdown (a flaky log capture once)."""
    slow = _SlowSweep()
    sweeper = RetentionSweeper(slow, interval=0.01)  # type: ignore[arg-type]
    sweeper.after_worker_boot(None, None)
    thread = sweeper._thread
    assert thread is not None and slow.started.wait(5)
    sweeper.before_worker_shutdown(None, None)
    assert slow.finished.is_set() and not thread.is_alive()


def test_no_secret_reaches_redis_or_the_logs(tmp_path: Path, rendered: io.StringIO) -> None:
    """E5: the head-signing key stays in its file and the event keys in the configuration;
    the store holds the public key only, and debug logs hold neither."""
    key = tmp_path / "audit.pem"
    signer = generate_key_file(key)
    private = serialization.load_pem_private_key(key.read_bytes(), password=None)
    raw = private.private_bytes(  # type: ignore[union-attr]
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    pem_body = "".join(key.read_text().splitlines()[1:-1])
    hmac_secret = "s3cret-hmac-key-for-the-group-0123456789"
    settings = Settings(
        redis_url=None,
        audit_key_path=str(key),
        event_keys={SOURCE: SecretStr(hmac_secret)},
        require_signed_events=True,
    )
    app = build_app(settings, embedded=True, clock=VirtualClock())
    lines = [
        json.dumps(sign_envelope(post(f"p-k{n}", "m-k", "total shit", id=f"k-{n}"), b"x" * 32))
        for n in range(2)
    ]
    good = sign_envelope(post("p-ok", "m-k", "hi", id="k-ok"), hmac_secret.encode())
    lines.append(json.dumps(good))
    with Processor(app) as processor:
        report = processor.run(lines)
    assert report["events"]["quarantined"] == 2 and app.store.case("post:p-ok") is not None
    client = app.store.client
    stored = b"".join(k + (client.dump(k) or b"") for k in client.keys("*"))
    assert signer.public_pem.split("\n")[1].encode() in stored  # the public key is recorded
    secrets = [raw, raw.hex().encode(), base64.b64encode(raw), pem_body.encode()]
    secrets += [hmac_secret.encode()]
    assert [s for s in secrets if s in stored] == []
    logged = rendered.getvalue().encode()
    assert b"audit.step" in logged
    assert [s for s in secrets if s in logged] == []
