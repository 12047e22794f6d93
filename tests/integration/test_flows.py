"""Issue 6's safeguarding flows end to end: real Redis, real ``esafety worker`` processes,
the file notifier, ``esafety review`` and ``esafety timeline`` as a lead runs them.

Deadlines of hours and suspensions of weeks pass in seconds because the workers (and
every CLI call) run on a :class:`ScaledClock` given through ``ESAFETY_TEST_CLOCK_*``:
the same epoch, origin and speed in every process, so they all read the same time,
and a timer's delayed dramatiq message waits its virtual delay divided by the speed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from esafety.workers.app import App, build_app
from esafety.workers.cli.publish_cmd import publish_lines
from esafety.workers.clock import ScaledClock
from esafety.workers.settings import Settings

from tests.conftest import REDIS_URL
from tests.helpers import envelope

pytestmark = pytest.mark.integration

ESAFETY = str(Path(os.environ.get("VIRTUAL_ENV", "/work/venv")) / "bin" / "esafety")
EPOCH = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
HOUR = 3600.0
DAY = 24 * HOUR


def _cli() -> str:
    import shutil
    import sys

    beside = Path(sys.executable).parent / "esafety"
    return str(beside) if beside.exists() else (shutil.which("esafety") or ESAFETY)


class Deployment:
    """Worker processes on the real Redis under a fresh prefix, on one scaled clock."""

    def __init__(self, prefix: str, tmp: Path, speed: float) -> None:
        self.clock = ScaledClock(EPOCH, time.time(), speed)
        self.notices_file = tmp / f"notices-{prefix}.jsonl"
        self.env = {
            **os.environ,
            "ESAFETY_REDIS_URL": REDIS_URL,
            "ESAFETY_KEY_PREFIX": prefix,
            "ESAFETY_BROKER_NAMESPACE": f"{prefix}-dq",
            "ESAFETY_NOTIFIER": f"file:{self.notices_file}",
            "ESAFETY_TEST_CLOCK_EPOCH": EPOCH.isoformat(),
            "ESAFETY_TEST_CLOCK_ORIGIN": repr(self.clock.origin),
            "ESAFETY_TEST_CLOCK_SPEED": repr(speed),
            "ESAFETY_LOG_FORMAT": "json",
            "ESAFETY_LOG_LEVEL": "INFO",
            "ESAFETY_MIN_BACKOFF_MS": "50",
        }
        self.log = tmp / f"worker-{prefix}.log"
        self.app: App = build_app(Settings(_env_file=None, **self._settings()))  # type: ignore[call-arg]
        self.process: subprocess.Popen[bytes] | None = None

    def _settings(self) -> dict[str, str]:
        keys = {k: v for k, v in self.env.items() if k.startswith("ESAFETY_")}
        return {k.removeprefix("ESAFETY_").lower(): v for k, v in keys.items()}

    def start(self) -> None:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [_cli(), "worker", "--processes", "1", "--threads", "4"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> None:
        self.app.broker.close()
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    # -- what a producer and a lead do ------------------------------------------------
    def stamp(self) -> str:
        return self.clock.now().strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def publish(self, type_: str, data: dict[str, Any], source: str = "staff/forms") -> str:
        """Publish one event timed now on the shared clock; returns its time."""
        moment = self.stamp()
        event = envelope(type_, data, source=source, time=moment)
        counts = publish_lines(self.app, [json.dumps(event)])
        assert counts == {"sent": 1, "quarantined": 0}
        return moment

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [_cli(), *args], env=self.env, capture_output=True, text=True, timeout=60
        )

    def review(self, case_id: str, decision: str, by: str, note: str = "") -> None:
        extra = ["--note", note] if note else []
        done = self.cli("review", case_id, "--decision", decision, "--by", by, *extra)
        assert done.returncode == 0, done.stderr

    def timeline(self, case_id: str) -> list[dict[str, Any]]:
        done = self.cli("timeline", case_id, "--json")
        assert done.returncode == 0, done.stderr
        rows: list[dict[str, Any]] = json.loads(done.stdout)["entries"]
        return rows

    # -- what the test watches -------------------------------------------------------
    def notices(self, case_id: str | None = None) -> list[dict[str, str]]:
        if not self.notices_file.exists():
            return []
        lines = [json.loads(x) for x in self.notices_file.read_text().splitlines() if x]
        return [n for n in lines if case_id is None or n["case_id"] == case_id]

    def sent(self, case_id: str) -> list[tuple[str, str]]:
        return [(n["kind"], n["recipient"]) for n in self.notices(case_id)]

    def wait(self, what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(0.05)
        log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
        raise AssertionError(f"timed out waiting for {what}\n--- worker log ---\n{log}")

    def steps_after(self, case_id: str, trigger: str) -> list[str]:
        """Triggers of the audit entries after the first ``trigger`` step of the case."""
        steps = [e.trigger for e in self.app.store.audit(case_id)]
        return steps[steps.index(trigger) + 1 :]

    def effect_ids(self, case_id: str) -> set[str]:
        return {e.effect_id for e in self.app.store.effects() if e.case_id == case_id}

    def state(self, case_id: str) -> str | None:
        case = self.app.store.case(case_id)
        return case.state.value if case else None


@pytest.fixture
def deploy(prefix: str, tmp_path: Path) -> Iterator[Callable[[float], Deployment]]:
    started: list[Deployment] = []

    def make(speed: float = 1.0) -> Deployment:
        deployment = Deployment(prefix, tmp_path, speed)
        deployment.start()
        started.append(deployment)
        return deployment

    yield make
    for deployment in started:
        deployment.stop()
    for deployment in started:  # E4: texts and contacts never reach a worker's log lines
        log = deployment.log.read_text(errors="replace")
        assert "audit.step" in log and "clock.scaled" in log  # the test clock says so
        assert "MARKER" not in log and "@example.org" not in log


def after(moment: str, seconds: float) -> str:
    base = datetime.strptime(moment, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return (base + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_allegation_missed_deadline_alerts_next_ref_until_acknowledged(deploy: Any) -> None:
    d = deploy(HOUR / 1.5)  # the 1-hour grooming deadline passes in 1.5 s
    reported = d.publish(
        "esafety.allegation.reported",
        {
            "allegation_id": "a1",
            "reporter_ref": "staff-1",
            "category": "grooming",
            "subject_role": "volunteer",
            "text": "ALLEGATION-TEXT-MARKER",
        },
    )
    d.wait("the second-level alert", lambda: ("dsl_alert", "deputy-dsl") in d.sent("allegation:a1"))
    d.review("allegation:a1", "acknowledge", "deputy-dsl")
    acked = d.wait("the acknowledgement", lambda: d.app.store.case("allegation:a1").acknowledged)  # type: ignore[union-attr]
    assert acked
    time.sleep(3.2)  # two more deadline lengths: nothing may repeat after the acknowledgement
    assert d.steps_after("allegation:a1", "acknowledge") == []
    d.wait("the alerts committed before it", lambda: d.app.store.outbox_pending() == 0)
    assert {n["effect_id"] for n in d.notices("allegation:a1")} == d.effect_ids("allegation:a1")
    # the order of the chain is the order of the commits (deliveries are asynchronous)
    recipients = [e.recipient for e in d.app.store.effects() if e.case_id == "allegation:a1"]
    assert recipients[:2] == ["dsl", "deputy-dsl"]
    assert set(recipients[2:]) <= {"chair-of-trustees"}
    d.publish(  # a decision may also come from an integration, not only the CLI
        "esafety.case.reviewed",
        {"case_id": "allegation:a1", "reviewer_ref": "dsl", "decision": "refer_external"},
        "staff/forms",
    )
    d.wait(
        "the referral", lambda: "refer_external" in d.steps_after("allegation:a1", "acknowledge")
    )
    d.review("allegation:a1", "close", "dsl", note="NOTE-MARKER")
    d.wait("the case to close", lambda: d.state("allegation:a1") == "closed")
    again = d.cli("review", "allegation:a1", "--decision", "uphold", "--by", "dsl")
    assert again.returncode == 1
    assert "'closed'" in again.stderr and "not allowed" in again.stderr

    rows = d.timeline("allegation:a1")
    remind = next(r for r in rows if r["trigger"] == "remind")
    assert remind["actor"] == "system:timers" and remind["clauses"] == ["E1"]
    assert remind["notices"][0]["recipient"] == "deputy-dsl"
    assert f"missed {after(reported, HOUR)}" in remind["what"]  # counted from the event's time
    actors = [r["actor"] for r in rows]
    assert actors[:2] == ["system:screening", "system:screening"]
    assert [r["trigger"] for r in rows if r["actor"].startswith("human:")] == [
        "acknowledge",
        "refer_external",
        "close",
    ]
    referral = next(r for r in rows if r["trigger"] == "refer_external")
    assert [(n["kind"], n["recipient"]) for n in referral["notices"]] == [
        ("external_referral", "police")
    ]
    text = d.cli("timeline", "allegation:a1").stdout
    assert "human:deputy-dsl" in text and "E1" in text
    assert "MARKER" not in json.dumps(rows) + text


def test_guardian_notice_is_withheld_from_the_subject(deploy: Any) -> None:
    d = deploy(1.0)
    people = [
        {"guardian_ref": "g-mum", "contact": "mum@example.org"},
        {"guardian_ref": "g-dad", "contact": "dad@example.org"},
    ]
    d.publish("esafety.guardian.registered", {"child_id": "c1", "guardians": people})
    d.publish(
        "esafety.guardian.registered",
        {"child_id": "c2", "guardians": [{"guardian_ref": "g-x", "contact": "x@example.org"}]},
    )
    d.publish(
        "esafety.allegation.reported",
        {
            "allegation_id": "a2",
            "reporter_ref": "staff-2",
            "category": "abuse",
            "subject_role": "member",
            "subject_ref": "g-dad",
            "children": ["c1"],
        },
    )
    d.wait("the alert", lambda: ("dsl_alert", "dsl") in d.sent("allegation:a2"))
    d.wait("the guardians", lambda: (r := d.app.store.register("c1")) and len(r.guardians) == 2)
    d.review("allegation:a2", "notify_parents", "dsl")
    d.wait("the guardian notice", lambda: ("guardian_notice", "g-mum") in d.sent("allegation:a2"))
    d.review("allegation:a2", "close", "dsl")
    d.wait("the case to close", lambda: d.state("allegation:a2") == "closed")
    recipients = {r for k, r in d.sent("allegation:a2") if k == "guardian_notice"}
    assert recipients == {"g-mum"}
    rows = d.timeline("allegation:a2")
    told = next(r for r in rows if r["trigger"] == "notify_parents")
    assert told["actor"] == "human:dsl" and told["clauses"] == ["E2"]
    assert "withheld from the allegation's subject: 1" in told["what"]
    assert "example.org" not in json.dumps(rows) + d.notices_file.read_text()


def test_consent_withdrawn_then_an_image_is_removed(deploy: Any) -> None:
    d = deploy(1.0)
    purpose = {"child_id": "c7", "purposes": ["facebook_group"]}
    d.publish(
        "esafety.guardian.registered",
        {"child_id": "c7", "guardians": [{"guardian_ref": "g7", "contact": "g7@example.org"}]},
    )
    d.publish("esafety.consent.recorded", purpose)
    d.wait("consent", lambda: (r := d.app.store.register("c7")) and r.consent.get("facebook_group"))
    media = [{"media_id": "img-1", "depicts_children": ["c7"]}]
    source = "facebook/group/test"
    d.publish(
        "esafety.post.submitted",
        {"post_id": "p1", "member_id": "m7", "text": "Fun day", "media": media},
        source,
    )
    d.wait("the first post", lambda: d.state("post:p1") == "closed")
    d.publish("esafety.consent.withdrawn", purpose)
    d.wait("the withdrawal", lambda: (r := d.app.store.register("c7")) and r.version == 3)
    d.publish(
        "esafety.post.submitted",
        {"post_id": "p2", "member_id": "m7", "text": "Again", "media": media},
        source,
    )
    d.wait("the notice", lambda: ("guardian_notice", "g7") in d.sent("post:p2"))
    assert d.sent("post:p1") == []
    assert d.app.store.case("post:p2").outcome.value == "deleted"  # type: ignore[union-attr]
    assert ("delete_post", source) in d.sent("post:p2")
    assert d.app.store.member("m7").warnings == 0  # type: ignore[union-attr]
    rows = d.timeline("post:p2")
    assert [r["trigger"] for r in rows] == ["screen", "warn", "notify_parents", "close"]
    assert rows[0]["rules"] == ["child_image_no_consent"] and "E3" in rows[2]["clauses"]
    assert [(n["kind"], n["recipient"]) for n in rows[2]["notices"]] == [("guardian_notice", "g7")]


def test_suspension_expires_then_a_breach_removes_for_good(deploy: Any) -> None:
    d = deploy(30 * DAY / 3)  # the 30-day temporary removal ends in 3 s
    source = "facebook/group/test"
    d.publish(
        "esafety.post.submitted",
        {"post_id": "p1", "member_id": "m1", "text": "this is shit"},
        source,
    )
    d.wait("the warning", lambda: (m := d.app.store.member("m1")) and m.warnings == 1)
    d.publish(
        "esafety.post.submitted", {"post_id": "p2", "member_id": "m1", "text": "fuck off"}, source
    )
    d.wait(
        "the suspension", lambda: (m := d.app.store.member("m1")) and m.status.value == "suspended"
    )
    until = d.app.store.member("m1").suspended_until  # type: ignore[union-attr]
    d.wait("the reinstatement", lambda: ("reinstatement_notice", "m1") in d.sent("post:p2"))
    d.publish(
        "esafety.post.submitted", {"post_id": "p3", "member_id": "m1", "text": "shit again"}, source
    )
    d.wait("the removal", lambda: (m := d.app.store.member("m1")) and m.status.value == "removed")
    rows = d.timeline("member:m1")
    assert [(r["trigger"], r["to"]) for r in rows] == [
        ("warn", "active"),
        ("warn", "active"),
        ("suspend", "suspended"),
        ("reinstate", "active"),
        ("warn", "active"),
        ("remove", "removed"),
    ]
    reinstated = rows[3]
    assert reinstated["actor"] == "system:timers" and reinstated["at"] >= until  # type: ignore[operator]
    assert "member removed (permanent" in rows[5]["what"] and "S2" in rows[5]["clauses"]
    assert rows[5]["notices"][0]["kind"] == "removal_notice"


def test_complaint_acknowledged_reminded_and_closed(deploy: Any) -> None:
    d = deploy(48 * HOUR / 2)  # the 48-hour response deadline passes in 2 s
    received = d.publish(
        "esafety.complaint.received",
        {"complaint_id": "k1", "complainant_ref": "parent-9", "text": "COMPLAINT-MARKER"},
        "inbox/complaints",
    )
    d.wait("the acknowledgement", lambda: ("complainant_ack", "parent-9") in d.sent("complaint:k1"))
    d.wait("the reminder", lambda: ("response_reminder", "dsl") in d.sent("complaint:k1"))
    d.review("complaint:k1", "close", "dsl", note="answered by phone")
    d.wait("the case to close", lambda: d.state("complaint:k1") == "closed")
    time.sleep(2.5)
    assert d.steps_after("complaint:k1", "close") == []  # no reminder after the close
    d.wait("the notices committed before it", lambda: d.app.store.outbox_pending() == 0)
    assert {n["effect_id"] for n in d.notices("complaint:k1")} == d.effect_ids("complaint:k1")
    # Deliveries are asynchronous: under load a reminder's batch may land before the
    # acknowledgement's, so the delivered set is compared, and the order is the store's.
    expected = [("complainant_ack", "parent-9"), ("dsl_alert", "dsl"), ("response_reminder", "dsl")]
    assert sorted(d.sent("complaint:k1")[:3]) == sorted(expected)
    committed = [
        (e.kind.value, e.recipient) for e in d.app.store.effects() if e.case_id == "complaint:k1"
    ]
    assert committed[:3] == expected
    rows = d.timeline("complaint:k1")
    assert rows[0]["notices"][0]["kind"] == "complainant_ack" and rows[0]["clauses"] == ["S5"]
    remind = next(r for r in rows if r["trigger"] == "remind")
    assert f"missed {after(received, 48 * HOUR)}" in remind["what"]
    assert (rows[-1]["trigger"], rows[-1]["actor"], rows[-1]["clauses"]) == (
        "close",
        "human:dsl",
        ["S5"],
    )


def test_an_appeal_overturns_a_warning(deploy: Any) -> None:
    d = deploy(1.0)
    source = "facebook/group/test"
    d.publish(
        "esafety.post.submitted", {"post_id": "p1", "member_id": "m5", "text": "shit"}, source
    )
    d.wait("the warning", lambda: (m := d.app.store.member("m5")) and m.warnings == 1)
    d.publish(
        "esafety.appeal.lodged",
        {"appeal_id": "ap1", "member_id": "m5", "case_id": "post:p1", "text": "APPEAL-MARKER"},
        "inbox/appeals",
    )
    d.wait("the appeal case", lambda: d.state("appeal:ap1") == "escalation")
    d.review("appeal:ap1", "overturn", "deputy-dsl")
    d.wait("the overturn", lambda: (m := d.app.store.member("m5")) and m.warnings == 0)
    d.publish(
        "esafety.post.submitted", {"post_id": "p2", "member_id": "m5", "text": "fuck"}, source
    )
    d.wait("the new warning", lambda: d.state("post:p2") == "closed")
    member = d.app.store.member("m5")
    assert member is not None and (member.status.value, member.warnings) == ("active", 1)
    d.wait("the outcome notice", lambda: ("appeal_outcome_notice", "m5") in d.sent("appeal:ap1"))
    rows = d.timeline("appeal:ap1")
    assert [(r["trigger"], r["actor"]) for r in rows] == [
        ("screen", "system:screening"),
        ("escalate", "system:screening"),
        ("close", "human:deputy-dsl"),
    ]
    assert "post:p1 overturned" in rows[-1]["what"]
    history = d.timeline("member:m5")
    overturn = next(r for r in history if r["trigger"] == "overturn")
    assert overturn["actor"] == "system:commands" and "post:p1 no longer counts" in overturn["what"]


def test_a_referral_decided_before_the_close_but_arriving_after_it_is_sent(
    deploy: Any,
) -> None:
    d = deploy(1.0)
    d.publish(
        "esafety.guardian.registered",
        {"child_id": "c-late", "guardians": [{"guardian_ref": "g-late", "contact": "g@x.org"}]},
    )
    d.publish(
        "esafety.allegation.reported",
        {"allegation_id": "late", "reporter_ref": "staff-1", "category": "grooming"}
        | {"subject_role": "volunteer", "children": ["c-late"]},
    )
    d.wait("the allegation", lambda: d.state("allegation:late") == "escalation")
    decided = d.stamp()  # the lead decides the referral and the notices now...
    time.sleep(1.1)
    d.review("allegation:late", "close", "dsl")  # ...but the close is taken first
    d.wait("the close", lambda: d.state("allegation:late") == "closed")
    for decision in ("refer_external", "notify_parents"):
        data = {"case_id": "allegation:late", "reviewer_ref": "dsl", "decision": decision}
        late = envelope("esafety.case.reviewed", data, source="staff/forms", time=decided)
        assert publish_lines(d.app, [json.dumps(late)]) == {"sent": 1, "quarantined": 0}
    d.wait("the referral", lambda: ("external_referral", "police") in d.sent("allegation:late"))
    d.wait("the notice", lambda: ("guardian_notice", "g-late") in d.sent("allegation:late"))
    assert d.app.store.quarantine_entries() == []
    rows = [r for r in d.timeline("allegation:late") if r["trigger"] == "record"]
    assert len(rows) == 2 and all("decided before the case closed" in r["what"] for r in rows)
