"""One clock (DESIGN.md, "One clock"): nothing but ``workers/clock.py`` reads the time.

Decisions, timers and audit entries read an injected :class:`Clock`; a few operator
measures (heartbeats, latencies, backoff) read a monotonic or wall clock and are
listed below with the reason, so a new read of the system time fails this test
until someone decides it is not a decision.
"""

from __future__ import annotations

import ast
import json
from datetime import UTC, datetime
from pathlib import Path

from esafety.workers.clock import VirtualClock, stopwatch
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
TIME_READS = {
    ("time", "time"),
    ("time", "time_ns"),
    ("time", "monotonic"),
    ("time", "monotonic_ns"),
    ("time", "perf_counter"),
    ("time", "perf_counter_ns"),
    ("time", "process_time"),
    ("time", "localtime"),
    ("time", "gmtime"),
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
}
#: reads of the time outside clock.py that are measures for operators, never decisions
ALLOWED: dict[str, dict[str, str]] = {
    "workers/metrics.py": {"time.time": "publish-to-decision latency against enqueue time"},
    "workers/status.py": {"time.time": "age of the oldest waiting message"},
    "workers/worker_process.py": {"time.time": "worker heartbeats for `status`"},
    "workers/supervisor.py": {"time.monotonic": "restart backoff of worker processes"},
    "workers/middleware.py": {"time.monotonic": "how long to wait for Redis to return"},
    "workers/quarantine.py": {"time.monotonic": "how long `quarantine replay` waits"},
    "workers/bench.py": {
        "time.time": "end-to-end latency of the capacity bench",
        "time.monotonic": "the bench's drain deadline",
        "time.perf_counter": "the bench's publish rate",
        "datetime.now": "start of the bench's generated events (not a decision)",
    },
}


def _time_reads(path: Path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        base = getattr(node, "value", None)
        name = getattr(base, "id", None) or getattr(base, "attr", None)
        if isinstance(node, ast.Attribute) and (name, node.attr) in TIME_READS:
            found.add(f"{name}.{node.attr}")
        if isinstance(node, ast.ImportFrom) and node.module == "time":
            found |= {f"time.{a.name}" for a in node.names if ("time", a.name) in TIME_READS}
    return found


def test_only_the_clock_module_reads_the_system_time() -> None:
    unexpected = {}
    for path in sorted((ROOT / "workers").rglob("*.py")):
        where = path.relative_to(ROOT).as_posix()
        if where == "workers/clock.py" or "__pycache__" in path.parts:
            continue
        extra = _time_reads(path) - set(ALLOWED.get(where, {}))
        if extra:
            unexpected[where] = sorted(extra)
    assert unexpected == {}, "read the time through workers/clock.py (or list the measure)"


def test_the_scan_sees_a_hidden_read(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("from time import monotonic\nimport datetime\nx = datetime.datetime.now\n")
    assert _time_reads(probe) == {"time.monotonic", "datetime.now"}
    probe.write_text("from datetime import datetime\ndef f():\n    return datetime.now()\n")
    assert _time_reads(probe) == {"datetime.now"}


def test_virtual_clock_never_goes_back() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    clock = VirtualClock(start)
    later = datetime(2026, 3, 1, tzinfo=UTC)
    assert clock.advance_to(later) == later
    assert clock.advance_to(start) == later
    assert clock.now() == later


def test_stopwatch_only_measures() -> None:
    elapsed = stopwatch()
    assert 0 <= elapsed() < 60


def test_process_is_byte_for_byte_deterministic_on_a_generated_year(tmp_path: Path) -> None:
    """The same file gives the same report, effect ids included, with timers fired."""
    from esafety.workers.cli.main import build_cli

    cli = CliRunner()
    generated = cli.invoke(
        build_cli(), ["simulate", "--members", "30", "--days", "40", "--seed", "7"]
    )
    assert generated.exit_code == 0, generated.output
    file = tmp_path / "year.jsonl"
    file.write_text(generated.stdout)
    args = ["process", str(file), "--json", "--no-progress", "--until", "2026-04-01T00:00:00Z"]
    first = cli.invoke(build_cli(), args)
    second = cli.invoke(build_cli(), args)
    assert first.exit_code == 0, first.output
    assert first.stdout == second.stdout
    report = json.loads(first.stdout)
    assert report["effects"] and report["events"]["accepted"] == len(generated.stdout.splitlines())
    assert all(t["due"] > "2026-04-01T00:00:00Z" for t in report["timers"])
