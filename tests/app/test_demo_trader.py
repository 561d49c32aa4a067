"""The demo trader: its tick and lot sizes come from the instrument row the monitor read at
startup (no request of its own), or from one request when the monitor has none; its state says
how its periodic sweeps were shared in a fleet."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from venueguard.app.demo import DemoTrader
from venueguard.io.clock import SYSTEM_CLOCK
from venueguard.telemetry.events import EventLog


class _Rest:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []

    async def request(self, verb: str, path: str, **kwargs: Any) -> Any:
        self.requests.append((verb, path))
        return [{"symbol": "XBTUSD", "tickSize": 1.0, "lotSize": 10}]


class _Runtime:
    manager = None
    events = EventLog()


def _trader(rest: _Rest, row: dict[str, object] | None) -> DemoTrader:
    return DemoTrader(_Runtime(), lambda: None, symbol="XBTUSD",  # type: ignore[arg-type]
                      clock=SYSTEM_CLOCK, rest=rest, instrument=row)


async def test_the_startup_row_is_used_without_a_request() -> None:
    rest = _Rest()
    trader = _trader(rest, {"symbol": "XBTUSD", "tickSize": 0.5, "lotSize": 100})
    await trader._load_instrument()
    assert rest.requests == []
    assert (trader.tick_size, trader.lot_size) == (0.5, 100)


async def test_without_a_startup_row_one_request_reads_the_sizes() -> None:
    rest = _Rest()
    trader = _trader(rest, None)
    await trader._load_instrument()
    assert rest.requests == [("GET", "/instrument")]
    assert (trader.tick_size, trader.lot_size) == (1.0, 10)


def _manager(sweeps: object) -> SimpleNamespace:
    return SimpleNamespace(ready=True, open_orders=list, unknown_orders=list,
                           position=lambda symbol: 0.0, halted=None, halt_history=[],
                           sweeps=sweeps)


def test_the_state_says_how_the_sweeps_were_shared() -> None:
    runtime = SimpleNamespace(manager=_manager(SimpleNamespace(taken=3, read=1, postponed=4)),
                              events=EventLog(), regime="NORMAL", dms=None)
    trader = DemoTrader(runtime, lambda: None, symbol="XBTUSD",  # type: ignore[arg-type]
                        clock=SYSTEM_CLOCK)
    assert trader.state()["shared_sweeps"] == {"taken": 3, "read": 1, "postponed": 4}
    runtime.manager = _manager(None)                 # alone: no share
    assert trader.state()["shared_sweeps"] is None
