"""Fuzz: requests to ``venueguard proxy`` (in front of the simulator, guarding), written byte by
byte on a real socket (loopback).

Whatever the method, path, query, headers (signed or not, any bytes) and body, the proxy adds no
5xx of its own (the simulator behind it answers any such request below 500, see
test_fuzz_sim.py), logs no error but the guard's events, never logs the key or signature
headers it forwards, and keeps serving. Any bytes on its socket never get a 5xx either.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from fuzzcfg import FUZZ
from hypothesis import given
from hypothesis import strategies as st
from test_fuzz_sim import exchange, raw_exchange, requests

from venueguard.proxy.testing import ProxyHandle, running_proxy
from venueguard.sim.testing import running_sim


@pytest.fixture
async def fuzz_proxy() -> AsyncIterator[ProxyHandle]:
    async with running_sim(scenario="calm", rest_per_min=10**6, rest_unauth_per_min=10**6,
                           order_per_s=10**6) as sim, running_proxy(
            sim.base_url, dialect="bitmex", guard=True) as proxy:
        yield proxy


@FUZZ
@given(requests())
async def test_any_request_gets_no_5xx_of_the_proxys_own(
        fuzz_proxy: ProxyHandle, caplog: pytest.LogCaptureFixture,
        request: tuple[str, str, dict[str, bytes], bytes]) -> None:
    method, path, headers, body = request
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        status, payload = await exchange(fuzz_proxy.server.port, method, path, headers, body)
    assert status < 500, (status, payload[:300])
    # the guard's own events (rest.error for a refused request) reach logging as events
    assert not [r for r in caplog.records
                if r.levelno >= logging.ERROR and not hasattr(r, "venueguard_event")]
    logged = caplog.text.encode("utf-8", "surrogateescape")
    for name in ("api-key", "api-signature"):
        secret = headers.get(name, b"")
        if len(secret) >= 8:  # long enough not to match by chance
            assert secret not in logged, name
    status, _ = await exchange(fuzz_proxy.server.port, "GET", "/api/v1/instrument", {}, b"")
    assert status == 200


@FUZZ
@given(st.binary(min_size=1, max_size=300))
async def test_any_bytes_on_the_proxys_socket_never_give_a_5xx(fuzz_proxy: ProxyHandle,
                                                              data: bytes) -> None:
    answer = await raw_exchange(fuzz_proxy.server.port, data)
    if answer:
        assert not answer.startswith(b"HTTP/1.1 5"), answer[:200]
