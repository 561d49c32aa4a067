"""DNS rebinding: the dashboard answers only requests that name it (Host), and runs controls
only for its own pages (Origin)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from venueguard.app.dashboard import (
    DashboardServer,
    create_dashboard_app,
    host_allowed,
    start_dashboard,
)
from venueguard.telemetry.metrics import Metrics

CONTROL = {"X-Venueguard-Control": "1"}


@pytest.fixture
async def dashboard() -> AsyncIterator[tuple[DashboardServer, list[str]]]:
    calls: list[str] = []
    app = create_dashboard_app(lambda: {"venue_state": "HEALTHY"}, Metrics(), read_only=False,
                               controls={"pause": lambda: calls.append("pause")},
                               allowed_hosts=["monitor.internal"])
    server = await start_dashboard(app, host="127.0.0.1", port=0)
    try:
        yield server, calls
    finally:
        await server.close()


async def status_of(server: DashboardServer, method: str, path: str,
                    headers: dict[str, str]) -> int:
    async with aiohttp.ClientSession() as session, session.request(
            method, f"http://127.0.0.1:{server.port}{path}", headers=headers) as resp:
        await resp.read()
        return resp.status


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "LOCALHOST", "app.localhost",
                                  "127.0.0.2", "[::1]", "monitor.internal"])
async def test_loopback_and_configured_names_are_served(
        dashboard: tuple[DashboardServer, list[str]], host: str) -> None:
    server, _ = dashboard
    for path in ("/api/state", "/metrics"):
        assert await status_of(server, "GET", path, {"Host": f"{host}:{server.port}"}) == 200


@pytest.mark.parametrize("host", ["evil.example", "127.0.0.1.evil.example", "localhost.evil",
                                  "10.0.0.1", "", "[::2]"])
async def test_any_other_host_gets_421(dashboard: tuple[DashboardServer, list[str]],
                                       host: str) -> None:
    server, calls = dashboard
    for path in ("/api/state", "/metrics", "/"):
        assert await status_of(server, "GET", path, {"Host": f"{host}:{server.port}"}) == 421
    assert await status_of(server, "POST", "/api/control/pause",
                           {"Host": host, **CONTROL}) == 421
    assert calls == []


@pytest.mark.parametrize(("origin", "status"), [
    (None, 200), ("http://127.0.0.1:8765", 200), ("http://localhost", 200),
    ("http://monitor.internal:8765", 200),
    ("http://evil.example", 403), ("null", 403), ("https://127.0.0.1.evil.example", 403),
])
async def test_controls_check_the_origin(dashboard: tuple[DashboardServer, list[str]],
                                         origin: str | None, status: int) -> None:
    server, calls = dashboard
    headers = dict(CONTROL) if origin is None else {**CONTROL, "Origin": origin}
    assert await status_of(server, "POST", "/api/control/pause", headers) == status
    assert calls == (["pause"] if status == 200 else [])


def test_host_names_that_count_as_loopback() -> None:
    assert host_allowed("127.8.9.10") and host_allowed("::1") and host_allowed("a.localhost")
    assert not host_allowed("localhost.example") and not host_allowed("0.0.0.0")
    assert host_allowed("box", frozenset({"box"})) and not host_allowed("")
