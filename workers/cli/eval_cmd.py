"""``eval``: how well screening does on a labelled set (precision, recall, FPR per rule)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ...events.errors import PolicyError
from ...workflows.policy import Policy, default_policy, load_policy
from ...workflows.screening.evaluation import Scores, evaluate, read_samples
from .common import fail, print_json, settings

__all__ = ["EVAL_SETS", "eval_command", "register"]

EVAL_SETS = Path(__file__).resolve().parent.parent.parent / "workflows" / "data" / "eval"


def _policy(path: Path | None) -> Policy:
    configured = settings().policy_path
    chosen = path or (Path(configured) if configured else None)
    try:
        return load_policy(chosen) if chosen else default_policy()
    except (OSError, PolicyError) as exc:
        fail(f"policy: {exc}", 2)


def _print(name: str, scores: Scores, errors: bool, console: Console) -> None:
    table = Table(title=f"{name}: {scores.posts} posts, {scores.benign} benign")
    for column in ("rule", "positives", "tp", "fp", "fn", "acted", "precision", "recall", "FPR"):
        table.add_column(column, justify="left" if column == "rule" else "right")
    for rule, score in scores.rules.items():
        table.add_row(
            rule,
            *(str(n) for n in (score.tp + score.fn, score.tp, score.fp, score.fn, score.acted)),
            f"{score.precision:.3f}",
            f"{score.recall:.3f}",
            f"{score.fpr:.4f}",
        )
    console.print(table)
    console.print(
        f"benign posts flagged: {scores.benign_flagged}/{scores.benign} "
        f"({scores.benign_flag_rate:.2%})",
        highlight=False,
    )
    if errors:
        for rule, score in scores.rules.items():
            if score.missed or score.wrong:
                console.print(f"  {rule}: missed {score.missed} wrongly flagged {score.wrong}")


def eval_command(
    files: Annotated[
        list[Path] | None,
        typer.Argument(help="JSONL labelled sets (default: the packaged dev and holdout sets)."),
    ] = None,
    policy: Annotated[Path | None, typer.Option(help="Policy file (default: settings).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
    errors: Annotated[bool, typer.Option(help="List the ids of missed and wrong posts.")] = False,
) -> None:
    """Screen a labelled set and print precision, recall and false-positive rate per rule id."""
    chosen = _policy(policy)
    paths = files or sorted(EVAL_SETS.glob("*.jsonl"))
    results: dict[str, Scores] = {}
    for path in paths:
        try:
            samples = read_samples(path.read_text("utf-8").splitlines())
        except (OSError, ValueError) as exc:
            fail(f"{path}: {exc}", 2)
        results[path.name] = evaluate(samples, chosen)
    if json_out:
        print_json({name: s.as_dict() for name, s in results.items()} | {"policy": chosen.stamp})
        return
    console = Console()
    for name, scores in results.items():
        _print(name, scores, errors, console)


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
