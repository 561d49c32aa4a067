"""Replaying a Binance USDⓈ-M capture (``venueguard sim --dialect binance-usdm --replay FILES``).

``FILES`` is one path or several joined by commas. Lines may be:
- ``<url> -> <receive ts>: <json>``: a REST answer; a depth snapshot (``lastUpdateId``, ``bids``,
  ``asks``) of the URL's ``symbol`` is served by ``GET /fapi/v1/depth`` (cut to ``limit``);
- ``<receive ts>: <json>`` or a bare JSON line: a websocket frame, combined
  (``{"stream", "data"}``) or a raw event (its stream is derived from ``e`` and ``s``);
- anything else (the recorder's URL and configuration lines) is skipped.
Each websocket connection gets the recorded events of the streams it subscribed, from the start of
the recording, spaced by their ``E`` times divided by ``speed`` (0: as fast as it reads them).
A client that follows Binance's book procedure on this replay rebuilds the book the recording
describes.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import orjson

from venueguard.sim.binance.ws import stream_key
from venueguard.sim.replay import ReplayError

if TYPE_CHECKING:
    from venueguard.sim.binance.conn import BinanceConn
    from venueguard.sim.binance.ws import StreamHub

__all__ = ["BinanceRecording", "ReplayPlayer"]

_STREAM_OF = {"depthUpdate": "depth", "aggTrade": "aggTrade", "bookTicker": "bookTicker"}


@dataclass(frozen=True, slots=True)
class Recorded:
    ts_ms: int
    key: str  # fan-out key, e.g. "btcusdt@depth"
    data: dict[str, Any]
    depth: bool


def _split_line(line: str) -> tuple[str | None, str] | None:
    """(REST url or None, JSON text) of a capture line, or None when it holds no JSON."""
    url: str | None = None
    if " -> " in line:
        url, _, line = line.partition(" -> ")
    start = line.find("{")
    if start < 0:
        return None
    return url, line[start:]


def _key_of(frame: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(fan-out key, event): the combined frame's stream, else one derived from the event (a
    raw depth event counts as ``<symbol>@depth``, the 250 ms cadence)."""
    data = frame.get("data", frame)
    if not isinstance(data, dict):
        return None
    stream = frame.get("stream")
    key = stream_key(stream) if isinstance(stream, str) else None
    if key is not None:
        return key, data
    kind = _STREAM_OF.get(str(data.get("e")))
    symbol = data.get("s")
    if kind is None or not isinstance(symbol, str):
        return None
    key = stream_key(f"{symbol.lower()}@{kind}")
    return (key, data) if key is not None else None


class BinanceRecording:
    def __init__(self, events: list[Recorded], snapshots: dict[str, dict[str, Any]]) -> None:
        self.events = events
        self.snapshots = snapshots

    @classmethod
    def load(cls, paths: str | Path) -> BinanceRecording:
        events: list[Recorded] = []
        snapshots: dict[str, dict[str, Any]] = {}
        for raw_path in str(paths).split(","):
            path = Path(raw_path.strip())
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise ReplayError(f"{path}: cannot read: {exc.strerror or exc}") from None
            for number, line in enumerate(text.splitlines(), 1):
                cls._line(path, number, line, events, snapshots)
        if not events and not snapshots:
            raise ReplayError(f"{paths}: no Binance events or depth snapshots found")
        return cls(events, snapshots)

    @staticmethod
    def _line(path: Path, number: int, line: str, events: list[Recorded],
              snapshots: dict[str, dict[str, Any]]) -> None:
        parts = _split_line(line)
        if parts is None:
            return
        url, text = parts
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise ReplayError(f"{path}:{number}: not JSON: {exc.msg}") from None
        if not isinstance(obj, dict):
            return
        if "lastUpdateId" in obj and "bids" in obj:
            query = parse_qs(urlsplit(url or "").query)
            symbol = (query.get("symbol") or [str(obj.get("symbol", ""))])[0].upper()
            if symbol:
                snapshots.setdefault(symbol, obj)
            return
        keyed = _key_of(obj)
        if keyed is None:
            return
        key, data = keyed
        ts = data.get("E")
        events.append(Recorded(int(ts) if isinstance(ts, int) else 0, key, data,
                               "@depth@" in key))

    def depth(self, symbol: str, limit: int) -> dict[str, Any] | None:
        snap = self.snapshots.get(symbol)
        if snap is None:
            return None
        return {**snap, "bids": list(snap.get("bids", []))[:limit],
                "asks": list(snap.get("asks", []))[:limit]}

    def exchange_info_rows(self) -> list[dict[str, Any]]:
        names = sorted({e.data["s"] for e in self.events} | set(self.snapshots))
        rows = []
        for name in names:
            base = name[:-4] if name.endswith("USDT") else name
            rows.append({"symbol": name, "pair": name, "contractType": "PERPETUAL",
                         "status": "TRADING", "baseAsset": base, "quoteAsset": "USDT",
                         "marginAsset": "USDT", "pricePrecision": 8, "quantityPrecision": 8,
                         "filters": [], "orderTypes": ["LIMIT", "MARKET"],
                         "timeInForce": ["GTC", "IOC", "FOK", "GTX"]})
        return rows


class ReplayPlayer:
    """Sends the recording to one connection (its subscribed streams only)."""

    def __init__(self, recording: BinanceRecording, hub: StreamHub, conn: BinanceConn, *,
                 speed: float) -> None:
        self.recording = recording
        self.hub = hub
        self.conn = conn
        self.speed = speed
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self._play(), name=f"sim-binance-replay-{self.conn.serial}")

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _play(self) -> None:
        conn, hub = self.conn, self.hub
        loop = asyncio.get_running_loop()
        start_real = loop.time()
        first_ts: int | None = None
        with contextlib.suppress(asyncio.CancelledError):
            for index, event in enumerate(self.recording.events):
                if conn.closed:
                    return
                if self.speed > 0 and event.ts_ms:
                    first_ts = event.ts_ms if first_ts is None else first_ts
                    due = start_real + (event.ts_ms - first_ts) / 1000.0 / self.speed
                    delay = due - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                elif index % 200 == 0:
                    await asyncio.sleep(0)
                hub.publish_raw(conn, event.key, event.data, event.depth)
