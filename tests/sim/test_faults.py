"""Fault kinds, parameter validation, the fault book, and the control API."""

from __future__ import annotations

import asyncio

import pytest

from venueguard.sim.faults import KINDS, FaultBook, FaultError, parse_fault
from venueguard.sim.testing import SimHandle

CONTRACT_KINDS = {
    "overload_503", "rate_limit_429", "forbidden_403", "cloudflare_522", "cloudflare_1010",
    "cloudflare_1006", "dns_failure", "latency", "timeout_after_accept",
    "bad_gateway_after_accept", "expired_request", "invalid_key", "bad_signature", "ws_stall",
    "ws_half_open", "ws_drop", "ws_reorder", "ws_duplicate", "ws_stale_timestamps",
    "ws_future_timestamps", "ws_gap", "delayed_visibility", "late_fill", "cancel_race"}


def test_every_contract_kind_exists_with_its_documented_params() -> None:
    assert set(KINDS) == CONTRACT_KINDS
    documented = {"overload_503": {"probability"}, "rate_limit_429": {"retry_after_s"},
                  "latency": {"ms", "jitter_ms"}, "ws_stale_timestamps": {"delay_s"},
                  "ws_future_timestamps": {"ahead_s"}, "ws_gap": {"count"},
                  "delayed_visibility": {"delay_s"}}
    for kind, names in documented.items():
        assert names <= {p.name for p in KINDS[kind].params}, kind


def test_defaults_are_filled_and_values_coerced() -> None:
    req = parse_fault({"kind": "latency", "ms": 50, "duration_s": 2})
    assert req.params == {"ms": 50.0, "jitter_ms": 0.0} and req.duration_s == 2.0
    gap = parse_fault({"kind": "ws_gap", "count": 3.0, "new_connections": True})
    assert gap.params == {"count": 3} and gap.new_connections is True


@pytest.mark.parametrize(("raw", "needle"), [
    ({"kind": "nope"}, "unknown fault kind 'nope'"),
    ({}, "unknown fault kind None"),
    ([1, 2], "must be a JSON object"),
    ({"kind": "overload_503", "probability": 1.5}, "'probability' must be <= 1"),
    ({"kind": "overload_503", "probability": "high"}, "must be a number"),
    ({"kind": "overload_503", "follow_intensity": 1}, "must be true or false"),
    ({"kind": "latency", "msec": 5}, "unknown parameter(s) 'msec'"),
    ({"kind": "ws_gap", "count": 1.5}, "must be an integer"),
    ({"kind": "ws_gap", "count": 0}, "must be >= 1"),
    ({"kind": "latency", "duration_s": 0}, "'duration_s' must be > 0"),
    ({"kind": "latency", "duration_s": float("nan")}, "must be finite"),
    ({"kind": "overload_503", "new_connections": True}, "applies to ws_* faults only"),
])
def test_bad_requests_name_the_problem(raw: object, needle: str) -> None:
    with pytest.raises(FaultError) as info:
        parse_fault(raw)
    assert needle in str(info.value)


def test_book_expiry_and_seeded_decisions() -> None:
    def draws(seed: int) -> list[bool]:
        book = FaultBook(seed)
        fault = book.add(parse_fault({"kind": "overload_503", "probability": 0.5}), 0.0)
        return [fault.roll() for _ in range(64)]

    assert draws(7) == draws(7)
    assert draws(7) != draws(8)
    assert 10 < sum(draws(7)) < 54
    book = FaultBook(1)
    short = book.add(parse_fault({"kind": "latency", "duration_s": 1}), 100.0)
    forever = book.add(parse_fault({"kind": "forbidden_403"}), 100.0)
    assert book.first("latency", 100.5) is short
    assert [f.id for f in book.expire(101.0)] == [short.id]
    assert book.first("latency", 101.0) is None and book.first("forbidden_403", 1e9) is forever
    assert len(book.clear()) == 1 and len(book) == 0


async def test_control_api_round_trip(sim: SimHandle) -> None:
    fault_id = await sim.add_fault("latency", ms=1, duration_s=30)
    other = await sim.add_fault("ws_stall", new_connections=True)
    listed = await sim.faults()
    assert [f["id"] for f in listed] == [fault_id, other]
    assert listed[0]["kind"] == "latency" and listed[0]["ms"] == 1.0
    assert listed[0]["duration_s"] == 30.0 and listed[1]["new_connections"] is True
    assert await sim.clear_faults() == 2
    assert await sim.faults() == []


async def test_control_api_rejects_bad_faults_clearly(sim: SimHandle) -> None:
    async with sim.session.post(sim.control_url + "/faults", json={"kind": "meteor"}) as resp:
        assert resp.status == 400
        assert "unknown fault kind 'meteor'" in (await resp.json())["error"]
    async with sim.session.post(sim.control_url + "/faults", data=b"{not json") as resp:
        assert resp.status == 400
        assert "not valid JSON" in (await resp.json())["error"]
    async with sim.session.post(sim.control_url + "/faults",
                                json={"kind": "latency", "ms": -5}) as resp:
        assert resp.status == 400
        assert "'ms' must be >= 0" in (await resp.json())["error"]
    async with sim.session.get(sim.control_url + "/faults") as resp:
        body = await resp.json()
    assert body["faults"] == [] and set(body["kinds"]) == CONTRACT_KINDS


async def test_rest_fault_lasts_for_duration(sim: SimHandle) -> None:
    await sim.add_fault("forbidden_403", duration_s=0.3)
    status, _, _ = await sim.request("GET", "/position")
    assert status == 403
    await asyncio.sleep(0.35)
    status, _, _ = await sim.request("GET", "/position")
    assert status == 200
    assert await sim.faults() == []
