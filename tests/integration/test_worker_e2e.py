"""Issue 3 end to end: `esafety publish` + real `esafety worker` processes + the real Redis."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
from esafety.workers.keys import Keys
from esafety.workers.process import Processor
from esafety.workers.store import RedisStore
from esafety.workflows.audit import GENESIS, entry_hash

from esafety.testing import fake_app
from tests.helpers import envelope, jsonl, post
from tests.integration.conftest import esafety, wait_for


def _events() -> list[dict | str]:
    start = datetime.now(UTC).replace(microsecond=0)

    def at(minutes: int) -> str:
        return (start + timedelta(seconds=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")

    return [
        envelope(
            "esafety.guardian.registered",
            {"child_id": "k1", "guardians": [{"guardian_ref": "g1", "contact": "g1@example.org"}]},
            time=at(0),
        ),
        post("p1", "m1", "Lovely day at the fair", time=at(1)),
        post("p2", "m1", "this rota is shit", time=at(2)),
        post("p3", "m1", "f.u.c.k this", time=at(3)),
        post("p4", "m2", "I'll hurt your kid", time=at(4)),
        post(
            "p5", "m3", "photos", media=[{"media_id": "i", "depicts_children": ["k1"]}], time=at(5)
        ),
        envelope(
            "esafety.complaint.received",
            {
                "complaint_id": "c1",
                "complainant_ref": "cr1",
                "text": "upset",
                "about_post_id": "p1",
            },
            time=at(6),
        ),
        envelope(
            "esafety.allegation.reported",
            {
                "allegation_id": "a1",
                "reporter_ref": "s1",
                "category": "other",
                "subject_role": "staff",
            },
            time=at(7),
        ),
        "this line is not json",
    ]


def test_publish_and_workers_match_the_embedded_run(
    start_workers: Callable[..., subprocess.Popen[bytes]],
    worker_env: dict[str, str],
    prefix: str,
    real_redis: redis.Redis,
    tmp_path: Path,
) -> None:
    events = _events()
    file = tmp_path / "events.jsonl"
    file.write_text(jsonl(events))
    worker = start_workers("--processes", "1", "--threads", "1")
    published = subprocess.run(
        esafety("publish", str(file)), env=worker_env, capture_output=True, text=True, timeout=60
    )
    assert published.returncode == 0, published.stderr
    assert "published 8, quarantined 1" in published.stderr
    store = RedisStore(real_redis, Keys(prefix))

    def drained() -> bool:
        stats = store.stats()
        done = stats["accepted"] + stats["duplicates"] == 8 and stats["quarantined"] == 1
        return done and store.outbox_pending() == 0

    wait_for(drained, timeout=60)
    embedded = fake_app()
    with Processor(embedded) as processor:
        expected = processor.run(jsonl(events).splitlines())
    got = {c.case_id: (c.state.value, c.outcome.value, list(c.rules)) for c in store.cases()}
    want = {c["case_id"]: (c["state"], c["outcome"], c["rules"]) for c in expected["cases"]}
    assert got == want
    assert {e.effect_id for e in store.effects()} == {e["effect_id"] for e in expected["effects"]}
    delivered = [json.loads(line) for line in (tmp_path / "notices.jsonl").read_text().splitlines()]
    ids = [d["effect_id"] for d in delivered]
    assert sorted(ids) == sorted({e.effect_id for e in store.effects()})
    for _, chain in store.iter_audit():
        previous = GENESIS
        for entry in chain:
            assert entry.prev_hash == previous
            assert entry.hash == entry_hash(entry.as_dict())
            previous = entry.hash
    timeline = subprocess.run(
        esafety("timeline", "post:p3", "--json"),
        env=worker_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert timeline.returncode == 0, timeline.stderr
    steps = [row["trigger"] for row in json.loads(timeline.stdout)["entries"]]
    assert steps == ["screen", "warn", "close"]
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0


def test_read_commands_need_a_store(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run(esafety("cases"), env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "ESAFETY_REDIS_URL" in result.stderr
