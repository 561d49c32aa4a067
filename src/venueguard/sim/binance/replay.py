"""Replaying a Binance USDⓈ-M capture (``venueguard sim --dialect binance-usdm --replay FILES``).

``FILES`` is one path or several joined by commas. Lines may be:
- ``<url> -> <receive ts>: <json>``: a REST answer; a depth snapshot (``lastUpdateId``, ``bids``,
  ``asks``) of the URL's ``symbol`` is served by ``GET /fapi/v1/depth`` (cut to ``limit``);
- ``<receive ts>: <json>`` or a bare JSON line: a websocket frame, combined
  (``{"stream", "data"}``) or a raw event;
- a line naming the recorded websocket URL (``wss://.../ws/<stream>`` or
  ``.../stream?streams=a/b``): the capture's stream names, kept for its raw events (a raw
  ``depthUpdate`` recorded from ``/ws/btcusdt@depth@100ms`` is a ``btcusdt@depth@100ms`` event;
  without such a line it is ``<symbol>@depth``, the venue's default cadence);
- anything else (the recorder's configuration lines) is skipped.

Every subscription gets the recorded events of its stream from the start of the recording,
spaced by their ``E`` times divided by ``speed`` (0: as fast as the client reads them: the
replay waits for a slow reader rather than dropping it; the pacing is
:class:`~venueguard.sim.replayer.Player`'s, shared with the BitMEX dialect), whenever it is
made: a stream subscribed seconds after another on the same connection starts where the other
started, so the recorded depth snapshot is consistent with where its replay starts and it syncs
too. A depth subscription at a cadence the capture does not have gets the capture's depth events
of that symbol (their ``U``/``u``/``pu`` chain is what a client syncs on). A client that follows
Binance's book procedure on this replay rebuilds the book the recording describes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import orjson

from venueguard.sim.binance.ws import stream_key
from venueguard.sim.replayer import Player, ReplayError

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


def _key_of(frame: dict[str, Any], recorded: Mapping[tuple[str, str], str]
            ) -> tuple[str, dict[str, Any]] | None:
    """(fan-out key, event): the combined frame's stream; else the stream of the recorded URL
    carrying this symbol and kind; else one derived from the event (a raw depth event then
    counts as ``<symbol>@depth``, the 250 ms cadence)."""
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
    named = recorded.get((symbol.lower(), kind))
    key = stream_key(named or f"{symbol.lower()}@{kind}")
    return (key, data) if key is not None else None


def _recorded_streams(line: str) -> list[str]:
    """The stream names in a recorded websocket URL line (none when it names none)."""
    start = line.find("ws://") if "ws://" in line else line.find("wss://")
    if start < 0:
        return []
    parts = urlsplit(line[start:].split()[0])
    names = parse_qs(parts.query).get("streams", [""])[0].split("/") if parts.query else []
    path = parts.path.rstrip("/")
    if "/ws/" in path + "/" and not names:
        names = [path.rsplit("/", 1)[1]]
    return [n for n in names if stream_key(n) is not None]


class BinanceRecording:
    def __init__(self, events: list[Recorded], snapshots: dict[str, dict[str, Any]]) -> None:
        self.events = events
        self.snapshots = snapshots
        self.keys = frozenset(e.key for e in events)

    def source_key(self, key: str) -> str | None:
        """The recorded key that serves a subscription to ``key``: itself when recorded; for a
        depth cadence the capture lacks, the capture's depth stream of that symbol (if one)."""
        if key in self.keys:
            return key
        symbol, _, kind = key.partition("@")
        if not kind.startswith("depth"):
            return None
        found = sorted(k for k in self.keys if k.startswith(f"{symbol}@depth"))
        return found[0] if found else None

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
            recorded: dict[tuple[str, str], str] = {}  # (symbol, kind) -> the file's stream
            for number, line in enumerate(text.splitlines(), 1):
                cls._line(path, number, line, events, snapshots, recorded)
        if not events and not snapshots:
            raise ReplayError(f"{paths}: no Binance events or depth snapshots found")
        return cls(events, snapshots)

    @staticmethod
    def _line(path: Path, number: int, line: str, events: list[Recorded],
              snapshots: dict[str, dict[str, Any]],
              recorded: dict[tuple[str, str], str]) -> None:
        parts = _split_line(line)
        if parts is None:
            for name in _recorded_streams(line):
                symbol, _, kind = name.partition("@")
                recorded[(symbol, kind.partition("@")[0])] = name
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
        keyed = _key_of(obj, recorded)
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


class ReplayPlayer(Player[Recorded]):
    """Sends one subscription of one connection its stream of the recording, from the start."""

    conn: BinanceConn

    def __init__(self, recording: BinanceRecording, hub: StreamHub, conn: BinanceConn, *,
                 speed: float, key: str) -> None:
        super().__init__(conn, speed=speed, name=f"sim-binance-replay-{conn.serial}-{key}")
        self.recording = recording
        self.hub = hub
        self.key = key  # the subscription's fan-out key
        self.source = recording.source_key(key)  # the recorded key it is served from

    def start(self) -> None:
        if self.source is not None:  # else the recording has nothing for this stream
            super().start()

    def items(self) -> Iterator[tuple[int | None, Recorded]]:
        source = self.source
        return ((e.ts_ms, e) for e in self.recording.events if e.key == source)

    def send(self, item: Recorded) -> None:
        self.hub.publish_raw(self.conn, self.key, item.data, item.depth)
