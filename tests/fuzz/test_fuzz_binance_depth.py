"""Fuzz: Binance USDⓈ-M depth diffs through decode -> the documented sync -> the neutral book,
against an oracle written from Binance's documentation alone (decimal strings, exact tick and
lot from exchangeInfo, broken ``U``/``u``/``pu``). Never a silent change: each diff is applied
exactly as the oracle applies it, skipped as old news with the book unchanged, or refused with
the book invalid (awaiting a snapshot); a valid book never holds an impossible level."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from fuzzcfg import FUZZ
from hypothesis import given
from hypothesis import strategies as st

from venueguard.core.book import APPLIED, ApplyStatus, BookConfig
from venueguard.venues.binance.depth import DepthSync
from venueguard.venues.binance.messages import DepthUpdate, MessageError, decode, depth_snapshot

TICK, LOT = "0.01", "0.001"
CONFIG = BookConfig(tick=float(TICK), lot=float(LOT), whole_sizes=False)
SNAPSHOT = {"lastUpdateId": 1000, "E": 10, "T": 9,
            "bids": [["100.00", "1.000"], ["99.99", "2.500"]],
            "asks": [["100.01", "0.750"], ["100.05", "3.000"]]}


def diff(first: int, last: int, prev: int) -> dict[str, Any]:
    return {"e": "depthUpdate", "E": 20, "T": 19, "s": "BTCUSDT", "U": first, "u": last,
            "pu": prev, "b": [], "a": []}


def update(data: dict[str, Any]) -> DepthUpdate:
    msg = decode(orjson.dumps({"stream": "btcusdt@depth@100ms", "data": data}))
    assert isinstance(msg, DepthUpdate)
    return msg


class Oracle:
    """Binance's procedure over decimal strings, written without the implementation."""

    def __init__(self) -> None:
        self.sides: dict[str, dict[Decimal, Decimal]] = {
            "b": {Decimal(p): Decimal(q) for p, q in SNAPSHOT["bids"]},  # type: ignore[attr-defined]
            "a": {Decimal(p): Decimal(q) for p, q in SNAPSHOT["asks"]},  # type: ignore[attr-defined]
        }
        self.last: int | None = None  # None: bridging from lastUpdateId 1000

    @staticmethod
    def _decimal(text: object) -> Decimal | None:
        if type(text) is not str or not text or any(c not in "0123456789." for c in text):
            return None
        if text.count(".") > 1 or text.startswith(".") or text.endswith("."):
            return None
        try:
            return Decimal(text)
        except InvalidOperation:
            return None

    def feed(self, data: object) -> str:
        """'applied', 'ignored' (old news, book unchanged) or 'refused' (book invalid)."""
        if type(data) is not dict or data.get("e") != "depthUpdate":
            return "refused"
        ids = [data.get(k) for k in ("E", "T", "U", "u", "pu")]
        if any(type(i) is not int or not 0 <= i < 2**63 for i in ids):
            return "refused"
        if type(data.get("s")) is not str or not data["s"]:
            return "refused"
        first, last, prev = ids[2], ids[3], ids[4]
        changes: list[tuple[str, Decimal, Decimal]] = []
        for side in ("b", "a"):
            levels = data.get(side)
            if type(levels) is not list:
                return "refused"
            for level in levels:
                if type(level) is not list or len(level) != 2:
                    return "refused"
                price, qty = self._decimal(level[0]), self._decimal(level[1])
                if price is None or qty is None:
                    return "refused"  # not a decimal string: the frame is unreadable
                changes.append((side, price, qty))
        assert type(first) is int and type(last) is int and type(prev) is int
        # Old news is skipped before its levels matter; what is applied must be possible.
        if self.last is None:
            if last < 1000:
                return "ignored"
            if first > 1000:
                return "refused"
        elif prev != self.last:
            return "ignored" if last <= self.last else "refused"
        for _, price, qty in changes:
            if price <= 0 or price > Decimal(10**9) or price % Decimal(TICK) or qty % Decimal(LOT):
                return "refused"
        for side, price, qty in changes:
            if qty == 0:
                self.sides[side].pop(price, None)
            else:
                self.sides[side][price] = qty
        self.last = last
        return "applied"


PRICES = st.sampled_from(["99.98", "99.99", "100.00", "100.01", "100.02", "100.05", "100.005",
                          "0", "-1", "1e2", "nan", "", "100.0.0", ".5", "100."])
QTYS = st.sampled_from(["0", "0.000", "1", "2.500", "0.001", "0.0005", "inf", "-2", "3", ""])


@st.composite
def streams(draw: st.DrawFn) -> list[object]:
    out: list[object] = []
    last = 1000
    for _ in range(draw(st.integers(1, 8))):
        first = last + draw(st.integers(-3, 4))
        new_last = first + draw(st.integers(0, 5))
        prev = last if draw(st.integers(0, 5)) else last + draw(st.integers(-3, 3))
        data: dict[str, Any] = diff(first, new_last, prev)
        for side in ("b", "a"):
            data[side] = [[draw(PRICES), draw(QTYS)] for _ in range(draw(st.integers(0, 3)))]
        if draw(st.integers(0, 9)) == 0:
            data[draw(st.sampled_from(["U", "u", "pu", "s", "b", "E"]))] = draw(
                st.sampled_from([None, "1", -1, 2**63, 1.5, [], ""]))
        out.append(data)
        if draw(st.booleans()):
            last = new_last
    return out


@FUZZ
@given(streams())
def test_fuzzed_diffs_match_the_oracle_or_are_refused(stream: list[object]) -> None:
    sync = DepthSync("BTCUSDT", CONFIG)
    assert sync.on_snapshot(depth_snapshot(orjson.dumps(SNAPSHOT)), 1.0) is APPLIED
    oracle = Oracle()
    for data in stream:
        before = sync.book.depth()
        expected = oracle.feed(data)
        try:
            result = sync.on_update(update(data), 2.0)  # type: ignore[arg-type]
        except (MessageError, AssertionError):
            assert expected == "refused", data
            return  # a frame that does not decode is counted by the session, which resyncs
        if expected == "refused":
            assert result.status is ApplyStatus.RESYNC and not sync.book.valid, data
            return
        if expected == "ignored":
            assert result.status is not ApplyStatus.APPLIED and sync.book.depth() == before, data
            continue
        assert result is APPLIED, (data, result)
        bids, asks = sync.book.depth()
        assert bids == sorted(((float(p), float(q)) for p, q in oracle.sides["b"].items()),
                              reverse=True)
        assert asks == sorted((float(p), float(q)) for p, q in oracle.sides["a"].items())
        for price, qty in bids + asks:  # never an impossible value in a valid book
            assert price > 0 and qty > 0


def _crossed(sides: dict[str, dict[Decimal, Decimal]]) -> bool:
    return bool(sides["b"] and sides["a"] and max(sides["b"]) >= min(sides["a"]))


@FUZZ
@given(streams())
def test_fuzzed_frames_through_the_session_pipeline(stream: list[object]) -> None:
    """The same diffs as frames of a combined stream through the session's whole pipeline
    (decode, E/T checks, sync, the crossed-book check): applied exactly, left alone, or
    refused and counted with the book invalid; never an impossible value in a valid book."""
    from venueguard.io.binance_md import BinanceMdConfig, BinanceMdState

    state = BinanceMdState(BinanceMdConfig(increments={"BTCUSDT": (float(TICK), float(LOT))}))
    state.begin(0.0)
    state.expect(["btcusdt@depth@100ms"])
    state.on_subscribed("btcusdt@depth@100ms", 0.0)
    assert state.on_snapshot("BTCUSDT", orjson.dumps(SNAPSHOT), 1.0)
    book = state.depth.book("BTCUSDT")
    oracle = Oracle()
    counters = state.counters
    for data in stream:
        before = book.depth()
        seen = (counters.rejected, counters.malformed, counters.gaps)
        expected = oracle.feed(data)
        if expected == "applied" and _crossed(oracle.sides):
            expected = "refused"  # a diff that crosses an uncrossed book is a gap
        if isinstance(data, dict) and data.get("s") != "BTCUSDT":
            expected = "refused"  # on btcusdt's stream, another symbol's (or no) event
        frame = orjson.dumps({"stream": "btcusdt@depth@100ms", "data": data})
        state.on_frame(frame, 2.0, 20)  # wall 20 ms: the diffs' E and T are current
        counted = (counters.rejected, counters.malformed, counters.gaps) != seen
        if expected == "refused":
            assert counted and not book.valid and state.resync_reason is not None, data
            return
        if expected == "ignored":
            assert book.valid and book.depth() == before, data
            continue
        assert book.valid and not counted, data
        bids, asks = book.depth()
        assert bids == sorted(((float(p), float(q)) for p, q in oracle.sides["b"].items()),
                              reverse=True)
        assert asks == sorted((float(p), float(q)) for p, q in oracle.sides["a"].items())
        assert all(p > 0 and q > 0 for p, q in bids + asks)
