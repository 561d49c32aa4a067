"""Bounded time series for the live dashboard: 503s per minute, spread, latency, reconnects.

Times are wall-clock epoch seconds passed in by the caller (``now_s``), so the series line up
with server timestamps and with the event log. Memory is bounded by ``horizon_s``: slots older
than the horizon are dropped as new ones arrive, and each latency slot keeps at most
``max_samples_per_slot`` samples (past the cap it keeps every 2nd, 4th ... arrival, so the slot
stays evenly sampled and its quantiles honest).

Feed with ``on_*`` as facts happen; read with :meth:`SeriesStore.snapshot`, whose JSON shape is
what ``GET /api/series`` serves::

    {"now": 1795435260.0, "window_s": 900.0,
     "http_503_per_min": [[minute_start_s, count], ...],
     "http_503_per_10s": [[bin_start_s, count], ...],   # what the chart draws
     "reconnects_per_min": [[minute_start_s, count], ...],
     "spread": [[second_s, last_spread], ...],
     "latency": [[slot_start_s, p50_s, p95_s, p99_s], ...]}
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

SeriesSnapshot = dict[str, object]
HTTP_503_BIN_S = 10.0


class _Slots:
    """Time slots of width ``step_s`` holding a float aggregate; appended in time order."""

    def __init__(self, step_s: float, horizon_s: float) -> None:
        self.step_s = step_s
        self._slots: deque[list[float]] = deque(maxlen=max(1, math.ceil(horizon_s / step_s)) + 1)

    def slot_of(self, now_s: float) -> float:
        return math.floor(now_s / self.step_s) * self.step_s

    def add(self, now_s: float, amount: float) -> None:
        start = self.slot_of(now_s)
        for slot in reversed(self._slots):
            if slot[0] == start:
                slot[1] += amount
                return
            if slot[0] < start:
                break
        if self._slots and start < self._slots[-1][0]:
            return  # older than the newest slot and not held: too late to count
        self._slots.append([start, amount])

    def put(self, now_s: float, value: float) -> None:
        start = self.slot_of(now_s)
        if self._slots and self._slots[-1][0] == start:
            self._slots[-1][1] = value
        elif not self._slots or start > self._slots[-1][0]:
            self._slots.append([start, value])

    def since(self, start_s: float) -> list[list[float]]:
        return [[s, v] for s, v in self._slots if s >= start_s]


class _Samples:
    """Samples of one slot, decimated evenly: past the cap, keep every 2nd, then 4th ... arrival."""

    __slots__ = ("seen", "stride", "values")

    def __init__(self) -> None:
        self.values: list[float] = []
        self.seen = 0
        self.stride = 1

    def add(self, sample: float, cap: int) -> None:
        if self.seen % self.stride == 0:
            self.values.append(sample)
            if len(self.values) > cap:
                del self.values[1::2]
                self.stride *= 2
        self.seen += 1


class _SampleSlots:
    """Time slots of width ``step_s`` holding bounded, evenly decimated samples."""

    def __init__(self, step_s: float, horizon_s: float, max_samples: int) -> None:
        self.step_s = step_s
        self.max_samples = max_samples
        self._slots: deque[tuple[float, _Samples]] = deque(
            maxlen=max(1, math.ceil(horizon_s / step_s)) + 1
        )

    def add(self, now_s: float, sample: float) -> None:
        start = math.floor(now_s / self.step_s) * self.step_s
        if self._slots and self._slots[-1][0] == start:
            samples = self._slots[-1][1]
        elif not self._slots or start > self._slots[-1][0]:
            samples = _Samples()
            self._slots.append((start, samples))
        else:
            return
        samples.add(sample, self.max_samples)

    def since(self, start_s: float) -> list[tuple[float, list[float]]]:
        return [(s, v.values) for s, v in self._slots if s >= start_s]


def quantile(sorted_values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated quantile of an ascending sequence; ``None`` when empty."""
    if not sorted_values:
        return None
    pos = q * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


class SeriesStore:
    """Per-second and per-minute ring buffers behind the dashboard charts."""

    def __init__(
        self,
        *,
        horizon_s: float = 3600.0,
        latency_step_s: float = 5.0,
        max_samples_per_slot: int = 512,
    ) -> None:
        if horizon_s <= 0 or latency_step_s <= 0 or max_samples_per_slot < 2:
            raise ValueError("horizon_s and latency_step_s must be > 0, max_samples >= 2")
        self.horizon_s = horizon_s
        self._http_503 = _Slots(60.0, horizon_s)
        # the same counts in 10-s bins: the chart draws these, so 503s that began at :45 show
        # from :40, not as a bar over the whole current minute
        self._http_503_fine = _Slots(HTTP_503_BIN_S, horizon_s)
        self._reconnects = _Slots(60.0, horizon_s)
        self._spread = _Slots(1.0, horizon_s)
        self._latency = _SampleSlots(latency_step_s, horizon_s, max_samples_per_slot)

    def on_http_status(self, status: int, now_s: float) -> None:
        """Count one REST response; only 503s are charted."""
        if status == 503:
            self.on_http_503(now_s)

    def on_http_503(self, now_s: float, count: int = 1) -> None:
        self._http_503.add(now_s, float(count))
        self._http_503_fine.add(now_s, float(count))

    def on_reconnect(self, now_s: float) -> None:
        self._reconnects.add(now_s, 1.0)

    def on_spread(self, spread: float, now_s: float) -> None:
        """Record the current spread; the last value in each second is kept."""
        if math.isfinite(spread):
            self._spread.put(now_s, spread)

    def on_latency(self, latency_s: float, now_s: float) -> None:
        if math.isfinite(latency_s) and latency_s >= 0:
            self._latency.add(now_s, latency_s)

    def latency_quantiles(self, now_s: float, window_s: float = 60.0) -> dict[str, float | None]:
        """p50/p95/p99 (seconds) over the samples of the last ``window_s``."""
        values: list[float] = []
        for _, samples in self._latency.since(now_s - window_s):
            values.extend(samples)
        values.sort()
        return {"p50": quantile(values, 0.5), "p95": quantile(values, 0.95),
                "p99": quantile(values, 0.99)}

    def http_503_last_minute(self, now_s: float) -> int:
        """503s counted in the current and the previous minute slot, weighted to 60 s."""
        slots = self._http_503.since(self._http_503.slot_of(now_s) - 60.0)
        into_minute = (now_s % 60.0) / 60.0
        total = 0.0
        for start, count in slots:
            total += count * (1.0 - into_minute) if start < self._http_503.slot_of(now_s) else count
        return round(total)

    def snapshot(self, now_s: float, window_s: float = 900.0) -> SeriesSnapshot:
        """The charted series over the last ``window_s`` (capped at the horizon)."""
        window_s = min(max(window_s, 1.0), self.horizon_s)
        start = now_s - window_s
        latency = []
        for slot_start, samples in self._latency.since(start):
            ordered = sorted(samples)
            latency.append([slot_start, quantile(ordered, 0.5), quantile(ordered, 0.95),
                            quantile(ordered, 0.99)])
        return {
            "now": now_s,
            "window_s": window_s,
            "http_503_per_min": self._http_503.since(start - 60.0),
            "http_503_per_10s": self._http_503_fine.since(start - HTTP_503_BIN_S),
            "reconnects_per_min": self._reconnects.since(start - 60.0),
            "spread": self._spread.since(start),
            "latency": latency,
        }
