"""Market process: the published deltas rebuild the engine's book, both formats, bursts, rate."""

from __future__ import annotations

import time

import pytest

from venueguard.sim.engine import Engine, Update
from venueguard.sim.instruments import DEFAULT_INSTRUMENTS

T0 = 1_700_000_000_000
Key = tuple[str, int]


class NaiveBook:
    """Applies orderBookL2 messages the way a careful client does (id -> price map for legacy)."""

    def __init__(self, partial: dict[str, object]) -> None:
        self.levels: dict[Key, dict[str, object]] = {}
        for row in partial["data"]:  # type: ignore[attr-defined]
            self.levels[(row["side"], row["id"])] = dict(row)

    def apply(self, update: Update) -> None:
        for row in update.rows:
            key = (str(row["side"]), int(row["id"]))  # type: ignore[call-overload]
            if update.action == "insert":
                assert key not in self.levels, f"insert for a live id {key}"
                assert "price" in row and "size" in row
                self.levels[key] = dict(row)
            elif update.action == "update":
                assert key in self.levels, f"update for an unknown id {key}"
                if "price" in row:
                    assert row["price"] == self.levels[key]["price"]
                self.levels[key]["size"] = row["size"]
            else:
                assert update.action == "delete"
                assert key in self.levels, f"delete for an unknown id {key}"
                del self.levels[key]

    def snapshot(self) -> set[tuple[str, int, int, float]]:
        return {(str(r["side"]), int(r["id"]), int(r["size"]), float(r["price"]))  # type: ignore[call-overload]
                for r in self.levels.values()}

    def crossed(self) -> bool:
        bids = [float(r["price"]) for r in self.levels.values() if r["side"] == "Buy"]  # type: ignore[arg-type]
        asks = [float(r["price"]) for r in self.levels.values() if r["side"] == "Sell"]  # type: ignore[arg-type]
        return bool(bids and asks and max(bids) >= min(asks))


def rows_set(rows: list[dict[str, object]]) -> set[tuple[str, int, int, float]]:
    return {(str(r["side"]), int(r["id"]), int(r["size"]), float(r["price"]))  # type: ignore[call-overload]
            for r in rows}


def run_with_orders(engine: Engine, symbol: str, steps: int, step_ms: int) -> list[Update]:
    """Advance in steps, placing and cancelling account orders around the touch as we go."""
    updates: list[Update] = []
    now = T0
    spec = engine.spec(symbol)
    for i in range(steps):
        now += step_ms
        engine.advance(now)
        if i % 7 == 3:
            top = engine.get_book_l2(symbol, 1)
            price = float(top[1]["price"]) + (spec.tick_size if i % 2 else 0)  # type: ignore[arg-type]
            engine.place_order({"symbol": symbol, "side": "Buy", "orderQty": spec.lot_size * 3,
                                "price": price}, now)
        if i % 11 == 5:
            engine.place_order({"symbol": symbol, "side": "Sell", "orderQty": spec.lot_size * 2,
                                "ordType": "Market"}, now)
        if i % 13 == 12:
            engine.cancel_all(symbol, None, None, now)
        updates.extend(engine.drain_updates())
    return updates


@pytest.mark.parametrize("book_format", ["modern", "legacy"])
def test_deltas_rebuild_the_book_and_it_never_crosses(book_format: str) -> None:
    engine = Engine(["XBTUSD"], seed=3, rate_msgs_s=4000, start_ms=T0, book_format=book_format)
    naive = NaiveBook(engine.partial("orderBookL2", "XBTUSD"))
    naive25 = NaiveBook(engine.partial("orderBookL2_25", "XBTUSD"))
    updates = run_with_orders(engine, "XBTUSD", 300, 20)
    l2 = [u for u in updates if u.table == "orderBookL2"]
    assert len(l2) > 10_000
    for u in l2:
        naive.apply(u)
        assert not naive.crossed()
    for u in updates:
        if u.table == "orderBookL2_25":
            naive25.apply(u)
            sides = [s for s, _ in naive25.levels]
            assert sides.count("Buy") <= 25 and sides.count("Sell") <= 25
    assert naive.snapshot() == rows_set(engine.get_book_l2("XBTUSD", 0))
    assert naive25.snapshot() == rows_set(engine.get_book_l2("XBTUSD", 25))
    assert any(u.table == "execution" and u.private for u in updates)


def test_modern_rows_carry_price_and_times_and_legacy_rows_do_not() -> None:
    modern = Engine(["XBTUSD"], seed=5, rate_msgs_s=2000, start_ms=T0)
    legacy = Engine(["XBTUSD"], seed=5, rate_msgs_s=2000, start_ms=T0, book_format="legacy")
    for engine in (modern, legacy):
        engine.advance(T0 + 2000)
    for u in modern.drain_updates():
        if u.table == "orderBookL2":
            assert {"price", "timestamp", "transactTime"} <= set(u.rows[0])
    legacy_updates = [u for u in legacy.drain_updates() if u.table == "orderBookL2"]
    assert legacy_updates
    for u in legacy_updates:
        row = u.rows[0]
        assert "transactTime" not in row and "timestamp" in row
        assert ("price" in row) == (u.action == "insert")
        assert ("size" in row) == (u.action != "delete")


@pytest.mark.parametrize("symbol", ["XBTUSD", "SOLUSDT", "ETHUSD"])
def test_legacy_ids_encode_the_price(symbol: str) -> None:
    engine = Engine([symbol], seed=9, rate_msgs_s=3000, start_ms=T0, book_format="legacy")
    spec = DEFAULT_INSTRUMENTS[symbol]
    engine.advance(T0 + 3000)
    rows = engine.get_book_l2(symbol, 0) + [
        r for u in engine.drain_updates() if u.table == "orderBookL2" and u.action == "insert"
        for r in u.rows]
    assert rows
    for row in rows:
        price = float(row["price"])  # type: ignore[arg-type]
        assert row["id"] == round(100_000_000 * spec.legacy_index - price / spec.legacy_tick)
    if symbol == "XBTUSD":
        assert all(r["id"] == 8_800_000_000 - round(float(r["price"]) * 100)  # type: ignore[arg-type]
                   for r in rows)


def test_legacy_update_rows_resolve_through_the_id_alone() -> None:
    engine = Engine(["SOLUSDT"], seed=4, rate_msgs_s=3000, start_ms=T0, book_format="legacy")
    spec = engine.spec("SOLUSDT")
    engine.advance(T0 + 2000)
    prices = {int(r["id"]): float(r["price"]) for r in engine.get_book_l2("SOLUSDT", 0)}  # type: ignore[call-overload, arg-type]
    assert prices
    for level_id, price in prices.items():
        assert spec.price(spec.legacy_ticks(level_id)) == price


def test_intensity_bursts_and_event_rate_follow_it() -> None:
    engine = Engine(["XBTUSD"], seed=21, rate_msgs_s=200, start_ms=T0, publish_l2_25=False)
    samples: list[tuple[float, int]] = []
    now = T0
    last_events = 0
    for _ in range(1200):  # 10 minutes of simulated time in 500 ms steps
        now += 500
        engine.advance(now)
        engine.drain_updates()
        samples.append((engine.intensity("XBTUSD"), engine.market_events - last_events))
        last_events = engine.market_events
    levels = [s[0] for s in samples]
    assert min(levels) < 1.1
    assert max(levels) > 2.5
    calm = [n for i, n in samples if i < 1.2]
    burst = [n for i, n in samples if i > 2.5]
    assert calm and burst
    assert sum(burst) / len(burst) > 2 * sum(calm) / len(calm)
    assert engine.intensity(None) == engine.intensity("XBTUSD")


def test_same_seed_same_stream_whatever_the_advance_cadence() -> None:
    def stream(step_ms: int) -> list[tuple[str, str, list[dict[str, object]]]]:
        engine = Engine(["XBTUSD"], seed=17, rate_msgs_s=1500, start_ms=T0)
        out: list[tuple[str, str, list[dict[str, object]]]] = []
        now = T0
        while now < T0 + 6000:
            now = min(now + step_ms, T0 + 6000)
            engine.advance(now)
            out.extend((u.table, u.action, u.rows) for u in engine.drain_updates())
        return out

    fine = stream(1)
    coarse = stream(1500)
    assert len(fine) > 5000
    assert fine == coarse
    other = Engine(["XBTUSD"], seed=18, rate_msgs_s=1500, start_ms=T0)
    other.advance(T0 + 6000)
    assert [(u.table, u.action, u.rows) for u in other.drain_updates()] != fine


def test_timestamps_never_go_backwards_per_symbol() -> None:
    engine = Engine(["XBTUSD", "SOLUSDT"], seed=2, rate_msgs_s=4000, start_ms=T0)
    engine.advance(T0 + 3000)
    last: dict[str, str] = {}
    for u in engine.drain_updates():
        if u.table == "orderBookL2":
            ts = str(u.rows[0]["timestamp"])
            assert u.symbol is not None
            assert ts >= last.get(u.symbol, "")
            last[u.symbol] = ts
    assert set(last) == {"XBTUSD", "SOLUSDT"}


def test_generation_rate_has_a_generous_floor() -> None:
    engine = Engine(["XBTUSD"], seed=1, rate_msgs_s=100_000, start_ms=T0)
    started = time.process_time()
    messages = 0
    now = T0
    for _ in range(10):
        now += 50
        engine.advance(now)
        messages += sum(1 for u in engine.drain_updates() if u.table == "orderBookL2")
    elapsed = max(time.process_time() - started, 1e-9)
    assert messages > 20_000
    assert messages / elapsed > 5_000


def test_burstiness_zero_gives_a_calm_market() -> None:
    engine = Engine(["XBTUSD"], seed=5, rate_msgs_s=300, start_ms=T0, burstiness=0.0)
    highest = 0.0
    now = T0
    for _ in range(240):  # two minutes: seed 5 bursts within the first minute when bursty
        now += 500
        engine.advance(now)
        engine.drain_updates()
        highest = max(highest, engine.intensity("XBTUSD"))
    assert highest == 1.0
    bursty = Engine(["XBTUSD"], seed=5, rate_msgs_s=300, start_ms=T0)
    bursty.advance(now)
    assert bursty.market_events > engine.market_events


def _spread_by_intensity(widen: float, seed: int) -> tuple[float, float]:
    """Mean spread (ticks) sampled every second while calm (intensity < 1.5) and in bursts
    (intensity > 3), over 10 minutes of a 50 msgs/s market with a burst every minute."""
    engine = Engine(["XBTUSD"], seed=seed, rate_msgs_s=50, start_ms=T0)
    market = engine.markets["XBTUSD"]
    market.params.spread_widen_ticks = widen
    calm: list[int] = []
    hot: list[int] = []
    now = T0
    for second in range(600):
        if second % 60 == 30:
            engine.burst(8.0, "XBTUSD", now)
        now += 1000
        engine.advance(now)
        engine.drain_updates()
        bid, _, ask, _ = market.book.top()
        assert bid is not None and ask is not None and bid < ask
        level = engine.intensity("XBTUSD")
        if level < 1.5:
            calm.append(ask - bid)
        elif level > 3.0:
            hot.append(ask - bid)
    assert len(hot) > 40 and len(calm) > 250
    return sum(calm) / len(calm), sum(hot) / len(hot)


@pytest.mark.parametrize("seed", [1, 2])
def test_spread_widens_in_bursts_when_makers_pull_liquidity(seed: int) -> None:
    calm, hot = _spread_by_intensity(2.0, seed)
    flat_calm, flat_hot = _spread_by_intensity(0.0, seed)
    assert hot > 2.0 * calm  # makers keep a gap that grows with the excitation
    assert flat_hot < 1.4 * flat_calm  # without pulling, a burst barely moves the spread


def test_a_burst_jumps_the_intensity_then_decays_and_replays_the_same() -> None:
    streams = []
    for step_ms in (7, 50):
        engine = Engine(["XBTUSD"], seed=4, rate_msgs_s=500, start_ms=T0, burstiness=0.0)
        now = T0
        fired = False
        rows: list[object] = []
        while now < T0 + 20_000:
            now = min(now + step_ms, T0 + 20_000)
            if not fired and now >= T0 + 5_000:
                engine.advance(T0 + 5_000)
                engine.burst(6.0, None, T0 + 5_000)
                assert engine.intensity("XBTUSD") == pytest.approx(7.0)
                fired = True
            engine.advance(now)
            rows.extend((u.table, u.action, str(u.rows)) for u in engine.drain_updates())
        assert engine.intensity("XBTUSD") < 1.5
        streams.append(rows)
    assert streams[0] == streams[1]  # same seed and burst time: same stream whatever the cadence


def _two_markets_with_orders(step_ms: int, *, publish_l2: bool = True) -> tuple[
        Engine, list[tuple[str, str, list[dict[str, object]]]]]:
    """A sparse two-instrument market with account orders and a dead man's switch, advanced in
    steps of ``step_ms`` (order calls at fixed times, whatever the cadence). Instruments are
    interleaved per 10 ms slice of market time, so cadences whose calls fall on slice bounds
    give one stream; most slices here hold no event at all."""
    engine = Engine(["XBTUSD", "ETHUSD"], seed=9, rate_msgs_s=12, start_ms=T0,
                    publish_l2=publish_l2)
    calls = {T0 + 1_000: "take", T0 + 2_500: "dms", T0 + 4_200: "rest"}
    out: list[tuple[str, str, list[dict[str, object]]]] = []
    now = T0
    while now < T0 + 9_000:
        nxt = min(now + step_ms, T0 + 9_000, *(t for t in calls if t > now))
        engine.advance(nxt)
        call = calls.get(nxt)
        if call in ("take", "rest"):  # buy at the ask, or rest ten ticks under the bid
            market = engine.markets["XBTUSD"]
            ask, bid = market.book.best_ask(), market.book.best_bid()
            assert ask is not None and bid is not None
            tick = ask if call == "take" else bid - 10
            engine.place_order({"symbol": "XBTUSD", "side": "Buy", "orderQty": 300,
                                "price": market.spec.price(tick), "clOrdID": f"c{nxt}"}, nxt)
        elif call == "dms":
            engine.cancel_all_after(3_000, nxt)
        now = nxt
        out.extend((u.table, u.action, u.rows) for u in engine.drain_updates())
    return engine, out


def test_sparse_markets_give_the_same_stream_whatever_the_cadence() -> None:
    fine = _two_markets_with_orders(10)[1]
    assert {"orderBookL2", "trade", "quote", "order", "execution", "position"} <= {
        t for t, _, _ in fine}
    assert any(a == "update" and r[0].get("ordStatus") == "Canceled"  # the switch fired
               and "Cancel-all-after" in str(r[0].get("text", ""))
               for t, a, r in fine if t == "order")
    for step_ms in (20, 100, 1_000, 9_000):
        assert _two_markets_with_orders(step_ms)[1] == fine, step_ms


def test_without_l2_rows_book_changes_are_counted_and_everything_else_is_the_same() -> None:
    full_engine, full = _two_markets_with_orders(100)
    lean_engine, lean = _two_markets_with_orders(100, publish_l2=False)
    assert [u for u in full if not u[0].startswith("orderBookL2")] == lean
    assert {t for t, _, _ in lean} == {"trade", "quote", "instrument", "order", "execution",
                                       "position"}
    changes = sum(m.book.unpublished_changes for m in lean_engine.markets.values())
    assert changes == sum(1 for t, _, _ in full if t == "orderBookL2")
    for symbol, market in full_engine.markets.items():
        assert market.book.rows(0, "t") == lean_engine.markets[symbol].book.rows(0, "t")


def test_a_coarser_slice_or_unpublished_positions_change_nothing_else() -> None:
    def run(slice_ms: int, positions: bool = True) -> tuple[
            Engine, list[tuple[str, str, list[dict[str, object]]]]]:
        engine = Engine(["XBTUSD"], seed=4, rate_msgs_s=40, start_ms=T0, slice_ms=slice_ms,
                        publish_positions=positions)
        out: list[tuple[str, str, list[dict[str, object]]]] = []
        for step in range(1, 80):
            now = T0 + step * 100
            engine.advance(now)
            if step % 10 == 0:  # cross the spread: fills and position changes
                ask = engine.markets["XBTUSD"].book.best_ask()
                assert ask is not None
                engine.place_order({"symbol": "XBTUSD", "side": "Buy", "orderQty": 200,
                                    "price": engine.spec("XBTUSD").price(ask + 2)}, now)
            out.extend((u.table, u.action, u.rows) for u in engine.drain_updates())
        return engine, out

    fine_engine, fine = run(10)
    coarse_engine, coarse = run(100)
    assert sum(1 for t, _, _ in fine if t == "position") > 0
    assert [u for u in fine if u[0] != "position"] == [u for u in coarse if u[0] != "position"]
    assert fine_engine.get_positions() == coarse_engine.get_positions()
    quiet_engine, quiet = run(100, positions=False)              # positions kept, not published
    assert [u for u in fine if u[0] != "position"] == quiet
    assert quiet_engine.get_positions() == coarse_engine.get_positions()
    for bad in (0, -5, True, 2.5):
        with pytest.raises(ValueError, match="slice_ms must be a whole number"):
            Engine(["XBTUSD"], seed=4, rate_msgs_s=40, start_ms=T0, slice_ms=bad)  # type: ignore[arg-type]


def test_the_rate_is_shared_among_the_symbols() -> None:
    """``--rate`` is the market's messages a second in all (the help and docs say so): two
    symbols each get about half of what one alone gets."""
    def book_messages(symbols: list[str]) -> dict[str, int]:
        engine = Engine(symbols, seed=3, rate_msgs_s=400, start_ms=T0, burstiness=0.0)
        counts = dict.fromkeys(symbols, 0)
        now = T0
        for _ in range(120):  # one minute
            now += 500
            engine.advance(now)
            for u in engine.drain_updates():
                if u.table == "orderBookL2" and u.symbol in counts:
                    counts[u.symbol] += 1
        return counts

    alone = book_messages(["XBTUSD"])["XBTUSD"]
    shared = book_messages(["XBTUSD", "ETHUSD"])
    assert alone > 1000
    for count in shared.values():
        assert 0.35 * alone < count < 0.65 * alone, (alone, shared)
