"""Nothing private leaks (E4): the demo, every example and a file of planted markers.

Each file runs embedded with logging at debug level. Every log line (as captured
by ``structlog.testing.capture_logs`` before any processor, and as rendered, the
standard library's included), the audit export, the quarantine, the report and
the CLI's output (all but ``evidence``, which exists to show the words) are
scanned for every text, note, contact, name, email and phone number of the
input: zero hits, also lower-cased and with all whitespace removed.

The quarantine is scanned whole: every field of every stream entry. The raw bytes
of input refused as invalid are kept so it can be replayed (issue 5), but apart, in
the evidence key space (``keys.quarantine_raw``, behind the evidence ACL of
``deploy/redis.conf``), not in the stream; forged events keep none
(``test_audit_signed_events.py``). The marker file has a refused line carrying
content, and a test plants an old-style entry with its bytes inline to show that the
scan would catch them.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog
from esafety.workers.app import App, build_app
from esafety.workers.audit_export import export_lines, read_store
from esafety.workers.cli.main import build_cli
from esafety.workers.cli.read_cmd import print_timeline
from esafety.workers.clock import VirtualClock
from esafety.workers.logs import configure_logging
from esafety.workers.process import Processor
from esafety.workers.report import case_row
from esafety.workers.settings import Settings
from esafety.workers.timeline import member_rows, timeline_rows
from rich.console import Console
from typer.testing import CliRunner

from tests.conftest import EXAMPLES
from tests.helpers import envelope, jsonl, post

NAMES = ["Zebulon Quixworth", "Yolanda Pemberton-Smythe", "Ophelia Crumb"]


def marker_events() -> list[dict[str, Any]]:
    """Every field that can carry content, with a marker, a name, an email or a phone."""
    review = "esafety.case.reviewed"
    return [
        envelope(
            "esafety.guardian.registered",
            {
                "child_id": "child-m1",
                "guardians": [
                    {"guardian_ref": "g-m1", "contact": "marker.guardian@example.org"},
                    {"guardian_ref": "g-m2", "contact": "+44 7700 900555"},
                ],
            },
        ),
        post("pm-1", "m-mark", "MARKER-CLEAN lovely day, thanks Yolanda Pemberton-Smythe"),
        post("pm-2", "m-mark", "MARKER-POST Zebulon Quixworth is at zq@example.net 07700 900111"),
        post("pm-3", "m-mark", "MARKER-SHIT this is total shit"),
        envelope(
            "esafety.complaint.received",
            {
                "complaint_id": "cm-1",
                "complainant_ref": "parent-m1",
                "text": "MARKER-COMPLAINT about Zebulon Quixworth, call 07700 900333",
                "about_post_id": "pm-1",
            },
        ),
        envelope(
            "esafety.allegation.reported",
            {
                "allegation_id": "am-1",
                "reporter_ref": "staff-m1",
                "category": "grooming",
                "subject_role": "volunteer",
                "subject_ref": "vol-m1",
                "children": ["child-m1"],
                "text": "MARKER-ALLEGATION Ophelia Crumb messaged a child late at night",
            },
        ),
        envelope(
            review,
            {
                "case_id": "allegation:am-1",
                "reviewer_ref": "dsl",
                "decision": "notify_parents",
                "note": "MARKER-NOTE phone Ophelia Crumb on 07700 900222",
            },
        ),
        envelope(
            "esafety.appeal.lodged",
            {
                "appeal_id": "apm-1",
                "member_id": "m-mark",
                "case_id": "post:pm-3",
                "text": "MARKER-APPEAL I was quoting Zebulon Quixworth",
            },
        ),
        envelope(
            review,
            {
                "case_id": "appeal:apm-1",
                "reviewer_ref": "deputy-dsl",
                "decision": "dismiss",
                "note": "MARKER-NOTE2 spoke to Yolanda Pemberton-Smythe",
            },
        ),
        envelope(  # refused (a member id must be a string): quarantined with its bytes
            "esafety.post.submitted",
            {
                "post_id": "pm-bad",
                "member_id": 5,
                "text": "MARKER-QUARANTINED Ophelia Crumb on 07700 900444",
            },
        ),
    ]


def _content(value: Any, key: str = "") -> Iterator[str]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _content(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from _content(v, key)
    elif isinstance(value, str) and key in {"text", "note", "contact"} and len(value) >= 4:
        yield value


def needles(lines: list[str]) -> set[str]:
    found: set[str] = set(NAMES) | {"MARKER-"}
    for line in lines:
        try:
            body = json.loads(line)
        except ValueError:
            continue
        for text in _content(body.get("data", {}) if isinstance(body, dict) else {}):
            found.add(text)
            found.update(re.findall(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", text))
            found.update(m.strip() for m in re.findall(r"\+?\d[\d ]{8,}\d", text))
    return found


def hits(haystack: str, wanted: set[str]) -> list[str]:
    low = haystack.lower()
    squashed = "".join(low.split())
    out = []
    for needle in sorted(wanted):
        n = needle.lower()
        if n in low or "".join(n.split()) in squashed:
            out.append(needle)
    return out


FILES = sorted(EXAMPLES.glob("*.jsonl"))


def inputs(tmp_path: Path) -> list[Path]:
    markers = tmp_path / "markers.jsonl"
    markers.write_text(jsonl(marker_events()))
    return [*FILES, markers]


def run(path: Path) -> tuple[App, dict[str, Any]]:
    app = build_app(Settings(redis_url=None), embedded=True, clock=VirtualClock())
    until = datetime(2027, 3, 1, tzinfo=UTC)  # deadlines fire, post evidence expires
    with Processor(app) as processor:
        report = processor.run(path.read_text().splitlines(), until=until)
    evidence = app.evidence
    assert evidence is not None
    for case in app.store.cases():
        evidence.view(case.case_id, "dsl")  # its audit entry and logs, not its output
    for member in app.store.members():
        evidence.erase_member(member.member_id, "dpo")
    evidence.sweep()
    return app, report


def outputs(app: App, report: dict[str, Any]) -> str:
    """What leaves the engine: report, audit export, quarantine, timelines, member views."""
    signer = app.engine.heads.get()  # type: ignore[union-attr]
    parts = [json.dumps(report)]
    keys = {signer.key_id: signer.public_pem}
    parts += export_lines(read_store(app.store), keys=keys, now=app.clock.now())
    for entry_id, fields in app.store.client.xrange(app.store.keys.quarantine):
        entry = {k.decode(): v.decode("utf-8", "replace") for k, v in fields.items()}
        parts.append(json.dumps({"id": entry_id.decode(), **entry}, ensure_ascii=False))
    parts += [json.dumps(e, default=str) for e in app.store.quarantine_entries()]
    console = Console(file=io.StringIO(), width=200)
    for case in app.store.cases():
        print_timeline(app.store, case.case_id, console)
        parts.append(
            json.dumps(
                {"case": case_row(case), "rows": timeline_rows(app.store.audit(case.case_id))}
            )
        )
    for member in app.store.members():
        parts.append(json.dumps(member_rows(app.store, member.member_id)))
    parts.append(console.file.getvalue())  # type: ignore[attr-defined]
    return "\n".join(parts)


def test_the_quarantine_scan_sees_bytes_kept_inline(tmp_path: Path) -> None:
    """The refused marker line's bytes are kept (apart), and the scan of the quarantine
    reads every field: an entry holding the bytes inline, as entries once did, is found."""
    path = inputs(tmp_path)[-1]
    wanted = needles(path.read_text().splitlines())
    assert "MARKER-QUARANTINED Ophelia Crumb on 07700 900444" in wanted
    app, report = run(path)
    [refused] = app.store.quarantine_entries(raw=True)
    assert b"MARKER-QUARANTINED" in refused["raw"]  # kept for replay, in the evidence keys
    assert hits(outputs(app, report), wanted) == []
    app.store.client.xadd(
        app.store.keys.quarantine,
        {"raw": refused["raw"], "error": "bad", "stage": "publish", "at": refused["at"]},
    )
    found = hits(outputs(app, report), wanted)
    assert "MARKER-QUARANTINED Ophelia Crumb on 07700 900444" in found
    assert "07700 900444" in found


def test_the_markers_cover_every_content_field(tmp_path: Path) -> None:
    wanted = needles(jsonl(marker_events()).splitlines())
    assert {"marker.guardian@example.org", "+44 7700 900555", "07700 900222"} <= wanted
    assert sum(n.startswith("MARKER-") for n in wanted) >= 8


@pytest.mark.parametrize("name", [p.name for p in FILES] + ["markers.jsonl"])
def test_rendered_logs_and_outputs_hold_no_content(
    name: str, tmp_path: Path, rendered: io.StringIO
) -> None:
    path = next(p for p in inputs(tmp_path) if p.name == name)
    wanted = needles(path.read_text().splitlines())
    app, report = run(path)
    assert report["cases"], "the file must open cases"
    lines = rendered.getvalue()
    assert "audit.step" in lines and "evidence_viewed" in lines  # logging ran at debug
    assert hits(lines, wanted) == []
    assert hits(outputs(app, report), wanted) == []
    assert read_store(app.store), "the audit must have chains"


@pytest.mark.parametrize("name", [p.name for p in FILES] + ["markers.jsonl"])
def test_captured_log_events_hold_no_content(name: str, tmp_path: Path) -> None:
    """Before any processor: nothing logs content in the first place."""
    path = next(p for p in inputs(tmp_path) if p.name == name)
    wanted = needles(path.read_text().splitlines())
    configure_logging("json", "DEBUG", stream=io.StringIO())
    try:
        with structlog.testing.capture_logs() as logs:
            run(path)
    finally:
        configure_logging("console", "WARNING")
    assert len(logs) > 10
    assert hits(json.dumps(logs, default=repr), wanted) == []


def test_cli_process_and_demo_output_hold_no_content(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"ESAFETY_REDIS_URL": None, "ESAFETY_LOG_LEVEL": "DEBUG", "ESAFETY_LOG_FORMAT": "json"}
    markers = inputs(tmp_path)[-1]
    wanted = needles(markers.read_text().splitlines())
    for args in (["--json"], ["--verbose", "--until", "2027-03-01T00:00:00Z"]):
        result = runner.invoke(build_cli(), ["process", str(markers), *args], env=env)
        assert result.exit_code == 0, result.output
        assert hits(result.stdout + result.stderr, wanted) == [], args
    demo = runner.invoke(build_cli(), ["demo"], env=env)  # the summary and every timeline
    assert demo.exit_code == 0, demo.output
    assert "Timeline of allegation:alg-1" in demo.stdout
    assert "Waiting on a decision" in demo.stdout and "Safeguarding figures" in demo.stdout
    demo_text = (EXAMPLES / "demo.jsonl").read_text().splitlines()
    assert hits(demo.stdout + demo.stderr, needles(demo_text)) == []


def test_a_chain_with_no_entries_says_so_instead_of_an_empty_policy() -> None:
    from io import StringIO

    from esafety.workers.cli.read_cmd import print_rows
    from rich.console import Console

    out = StringIO()
    print_rows("Timeline of member:mem-x", [], Console(file=out, width=120))
    assert out.getvalue().strip() == "Timeline of member:mem-x: no audit entries"
