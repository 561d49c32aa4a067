"""Learned freshness on the real captures at their recorded pace: no false stale.

The captures live outside the repository: ``VENUEGUARD_BINANCE_FIXTURES`` (default
``../shared/binance/fixtures``) and ``VENUEGUARD_FIXTURES`` (default ``../shared/bitmex``); each
test skips, saying why, when its capture is absent.

- Binance (about 30 s of a combined fapi stream: depth, bookTicker, aggTrade of a busy and a quiet
  symbol): the recorded receive times, on the injected clock, through the checks a guarded ccxt
  exchange applies (its stream kinds and their static bounds, learned freshness on). Thirty
  seconds is the model's warm-up, so the recording is also played ten times in a row (starting
  again after its median gap), for the learned thresholds to take over; the same through the
  native Binance session's checks. Then the same capture is served by the simulator at recorded
  pace (``--replay``, speed 1) to a guarded ccxt exchange over loopback, read by ccxt's reader
  and by the native session.
- BitMEX: the captures hold isolated messages (hours to months apart), not a stream; the test
  says so and skips where no capture group is a stream.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import statistics
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from venueguard.ccxt.streams import StreamConfig
from venueguard.core.freshness import FreshnessConfig
from venueguard.core.liveness import Liveness, LivenessConfig, StaleDecision
from venueguard.sim.bitmex.replay import Recording

ROOT = Path(__file__).resolve().parents[2]
BINANCE = Path(os.environ.get("VENUEGUARD_BINANCE_FIXTURES",
                              ROOT.parent / "shared" / "binance" / "fixtures"))
WS = BINANCE / "BINANCE_FUTURES.ws"
DEPTH = BINANCE / "BINANCE_FUTURES.http.depth"
# recorded stream -> the guarded ccxt channel kind that watches it
KINDS = {"depth@100ms": "orderbook", "bookTicker": "ticker", "aggTrade": "trades"}


def binance_arrivals() -> dict[str, list[float]]:
    """{ccxt channel: receive times} from the combined-stream capture (kline: not watched)."""
    if not WS.exists():
        pytest.skip(f"Binance captures not found in {BINANCE} (set VENUEGUARD_BINANCE_FIXTURES)")
    out: dict[str, list[float]] = {}
    for line in WS.read_text().splitlines()[1:]:
        received, _, body = line.partition(": ")
        stream = orjson.loads(body)["stream"]
        symbol, _, kind = stream.partition("@")
        if kind in KINDS:
            out.setdefault(f"{KINDS[kind]}:{symbol.upper()}", []).append(float(received))
    return out


def replay(arrivals: dict[str, list[float]], config: LivenessConfig, times: int
           ) -> tuple[list[StaleDecision], Liveness]:
    """Feed the arrivals ``times`` over (the recording starting again after its median gap) on
    the injected clock, polling whenever a deadline passes; returns the stale decisions."""
    t0 = min(ts[0] for ts in arrivals.values())
    everything = sorted(ts for stamps in arrivals.values() for ts in stamps)
    gaps = [b - a for a, b in itertools.pairwise(everything)]
    period = everything[-1] - t0 + statistics.median(gaps)  # the whole recording, again
    events = [(ts - t0 + rep * period, channel) for channel, stamps in arrivals.items()
              for rep in range(times) for ts in stamps]
    events.sort()
    live = Liveness(config, 0.0)
    for channel in arrivals:
        live.on_subscribed(channel, 0.0)
    stale: list[StaleDecision] = []
    for now, channel in events:
        deadline = live.next_deadline()
        while deadline is not None and deadline <= now:
            stale += [d for d in live.poll(deadline) if isinstance(d, StaleDecision)]
            deadline = live.next_deadline()
        live.on_data(channel, now)
    return stale, live


def guarded_liveness() -> LivenessConfig:
    """The checks of a guarded ccxt exchange (static bounds per kind, learned freshness)."""
    return StreamConfig().liveness()


def test_binance_capture_at_recorded_pace_raises_no_false_stale() -> None:
    arrivals = binance_arrivals()
    assert {"orderbook:SUSHIUSDT", "orderbook:AKROUSDT", "trades:AKROUSDT"} <= set(arrivals)
    stale, live = replay(arrivals, guarded_liveness(), 1)
    assert stale == []
    assert all(d is not None and not d.learned
               for d in map(live.detector, arrivals))  # 30 s: still the warm-up fallback


def test_binance_capture_looped_past_warm_up_raises_no_false_stale() -> None:
    arrivals = binance_arrivals()
    stale, live = replay(arrivals, guarded_liveness(), 10)
    assert stale == []
    book = live.detector("orderbook:SUSHIUSDT")
    assert book is not None and book.learned
    assert live.limit_s("orderbook:SUSHIUSDT") < 5.0  # type: ignore[operator]  # static: 5 s
    static = replace(guarded_liveness(), freshness=FreshnessConfig(enabled=False))
    assert replay(arrivals, static, 10)[0] == []     # the static bounds are loose enough too


def native_arrivals() -> dict[str, list[float]]:
    """The same capture under the native Binance session's channel names (``depth:SYMBOL``)."""
    names = {"orderbook": "depth", "ticker": "bookTicker", "trades": "aggTrade"}
    return {f"{names[kind]}:{symbol}": stamps for kind_symbol, stamps in binance_arrivals().items()
            for kind, _, symbol in [kind_symbol.partition(":")]}


@pytest.mark.parametrize("times", [1, 10])
def test_binance_capture_through_the_native_sessions_checks_raises_no_false_stale(
        times: int) -> None:
    """The native Binance session (``guard`` on binanceusdm, ``monitor --venue binance-usdm``):
    the thin symbol's best quote rests 7.5 s once in the recording, so its bound is the ticker's
    15 s, not the depth stream's 5 s, while the model warms up."""
    from venueguard.io.binance_session import binance_liveness

    arrivals = native_arrivals()
    assert max(b - a for a, b in itertools.pairwise(arrivals["bookTicker:AKROUSDT"])) > 7.0
    stale, live = replay(arrivals, binance_liveness(), times)
    assert stale == []
    assert live.limit_s("aggTrade:AKROUSDT") is None  # quiet
    if times == 10:
        book = live.detector("depth:SUSHIUSDT")
        assert book is not None and book.learned and book.threshold_s < 5.0


def test_bitmex_captures_are_replayed_where_they_hold_a_stream(bitmex_fixtures: Path,
                                                               tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "tests" / "venues"))
    from reference_book import capture_groups

    streams: dict[str, list[float]] = {}
    for index, messages in enumerate(capture_groups(bitmex_fixtures).values()):
        path = tmp_path / f"capture-{index}.jsonl"
        path.write_bytes(b"\n".join(orjson.dumps(m) for m in messages) + b"\n")
        stamps = [r.ts_ms / 1000 for r in Recording.load(path).items if r.ts_ms]
        gaps = [b - a for a, b in itertools.pairwise(stamps)]
        if len(stamps) >= 20 and max(gaps) < 60.0:  # a recorded stream, not loose messages
            streams[f"orderBookL2:capture-{index}"] = stamps
    if not streams:
        pytest.skip("the BitMEX captures hold isolated messages (hours to months apart), not a "
                    "stream to replay at recorded pace; the Binance capture covers this")
    from venueguard.io.ws_session import default_liveness
    stale, _ = replay(streams, default_liveness(), 1)
    assert stale == []


@pytest.mark.slow
@pytest.mark.system
async def test_binance_replay_over_loopback_through_a_guarded_exchange() -> None:
    """The capture served at recorded pace; a guarded ccxt exchange watches both books for the
    whole recording, through ccxt's reader once with the shipped defaults and once warming up
    in 5 s, and through venueguard's own session (``native_streams``) warming up in 5 s: no
    ``ws.stale``, and the fast warm-ups end on the learned threshold."""
    if not (WS.exists() and DEPTH.exists()):
        pytest.skip(f"Binance captures not found in {BINANCE} (set VENUEGUARD_BINANCE_FIXTURES)")
    ccxt_pro = pytest.importorskip("ccxt.pro")
    from venueguard.ccxt import GuardConfig, guard
    from venueguard.sim.binance.testing import point_ccxt, running_binance_sim
    from venueguard.telemetry.events import EventLog

    fast = FreshnessConfig(warmup=20, warmup_s=5.0)
    default = StreamConfig(max_ts_age_ms=10**13)  # recorded (2021) timestamps
    configs = {"default": GuardConfig(streams=default, native_streams=False),
               "fast-warm-up": GuardConfig(streams=replace(default, freshness=fast),
                                           native_streams=False),
               "native-fast-warm-up": GuardConfig(streams=replace(default, freshness=fast))}
    async with running_binance_sim(replay_path=f"{WS},{DEPTH}", replay_speed=1.0) as sim:
        async def watch(name: str) -> tuple[list[dict[str, Any]], bool]:
            events = EventLog()
            raw = ccxt_pro.binanceusdm()
            point_ccxt(raw, sim.base_url)
            exchange = guard(raw, configs[name], events=events)
            try:
                await exchange.load_markets()
                loop = asyncio.get_running_loop()
                end = loop.time() + 29.0

                async def follow(symbol: str) -> None:
                    while loop.time() < end:
                        await exchange.watch_order_book(symbol)

                await asyncio.gather(follow("SUSHI/USDT:USDT"), follow("AKRO/USDT:USDT"))
                if exchange.native is not None:
                    assert not raw.clients  # ccxt's reader never started
                    session = exchange.native._feeds["SUSHI/USDT:USDT"].session
                    detector = session.state.liveness.detector("depth:SUSHIUSDT")
                else:
                    detector = exchange.streams.liveness.detector("orderbook:SUSHI/USDT:USDT")
                return events.recent(1000), detector is not None and detector.learned
            finally:
                await exchange.close()

        results = dict(zip(configs, await asyncio.gather(*(watch(n) for n in configs)),
                           strict=True))
    for name, (logged, _) in results.items():
        assert [e for e in logged if e["event"] == "ws.stale"] == [], name
    assert results["fast-warm-up"][1] and results["native-fast-warm-up"][1]
