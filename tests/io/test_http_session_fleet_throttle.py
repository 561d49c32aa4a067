"""A request the fleet's shared limit refuses is not sent, so the adaptive throttle must not
count it: counted, it was a request the venue never accepted, and a member whose fleet was
short of slots (a bot starting during a squeeze, say) went on refusing nearly every request
locally for the throttle's whole window after the slots came back."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from venueguard.core.budget import BudgetConfig
from venueguard.core.health import VenueHealth, VenueState
from venueguard.core.kinds import Kind
from venueguard.io import errors
from venueguard.io.clock import ManualClock
from venueguard.io.fleet_link import Rank
from venueguard.io.http_session import RestConfig, RestSession
from venueguard.io.rest_transport import MemoryTransport, RawResponse, RestRequest
from venueguard.venues.bitmex import signing


class _Squeezed:
    """The fleet's side of the session: no slot in the shared buckets until ``slots``."""

    def __init__(self) -> None:
        self.slots = False

    def attach(self, health: VenueHealth, on_change: Callable[[float], None]) -> None:
        return None

    async def reserve(self, *, order_route: bool, first: bool, max_wait_s: float,
                      rank: Rank = Rank.READ) -> float | None:
        return 0.0 if self.slots else None

    def on_rate_limit(self, limit: int | None, remaining: int | None) -> None:
        return None

    def on_venue_state(self, state: VenueState, until: float | None, kind: Kind,
                       now: float) -> None:
        return None

    def on_reset(self, reason: str) -> None:
        return None

    async def try_retry(self, config: BudgetConfig) -> bool:
        return True


async def test_requests_the_fleet_refused_are_not_counted_by_the_throttle() -> None:
    def venue(request: RestRequest) -> RawResponse:
        return RawResponse(200, {}, b"[]", 0.001)

    clock = ManualClock(wall_ms=1_700_000_000_000)
    transport = MemoryTransport(venue)
    fleet = _Squeezed()
    rest = RestSession(RestConfig(base_url="http://127.0.0.1:1/api/v1",
                                  api_key=signing.TEST_API_KEY,
                                  api_secret=signing.TEST_API_SECRET),
                       transport=transport, clock=clock, fleet=fleet, rng=random.Random(7))
    for _ in range(50):
        with pytest.raises(errors.RateLimited, match="no slot"):
            await rest.request("GET", "/order")
    assert transport.requests == []
    assert rest.throttle is not None and rest.throttle.requests(clock.monotonic()) == 0
    fleet.slots = True
    for _ in range(5):                  # the slots are back: every request goes out
        assert await rest.request("GET", "/order") == []
    assert len(transport.requests) == 5
