"""``bench``: measure capacity. With no subcommand, the pipeline bench (workers/bench.py).

Other benches (``bench screening``) add themselves to ``bench_app`` as subcommands.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from .. import bench as pipeline
from .common import fail, print_json, settings

__all__ = ["bench_app", "pipeline_bench", "register", "screening_bench"]

bench_app = typer.Typer(
    help="Measure capacity (no subcommand: the pipeline against a dramatiq no-op actor).",
    no_args_is_help=False,
)


@contextmanager
def _bar(show: bool) -> Iterator[pipeline.Progress]:
    if not show:
        yield lambda phase, done, total: None
        return
    columns = (TextColumn("{task.description:>22}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("", total=1)
        run = {"n": 0}

        def update(phase: str, done: int, total: int) -> None:
            if phase == "publish" and done == 0:
                run["n"] += 1
            bar.update(task, description=f"run {run['n']}: {phase}", completed=done, total=total)

        yield update


def _table(summary: dict[str, object], console: Console) -> None:
    table = Table(title=f"esafety bench: {summary['events']} events, {summary['threads']} threads")
    columns = ("target", "procs", "events/s", "p50/p95/p99 ms", "at /s", "peak RSS MB")
    for column in columns:
        table.add_column(column, justify="left" if column == "target" else "right")
    for row in pipeline.iter_rows(summary):
        table.add_row(*row)
    console.print(table)
    ratios = summary["ratio_engine_to_noop"]
    assert isinstance(ratios, dict)
    for procs, ratio in ratios.items():
        console.print(f"engine / no-op throughput, {procs} process(es): {ratio}")
    floors = summary.get("ratio_floor_to_noop", {})
    assert isinstance(floors, dict)
    for procs, ratio in floors.items():
        console.print(f"store floor / no-op throughput, {procs} process(es): {ratio}")
    console.print(f"({summary['method']})")


@bench_app.callback(invoke_without_command=True)
def pipeline_bench(
    ctx: typer.Context,
    events: Annotated[int, typer.Option(min=100, help="Events per run.")] = 20_000,
    processes: Annotated[str, typer.Option(help="Worker process counts to run.")] = "1,2",
    threads: Annotated[int, typer.Option(min=1, help="Threads per worker process.")] = 8,
    paced_seconds: Annotated[float, typer.Option(help="Length of the latency run.")] = 10.0,
    seed: Annotated[int, typer.Option(help="Simulator seed.")] = 7,
    floor: Annotated[
        bool,
        typer.Option(
            "--floor",
            help="Also run the store floor: the engine's Redis work for a post, no decision.",
        ),
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    progress: Annotated[bool | None, typer.Option(help="Progress bar (default: tty).")] = None,
) -> None:
    """Events/s and publish-to-decision latency on 1 and 2 processes, beside a no-op actor."""
    if ctx.invoked_subcommand is not None:
        return
    current = settings()
    if current.embedded:
        fail("bench runs real workers: set ESAFETY_REDIS_URL (a Redis it may write to)", 2)
    try:
        counts = tuple(int(p) for p in processes.split(",") if p)
    except ValueError:
        fail(f"--processes {processes!r}: use a list such as 1,2", 2)
    config = pipeline.BenchConfig(events, counts, threads, paced_seconds, seed, floor=floor)
    show = sys.stderr.isatty() if progress is None else progress
    with _bar(show) as update:
        summary = pipeline.run_bench(current, config, update)
    if json_out:
        print_json(summary)
    else:
        _table(summary, Console())


@bench_app.command("screening")
def screening_bench(
    posts: Annotated[int, typer.Option(min=100, help="Posts of 300 characters.")] = 20_000,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    cpu: Annotated[
        bool, typer.Option(help="Time by this process's CPU seconds (a busy, shared machine).")
    ] = False,
) -> None:
    """Posts screened per second on one core, beside a naive one-regex-per-word baseline."""
    from ...workflows.policy import default_policy, load_policy
    from ..bench_screening import run_screening_bench

    path = settings().policy_path
    result = run_screening_bench(load_policy(path) if path else default_policy(), posts, cpu=cpu)
    if json_out:
        print_json(result.as_dict())
        return
    console = Console()
    console.print(
        f"screening: {result.ours_per_s:,.0f} posts/s; naive baseline "
        f"({result.baseline_patterns} patterns): {result.baseline_per_s:,.0f} posts/s; "
        f"ratio {result.ratio:.1f}x  [{result.posts} posts of {result.post_chars} chars, "
        f"{result.breach_share:.0%} with a breach; one process, one thread, "
        f"{result.clock} clock]",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.add_typer(bench_app, name="bench")
