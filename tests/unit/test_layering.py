"""Dependencies point one way (STYLE.md, Shape 1): ``workers -> workflows -> events``.

The pure layers never touch redis, dramatiq, the environment or the system clock,
so a policy can be replayed over recorded events in a plain function call. This
walks the syntax tree of every module, so an import hidden in a function counts.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN_MODULES = {"redis", "dramatiq", "fakeredis", "structlog", "typer", "requests", "socket"}
FORBIDDEN_CALLS = {
    ("time", "time"),
    ("time", "time_ns"),
    ("time", "monotonic"),
    ("time", "perf_counter"),
    ("time", "localtime"),
    ("time", "gmtime"),
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
    ("os", "environ"),
    ("os", "getenv"),
}


def _modules(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def _imports(tree: ast.AST, path: Path, root: Path) -> list[str]:
    """Absolute names of every import in the module, relative ones resolved."""
    package = path.relative_to(root).parent.parts
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - node.level + 1])
                names.append(
                    ".".join(["esafety", *base, *(node.module or "").split(".")]).rstrip(".")
                )
            else:
                names.append(node.module or "")
    return names


def _attribute_reads(tree: ast.AST) -> set[tuple[str, str]]:
    reads: set[tuple[str, str]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            reads.add((node.value.id, node.attr))
        if isinstance(node, ast.ImportFrom) and node.module in {"time", "os", "datetime"}:
            for alias in node.names:
                reads.add((node.module, alias.name))
    return reads


def _violations(folder: str, banned_packages: set[str], root: Path = ROOT) -> list[str]:
    found = []
    for path in _modules(root / folder):
        tree = ast.parse(path.read_text("utf-8"), filename=str(path))
        where = path.relative_to(root)
        for name in _imports(tree, path, root):
            top = name.split(".")[0]
            if top in FORBIDDEN_MODULES:
                found.append(f"{where}: imports {name}")
            parts = name.split(".")
            if top == "esafety" and len(parts) > 1 and parts[1] in banned_packages:
                found.append(f"{where}: imports {name} (dependencies point the other way)")
        for read in sorted(_attribute_reads(tree) & FORBIDDEN_CALLS):
            found.append(
                f"{where}: reads {read[0]}.{read[1]} (time and settings come in as arguments)"
            )
    return found


@pytest.mark.parametrize(
    ("folder", "banned"),
    [("events", {"workflows", "workers"}), ("workflows", {"workers"})],
)
def test_pure_layers_do_no_io_and_read_no_clock(folder: str, banned: set[str]) -> None:
    assert _violations(folder, banned) == []


def test_the_walk_catches_what_it_forbids(tmp_path: Path) -> None:
    """The checker itself can fail: a module with every forbidden thing is caught."""
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "probe.py").write_text(
        "import os\nimport redis\nfrom datetime import datetime\nfrom ..workers import app\n"
        "def f():\n    import dramatiq\n    return datetime.now(), os.environ\n"
    )
    found = "\n".join(_violations("workflows", {"workers"}, root=tmp_path))
    for needle in (
        "imports redis",
        "imports dramatiq",
        "datetime.now",
        "os.environ",
        "esafety.workers",
    ):
        assert needle in found, needle
