"""Issue 9 on the real Redis: ``esafety audit verify`` itself names each tampering, and
every operator command (all but ``evidence``) keeps the input's content out of its output.

The unit tests (``tests/unit/test_audit_verify.py``) call the verifier directly on a fake
store; here the command a lead or inspector runs reads a real Redis (a fresh key prefix in
database 15), once with the whole store and once with ``--case``. The privacy scan covers
the commands ``test_evidence_cli.py`` leaves out: status, quarantine (list and show without
``--raw``), outbox, dead letters, erase and an export window.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from tests.helpers import envelope, jsonl
from tests.integration.test_evidence_cli import cli, populated
from tests.unit.test_audit_verify import CASES, CHAIN, Tamper
from tests.unit.test_privacy import hits

pytestmark = pytest.mark.integration

# input that is refused: its words must not reach quarantine list/show or status
REFUSED = [
    envelope(
        "esafety.post.submitted",  # no member_id: invalid, quarantined with the field named
        {"post_id": "pq-1", "text": "MARKER-INVALID Zebulon Quixworth on 07700 900777"},
        id="ev-invalid",
    ),
    '{"specversion": "1.0", "id": "ev-broken", "data": {"text": "MARKER-BROKEN Ophelia Crumb',
]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with populated(tmp_path_factory.mktemp("audit-cli"), jsonl(REFUSED).splitlines()) as store:
        events = store["_report"]["events"]
        assert events["quarantined"] >= 2, events
        yield store


def _stream_key(env: dict[str, Any]) -> str:
    store = env["_app"].store
    key: str = store.keys.audit(store.chains()[CHAIN], CHAIN)
    return key


def _entries(env: dict[str, Any]) -> list[dict[str, Any]]:
    client: redis.Redis = env["_redis"]
    return [json.loads(f[b"e"]) for _, f in client.xrange(_stream_key(env))]


def _write(env: dict[str, Any], entries: list[dict[str, Any]]) -> None:
    client: redis.Redis = env["_redis"]
    key = _stream_key(env)
    client.delete(key)
    for entry in entries:
        client.xadd(key, {"e": json.dumps(entry)})


def _findings(result: Any) -> set[tuple[str, str]]:
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["broken"] == [CHAIN]
    return {(f["case_id"], f["kind"]) for f in report["findings"]}


@pytest.mark.parametrize(("tamper", "kind", "seq"), CASES, ids=[c[1] for c in CASES])
def test_audit_verify_command_names_each_tampering_on_redis(
    env: dict[str, Any], tamper: Tamper, kind: str, seq: int | None
) -> None:
    clean = cli(env, "audit", "verify")
    assert clean.exit_code == 0, clean.output
    assert "(pinned)" in clean.stderr and "OK" in clean.stdout
    original = _entries(env)
    try:
        _write(env, tamper(json.loads(json.dumps(original))))
        assert _findings(cli(env, "audit", "verify", "--json")) == {(CHAIN, kind)}
        assert _findings(cli(env, "audit", "verify", "--case", CHAIN, "--json")) == {(CHAIN, kind)}
        text = cli(env, "audit", "verify")
        assert text.exit_code == 1 and CHAIN in text.stdout and kind in text.stdout
        other = cli(env, "audit", "verify", "--case", "post:p-101")  # an untouched chain
        assert other.exit_code == 0, other.output
    finally:
        _write(env, original)
    assert cli(env, "audit", "verify").exit_code == 0


def test_audit_verify_names_an_unknown_case(env: dict[str, Any]) -> None:
    result = cli(env, "audit", "verify", "--case", "post:nope")
    assert result.exit_code == 1 and "no audit chain 'post:nope'" in result.stderr


def test_operator_commands_hold_no_content(env: dict[str, Any]) -> None:
    listed = cli(env, "quarantine", "list", "--json")
    assert listed.exit_code == 0, listed.output
    entries = json.loads(listed.stdout)["quarantine"]
    assert len(entries) >= 2
    commands = [
        ["status"],
        ["status", "--json"],
        ["quarantine", "list"],
        ["outbox", "list"],
        ["outbox", "list", "--json"],
        ["dlq", "list"],
        ["dlq", "list", "--json"],
        ["audit", "verify", "--case", "allegation:am-1", "--json"],
        ["audit", "export", "--case", "allegation:am-1"],
        ["audit", "export", "--since", "2026-11-24T11:00:00Z"],
        ["erase", "member", "m-mark", "--by", "dpo"],
        ["erase", "member", "m-mark", "--by", "dpo", "--json"],
        ["erase", "expired"],
    ]
    commands += [["quarantine", "show", str(e["id"])] for e in entries]
    commands += [["quarantine", "show", str(e["id"]), "--json"] for e in entries]
    outputs = [listed.stdout + listed.stderr]
    for command in commands:
        result = cli(env, *command)
        assert result.exit_code in (0, 1), (command, result.output)  # erase: 1 when refused
        outputs.append(result.stdout + result.stderr)
    wanted = env["_needles"]
    assert {"MARKER-", "MARKER-INVALID Zebulon Quixworth on 07700 900777"} <= wanted
    assert hits("\n".join(outputs), wanted) == []
    # the scan sees content where it is meant to be shown: evidence, and the raw bytes
    shown = cli(env, "evidence", "allegation:am-1", "--by", "dsl")
    assert shown.exit_code == 0 and hits(shown.stdout, wanted)
    raw = [cli(env, "quarantine", "show", str(e["id"]), "--raw").stdout for e in entries]
    assert "MARKER-INVALID" in "".join(raw)
    assert cli(env, "audit", "verify").exit_code == 0  # erasure kept the chains whole
