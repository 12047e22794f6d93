"""``audit verify`` names each kind of tampering, in the store and in an export file.

Each test runs the demo into a fresh embedded store (fakeredis), checks that it
verifies, tampers with one chain the way someone with write access to Redis (or
to an archived file) could, and checks the finding: chain, entry and kind.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from esafety.workers.app import App, build_app
from esafety.workers.audit_export import export_lines, read_export, read_store
from esafety.workers.audit_verify import Report, verify_records
from esafety.workers.cli.main import build_cli
from esafety.workers.clock import VirtualClock
from esafety.workers.process import Processor
from esafety.workers.settings import Settings
from esafety.workers.signing import HeadSigner, load_public_keys
from esafety.workflows.audit import GENESIS, entry_hash
from typer.testing import CliRunner

from tests.conftest import EXAMPLES, NOW

CHAIN = "allegation:alg-1"  # seven entries in the demo

Entries = list[dict[str, Any]]
Tamper = Callable[[Entries], Entries]


@pytest.fixture(scope="module")
def demo() -> tuple[App, dict[bytes, bytes]]:
    """The demo, run once; each test starts from a snapshot of its store."""
    app = build_app(Settings(redis_url=None), embedded=True, clock=VirtualClock())
    with Processor(app) as processor:
        processor.run((EXAMPLES / "demo.jsonl").read_text().splitlines())
    client = app.store.client
    return app, {key: client.dump(key) for key in client.keys("*")}


@pytest.fixture
def app(demo: tuple[App, dict[bytes, bytes]]) -> App:
    app, snapshot = demo
    app.store.client.flushall()
    for key, value in snapshot.items():
        app.store.client.restore(key, 0, value)
    return app


def _signer(app: App) -> HeadSigner:
    assert app.engine.heads is not None
    signer = app.engine.heads.get()  # type: ignore[union-attr]
    assert isinstance(signer, HeadSigner)
    return signer


def verify(app: App) -> Report:
    trusted = load_public_keys([_signer(app).public_pem])
    return verify_records(read_store(app.store), trusted)


def stream(app: App, chain: str = CHAIN) -> Entries:
    tag = app.store.chains()[chain]
    return [
        json.loads(f[b"e"]) for _, f in app.store.client.xrange(app.store.keys.audit(tag, chain))
    ]


def rewrite_stream(app: App, entries: Entries, chain: str = CHAIN) -> None:
    key = app.store.keys.audit(app.store.chains()[chain], chain)
    app.store.client.delete(key)
    for entry in entries:
        app.store.client.xadd(key, {"e": json.dumps(entry)})


def rehash(entries: Entries) -> Entries:
    """What someone without the signing key can do: make the chain hold together again."""
    prev = GENESIS
    for entry in entries:
        entry["prev_hash"] = prev
        entry["hash"] = entry_hash(entry)
        prev = entry["hash"]
    return entries


def change(entries: Entries) -> Entries:
    entries[2]["actor"] = "human:mallory"
    return entries


def delete(entries: Entries) -> Entries:
    return entries[:2] + entries[3:]


def insert(entries: Entries) -> Entries:
    forged = {**entries[2], "actor": "human:mallory", "trigger": "close"}
    forged["hash"] = entry_hash(forged)  # links to seq 2, fresh valid hash
    return [*entries[:3], forged, *entries[3:]]


def reorder(entries: Entries) -> Entries:
    return [*entries[:2], entries[3], entries[2], *entries[4:]]


def truncate(entries: Entries) -> Entries:
    return entries[:-1]


def rewrite(entries: Entries) -> Entries:
    entries[1]["actor"] = "human:mallory"
    entries[1]["detail"] = {}
    return rehash(entries)


CASES: list[tuple[Tamper, str, int | None]] = [
    (change, "changed", 3),
    (delete, "removed", 3),
    (insert, "inserted", 3),
    (reorder, "reordered", None),
    (truncate, "truncated", 7),
    (rewrite, "rewritten", 7),
]


def kinds(report: Report) -> set[tuple[str, str]]:
    return {(f.case_id, f.kind) for f in report.findings}


@pytest.mark.parametrize(("tamper", "kind", "seq"), CASES, ids=[c[1] for c in CASES])
def test_store_tampering_is_named(app: App, tamper: Tamper, kind: str, seq: int | None) -> None:
    assert verify(app).ok, verify(app).findings
    original = stream(app)
    assert len(original) == 7
    rewrite_stream(app, tamper(json.loads(json.dumps(original))))
    report = verify(app)
    assert not report.ok
    assert kinds(report) == {(CHAIN, kind)}, [str(f) for f in report.findings]
    if seq is not None:
        assert [f.seq for f in report.findings] == [seq]
    assert report.broken_chains() == [CHAIN]
    rewrite_stream(app, original)
    assert verify(app).ok


def test_reorder_names_the_displaced_entry(app: App) -> None:
    rewrite_stream(app, reorder(stream(app)))
    (finding,) = verify(app).findings
    assert finding.kind == "reordered" and finding.seq in (3, 4)


def test_rewrite_with_a_forged_head_is_caught(app: App) -> None:
    """Rewriting the chain and signing a head with another key does not pass."""
    entries = rewrite(stream(app))
    rewrite_stream(app, entries)
    mallory = HeadSigner.generate().sign(CHAIN, 7, entries[-1]["hash"])
    tag = app.store.chains()[CHAIN]
    app.store.client.hset(app.store.keys.heads(tag), CHAIN, json.dumps(mallory))
    (finding,) = verify(app).findings
    assert (finding.kind, finding.case_id) == ("rewritten", CHAIN)
    assert "not trusted" in finding.detail


def test_missing_head_and_deleted_chain_are_reported(app: App) -> None:
    tag = app.store.chains()[CHAIN]
    app.store.client.hdel(app.store.keys.heads(tag), CHAIN)
    assert kinds(verify(app)) == {(CHAIN, "unsigned")}
    bob = "member:mem-bob"
    app.store.client.delete(app.store.keys.audit(app.store.chains()[bob], bob))
    assert (bob, "truncated") in kinds(verify(app))


def test_a_chain_deleted_with_its_head_is_removed_while_its_case_is_on_record(app: App) -> None:
    tag = app.store.chains()[CHAIN]
    app.store.client.delete(app.store.keys.audit(tag, CHAIN))
    app.store.client.hdel(app.store.keys.heads(tag), CHAIN)
    app.store.client.hdel(app.store.keys.chains, CHAIN)
    assert kinds(verify(app)) == {(CHAIN, "removed")}


def test_chain_hidden_from_the_index_is_still_checked(app: App) -> None:
    app.store.client.hdel(app.store.keys.chains, CHAIN)
    rewrite_stream_key = app.store.keys.audit(CHAIN, CHAIN)
    app.store.client.xadd(rewrite_stream_key, {"e": json.dumps(stream_raw_extra())})
    assert (CHAIN, "inserted") in kinds(verify(app))


def stream_raw_extra() -> dict[str, Any]:
    return {"case_id": CHAIN, "seq": 8, "prev_hash": "0" * 64, "hash": "f" * 64}


# -- the same on an export file, with no Redis ---------------------------------------------


def export_file(app: App, tmp_path: Path, tamper: Tamper | None = None) -> Path:
    lines = list(
        export_lines(
            read_store(app.store), keys={_signer(app).key_id: _signer(app).public_pem}, now=NOW
        )
    )
    if tamper is not None:
        lines = tamper_lines(lines, tamper)
    path = tmp_path / "audit.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def tamper_lines(lines: list[str], tamper: Tamper) -> list[str]:
    rows = [json.loads(line) for line in lines]
    mine = [r for r in rows if r["type"] == "entry" and r["case_id"] == CHAIN]
    first = rows.index(mine[0])
    changed = tamper([r["entry"] for r in mine])
    fresh = [{"type": "entry", "case_id": CHAIN, "where": "x", "entry": e} for e in changed]
    rows[first : first + len(mine)] = fresh
    return [json.dumps(r) for r in rows]


def run_cli(*args: str) -> Any:
    return CliRunner().invoke(build_cli(), list(args), env={"ESAFETY_REDIS_URL": None})


@pytest.mark.parametrize(("tamper", "kind", "seq"), CASES, ids=[c[1] for c in CASES])
def test_file_tampering_is_named_with_no_redis(
    app: App, tmp_path: Path, tamper: Tamper, kind: str, seq: int | None
) -> None:
    key = tmp_path / "audit.pub"
    key.write_text(_signer(app).public_pem)
    clean = run_cli(
        "audit", "verify", "--file", str(export_file(app, tmp_path)), "--public-key", str(key)
    )
    assert clean.exit_code == 0, clean.output
    assert "OK" in clean.output
    path = export_file(app, tmp_path, tamper)
    result = run_cli("audit", "verify", "--file", str(path), "--public-key", str(key), "--json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert {(f["case_id"], f["kind"]) for f in report["findings"]} == {(CHAIN, kind)}
    assert report["broken"] == [CHAIN]


def test_file_with_an_unpinned_key_warns_and_a_wrong_pin_fails(app: App, tmp_path: Path) -> None:
    path = export_file(app, tmp_path)
    unpinned = run_cli("audit", "verify", "--file", str(path))
    assert unpinned.exit_code == 0 and "no key pinned" in unpinned.stderr
    other = tmp_path / "other.pub"
    other.write_text(HeadSigner.generate().public_pem)
    wrong = run_cli("audit", "verify", "--file", str(path), "--public-key", str(other))
    assert wrong.exit_code == 1 and "not trusted" in wrong.stdout


def test_export_since_is_a_verifiable_window(app: App) -> None:
    since = json.loads(json.dumps(stream(app)[4]))["at"]
    from datetime import datetime

    moment = datetime.fromisoformat(since.replace("Z", "+00:00"))
    lines = list(export_lines(read_store(app.store), keys={}, now=NOW, since=moment))
    header, records, _ = read_export(lines)
    assert header["since"] == since
    window = next(r for r in records if r.case_id == CHAIN)
    assert window.anchored and len(window.entries) == 3
    trusted = load_public_keys([_signer(app).public_pem])
    assert verify_records(records, trusted).ok
