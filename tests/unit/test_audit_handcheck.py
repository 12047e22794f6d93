"""The README's by-hand check of an exported chain (jq, sha256sum, openssl) works as written."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from esafety.workers.app import build_app
from esafety.workers.audit_export import export_lines, read_store
from esafety.workers.clock import VirtualClock
from esafety.workers.process import Processor
from esafety.workers.settings import Settings

from tests.conftest import EXAMPLES, NOW

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_script() -> str:
    section = README.read_text().split("## Check the audit trail", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    return next(b for b in blocks if "openssl pkeyutl" in b)


TOOLS = ("jq", "openssl", "sha256sum", "base64")


def test_readme_hand_check_of_an_export(tmp_path: Path) -> None:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:  # under CI the check by hand must run, not skip
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and the README's hand check needs {', '.join(missing)}")
        pytest.skip(f"needs {', '.join(missing)}")
    app = build_app(Settings(redis_url=None), embedded=True, clock=VirtualClock())
    with Processor(app) as processor:
        processor.run((EXAMPLES / "demo.jsonl").read_text().splitlines())
    signer = app.engine.heads.get()  # type: ignore[union-attr]
    lines = export_lines(read_store(app.store), keys={signer.key_id: signer.public_pem}, now=NOW)
    (tmp_path / "audit.jsonl").write_text("\n".join(lines) + "\n")
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", readme_script()],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert out[0] == signer.key_id
    rows = [line.split() for line in out[1:-1]]
    assert len(rows) == len(app.store.audit("post:p-101")) == 3
    prev = "0" * 64
    for computed, stored, _, claimed_prev in rows:
        assert computed == stored and claimed_prev == prev
        prev = stored
    head = json.loads((tmp_path / "head.json").read_text())
    assert head["hash"] == prev and head["seq"] == 3
    assert "Signature Verified Successfully" in out[-1]
