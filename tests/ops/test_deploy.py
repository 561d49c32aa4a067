"""deploy/: Prometheus alert rules (promtool check + unit tests) and the Grafana dashboard."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from venueguard.telemetry.metrics import Metrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
ALERT_TESTS = DEPLOY / "prometheus" / "alerts_test.yml"
DASHBOARD = DEPLOY / "grafana" / "venueguard.json"
GROUPS = ["API health", "Order-state integrity", "Microstructure context", "Risk context"]
_SUFFIXES = ("_bucket", "_count", "_sum")


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool not found: install Debian's prometheus package "
                    "(apt-get install prometheus; .ci/run does this)")
    return found


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=60,
                          cwd=cwd, check=False)


def exported_names() -> set[str]:
    names: set[str] = set()
    for family in Metrics().registry.collect():
        names.add(family.name + ("_total" if family.type == "counter" else ""))
        if family.type == "histogram":
            names.update(family.name + suffix for suffix in _SUFFIXES)
    return names


def referenced(text: str) -> set[str]:
    return set(re.findall(r"\bvenueguard_[a-z0-9_]+", text))


def dashboard_exprs() -> list[tuple[str, str]]:
    data = json.loads(DASHBOARD.read_text())
    return [(p["title"], t["expr"]) for p in data["panels"] if p["type"] != "row"
            for t in p["targets"]]


def test_alert_rules_pass_promtool_check() -> None:
    result = run("check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 11 rules found" in result.stdout


def test_alert_rules_pass_their_promtool_unit_tests() -> None:
    result = run("test", "rules", ALERT_TESTS.name, cwd=ALERT_TESTS.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_alert_rules_cover_the_outage_cases_and_use_real_metrics() -> None:
    text = ALERTS.read_text()
    for name in ("StaleStream", "503Storm", "VenueCooldown", "VenueBlocked", "PhantomOrders",
                 "UnknownOrders", "PositionMismatch", "ReconnectStorm", "MonitorDown"):
        assert f"alert: Venueguard{name}" in text, name
        assert f"alertname: Venueguard{name}" in ALERT_TESTS.read_text(), name
    missing = referenced(text) - exported_names()
    assert not missing, missing


def test_dashboard_has_the_four_groups_with_panels_of_real_metrics() -> None:
    data = json.loads(DASHBOARD.read_text())
    rows = [p["title"] for p in data["panels"] if p["type"] == "row"]
    assert rows == GROUPS
    current = None
    per_group: dict[str, int] = {}
    for p in data["panels"]:
        if p["type"] == "row":
            current = p["title"]
            continue
        assert current is not None and p["targets"], p["title"]
        per_group[current] = per_group.get(current, 0) + 1
    assert all(per_group[g] >= 5 for g in GROUPS), per_group
    exprs = " ".join(e for _, e in dashboard_exprs())
    missing = referenced(exprs) - exported_names()
    assert not missing, missing
    for contract in ("venueguard_rest_latency_seconds_bucket", "venueguard_open_orders",
                     "venueguard_phantom_orders_total", "venueguard_spread",
                     "venueguard_position", "venueguard_venue_state"):
        assert contract in exprs, contract


def test_every_dashboard_expression_passes_promtool(tmp_path: Path) -> None:
    exprs = dashboard_exprs()
    lines = ["groups:", "  - name: grafana_panels", "    rules:"]
    for i, (_, expr) in enumerate(exprs):
        concrete = expr.replace("$instance", ".*")
        lines += [f"      - record: venueguard:panel_{i}",
                  f"        expr: {json.dumps(concrete)}"]
    rules = tmp_path / "panels.yml"
    rules.write_text("\n".join(lines) + "\n")
    result = run("check", "rules", str(rules))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout


def test_a_broken_expression_is_caught(tmp_path: Path) -> None:
    rules = tmp_path / "bad.yml"
    rules.write_text('groups:\n  - name: g\n    rules:\n      - record: r\n'
                     '        expr: "sum(rate(venueguard_trades_total[1m])"\n')
    assert run("check", "rules", str(rules)).returncode != 0
