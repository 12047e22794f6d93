"""``simulate``: a realistic, synthetic, seeded year (issue 10)."""

from __future__ import annotations

import collections
import json
import re

from esafety.events.envelope import parse_event
from esafety.workers.cli.main import build_cli
from esafety.workers.simulate import simulate
from typer.testing import CliRunner


def test_same_seed_same_file_other_seed_other_file() -> None:
    cli = CliRunner()
    args = ["simulate", "--members", "40", "--days", "30", "--seed", "4"]
    first, second = cli.invoke(build_cli(), args), cli.invoke(build_cli(), args)
    assert first.exit_code == 0 and first.stdout == second.stdout
    other = cli.invoke(build_cli(), [*args[:-1], "5"])
    assert other.stdout != first.stdout


def test_the_mix_is_realistic_and_valid() -> None:
    events = list(simulate(300, 120, seed=2))
    kinds = collections.Counter(e["type"].removeprefix("esafety.") for e in events)
    assert set(kinds) >= {
        "post.submitted",
        "case.reviewed",
        "complaint.received",
        "allegation.reported",
        "appeal.lodged",
        "consent.recorded",
        "consent.withdrawn",
        "guardian.registered",
        "member.removal_requested",
    }
    assert kinds["post.submitted"] > 0.8 * len(events)
    times = [e["time"] for e in events]
    assert times == sorted(times)
    assert len({e["id"] for e in events}) == len(events)
    for event in events:
        parse_event(event)  # every line is a valid CloudEvent
    swears = sum(
        "shit" in e["data"]["text"] or "bollocks" in e["data"]["text"]
        for e in events
        if e["type"] == "esafety.post.submitted"
    )
    assert 0.002 * kinds["post.submitted"] < swears < 0.05 * kinds["post.submitted"]


def test_no_real_looking_personal_data() -> None:
    text = "\n".join(json.dumps(e) for e in simulate(200, 200, seed=3))
    for email in re.findall(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", text):
        assert email.endswith("@example.org"), email
    for phone in re.findall(r"\b0\d{3,4} ?\d{3} ?\d{3,4}\b", text):
        assert phone.replace(" ", "").startswith("07700900"), phone  # Ofcom's drama range
    assert "contact" not in text
