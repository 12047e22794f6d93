"""Real worker processes against the real Redis, each test on fresh key prefixes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import REDIS_URL


@pytest.fixture
def worker_env(prefix: str, tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "ESAFETY_REDIS_URL": REDIS_URL,
            "ESAFETY_KEY_PREFIX": prefix,
            "ESAFETY_BROKER_NAMESPACE": f"{prefix}-dq",
            "ESAFETY_NOTIFIER": f"file:{tmp_path / 'notices.jsonl'}",
            "ESAFETY_LOG_FORMAT": "json",
        }
    )
    return env


def esafety(*args: str) -> list[str]:
    return [sys.executable, "-m", "esafety", *args]


@pytest.fixture
def start_workers(
    worker_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> subprocess.Popen[bytes]:
        log = open(tmp_path / f"worker-{len(started)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            esafety("worker", *args), env=worker_env, stdout=log, stderr=subprocess.STDOUT
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in started:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def wait_for(condition: Callable[[], bool], timeout: float = 60.0, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout} s")
