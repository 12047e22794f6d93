"""``replay`` (issue 10): archived events through the pure ``decide()`` under another policy.

A replay under the policy that ran shows no difference at all from what happened; under
three warnings instead of two it lists exactly the members whose status changes, checked
against the sanction ladder computed directly from the posts here.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from esafety.events.envelope import parse_event
from esafety.workers.app import App, build_app
from esafety.workers.archive import (
    ArchivedEvent,
    erase_texts,
    export_lines,
    read_archive,
    read_jsonl,
)
from esafety.workers.cli.main import build_cli
from esafety.workers.cli.replay_cmd import what_if
from esafety.workers.clock import VirtualClock
from esafety.workers.process import Processor
from esafety.workers.replay import Replay
from esafety.workers.replay_diff import Snapshot, compare
from esafety.workers.settings import Settings
from esafety.workers.simulate import PROFANITY, Mix, simulate
from esafety.workflows.policy import Policy, default_policy
from typer.testing import CliRunner

from tests.conftest import EXAMPLES

UNTIL = datetime(2026, 8, 1, tzinfo=UTC)
SWEARS = ("shit", "bollocks", "pissed")


def _processed(lines: list[str], until: datetime | None = UNTIL) -> tuple[App, dict]:
    app = build_app(Settings(redis_url=None), embedded=True, clock=VirtualClock())
    with Processor(app) as processor:
        report = processor.run(lines, until=until)
    return app, report


def _lines(events: list[dict]) -> list[str]:
    return [json.dumps(e) for e in events]


def _three_warnings(policy: Policy) -> Policy:
    sanctions = policy.sanctions.model_copy(update={"warnings_for_removal": 3})
    return policy.model_copy(update={"sanctions": sanctions, "version": "test-three-warnings"})


@pytest.fixture(scope="module")
def year() -> tuple[App, list[ArchivedEvent]]:
    """A simulated half year, processed embedded: the store is what happened."""
    app, _ = _processed(_lines(list(simulate(30, 110, seed=3))))
    return app, list(read_archive(app.store.client, app.store.keys.prefix))


def test_replay_under_the_same_policy_shows_no_difference(year) -> None:  # type: ignore[no-untyped-def]
    app, items = year
    assert len(items) > 500
    happened = Snapshot.of_store(app.store, app.policy.stamp)
    result = what_if(items, app.policy, app.policy, until=UNTIL, happened=happened)
    assert result["summary"] == {
        "cases_changed": 0,
        "members_changed": 0,
        "effects_added": 0,
        "effects_dropped": 0,
    }
    assert all(v["before"] == v["after"] for k in ("rules", "clauses") for v in result[k].values())
    assert result["rules"], "the year must have breaches to compare"
    assert result["replay"]["screening_reused"] > 0 and result["replay"]["refused"] == 0


def test_deferring_inert_posts_and_audit_changes_nothing(year) -> None:  # type: ignore[no-untyped-def]
    app, items = year
    fast = Replay(app.policy, recorded=app.policy).run(items, until=UNTIL)
    # deciding every event, with every audit entry written and hashed, as the engine does
    full = Replay(app.policy, recorded=app.policy, full=True, audit=True).run(items, until=UNTIL)
    assert fast.stats.inert > 0 and full.stats.inert == 0
    assert compare(Snapshot.of_replay(full), Snapshot.of_replay(fast))["summary"] == {
        "cases_changed": 0,
        "members_changed": 0,
        "effects_added": 0,
        "effects_dropped": 0,
    }
    assert sorted(r["case_id"] for r in fast.case_rows()) == sorted(
        r["case_id"] for r in full.case_rows()
    )


def _ladder(times: list[datetime], needed: int, end: datetime) -> str:
    """The default ladder (S2), directly: warn; at ``needed`` warnings a 30-day removal;
    a breach after it has ended removes for good; a suspended member is not warned."""
    status, warnings, until, temporary = "active", 0, end, 0
    for moment in times:
        if status == "suspended" and until <= moment:
            status, temporary = "active", temporary + 1
        if status != "active":
            continue
        warnings += 1
        if temporary and warnings > needed - 1:
            status = "removed"
        elif warnings >= needed:
            status, until = "suspended", moment + timedelta(days=30)
    return "active" if status == "suspended" and until <= end else status


def test_three_warnings_lists_exactly_the_members_whose_status_changes() -> None:
    mix = Mix(
        breach=0.1,
        review_link=0,
        photo=0,
        complaint=0,
        appeal=0,
        allegation_per_day=0,
        removal_request_per_member=0,
        withdrawal_per_child=0,
        breaches=((1.0, "profanity", PROFANITY),),
    )
    events = list(simulate(20, 150, seed=5, mix=mix))
    items = [ArchivedEvent(parse_event(e)) for e in events]
    policy = default_policy()
    result = what_if(items, _three_warnings(policy), policy, until=UNTIL)
    changed = {
        row["member_id"]
        for row in result["members"]
        if row["before"]["status"] != row["after"]["status"]
    }
    breaches: dict[str, list[datetime]] = {}
    for e in events:
        data = e["data"]
        if e["type"] == "esafety.post.submitted" and any(w in data["text"].lower() for w in SWEARS):
            moment = datetime.fromisoformat(e["time"].replace("Z", "+00:00"))
            breaches.setdefault(data["member_id"], []).append(moment)
    expected = {m for m, t in breaches.items() if _ladder(t, 2, UNTIL) != _ladder(t, 3, UNTIL)}
    assert expected, "the simulated half year must hold members the change affects"
    assert changed == expected
    after = _three_warnings(policy).stamp
    assert result["policies"] == {"before": policy.stamp, "after": after}
    assert after.startswith("test-three-warnings+")
    kinds = result["effects_by_kind"]["removal_notice"]
    assert kinds["after"] < kinds["before"]


def test_erased_text_replays_with_its_recorded_screening() -> None:
    lines = _lines(
        [
            {
                "specversion": "1.0",
                "id": f"er-{n}",
                "source": "facebook/group/test",
                "type": "esafety.post.submitted",
                "time": f"2026-02-0{n}T10:00:00Z",
                "data": {"post_id": f"ep{n}", "member_id": "m-er", "text": text},
            }
            for n, text in ((1, "total shit"), (2, "lovely day"), (3, "bollocks to this"))
        ]
    )
    app, _ = _processed(lines, until=None)
    prefix = app.store.keys.prefix
    assert erase_texts(app.store.client, prefix, ["post:ep1", "post:ep3"]) == 2
    items = list(read_archive(app.store.client, prefix))
    assert [i.erased for i in items] == [True, False, True]
    assert items[0].event.data.text == "" and items[0].screening  # type: ignore[union-attr]
    happened = Snapshot.of_store(app.store, app.policy.stamp)
    result = what_if(items, app.policy, app.policy, happened=happened)
    assert result["summary"]["members_changed"] == 0 and result["summary"]["cases_changed"] == 0
    assert result["replay"]["erased_replayed_with_recorded_screening"] == 2
    exported = list(export_lines(items))
    again = [item for _, item in read_jsonl(exported)]
    assert [i.erased for i in again] == [True, False, True]  # type: ignore[union-attr]
    assert again[0].screening == items[0].screening  # type: ignore[union-attr]
    assert all("total shit" not in line for line in exported)


def test_an_exported_archive_is_input_for_process(tmp_path: Path) -> None:
    lines = (EXAMPLES / "demo.jsonl").read_text().splitlines()
    app, report = _processed(lines, until=None)
    exported = list(export_lines(read_archive(app.store.client, app.store.keys.prefix)))
    assert len(exported) == report["events"]["accepted"]
    _, again = _processed(exported, until=None)
    for key in ("cases", "members", "effects"):
        assert again[key] == report[key]


def test_cli_replay_of_a_file_under_three_warnings(tmp_path: Path) -> None:
    text = (
        Path(default_policy.__code__.co_filename).parent / "data" / "default_policy.toml"
    ).read_text()
    new = tmp_path / "three.toml"
    new.write_text(text.replace("warnings_for_removal = 2", "warnings_for_removal = 3"))
    archive = tmp_path / "year.jsonl"
    archive.write_text("\n".join(_lines(list(simulate(15, 60, seed=9)))) + "\nnot json\n")
    result = CliRunner().invoke(
        build_cli(), ["replay", "--policy", str(new), "--archive", str(archive), "--json"]
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["against"] == "baseline" and body["skipped_lines"][0]["line"] > 1
    assert set(body) >= {"cases", "members", "effects_added", "effects_dropped", "rules", "clauses"}
    same = CliRunner().invoke(
        build_cli(),
        ["replay", "--policy", str(new), "--baseline", str(new), "--archive", str(archive)],
    )
    assert same.exit_code == 0 and "cases changed 0, members changed 0" in same.stdout


def test_archive_export_and_replay_from_a_redis_store(
    real_redis, prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """The archive in a real Redis: ``archive export`` and ``replay`` read it there."""
    from tests.conftest import REDIS_URL

    settings = Settings(redis_url=None, key_prefix=prefix)
    app = build_app(settings, embedded=True, clock=VirtualClock(), client=real_redis)
    with Processor(app) as processor:
        report = processor.run((EXAMPLES / "demo.jsonl").read_text().splitlines())
    monkeypatch.setenv("ESAFETY_REDIS_URL", REDIS_URL)
    monkeypatch.setenv("ESAFETY_KEY_PREFIX", prefix)
    out = tmp_path / "archive.jsonl"
    cli = CliRunner()
    exported = cli.invoke(build_cli(), ["archive", "export", "--output", str(out)])
    assert exported.exit_code == 0, exported.output
    assert len(out.read_text().splitlines()) == report["events"]["accepted"]
    text = (
        Path(default_policy.__code__.co_filename).parent / "data" / "default_policy.toml"
    ).read_text()
    same = tmp_path / "same.toml"
    same.write_text(text)
    replayed = cli.invoke(
        build_cli(), ["replay", "--policy", str(same), "--json", "--until", "2026-11-24T16:00:00Z"]
    )
    assert replayed.exit_code == 0, replayed.output
    body = json.loads(replayed.stdout)
    assert body["against"] == "happened"
    assert body["summary"] == {
        "cases_changed": 0,
        "members_changed": 0,
        "effects_added": 0,
        "effects_dropped": 0,
    }
