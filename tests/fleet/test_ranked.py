"""Under a shared limit requests are ranked: cancels find a slot first, then new orders and
amends, then reads; an idle bucket sends every rank at once."""

from __future__ import annotations

import pytest

from venueguard.fleet import Fleet, FleetConfig, MemoryBackend
from venueguard.fleet.policy import HELD_BACK, Bucket, Gcra, Scope
from venueguard.io.clock import ManualClock
from venueguard.io.fleet_link import Rank
from venueguard.telemetry.events import EventLog


def test_a_ranked_bucket_keeps_the_last_slots_for_higher_ranks() -> None:
    bucket = Bucket("rest", Scope.ACCOUNT, 60, 60.0)
    gcra = Gcra()
    now = 0.0
    # spend the burst down to the last few slots
    for _ in range(bucket.burst - 3):
        assert gcra.wait_s(bucket, now) == 0.0
        gcra.commit(bucket, now)
    read, write, cancel = (bucket.ranked(r) for r in (Rank.READ, Rank.WRITE, Rank.CANCEL))
    assert gcra.wait_s(cancel, now) == 0.0
    assert gcra.wait_s(write, now) == pytest.approx(0.0, abs=1e-9)
    assert read.held_back == 5 and write.held_back == 2 and cancel.held_back == 0
    assert gcra.wait_s(read, now) == pytest.approx((5 - 2) * bucket.interval_s)
    assert read.share(4).held_back == 1      # a member's share (burst 14) keeps less back
    assert HELD_BACK[Rank.CANCEL] == 0


async def test_reads_wait_while_cancels_and_orders_go_when_the_limit_is_nearly_spent() -> None:
    clock = ManualClock()
    fleet = Fleet(FleetConfig(venue="bitmex", rest_limit=60), api_key="k", events=EventLog(),
                  clock=clock, backend=MemoryBackend(clock))
    fresh = [await fleet.reserve(order_route=False, first=True, max_wait_s=0.0, rank=r)
             for r in (Rank.READ, Rank.WRITE)]
    assert fresh == [0.0, 0.0]                       # idle: every rank at once
    while await fleet.reserve(order_route=False, first=True, max_wait_s=0.0,
                              rank=Rank.READ) is not None:
        pass                                          # reads spend what they may
    assert await fleet.reserve(order_route=True, first=True, max_wait_s=0.0,
                               rank=Rank.WRITE) == 0.0
    assert await fleet.reserve(order_route=True, first=True, max_wait_s=0.0,
                               rank=Rank.CANCEL) == 0.0
    read_wait = await fleet.reserve(order_route=False, first=True, max_wait_s=60.0,
                                    rank=Rank.READ)
    cancel_wait = await fleet.reserve(order_route=True, first=True, max_wait_s=60.0,
                                      rank=Rank.CANCEL)
    assert read_wait is not None and cancel_wait is not None
    assert cancel_wait < read_wait
