"""``policy check`` and ``policy diff`` (issue 10): errors name the line; diffs read as words."""

from __future__ import annotations

import json
from pathlib import Path

import esafety.workflows.policy as policy_module
import pytest
from esafety.workers.cli.main import build_cli
from esafety.workflows.policy import DEFAULT_POLICY_PATH, load_policy
from esafety.workflows.policy_check import check_policy
from esafety.workflows.policy_diff import diff_policies
from typer.testing import CliRunner

DEFAULT = Path(policy_module.__file__).parent / DEFAULT_POLICY_PATH


def _write(tmp_path: Path, text: str, name: str = "policy.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, "utf-8")
    return path


def _line(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if line.strip().startswith(needle))


def test_the_shipped_policy_passes() -> None:
    policy, problems = check_policy(DEFAULT.read_text("utf-8"), base=DEFAULT.parent)
    assert policy is not None and problems == []
    result = CliRunner().invoke(build_cli(), ["policy", "check", str(DEFAULT), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] and set(report["waived"]) == {"S4", "E5", "E7"}


def test_a_rule_citing_no_clause_is_refused_with_its_line(tmp_path: Path) -> None:
    lines = DEFAULT.read_text("utf-8").splitlines()
    table = lines.index("[rules.violence]")
    clause = next(i for i in range(table + 1, len(lines)) if lines[i].startswith("clause"))
    text = "\n".join(lines[:clause] + lines[clause + 1 :]) + "\n"
    path = _write(tmp_path, text)
    result = CliRunner().invoke(build_cli(), ["policy", "check", str(path)])
    assert result.exit_code == 1
    line = _line(text, "[rules.violence]")
    assert f"{path}:{line}: rules.violence.clause" in result.stderr


def test_a_syntax_error_is_refused_with_its_line(tmp_path: Path) -> None:
    text = DEFAULT.read_text("utf-8").replace(
        "warnings_for_removal = 2", "warnings_for_removal = = 2"
    )
    path = _write(tmp_path, text)
    result = CliRunner().invoke(build_cli(), ["policy", "check", str(path), "--json"])
    assert result.exit_code == 1
    problem = json.loads(result.stdout)["problems"][0]
    assert problem["line"] == _line(text, "warnings_for_removal")
    assert "TOML" in problem["message"]


def test_a_clause_neither_cited_nor_waived_is_named(tmp_path: Path) -> None:
    text = DEFAULT.read_text("utf-8").replace('E7 = "built into', 'E8_gone = "built into')
    text = text.replace("E8_gone", "# E7")
    policy, problems = check_policy(text, base=DEFAULT.parent)
    assert policy is not None
    assert [p.message.split(" is ")[0] for p in problems] == ["clause E7"]
    assert problems[0].line == _line(text, "[waived]")


def test_a_waiver_without_a_reason_is_refused(tmp_path: Path) -> None:
    text = DEFAULT.read_text("utf-8").replace('S4 = "built into', 'S4 = "  " # "built into')
    _, problems = check_policy(text, base=DEFAULT.parent)
    assert len(problems) == 1 and "S4 is waived without a reason" in problems[0].message
    assert problems[0].line == _line(text, "S4 =")


def test_diff_says_what_changes_in_words(tmp_path: Path) -> None:
    text = DEFAULT.read_text("utf-8")
    new_text = text.replace("warnings_for_removal = 2", "warnings_for_removal = 3").replace(
        'version = "2026.11-default.1"', 'version = "2027.01-three-warnings"'
    )
    new_text = new_text.replace("complaint_response_hours = 48", "complaint_response_hours = 24")
    old, new = (
        load_policy(_write(tmp_path, text, "old.toml")),
        load_policy(_write(tmp_path, new_text)),
    )
    lines = diff_policies(old, new)
    assert "warnings that bring removal (S2): 2 -> 3" in lines
    assert "hours to answer a complaint (S5): 48.0 -> 24.0" in lines
    assert any(line.startswith("policy version (E6)") for line in lines)
    assert len(lines) == 3
    assert diff_policies(old, old) == []
    result = CliRunner().invoke(
        build_cli(), ["policy", "diff", str(tmp_path / "old.toml"), str(tmp_path / "policy.toml")]
    )
    assert result.exit_code == 0 and "2 -> 3" in result.stdout


@pytest.mark.parametrize("waived_bad", ['X9 = "no such clause"'])
def test_waiving_an_unknown_clause_is_a_schema_error(tmp_path: Path, waived_bad: str) -> None:
    text = DEFAULT.read_text("utf-8") + f"{waived_bad}\n"
    policy, problems = check_policy(text, base=DEFAULT.parent)
    assert policy is None and problems[0].line is not None


def test_the_stamp_changes_with_a_word_list_even_when_the_version_does_not(
    tmp_path: Path,
) -> None:
    """E6: a decision cites ``version+digest``; an edited lexicon under the same version
    gets a new stamp, so the audit still tells which rules decided."""
    shipped = load_policy()
    again = load_policy()
    assert shipped.stamp == again.stamp and shipped.stamp.startswith(f"{shipped.version}+")
    ref = next(r for entry in shipped.rules.values() for r in entry.lexicon)
    policy_file = _write(tmp_path, DEFAULT.read_text("utf-8"))
    lexicon = tmp_path / ref
    lexicon.parent.mkdir(parents=True, exist_ok=True)
    lexicon.write_text(shipped.files[ref] + "\nzzyzxword\n", "utf-8")
    edited = load_policy(policy_file)
    assert edited.version == shipped.version
    assert edited.stamp != shipped.stamp
    result = CliRunner().invoke(build_cli(), ["policy", "check", str(policy_file), "--json"])
    assert json.loads(result.stdout)["stamp"] == edited.stamp


def test_a_copy_with_other_rules_gets_its_own_stamp() -> None:
    shipped = load_policy()
    _ = shipped.stamp
    stricter = shipped.sanctions.model_copy(update={"warnings_for_removal": 3})
    changed = shipped.model_copy(update={"sanctions": stricter})
    assert changed.version == shipped.version
    assert changed.stamp != shipped.stamp


def test_the_policy_says_how_often_a_notice_is_tried_before_the_dead_letters() -> None:
    """``[delivery] retries`` binds the deliver actor; the other stages keep the setting."""
    from esafety.workers.app import build_app
    from esafety.workers.settings import Settings
    from esafety.workflows.policy import default_policy

    shipped = default_policy()
    assert shipped.delivery.retries == 8
    three = shipped.model_copy(
        update={"delivery": shipped.delivery.model_copy(update={"retries": 3})}
    )
    unset = shipped.model_copy(
        update={"delivery": shipped.delivery.model_copy(update={"retries": None})}
    )
    settings = Settings(redis_url=None, max_retries=5)
    actors = build_app(settings, policy=three, embedded=True).actors
    assert actors["deliver"].options["max_retries"] == 3
    assert "max_retries" not in actors["handle_event"].options  # the setting's 5 applies
    assert (
        "max_retries"
        not in build_app(settings, policy=unset, embedded=True).actors["deliver"].options
    )
