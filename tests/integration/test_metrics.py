"""Scrape ``/metrics`` of a supervisor after a run on 2 real worker processes.

The counts summed over both processes (prometheus_client multiprocess mode) are
the counts published: events accepted, duplicates and quarantined, cases opened
and closed by kind and outcome, audit entries, effects delivered, the latency
histogram, and dramatiq's own message counter.
"""

from __future__ import annotations

import json
import signal
import subprocess
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
from esafety.events.publish import publish
from esafety.workers.app import DramatiqSender
from esafety.workers.status import collect_status, drained
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import envelope, post
from tests.integration.conftest import wait_for
from tests.integration.test_ops import app_for, free_port


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def total(samples: dict, name: str, **match: str) -> float:
    return sum(
        value
        for (sample, labels), value in samples.items()
        if sample == name and all(dict(labels).get(k) == v for k, v in match.items())
    )


def test_scraped_counts_are_the_counts_published(
    start_workers: Callable[..., subprocess.Popen[bytes]],
    worker_env: dict[str, str],
    real_redis: redis.Redis,
    prefix: str,
    tmp_path: Path,
) -> None:
    port = free_port()
    supervisor = start_workers("--processes", "2", "--threads", "4", "--metrics-port", str(port))
    app = app_for(worker_env)
    sender = DramatiqSender(app)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # deadlines ahead: no timer fires
    events = [post(f"p{n}", f"m{n}", f"Thanks for the fair {n}", time=now) for n in range(30)]
    events += [
        post("b1", "mb1", "this rota is shit", time=now),
        post("b2", "mb2", "I'll hurt your kid", time=now),
    ]
    events.append(
        envelope(
            "esafety.allegation.reported",
            {
                "allegation_id": "a1",
                "reporter_ref": "s1",
                "category": "abuse",
                "subject_role": "staff",
            },
            time=now,
        )
    )
    late = (datetime.now(UTC) - timedelta(hours=2, minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    events.append(  # reported 2.5 h ago, 1 h to acknowledge: two deadlines already missed
        envelope(
            "esafety.allegation.reported",
            {"allegation_id": "a2", "reporter_ref": "s1", "category": "grooming"}
            | {"subject_role": "volunteer"},
            time=late,
        )
    )
    for event in events:
        publish(event, sender=sender)
    publish(events[0], sender=sender)  # published twice: a duplicate
    app.actors["handle_event"].send("{not an event", None)  # bytes not from publish()
    wait_for(lambda: app.store.stats()["accepted"] == len(events), timeout=90)
    wait_for(lambda: drained(collect_status(app)), timeout=60)
    wait_for(lambda: total(scrape(port), "esafety_events_total") == len(events) + 2, timeout=30)
    wait_for(lambda: total(scrape(port), "esafety_deadlines_missed_total") == 2, timeout=30)

    samples = scrape(port)
    stats = app.store.stats()
    assert total(samples, "esafety_events_total", result="accepted") == len(events)
    assert total(samples, "esafety_events_total", result="duplicates") == stats["duplicates"] == 1
    assert total(samples, "esafety_events_total", result="quarantined") == 1
    cases = app.store.cases()
    assert total(samples, "esafety_cases_opened_total") == len(cases)
    assert total(samples, "esafety_cases_opened_total", kind="allegation") == 2
    reminders = [e for e in app.store.audit("allegation:a2") if e.trigger == "remind"]
    assert len(reminders) == 2
    assert total(samples, "esafety_deadlines_missed_total", kind="allegation") == 2
    closed = [c for c in cases if c.state.value == "closed"]
    assert total(samples, "esafety_cases_closed_total") == len(closed)
    assert total(samples, "esafety_cases_closed_total", kind="post", outcome="no_action") == 30
    audit = sum(len(chain) for _, chain in app.store.iter_audit())
    assert total(samples, "esafety_audit_entries_total") == audit
    assert total(samples, "esafety_decisions_total", rule="threat") >= 1
    notices = (tmp_path / "notices.jsonl").read_text().splitlines()
    assert total(samples, "esafety_effects_delivered_total") == len(notices) > 0
    assert total(samples, "esafety_effects_failed_total") == 0
    handled = len(events) + 2
    assert total(samples, "esafety_publish_to_decision_seconds_count") == handled
    assert total(samples, "dramatiq_messages_total", actor_name="handle_event") == handled
    assert {json.loads(n)["effect_id"] for n in notices} == {
        e.effect_id for e in app.store.effects()
    }

    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(timeout=60) == 0
