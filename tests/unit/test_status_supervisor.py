"""The supervisor with stand-in children (no Redis): restarts, backoff, SIGTERM, /healthz.

The real worker processes are exercised in ``tests/integration/test_ops.py``.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from esafety.workers.supervisor import Supervisor

DIES = [sys.executable, "-c", "raise SystemExit(3)"]
SERVES = [
    sys.executable,
    "-c",
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\n"
    "time.sleep(60)\n",
]


def _stop_after(seconds: float) -> threading.Timer:
    timer = threading.Timer(seconds, os.kill, args=(os.getpid(), signal.SIGTERM))
    timer.start()
    return timer


def _run(supervisor: Supervisor) -> int:
    previous = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    try:
        return supervisor.run()
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])


def test_a_dying_process_is_restarted_with_a_growing_delay() -> None:
    supervisor = Supervisor(1, 1, [], restart_delay=0.05)
    supervisor.command = DIES
    _stop_after(1.5)
    _run(supervisor)
    assert 2 <= supervisor.restarts <= 6  # 0.05, 0.1, 0.2, 0.4, 0.8 s: not a fixed pace
    assert supervisor.delays[0] == 0.05 * 2**supervisor.restarts


def test_sigterm_stops_every_process_and_exits_zero() -> None:
    supervisor = Supervisor(2, 1, [])
    supervisor.command = SERVES
    _stop_after(1.0)
    began = time.monotonic()
    assert _run(supervisor) == 0
    assert time.monotonic() - began < 10
    assert all(child.poll() == 0 for child in supervisor.children)
    assert supervisor.restarts == 0


def _health(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_healthz_and_metrics_from_the_multiprocess_dir(tmp_path: Path) -> None:
    (tmp_path / "counter_999999.db").write_bytes(b"stale")  # an earlier run's file: removed
    supervisor = Supervisor(1, 1, [], metrics_port=0, metrics_dir=str(tmp_path))
    supervisor.command = SERVES
    assert supervisor.env["PROMETHEUS_MULTIPROC_DIR"] == str(tmp_path)
    assert not (tmp_path / "counter_999999.db").exists()
    assert supervisor.metrics is not None
    port = supervisor.metrics.port
    seen: list[int] = []

    def probe() -> None:
        time.sleep(0.8)
        seen.append(_health(port))
        supervisor.children[0].kill()  # dead until restarted: unhealthy meanwhile
        supervisor.children[0].wait()
        seen.append(_health(port))
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            seen.append(int(reply.status))
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=probe).start()
    _run(supervisor)
    assert seen == [200, 503, 200]
