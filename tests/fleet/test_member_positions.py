"""The positions the live trading members publish, and the wait for records newer than a
moment (the account check reads them as of the venue's answer)."""

from __future__ import annotations

from venueguard.fleet import Fleet, FleetConfig, MemoryBackend
from venueguard.io.clock import ManualClock
from venueguard.telemetry.events import EventLog


def _fleet() -> Fleet:
    clock = ManualClock()
    return Fleet(FleetConfig(), events=EventLog(), clock=clock, backend=MemoryBackend(clock))


def test_only_trading_members_count_and_stale_records_are_waited_for() -> None:
    fleet = _fleet()
    fleet.statuses = {
        "a": {"wall": 100.0, "positions": {"XBTUSD": 200}},
        "b": {"wall": 101.0, "positions": {"XBTUSD": -100, "ETHUSD": 5}},
        "watcher": {"wall": 90.0, "regime": "NORMAL"},        # does not trade
    }
    assert fleet.member_positions("XBTUSD") == {"a": 200.0, "b": -100.0}
    assert fleet.member_positions("ETHUSD") == {"b": 5.0}
    assert fleet.member_positions("XBTUSD", newer_than_wall_s=99.0) == {"a": 200.0,
                                                                        "b": -100.0}
    assert fleet.member_positions("XBTUSD", newer_than_wall_s=100.5) is None   # a is older
