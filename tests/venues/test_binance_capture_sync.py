"""A real Binance USDⓈ-M capture (combined stream + REST snapshots, 2021) through the native
decoder and depth sync, in arrival order, to the book an independent replay builds from the
same files with decimal strings; tick and lot come from the capture's exchangeInfo.

The capture lives outside the repository: ``VENUEGUARD_BINANCE_FIXTURES`` (default
``../shared/binance/fixtures`` relative to the repository root).
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from venueguard.core.book import APPLIED, ApplyStatus, BookConfig
from venueguard.venues.binance.depth import DepthSync
from venueguard.venues.binance.messages import DepthUpdate, decode, depth_snapshot, increments

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(os.environ.get("VENUEGUARD_BINANCE_FIXTURES",
                               ROOT.parent / "shared" / "binance" / "fixtures"))
WS = FIXTURES / "BINANCE_FUTURES.ws"
DEPTH = FIXTURES / "BINANCE_FUTURES.http.depth"
INFO = FIXTURES / "BINANCE_FUTURES.exchangeInfo"
if not (WS.exists() and DEPTH.exists() and INFO.exists()):
    pytest.skip(f"Binance captures not found in {FIXTURES} (set VENUEGUARD_BINANCE_FIXTURES)",
                allow_module_level=True)


def timed_lines(path: Path, skip_first: bool, limit: int | None = None
                ) -> list[tuple[float, str, str]]:
    """``(receive time, prefix, body)`` of each ``<prefix> -> <ts>: <body>`` or ``<ts>: <body>``
    line (the first ``limit`` lines when given)."""
    out = []
    for n, line in enumerate(path.read_text().splitlines()[:limit]):
        if not line.strip() or (skip_first and n == 0):
            continue
        prefix, _, rest = line.partition(" -> ") if line.startswith("http") else ("", "", line)
        stamp, _, body = rest.partition(": ")
        out.append((float(stamp), prefix, body))
    return out


def independent(snapshot: dict[str, Any], events: list[dict[str, Any]]
                ) -> dict[str, dict[Decimal, Decimal]]:
    sides = {"b": {Decimal(p): Decimal(q) for p, q in snapshot["bids"]},
             "a": {Decimal(p): Decimal(q) for p, q in snapshot["asks"]}}
    last = snapshot["lastUpdateId"]
    prev: int | None = None
    for event in events:
        if event["u"] < last:
            continue
        assert (event["U"] <= last <= event["u"]) if prev is None else event["pu"] == prev
        for key in ("b", "a"):
            for price, qty in event[key]:
                if Decimal(qty) == 0:
                    sides[key].pop(Decimal(price), None)
                else:
                    sides[key][Decimal(price)] = Decimal(qty)
        prev = event["u"]
    return sides


@pytest.mark.parametrize("symbol", ["SUSHIUSDT", "AKROUSDT"])
def test_the_capture_syncs_to_the_independent_book(symbol: str) -> None:
    info = orjson.loads(timed_lines(INFO, False, limit=1)[0][2])
    tick, lot = increments(info)[symbol]
    assert tick is not None and lot is not None
    snapshots = {prefix.split("symbol=")[1].split("&")[0]: (ts, body)
                 for ts, prefix, body in timed_lines(DEPTH, False)}
    snap_ts, snap_body = snapshots[symbol]
    sync = DepthSync(symbol, BookConfig(tick=tick, lot=lot, whole_sizes=False))
    stream = f"{symbol.lower()}@depth@100ms"
    events: list[dict[str, Any]] = []
    snapped = applied = 0
    for ts, _, body in timed_lines(WS, True):
        if not snapped and ts >= snap_ts:
            assert sync.on_snapshot(depth_snapshot(snap_body), ts) is APPLIED
            snapped = 1
        frame = orjson.loads(body)
        if frame["stream"] != stream:
            continue
        events.append(frame["data"])
        msg = decode(body)
        assert isinstance(msg, DepthUpdate)
        result = sync.on_update(msg, ts)
        assert result.status is not ApplyStatus.RESYNC, result
        applied += result is APPLIED
    assert snapped and applied > 50 and sync.book.valid
    expected = independent(orjson.loads(snap_body), events)
    bids, asks = sync.book.depth()
    assert bids == sorted(((float(p), float(q)) for p, q in expected["b"].items()), reverse=True)
    assert asks == sorted((float(p), float(q)) for p, q in expected["a"].items())
    assert sync.last_id == events[-1]["u"]


def test_the_capture_through_the_session_pipeline_builds_the_same_books() -> None:
    """Every frame of the capture (depth, bookTicker, aggTrade, kline) through the session's
    pipeline (timestamp checks off: the capture is old), snapshots where they were received."""
    from venueguard.io.binance_md import BinanceMdConfig, BinanceMdState

    info = orjson.loads(timed_lines(INFO, False, limit=1)[0][2])
    steps = increments(info)
    snapshots = {prefix.split("symbol=")[1].split("&")[0]: (ts, body)
                 for ts, prefix, body in timed_lines(DEPTH, False)}
    state = BinanceMdState(BinanceMdConfig(check_timestamps=False, increments=steps))
    state.begin(0.0)
    state.expect([f"{s.lower()}@depth@100ms" for s in snapshots])
    pending = dict(snapshots)
    events: dict[str, list[dict[str, Any]]] = {s: [] for s in snapshots}
    for ts, _, body in timed_lines(WS, True):
        for symbol, (snap_ts, snap_body) in list(pending.items()):
            if ts >= snap_ts:
                assert state.on_snapshot(symbol, snap_body, ts)
                del pending[symbol]
        data = orjson.loads(body)["data"]
        if data.get("e") == "depthUpdate":
            events[data["s"]].append(data)
        state.on_frame(body.encode(), ts, 0)
    counters = state.counters
    # kline events are not served by this session: counted as unknown, and no book resyncs
    assert counters.gaps == 0 and counters.resyncs == 0 and not pending
    assert counters.rejected == counters.malformed == 30
    assert state.resync_reason is None
    for symbol, (_, snap_body) in snapshots.items():
        expected = independent(orjson.loads(snap_body), events[symbol])
        bids, asks = state.depth.book(symbol).depth()
        assert bids == sorted(((float(p), float(q)) for p, q in expected["b"].items()),
                              reverse=True)
        assert asks == sorted((float(p), float(q)) for p, q in expected["a"].items())
    assert state.tapes and state.quotes  # trades and tickers of the capture were taken
