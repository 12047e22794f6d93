"""Issue 3 on real workers: the same file published twice gives the same cases, members
and effects as once (and as the embedded run), each notice is delivered once, and the
lead's read commands (``cases --state``, ``member``) read those results from the store."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from esafety.workers.keys import Keys
from esafety.workers.process import Processor
from esafety.workers.report import case_row, member_row
from esafety.workers.store import RedisStore

from esafety.testing import fake_app
from tests.helpers import jsonl, post
from tests.integration.conftest import esafety, wait_for

pytestmark = pytest.mark.integration


def _events() -> list[dict[str, Any]]:
    start = datetime.now(UTC).replace(microsecond=0)

    def at(seconds: int) -> str:
        return (start + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")

    return [
        post("r1", "rm1", "Lovely day at the fair", time=at(1)),
        post("r2", "rm1", "this rota is shit", time=at(2)),
        post("r3", "rm1", "f.u.c.k this", time=at(3)),
        post("r4", "rm2", "I'll hurt your kid", time=at(4)),
        post("r5", "rm3", "See you all at the picnic", time=at(5)),
    ]


def _snapshot(store: RedisStore) -> dict[str, Any]:
    return {
        "cases": sorted((case_row(c) for c in store.cases()), key=lambda r: r["case_id"]),
        "members": sorted((member_row(m) for m in store.members()), key=lambda r: r["member_id"]),
        "effects": sorted(
            (e.effect_id, e.kind.value, e.case_id, e.recipient) for e in store.effects()
        ),
    }


def _cli(env: dict[str, str], *args: str) -> Any:
    done = subprocess.run(esafety(*args), env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, (args, done.stderr)
    return json.loads(done.stdout)


def test_the_same_file_published_twice_changes_nothing(
    start_workers: Callable[..., subprocess.Popen[bytes]],
    worker_env: dict[str, str],
    prefix: str,
    real_redis: redis.Redis,
    tmp_path: Path,
) -> None:
    events = _events()
    file = tmp_path / "events.jsonl"
    file.write_text(jsonl(events))
    store = RedisStore(real_redis, Keys(prefix))
    # one thread: workers promise no order between events about one member (DESIGN)
    worker = start_workers("--processes", "1", "--threads", "1")

    def publish_and_drain(accepted: int, duplicates: int) -> None:
        done = subprocess.run(
            esafety("publish", str(file)),
            env=worker_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr

        def drained() -> bool:
            stats = store.stats()
            counted = (stats["accepted"], stats["duplicates"]) == (accepted, duplicates)
            return counted and store.outbox_pending() == 0

        wait_for(drained, timeout=60)

    publish_and_drain(accepted=5, duplicates=0)
    once = _snapshot(store)
    publish_and_drain(accepted=5, duplicates=5)
    twice = _snapshot(store)
    assert twice == once

    embedded = fake_app()
    with Processor(embedded) as processor:
        expected = processor.run(jsonl(events).splitlines())
    assert once["cases"] == sorted(expected["cases"], key=lambda r: r["case_id"])
    assert once["members"] == expected["members"]
    outcomes = {r["case_id"]: r["outcome"] for r in once["cases"]}
    assert [outcomes[f"post:r{i}"] for i in (1, 2, 3, 4, 5)] == [
        "no_action",
        "warned",
        "suspended",
        "removed",
        "no_action",
    ]
    warnings = {r["member_id"]: (r["status"], r["warnings"]) for r in once["members"]}
    assert warnings["rm1"] == ("suspended", 2) and warnings["rm2"][0] == "removed"

    delivered = [json.loads(line) for line in (tmp_path / "notices.jsonl").read_text().splitlines()]
    ids = [d["effect_id"] for d in delivered]
    assert sorted(ids) == [e[0] for e in once["effects"]]  # each effect once, none twice

    closed = _cli(worker_env, "cases", "--state", "closed", "--json")["cases"]
    assert {c["case_id"] for c in closed} == {"post:r1", "post:r2", "post:r3", "post:r5"}
    escalated = _cli(worker_env, "cases", "--state", "escalation", "--json")["cases"]
    assert [c["case_id"] for c in escalated] == ["post:r4"]
    member = _cli(worker_env, "member", "rm1", "--json")
    assert (member["status"], member["warnings"]) == ("suspended", 2)
    bad = subprocess.run(
        esafety("cases", "--state", "nope"), env=worker_env, capture_output=True, text=True
    )
    assert bad.returncode == 2 and "escalation" in bad.stderr

    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
