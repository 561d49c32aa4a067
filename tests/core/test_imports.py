"""core/ stays sans-I/O: no module under src/venueguard/core imports I/O, clocks or global RNG."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "src" / "venueguard" / "core"
FORBIDDEN = frozenset({
    "asyncio", "socket", "time", "random", "aiohttp", "websockets", "sqlite3", "threading",
    "urllib", "http",
})


def forbidden_imports(source: str) -> list[tuple[int, str]]:
    """(line, module) for every forbidden import, including dynamic ones by string literal."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            callee = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            arg = node.args[0]
            if callee in ("import_module", "__import__") and isinstance(arg, ast.Constant) \
                    and isinstance(arg.value, str):
                names = [arg.value]
        for name in names:
            if name.split(".")[0] in FORBIDDEN:
                found.append((getattr(node, "lineno", 0), name))
    return found


def core_modules() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def test_core_has_modules() -> None:
    names = {p.name for p in core_modules()}
    assert {"classify.py", "rules.py", "backoff.py", "liveness.py", "health.py"} <= names


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: p.name)
def test_core_module_imports_nothing_forbidden(path: Path) -> None:
    assert forbidden_imports(path.read_text("utf-8")) == [], f"{path.name} breaks the sans-I/O rule"


@pytest.mark.parametrize(
    ("source", "module"),
    [
        ("import time\n", "time"),
        ("import os, asyncio.tasks\n", "asyncio.tasks"),
        ("from random import Random\n", "random"),
        ("from http.client import HTTPConnection\n", "http.client"),
        ("def f():\n    import socket\n", "socket"),
        ("import importlib\nimportlib.import_module('sqlite3')\n", "sqlite3"),
        ("__import__('threading')\n", "threading"),
        ("from urllib.parse import quote\n", "urllib.parse"),
    ],
)
def test_checker_catches_forbidden_import(source: str, module: str) -> None:
    assert [name for _, name in forbidden_imports(source)] == [module]


def test_checker_allows_lookalikes_and_relative_imports() -> None:
    source = "import timeit_helpers\nfrom . import time\nfrom venueguard.core import random_walk\n"
    assert forbidden_imports(source) == []
