"""The demo's tick and lot sizes: from the instrument row the monitor read at startup (no
request of its own), or from one request when the monitor has none."""

from __future__ import annotations

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
