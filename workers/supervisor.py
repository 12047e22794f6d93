"""``esafety worker``: N dramatiq worker processes, restarted if one dies.

dramatiq's own CLI does not restart a process that died; a safeguarding engine
must not quietly lose half its capacity, so the supervisor starts it again.
SIGTERM is passed to every process, which finishes the messages in flight and
exits cleanly.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType

import structlog

__all__ = ["Supervisor", "child_command"]

log = structlog.get_logger("esafety.supervisor")


def child_command(threads: int, queues: Sequence[str]) -> list[str]:
    command = [sys.executable, "-m", "esafety.workers.worker_process", "--threads", str(threads)]
    if queues:
        command += ["--queues", ",".join(queues)]
    return command


class Supervisor:
    def __init__(
        self, processes: int, threads: int, queues: Sequence[str], restart_delay: float = 1.0
    ) -> None:
        self.command = child_command(threads, queues)
        self.processes = processes
        self.restart_delay = restart_delay
        self.children: list[subprocess.Popen[bytes]] = []
        self.stopping = False
        self.restarts = 0

    def _stop(self, signum: int, _: FrameType | None) -> None:
        self.stopping = True
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    def _spawn(self) -> subprocess.Popen[bytes]:
        child = subprocess.Popen(self.command)
        log.info("worker.started", pid=child.pid)
        return child

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        self.children = [self._spawn() for _ in range(self.processes)]
        while not self.stopping:
            time.sleep(0.2)
            for index, child in enumerate(self.children):
                code = child.poll()
                if code is not None and not self.stopping:
                    log.warning("worker.died", pid=child.pid, exit_code=code)
                    time.sleep(self.restart_delay)
                    self.children[index] = self._spawn()
                    self.restarts += 1
        failed = 0
        for child in self.children:
            try:
                failed += child.wait(timeout=60) not in (0, -signal.SIGTERM)
            except subprocess.TimeoutExpired:
                child.kill()
                failed += 1
        return 1 if failed else 0
