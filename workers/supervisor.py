"""``esafety worker``: N dramatiq worker processes, restarted if one dies.

dramatiq's own CLI does not restart a process that died; a safeguarding engine
must not quietly lose half its capacity, so the supervisor starts it again (after
a delay that doubles while a process keeps dying young, so a broken configuration
does not spin). SIGTERM is passed to every process, which finishes the messages
in flight and exits cleanly. With a metrics port, the supervisor serves every
process's Prometheus counters at ``/metrics`` and their liveness at ``/healthz``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from types import FrameType

import structlog

from .metrics import MetricsServer, prepare_multiprocess_dir

__all__ = ["Supervisor", "child_command"]

log = structlog.get_logger("esafety.supervisor")

#: a process that ran this long before dying is restarted after the base delay again
HEALTHY_AFTER_S = 30.0
MAX_RESTART_DELAY_S = 30.0
#: how long SIGTERMed processes get to finish their messages (each waits 30 s for its threads)
STOP_GRACE_S = 45.0


def child_command(threads: int, queues: Sequence[str]) -> list[str]:
    command = [sys.executable, "-m", "esafety.workers.worker_process", "--threads", str(threads)]
    if queues:
        command += ["--queues", ",".join(queues)]
    return command


class Supervisor:
    def __init__(
        self,
        processes: int,
        threads: int,
        queues: Sequence[str],
        restart_delay: float = 1.0,
        *,
        env: Mapping[str, str] | None = None,
        metrics_port: int | None = None,
        metrics_host: str = "127.0.0.1",
        metrics_dir: str | None = None,
    ) -> None:
        self.command = child_command(threads, queues)
        self.processes = processes
        self.restart_delay = restart_delay
        self.env = {**os.environ, **(env or {})}
        self.children: list[subprocess.Popen[bytes]] = []
        self.started: list[float] = []
        self.delays: list[float] = []
        self.stopping = False
        self.restarts = 0
        self.metrics: MetricsServer | None = None
        self.metrics_dir: str | None = None
        if metrics_port is not None:
            self.metrics_dir = metrics_dir or tempfile.mkdtemp(prefix="esafety-metrics-")
            self.env.update(prepare_multiprocess_dir(self.metrics_dir))
            self.metrics = MetricsServer(self.metrics_dir, metrics_host, metrics_port, self.healthy)

    def healthy(self) -> bool:
        """Every process is running (for ``/healthz`` and the orchestrator's probes)."""
        alive = sum(child.poll() is None for child in self.children)
        return not self.stopping and alive == self.processes

    def _stop(self, signum: int, _: FrameType | None) -> None:
        self.stopping = True
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    def _spawn(self) -> subprocess.Popen[bytes]:
        child = subprocess.Popen(self.command, env=self.env)
        log.info("worker.started", pid=child.pid)
        return child

    def _restart(self, index: int, code: int) -> None:
        child = self.children[index]
        lived = time.monotonic() - self.started[index]
        delay = self.restart_delay if lived >= HEALTHY_AFTER_S else self.delays[index]
        log.warning("worker.died", pid=child.pid, exit_code=code, restart_in_s=delay)
        if self.metrics_dir:
            MetricsServer.mark_dead(self.metrics_dir, child.pid)
        deadline = time.monotonic() + delay
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.stopping:
            return  # SIGTERM came while waiting: start nothing new
        self.children[index] = self._spawn()
        self.started[index] = time.monotonic()
        self.delays[index] = min(delay * 2, MAX_RESTART_DELAY_S)
        self.restarts += 1

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        if self.metrics is not None:
            self.metrics.start()
            log.info("metrics.serving", port=self.metrics.port)
        self.children = [self._spawn() for _ in range(self.processes)]
        self.started = [time.monotonic()] * self.processes
        self.delays = [self.restart_delay] * self.processes
        while not self.stopping:
            time.sleep(0.2)
            for index, child in enumerate(self.children):
                code = child.poll()
                if code is not None and not self.stopping:
                    self._restart(index, code)
        return self._wait()

    def _wait(self) -> int:
        failed = 0
        deadline = time.monotonic() + STOP_GRACE_S
        for child in self.children:
            try:
                code = child.wait(timeout=max(0.1, deadline - time.monotonic()))
                failed += code not in (0, -signal.SIGTERM)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
                failed += 1
        if self.metrics is not None:
            self.metrics.stop()
        log.info("supervisor.stopped", failed=failed, restarts=self.restarts)
        return 1 if failed else 0
