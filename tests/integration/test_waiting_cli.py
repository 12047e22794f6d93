"""``esafety cases --waiting`` and a case's deadline, on the real Redis: the demo and the
planted markers processed into a fresh prefix, then the commands a lead runs."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.test_evidence_cli import cli, populated
from tests.unit.test_privacy import hits

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with populated(tmp_path_factory.mktemp("waiting")) as store_env:
        yield store_env


def _at(env: dict[str, Any], moment: str) -> dict[str, Any]:
    """The CLI's clock at ``moment`` now (a test clock: epoch at this real instant)."""
    return {
        **env,
        "ESAFETY_TEST_CLOCK_EPOCH": moment,
        "ESAFETY_TEST_CLOCK_ORIGIN": f"{time.time()}",
    }


def test_waiting_lists_open_cases_with_their_deadlines(env: dict[str, Any]) -> None:
    before = cli(_at(env, "2026-11-25T00:00:00Z"), "cases", "--waiting", "--json")
    assert before.exit_code == 0, before.output
    rows = {r["case_id"]: r for r in json.loads(before.stdout)["cases"]}
    complaint = rows["complaint:cmp-1"]
    assert complaint["deadline"] == "2026-11-26T09:30:00Z"
    assert complaint["deadline_kind"] == "complaint_response" and not complaint["overdue"]
    assert "post:p-103" in rows  # the threat: escalated, no deadline, still waits on the DSL
    closed = {c["case_id"] for c in env["_report"]["cases"] if c["state"] == "closed"}
    assert closed and not closed & set(rows)

    after = cli(_at(env, "2026-11-27T09:30:00Z"), "cases", "--waiting", "--json")
    first = json.loads(after.stdout)["cases"][0]
    assert first["case_id"] == "complaint:cmp-1" and first["overdue"]
    assert 86_400 <= first["overdue_s"] < 86_400 + 600  # a day late (the test clock runs on)


def test_the_table_and_a_case_show_the_deadline_and_no_content(env: dict[str, Any]) -> None:
    table = cli(_at(env, "2026-11-27T09:30:00Z"), "cases", "--waiting")
    assert table.exit_code == 0, table.output
    assert "complaint:cmp-1" in table.stdout and "overdue" in table.stdout
    assert "1 d" in table.stdout
    one = cli(env, "case", "complaint:cmp-1", "--json")
    assert json.loads(one.stdout)["deadline"] == "2026-11-26T09:30:00Z"
    assert not hits(table.stdout + one.stdout, env["_needles"])


def test_waiting_with_a_state_that_does_not_exist_is_a_usage_error(env: dict[str, Any]) -> None:
    result = cli(env, "cases", "--waiting", "--state", "pending")
    assert result.exit_code == 2 and "not a case state" in result.output
