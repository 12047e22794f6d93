"""``esafety bench screening`` as a test: prints the numbers, never asserts a speed."""

from __future__ import annotations

import pytest
from esafety.workers.bench_screening import build_corpus, run_screening_bench
from esafety.workflows.policy import default_policy


@pytest.mark.benchmark
def test_screening_bench_prints_rate_beside_baseline() -> None:
    result = run_screening_bench(default_policy(), count=5_000)
    print(result.as_dict())
    assert result.posts == 5_000 and result.ours_per_s > 0 and result.baseline_per_s > 0
    assert result.flagged_ours < result.posts


def test_corpus_is_deterministic_and_sized() -> None:
    lines = ['{"text": "a benign post about the fair", "labels": []}',
             '{"text": "shit", "labels": ["profanity"]}']  # fmt: skip
    first = build_corpus(lines, 20, chars=120, breach_every=5)
    assert first == build_corpus(lines, 20, chars=120, breach_every=5)
    assert all(len(p) == 120 for p in first)
    assert sum(p.startswith("shit") for p in first) == 4
