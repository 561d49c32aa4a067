"""The monitor's Binance probe times its request on its clock, so a virtual clock measures it."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from aiohttp import web

from venueguard.app.binance_feeds import BinanceProbe
from venueguard.io.clock import SYSTEM_CLOCK
from venueguard.io.vloop import run_virtual
from venueguard.telemetry.metrics import Metrics


def test_the_probes_latency_is_read_on_its_clock() -> None:
    """The venue answers /fapi/v1/time after 0.25 s of virtual time: the probe reports 0.25 s
    (it once read the process clock, which shows no delay when the loop's time is virtual)."""
    seen: list[tuple[str, int | None, float | None]] = []

    async def scenario() -> None:
        answered = asyncio.Event()

        def on_request(endpoint: str, status: int | None, latency: float | None,
                       wall_s: float) -> None:
            seen.append((endpoint, status, latency))
            answered.set()

        async def server_time(request: web.Request) -> web.Response:
            await asyncio.sleep(0.25)
            return web.json_response({"serverTime": 1})

        app = web.Application()
        app.router.add_get("/fapi/v1/time", server_time)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 8080).start()
        ctx: Any = SimpleNamespace(
            metrics=Metrics(),
            on_request=on_request)
        probe = BinanceProbe("http://127.0.0.1:8080", 5.0, SYSTEM_CLOCK, ctx)
        task = asyncio.create_task(probe.run())
        await answered.wait()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await runner.cleanup()

    run_virtual(scenario())
    (endpoint, status, latency), = seen
    assert (endpoint, status) == ("GET /fapi/v1/time", 200)
    assert latency is not None and 0.25 <= latency < 0.26
