"""A dispatch lost after its commit is made good, on the real Redis with real workers.

Effects are committed to the outbox by an engine with no dispatch at all (as if the
worker had died after the commit, before sending the message to ``deliver``).

* The outbox relay: a worker process started afterwards finds them pending with no
  message naming them and sends each once.
* The redelivery: a review committed this way comes back after the next review closed
  the case; the worker recognises it as committed, replays its dispatch (the police
  referral is delivered) and counts a duplicate instead of quarantining it (stop 12's
  CI failure).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from esafety.workers.app import App

from tests.helpers import envelope, post
from tests.integration.test_reliability_kit import (
    app_for,
    notifier_ids,
    run_cli,
    start_workers,
    wait_until,
)

pytestmark = pytest.mark.integration


def _lost_dispatches(
    worker_env: dict[str, str], extra: dict[str, str]
) -> tuple[dict[str, str], App, str]:
    """The environment, an app whose engine commits and then sends nothing (the lost
    message), and the time now for the events."""
    env = {**worker_env, **extra}
    app = app_for(env)
    app.engine.dispatch = None
    return env, app, datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _with_workers(
    env: dict[str, str],
    tmp_path: Path,
    processes: int,
    done: Callable[[], bool],
    what: str,
    then: Callable[[], object] = lambda: None,
) -> None:
    """Start ``esafety worker``, run ``then`` once it is ready, wait for ``done``, stop."""
    workers = start_workers(env, tmp_path / "workers.log", processes=processes, threads=2)
    try:
        workers.wait_ready(processes)
        then()
        wait_until(done, 60, what)
    finally:
        workers.stop()


def test_effects_whose_dispatch_was_lost_are_delivered_once_by_the_relay(
    worker_env: dict[str, str], tmp_path: Path
) -> None:
    quick = {"ESAFETY_OUTBOX_RELAY_INTERVAL_MS": "200", "ESAFETY_OUTBOX_RELAY_GRACE_MS": "500"}
    env, app, now = _lost_dispatches(worker_env, quick)
    for n in range(2):
        body = json.dumps(post(f"p{n}", f"m{n}", "this rota is shit", id=f"e{n}", time=now))
        assert app.engine.handle_event(body) == "ok"
    assert app.store.outbox_pending() == 4  # a delete_post and a warning_notice each
    notices = tmp_path / "notices.jsonl"
    assert notifier_ids(notices) == {}

    _with_workers(env, tmp_path, 2, lambda: app.store.outbox_pending() == 0, "the relay")
    delivered = notifier_ids(notices)
    assert set(delivered) == {e.effect_id for e in app.store.effects()}
    assert set(delivered.values()) == {1}
    assert app.store.stats()["relayed"] == 4
    relayed = [
        json.loads(line)
        for line in (tmp_path / "workers.log").read_text().splitlines()
        if '"outbox.relayed"' in line
    ]
    assert len(relayed) == 4 and all(r["effect_id"].startswith("eff-") for r in relayed)


def _review(decision: str, id: str, time: str, **extra: str) -> str:
    data = {"case_id": "allegation:a1", "reviewer_ref": "dsl", "decision": decision, **extra}
    return json.dumps(envelope("esafety.case.reviewed", data, id=id, time=time))


def test_a_committed_review_redelivered_after_the_case_closed_sends_its_referral(
    worker_env: dict[str, str], tmp_path: Path
) -> None:
    env, app, now = _lost_dispatches(worker_env, {"ESAFETY_OUTBOX_RELAY_GRACE_MS": "100000000"})
    allegation = envelope(
        "esafety.allegation.reported",
        {
            "allegation_id": "a1",
            "reporter_ref": "s1",
            "category": "grooming",
            "subject_role": "staff",
        },
        id="allegation-1",
        time=now,
    )
    refer = _review("refer_external", "review-1", now)
    bodies = [json.dumps(allegation), refer, _review("close", "review-2", now, note="done")]
    assert [app.engine.handle_event(b) for b in bodies] == ["ok", "ok", "ok"]
    [referral] = [e for e in app.store.effects() if e.kind.value == "external_referral"]
    duplicates = app.store.stats()["duplicates"]

    notices = tmp_path / "notices.jsonl"
    _with_workers(
        env,
        tmp_path,
        1,
        lambda: referral.effect_id in notifier_ids(notices),
        "the referral",
        then=lambda: app.actors["handle_event"].send(refer),  # the redelivery
    )
    assert app.store.stats()["duplicates"] == duplicates + 1
    assert app.store.quarantine_entries() == []


def test_an_operator_lists_the_pending_effects_and_resends_them(
    worker_env: dict[str, str], tmp_path: Path
) -> None:
    env, app, now = _lost_dispatches(worker_env, {"ESAFETY_OUTBOX_RELAY_GRACE_MS": "100000000"})
    for n in range(2):
        body = json.dumps(post(f"p{n}", f"m{n}", "this rota is shit MARKER", id=f"e{n}", time=now))
        assert app.engine.handle_event(body) == "ok"

    listed = json.loads(run_cli(env, "outbox", "list", "--json").stdout)["pending"]
    assert sorted(r["kind"] for r in listed) == ["delete_post"] * 2 + ["warning_notice"] * 2
    assert not any(r["message"] for r in listed)  # nothing will send them
    assert {r["effect_id"] for r in listed} == {e.effect_id for e in app.store.effects()}
    table = run_cli(env, "outbox", "list").stdout
    assert "MARKER" not in table and "MARKER" not in json.dumps(listed)
    run_cli(env, "outbox", "resend", code=2)
    assert "eff-nope" in run_cli(env, "outbox", "resend", "eff-nope", code=1).output
    assert run_cli(env, "outbox", "resend", "--all").stdout.strip() == "resent 4"
    listed = json.loads(run_cli(env, "outbox", "list", "--json").stdout)["pending"]
    assert len(listed) == 4 and all(r["message"] for r in listed)  # now queued

    _with_workers(env, tmp_path, 1, lambda: app.store.outbox_pending() == 0, "the resent")
    assert set(notifier_ids(tmp_path / "notices.jsonl").values()) == {1}
    assert json.loads(run_cli(env, "outbox", "list", "--json").stdout)["pending"] == []
