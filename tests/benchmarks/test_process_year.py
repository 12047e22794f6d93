"""A simulated year through ``process`` and ``replay``, beside baselines measured in the same
run (``esafety bench process`` prints the same for 100,000 events). Speeds are printed,
never asserted: only what must hold whatever the machine is checked."""

from __future__ import annotations

import json

import pytest
from esafety.workers.bench_year import (
    archive_of,
    commit_baselines,
    measure_process,
    measure_replay,
    simulated_lines,
)
from esafety.workflows.policy import default_policy

pytestmark = pytest.mark.benchmark


def test_a_year_processed_and_replayed(capsys: pytest.CaptureFixture[str]) -> None:
    lines = simulated_lines(300, 365, seed=11)
    baselines = commit_baselines(2000)
    app, processed = measure_process(lines)
    policy = default_policy()
    three = policy.model_copy(
        update={
            "sanctions": policy.sanctions.model_copy(update={"warnings_for_removal": 3}),
            "version": "bench-three-warnings",
        }
    )
    replayed = measure_replay(archive_of(app), policy, three)
    with capsys.disabled():
        print(json.dumps({"baselines": baselines, "process": processed, "replay": replayed}))
        ratio = processed["events_per_s"] / baselines["stub_broker_lua_commit_per_s"]
        print(f"process / StubBroker+commit baseline: {ratio:.2f}")
    assert processed["accepted"] == len(lines) and processed["timers_due_but_not_fired"] == 0
    assert replayed["full_equals_fast"] and replayed["events"] == len(lines)
