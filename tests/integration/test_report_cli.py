"""``esafety report`` on the real Redis: the demo and the planted markers processed into
a fresh prefix, then the trustees' figures as JSON and as text, holding no content."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.test_evidence_cli import cli, populated
from tests.unit.test_privacy import hits

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with populated(tmp_path_factory.mktemp("report")) as store_env:
        yield store_env


def test_the_figures_agree_with_the_cases_and_hold_no_content(env: dict[str, Any]) -> None:
    done = cli(env, "report", "--json")
    assert done.exit_code == 0, done.output
    figures = json.loads(done.stdout)
    cases = json.loads(cli(env, "cases", "--json").stdout)["cases"]
    assert sum(figures["cases_opened"].values()) == len(cases)
    closed = sum(n for outcomes in figures["cases_closed"].values() for n in outcomes.values())
    assert closed == sum(1 for c in cases if c["state"] == "closed")
    assert figures["notices"]["external_referral"] >= 1
    assert figures["deadlines_missed"]["allegation"] >= 1
    text = cli(env, "report")
    assert text.exit_code == 0 and "First response" in text.stdout
    assert not hits(done.stdout + text.stdout, env["_needles"])


def test_a_period_before_everything_is_empty(env: dict[str, Any]) -> None:
    done = cli(env, "report", "--until", "2020-01-01T00:00:00Z", "--json")
    figures = json.loads(done.stdout)
    assert figures["cases_opened"] == {} and figures["notices"] == {}


def test_bad_periods_are_usage_errors(env: dict[str, Any]) -> None:
    backwards = cli(
        env, "report", "--since", "2027-01-02T00:00:00Z", "--until", "2027-01-01T00:00:00Z"
    )
    assert backwards.exit_code == 2 and "--until must be after --since" in backwards.output
    no_zone = cli(env, "report", "--since", "2027-01-01T00:00:00")
    assert no_zone.exit_code == 2 and "timezone" in no_zone.output
