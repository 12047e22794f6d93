"""Issue 5: the outbox's failures and the operator's commands, on the real Redis.

A notice that cannot be sent is retried with backoff, then dead-lettered with the
reason; ``esafety dlq replay`` sends it again once the cause is fixed, and it is
delivered once. A review for a case that does not exist yet is quarantined;
``esafety quarantine replay`` re-publishes it once the case exists, and removes
the entry when the engine accepts it. ``list`` and ``show`` print ids and reasons,
never a post's text (``show --raw`` does, on request).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from esafety.events.publish import publish
from esafety.workers.app import App, DramatiqSender
from esafety.workers.dlq import DeadLetters
from esafety.workflows import policy as policy_module
from esafety.workflows.policy import DEFAULT_POLICY_PATH

from tests.helpers import envelope, post
from tests.integration.test_reliability_kit import (
    Workers,
    app_for,
    notifier_ids,
    run_cli,
    start_workers,
    wait_until,
)

pytestmark = pytest.mark.integration


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def blocked_env(worker_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The notices file sits under a path that is a file: every delivery fails (errno 17)."""
    (tmp_path / "blocked").write_text("a file where the notices directory should be")
    # the policy says how often a notice is tried (``[delivery] retries``), the setting
    # how often anything else is
    policy = tmp_path / "policy.toml"
    default = (Path(policy_module.__file__).parent / DEFAULT_POLICY_PATH).read_text()
    assert "\nretries = 8\n" in default
    policy.write_text(default.replace("\nretries = 8\n", "\nretries = 2\n"))
    return {
        **worker_env,
        "ESAFETY_NOTIFIER": f"file:{tmp_path / 'blocked' / 'notices.jsonl'}",
        "ESAFETY_POLICY_PATH": str(policy),
        "ESAFETY_MAX_RETRIES": "5",
        "ESAFETY_MIN_BACKOFF_MS": "50",
        "ESAFETY_MAX_BACKOFF_MS": "200",
        "ESAFETY_NOT_FOUND_RETRIES": "0",
    }


@pytest.fixture
def running(blocked_env: dict[str, str], tmp_path: Path) -> Iterator[tuple[Workers, App]]:
    workers = start_workers(blocked_env, tmp_path / "workers.log", processes=1, threads=4)
    try:
        workers.wait_ready(1)
        yield workers, app_for(blocked_env)
    finally:
        workers.stop()


def test_dead_letters_and_the_quarantine_through_the_operators_commands(
    running: tuple[Workers, App], blocked_env: dict[str, str], tmp_path: Path
) -> None:
    """One worker for both parts (a worker's start is most of the time)."""
    _, app = running
    _dead_letters(app, blocked_env, tmp_path)
    _quarantine(app, blocked_env)


def _dead_letters(app: App, blocked_env: dict[str, str], tmp_path: Path) -> None:
    sender = DramatiqSender(app)
    for n in range(3):
        text = f"this rota is shit MARKER-TEXT {n}"
        publish(post(f"p{n}", f"m{n}", text, id=f"e{n}", time=_now()), sender=sender)
    dead = DeadLetters(app.broker, app.store, app.queue_names())  # type: ignore[arg-type]
    wait_until(lambda: dead.count() == 3, 60, "three deliveries dead-lettered")

    listed = json.loads(run_cli(blocked_env, "dlq", "list", "--json").stdout)["dead_letters"]
    assert {(d["queue"], d["actor"], d["attempts"]) for d in listed} == {
        ("deliveries", "deliver", 3)  # the first run and the policy's 2 retries
    }
    assert all("FileExistsError: errno 17" in d["reason"] for d in listed), listed
    table = run_cli(blocked_env, "dlq", "list").stdout
    assert "MARKER" not in table and "MARKER" not in json.dumps(listed)
    assert app.store.outbox_pending() == 6  # a delete_post and a warning_notice each

    by_queue = json.loads(run_cli(blocked_env, "dlq", "list", "--queue", "events", "--json").stdout)
    assert by_queue["dead_letters"] == []  # --queue filters
    keep, drop = listed[0]["id"], listed[2]["id"]
    run_cli(blocked_env, "dlq", "purge", drop, code=2)  # not without --yes
    run_cli(blocked_env, "dlq", "purge", "--all", code=2)  # nor --all without --yes
    run_cli(blocked_env, "dlq", "replay", "nope", code=1)  # an unknown id is named
    assert run_cli(blocked_env, "dlq", "purge", drop, "--yes").stdout.strip() == "purged 1"
    (tmp_path / "blocked").unlink()  # the fix
    assert run_cli(blocked_env, "dlq", "replay", keep).stdout.strip() == "replayed 1"
    assert run_cli(blocked_env, "dlq", "replay", "--all").stdout.strip() == "replayed 1"
    # the purged letter's two effects are given up (no longer pending, so the outbox relay
    # leaves them alone); the replayed ones are delivered
    wait_until(lambda: app.store.outbox_pending() == 0, 60, "the replayed notices delivered")
    assert dead.count() == 0
    assert run_cli(blocked_env, "dlq", "purge", "--all", "--yes").stdout.strip() == "purged 0"
    delivered = notifier_ids(tmp_path / "blocked" / "notices.jsonl")
    assert len(delivered) == 4 and set(delivered.values()) == {1}
    assert set(delivered) < {e.effect_id for e in app.store.effects()}


def _quarantine(app: App, blocked_env: dict[str, str]) -> None:
    sender = DramatiqSender(app)
    review = envelope(
        "esafety.case.reviewed",
        {
            "case_id": "allegation:a1",
            "reviewer_ref": "dsl",
            "decision": "acknowledge",
            "note": "MARKER-NOTE",
        },
        id="review-1",
        time=_now(),
    )
    publish(review, sender=sender)  # the case does not exist yet: quarantined at once here
    wait_until(lambda: len(app.store.quarantine_entries()) == 1, 30, "the review quarantined")

    [listed] = json.loads(run_cli(blocked_env, "quarantine", "list", "--json").stdout)["quarantine"]
    assert listed["event_id"] == "review-1" and "does not exist" in listed["error"]
    assert listed["stage"] == "consume" and "MARKER" not in json.dumps(listed)
    assert "MARKER" not in run_cli(blocked_env, "quarantine", "list").stdout
    shown = run_cli(blocked_env, "quarantine", "show", listed["id"]).stdout
    assert "MARKER" not in shown and "raw: hidden" in shown
    raw = run_cli(blocked_env, "quarantine", "show", listed["id"], "--raw").stdout_bytes
    assert b"MARKER-NOTE" in raw

    out = json.loads(run_cli(blocked_env, "quarantine", "replay", listed["id"], "--json").stdout)
    assert out["replayed"][0]["outcome"] == "quarantined"  # no fix yet: refused again, kept
    [again] = app.store.quarantine_entries()
    assert again["id"] == out["replayed"][0]["new_id"] != listed["id"]
    # the bytes are kept apart (evidence keys), by entry: the replaced entry's went with it
    raw_key = app.store.keys.quarantine_raw
    assert list(app.store.client.hkeys(raw_key)) == [again["id"].encode()]

    allegation = envelope(
        "esafety.allegation.reported",
        {"allegation_id": "a1", "reporter_ref": "s1", "category": "other", "subject_role": "staff"},
        id="allegation-1",
        time=_now(),
    )
    publish(allegation, sender=sender)  # the fix: the case now exists
    wait_until(lambda: app.store.case("allegation:a1") is not None, 30, "the allegation's case")
    out = json.loads(run_cli(blocked_env, "quarantine", "replay", "--all", "--json").stdout)
    assert [r["outcome"] for r in out["replayed"]] == ["accepted"]
    assert app.store.quarantine_entries() == []
    assert not app.store.client.exists(raw_key)
    assert "review-1" in {e.event_id for e in app.store.audit("allegation:a1")}
    assert app.store.stats()["quarantined"] == 0
