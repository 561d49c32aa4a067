"""The predictor hook: something that receives each feature snapshot and may return a signal.

A predictor is any object with ``name`` and ``on_snapshot(snapshot) -> Signal | None`` (see
:class:`Predictor`). The monitor calls it once per produced snapshot, in order, on the event loop:
it must be quick (no I/O); heavy models should hand work to a thread themselves. A predictor that
raises is reported and, after repeated failures, switched off; it never stops the monitor.

Where a predictor comes from (:func:`load_predictor`):

- ``None`` or ``""``: the built-in :class:`ImbalanceMomentum` example;
- ``"package.module:attr"``: ``attr`` is imported; a class or factory is called with no
  arguments, an object with ``on_snapshot`` is used as is;
- any other name: the entry point of that name in the ``venueguard.predictors`` group, e.g. in a
  plugin's pyproject::

      [project.entry-points."venueguard.predictors"]
      mymodel = "mymodel.live:Predictor"

The monitor reads the spec from ``VENUEGUARD_PREDICTOR``.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Protocol, runtime_checkable

from venueguard.core.snapshots import Snapshot

ENTRY_POINT_GROUP = "venueguard.predictors"
ENV_VAR = "VENUEGUARD_PREDICTOR"


@dataclass(frozen=True, slots=True)
class Signal:
    """A predictor's view: ``direction`` -1 (down), 0 (flat) or +1 (up), ``strength`` in [0, 1]."""

    predictor: str
    ts: float
    direction: int
    strength: float
    reason: str = ""

    def __post_init__(self) -> None:
        if self.direction not in (-1, 0, 1):
            raise ValueError(f"direction must be -1, 0 or 1, got {self.direction!r}")
        if not (math.isfinite(self.strength) and 0.0 <= self.strength <= 1.0):
            raise ValueError(f"strength must be within [0, 1], got {self.strength!r}")


@runtime_checkable
class Predictor(Protocol):
    name: str

    def on_snapshot(self, snapshot: Snapshot) -> Signal | None: ...


class PredictorLoadError(Exception):
    """The predictor spec names nothing loadable, or what it names is not a predictor."""


class ImbalanceMomentum:
    """Built-in example: book imbalance confirmed by mid-price momentum.

    Keeps exponential averages of the imbalance and of mid-price changes (in bps). It signals up
    when both lean up beyond their thresholds, down when both lean down, and flat when they
    disagree. It stays silent (None) until ``warmup`` snapshots were seen, while the outage regime
    is SAFE (during an outage the market is screaming, not forecastable), and when the direction
    has not changed since the last signal.
    """

    name = "imbalance-momentum"

    def __init__(self, *, alpha: float = 0.3, imbalance_threshold: float = 0.25,
                 momentum_bps: float = 0.5, warmup: int = 5) -> None:
        if not 0.0 < alpha <= 1.0:
            raise ValueError("alpha must be within (0, 1]")
        self.alpha = alpha
        self.imbalance_threshold = imbalance_threshold
        self.momentum_bps = momentum_bps
        self.warmup = warmup
        self._imbalance = 0.0
        self._momentum_bps = 0.0
        self._last_mid: float | None = None
        self._seen = 0
        self._last_direction: int | None = None

    def on_snapshot(self, snapshot: Snapshot) -> Signal | None:
        a = self.alpha
        self._imbalance += a * (snapshot.imbalance - self._imbalance)
        if self._last_mid is not None and self._last_mid > 0:
            change_bps = (snapshot.mid - self._last_mid) / self._last_mid * 10_000.0
            self._momentum_bps += a * (change_bps - self._momentum_bps)
        self._last_mid = snapshot.mid
        self._seen += 1
        if self._seen < self.warmup or snapshot.regime == "SAFE":
            return None
        lean_book = _sign(self._imbalance, self.imbalance_threshold)
        lean_price = _sign(self._momentum_bps, self.momentum_bps)
        direction = lean_book if lean_book == lean_price else 0
        if direction == self._last_direction:
            return None
        self._last_direction = direction
        strength = 0.0
        if direction:
            strength = min(1.0, abs(self._imbalance)) * min(
                1.0, abs(self._momentum_bps) / (4 * self.momentum_bps))
        reason = f"imbalance {self._imbalance:+.2f}, momentum {self._momentum_bps:+.2f} bps"
        return Signal(self.name, snapshot.ts, direction, strength, reason)


def _sign(value: float, threshold: float) -> int:
    if value > threshold:
        return 1
    if value < -threshold:
        return -1
    return 0


def _as_predictor(obj: object, spec: str) -> Predictor:
    if isinstance(obj, type) or (not hasattr(obj, "on_snapshot") and callable(obj)):
        try:
            obj = obj()
        except Exception as exc:
            raise PredictorLoadError(f"{spec}: creating the predictor failed: {exc!r}") from exc
    if not callable(getattr(obj, "on_snapshot", None)):
        raise PredictorLoadError(f"{spec}: {type(obj).__name__} has no on_snapshot(snapshot)")
    if not isinstance(getattr(obj, "name", None), str):
        try:
            obj.name = spec  # type: ignore[attr-defined]
        except AttributeError:
            raise PredictorLoadError(f"{spec}: the predictor needs a str `name`") from None
    assert isinstance(obj, Predictor)
    return obj


def load_predictor(spec: str | None) -> Predictor:
    """The predictor named by ``spec`` (see the module docstring); raises PredictorLoadError."""
    if not spec or spec in ("builtin", ImbalanceMomentum.name):
        return ImbalanceMomentum()
    if ":" in spec:
        module_name, _, attr = spec.partition(":")
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            raise PredictorLoadError(f"{spec}: cannot import {module_name!r}: {exc!r}") from exc
        target: object = module
        for part in attr.split("."):
            try:
                target = getattr(target, part)
            except AttributeError:
                raise PredictorLoadError(f"{spec}: {module_name} has no {attr!r}") from None
        return _as_predictor(target, spec)
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == spec]
    if not found:
        raise PredictorLoadError(f"no predictor {spec!r}: not module:attr and no entry point in "
                                 f"the {ENTRY_POINT_GROUP!r} group")
    try:
        loaded = found[0].load()
    except Exception as exc:
        raise PredictorLoadError(f"{spec}: loading the entry point failed: {exc!r}") from exc
    return _as_predictor(loaded, spec)
