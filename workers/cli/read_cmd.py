"""Commands for safeguarding leads: cases, a case, a member, a timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ...workflows.ids import State
from ...workflows.reviews import allowed_decisions
from ...workflows.steps import iso
from ..report import case_row, member_row
from ..store import RedisStore
from ..timeline import linked_cases, member_rows, timeline_rows
from ..waiting import deadline_of, waiting_rows
from .common import fail, open_app, print_json

__all__ = [
    "case",
    "cases",
    "member",
    "print_rows",
    "print_timeline",
    "print_waiting",
    "register",
    "timeline",
]

JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object on stdout, for tools.")]


def print_timeline(store: RedisStore, chain_id: str, console: Console) -> None:
    """One line per step: when, who, what, clauses, notices (kind -> recipient ref)."""
    linked = linked_cases(store, chain_id)
    more = f"; linked: {', '.join(linked)}" if linked else ""
    print_rows(f"Timeline of {chain_id}", timeline_rows(store.audit(chain_id)), console, more)


def print_rows(
    title: str, rows: list[dict[str, Any]], console: Console, more: str = "", cases: bool = False
) -> None:
    if not rows:
        console.print(f"\n[bold]{title}[/bold]: no audit entries{more}", highlight=False)
        return
    versions = sorted({row["policy_version"] for row in rows})
    console.print(f"\n[bold]{title}[/bold] (policy {', '.join(versions)}{more})", highlight=False)
    for row in rows:
        clauses = f" [{', '.join(row['clauses'])}]" if row["clauses"] else ""
        where = f"{row['case_id']:<20} " if cases else ""
        console.print(
            f"  {row['seq']:>2}  {row['at']}  {where}{row['actor']:<18} {row['what']}{clauses}",
            highlight=False,
            soft_wrap=True,
        )
        for notice in row["notices"]:
            console.print(f"      -> {notice['kind']} to {notice['recipient']}", highlight=False)


def timeline(case_id: str, json_out: JsonOpt = False) -> None:
    """A case's (or ``member:<id>``'s) audit entries as a chronology."""
    app = open_app(quiet=True)
    entries = app.store.audit(case_id)
    if not entries:
        fail(f"no audit entries for {case_id!r}; check the case id (esafety cases)", 1)
    if json_out:
        linked = linked_cases(app.store, case_id)
        print_json({"case_id": case_id, "linked_cases": linked, "entries": timeline_rows(entries)})
        return
    print_timeline(app.store, case_id, Console())


def case(case_id: str, json_out: JsonOpt = False) -> None:
    """One case: state, outcome, rules and the decisions a lead may record now."""
    app = open_app(quiet=True)
    found = app.store.case(case_id)
    if found is None:
        fail(f"case {case_id!r} not found; list cases with `esafety cases`", 1)
    deadline = deadline_of(app.store, found)
    row = {
        **case_row(found),
        "allowed_decisions": allowed_decisions(found),
        "opened_at": found.opened_at,
        "escalation_level": found.escalation_level,
        "acknowledged": found.acknowledged,
        "deadline": iso(deadline.due) if deadline else None,
        "deadline_kind": deadline.kind.value if deadline else None,
    }
    if json_out:
        print_json(row)
        return
    for key, value in row.items():
        typer.echo(f"{key:>18}: {value}")


def member(member_id: str, json_out: JsonOpt = False) -> None:
    """A member's status, warnings in force, and history across cases."""
    app = open_app(quiet=True)
    found = app.store.member(member_id)
    if found is None:
        fail(f"member {member_id!r} not found", 1)
    cases = [case_row(c) for c in app.store.cases() if c.member_id == member_id]
    history = member_rows(app.store, member_id)  # across cases, in time order
    if json_out:
        print_json({**member_row(found), "cases": cases, "history": history})
        return
    row = member_row(found)
    typer.echo(f"member {row['member_id']}: {row['status']}, warnings in force {row['warnings']}")
    for item in cases:
        typer.echo(f"  {item['case_id']}: {item['state']} / {item['outcome']} {item['rules']}")
    print_rows(f"History of member {member_id} across cases", history, Console(), cases=True)


def cases(
    state: Annotated[str | None, typer.Option(help="Only cases in this state.")] = None,
    waiting: Annotated[
        bool,
        typer.Option(
            "--waiting",
            help="Only open cases a lead may decide now: overdue first, then by deadlines "
            "missed, then by deadline.",
        ),
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Every case, or those in one state, or those waiting on a person (``--waiting``)."""
    states = [s.value for s in State]
    if state is not None and state not in states:
        fail(f"--state {state!r} is not a case state (one of: {', '.join(states)})", 2)
    app = open_app(quiet=True)
    if waiting:
        now = app.clock.now()
        rows = [r for r in waiting_rows(app.store, now) if state is None or r["state"] == state]
        if json_out:
            print_json({"at": iso(now), "cases": rows})
        else:
            print_waiting(rows, now, Console())
        return
    rows = [case_row(c) for c in app.store.cases() if state is None or c.state.value == state]
    if json_out:
        print_json({"cases": rows})
        return
    table = Table(title="Cases")
    for column in ("case", "kind", "state", "outcome", "rules", "member"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["case_id"],
            row["kind"],
            row["state"],
            row["outcome"],
            ", ".join(row["rules"]),
            row["member_id"] or "",
        )
    Console().print(table)


def print_waiting(rows: list[dict[str, Any]], now: datetime, console: Console) -> None:
    """``waiting_rows`` as the table a lead reads."""
    late = sum(1 for r in rows if r["overdue"])
    title = f"Waiting on a decision at {iso(now)}: {len(rows)}, {late} overdue"
    table = Table(title=title, caption="decisions allowed: esafety case ID")
    table.add_column("case", no_wrap=True)
    table.add_column("deadline", no_wrap=True)
    for column in ("late", "for", "missed", "seen", "state"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["case_id"],
            row["deadline"] or "",
            _late(row["overdue_s"]) if row["overdue"] else "",
            _DUE_FOR.get(row["deadline_kind"] or "", row["deadline_kind"] or ""),
            str(row["escalation_level"]),
            "yes" if row["acknowledged"] else "no",
            row["state"],
        )
    console.print(table)


#: what a deadline asks of the lead, in the table (its timer kind in ``--json``)
_DUE_FOR = {"alert_deadline": "acknowledge", "complaint_response": "reply"}


def _late(seconds: int) -> str:
    """How late, in the largest whole unit (a lead reads "3 h", not 10,800 s)."""
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def register(app: typer.Typer) -> None:
    app.command()(timeline)
    app.command()(case)
    app.command()(member)
    app.command()(cases)
