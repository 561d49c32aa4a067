"""The REST health probe against a scripted client (no sockets)."""

from __future__ import annotations

import asyncio
import random

import pytest

from venueguard.app.probe import CANCEL, INSTRUMENT, PLACE, HealthProbe, ProbeConfig
from venueguard.core.kinds import Kind
from venueguard.io.clock import ManualClock
from venueguard.io.errors import AmbiguousOutcome, CoolingDown, Overloaded, Rejected, VenueError


class Script:
    """Answers each call with the next scripted outcome (None = success)."""

    def __init__(self, outcomes: dict[str, list[Exception | None]]) -> None:
        self.outcomes = outcomes
        self.calls: list[tuple[str, object]] = []

    def _next(self, endpoint: str) -> None:
        queue = self.outcomes.get(endpoint, [])
        outcome = queue.pop(0) if queue else None
        if outcome is not None:
            raise outcome

    async def get_instrument(self, symbol: str) -> dict[str, object] | None:
        self.calls.append((INSTRUMENT, symbol))
        self._next(INSTRUMENT)
        return self.instrument

    instrument: dict[str, object] | None = None

    async def place_post_only(self, symbol: str, cl_ord_id: str, qty: int, price: float) -> None:
        self.calls.append((PLACE, (symbol, cl_ord_id, qty, price)))
        self._next(PLACE)

    async def cancel(self, cl_ord_ids: list[str]) -> None:
        self.calls.append((CANCEL, list(cl_ord_ids)))
        self._next(CANCEL)


def probe(script: Script, bid: float | None = 50_000.0) -> tuple[HealthProbe, list[tuple]]:
    seen: list[tuple] = []
    p = HealthProbe(script, ProbeConfig(order_every_s=2.0, tick_size=0.5, lot_size=100),
                    symbol="XBTUSD", clock=ManualClock(), best_bid=lambda: bid,
                    on_request=lambda *a: seen.append(a), rng=random.Random(7))
    return p, seen


async def test_order_round_places_far_below_and_cancels_by_clordid() -> None:
    script = Script({})
    p, seen = probe(script)
    await p.order_round()
    (place, (symbol, cl_ord_id, qty, price)), (cancel, ids) = script.calls  # type: ignore[misc]
    assert place == PLACE and cancel == CANCEL
    assert symbol == "XBTUSD" and qty == 100 and price == 47_500.0  # 5 % below, on the tick
    assert cl_ord_id.startswith("vgprobe-1-") and ids == [cl_ord_id]
    assert p.placed == 1 and p.pending == []
    assert [s[0] for s in seen] == [PLACE, CANCEL] and seen[0][1] == 200


async def test_503_means_nothing_rests_and_nothing_is_cancelled() -> None:
    script = Script({PLACE: [Overloaded("overloaded", status=503, kind=Kind.OVERLOADED)]})
    p, seen = probe(script)
    await p.order_round()
    assert [c[0] for c in script.calls] == [PLACE]
    assert p.overloaded == 1 and p.pending == []
    assert seen[0][1] == 503 and seen[0][2] is not None  # a response: latency recorded


async def test_ambiguous_place_is_cancelled_and_retried_until_confirmed() -> None:
    script = Script({PLACE: [AmbiguousOutcome("timeout", kind=Kind.AMBIGUOUS_TIMEOUT)],
                     CANCEL: [VenueError("reset", kind=Kind.TRANSIENT_NETWORK)]})
    p, seen = probe(script)
    await p.order_round()
    assert p.ambiguous == 1 and len(p.pending) == 1
    lost = p.pending[0]
    assert seen[0][1] is None and seen[0][2] is None  # no response: no latency sample
    await p.order_round()  # first retries the lost cancel, then probes again
    assert script.calls[2] == (CANCEL, [lost])
    assert p.pending == []


async def test_rejections_and_local_refusals_do_not_cancel() -> None:
    script = Script({PLACE: [Rejected("Invalid price", status=400),
                             CoolingDown("cooling down", until=5.0)]})
    p, seen = probe(script)
    await p.order_round()
    await p.order_round()
    assert [c[0] for c in script.calls] == [PLACE, PLACE]
    assert len(seen) == 1  # the local refusal sent nothing and is not reported


async def test_tick_and_lot_come_from_the_instrument() -> None:
    script = Script({})
    script.instrument = {"symbol": "ETHUSD", "tickSize": 0.05, "lotSize": 1}
    p, _ = probe(script, bid=2000.0)
    await p._read_instrument()
    await p.order_round()
    _, (_, _, qty, price) = script.calls[1]  # type: ignore[misc]
    assert qty == 1 and price == pytest.approx(1900.0)
    script.instrument = {"tickSize": "bad", "lotSize": -3}  # nonsense is ignored
    await p._read_instrument()
    assert p.tick_size == 0.05 and p.lot_size == 1


async def test_no_book_no_order() -> None:
    script = Script({})
    p, _ = probe(script, bid=None)
    await p.order_round()
    assert script.calls == [] and p.skipped == 1


async def test_cleanup_cancels_whatever_is_pending() -> None:
    script = Script({})
    p, _ = probe(script)
    p.pending = ["vgprobe-1-a", "vgprobe-2-b"]
    await p.cleanup()
    assert script.calls == [(CANCEL, ["vgprobe-1-a", "vgprobe-2-b"])] and p.pending == []


async def test_run_reads_the_instrument_and_probes_orders_on_their_own_cadence() -> None:
    script = Script({})
    seen: list[tuple] = []

    class Clock:  # real sleeps, fast cadence
        def monotonic(self) -> float:
            return asyncio.get_running_loop().time()

        def wall_ms(self) -> int:
            return 0

    p = HealthProbe(script, ProbeConfig(instrument_every_s=0.2, order_every_s=0.05),
                    symbol="XBTUSD", clock=Clock(), best_bid=lambda: 100.0,
                    on_request=lambda *a: seen.append(a))
    task = asyncio.create_task(p.run())
    await asyncio.sleep(0.45)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    instruments = sum(1 for c in script.calls if c[0] == INSTRUMENT)
    places = sum(1 for c in script.calls if c[0] == PLACE)
    assert 2 <= instruments <= 4
    assert places >= 5 and places > 2 * instruments


async def test_real_venue_config_never_places_orders() -> None:
    script = Script({})
    p = HealthProbe(script, ProbeConfig(instrument_every_s=0.05), symbol="XBTUSD",
                    clock=ManualClock(), best_bid=lambda: 100.0)
    task = asyncio.create_task(p.run())
    await asyncio.sleep(0.05)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    assert script.calls and all(c[0] == INSTRUMENT for c in script.calls)


async def test_a_fleet_follower_leaves_the_probe_to_the_owner() -> None:
    """One probe per fleet per interval: the members that follow the lease send nothing,
    and one that becomes owner starts probing."""
    script = Script({})

    class Clock:
        def monotonic(self) -> float:
            return asyncio.get_running_loop().time()

        def wall_ms(self) -> int:
            return 0

    owner = False
    p = HealthProbe(script, ProbeConfig(instrument_every_s=0.05, order_every_s=0.05),
                    symbol="XBTUSD", clock=Clock(), best_bid=lambda: 100.0,
                    active=lambda: owner)
    task = asyncio.create_task(p.run())
    await asyncio.sleep(0.3)
    assert script.calls == []
    owner = True
    await asyncio.sleep(0.3)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    assert any(c[0] == INSTRUMENT for c in script.calls)
    assert any(c[0] == PLACE for c in script.calls)


async def test_a_busy_session_skips_the_instrument_read_and_an_idle_one_is_probed() -> None:
    """``traffic()`` counts the session's requests (the probe's own included): a round after
    which other requests went out reads nothing; a quiet interval is probed as before."""
    script = Script({})

    class Clock:
        def monotonic(self) -> float:
            return asyncio.get_running_loop().time()

        def wall_ms(self) -> int:
            return 0

    sent = [0]
    busy = True

    async def get_instrument(symbol: str) -> dict[str, object] | None:
        sent[0] += 1                           # the probe's own request is counted too
        script.calls.append((INSTRUMENT, symbol))
        return None

    script.get_instrument = get_instrument  # type: ignore[method-assign]
    p = HealthProbe(script, ProbeConfig(instrument_every_s=0.05), symbol="XBTUSD",
                    clock=Clock(), best_bid=lambda: 100.0, traffic=lambda: sent[0])

    async def trade() -> None:
        while True:
            if busy:
                sent[0] += 1                   # the bot's orders and reads
            await asyncio.sleep(0.01)

    trader = asyncio.create_task(trade())
    task = asyncio.create_task(p.run())
    await asyncio.sleep(0.5)
    assert len(script.calls) == 1               # the first round only (nothing seen before)
    assert p.skipped_busy >= 5
    busy = False
    await asyncio.sleep(0.5)
    for t in (task, trader):
        t.cancel()
    await asyncio.gather(task, trader, return_exceptions=True)
    assert len(script.calls) >= 5               # idle: probed every interval again
