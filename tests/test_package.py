"""The front door: ``import venueguard`` exports the stable names, and only names that exist."""

from __future__ import annotations

import subprocess
import sys

import venueguard
from venueguard.io import errors, md_events


def test_every_exported_name_resolves_once() -> None:
    names = venueguard.__all__
    assert len(names) == len(set(names))
    for name in names:
        assert getattr(venueguard, name) is not None, name


def test_the_stable_api_is_exported() -> None:
    stable = {"guard", "GuardConfig", "GuardedExchange", "MarketDataSession", "MdConfig",
              "RestSession", "RestConfig", "OrderManager", "OrderIntent", "Timeouts",
              "BackoffConfig", "BudgetConfig", "ThrottleConfig", "LivenessConfig",
              "FreshnessConfig", "EventLog",
              "Metrics", "Journal"}
    assert stable <= set(venueguard.__all__)
    # the whole error tree, under its own names
    assert set(errors.__all__) <= set(venueguard.__all__)
    for name in errors.__all__:
        assert getattr(venueguard, name) is getattr(errors, name)
    # every market-data event, under its own name (DataRejected: Rejected is the error)
    for name in md_events.__all__:
        assert getattr(venueguard, name) is getattr(md_events, name)
    assert venueguard.Rejected is errors.Rejected


def test_guard_is_the_ccxt_bridge() -> None:
    from venueguard.ccxt import guard

    assert venueguard.guard is guard


def test_import_works_without_ccxt_and_guard_then_names_the_fix() -> None:
    script = (
        "import sys; sys.modules['ccxt'] = None\n"
        "import venueguard\n"
        "assert 'guard' in venueguard.__all__\n"
        "try:\n"
        "    venueguard.guard\n"
        "except venueguard.ConfigError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=True)
    lines = done.stdout.strip().splitlines()
    assert lines == ["ccxt is not installed: pip install 'venueguard[ccxt]'"], done.stderr
