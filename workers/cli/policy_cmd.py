"""``policy check FILE`` and ``policy diff OLD NEW``: before a policy change is made (E6)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ...events.errors import PolicyError
from ...workflows.policy import Policy, load_policy
from ...workflows.policy_check import check_policy, covered_clauses
from ...workflows.policy_diff import diff_policies
from .common import fail, print_json

__all__ = ["check", "diff", "policy_app", "register"]

policy_app = typer.Typer(help="Check a policy file, or compare two.", no_args_is_help=True)
FileArg = Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Policy TOML file.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")]


@policy_app.command()
def check(file: FileArg, json_out: JsonOpt = False) -> None:
    """Schema, a clause for every rule, every clause enforced or waived with a reason."""
    try:
        text = file.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {file}: {exc}", 2)
    policy, problems = check_policy(text, base=file.parent)
    if json_out:
        print_json(
            {
                "file": str(file),
                "ok": not problems,
                "version": policy.version if policy else None,
                "stamp": policy.stamp if policy else None,
                "problems": [{"line": p.line, "message": p.message} for p in problems],
                "clauses": {str(c): w for c, w in covered_clauses(policy).items()}
                if policy
                else {},
                "waived": {str(c): r for c, r in policy.waived.items()} if policy else {},
            }
        )
    else:
        for problem in problems:
            where = f"{file}:{problem.line}" if problem.line else str(file)
            typer.echo(f"{where}: {problem.message}", err=True)
        if policy is not None and not problems:
            typer.echo(
                f"{file}: policy {policy.stamp} is fine: {len(policy.rules)} rules, "
                f"{len(policy.waived)} clauses waived"
            )
    if problems:
        raise typer.Exit(1)


def _load(path: Path) -> Policy:
    try:
        return load_policy(path)
    except (PolicyError, OSError) as exc:
        fail(f"policy {path}: {exc}", 1)


@policy_app.command()
def diff(old: FileArg, new: FileArg, json_out: JsonOpt = False) -> None:
    """What changes from OLD to NEW, in words."""
    before, after = _load(old), _load(new)
    lines = diff_policies(before, after)
    if json_out:
        print_json({"old": before.stamp, "new": after.stamp, "changes": lines})
        return
    typer.echo(f"policy {before.stamp} -> {after.stamp}: {len(lines)} change(s)")
    for line in lines:
        typer.echo(f"  {line}")


def register(app: typer.Typer) -> None:
    app.add_typer(policy_app, name="policy")
