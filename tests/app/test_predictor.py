"""The predictor hook: the built-in example and the three ways of loading a predictor."""

from __future__ import annotations

import textwrap
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from venueguard.app import predictor as predictor_mod
from venueguard.app.predictor import (
    ENTRY_POINT_GROUP,
    ImbalanceMomentum,
    Predictor,
    PredictorLoadError,
    Signal,
    load_predictor,
)
from venueguard.core.snapshots import Snapshot


def snap(seq: int, mid: float, imbalance: float, regime: str = "NORMAL") -> Snapshot:
    return Snapshot(seq=seq, ts=float(seq), symbol="XBTUSD", best_bid=mid - 0.25,
                    best_ask=mid + 0.25, mid=mid, spread=0.5, spread_bps=0.5 / mid * 1e4,
                    imbalance=imbalance, churn_per_s=1.0, trade_rate_per_s=2.0, volume_per_s=50.0,
                    gap_events=0, last_trade_age_s=0.1, data_age_s=0.05, regime=regime,
                    venue_state="HEALTHY")


def test_builtin_signals_up_when_book_and_price_lean_up() -> None:
    p = ImbalanceMomentum(warmup=3)
    signals = [p.on_snapshot(snap(i, 50_000 + 10 * i, 0.8)) for i in range(1, 8)]
    emitted = [s for s in signals if s is not None]
    assert signals[0] is None and signals[1] is None  # warm-up
    assert len(emitted) == 1  # one signal per change of direction, not one per snapshot
    up = emitted[0]
    assert up.direction == 1 and 0 < up.strength <= 1
    assert up.predictor == "imbalance-momentum" and "imbalance +" in up.reason


def test_builtin_goes_flat_when_price_disagrees_then_down() -> None:
    p = ImbalanceMomentum(warmup=1, alpha=1.0)
    assert p.on_snapshot(snap(1, 50_000, 0.9)) is not None  # first: flat (no momentum yet)
    up = p.on_snapshot(snap(2, 50_010, 0.9))
    assert up is not None and up.direction == 1
    flat = p.on_snapshot(snap(3, 49_990, 0.9))  # book still leans up, price fell
    assert flat is not None and flat.direction == 0 and flat.strength == 0.0
    down = p.on_snapshot(snap(4, 49_970, -0.9))
    assert down is not None and down.direction == -1


def test_builtin_is_silent_in_safe_regime() -> None:
    p = ImbalanceMomentum(warmup=1, alpha=1.0)
    p.on_snapshot(snap(1, 50_000, 0.9))
    assert p.on_snapshot(snap(2, 50_010, 0.9, regime="SAFE")) is None
    assert p.on_snapshot(snap(3, 50_020, 0.9)) is not None


def test_signal_validates() -> None:
    with pytest.raises(ValueError):
        Signal("x", 0.0, 2, 0.5)
    with pytest.raises(ValueError):
        Signal("x", 0.0, 1, 1.5)


def test_default_is_the_builtin() -> None:
    assert isinstance(load_predictor(None), ImbalanceMomentum)
    assert isinstance(load_predictor(""), ImbalanceMomentum)
    assert isinstance(load_predictor("imbalance-momentum"), ImbalanceMomentum)


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "vg_test_plugin.py").write_text(textwrap.dedent("""
        class Always:
            name = "always-up"
            def on_snapshot(self, snapshot):
                from venueguard.app.predictor import Signal
                return Signal(self.name, snapshot.ts, 1, 1.0)

        class Nameless:
            def on_snapshot(self, snapshot):
                return None

        instance = Always()
        def factory():
            return Always()
        class NotOne:
            pass
        def broken():
            raise RuntimeError("model file missing")
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("attr", ["Always", "instance", "factory"])
def test_module_attr_spec(plugin_dir: Path, attr: str) -> None:
    p = load_predictor(f"vg_test_plugin:{attr}")
    assert isinstance(p, Predictor)
    out = p.on_snapshot(snap(1, 100.0, 0.0))
    assert out is not None and out.direction == 1 and p.name == "always-up"


def test_nameless_predictor_is_named_by_its_spec(plugin_dir: Path) -> None:
    assert load_predictor("vg_test_plugin:Nameless").name == "vg_test_plugin:Nameless"


@pytest.mark.parametrize(
    ("spec", "message"),
    [("vg_test_plugin:NotOne", "has no on_snapshot"),
     ("vg_test_plugin:missing", "has no 'missing'"),
     ("vg_test_plugin:broken", "model file missing"),
     ("no_such_module_vg:X", "cannot import"),
     ("no-such-entry-point", ENTRY_POINT_GROUP)],
)
def test_bad_specs_fail_clearly(plugin_dir: Path, spec: str, message: str) -> None:
    with pytest.raises(PredictorLoadError, match=message):
        load_predictor(spec)


def test_entry_point_group(plugin_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    eps = [EntryPoint("always", "vg_test_plugin:Always", ENTRY_POINT_GROUP),
           EntryPoint("other", "vg_test_plugin:Nameless", ENTRY_POINT_GROUP)]

    def fake_entry_points(*, group: str) -> list[EntryPoint]:
        return [ep for ep in eps if ep.group == group]

    monkeypatch.setattr(predictor_mod, "entry_points", fake_entry_points)
    p = load_predictor("always")
    assert p.name == "always-up"
    assert p.on_snapshot(snap(1, 100.0, 0.0)) is not None
