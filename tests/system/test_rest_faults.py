"""The REST session against the simulator over loopback, one test per REST and order fault.

Requests sent are counted by the simulator (``/_sim/truth``), never by the client under test.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from typing import Any

import pytest

from venueguard.core.budget import BudgetConfig
from venueguard.core.kinds import Kind
from venueguard.io import errors
from venueguard.io.clock import monotonic
from venueguard.io.http_session import RestConfig, RestSession
from venueguard.io.http_transport import AiohttpTransport
from venueguard.io.rest_transport import RawResponse, RestTransport, Timeouts
from venueguard.sim.resolver import SimResolver
from venueguard.sim.testing import SimHandle, running_sim
from venueguard.telemetry.events import EventLog
from venueguard.telemetry.metrics import Metrics

pytestmark = [pytest.mark.system, pytest.mark.virtual_time]

Factory = Callable[..., Awaitable[SimHandle]]
POST_ORDER = "POST /api/v1/order"


@pytest.fixture
async def sim_server() -> AsyncIterator[Factory]:
    async with AsyncExitStack() as stack:
        async def start(**overrides: Any) -> SimHandle:
            return await stack.enter_async_context(running_sim(
                scenario="calm", seed=11, rate_msgs_s=5.0, book_format="modern",
                symbols=("XBTUSD",), **overrides))

        yield start


class RecordingTransport:
    """Records what was put on the wire (headers and body bytes) and when, then sends it."""

    def __init__(self) -> None:
        self._inner = AiohttpTransport()
        self.sent: list[tuple[float, str, str, dict[str, str], bytes | None]] = []

    async def send(self, verb: str, url: str, headers: Mapping[str, str], body: bytes | None,
                   *, connect_s: float, sock_read_s: float) -> RawResponse:
        self.sent.append((monotonic(), verb, url, dict(headers), body))
        return await self._inner.send(verb, url, headers, body, connect_s=connect_s,
                                      sock_read_s=sock_read_s)

    async def close(self) -> None:
        await self._inner.close()


def rest_for(sim: SimHandle, log: EventLog, *, metrics: Metrics | None = None,
             transport: RestTransport | None = None, base_url: str | None = None,
             resolver: Any = None, **config: Any) -> RestSession:
    config.setdefault("timeouts", Timeouts(connect_s=1.0, sock_read_s=1.0, total_s=5.0))
    return RestSession(RestConfig(base_url=base_url or sim.api_url, api_key=sim.api_key,
                                  api_secret=sim.api_secret, **config),
                       events=log, metrics=metrics, transport=transport, resolver=resolver,
                       rng=random.Random(5))


async def sent(sim: SimHandle, endpoint: str) -> int:
    truth = await sim.truth()
    return int(truth["requests"].get(endpoint, 0))


async def order_at(rest: RestSession, price: float = 40_000.0, cl_ord_id: str | None = None
                   ) -> dict[str, Any]:
    return await rest.place_order("XBTUSD", "Buy", 100, price=price, cl_ord_id=cl_ord_id)


async def test_overload_503_storm_never_amplifies(sim_server: Factory) -> None:
    sim = await sim_server()
    log, metrics = EventLog(), Metrics()
    budget = BudgetConfig(ratio=0.1, min_per_s=0.0, window_s=30.0)
    async with rest_for(sim, log, metrics=metrics, budget=budget) as rest:
        await sim.add_fault("overload_503", probability=1.0)
        logical = 20
        outcomes: list[str] = []
        for i in range(logical):
            with pytest.raises(errors.VenueError) as failed:
                await order_at(rest, cl_ord_id=f"storm-{i}")
            outcomes.append(type(failed.value).__name__)
        on_wire = await sent(sim, POST_ORDER)
        assert on_wire <= (1 + budget.ratio) * logical
        assert on_wire == rest.sent_total
        assert set(outcomes) <= {"Overloaded", "BudgetExhausted", "Throttled"}
        assert "Throttled" in outcomes  # adaptive throttling refused some locally
        assert (await sim.truth())["orders"] == []
        overloaded = metrics.snapshot()["rest_errors_total"]
        assert isinstance(overloaded, dict) and overloaded["kind=overloaded"] > 0


async def test_overload_503_retry_resends_the_same_body_and_clordid(sim_server: Factory) -> None:
    sim = await sim_server()
    log = EventLog()
    wire = RecordingTransport()
    budget = BudgetConfig(ratio=1.0, min_per_s=1.0, window_s=10.0)
    async with rest_for(sim, log, transport=wire, budget=budget, throttle=None,
                        max_attempts=10) as rest:
        await sim.add_fault("overload_503", probability=0.6)
        placed = [await order_at(rest, cl_ord_id=f"same-{i}") for i in range(4)]
    assert rest.retries_total >= 1
    bodies: dict[bytes, list[dict[str, str]]] = {}
    times: dict[bytes, list[float]] = {}
    for at, verb, _, headers, body in wire.sent:
        if verb == "POST" and body is not None:
            bodies.setdefault(body, []).append(headers)
            times.setdefault(body, []).append(at)
    assert len(bodies) == 4  # one distinct body per logical order, resent byte-identical
    for body, stamps in times.items():
        gaps = [b - a for a, b in itertools.pairwise(stamps)]
        assert all(gap >= 0.5 for gap in gaps), (body, gaps)  # BitMEX: >= 500 ms after a 503
    truth = await sim.truth()
    ids = [o["clOrdID"] for o in truth["orders"]]
    assert sorted(ids) == sorted(p["clOrdID"] for p in placed)  # each exactly once


async def test_rate_limit_429_waits_retry_after(sim_server: Factory) -> None:
    sim = await sim_server()
    log = EventLog()
    wire = RecordingTransport()
    async with rest_for(sim, log, transport=wire) as rest:
        await sim.add_fault("rate_limit_429", retry_after_s=1.0, duration_s=0.5)
        started = monotonic()
        rows = await rest.get_orders()
        assert isinstance(rows, list)
        assert monotonic() - started >= 1.0
    stamps = [at for at, *_ in wire.sent]
    assert len(stamps) >= 2 and stamps[1] - stamps[0] >= 1.0
    assert any(r["kind"] == "rate_limited" for r in log.recent(event="rest.error"))


async def test_forbidden_403_cools_down_five_minutes_and_sends_nothing(sim_server: Factory
                                                                         ) -> None:
    sim = await sim_server()
    log = EventLog()
    async with rest_for(sim, log) as rest:
        await sim.add_fault("forbidden_403")
        with pytest.raises(errors.CoolingDown) as first:
            await rest.get_positions()
        assert first.value.until - monotonic() == pytest.approx(300, abs=5)
        before = (await sim.truth())["requests"]
        with pytest.raises(errors.CoolingDown):
            await rest.get_positions()
        assert (await sim.truth())["requests"] == before  # nothing sent during the cooldown
        state = log.recent(event="venue.state")[-1]
        assert state["state"] == "COOLDOWN" and state["until"]


async def test_cloudflare_522_cools_down_two_minutes(sim_server: Factory) -> None:
    sim = await sim_server()
    async with rest_for(sim, EventLog()) as rest:
        await sim.add_fault("cloudflare_522")
        with pytest.raises(errors.CoolingDown) as failed:
            await rest.get_instruments()
        assert failed.value.kind is Kind.EDGE_PROTECTION
        assert failed.value.until - monotonic() == pytest.approx(120, abs=5)


async def test_cloudflare_1010_blocks_everything_with_a_critical_alert(sim_server: Factory
                                                                        ) -> None:
    sim = await sim_server()
    log = EventLog()
    async with rest_for(sim, log) as rest:
        await sim.add_fault("cloudflare_1010")
        with pytest.raises(errors.Blocked):
            await order_at(rest)
        await sim.clear_faults()
        before = await sent(sim, POST_ORDER)
        with pytest.raises(errors.Blocked):
            await order_at(rest)
        assert await sent(sim, POST_ORDER) == before
        assert rest.health.state.value == "BLOCKED"
        assert any(a["tier"] == "critical" for a in log.recent(event="alert"))


async def test_cloudflare_1006_blocks_and_says_ip_banned(sim_server: Factory) -> None:
    sim = await sim_server()
    log = EventLog()
    async with rest_for(sim, log) as rest:
        await sim.add_fault("cloudflare_1006")
        with pytest.raises(errors.Blocked) as failed:
            await rest.get_orders()
        assert failed.value.kind is Kind.IP_BANNED
        critical = [a for a in log.recent(event="alert") if a["tier"] == "critical"]
        assert critical and "IP banned" in str(critical[-1]["message"])


async def test_dns_failure_gives_a_short_cooldown(sim_server: Factory) -> None:
    sim = await sim_server()
    log = EventLog()
    port = sim.base_url.rsplit(":", 1)[1]
    resolver = SimResolver(sim.base_url)
    try:
        async with rest_for(sim, log, resolver=resolver, keepalive=False,
                            base_url=f"http://sim.venueguard.test:{port}/api/v1") as rest:
            assert isinstance(await rest.get_instruments(), list)  # resolves through the seam
            await sim.add_fault("dns_failure")
            with pytest.raises(errors.CoolingDown) as failed:
                await rest.get_instruments()
            assert failed.value.kind is Kind.DNS
            assert 0 < failed.value.until - monotonic() <= 60
    finally:
        await resolver.close()


async def test_latency_is_recorded_for_the_response_time_rules(sim_server: Factory) -> None:
    sim = await sim_server()
    metrics = Metrics()
    async with rest_for(sim, EventLog(), metrics=metrics) as rest:
        await sim.add_fault("latency", ms=300.0)
        for _ in range(3):
            await rest.get_positions()
        average = rest.health.average_latency_s
        assert average is not None and average >= 0.3
        text = metrics.render().decode()
        assert ('venueguard_rest_latency_seconds_count{endpoint="/position",method="GET"} 3.0'
                in text)


@pytest.mark.parametrize("kind", ["timeout_after_accept", "bad_gateway_after_accept"])
async def test_ambiguous_outcome_is_resolved_by_lookup_never_resent(sim_server: Factory,
                                                                     kind: str) -> None:
    sim = await sim_server()
    log = EventLog()
    async with rest_for(sim, log) as rest:
        await sim.add_fault(kind, probability=1.0)
        with pytest.raises(errors.AmbiguousOutcome) as unknown:
            await order_at(rest, cl_ord_id=f"amb-{kind[:7]}")
        assert unknown.value.cl_ord_id == f"amb-{kind[:7]}"
        await sim.clear_faults()
        row = await rest.find_order(f"amb-{kind[:7]}")
        assert row is not None and row["ordStatus"] == "New"
        assert await sent(sim, POST_ORDER) == 1  # never re-POSTed
        assert log.recent(event="rest.ambiguous")


@pytest.mark.parametrize(("fault", "kind"), [("expired_request", "nonce_expired"),
                                             ("invalid_key", "invalid_credentials"),
                                             ("bad_signature", "invalid_credentials")])
async def test_auth_failures_are_typed_and_not_retried(sim_server: Factory, fault: str,
                                                       kind: str) -> None:
    sim = await sim_server()
    log = EventLog()
    async with rest_for(sim, log) as rest:
        await sim.add_fault(fault)
        with pytest.raises(errors.AuthError) as failed:
            await order_at(rest)
        assert failed.value.kind is Kind(kind)
        assert await sent(sim, POST_ORDER) == 1
        assert sim.api_secret not in str(log.recent()) + str(failed.value)


async def test_delayed_visibility_lookup_says_not_yet_then_finds_it(sim_server: Factory
                                                                    ) -> None:
    sim = await sim_server()
    async with rest_for(sim, EventLog()) as rest:
        await sim.add_fault("delayed_visibility", delay_s=1.0)
        placed = await order_at(rest, cl_ord_id="late-seen")
        assert placed["ordStatus"] == "New"
        assert await rest.find_order("late-seen") is None  # not proof of absence
        await asyncio.sleep(1.2)
        found = await rest.find_order("late-seen")
        assert found is not None and found["orderID"] == placed["orderID"]


async def test_late_fill_order_filled_before_its_execution_is_visible(sim_server: Factory
                                                                       ) -> None:
    sim = await sim_server()
    async with rest_for(sim, EventLog()) as rest:
        await sim.add_fault("late_fill", delay_s=1.0)
        filled = await rest.place_order("XBTUSD", "Buy", 100, ord_type="Market",
                                        cl_ord_id="taker-1")
        assert filled["ordStatus"] == "Filled"
        trades = await rest.get_executions(filter={"clOrdID": "taker-1", "execType": "Trade"})
        assert trades == []
        await asyncio.sleep(1.3)
        trades = await rest.get_executions(filter={"clOrdID": "taker-1", "execType": "Trade"})
        assert trades and sum(t["lastQty"] for t in trades) == 100


async def test_cancel_race_returns_the_fill_not_an_error(sim_server: Factory) -> None:
    sim = await sim_server()
    async with rest_for(sim, EventLog()) as rest:
        placed = await order_at(rest, cl_ord_id="racer")
        await sim.add_fault("cancel_race", probability=1.0)
        rows = await rest.cancel_orders(cl_ord_ids=["racer"])
        assert len(rows) == 1 and rows[0]["orderID"] == placed["orderID"]
        assert rows[0].get("ordStatus") == "Filled" or "error" in rows[0]
        assert await sent(sim, "DELETE /api/v1/order") == 1
