"""The README's "Use it from your bot" snippet and every script in examples/, run as a user
runs them: each in its own interpreter against a `venueguard sim` process on loopback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.system, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
EXPECTED = {  # what each script prints when it worked
    "ccxt_bot.py": r"order vg\w+: open \(NEW\)\ncanceled: canceled; venue HEALTHY",
    "stall_recovery.py": r"ws\.stale -> .*book\.resynced",
    "native_market_data.py": r"XBTUSD \(\d+\.\d+, \d+\) / \(\d+\.\d+, \d+\), fresh True",
}


@pytest.fixture(scope="module")
def sim_url() -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, "-m", "venueguard", "sim", "--port", "0",
                             "--rate", "50"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("listening on "), line
        yield line.removeprefix("listening on ")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()


def readme_bot() -> str:
    text = (ROOT / "README.md").read_text()
    found = re.search(r"<!-- bot-example -->\n```python\n(.*?)```", text, re.DOTALL)
    assert found, "README lost its bot example"
    return found.group(1)


def test_the_readme_bot_is_short_and_runs(sim_url: str) -> None:
    code = readme_bot()
    assert len(code.strip().splitlines()) <= 20
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "SIM_URL": sim_url})
    assert done.returncode == 0, done.stderr[-2000:]
    assert re.fullmatch(r"vg\w+ open\n", done.stdout)


def test_every_example_is_covered() -> None:
    assert {p.name for p in EXAMPLES} == set(EXPECTED)


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs_against_the_simulator(sim_url: str, script: Path) -> None:
    done = subprocess.run([sys.executable, str(script), "--sim-url", sim_url],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    assert re.search(EXPECTED[script.name], done.stdout), done.stdout
