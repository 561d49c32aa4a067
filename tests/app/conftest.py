"""Fixtures for the dashboard tests: the Chromium executable (or a skip that says why)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


def find_chromium() -> str | None:
    """Debian's chromium: $VENUEGUARD_CHROMIUM, then ``chromium`` on PATH, then /usr/bin."""
    candidates = [os.environ.get("VENUEGUARD_CHROMIUM"), shutil.which("chromium"),
                  "/usr/bin/chromium"]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip("no chromium executable found (apt-get install chromium; .ci/run does this)")
    return path
