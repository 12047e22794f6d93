"""Prometheus metrics: dramatiq's own and the engine's, from every worker process.

Multiprocess mode, one endpoint per supervisor: ``esafety worker`` gives its
processes a fresh ``PROMETHEUS_MULTIPROC_DIR``; each process writes its counters
there (mmap files, no network) and the supervisor serves the sum at
``/metrics``. Chosen over one port per process because a pod or host is then one
scrape target whatever ``--processes`` says, and the counts of a process that
died and was restarted stay in the totals instead of resetting.

What is counted lives here, never in actors (STYLE 9): a dramatiq middleware
times publish-to-decision, the engine's :class:`Observer` hook counts events,
cases, decisions and audit entries after each commit, and a notifier wrapper
counts deliveries.
"""

from __future__ import annotations

import glob
import os
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import dramatiq
from prometheus_client import CollectorRegistry, Counter, Histogram

from ..workflows.alerts import MISSED_TRIGGER
from ..workflows.ids import CaseKind, EffectKind, State
from ..workflows.model import Case, Decision, Effect
from .notifier import Notifier

if TYPE_CHECKING:
    from .app import App

__all__ = [
    "LATENCY_BUCKETS",
    "EngineMetrics",
    "MeteredNotifier",
    "MetricsServer",
    "install_metrics",
    "prepare_multiprocess_dir",
]

#: seconds; fine at the low end, where the target (p99 < 50 ms) is.
LATENCY_BUCKETS = (
    0.002,
    0.005,
    0.01,
    0.02,
    0.03,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
)


class EngineMetrics(dramatiq.Middleware):  # type: ignore[misc]
    """The engine's counters; a dramatiq middleware and the engine's observer."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        event_actor: str = "handle_event",
        now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.registry = registry or CollectorRegistry()
        self.event_actor = event_actor
        self.now_ms = now_ms
        reg = self.registry
        self.events = Counter("esafety_events", "Events by result.", ["result"], registry=reg)
        self.opened = Counter(
            "esafety_cases_opened", "Cases opened, by kind.", ["kind"], registry=reg
        )
        self.closed = Counter(
            "esafety_cases_closed",
            "Cases closed, by kind and outcome.",
            ["kind", "outcome"],
            registry=reg,
        )
        self.decisions = Counter(
            "esafety_decisions",
            "Committed decisions, by rule id ('none').",
            ["rule"],
            registry=reg,
        )
        self.audit = Counter("esafety_audit_entries", "Audit entries written.", registry=reg)
        self.missed = Counter(
            "esafety_deadlines_missed",
            "Deadlines that passed unanswered (an alert not acknowledged, a complaint not "
            "answered); each repeats the alert up the chain. By case kind.",
            ["kind"],
            registry=reg,
        )
        self.delivered = Counter(
            "esafety_effects_delivered", "Effects delivered, by kind.", ["kind"], registry=reg
        )
        self.failed = Counter(
            "esafety_effects_failed",
            "Effect deliveries that raised, by kind.",
            ["kind"],
            registry=reg,
        )
        self.relayed = Counter(
            "esafety_outbox_relayed",
            "Effects the outbox relay sent again because their message was gone.",
            registry=reg,
        )
        # every series an alert reads starts at 0: Prometheus takes a series that first
        # appears at 1 for no increase, and the first missed deadline would not page
        for result in ("accepted", "duplicates", "quarantined"):
            self.events.labels(result)
        for kind in CaseKind:
            self.missed.labels(kind.value)
        for effect in EffectKind:
            self.failed.labels(effect.value)
            self.delivered.labels(effect.value)
        self.latency = Histogram(
            "esafety_publish_to_decision_seconds",
            "From publish (message timestamp) to the event's decision committed.",
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )

    # -- the engine's Observer ------------------------------------------------
    def counted(self, counter: str) -> None:
        self.events.labels(counter).inc()

    def committed(self, decision: Decision, before: Case | None) -> None:
        case = decision.case
        if case is not None and before is None:
            self.opened.labels(case.kind.value).inc()
        if (
            case is not None
            and case.state is State.CLOSED
            and (before is None or before.state is not State.CLOSED)
        ):
            self.closed.labels(case.kind.value, case.outcome.value).inc()
        if decision.audit:
            rules = sorted({rule for entry in decision.audit for rule in entry.rules})
            for rule in rules or ["none"]:
                self.decisions.labels(rule).inc()
            self.audit.inc(len(decision.audit))
            missed = sum(1 for entry in decision.audit if entry.trigger == MISSED_TRIGGER)
            if missed and case is not None:
                self.missed.labels(case.kind.value).inc(missed)

    # -- dramatiq middleware ----------------------------------------------------
    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: dramatiq.Message[Any],
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if exception is None and message.actor_name == self.event_actor:
            waited = self.now_ms() - message.message_timestamp
            self.latency.observe(max(0, waited) / 1000)


class MeteredNotifier:
    """Wraps the real notifier: counts each effect delivered, or failed (and re-raises)."""

    def __init__(self, inner: Notifier, metrics: EngineMetrics) -> None:
        self.inner = inner
        self.metrics = metrics

    def deliver(self, effect: Effect, *, delivered_at: str) -> None:
        try:
            self.inner.deliver(effect, delivered_at=delivered_at)
        except Exception:
            self.metrics.failed.labels(effect.kind.value).inc()
            raise
        self.metrics.delivered.labels(effect.kind.value).inc()


def install_metrics(app: App, registry: CollectorRegistry | None = None) -> EngineMetrics:
    """Add dramatiq's Prometheus middleware and the engine's metrics to a worker's app.

    Call before ``process_boot`` is emitted: dramatiq's middleware sets itself up then.
    Its own exposition server is not started (that is dramatiq's CLI's job); the
    supervisor serves every process's files instead.
    """
    from dramatiq.middleware.prometheus import Prometheus

    metrics = EngineMetrics(registry)
    app.broker.add_middleware(Prometheus())
    app.broker.add_middleware(metrics)
    app.engine.observer = metrics
    app.engine.notifier = MeteredNotifier(app.engine.notifier, metrics)
    app.notifier = app.engine.notifier
    return metrics


def prepare_multiprocess_dir(path: str) -> dict[str, str]:
    """Empty ``path`` of an earlier run's files; the environment a worker process needs.

    ``PROMETHEUS_MULTIPROC_DIR`` must be set before ``prometheus_client`` is
    imported, so it goes in the child's environment, never set at run time.
    """
    os.makedirs(path, exist_ok=True)
    for stale in glob.glob(os.path.join(path, "*.db")):
        os.remove(stale)
    return {
        "PROMETHEUS_MULTIPROC_DIR": path,
        "dramatiq_prom_db": path,
        "ESAFETY_METRICS_DIR": path,
    }


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector

        if self.path.startswith("/healthz"):
            healthy = self.server.healthy()
            self._reply(200 if healthy else 503, b"ok\n" if healthy else b"unhealthy\n")
            return
        if not self.path.startswith("/metrics"):
            self._reply(404, b"try /metrics or /healthz\n")
            return
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.server.directory)  # type: ignore[no-untyped-call]
        self._reply(200, generate_latest(registry), CONTENT_TYPE_LATEST)

    def _reply(self, code: int, body: bytes, content_type: str = "text/plain") -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return  # scrapes every few seconds are not worth a log line


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], directory: str, healthy: Callable[[], bool]
    ) -> None:
        super().__init__(address, _Handler)
        self.directory = directory
        self.healthy = healthy


class MetricsServer:
    """``/metrics`` (the sum over every process's files) and ``/healthz`` (all processes up)."""

    def __init__(self, directory: str, host: str, port: int, healthy: Callable[[], bool]) -> None:
        self.server = _Server((host, port), directory, healthy)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> MetricsServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @staticmethod
    def mark_dead(directory: str, pid: int) -> None:
        """A process died: drop its live gauges (its counters stay in the totals)."""
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]
