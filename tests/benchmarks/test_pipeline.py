"""The pipeline bench, small: real worker processes against a dramatiq no-op actor.

Out of the default run (``-m benchmark``). It prints the numbers and the ratio; it
asserts only that every run measured what it says (never a speed: this machine is
shared). The full measurement is ``esafety bench`` (20,000 events).
"""

from __future__ import annotations

import json
import os

import pytest
import redis
from esafety.workers.bench import BenchConfig, bench_events, percentile, run_bench
from esafety.workers.settings import Settings

from tests.conftest import REDIS_URL

pytestmark = pytest.mark.benchmark


def test_bench_events_are_the_simulated_mix_with_reviews_held_back() -> None:
    lines = bench_events(3000, seed=3)
    events = [json.loads(line) for line in lines]
    assert len(events) == 3000
    assert len({(e["source"], e["id"]) for e in events}) == 3000
    kinds = {e["type"] for e in events}
    assert {"esafety.post.submitted", "esafety.complaint.received"} <= kinds
    first_review = next(i for i, e in enumerate(events) if e["type"] == "esafety.case.reviewed")
    assert first_review >= 2000


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([7.0], 0.99) == 7.0


def test_pipeline_against_noop(real_redis: redis.Redis) -> None:
    events = int(os.environ.get("ESAFETY_BENCH_EVENTS", "2000"))
    config = BenchConfig(events=events, processes=(1, 2), threads=8, paced_seconds=3.0)
    summary = run_bench(Settings(redis_url=REDIS_URL), config)
    print(json.dumps(summary, indent=2))
    assert {(r["target"], r["processes"]) for r in summary["runs"]} == {
        (t, p) for t in ("noop", "engine") for p in (1, 2)
    }
    for run in summary["runs"]:
        assert run["drain_per_s"] > 0 and run["messages"] == events
        assert 0 < run["p50_ms"] <= run["p95_ms"] <= run["p99_ms"]
        assert len(run["rss_mb"]) == run["processes"] and all(mb > 0 for mb in run["rss_mb"])
    assert set(summary["ratio_engine_to_noop"]) == {"1", "2"}
