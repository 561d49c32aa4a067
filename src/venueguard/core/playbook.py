"""The failure-mode playbook: eight symptoms, their likely cause and the first thing to check,
evaluated on a recording of what the monitor saw.

The playbook is data (:data:`PLAYBOOK`); :func:`evaluate` is one pure function over a
:class:`Recording` (samples and events, timestamps in wall-clock epoch seconds) that says, for each
symptom, whether the recording shows it, with the evidence. A symptom whose inputs were never
recorded (e.g. no orders were placed) is ``NO_DATA``, which is not the same as ``NOT_SEEN``.

The series the monitor records, and this module reads, are named in :class:`Series`; the helpers
:func:`increments`, :func:`bucket_sums`, :func:`bucket_means` and :func:`percentile` are shared with
the report.
"""

from __future__ import annotations

import enum
import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field


class Series:
    """``(kind, name)`` of the samples the monitor journals (cumulative counters end in _total)."""

    SPREAD = ("market", "spread")
    BEST_BID = ("market", "best_bid")
    BEST_ASK = ("market", "best_ask")
    DATA_AGE_S = ("market", "data_age_s")
    LAST_TRADE_AGE_S = ("market", "last_trade_age_s")
    LATENCY_MS = ("api", "latency_ms")  # one sample per probe request; labels endpoint, status
    REQUESTS_TOTAL = ("api", "requests_total")
    HTTP_503_TOTAL = ("api", "http_503_total")
    HTTP_429_TOTAL = ("api", "http_429_total")
    ERRORS_TOTAL = ("api", "errors_total")
    RETRIES_TOTAL = ("api", "retries_total")
    RECONNECTS_TOTAL = ("ws", "reconnects_total")
    STALE_TOTAL = ("ws", "stale_total")
    SNAPSHOTS_TOTAL = ("snapshot", "produced_total")
    SNAPSHOTS_MISSING_TOTAL = ("snapshot", "missing_total")
    POSITION = ("risk", "position")
    VENUE_STATE = ("state", "venue_state")
    REGIME = ("state", "regime")


@dataclass(frozen=True, slots=True)
class Sample:
    ts: float
    kind: str
    name: str
    value: float
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Event:
    ts: float
    event: str
    fields: Mapping[str, object] = field(default_factory=dict)


class Recording:
    """Samples and events of one run, indexed for the evaluation (inputs need not be sorted)."""

    def __init__(self, samples: Iterable[Sample], events: Iterable[Event]) -> None:
        self._series: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for s in samples:
            if math.isfinite(s.ts) and math.isfinite(s.value):
                self._series.setdefault((s.kind, s.name), []).append((s.ts, s.value))
        for points in self._series.values():
            points.sort(key=lambda p: p[0])
        self.events: list[Event] = sorted(events, key=lambda e: e.ts)
        stamps = [p[0] for pts in self._series.values() for p in (pts[0], pts[-1])]
        stamps += [e.ts for e in self.events[:1] + self.events[-1:]]
        self.start_ts = min(stamps) if stamps else 0.0
        self.end_ts = max(stamps) if stamps else 0.0

    def series(self, key: tuple[str, str]) -> list[tuple[float, float]]:
        return self._series.get(key, [])

    def named(self, event: str) -> list[Event]:
        return [e for e in self.events if e.event == event]

    @property
    def duration_s(self) -> float:
        return self.end_ts - self.start_ts


# -- shared series helpers ------------------------------------------------------------------
def increments(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Per-sample increases of a cumulative counter that starts at 0 with its process; a drop
    means the process restarted (the new value is all increase)."""
    out: list[tuple[float, float]] = []
    prev = 0.0
    for ts, value in points:
        out.append((ts, value if value < prev else value - prev))
        prev = value
    return out


def total_increase(points: Sequence[tuple[float, float]]) -> float:
    return sum(d for _, d in increments(points))


def bucket_sums(points: Iterable[tuple[float, float]], start: float, bucket_s: float
                ) -> dict[int, float]:
    out: dict[int, float] = {}
    for ts, value in points:
        idx = int((ts - start) // bucket_s)
        out[idx] = out.get(idx, 0.0) + value
    return out


def bucket_means(points: Iterable[tuple[float, float]], start: float, bucket_s: float
                 ) -> dict[int, float]:
    sums: dict[int, float] = {}
    counts: dict[int, int] = {}
    for ts, value in points:
        idx = int((ts - start) // bucket_s)
        sums[idx] = sums.get(idx, 0.0) + value
        counts[idx] = counts.get(idx, 0) + 1
    return {i: sums[i] / counts[i] for i in sums}


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile ``q`` in [0, 100]; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def correlation(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Pearson correlation; NaN when either side is constant or there are fewer than 3 points."""
    n = len(xs)
    if n < 3 or n != len(ys):
        return math.nan
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if sxx == 0 or syy == 0:
        return math.nan
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / math.sqrt(sxx * syy)


_NICE_BUCKETS_S = (1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0)


def bucket_size_s(duration_s: float) -> float:
    """Per-minute buckets, shrunk to a round size so a short recording still has ~8 buckets."""
    fitting = [b for b in _NICE_BUCKETS_S if b <= duration_s / 8.0]
    return fitting[-1] if fitting else _NICE_BUCKETS_S[0]


# -- the playbook ---------------------------------------------------------------------------
class Verdict(enum.Enum):
    SEEN = "seen"
    NOT_SEEN = "not seen"
    NO_DATA = "no data"


@dataclass(frozen=True, slots=True)
class Symptom:
    key: str
    symptom: str
    likely_cause: str
    first_check: str


@dataclass(frozen=True, slots=True)
class Finding:
    symptom: Symptom
    verdict: Verdict
    evidence: tuple[str, ...]
    first_seen_ts: float | None = None


@dataclass(frozen=True, slots=True)
class PlaybookConfig:
    ack_grace_s: float = 2.0  # an order with no ack this long after sending "never showed up"
    frozen_data_age_s: float = 5.0  # data older than this means the stream looked frozen
    missing_snapshot_ratio: float = 0.05
    spread_jump_ratio: float = 1.5  # spread in 503 buckets vs other buckets
    retry_ratio: float = 0.2  # retries per first attempt beyond this (plus the floor) ...
    retry_floor_per_s: float = 0.5  # ... within one bucket is a cascade
    position_grace_s: float = 5.0  # a position change this long after a fill is explained
    slow_p99_ms: float = 1000.0


PLAYBOOK: tuple[Symptom, ...] = (
    Symptom("orders_missing", "Orders are placed but never show up",
            "The venue accepted the request late, or is overloaded",
            "REST latency, and the open-order list one to two seconds after sending"),
    Symptom("cancel_then_fill", "A cancel succeeds locally, yet the order fills",
            "The cancel confirmation lagged, or raced the matching engine",
            "The order's websocket events and its final state over REST"),
    Symptom("ws_frozen", "The websocket looks frozen",
            "The connection died silently, or the server is lagging",
            "Time since the last trade, and the reconnect counter"),
    Symptom("snapshots_stalled", "The model is excited but snapshots stop updating",
            "The snapshot builder is blocked waiting for the book",
            "Snapshot timings and the missing-snapshot count"),
    Symptom("spread_with_503", "The spread jumps when 503s arrive",
            "Liquidity was pulled during a load spike",
            "Spread and 503s per minute plotted on one time axis"),
    Symptom("unexplained_position", "The position changes while the bot does nothing",
            "Stale local state and late fills",
            "Reconcile the position over REST against the execution history"),
    Symptom("retry_cascade", "A cascade of retries",
            "A naive retry loop amplifies the load and runs into rate limits",
            "The retry policy: budget, backoff and Retry-After"),
    Symptom("backtest_vs_live", "The backtest looked great; live trading is chaos",
            "The backtest assumed perfect fills and an always-available venue",
            "Write down each assumption that live trading broke (listed as evidence)"),
)


def _order_key(fields: Mapping[str, object]) -> str | None:
    for name in ("cl_ord_id", "order_id"):       # as the monitor records them
        value = fields.get(name)
        if value:
            return str(value)
    return None


Rule = Callable[[Recording, PlaybookConfig], tuple[Verdict, list[str], float | None]]


def _orders_missing(rec: Recording, cfg: PlaybookConfig) -> tuple[Verdict, list[str], float | None]:
    sent = rec.named("order.sent")
    unknown = rec.named("order.unknown")
    if not sent and not unknown:
        return Verdict.NO_DATA, ["no orders were sent in this recording"], None
    acked: dict[str, float] = {}
    for e in rec.named("order.acked"):
        key = _order_key(e.fields)
        if key is not None:
            acked.setdefault(key, e.ts)
    unknown_keys = {_order_key(e.fields) for e in unknown}
    late = [e for e in sent if (k := _order_key(e.fields)) is not None and k not in unknown_keys
            and (k not in acked or acked[k] - e.ts > cfg.ack_grace_s)
            and e.ts + cfg.ack_grace_s <= rec.end_ts]
    lat = [v for _, v in rec.series(Series.LATENCY_MS)]
    evidence = [f"{len(sent)} orders sent, {len(unknown)} went UNKNOWN, {len(late)} more not acked "
                f"within {cfg.ack_grace_s:g} s"]
    if lat:
        evidence.append(f"REST latency p50 {percentile(lat, 50):.0f} ms, "
                        f"p99 {percentile(lat, 99):.0f} ms over {len(lat)} requests")
    hits = sorted([e.ts for e in unknown] + [e.ts for e in late])
    return (Verdict.SEEN if hits else Verdict.NOT_SEEN), evidence, (hits[0] if hits else None)


def _cancel_then_fill(rec: Recording, cfg: PlaybookConfig
                      ) -> tuple[Verdict, list[str], float | None]:
    canceled: dict[str, float] = {}
    for e in rec.named("order.canceled"):
        key = _order_key(e.fields)
        if key is not None:
            canceled.setdefault(key, e.ts)
    if not canceled:
        return Verdict.NO_DATA, ["no order was canceled in this recording"], None
    late = [e for e in rec.named("order.filled")
            if (k := _order_key(e.fields)) is not None and k in canceled and e.ts >= canceled[k]]
    races = [e for e in rec.named("reconcile.resolved")
             if any(w in str(e.fields).lower() for w in ("late_fill", "cancel_race", "race"))]
    evidence = [f"{len(canceled)} orders canceled; {len(late)} filled after their cancel; "
                f"{len(races)} cancel/fill races resolved by reconciliation"]
    hits = sorted([e.ts for e in late] + [e.ts for e in races])
    return (Verdict.SEEN if hits else Verdict.NOT_SEEN), evidence, (hits[0] if hits else None)


def _ws_frozen(rec: Recording, cfg: PlaybookConfig) -> tuple[Verdict, list[str], float | None]:
    ages = rec.series(Series.DATA_AGE_S)
    stale = rec.named("ws.stale")
    if not ages and not stale and not rec.series(Series.RECONNECTS_TOTAL):
        return Verdict.NO_DATA, ["no market-data samples recorded"], None
    old = [(ts, v) for ts, v in ages if v > cfg.frozen_data_age_s]
    reasons: dict[str, int] = {}
    for e in stale:
        r = str(e.fields.get("reason", "unknown"))
        reasons[r] = reasons.get(r, 0) + 1
    reconnects = total_increase(rec.series(Series.RECONNECTS_TOTAL))
    max_age = max((v for _, v in ages), default=0.0)
    trade_age = max((v for _, v in rec.series(Series.LAST_TRADE_AGE_S)), default=math.nan)
    by_reason = ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())) or "none"
    evidence = [f"{len(stale)} stale detections ({by_reason}); {reconnects:.0f} reconnects",
                f"max data age {max_age:.1f} s ({len(old)} seconds above "
                f"{cfg.frozen_data_age_s:g} s)"]
    if not math.isnan(trade_age):
        evidence.append(f"longest time since the last trade {trade_age:.1f} s")
    hits = sorted([e.ts for e in stale] + [ts for ts, _ in old])
    return (Verdict.SEEN if hits else Verdict.NOT_SEEN), evidence, (hits[0] if hits else None)


def _snapshots_stalled(rec: Recording, cfg: PlaybookConfig
                       ) -> tuple[Verdict, list[str], float | None]:
    produced = rec.series(Series.SNAPSHOTS_TOTAL)
    missing = rec.series(Series.SNAPSHOTS_MISSING_TOTAL)
    if not produced and not missing:
        return Verdict.NO_DATA, ["no snapshot counters recorded"], None
    n_ok, n_miss = total_increase(produced), total_increase(missing)
    ratio = n_miss / (n_ok + n_miss) if n_ok + n_miss else 0.0
    longest = 0.0
    progress_ts = produced[0][0] if produced else rec.start_ts
    for ts, delta in increments(produced):
        if delta > 0:
            progress_ts = ts
        longest = max(longest, ts - progress_ts)
    misses = [ts for ts, d in increments(missing) if d > 0]
    first = misses[0] if misses else None
    evidence = [f"{n_ok:.0f} snapshots taken, {n_miss:.0f} missing ({ratio:.1%})",
                f"longest stretch without a new snapshot {longest:.1f} s"]
    seen = n_miss > 0 and ratio >= cfg.missing_snapshot_ratio
    return (Verdict.SEEN if seen else Verdict.NOT_SEEN), evidence, (first if seen else None)


def _spread_with_503(rec: Recording, cfg: PlaybookConfig
                     ) -> tuple[Verdict, list[str], float | None]:
    spread = rec.series(Series.SPREAD)
    if not spread:
        return Verdict.NO_DATA, ["no spread samples recorded"], None
    bucket = bucket_size_s(rec.duration_s)
    errs = bucket_sums(increments(rec.series(Series.HTTP_503_TOTAL)), rec.start_ts, bucket)
    means = bucket_means(spread, rec.start_ts, bucket)
    hot = {i: n for i, n in errs.items() if n > 0 and i in means}
    total = sum(errs.values())
    if not hot:
        return Verdict.NOT_SEEN, [f"no 503 alongside the spread ({total:.0f} in all)"], None
    cold = [m for i, m in means.items() if i not in hot]
    hot_mean = sum(means[i] for i in hot) / len(hot)
    cold_mean = sum(cold) / len(cold) if cold else math.nan
    idx = sorted(means)
    corr = correlation([errs.get(i, 0.0) for i in idx], [means[i] for i in idx])
    ratio = hot_mean / cold_mean if cold and cold_mean > 0 else math.nan
    evidence = [f"503s in {len(hot)} of {len(means)} buckets of {bucket:g} s ({total:.0f} in all)",
                f"mean spread {hot_mean:.4g} in those buckets vs {cold_mean:.4g} elsewhere "
                f"(x{ratio:.2f}); correlation {corr:.2f}"]
    seen = not math.isnan(ratio) and ratio >= cfg.spread_jump_ratio
    first = rec.start_ts + min(hot) * bucket
    return (Verdict.SEEN if seen else Verdict.NOT_SEEN), evidence, (first if seen else None)


def _unexplained_position(rec: Recording, cfg: PlaybookConfig
                          ) -> tuple[Verdict, list[str], float | None]:
    pos = rec.series(Series.POSITION)
    if not pos:
        return Verdict.NO_DATA, ["no position samples recorded"], None
    fills = [e.ts for e in rec.named("order.filled")]
    changes = [(ts, v) for (_, prev), (ts, v) in itertools.pairwise(pos) if v != prev]
    odd = [ts for ts, _ in changes
           if not any(ts - cfg.position_grace_s <= f <= ts for f in fills)]
    flagged = [e.ts for e in rec.named("reconcile.mismatch") if "position" in str(e.fields)]
    evidence = [f"{len(changes)} position changes, {len(odd)} without a fill in the "
                f"{cfg.position_grace_s:g} s before; {len(flagged)} position mismatches found "
                f"by reconciliation",
                f"position range {min(v for _, v in pos):g} .. {max(v for _, v in pos):g}"]
    hits = sorted(odd + flagged)
    return (Verdict.SEEN if hits else Verdict.NOT_SEEN), evidence, (hits[0] if hits else None)


def _retry_cascade(rec: Recording, cfg: PlaybookConfig) -> tuple[Verdict, list[str], float | None]:
    requests = rec.series(Series.REQUESTS_TOTAL)
    if not requests:
        return Verdict.NO_DATA, ["no REST request counters recorded"], None
    n_req = total_increase(requests)
    retries = increments(rec.series(Series.RETRIES_TOTAL))
    n_retry = sum(d for _, d in retries)
    n_429 = total_increase(rec.series(Series.HTTP_429_TOTAL))
    ratio = n_retry / n_req if n_req else 0.0
    # A cascade is retries beyond what a sane budget grants in some bucket: a share of the
    # first attempts plus a small floor (so a quiet client retrying once is not a cascade).
    bucket = bucket_size_s(rec.duration_s)
    req_b = bucket_sums(increments(requests), rec.start_ts, bucket)
    retry_b = bucket_sums(retries, rec.start_ts, bucket)
    over = sorted(i for i, r in retry_b.items()
                  if r > cfg.retry_ratio * max(0.0, req_b.get(i, 0.0) - r)
                  + cfg.retry_floor_per_s * bucket)
    worst = max(retry_b.values(), default=0.0)
    evidence = [f"{n_retry:.0f} retries for {n_req:.0f} requests sent ({ratio:.1%}); "
                f"{n_429:.0f} HTTP 429 rate-limit answers",
                f"{len(over)} buckets of {bucket:g} s with retries beyond {cfg.retry_ratio:.0%} "
                f"of first attempts + {cfg.retry_floor_per_s:g}/s (most in one: {worst:.0f})"]
    firsts = [ts for ts, d in increments(rec.series(Series.HTTP_429_TOTAL)) if d > 0]
    firsts += [rec.start_ts + i * bucket for i in over[:1]]
    seen = bool(over) or n_429 > 0
    return (Verdict.SEEN if seen else Verdict.NOT_SEEN), evidence, (
        min(firsts) if seen else None)


def _backtest_vs_live(rec: Recording, cfg: PlaybookConfig
                      ) -> tuple[Verdict, list[str], float | None]:
    if not rec.events and not rec.series(Series.REQUESTS_TOTAL) and not rec.series(Series.SPREAD):
        return Verdict.NO_DATA, ["the recording is empty"], None
    broken: list[str] = []
    n503 = total_increase(rec.series(Series.HTTP_503_TOTAL))
    n_err = total_increase(rec.series(Series.ERRORS_TOTAL))
    if n503 or n_err:
        broken.append(f"the venue always accepts requests: {n503:.0f} HTTP 503, "
                      f"{n_err:.0f} failed requests in all")
    lat = [v for _, v in rec.series(Series.LATENCY_MS)]
    if lat and percentile(lat, 99) > cfg.slow_p99_ms:
        broken.append(f"acknowledgements are instant: REST p99 {percentile(lat, 99):.0f} ms")
    reconnects = total_increase(rec.series(Series.RECONNECTS_TOTAL))
    stale = len(rec.named("ws.stale"))
    if reconnects or stale:
        broken.append(f"market data is continuous: {stale} stale detections, "
                      f"{reconnects:.0f} reconnects")
    missing = total_increase(rec.series(Series.SNAPSHOTS_MISSING_TOTAL))
    if missing:
        broken.append(f"every feature vector exists: {missing:.0f} snapshots missing")
    odd_orders = len(rec.named("order.unknown")) + len(rec.named("reconcile.mismatch"))
    if odd_orders:
        broken.append(f"order state is known: {odd_orders} unknown outcomes or mismatches")
    if not broken:
        return Verdict.NOT_SEEN, ["no broken assumption found: no errors, reconnects or gaps"], None
    return Verdict.SEEN, [f"assumption broken: {b}" for b in broken], rec.start_ts


_RULES: Mapping[str, Rule] = {
    "orders_missing": _orders_missing,
    "cancel_then_fill": _cancel_then_fill,
    "ws_frozen": _ws_frozen,
    "snapshots_stalled": _snapshots_stalled,
    "spread_with_503": _spread_with_503,
    "unexplained_position": _unexplained_position,
    "retry_cascade": _retry_cascade,
    "backtest_vs_live": _backtest_vs_live,
}


def evaluate(rec: Recording, config: PlaybookConfig | None = None) -> list[Finding]:
    """One :class:`Finding` per symptom of :data:`PLAYBOOK`, in playbook order."""
    cfg = config or PlaybookConfig()
    findings = []
    for symptom in PLAYBOOK:
        verdict, evidence, first = _RULES[symptom.key](rec, cfg)
        findings.append(Finding(symptom, verdict, tuple(evidence), first))
    return findings
