"""Websocket fan-out: frames built once, written in batches, the event loop given back."""

from __future__ import annotations

import asyncio
import struct

import pytest

from venueguard.sim import fanout
from venueguard.sim.fanout import FrameSender, text_frame


@pytest.mark.parametrize(("size", "header"), [
    (0, b"\x81\x00"), (125, b"\x81\x7d"), (126, b"\x81\x7e" + struct.pack("!H", 126)),
    (65535, b"\x81\x7e" + struct.pack("!H", 65535)),
    (65536, b"\x81\x7f" + struct.pack("!Q", 65536)),
])
def test_text_frame_is_final_unmasked_with_the_right_length(size: int, header: bytes) -> None:
    payload = b"x" * size
    frame = text_frame(payload)
    assert frame == header + payload


class FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.buffered = 0
        self.closing = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return self.buffered


def sender_for(transport: FakeTransport, **kw: object) -> FrameSender:
    return FrameSender(transport, max_queue=kw.pop("max_queue", 1000), **kw)  # type: ignore[arg-type]


async def test_frames_go_out_in_order_in_batches_and_the_loop_runs_between() -> None:
    transport = FakeTransport()
    sender = sender_for(transport, max_queue=10_000)
    frames = [text_frame(b"%05d" % i + b"y" * 1000) for i in range(300)]
    for frame in frames:
        sender.push(frame)
    ticks = 0

    async def other_work() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    other = asyncio.create_task(other_work())
    sender.close()  # run() writes everything queued, then returns
    await sender.run()
    other.cancel()
    assert sender.sent_frames == len(frames)
    assert b"".join(transport.writes) == b"".join(frames)
    assert 1 < len(transport.writes) < len(frames)  # batched: fewer writes than frames
    assert len(transport.writes[0]) == sum(map(len, frames[:fanout.BATCH_FRAMES]))
    assert ticks >= len(transport.writes) - 1  # other work ran between batches


async def test_close_writes_what_is_queued_and_halted_stops_writing() -> None:
    transport = FakeTransport()
    sender = sender_for(transport)
    sender.push(b"a")
    sender.push(b"b")
    sender.close()
    sender.push(b"late")  # after close: ignored
    await sender.run()
    assert transport.writes == [b"ab"]

    halted_transport = FakeTransport()
    halted = sender_for(halted_transport, halted=lambda: True)
    halted.push(b"never")
    await asyncio.wait_for(halted.run(), 1.0)
    assert halted_transport.writes == []


async def test_a_closing_transport_raises_connection_error() -> None:
    transport = FakeTransport()
    transport.closing = True
    sender = sender_for(transport)
    sender.push(b"x")
    with pytest.raises(ConnectionError):
        await sender.run()


def test_overflow_drops_the_queue_and_tells_the_owner_once() -> None:
    calls: list[int] = []
    sender = sender_for(FakeTransport(), max_queue=3, on_overflow=lambda: calls.append(1))
    for _ in range(6):
        sender.push(b"x")
    assert calls == [1] and sender.overflowed and len(sender) == 0


async def test_a_full_transport_buffer_pauses_the_writer_until_it_drains() -> None:
    transport = FakeTransport()
    sender = sender_for(transport)
    sender.push(b"first")
    transport.buffered = fanout.HIGH_WATER_BYTES + 1
    task = asyncio.create_task(sender.run())
    await asyncio.sleep(0.02)
    sender.push(b"second")
    await asyncio.sleep(0.02)
    assert transport.writes == [b"first"]  # waiting for the client to read
    transport.buffered = 0
    await asyncio.sleep(0.02)
    assert transport.writes == [b"first", b"second"]
    sender.close()
    await task


async def test_wait_below_returns_once_the_writer_catches_up() -> None:
    transport = FakeTransport()
    sender = sender_for(transport)
    for _ in range(50):
        sender.push(b"z" * 4000)
    task = asyncio.create_task(sender.run())
    await asyncio.wait_for(sender.wait_below(5), 2.0)
    assert len(sender) <= 5
    sender.close()
    await task


async def test_push_many_keeps_order_and_overflows_as_a_whole() -> None:
    transport = FakeTransport()
    calls: list[int] = []
    sender = sender_for(transport, max_queue=4, on_overflow=lambda: calls.append(1))
    sender.push(b"a")
    sender.push_many([b"b", b"c"])
    sender.push_many([])
    assert len(sender) == 3 and calls == []
    sender.push_many([b"d", b"e"])  # 5 > 4: the client is too slow
    assert calls == [1] and sender.overflowed and len(sender) == 0
    await sender.run()  # closed by the overflow: returns at once, writes nothing
    assert transport.writes == []


def test_engine_steps_hold_about_step_events_market_events() -> None:
    from venueguard.sim.server import SimConfig, SimServer

    slow = SimServer(SimConfig(rate_msgs_s=50.0, scenario=None))
    fast = SimServer(SimConfig(rate_msgs_s=10_000.0, scenario=None))
    assert slow._step_ms() == slow.config.max_step_ms == 20
    step = fast._step_ms()
    assert 1 <= step < 20
    # 10,000 events/s times the current intensity: about step_events events per step
    events = 10.0 * fast.engine.intensity(None) * step
    assert fast.config.step_events / 2 <= events <= fast.config.step_events
    fast.engine.burst(9.0, None, fast.engine.now_ms)  # a burst shortens the steps further
    assert fast._step_ms() < step
