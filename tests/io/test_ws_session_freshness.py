"""The market-data session with learned freshness, against the simulator over loopback.

A short warm-up (20 gaps over 2 s) stands in for the default 30 s so the test stays short; the
model and the wiring are the shipped ones. Both run in virtual time (simulator and session on one
simulated clock, docs/virtual-time.md): the warm-up and the stall take no real time, and a loaded
machine cannot make a timer late.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest

from venueguard.core.freshness import FreshnessConfig
from venueguard.io import md_events as ev
from venueguard.io.clock import monotonic
from venueguard.io.ws_session import MarketDataSession, MdConfig, default_liveness
from venueguard.sim.testing import SimHandle
from venueguard.telemetry.events import EventLog
from venueguard.telemetry.metrics import Metrics

pytestmark = [pytest.mark.system, pytest.mark.virtual_time]

TOPIC = "orderBookL2:XBTUSD"
SimFactory = Callable[..., Awaitable[SimHandle]]  # the sim_server fixture (tests/conftest.py)


async def until(predicate: Callable[[], Any], timeout_s: float) -> None:
    deadline = monotonic() + timeout_s
    while not predicate():
        assert monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def test_a_stall_is_declared_at_the_learned_threshold_and_reported(
        sim_server: SimFactory) -> None:
    sim = await sim_server(rate=100.0)
    liveness = replace(default_liveness(),
                       freshness=FreshnessConfig(warmup=20, warmup_s=2.0))
    log, metrics = EventLog(), Metrics()
    md = MarketDataSession(MdConfig(url=sim.ws_url, topics=(TOPIC,), liveness=liveness),
                           events=log, metrics=metrics)
    async with md:
        await md.wait_synced(10.0)

        def learned() -> bool:
            detector = md.state.liveness.detector(TOPIC)
            return detector is not None and detector.learned

        await until(learned, 20.0)
        threshold = md.state.liveness.limit_s(TOPIC)
        assert threshold is not None and threshold < 10.0  # tighter than the static bound

        def exported() -> Any:
            values = metrics.snapshot()["ws_freshness_threshold_seconds"]
            return values.get(f"channel={TOPIC}") if isinstance(values, dict) else None

        await until(lambda: (exported() or 99.0) < 10.0, 5.0)  # the next metrics tick
        assert exported() == pytest.approx(threshold, rel=0.5)
        suspicion = metrics.snapshot()["ws_freshness_suspicion"]
        assert isinstance(suspicion, dict) and suspicion[f"channel={TOPIC}"] is not None
        stream = md.events()
        await sim.add_fault("ws_stall")
        async with asyncio.timeout(10.0):
            stale = await anext(e async for e in stream if isinstance(e, ev.Stale))
        assert stale.reason == "data_age" and stale.channel == TOPIC
        assert stale.threshold_s is not None and stale.threshold_s < 10.0
        assert stale.suspicion is not None and math.isfinite(stale.suspicion)
        logged = log.recent(event="ws.stale")[-1]
        assert logged["threshold_s"] == round(stale.threshold_s, 3)
        assert logged["suspicion"] == round(stale.suspicion, 2)
        # the session reconnects; the model is kept but the fallback rules while it re-warms
        await until(lambda: md.synced, 10.0)
        detector = md.state.liveness.detector(TOPIC)
        assert detector is not None and detector.learned_gaps > 20


async def test_static_mode_keeps_the_configured_threshold(sim_server: SimFactory) -> None:
    sim = await sim_server(rate=100.0)
    liveness = replace(default_liveness(), max_data_age_s=1.5,
                       freshness=FreshnessConfig(enabled=False))
    log = EventLog()
    md = MarketDataSession(MdConfig(url=sim.ws_url, topics=(TOPIC,), liveness=liveness),
                           events=log)
    async with md:
        await md.wait_synced(10.0)
        assert md.state.liveness.detector(TOPIC) is None
        stream = md.events()
        await sim.add_fault("ws_stall")
        async with asyncio.timeout(10.0):
            stale = await anext(e async for e in stream if isinstance(e, ev.Stale))
        assert (stale.threshold_s, stale.suspicion) == (1.5, None)
        assert "suspicion" not in log.recent(event="ws.stale")[-1]
