"""The virtual-time loop and its in-memory network: timers, clocks, servers and clients without
sockets, refusal, close and reset, flow control."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from venueguard.core.classify import Transport
from venueguard.io import clock
from venueguard.io.http_transport import AiohttpTransport
from venueguard.io.rest_transport import TransportFailure
from venueguard.io.vloop import DEFAULT_WALL_EPOCH_MS, TICK_S, VirtualTimeLoop, run_virtual
from venueguard.io.ws_transport import connect_aiohttp, connect_picows


def test_timers_fire_in_virtual_order_and_an_hour_takes_no_real_time() -> None:
    fired: list[tuple[str, float]] = []

    async def main() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        t0 = loop.time()

        async def at(delay: float, name: str) -> None:
            await asyncio.sleep(delay)
            fired.append((name, loop.time() - t0))

        real0 = time.monotonic()
        async with asyncio.TaskGroup() as group:
            for delay, name in ((3600.0, "hour"), (0.25, "quarter"), (60.0, "minute"),
                                (0.25, "quarter-2"), (0.0, "now")):
                group.create_task(at(delay, name))
        return loop.time() - t0, time.monotonic() - real0

    virtual_s, real_s = run_virtual(main())
    assert [name for name, _ in fired] == ["now", "quarter", "quarter-2", "minute", "hour"]
    assert [at for _, at in fired] == [0.0, 0.25, 0.25, 60.0, 3600.0]
    assert virtual_s == 3600.0
    assert real_s < 1.0                   # an hour of virtual time in (well under) a second


def test_a_measured_sleep_is_never_shorter_than_asked() -> None:
    delays = [0.3, 0.1, 0.7, 1.2, 0.05, 1e-7, 2.9]

    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        loop.call_later(0.013, lambda: None)      # the clock off a round number first
        await asyncio.sleep(0.013)
        measured = []
        for delay in delays:
            t0 = loop.time()
            await asyncio.sleep(delay)
            measured.append(loop.time() - t0)
        return measured

    for delay, took in zip(delays, run_virtual(main()), strict=True):
        assert delay <= took < delay + TICK_S


def test_clock_seam_reads_the_virtual_clocks_inside_and_the_system_outside() -> None:
    async def main() -> tuple[float, int, float, int, bool]:
        m0, w0 = clock.monotonic(), clock.wall_ns()
        await asyncio.sleep(90.5)
        return (clock.monotonic() - m0, clock.wall_ns() - w0, clock.SYSTEM_CLOCK.monotonic(),
                clock.SYSTEM_CLOCK.wall_ms(), clock.virtual_time())

    mono, wall, system_mono, system_wall_ms, virtual = run_virtual(main(), start_s=50.0)
    assert mono == 90.5 and wall == 90_500_000_000 and virtual
    assert system_mono == 140.5
    assert system_wall_ms == DEFAULT_WALL_EPOCH_MS + 90_500
    assert not clock.virtual_time()
    assert abs(clock.wall_s() - time.time()) < 5.0
    assert abs(clock.monotonic() - time.monotonic()) < 5.0


def test_executor_work_runs_inline_and_takes_no_virtual_time() -> None:
    async def main() -> tuple[int, float]:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        value = await asyncio.to_thread(sum, [1, 2, 3])
        with pytest.raises(ZeroDivisionError):
            await asyncio.to_thread(lambda: 1 / 0)
        return value, loop.time() - t0

    assert run_virtual(main()) == (6, 0.0)


async def _serve(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server: Any = site._server
    return runner, int(server.sockets[0].getsockname()[1])


def test_aiohttp_server_and_client_talk_over_the_in_memory_network() -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(2.0)
        return web.json_response({"echo": request.query.get("q")})

    async def main() -> tuple[int, Any, float, int]:
        app = web.Application()
        app.router.add_get("/slow", slow)
        runner, port = await _serve(app)
        loop = asyncio.get_running_loop()
        try:
            async with aiohttp.ClientSession() as session:
                t0 = loop.time()
                async with session.get(f"http://127.0.0.1:{port}/slow?q=hi") as resp:
                    status, body = resp.status, await resp.json()
                took = loop.time() - t0
                # the client's own read timeout fires in virtual time
                with pytest.raises(TimeoutError):
                    await session.get(f"http://127.0.0.1:{port}/slow",
                                      timeout=aiohttp.ClientTimeout(sock_read=0.5))
        finally:
            await runner.cleanup()
        return status, body, took, port

    status, body, took, port = run_virtual(main())
    assert (status, body, took) == (200, {"echo": "hi"}, 2.0)
    assert port == 40_000                       # ports are handed out in order: deterministic


def test_connect_to_an_address_nobody_listens_on_is_refused() -> None:
    async def main() -> tuple[Transport, bool]:
        transport = AiohttpTransport()
        try:
            with pytest.raises(TransportFailure) as failed:
                await transport.send("GET", "http://127.0.0.1:40123/x", {}, b"",
                                     connect_s=1.0, sock_read_s=1.0)
        finally:
            await transport.close()
        assert failed.value.outcome.transport is not None
        with pytest.raises(ConnectionRefusedError):
            await asyncio.get_running_loop().create_connection(asyncio.Protocol, "127.0.0.1", 1)
        return failed.value.outcome.transport, failed.value.outcome.sent

    assert run_virtual(main()) == (Transport.CONNECTION_REFUSED, False)


def test_a_host_name_does_not_resolve_on_the_in_memory_network() -> None:
    async def main() -> None:
        import socket
        with pytest.raises(socket.gaierror):
            await asyncio.get_running_loop().getaddrinfo("example.com", 443)

    run_virtual(main())


class _Recorder(asyncio.Protocol):
    def __init__(self) -> None:
        self.data = bytearray()
        self.eof = False
        self.lost: list[BaseException | None] = []
        self.transport: asyncio.Transport | None = None
        self.paused = 0
        self.resumed = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.data += data

    def eof_received(self) -> bool | None:
        self.eof = True
        return None

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost.append(exc)

    def pause_writing(self) -> None:
        self.paused += 1

    def resume_writing(self) -> None:
        self.resumed += 1


async def _pair() -> tuple[_Recorder, _Recorder]:
    loop = asyncio.get_running_loop()
    servers: list[_Recorder] = []

    def factory() -> _Recorder:
        servers.append(_Recorder())
        return servers[-1]

    await loop.create_server(factory, "127.0.0.1", 7000)
    _, client = await loop.create_connection(_Recorder, "127.0.0.1", 7000)
    assert isinstance(client, _Recorder)
    return client, servers[0]


def test_bytes_arrive_in_order_and_close_reaches_the_other_side() -> None:
    async def main() -> tuple[_Recorder, _Recorder]:
        client, server = await _pair()
        assert client.transport is not None and server.transport is not None
        client.transport.write(b"one ")
        client.transport.write(b"two")
        client.transport.close()
        client.transport.write(b"ignored after close")
        await asyncio.sleep(0.01)
        return client, server

    client, server = run_virtual(main())
    assert bytes(server.data) == b"one two"
    assert server.eof and server.lost == [None] and client.lost == [None]


def test_abort_reaches_the_other_side_as_a_reset() -> None:
    async def main() -> tuple[_Recorder, _Recorder]:
        client, server = await _pair()
        assert server.transport is not None
        server.transport.write(b"never delivered")
        server.transport.abort()
        await asyncio.sleep(0.01)
        return client, server

    client, server = run_virtual(main())
    assert server.lost == [None]
    assert len(client.lost) == 1 and isinstance(client.lost[0], ConnectionResetError)
    assert client.data == b"" and not client.eof


def test_flow_control_pauses_the_writer_and_resumes_it_without_deadlock() -> None:
    async def main() -> tuple[_Recorder, _Recorder, int]:
        client, server = await _pair()
        assert client.transport is not None and server.transport is not None
        client.transport.set_write_buffer_limits(high=1000, low=100)
        server.transport.pause_reading()
        client.transport.write(b"x" * 600)
        client.transport.write(b"y" * 600)           # 1,200 queued > high: paused
        await asyncio.sleep(1.0)
        queued = client.transport.get_write_buffer_size()
        assert client.paused == 1 and client.resumed == 0 and server.data == b""
        server.transport.resume_reading()
        await asyncio.sleep(0.01)
        return client, server, queued

    client, server, queued = run_virtual(main())
    assert queued == 1200
    assert client.resumed == 1 and bytes(server.data) == b"x" * 600 + b"y" * 600


def test_a_large_stream_through_aiohttp_websockets_and_picows_arrives_whole() -> None:
    frames = [f"frame-{i:05d}-" + "z" * 2000 for i in range(300)]   # ~600 kB: flow control bites

    async def feed(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.data == "go":
                for frame in frames:
                    await ws.send_str(frame)
                await ws.close()
        return ws

    class Handler:
        def __init__(self) -> None:
            self.texts: list[bytes] = []
            self.closed = asyncio.Event()

        def on_text(self, payload: bytes) -> None:
            self.texts.append(payload)

        def on_pong_frame(self) -> None:
            pass

        def on_closed(self) -> None:
            self.closed.set()

    async def main() -> dict[str, list[bytes]]:
        app = web.Application()
        app.router.add_get("/ws", feed)
        runner, port = await _serve(app)
        got: dict[str, list[bytes]] = {}
        try:
            for connect in (connect_picows, connect_aiohttp):
                handler = Handler()
                conn = await connect(f"ws://127.0.0.1:{port}/ws", handler, {}, 1.0)
                conn.send_text("go")
                async with asyncio.timeout(60):
                    await handler.closed.wait()
                got[connect.__name__] = handler.texts
        finally:
            await runner.cleanup()
        return got

    got = run_virtual(main())
    expected = [f.encode() for f in frames]
    assert got == {"connect_picows": expected, "connect_aiohttp": expected}


def test_the_loop_is_an_asyncio_loop_usable_by_a_runner() -> None:
    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        assert runner.run(asyncio.sleep(5, result="done")) == "done"
        assert runner.get_loop().time() == 1005.0


def test_the_simulator_clock_and_the_event_log_read_the_virtual_clocks() -> None:
    import io as text_io

    from venueguard.sim.clock import SimClock
    from venueguard.telemetry.events import EventLog

    async def main() -> tuple[int, int, str]:
        sim_clock = SimClock()
        stream = text_io.StringIO()
        log = EventLog(stream)
        start_ms = sim_clock.now_ms()
        await asyncio.sleep(61.25)
        log.emit("ws.stale", threshold_s=1.0)
        return start_ms, sim_clock.now_ms(), stream.getvalue()

    start_ms, later_ms, line = run_virtual(main())
    assert start_ms == DEFAULT_WALL_EPOCH_MS and later_ms == start_ms + 61_250
    assert line.startswith('{"ts":"2026-01-01T00:01:01.250Z","event":"ws.stale"')
