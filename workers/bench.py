"""``esafety bench``: end-to-end capacity of the workers, beside a dramatiq no-op actor.

How it measures, and why:

- The events are the simulator's realistic mix (``simulate.py``: mostly benign
  chatter, a few percent of breaches, photos, complaints, allegations, reviews,
  appeals, registers), dated from now so deadlines lie ahead as they would live.
  Reviews and appeals are held back ``HOLD`` events: in real time they come hours
  after their case, and compressed into seconds they would mostly meet a case that
  does not exist yet and be retried.
- **Throughput** is the drain rate of a backlog: N messages are published first,
  then P worker processes start and the rate is (N - 1) over the time from the
  first to the last message done (follow-up deliveries, commands included). A
  publisher running beside the workers would share this machine's CPUs with them
  and measure itself as much as the workers.
- **Latency** is publish to decision (the message's timestamp to the end of
  ``handle_event``, after the commit) for messages published at a steady rate,
  half the measured maximum, into running workers.
- The **baseline** is a dramatiq actor that does nothing, sent the same bodies,
  on the same broker, with the same worker settings, in the same run.
- **Memory** is each worker process's peak resident set (``VmHWM``) after its run.

The worker processes run ``worker_process.run`` (the code ``esafety worker``
runs) with one extra middleware that records each message's times in Redis.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dramatiq
import redis

from .settings import Settings

__all__ = [
    "HOLD",
    "TARGETS",
    "BenchConfig",
    "LatencyRecorder",
    "Progress",
    "RunResult",
    "bench_events",
    "iter_rows",
    "main",
    "percentile",
    "run_bench",
]

HOLD = 2000
#: what a bench worker runs: the engine, a no-op actor, or the engine's store work alone
TARGETS = ("engine", "noop", "floor")
DEFERRED = ("esafety.case.reviewed", "esafety.appeal.lodged")
Progress = Callable[[str, int, int], None]


def bench_events(count: int, seed: int = 7, start: datetime | None = None) -> list[str]:
    """``count`` JSON lines of the simulator's mix, reviews and appeals held back."""
    from .simulate import simulate

    members = max(50, count // 10)
    held: deque[tuple[int, dict[str, Any]]] = deque()
    out: list[str] = []
    stream = simulate(members, 3650, seed, start=start or datetime.now(UTC))
    for index, event in enumerate(stream):
        while held and held[0][0] <= index:
            out.append(json.dumps(held.popleft()[1]))
        if len(out) >= count:
            break
        if event["type"] in DEFERRED:
            held.append((index + HOLD, event))
        else:
            out.append(json.dumps(event))
    return out[:count]


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (``share`` in 0..1) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(share * len(ordered))))
    return ordered[rank - 1]


class LatencyRecorder(dramatiq.Middleware):  # type: ignore[misc]
    """Records ``published_ms,done_ms`` of each message in a Redis list per actor
    (``<key>:<actor>``, so the bench counts what is done with one LLEN).

    Appends are in memory; a thread writes them every 100 ms, so the worker's
    threads pay one list append per message, not a round trip.
    """

    def __init__(self, client: redis.Redis, key: str) -> None:
        self.client = client
        self.key = key
        self.pending: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: dramatiq.Message[Any],
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        done = int(time.time() * 1000)
        self.pending.append((message.actor_name, f"{message.message_timestamp},{done}"))

    def _flush(self) -> None:
        with self.lock:
            batch, self.pending = self.pending, []
        by_actor: dict[str, list[str]] = {}
        for actor, sample in batch:
            by_actor.setdefault(actor, []).append(sample)
        if by_actor:
            pipe = self.client.pipeline(transaction=False)
            for actor, samples in by_actor.items():
                pipe.rpush(f"{self.key}:{actor}", *samples)
            pipe.execute()

    def _loop(self) -> None:
        while not self.stop.wait(0.1):
            self._flush()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self.stop.set()

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._flush()


# -- the worker processes the bench starts ------------------------------------------------
def _noop_worker(settings: Settings, threads: int, key: str) -> int:
    from dramatiq.brokers.redis import RedisBroker

    from .broker import StageWorker

    assert settings.redis_url is not None
    url = settings.redis_url.get_secret_value()
    broker = RedisBroker(url=url, namespace=settings.broker_namespace)
    broker.add_middleware(LatencyRecorder(redis.Redis.from_url(url), key))

    def noop(body: str, line: int | None = None) -> None:
        return None

    dramatiq.actor(noop, broker=broker, actor_name="noop", queue_name="events")
    broker.emit_after("process_boot")
    worker = StageWorker(
        broker,
        prefetch=settings.prefetch_by_queue,
        default_prefetch=settings.queue_prefetch,
        worker_threads=threads,
        worker_timeout=settings.worker_timeout_ms,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    worker.start()
    stop.wait()
    worker.stop(timeout=30_000)
    broker.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m esafety.workers.bench TARGET --threads N --key K`` (bench's own workers)."""
    parser = argparse.ArgumentParser(prog="esafety-bench-worker")
    parser.add_argument("target", choices=TARGETS)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--key", required=True)
    args = parser.parse_args(argv)
    settings = Settings()
    if args.target == "noop":
        return _noop_worker(settings, args.threads, args.key)
    from .logs import configure_logging
    from .worker_process import run

    configure_logging(settings.log_format, settings.log_level)
    assert settings.redis_url is not None
    recorder = LatencyRecorder(
        redis.Redis.from_url(settings.redis_url.get_secret_value()), args.key
    )
    prepare = _install_floor if args.target == "floor" else None
    return run(settings, args.threads, None, extra_middleware=[recorder], prepare=prepare)


def _install_floor(app: Any) -> None:
    """The floor's template: the mix's first post, under ids of this process's own."""
    from .bench_floor import install_floor

    post = next(line for line in bench_events(200) if '"esafety.post.submitted"' in line)
    fields = json.loads(post)
    unique = uuid.uuid4().hex[:8]
    for old in (fields["id"], fields["data"]["post_id"], fields["data"]["member_id"]):
        post = post.replace(old, f"{old}-{unique}")
    install_floor(app, post)


# -- one run: a target on P processes ---------------------------------------------------------
@dataclass
class BenchConfig:
    events: int = 20_000
    processes: tuple[int, ...] = (1, 2)
    threads: int = 8
    paced_seconds: float = 10.0
    seed: int = 7
    env: dict[str, str] = field(default_factory=dict)
    #: also measure the store floor (``bench_floor.py``): the engine's Redis work alone
    floor: bool = False


@dataclass
class RunResult:
    target: str
    processes: int
    messages: int
    publish_per_s: float
    drain_per_s: float
    paced_per_s: float = 0.0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    rss_mb: list[float] = field(default_factory=list)


def _rss_mb(pid: int) -> float:
    """Peak resident set of a process in MB (``VmHWM``), 0 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


class _Run:
    """A fresh namespace on the configured Redis, its workers, its samples; cleaned after."""

    def __init__(self, settings: Settings, config: BenchConfig, target: str, procs: int) -> None:
        assert settings.redis_url is not None
        self.url = settings.redis_url.get_secret_value()
        self.client = redis.Redis.from_url(self.url)
        self.target, self.procs, self.config = target, procs, config
        self.main_actor = "noop" if target == "noop" else "handle_event"
        self.name = f"esafety-bench-{uuid.uuid4().hex[:8]}"
        self.key = f"{self.name}:samples"
        self.children: list[subprocess.Popen[bytes]] = []
        self.notices = Path(f"/tmp/{self.name}-notices.jsonl")
        self.log = Path(f"/tmp/{self.name}-workers.log")
        self.env = {
            **os.environ,
            **config.env,
            "ESAFETY_REDIS_URL": self.url,
            "ESAFETY_KEY_PREFIX": self.name,
            "ESAFETY_BROKER_NAMESPACE": f"{self.name}-dq",
            "ESAFETY_NOTIFIER": f"file:{self.notices}",
        }
        for unset in ("ESAFETY_BROKER_URL", "ESAFETY_METRICS_PORT", "ESAFETY_METRICS_DIR"):
            self.env.pop(unset, None)
        self._app: Any = None

    def app(self) -> Any:
        """The bench's view of its store and queues (built once: the policy compiles)."""
        if self._app is None:
            from .app import build_app

            self._app = build_app(self.settings())
        return self._app

    def settings(self) -> Settings:
        return Settings(
            redis_url=self.url,
            key_prefix=self.name,
            broker_namespace=f"{self.name}-dq",
            notifier=f"file:{self.notices}",
        )

    def start(self) -> None:
        command = [sys.executable, "-m", "esafety.workers.bench", self.target]
        command += ["--threads", str(self.config.threads), "--key", self.key]
        with self.log.open("ab") as log:
            for _ in range(self.procs):
                self.children.append(
                    subprocess.Popen(command, env=self.env, stdout=log, stderr=log)
                )

    def done(self, actor: str) -> int:
        return int(self.client.llen(f"{self.key}:{actor}"))

    def samples(self, actor: str, start: int = 0) -> list[tuple[int, int]]:
        """(published_ms, done_ms) of ``actor``'s messages, from the ``start``-th on."""
        out = []
        for raw in self.client.lrange(f"{self.key}:{actor}", start, -1):
            published, done = raw.decode().split(",")
            out.append((int(published), int(done)))
        return out

    def all_done_ms(self) -> list[int]:
        """When each message of every actor was done (follow-up messages included)."""
        return [
            done
            for key in self.client.scan_iter(match=f"{self.key}:*")
            for _, done in self.samples(key.decode().rsplit(":", 1)[1])
        ]

    def stop(self) -> list[float]:
        rss = [_rss_mb(child.pid) for child in self.children]
        for child in self.children:
            child.send_signal(signal.SIGTERM)
        for child in self.children:
            try:
                child.wait(timeout=60)
            except subprocess.TimeoutExpired:
                child.kill()
        return rss

    def clean(self) -> None:
        """Remove the run's keys and files; a failure here must not hide the run's own."""
        try:
            for pattern in (f"{self.name}:*", f"{self.name}-dq:*"):
                keys = list(self.client.scan_iter(match=pattern, count=1000))
                for chunk in range(0, len(keys), 500):
                    self.client.delete(*keys[chunk : chunk + 500])
        except redis.RedisError as exc:
            print(f"bench: keys {self.name}:* left behind ({type(exc).__name__})", file=sys.stderr)
        self.notices.unlink(missing_ok=True)
        self.log.unlink(missing_ok=True)


# -- publishing -----------------------------------------------------------------------------
def _sender(run: _Run) -> tuple[Callable[[str], None], Callable[[], None]]:
    """How one line is published for this target, and how to close the publisher."""
    from dramatiq.brokers.redis import RedisBroker

    if run.target == "noop":
        broker = RedisBroker(url=run.url, namespace=f"{run.name}-dq")

        def noop(body: str, line: int | None = None) -> None:
            return None

        actor = dramatiq.actor(noop, broker=broker, actor_name="noop", queue_name="events")
        return (lambda line: actor.send(line, None)), broker.close
    app = run.app()

    def send(line: str) -> None:
        app.publish(line)

    return send, app.broker.close


def _publish(
    send: Callable[[str], None], lines: list[str], rate: float | None, progress: Progress
) -> float:
    """Publish every line (at ``rate`` per second if given); returns the rate achieved."""
    began = time.perf_counter()
    for index, line in enumerate(lines):
        if rate:
            wait = began + index / rate - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
        send(line)
        if index % 500 == 0:
            progress("publish", index, len(lines))
    progress("publish", len(lines), len(lines))
    return len(lines) / max(time.perf_counter() - began, 1e-9)


def _wait_done(run: _Run, first: int, expected: int, progress: Progress) -> None:
    """Until ``expected`` main messages are done, then (engine) until the queues drain."""
    deadline = time.monotonic() + max(120.0, expected / 50)
    done = 0
    while time.monotonic() < deadline:
        dead = [c.returncode for c in run.children if c.poll() is not None]
        if dead:
            tail = run.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{run.target}: a worker process exited ({dead}):\n{tail}")
        done = run.done(run.main_actor) - first
        progress("drain", done, expected)
        if done >= expected and _drained(run):
            return
        time.sleep(0.25)
    raise TimeoutError(f"{run.target}: {done} of {expected} messages done in time")


def _drained(run: _Run) -> bool:
    if run.target == "noop":
        return True
    from .status import collect_status, drained

    return drained(collect_status(run.app()))


# -- the phases -----------------------------------------------------------------------------
def _measure(
    settings: Settings, config: BenchConfig, target: str, procs: int, lines: list[str],
    progress: Progress,
) -> RunResult:  # fmt: skip
    run = _Run(settings, config, target, procs)
    send, close = _sender(run)
    try:
        publish_rate = _publish(send, lines, None, progress)
        run.start()
        _wait_done(run, 0, len(lines), progress)
        done_ms = run.all_done_ms()
        span_s = (max(done_ms) - min(done_ms)) / 1000
        events = run.done(run.main_actor)
        drain = (events - 1) / max(span_s, 1e-9)  # events/s; follow-up messages in the span
        result = RunResult(target, procs, len(lines), round(publish_rate), round(drain))
        _paced(run, send, lines, result, progress)
        result.rss_mb = run.stop()
        return result
    finally:
        close()
        run.stop()
        run.clean()


def _paced(
    run: _Run, send: Callable[[str], None], lines: list[str], result: RunResult,
    progress: Progress,
) -> None:  # fmt: skip
    """Half the measured maximum, for ``paced_seconds``: publish-to-decision latency."""
    rate = max(1.0, result.drain_per_s / 2)
    count = max(100, min(len(lines), int(rate * run.config.paced_seconds)))
    first = run.done(run.main_actor)
    fresh = [_renamed(line, "paced") for line in lines[:count]]
    result.paced_per_s = round(_publish(send, fresh, rate, progress))
    _wait_done(run, first, count, progress)
    waits = [float(done - sent) for sent, done in run.samples(run.main_actor, first)]
    result.p50_ms = percentile(waits, 0.50)
    result.p95_ms = percentile(waits, 0.95)
    result.p99_ms = percentile(waits, 0.99)


def _renamed(line: str, tag: str) -> str:
    """The same event under a new id (and its ids), so it is new work, not a duplicate."""
    return line.replace('"id": "sim', f'"id": "{tag}-sim').replace("-00", f"-{tag}-00")


def run_bench(
    settings: Settings, config: BenchConfig, progress: Progress | None = None
) -> dict[str, Any]:
    """Every target on every process count; the ratios to the no-op baseline."""
    if settings.redis_url is None:
        raise ValueError("bench needs ESAFETY_REDIS_URL")
    report = progress or (lambda phase, done, total: None)
    lines = bench_events(config.events, config.seed)
    runs: list[RunResult] = []
    for procs in config.processes:
        for target in ("noop", "floor", "engine") if config.floor else ("noop", "engine"):
            runs.append(_measure(settings, config, target, procs, lines, report))
    return _summary(config, runs)


def _summary(config: BenchConfig, runs: list[RunResult]) -> dict[str, Any]:
    rows = [asdict(r) for r in runs]
    ratios: dict[str, float] = {}
    floors: dict[str, float] = {}
    for procs in config.processes:
        pair = {r.target: r for r in runs if r.processes == procs}
        noop = max(pair["noop"].drain_per_s, 1)
        ratios[str(procs)] = round(pair["engine"].drain_per_s / noop, 2)
        if "floor" in pair:
            floors[str(procs)] = round(pair["floor"].drain_per_s / noop, 2)
    summary: dict[str, Any] = {
        "events": config.events,
        "threads": config.threads,
        "runs": rows,
        "ratio_engine_to_noop": ratios,
        "method": "drain of a published backlog; latency at half the measured maximum",
    }
    if floors:
        summary["ratio_floor_to_noop"] = floors
    return summary


def iter_rows(summary: dict[str, Any]) -> Iterator[list[str]]:
    for row in summary["runs"]:
        yield [
            row["target"],
            str(row["processes"]),
            str(row["drain_per_s"]),
            f"{row['p50_ms']:.0f} / {row['p95_ms']:.0f} / {row['p99_ms']:.0f}",
            str(row["paced_per_s"]),
            ", ".join(f"{mb:.0f}" for mb in row["rss_mb"]),
        ]


if __name__ == "__main__":
    raise SystemExit(main())
