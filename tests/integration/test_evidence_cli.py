"""The leads' and inspectors' commands on the real Redis: evidence, erase, audit, and privacy.

The demo and a file of planted markers are processed into the real Redis (a fresh
key prefix); then every read command runs as a lead would run it. Their output
(all but ``evidence``) holds none of the input's content; ``evidence`` shows it and
leaves an audit entry; ``erase member`` refuses with reasons; the exported audit
verifies with no Redis, and a tampered export does not.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from esafety.workers.app import build_app
from esafety.workers.cli.main import build_cli
from esafety.workers.clock import VirtualClock
from esafety.workers.process import Processor
from esafety.workers.settings import Settings
from esafety.workers.signing import generate_key_file
from typer.testing import CliRunner

from tests.conftest import EXAMPLES, REDIS_URL, check_redis
from tests.helpers import jsonl
from tests.unit.test_privacy import hits, marker_events, needles

pytestmark = pytest.mark.integration


@contextmanager
def populated(tmp_path: Path, extra: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """``_populate`` under a fresh prefix on the real Redis, removed afterwards."""
    real_redis = check_redis()
    prefix = f"esafety-test-{uuid.uuid4().hex[:10]}"
    try:
        yield _populate(real_redis, prefix, tmp_path, extra)
    finally:
        _forget(real_redis, prefix)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One run for the module (the tests only read, or write what the others ignore)."""
    with populated(tmp_path_factory.mktemp("evidence")) as store_env:
        yield store_env


def _forget(real_redis: redis.Redis, prefix: str) -> None:
    """Remove every key a populated run left under ``prefix``."""
    for pattern in (f"{prefix}:*", f"{prefix}-dq:*"):
        keys = list(real_redis.scan_iter(match=pattern, count=1000))
        for start in range(0, len(keys), 500):
            real_redis.delete(*keys[start : start + 500])


def _populate(
    real_redis: redis.Redis, prefix: str, tmp_path: Path, extra: list[str] | None = None
) -> dict[str, Any]:
    """The demo, the planted markers and ``extra`` lines processed into the real Redis
    under ``prefix``; the CLI's environment, with the needles, the app and the report."""
    key = tmp_path / "audit.pem"
    generate_key_file(key)
    settings = Settings(
        redis_url=REDIS_URL,
        key_prefix=prefix,
        broker_namespace=f"{prefix}-dq",
        audit_key_path=str(key),
    )
    lines = (EXAMPLES / "demo.jsonl").read_text().splitlines()
    lines += jsonl(marker_events()).splitlines() + (extra or [])
    app = build_app(settings, embedded=True, client=real_redis, clock=VirtualClock())
    with Processor(app) as processor:
        report = processor.run(lines)
    return {
        "ESAFETY_REDIS_URL": REDIS_URL,
        "ESAFETY_KEY_PREFIX": prefix,
        "ESAFETY_BROKER_NAMESPACE": f"{prefix}-dq",
        "ESAFETY_AUDIT_KEY_PATH": str(key),
        "ESAFETY_NOTIFIER": "memory",
        "_needles": needles(lines),
        "_redis": real_redis,
        "_app": app,
        "_report": report,
    }


def cli(env: dict[str, Any], *args: str) -> Any:
    real = {k: v for k, v in env.items() if not k.startswith("_")}
    return CliRunner().invoke(build_cli(), list(args), env=real)


def test_read_commands_hold_no_content(env: dict[str, Any]) -> None:
    outputs = []
    listed = cli(env, "cases", "--json")
    cases = [c["case_id"] for c in json.loads(listed.stdout)["cases"]]
    members = sorted({c["member_id"] for c in json.loads(listed.stdout)["cases"] if c["member_id"]})
    assert "allegation:am-1" in cases and "m-mark" in members
    commands = [["cases"], ["cases", "--json"], ["audit", "verify"], ["audit", "export"]]
    for case_id in [c for c in cases if c.endswith(("m-1", "m-2", "m-3"))]:  # the markers
        commands += [["case", case_id], ["timeline", case_id], ["timeline", case_id, "--json"]]
    commands += [["member", "m-mark"], ["member", "m-mark", "--json"]]
    for command in commands:
        result = cli(env, *command)
        assert result.exit_code == 0, (command, result.output)
        outputs.append(result.stdout + result.stderr)
    assert hits("\n".join(outputs), env["_needles"]) == []


def test_timeline_names_links_and_member_history_spans_cases(env: dict[str, Any]) -> None:
    appeal = json.loads(cli(env, "timeline", "appeal:apl-1", "--json").stdout)
    assert appeal["linked_cases"] == ["post:p-101"]
    post = json.loads(cli(env, "timeline", "post:p-100", "--json").stdout)
    assert "complaint:cmp-1" in post["linked_cases"]  # the complaint about this post
    row = post["entries"][0]
    assert {"at", "actor", "what", "clauses", "policy_version", "notices"} <= set(row)
    member = json.loads(cli(env, "member", "mem-bob", "--json").stdout)
    chains = {r["case_id"] for r in member["history"]}
    assert {"member:mem-bob", "post:p-101", "post:p-102"} <= chains
    times = [r["at"] for r in member["history"]]
    assert times == sorted(times)
    text = cli(env, "member", "mem-bob").stdout
    assert "History of member mem-bob across cases" in text and "post:p-102" in text


def test_evidence_is_shown_to_a_lead_and_the_view_audited(env: dict[str, Any]) -> None:
    shown = cli(env, "evidence", "allegation:am-1", "--by", "dsl")
    assert shown.exit_code == 0, shown.output
    assert "MARKER-ALLEGATION" in shown.stdout and "MARKER-NOTE" in shown.stdout
    timeline = json.loads(cli(env, "timeline", "allegation:am-1", "--json").stdout)
    last = timeline["entries"][-1]
    assert (last["trigger"], last["actor"]) == ("evidence_viewed", "human:dsl")
    assert "by dsl" in last["what"]
    assert cli(env, "audit", "verify", "--case", "allegation:am-1").exit_code == 0
    missing = cli(env, "evidence", "post:nope", "--by", "dsl")
    assert missing.exit_code == 1 and "not found" in missing.stderr


def test_erase_member_refuses_with_reasons_and_the_audit_still_verifies(
    env: dict[str, Any],
) -> None:
    result = cli(env, "erase", "member", "m-mark", "--by", "dpo", "--json")
    assert result.exit_code == 1  # something was refused
    body = json.loads(result.stdout)
    reasons = {r["case_id"]: r["reason"] for r in body["refused"]}
    assert {"post:pm-1", "post:pm-2", "post:pm-3", "appeal:apm-1"} <= set(reasons)
    assert all("retention holds it until" in r for r in reasons.values())  # closed just now
    assert "complaint:cm-1" in {k["case_id"] for k in body["kept"]}
    carl = cli(env, "erase", "member", "mem-carl", "--by", "dpo")
    assert carl.exit_code == 1
    assert "refused: post:p-103: the case is open (escalation)" in carl.stdout
    shown = cli(env, "evidence", "post:p-103", "--by", "dsl", "--json")
    assert len(json.loads(shown.stdout)["items"]) == 1  # still there
    verify = cli(env, "audit", "verify")
    assert verify.exit_code == 0, verify.output


def test_exported_audit_verifies_with_no_redis_and_tampering_is_named(
    env: dict[str, Any], tmp_path: Path
) -> None:
    export = cli(env, "audit", "export")
    assert export.exit_code == 0, export.output
    path = tmp_path / "audit.jsonl"
    path.write_text(export.stdout)
    pub = tmp_path / "audit.pub"
    pub.write_text(json.loads(export.stdout.splitlines()[0])["keys"][0]["public_key_pem"])
    offline = {"ESAFETY_REDIS_URL": None}
    ok = CliRunner().invoke(
        build_cli(), ["audit", "verify", "--file", str(path), "--public-key", str(pub)], env=offline
    )
    assert ok.exit_code == 0, ok.output
    lines = path.read_text().splitlines()
    index = next(i for i, line in enumerate(lines) if '"post:p-102"' in line and "entry" in line)
    row = json.loads(lines[index])
    row["entry"]["actor"] = "human:mallory"
    lines[index] = json.dumps(row)
    path.write_text("\n".join(lines) + "\n")
    bad = CliRunner().invoke(
        build_cli(), ["audit", "verify", "--file", str(path), "--public-key", str(pub)], env=offline
    )
    assert bad.exit_code == 1
    assert "post:p-102: seq 1 changed" in bad.stdout
    since = cli(env, "audit", "export", "--since", "2026-11-24T12:00:00Z")
    assert since.exit_code == 0 and 0 < len(since.stdout.splitlines()) < len(lines)
