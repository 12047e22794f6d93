"""The outbox relay on the real Redis with a real worker: a lost dispatch is made good.

Effects are committed to the outbox by an engine with no dispatch at all (as if the
message to ``deliver`` had been lost after the commit). A worker process started
afterwards finds them pending with no message naming them and sends each once.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.helpers import post
from tests.integration.test_reliability_kit import (
    app_for,
    notifier_ids,
    start_workers,
    wait_until,
)

pytestmark = pytest.mark.integration


def test_effects_whose_dispatch_was_lost_are_delivered_once_by_the_relay(
    worker_env: dict[str, str], tmp_path: Path
) -> None:
    env = {
        **worker_env,
        "ESAFETY_OUTBOX_RELAY_INTERVAL_MS": "200",
        "ESAFETY_OUTBOX_RELAY_GRACE_MS": "500",
    }
    app = app_for(env)
    app.engine.dispatch = None  # commit, then nothing: the lost message
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for n in range(2):
        body = json.dumps(post(f"p{n}", f"m{n}", "this rota is shit", id=f"e{n}", time=now))
        assert app.engine.handle_event(body) == "ok"
    assert app.store.outbox_pending() == 4  # a delete_post and a warning_notice each
    notices = tmp_path / "notices.jsonl"
    assert notifier_ids(notices) == {}

    workers = start_workers(env, tmp_path / "workers.log", processes=2, threads=2)
    try:
        workers.wait_ready(2)
        wait_until(lambda: app.store.outbox_pending() == 0, 60, "the relay delivered them")
    finally:
        workers.stop()
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
