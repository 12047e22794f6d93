"""Every ``esafety`` command README.md shows exists, with the options it shows.

A lead or an operator copies these lines; a renamed command or option must fail here,
not on their machine. Lines in shell blocks and inline code are both read."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from tests.unit.test_deploy import check_mention

README = Path(__file__).resolve().parents[2] / "README.md"


def _snippets(text: str) -> list[str]:
    found: list[str] = []
    for block in re.findall(r"```(?:bash|sh)?\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            words = line.split("#")[0].strip()
            tail = words.split("&&")[-1].strip()  # `... pip install ... && .venv/bin/esafety`
            tail = re.sub(r"^(\S+=\S+\s+)+", "", tail)  # leading VAR=value
            tail = re.sub(r"^\S*/esafety\b", "esafety", tail)
            if tail.startswith("esafety "):
                found.append(tail)
    found += re.findall(r"`(esafety [^`]+)`", text)
    return found


def test_every_command_in_the_readme_exists() -> None:
    snippets = _snippets(README.read_text())
    assert len(snippets) >= 30
    for snippet in snippets:
        shlex.split(snippet)  # quoting the reader can paste
        check_mention(snippet.replace("[", " ").replace("]", " "))  # [--optional] parts


def test_a_renamed_option_would_be_caught() -> None:
    try:
        check_mention("esafety cases --wating")
    except AssertionError as exc:
        assert "--wating" in str(exc)
    else:
        raise AssertionError("an unknown option passed")
