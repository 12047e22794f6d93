"""``esafety evidence`` and ``esafety erase``: the words behind a case, for a lead (E4).

``evidence`` shows a case's evidence only after an audit entry records who viewed
it; ``erase member`` removes a member's evidence where retention allows and says
why where it does not; ``erase expired`` runs the retention job now (the workers
also run it on a schedule).
"""

from __future__ import annotations

from typing import Annotated

import typer

from ...events.errors import CaseNotFound
from ..app import App
from ..evidence import EvidenceStore
from .common import fail, open_app, print_json

__all__ = ["erase_expired", "erase_member", "evidence", "register"]

JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object on stdout, for tools.")]


def _evidence(app: App) -> EvidenceStore:
    assert app.evidence is not None
    return app.evidence


def evidence(
    case_id: str,
    by: Annotated[str, typer.Option("--by", help="Your ref (recorded in the audit).")],
    json_out: JsonOpt = False,
) -> None:
    """Show a case's evidence (text, notes); the view is audited first."""
    app = open_app(quiet=True)
    try:
        case, items = _evidence(app).view(case_id, by)
    except CaseNotFound:
        fail(f"case {case_id!r} not found; list cases with `esafety cases`", 1)
    if json_out:
        print_json({"case_id": case.case_id, "state": case.state.value, "items": items})
        return
    typer.echo(f"evidence of {case.case_id} ({case.state.value}); this view is in its audit")
    if not items:
        typer.echo("  none kept (never any, erased, or past its retention period)")
    for item in items:
        typer.echo(f"\n  {item['at']}  {item['kind']} by {item['by']} (event {item['event_id']})")
        typer.echo(f"    {item['text']}")


def erase_member(
    member_id: str,
    by: Annotated[str, typer.Option("--by", help="Who asks (recorded in the audit).")] = "operator",
    json_out: JsonOpt = False,
) -> None:
    """Erase a member's own words where retention allows; exit 1 if any case refused."""
    app = open_app(quiet=True)
    result = _evidence(app).erase_member(member_id, by)
    if json_out:
        print_json(result.as_dict())
    else:
        for case_id in result.erased:
            typer.echo(f"erased: {case_id}")
        for case_id, reason in result.refused:
            typer.echo(f"refused: {case_id}: {reason}")
        for case_id, reason in result.kept:
            typer.echo(f"kept: {case_id}: {reason}")
        if not (result.erased or result.refused or result.kept):
            typer.echo(f"no evidence of member {member_id!r} to erase")
    if result.refused:
        raise typer.Exit(1)


def erase_expired() -> None:
    """Remove evidence past its retention period now (workers also do it on a schedule)."""
    app = open_app(quiet=True)
    typer.echo(f"cases swept: {_evidence(app).sweep()}")


def register(app: typer.Typer) -> None:
    app.command()(evidence)
    group = typer.Typer(help="Erase evidence (retention, erasure requests).", no_args_is_help=True)
    group.command("member")(erase_member)
    group.command("expired")(erase_expired)
    app.add_typer(group, name="erase")
