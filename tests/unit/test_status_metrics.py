"""The engine's metrics agree with the store after an embedded run, and case states are counted.

Multiprocess collection is tested against real worker processes in
``tests/integration/test_metrics.py``; here one registry, one process.
"""

from __future__ import annotations

import pytest
from esafety.workers.app import App
from esafety.workers.metrics import EngineMetrics, MeteredNotifier
from esafety.workers.notifier import MemoryNotifier
from esafety.workers.process import Processor
from esafety.workflows.model import Effect
from prometheus_client import CollectorRegistry

from esafety.testing import fake_app
from tests.conftest import EXAMPLES
from tests.helpers import envelope, jsonl, post


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def _family_total(registry: CollectorRegistry, name: str) -> float:
    return sum(s.value for m in registry.collect() for s in m.samples if s.name == f"{name}_total")


def _metered(app: App) -> EngineMetrics:
    metrics = EngineMetrics(CollectorRegistry())
    app.broker.add_middleware(metrics)
    app.engine.observer = metrics
    app.engine.notifier = MeteredNotifier(app.engine.notifier, metrics)
    return metrics


def test_metrics_match_the_store_after_the_demo() -> None:
    app = fake_app()
    metrics = _metered(app)
    lines = (EXAMPLES / "demo.jsonl").read_text().splitlines()
    with Processor(app) as processor:
        report = processor.run(lines)
    reg = metrics.registry
    stats = app.store.stats()
    consumed_quarantines = sum(1 for q in app.store.quarantine_entries() if q["stage"] == "consume")
    assert _value(reg, "esafety_events_total", result="accepted") == stats["accepted"]
    assert _value(reg, "esafety_events_total", result="duplicates") == stats["duplicates"]
    assert _value(reg, "esafety_events_total", result="quarantined") == consumed_quarantines
    assert _family_total(reg, "esafety_cases_opened") == len(report["cases"])
    closed = [c for c in report["cases"] if c["state"] == "closed"]
    assert _family_total(reg, "esafety_cases_closed") == len(closed)
    for case in closed:
        assert _value(reg, "esafety_cases_closed_total", kind=case["kind"], outcome=case["outcome"])
    audit = sum(len(chain) for _, chain in app.store.iter_audit())
    assert _value(reg, "esafety_audit_entries_total") == audit
    assert _family_total(reg, "esafety_effects_delivered") == len(report["effects"])
    assert _value(reg, "esafety_decisions_total", rule="threat") >= 1
    reminded = sum(1 for _, chain in app.store.iter_audit() for e in chain if e.trigger == "remind")
    assert reminded >= 1  # the demo's allegation missed its first deadline
    assert _value(reg, "esafety_deadlines_missed_total", kind="allegation") == reminded
    handled = stats["accepted"] + stats["duplicates"]
    assert _value(reg, "esafety_publish_to_decision_seconds_count") >= handled


def test_case_states_are_counted_in_the_commit() -> None:
    app = fake_app()
    events = [
        post("p1", "m1", "Lovely day at the fair"),
        post("p2", "m2", "this rota is shit"),
        envelope(
            "esafety.allegation.reported",
            {
                "allegation_id": "a1",
                "reporter_ref": "s1",
                "category": "other",
                "subject_role": "staff",
            },
        ),
    ]
    with Processor(app) as processor:
        report = processor.run(jsonl(events).splitlines())
    raw = app.store.client.hgetall(app.store.keys.case_states)
    counted = {k.decode(): int(v) for k, v in raw.items() if int(v)}
    expected: dict[str, int] = {}
    for case in report["cases"]:
        expected[case["state"]] = expected.get(case["state"], 0) + 1
    assert counted == expected


class _Broken:
    def deliver(self, effect: Effect, *, delivered_at: str) -> None:
        raise ConnectionError("smtp down")


def test_a_failed_delivery_is_counted_and_raised() -> None:
    metrics = EngineMetrics(CollectorRegistry())
    effect = Effect.model_validate(
        {"effect_id": "e1", "kind": "dsl_alert", "case_id": "allegation:a", "recipient": "dsl"}
    )
    with pytest.raises(ConnectionError):
        MeteredNotifier(_Broken(), metrics).deliver(effect, delivered_at="t")
    MeteredNotifier(MemoryNotifier(), metrics).deliver(effect, delivered_at="t")
    assert _value(metrics.registry, "esafety_effects_failed_total", kind="dsl_alert") == 1
    assert _value(metrics.registry, "esafety_effects_delivered_total", kind="dsl_alert") == 1
