"""``esafety bench`` end to end, small: real worker processes on the real Redis, the
no-op, the store floor and the engine. Asserts what was measured, never a speed."""

from __future__ import annotations

import redis
from esafety.workers.bench import BenchConfig, run_bench
from esafety.workers.settings import Settings

from tests.conftest import REDIS_URL


def test_bench_measures_noop_floor_and_engine(real_redis: redis.Redis) -> None:
    config = BenchConfig(events=300, processes=(1,), threads=4, paced_seconds=1.0, floor=True)
    summary = run_bench(Settings(redis_url=REDIS_URL), config)
    assert [r["target"] for r in summary["runs"]] == ["noop", "floor", "engine"]
    for run in summary["runs"]:
        assert run["messages"] == 300 and run["drain_per_s"] > 0
        assert 0 < run["p50_ms"] <= run["p99_ms"]
        assert run["rss_mb"] and all(mb > 0 for mb in run["rss_mb"])
    rates = {r["target"]: r["drain_per_s"] for r in summary["runs"]}
    assert summary["ratio_engine_to_noop"] == {"1": round(rates["engine"] / rates["noop"], 2)}
    assert summary["ratio_floor_to_noop"] == {"1": round(rates["floor"] / rates["noop"], 2)}
    assert not list(real_redis.scan_iter(match="esafety-bench-*"))  # the run cleaned up
