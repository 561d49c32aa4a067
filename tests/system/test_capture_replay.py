"""Real BitMEX captures served through the simulator's --replay end in the reference book.

Each capture group (one recorded connection) is written to a replay file in ``tmp_path`` at test
time, served by an in-process simulator with ``replay_speed=0``, and read by the market-data
session over loopback. Its final book per symbol must equal the naive reference replay
(tests/venues/reference_book.py) over the same messages.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from venueguard.core.liveness import LivenessConfig
from venueguard.io.ws_session import MarketDataSession, MdConfig
from venueguard.sim.testing import running_sim
from venueguard.telemetry.events import EventLog

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "venues"))
from reference_book import capture_groups, replay_reference

pytestmark = pytest.mark.system



async def replay_through_session(recording: Path, tables: list[str], expected_frames: int
                                 ) -> dict[str, dict[str, Any]]:
    async with running_sim(scenario="calm", seed=1, rate_msgs_s=1.0, book_format="modern",
                           symbols=("XBTUSD",), replay_path=recording, replay_speed=0.0) as sim:
        config = MdConfig(url=sim.ws_url, topics=tuple(tables), check_timestamps=False,
                          liveness=LivenessConfig(max_data_age_s=60.0, ping_after_s=30.0,
                                                  pong_timeout_s=30.0))
        session = MarketDataSession(config, events=EventLog())
        async with session:
            deadline = time.monotonic() + 10.0
            while session.state.counters.frames < expected_frames:
                assert time.monotonic() < deadline, session.state.counters
                await asyncio.sleep(0.01)
            assert session.state.counters.gaps == 0
            assert session.state.counters.rejected == 0
            return {table: {symbol: book.sides()
                            for symbol, book in session.state.books[table].books.items()
                            if book.valid}
                    for table in tables}


async def test_captures_replayed_through_the_simulator_match_the_reference(
        bitmex_fixtures: Path, tmp_path: Path) -> None:
    groups = capture_groups(bitmex_fixtures)
    assert len(groups) >= 2
    levels = 0
    for index, messages in enumerate(groups.values()):
        recording = tmp_path / f"capture-{index}.jsonl"
        recording.write_bytes(b"\n".join(orjson.dumps(m) for m in messages) + b"\n")
        tables = sorted({m["table"] for m in messages})
        # welcome + one ack per topic + every recorded message
        got = await replay_through_session(recording, tables, 1 + len(tables) + len(messages))
        for table in tables:
            expected = replay_reference(messages, tables=[table])
            assert got[table] == expected, (index, table)
            levels += sum(len(side) for book in expected.values() for side in book.values())
    assert levels > 0
