"""``policy check``: is a policy file one the engine can enforce and an inspector can trace?

Why more than loading it: a policy that loads can still leave a clause of POLICY.md
unenforced without anyone deciding so. The check asks that every rule cite a clause
(the schema refuses a rule without one), and that every clause, C1..C7, S1..S5 and
E1..E7, be either enforced (cited by a rule, or by the section of the file that
implements it) or waived in ``[waived]`` with a reason a reviewer can read (E6:
procedures reviewed). Every problem names the line of the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..events.errors import PolicyError
from .ids import Clause
from .policy import Policy, parse_policy

__all__ = ["SECTION_CLAUSES", "Problem", "check_policy", "covered_clauses"]

#: clauses the engine enforces through a section of the policy file rather than a rule
SECTION_CLAUSES: dict[Clause, str] = {
    Clause.S1: "[sanctions]: a breach is deleted and its author warned",
    Clause.S2: "[sanctions] warnings_for_removal and removal",
    Clause.S3: "[sanctions] threat",
    Clause.S5: "[deadlines] complaint_response_hours",
    Clause.E1: "[deadlines] allegation hours and the [escalation] chain",
    Clause.E3: "[consent] group_post_purpose",
    Clause.E4: "[personal_info]",
    Clause.E6: "version: every decision records it",
}


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a policy file, with the line it is on (None: the whole file)."""

    line: int | None
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


def _line_of(text: str, needle: str, after: str | None = None) -> int | None:
    started = after is None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not started:
            started = stripped == after
            continue
        if stripped.startswith(needle):
            return number
    return None


def _locate(text: str, message: str) -> int | None:
    """The line a schema error's path points at (``waived.X9.[key]: ...``), when the
    loader could not say: the innermost named key under its table."""
    path = [p for p in message.split(":", 1)[0].split(".") if p and not p.startswith("[")]
    if not path:
        return None
    for depth in range(len(path) - 1, -1, -1):
        table = "[" + ".".join(path[:depth]) + "]" if depth else None
        line = _line_of(text, path[depth], after=table)
        if line is not None:
            return line
    return None


def covered_clauses(policy: Policy) -> dict[Clause, str]:
    """Each enforced clause and what enforces it (a rule id, or a section of the file)."""
    covered: dict[Clause, str] = {}
    for rule, entry in sorted(policy.rules.items()):
        if entry.enabled:
            for clause in (entry.clause, *entry.also):
                covered.setdefault(clause, f"[rules.{rule}]")
    for clause, where in SECTION_CLAUSES.items():
        covered.setdefault(clause, where)
    return covered


def _coverage(policy: Policy, text: str) -> list[Problem]:
    problems: list[Problem] = []
    covered = covered_clauses(policy)
    waived_at = _line_of(text, "[waived]")
    for clause in Clause:
        reason = policy.waived.get(clause, "").strip()
        if clause in policy.waived and not reason:
            line = _line_of(text, clause.value, after="[waived]")
            problems.append(Problem(line, f"clause {clause} is waived without a reason"))
        elif clause not in covered and not reason:
            problems.append(
                Problem(
                    waived_at,
                    f"clause {clause} is neither cited by a rule nor waived: cite it from a "
                    f'rule, or add {clause} = "why" under [waived]',
                )
            )
    return problems


def check_policy(text: str, base: str | Path | None = None) -> tuple[Policy | None, list[Problem]]:
    """The policy (None if it does not load) and every problem found, each with its line."""
    try:
        policy = parse_policy(text, base)
    except PolicyError as exc:
        message = str(exc)
        if exc.line:
            message = message.removeprefix(f"line {exc.line}: ")
        return None, [Problem(exc.line or _locate(text, message), message)]
    return policy, _coverage(policy, text)
