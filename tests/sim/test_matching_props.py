"""Properties of the matching engine under random sequences of account actions and market time.

Whatever the sequence: the book never crosses, every level's size is its market quantity plus
the resting account quantity, open orders satisfy ``cumQty + leavesQty == orderQty``, closed
ones have ``leavesQty == 0``, and the position equals the signed sum of the trade executions.
"""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from venueguard.sim.engine import Engine, SimError

T0 = 1_700_000_000_000
SYM = "XBTUSD"

limit = st.tuples(
    st.just("limit"), st.booleans(), st.integers(-4, 4), st.integers(1, 8),
    st.sampled_from(["GoodTillCancel"] * 4 + ["ImmediateOrCancel", "FillOrKill"]),
    st.integers(0, 4).map(lambda n: n == 0),  # post-only one time in five
)
action = st.one_of(
    limit, limit, limit,
    st.tuples(st.just("market"), st.booleans(), st.integers(1, 30)),
    st.tuples(st.just("amend"), st.integers(0, 50), st.integers(-2, 2), st.integers(0, 8)),
    st.tuples(st.just("amend"), st.integers(0, 50), st.just(0), st.integers(1, 3)),
    st.tuples(st.just("cancel"), st.integers(0, 50)),
    st.tuples(st.just("wait"), st.integers(1, 400)),
)


def check_invariants(engine: Engine, *, positions: bool = True) -> None:
    book = engine.markets[SYM].book
    bid, _, ask, _ = book.top()
    assert bid is None or ask is None or bid < ask
    for buy, levels in ((True, book.bids), (False, book.asks)):
        for tick, lv in levels.items():
            resting = list(lv.orders)
            assert all(o.is_open and o.buy == buy and o.tick == tick for o in resting)
            assert lv.acct == sum(o.leaves for o in resting)
            assert lv.mkt >= 0 and lv.mkt + lv.acct > 0
            assert all(0 <= o.ahead <= lv.mkt for o in resting)
    for o in engine.account.orders.values():
        if o.is_open:
            assert o.cum + o.leaves == o.order_qty and o.leaves > 0
            level = book.level(o.buy, o.tick or 0)
            assert level is not None and o in level.orders
        else:
            assert o.leaves == 0
    if not positions:
        return
    signed = sum(
        int(e["lastQty"]) * (1 if e["side"] == "Buy" else -1)  # type: ignore[call-overload]
        for e in engine.get_executions(count=10**9))
    positions = {p["symbol"]: p["currentQty"] for p in engine.get_positions()}
    assert positions.get(SYM, 0) == signed


def thin_engine(seed: int) -> Engine:
    """A slow market around 100.0 with one lot per level, so account orders meet each other."""
    engine = Engine([SYM], seed=seed, rate_msgs_s=20, start_ms=T0)
    book = engine.markets[SYM].book
    ts = engine.iso(T0)
    for tick in [-k for k in book.bid_keys]:
        book.set_market(True, tick, 0, ts)
    for tick in list(book.ask_keys):
        book.set_market(False, tick, 0, ts)
    for i in range(10):
        book.set_market(True, 200 - i, 100, ts)
        book.set_market(False, 201 + i, 100, ts)
    engine.markets[SYM].fair = 200.5
    engine.drain_updates()
    return engine


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(action, min_size=5, max_size=60), st.integers(0, 3))
def test_random_action_sequences_keep_the_invariants(
    actions: list[tuple[object, ...]], seed: int,
) -> None:
    engine = thin_engine(seed)
    now = T0
    for act in actions:
        now = step(engine, act, now)
        check_invariants(engine)
        engine.drain_updates()


def test_a_long_random_session_keeps_the_invariants() -> None:
    rng = random.Random(99)
    engine = thin_engine(1)
    now = T0
    tifs = ["GoodTillCancel"] * 4 + ["ImmediateOrCancel", "FillOrKill"]
    for i in range(1500):
        r = rng.random()
        act: tuple[object, ...]
        if r < 0.55:
            act = ("limit", rng.random() < 0.5, rng.randint(-4, 4), rng.randint(1, 8),
                   rng.choice(tifs), rng.random() < 0.2)
        elif r < 0.65:
            act = ("market", rng.random() < 0.5, rng.randint(1, 12))
        elif r < 0.8:
            act = ("amend", rng.randint(0, 50), rng.choice([0, 0, -1, 1, 2]), rng.randint(0, 6))
        elif r < 0.92:
            act = ("cancel", rng.randint(0, 50))
        else:
            act = ("wait", rng.randint(1, 300))
        now = step(engine, act, now)
        check_invariants(engine, positions=i % 25 == 0)
        engine.drain_updates()
    fills = engine.get_executions(count=10**9)
    assert {f["lastLiquidityInd"] for f in fills} == {"AddedLiquidity", "RemovedLiquidity"}


def step(engine: Engine, act: tuple[object, ...], now: int) -> int:
    """Apply one action; returns the (possibly advanced) time."""
    spec = engine.spec(SYM)
    kind = act[0]
    ids = [o.order_id for o in engine.account.orders.values() if o.is_open]
    try:
        if kind == "limit":
            _, buy, offset, lots, tif, post = act
            ref = engine.markets[SYM].book.best_bid() or 200
            engine.place_order({
                "symbol": SYM, "side": "Buy" if buy else "Sell",
                "orderQty": spec.lot_size * int(lots),  # type: ignore[call-overload]
                "price": spec.price(ref + int(offset)),  # type: ignore[call-overload]
                "timeInForce": tif,
                "execInst": "ParticipateDoNotInitiate" if post and tif == "GoodTillCancel"
                else "",
            }, now)
        elif kind == "market":
            _, buy, lots = act
            engine.place_order({"symbol": SYM, "side": "Buy" if buy else "Sell",
                                "orderQty": spec.lot_size * int(lots),  # type: ignore[call-overload]
                                "ordType": "Market"}, now)
        elif kind == "amend" and ids:
            _, pick, move, lots = act
            o = engine.account.orders[ids[int(pick) % len(ids)]]  # type: ignore[call-overload]
            params: dict[str, object] = {"orderID": o.order_id}
            if move and o.tick is not None:
                params["price"] = spec.price(o.tick + int(move))  # type: ignore[call-overload]
            if lots:
                params["leavesQty"] = spec.lot_size * int(lots)  # type: ignore[call-overload]
            engine.amend_order(params, now)
        elif kind == "cancel" and ids:
            _, pick = act
            engine.cancel_orders([ids[int(pick) % len(ids)]], [], None, now)  # type: ignore[call-overload]
        elif kind == "wait":
            now += int(act[1])  # type: ignore[call-overload]
            engine.advance(now)
    except SimError as exc:
        assert exc.status == 400
    return now
