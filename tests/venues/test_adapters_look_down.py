"""Venue adapters look down only: nothing under src/venueguard/venues imports io/, app/ or the
ccxt bridge (they get the error tree from ``venueguard.errors`` and speak core's reports)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

VENUES = Path(__file__).resolve().parents[2] / "src" / "venueguard" / "venues"
UPWARD = ("venueguard.io", "venueguard.app", "venueguard.ccxt", "venueguard.sim",
          "venueguard.telemetry")


def upward_imports(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        else:
            continue
        found += [m for m in modules if m.startswith(UPWARD)]
    return found


def test_the_check_sees_an_upward_import() -> None:
    assert upward_imports("from venueguard.io import errors\n") == ["venueguard.io",
                                                                    "venueguard.io.errors"]
    assert upward_imports("from venueguard import errors\n") == []


@pytest.mark.parametrize("path", sorted(VENUES.rglob("*.py")), ids=lambda p: p.name)
def test_no_venue_module_imports_upward(path: Path) -> None:
    assert upward_imports(path.read_text("utf-8")) == [], path
