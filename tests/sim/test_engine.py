"""Engine surface: partials, instruments, positions, truth, queries and determinism."""

from __future__ import annotations

import orjson
import pytest

from venueguard.sim.engine import Engine, InstrumentSpec
from venueguard.sim.instruments import DEFAULT_INSTRUMENTS, instruments_for
from venueguard.sim.positions import Position

T0 = 1_700_000_000_000


def scripted_session(seed: int) -> tuple[list[bytes], bytes]:
    """Run a fixed script of market time and account calls; return the serialised output."""
    engine = Engine(["XBTUSD", "SOLUSDT"], seed=seed, rate_msgs_s=3000, start_ms=T0)
    messages: list[bytes] = []
    now = T0
    for step in range(60):
        now += 97
        engine.advance(now)
        if step % 5 == 0:
            top = engine.get_book_l2("XBTUSD", 1)
            engine.place_order({"symbol": "XBTUSD", "side": "Buy", "orderQty": 200,
                                "price": top[1]["price"], "clOrdID": f"c{step}"}, now)
        if step % 9 == 4:
            engine.place_order({"symbol": "SOLUSDT", "side": "Sell", "orderQty": 2000,
                                "ordType": "Market"}, now)
        if step % 17 == 16:
            engine.cancel_all(None, None, None, now)
        if step == 30:
            engine.cancel_all_after(1500, now)
        messages.extend(orjson.dumps((u.table, u.action, u.symbol, u.rows, u.private))
                        for u in engine.drain_updates())
    return messages, orjson.dumps(engine.truth())


def test_same_seed_same_calls_same_output() -> None:
    first = scripted_session(5)
    second = scripted_session(5)
    assert len(first[0]) > 1000
    assert first == second
    assert scripted_session(6)[0] != first[0]


def test_orderbook_partial_is_complete_and_ordered() -> None:
    engine = Engine(["XBTUSD", "SOLUSDT"], seed=1, rate_msgs_s=2000, start_ms=T0)
    engine.advance(T0 + 1000)
    msg = engine.partial("orderBookL2", "XBTUSD")
    assert msg["action"] == "partial"
    assert msg["keys"] == ["symbol", "id", "side"]
    assert msg["filter"] == {"symbol": "XBTUSD"}
    assert set(msg["types"]) >= {"symbol", "id", "side", "size", "price"}  # type: ignore[arg-type]
    data = msg["data"]
    assert isinstance(data, list)
    assert data == engine.get_book_l2("XBTUSD", 0)
    sells = [r["price"] for r in data if r["side"] == "Sell"]
    buys = [r["price"] for r in data if r["side"] == "Buy"]
    assert sells == sorted(sells, reverse=True) and buys == sorted(buys, reverse=True)
    assert data.index(next(r for r in data if r["side"] == "Buy")) == len(sells)
    assert max(buys) < min(sells)
    top25 = engine.partial("orderBookL2_25", "XBTUSD")["data"]
    assert isinstance(top25, list)
    book = engine.markets["XBTUSD"].book
    assert len(top25) == min(25, book.depth(True)) + min(25, book.depth(False))
    assert book.depth(True) + book.depth(False) > 40
    assert top25 == engine.get_book_l2("XBTUSD", 25)
    assert {r["symbol"] for r in engine.partial("orderBookL2", None)["data"]} == {  # type: ignore[attr-defined]
        "XBTUSD", "SOLUSDT"}


def test_public_and_private_partials() -> None:
    engine = Engine(["XBTUSD"], seed=2, rate_msgs_s=2000, start_ms=T0, account=4242)
    engine.advance(T0 + 3000)
    quote = engine.partial("quote", "XBTUSD")["data"]
    assert isinstance(quote, list) and len(quote) == 1
    book = engine.get_book_l2("XBTUSD", 1)
    assert quote[0]["askPrice"] == book[0]["price"] and quote[0]["bidPrice"] == book[1]["price"]
    trade = engine.partial("trade", "XBTUSD")["data"]
    assert isinstance(trade, list) and trade and trade[0]["trdType"] == "Regular"
    instrument = engine.partial("instrument", "XBTUSD")
    assert instrument["keys"] == ["symbol"]
    order_partial = engine.partial("order", "XBTUSD")
    assert order_partial["filter"] == {"account": 4242, "symbol": "XBTUSD"}
    assert order_partial["data"] == []
    engine.place_order({"symbol": "XBTUSD", "side": "Buy", "orderQty": 100, "price": 1000},
                       T0 + 3000)
    assert [r["price"] for r in engine.partial("order", None)["data"]] == [1000.0]  # type: ignore[attr-defined]
    assert engine.partial("position", None)["keys"] == ["account", "symbol", "currency"]
    assert engine.partial("execution", "XBTUSD")["data"] == []
    with pytest.raises(Exception, match="Unknown table: nope"):
        engine.partial("nope", None)


def test_instrument_rows_have_the_fields_clients_read() -> None:
    engine = Engine(instruments_for(["XBTUSD", "SOLUSDT", "ETHUSD"]), seed=1, rate_msgs_s=100,
                    start_ms=T0)
    rows = {r["symbol"]: r for r in engine.get_instruments(active_only=True)}
    xbt = rows["XBTUSD"]
    assert (xbt["tickSize"], xbt["lotSize"], xbt["state"], xbt["typ"]) == (0.5, 100, "Open",
                                                                          "FFWCSX")
    assert xbt["isInverse"] is True and xbt["settlCurrency"] == "XBt"
    for row in rows.values():
        for key in ("maxOrderQty", "maxPrice", "bidPrice", "askPrice", "lastPrice", "markPrice",
                    "timestamp", "underlying", "quoteCurrency", "multiplier"):
            assert key in row, key
        assert row["bidPrice"] < row["askPrice"]  # type: ignore[operator]
    assert rows["SOLUSDT"]["underlyingToPositionMultiplier"] == 10_000
    with pytest.raises(KeyError, match="NOPE"):
        instruments_for(["NOPE"])


def test_spec_rejects_inconsistent_ticks() -> None:
    with pytest.raises(ValueError):
        InstrumentSpec(symbol="BAD", tick_size=0.015, lot_size=1, max_order_qty=10,
                       start_price=1.0, legacy_index=1, legacy_tick=0.01)
    spec = DEFAULT_INSTRUMENTS["XBTUSD"]
    assert spec.ticks(50_000.5) == 100_001 and spec.ticks(50_000.2) is None
    assert spec.legacy_id(spec.ticks(26_902.0) or 0) == 8_800_000_000 - 2_690_200


def test_position_math_linear_with_a_flip() -> None:
    spec = DEFAULT_INSTRUMENTS["SOLUSDT"]  # multiplier 100 USDt per contract per USD
    pos = Position(spec, 1, 100.0, T0)
    pos.apply_fill(True, 10_000, 100.0, 0.0, T0)
    pos.apply_fill(True, 10_000, 110.0, 0.0, T0)
    assert pos.avg_entry_price == pytest.approx(105.0)
    pos.apply_fill(False, 5_000, 120.0, 0.0, T0)
    assert pos.qty == 15_000
    assert pos.realised_gross == pytest.approx(100 * 5_000 * 15.0)
    assert pos.avg_entry_price == pytest.approx(105.0)
    pos.apply_fill(False, 20_000, 90.0, 0.0, T0)  # closes 15,000 and opens a 5,000 short
    assert pos.qty == -5_000
    assert pos.realised_gross == pytest.approx(100 * 5_000 * 15.0 - 100 * 15_000 * 15.0)
    assert pos.avg_entry_price == pytest.approx(90.0)
    pos.mark = 80.0
    assert pos.unrealised_pnl == round(100 * 5_000 * 10.0)


def test_position_math_inverse_and_commission() -> None:
    spec = DEFAULT_INSTRUMENTS["XBTUSD"]
    pos = Position(spec, 1, 50_000.0, T0)
    pos.apply_fill(True, 100, 40_000.0, 0.0, T0)
    pos.apply_fill(True, 100, 60_000.0, 0.0, T0)
    assert pos.avg_entry_price == pytest.approx(48_000.0)  # harmonic mean, as for inverse
    pos.mark = 50_000.0
    expected = 1e8 * 200 * (1 / 48_000 - 1 / 50_000)
    assert pos.unrealised_pnl == round(expected)
    pos.apply_fill(False, 200, 50_000.0, 300.0, T0)
    assert pos.qty == 0
    assert pos.realised_pnl == round(expected - 300)
    assert pos.unrealised_pnl == 0


def test_positions_truth_and_trade_history_after_fills() -> None:
    engine = Engine(["XBTUSD"], seed=8, rate_msgs_s=1000, start_ms=T0)
    engine.advance(T0 + 500)
    row = engine.place_order({"symbol": "XBTUSD", "side": "Buy", "orderQty": 500,
                              "ordType": "Market", "clOrdID": "m1"}, T0 + 500)
    assert row["ordStatus"] == "Filled"
    positions = engine.get_positions()
    assert [(p["symbol"], p["currentQty"]) for p in positions] == [("XBTUSD", 500)]
    assert positions[0]["avgEntryPrice"] == pytest.approx(row["avgPx"], rel=1e-6)
    trades = engine.get_executions()
    assert trades and {t["execType"] for t in trades} == {"Trade"}
    assert sum(int(t["lastQty"]) for t in trades) == 500  # type: ignore[call-overload]
    every = engine.get_executions(exec_types=None)
    assert every[0]["execType"] == "New"
    truth = engine.truth()
    assert [(o["clOrdID"], o["ordStatus"], o["cumQty"]) for o in truth["orders"]] == [  # type: ignore[attr-defined]
        ("m1", "Filled", 500)]
    assert truth["executions"] == every
    assert truth["positions"] == engine.get_positions()


def test_order_queries_page_and_filter() -> None:
    engine = Engine(["XBTUSD"], seed=8, rate_msgs_s=0, start_ms=T0)
    for i in range(5):
        engine.place_order({"symbol": "XBTUSD", "side": "Buy", "orderQty": 100,
                            "price": 1000 + i, "clOrdID": f"o{i}"}, T0)
    engine.cancel_orders([], ["o0"], None, T0)
    assert [o["clOrdID"] for o in engine.get_orders(count=2, start=1)] == ["o1", "o2"]
    assert [o["clOrdID"] for o in engine.get_orders(count=2, reverse=True)] == ["o4", "o3"]
    assert len(engine.get_orders(filter={"open": True})) == 4
    assert [o["clOrdID"] for o in engine.get_orders(filter={"ordStatus.isTerminated": True})] == [
        "o0"]
    assert [o["clOrdID"] for o in engine.get_orders(filter={"clOrdID": ["o1", "o3"]})] == [
        "o1", "o3"]
    assert engine.get_orders(symbol="SOLUSDT") == []


def test_pending_updates_are_bounded_when_nobody_drains() -> None:
    engine = Engine(["XBTUSD"], seed=1, rate_msgs_s=5000, start_ms=T0, max_pending_updates=1000)
    engine.advance(T0 + 2000)
    assert len(engine.drain_updates()) == 1000
    assert engine.dropped_updates > 0
    assert engine.drain_updates() == []


def test_mark_price_updates_reach_instrument_and_position() -> None:
    engine = Engine(["XBTUSD"], seed=3, rate_msgs_s=500, start_ms=T0)
    engine.place_order({"symbol": "XBTUSD", "side": "Sell", "orderQty": 100,
                        "ordType": "Market"}, T0)
    engine.drain_updates()
    engine.advance(T0 + 2500)
    updates = engine.drain_updates()
    marks = [r for u in updates if u.table == "instrument" for r in u.rows if "markPrice" in r]
    assert len(marks) == 2
    positions = [r for u in updates if u.table == "position" for r in u.rows]
    assert positions and positions[-1]["currentQty"] == -100
    assert positions[-1]["markPrice"] == marks[-1]["markPrice"]
