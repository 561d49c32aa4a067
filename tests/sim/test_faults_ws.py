"""Each websocket fault kind, observed from a raw aiohttp client.

Trade rows carry a per-market match sequence in ``trdMatchID``; a healthy stream shows it
contiguous and increasing, so reordering, duplication and gaps are visible in it.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import aiohttp
import orjson
import pytest

from venueguard.io.clock import monotonic, wall_s
from venueguard.sim.testing import SimHandle
from venueguard.venues.bitmex import timefmt

pytestmark = pytest.mark.virtual_time

RATE = 3000.0


async def _open(sim: SimHandle, topic: str = "trade:XBTUSD",
                close_timeout_s: float = 10.0) -> aiohttp.ClientWebSocketResponse:
    ws = await sim.session.ws_connect(f"{sim.ws_url}?subscribe={topic}", autoping=False,
                                      timeout=aiohttp.ClientWSTimeout(ws_close=close_timeout_s))
    await ws.receive(timeout=5)  # welcome
    await ws.receive(timeout=5)  # ack
    await ws.receive(timeout=5)  # partial
    return ws


async def _collect(ws: aiohttp.ClientWebSocketResponse, seconds: float) -> list[Any]:
    out: list[Any] = []
    deadline = monotonic() + seconds
    while (left := deadline - monotonic()) > 0:
        try:
            msg = await ws.receive(timeout=left)
        except TimeoutError:
            break
        if msg.type is not aiohttp.WSMsgType.TEXT:
            out.append(msg.type)
            break
        out.append("pong" if msg.data == "pong" else orjson.loads(msg.data))
    return out


async def _trades(ws: aiohttp.ClientWebSocketResponse, rows: int = 5,
                  limit_s: float = 10.0) -> list[int]:
    """Match sequence numbers of at least ``rows`` trade rows (waits for them)."""
    seqs: list[int] = []
    deadline = monotonic() + limit_s
    while len(seqs) < rows and monotonic() < deadline:
        seqs += _seqs(await _collect(ws, 0.1))
    assert len(seqs) >= rows, "the market produced too few trades"
    return seqs


def _seqs(messages: list[Any]) -> list[int]:
    return [int(row["trdMatchID"][-12:], 16) for m in messages
            if isinstance(m, dict) and m.get("table") == "trade" for row in m["data"]]


async def test_ws_stall_stops_data_but_answers_pings(sim_server) -> None:  # type: ignore[no-untyped-def]
    sim: SimHandle = await sim_server(rate=RATE)
    ws = await _open(sim)
    await _trades(ws, 1)
    await sim.add_fault("ws_stall")
    await _collect(ws, 0.1)  # whatever was already in flight
    assert _seqs(await _collect(ws, 0.4)) == []
    await ws.send_str("ping")
    assert await _collect(ws, 0.5) == ["pong"]
    await ws.ping(b"x")
    assert (await ws.receive(timeout=2)).type is aiohttp.WSMsgType.PONG
    # a new connection is healthy (the fault was not posted for new connections)
    fresh = await _open(sim)
    await _trades(fresh, 1)
    await ws.close()
    await fresh.close()


async def test_ws_stall_for_new_connections(sim_server) -> None:  # type: ignore[no-untyped-def]
    sim: SimHandle = await sim_server(rate=RATE)
    await sim.add_fault("ws_stall", new_connections=True)
    ws = await sim.session.ws_connect(f"{sim.ws_url}?subscribe=trade:XBTUSD")
    got = await _collect(ws, 0.4)
    assert got and got[0]["info"].startswith("Welcome")  # control traffic still flows
    assert _seqs(got) == []
    await ws.close()


async def test_ws_half_open_stops_data_and_pongs(sim_server) -> None:  # type: ignore[no-untyped-def]
    sim: SimHandle = await sim_server(rate=RATE)
    ws = await _open(sim, close_timeout_s=0.2)
    await sim.add_fault("ws_half_open")
    await _collect(ws, 0.1)
    await ws.send_str("ping")
    await ws.ping(b"x")
    assert await _collect(ws, 0.5) == []  # no data, no pong, no close: the socket is just quiet
    assert not ws.closed
    conn = next(iter(sim.server.hub.connections.values()))
    assert conn.half_open and conn.transport is not None and not conn.transport.is_closing()
    await ws.close()


async def test_ws_drop_closes_without_close_frame(sim_server) -> None:  # type: ignore[no-untyped-def]
    sim: SimHandle = await sim_server(rate=RATE)
    ws = await _open(sim)
    await sim.add_fault("ws_drop")
    got = await _collect(ws, 2.0)
    assert got and got[-1] in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
    assert aiohttp.WSMsgType.CLOSE not in got


async def test_ws_reorder(sim_server) -> None:  # type: ignore[no-untyped-def]
    sim: SimHandle = await sim_server(rate=RATE)
    ws = await _open(sim)
    await sim.add_fault("ws_reorder", probability=1.0)
    seqs = await _trades(ws, 30)
    assert any(b < a for a, b in itertools.pairwise(seqs))
    assert len(set(seqs)) == len(seqs)  # nothing lost or doubled, only out of order
    await ws.close()


async def test_ws_duplicate(sim_server) -> None:  # type: ignore[no-untyped-def]
    sim: SimHandle = await sim_server(rate=RATE)
    ws = await _open(sim)
    await sim.add_fault("ws_duplicate", probability=1.0)
    seqs = await _trades(ws, 20)
    assert len(seqs) > len(set(seqs))
    await ws.close()


async def test_ws_gap_drops_n_deltas(sim_server) -> None:  # type: ignore[no-untyped-def]
    sim: SimHandle = await sim_server(rate=RATE)
    ws = await _open(sim)
    healthy = await _trades(ws, 10)
    assert healthy == list(range(healthy[0], healthy[0] + len(healthy)))
    await sim.add_fault("ws_gap", count=3)
    seqs = healthy + await _trades(ws, 20)
    missing = set(range(seqs[0], seqs[-1] + 1)) - set(seqs)
    assert missing  # three trade messages (one or more rows each) never arrived
    await ws.close()


async def test_ws_stale_and_future_timestamps(sim_server) -> None:  # type: ignore[no-untyped-def]
    sim: SimHandle = await sim_server(rate=RATE)
    stale = await _open(sim)
    await sim.add_fault("ws_stale_timestamps", delay_s=30)
    future = await _open(sim)  # opened after the stale fault: healthy until hit
    await sim.add_fault("ws_future_timestamps", ahead_s=60)  # hits both open connections

    async def ages(ws: aiohttp.ClientWebSocketResponse) -> list[float]:
        """Age (receive time minus row timestamp) of the last trade rows received."""
        out: list[float] = []
        deadline = monotonic() + 10.0
        while len(out) < 8 and monotonic() < deadline:
            for m in await _collect(ws, 0.1):
                if isinstance(m, dict) and m.get("table") == "trade":
                    now_ms = wall_s() * 1000
                    out += [now_ms - timefmt.parse_ms(r["timestamp"]) for r in m["data"]]
        return out[-4:]  # rows queued before the hit may still carry true times

    stale_ages = await ages(stale)
    future_ages = await ages(future)
    assert stale_ages and all(-32_000 < a < -28_000 for a in stale_ages)  # -30 s +60 s
    assert future_ages and all(-62_000 < a < -58_000 for a in future_ages)
    await stale.close()
    await future.close()


async def test_hit_connection_stays_broken_after_clear(sim_server) -> None:  # type: ignore[no-untyped-def]
    sim: SimHandle = await sim_server(rate=RATE)
    ws = await _open(sim)
    await sim.add_fault("ws_stall", duration_s=0.2)
    await asyncio.sleep(0.3)
    await sim.clear_faults()
    await _collect(ws, 0.05)
    assert _seqs(await _collect(ws, 0.3)) == []
    await ws.close()
