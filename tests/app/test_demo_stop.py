"""Regression: a clean stop raced an order still in flight.

The bulk cancel could go out while the strategy's submit was waiting for its answer; the venue
then accepted the order after the cancel and it was left resting with the dead man's switch
disarmed (seen as an unfinished order in the journal after `monitor --trade demo`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from venueguard.app.demo import DemoConfig, DemoTrader
from venueguard.io.clock import SYSTEM_CLOCK
from venueguard.telemetry.events import EventLog


class _Book:
    is_fresh = True

    def mid(self) -> float:
        return 50_000.0


class _Manager:
    def __init__(self, log: list[str]) -> None:
        self.ready = True
        self.log = log
        self.resting: list[Any] = []

    def open_orders(self) -> list[Any]:
        return self.resting

    def unknown_orders(self) -> list[Any]:
        return []

    async def cancel_all(self, symbol: str | None = None) -> bool:
        self.log.append("cancel_all")
        self.resting.clear()
        return True

    async def flush(self) -> None:
        self.log.append("flush")


class _Runtime:
    def __init__(self) -> None:
        self.log: list[str] = []
        self.events = EventLog()
        self.manager = _Manager(self.log)
        self.in_flight = asyncio.Event()
        self.release = asyncio.Event()

    async def start(self) -> None: ...

    async def run(self) -> None:
        await asyncio.Event().wait()

    async def submit(self, intent: Any) -> None:
        self.log.append("submit_sent")
        self.in_flight.set()
        await self.release.wait()              # the venue is slow to answer
        self.manager.resting.append(intent)
        self.log.append("submit_acked")

    async def stop(self, *, clean: bool) -> None:
        self.log.append(f"stop clean={clean}")


async def test_stop_lets_the_order_in_flight_land_before_the_bulk_cancel() -> None:
    runtime = _Runtime()
    trader = DemoTrader(runtime, _Book, symbol="XBTUSD", clock=SYSTEM_CLOCK,  # type: ignore[arg-type]
                        config=DemoConfig(step_s=0.01))
    strategy = asyncio.create_task(trader._strategy())
    trader._strategy_task = strategy
    await asyncio.wait_for(runtime.in_flight.wait(), 5)
    stopping = asyncio.create_task(trader.stop())
    await asyncio.sleep(0.05)
    assert "cancel_all" not in runtime.log           # still waiting for the answer
    runtime.release.set()
    await asyncio.wait_for(stopping, 5)
    assert runtime.log.index("submit_acked") < runtime.log.index("cancel_all")
    assert runtime.manager.resting == []
    assert runtime.log[-2:] == ["stop clean=True", "flush"]
    assert strategy.done()
