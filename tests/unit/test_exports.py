"""Each package's ``__all__`` is sorted and resolvable, and every module's is complete."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import esafety

PACKAGES = ["esafety.events", "esafety.workflows", "esafety.workers"]


def _modules() -> list[str]:
    names = []
    for package in PACKAGES:
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, prefix=f"{package}."):
            names.append(info.name)
    return sorted(set(names))


@pytest.mark.parametrize("package", PACKAGES)
def test_package_all_is_sorted_and_resolvable(package: str) -> None:
    module = importlib.import_module(package)
    exported = module.__all__
    assert exported == sorted(exported, key=lambda n: (not n.isupper(), n)) or exported == sorted(
        exported
    )
    for name in exported:
        assert hasattr(module, name), f"{package}.{name} is in __all__ but missing"


@pytest.mark.parametrize("name", _modules())
def test_module_all_lists_every_public_definition(name: str) -> None:
    module = importlib.import_module(name)
    source = Path(module.__file__ or "").read_text()
    tree = ast.parse(source)
    defined = {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef)
        and not node.name.startswith("_")
    }
    if name.endswith("__main__") or not defined:
        return
    exported = set(getattr(module, "__all__", []))
    missing = defined - exported
    assert not missing, f"{name}: public names not in __all__: {sorted(missing)}"
    for item in exported:
        assert hasattr(module, item), f"{name}.__all__ names {item!r}, which does not exist"


def test_root_package_imports_nothing_heavy() -> None:
    assert esafety.__doc__
