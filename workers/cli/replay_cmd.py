"""``replay``: what a policy change would have done to the archived events (E6).

Nothing is written to the live store and nothing is sent: the events go through
the pure ``decide()`` in memory (``workers/replay.py``).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from ...events.errors import PolicyError
from ...workflows.policy import Policy, default_policy, load_policy
from ..archive import ArchivedEvent, read_archive, read_jsonl
from ..replay import Replay
from ..replay_diff import Snapshot, compare
from ..report import store_policy_version
from .common import fail, open_app, parse_time, print_json, settings

__all__ = ["bench_process", "bench_replay", "register", "register_bench", "replay", "what_if"]


def _policy(path: Path | None) -> Policy:
    if path is None:
        configured = settings().policy_path
        path = Path(configured) if configured else None
    try:
        return load_policy(path) if path else default_policy()
    except (PolicyError, OSError) as exc:
        fail(f"policy {path}: {exc}", 2)


def _from_file(
    path: Path, start: datetime | None, end: datetime | None
) -> tuple[list[ArchivedEvent], list[dict[str, Any]]]:
    try:
        lines = path.read_text("utf-8", errors="surrogateescape").splitlines()
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}", 2)
    items: list[ArchivedEvent] = []
    skipped: list[dict[str, Any]] = []
    for number, item in read_jsonl(lines, start=start, end=end):
        if isinstance(item, ArchivedEvent):
            items.append(item)
        else:
            skipped.append({"line": number, "error": str(item)})
    return items, skipped


def what_if(
    items: list[ArchivedEvent],
    new: Policy,
    current: Policy,
    *,
    until: datetime | None = None,
    happened: Snapshot | None = None,
    full: bool = False,
) -> dict[str, Any]:
    """Replay ``items`` under ``new``; compare with what happened, or a replay under ``current``."""
    baseline = None
    if happened is None:
        baseline = Replay(current, recorded=current, full=full).run(items, until=until)
        happened = Snapshot.of_replay(baseline)
    replayed = Replay(new, recorded=current, full=full).run(items, until=until)
    result = compare(happened, Snapshot.of_replay(replayed))
    result["against"] = "happened" if baseline is None else "baseline"
    result["replay"] = replayed.stats.as_dict()
    result["refused"] = replayed.stats.refused
    result["baseline_replay"] = baseline.stats.as_dict() if baseline else None
    return result


def _print(result: dict[str, Any], limit: int, console: Console) -> None:
    p, s, r = result["policies"], result["summary"], result["replay"]
    against = "what happened" if result["against"] == "happened" else "a replay under it"
    console.print(f"policy {p['before']} -> {p['after']} (compared with {against})", markup=False)
    console.print(
        f"replayed {r['events']} events in {r['seconds']} s ({r['events_per_second']}/s); "
        f"{r['erased_replayed_with_recorded_screening']} with erased text replayed on their "
        f"recorded screening; {r['refused']} refused",
        markup=False,
    )
    console.print(
        f"cases changed {s['cases_changed']}, members changed {s['members_changed']}, "
        f"effects added {s['effects_added']}, dropped {s['effects_dropped']}",
        markup=False,
    )
    for row in result["members"][:limit]:
        b, a = row["before"], row["after"]
        console.print(
            f"  member {row['member_id']}: {b['status']}, {b['warnings']} warnings -> "
            f"{a['status']}, {a['warnings']} warnings",
            markup=False,
        )
    for row in result["cases"][:limit]:
        b, a = row["before"] or {}, row["after"] or {}
        console.print(
            f"  case {row['case_id']}: {b.get('outcome')} {b.get('rules')} -> "
            f"{a.get('outcome')} {a.get('rules')}",
            markup=False,
        )
    for title in ("effects_by_kind", "rules", "clauses"):
        changed = {k: v for k, v in result[title].items() if v["before"] != v["after"]}
        if changed:
            console.print(f"{title.replace('_', ' ')}:", markup=False)
            for name, v in changed.items():
                console.print(f"  {name}: {v['before']} -> {v['after']}", markup=False)


def replay(
    policy: Annotated[
        Path, typer.Option("--policy", exists=True, dir_okay=False, help="The new policy TOML.")
    ],
    from_: Annotated[
        str | None, typer.Option("--from", help="Events at or after (RFC 3339).")
    ] = None,
    to: Annotated[str | None, typer.Option("--to", help="Events at or before (RFC 3339).")] = None,
    archive: Annotated[
        Path | None,
        typer.Option(
            exists=True, dir_okay=False, help="An exported archive (JSONL) instead of the store."
        ),
    ] = None,
    baseline: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="The current policy (default: ESAFETY_POLICY_PATH or shipped).",
        ),
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Move the clock on to this time after the last event.")
    ] = None,
    full: Annotated[
        bool, typer.Option(help="Decide every event, inert posts too (slower, same result).")
    ] = False,
    limit: Annotated[int, typer.Option(help="Rows of each list shown (text output).")] = 20,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Replay archived events under a new policy and show what would change."""
    start, end = parse_time(from_, "--from"), parse_time(to, "--to")
    moment = parse_time(until, "--until")
    new, current = _policy(policy), _policy(baseline)
    happened = None
    skipped: list[dict[str, Any]] = []
    if archive is not None:
        items, skipped = _from_file(archive, start, end)
    else:
        app = open_app(quiet=True)
        items = list(read_archive(app.store.client, app.store.keys.prefix, start=start, end=end))
        if start is None and end is None:
            happened = Snapshot.of_store(app.store, store_policy_version(app.store))
            moment = moment or app.clock.now()
    result = what_if(items, new, current, until=moment, happened=happened, full=full)
    result["skipped_lines"] = skipped
    result["window"] = {"from": from_, "to": to, "until": until}
    if json_out:
        print_json(result)
    else:
        _print(result, limit, Console())


def register(app: typer.Typer) -> None:
    app.command()(replay)
    from .bench_cmd import bench_app

    register_bench(bench_app)


def bench_process(
    members: Annotated[int, typer.Option(help="Members of the simulated group.")] = 1800,
    days: Annotated[int, typer.Option(help="Days simulated.")] = 365,
    seed: Annotated[int, typer.Option(help="Simulation seed.")] = 1,
    until_days: Annotated[
        float, typer.Option(help="Clock moved on this long after the last event.")
    ] = 31,
    messages: Annotated[int, typer.Option(help="Messages for the commit baselines.")] = 3000,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """A simulated year through ``process`` (embedded) and ``replay``, beside baselines."""
    from ...workflows.policy import default_policy
    from ..bench_year import (
        archive_of,
        commit_baselines,
        measure_process,
        measure_replay,
        simulated_lines,
        three_warnings,
    )
    from ..logs import configure_logging

    configure_logging("json", "WARNING")
    lines = simulated_lines(members, days, seed)
    before = commit_baselines(messages)
    app, processed = measure_process(lines, until_days=until_days)
    after = commit_baselines(messages)  # again: a machine whose load changed shows here
    baselines = {k: round((before[k] + after[k]) / 2) for k in before}
    policy = default_policy()
    replayed = measure_replay(archive_of(app), policy, three_warnings(policy))
    result = {
        "baselines": baselines,
        "baselines_before_and_after": [before, after],
        "process": processed,
        "replay": replayed,
        "ratio_process_to_stub_baseline": round(
            processed["events_per_s"] / baselines["stub_broker_lua_commit_per_s"], 3
        ),
        "ratio_replay_to_full": round(
            replayed["replay_new_policy_per_s"] / max(replayed["replay_full_per_s"], 1), 1
        ),
    }
    if json_out:
        print_json(result)
        return
    console = Console()
    console.print(
        f"{processed['events']} simulated events ({members} members, {days} days)", markup=False
    )
    console.print(
        f"process (embedded): {processed['events_per_s']}/s; baselines: StubBroker + one Lua "
        f"commit {baselines['stub_broker_lua_commit_per_s']}/s, the commit alone "
        f"{baselines['lua_commit_alone_per_s']}/s",
        markup=False,
    )
    console.print(
        f"replay (three warnings): {replayed['replay_new_policy_per_s']}/s; same policy "
        f"{replayed['replay_same_policy_per_s']}/s; deciding every event "
        f"{replayed['replay_full_per_s']}/s",
        markup=False,
    )


def bench_replay(
    archive: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Archive JSONL.")],
    policy: Annotated[
        Path | None, typer.Option(help="The new policy (default: three warnings instead of two).")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Replay an exported archive: new policy, same policy, and deciding every event."""
    from ..bench_year import measure_replay, three_warnings

    items, skipped = _from_file(archive, None, None)
    current = _policy(None)
    new = _policy(policy) if policy else three_warnings(current)
    result = measure_replay(items, current, new)
    result["skipped_lines"] = len(skipped)
    if json_out:
        print_json(result)
        return
    Console().print(
        f"replay of {result['events']} events: new policy {result['replay_new_policy_per_s']}/s, "
        f"same policy {result['replay_same_policy_per_s']}/s, deciding every event "
        f"{result['replay_full_per_s']}/s; difference {result['difference']}",
        markup=False,
    )


def register_bench(bench: typer.Typer) -> None:
    bench.command("process")(bench_process)
    bench.command("replay")(bench_replay)
