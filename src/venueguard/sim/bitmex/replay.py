"""Replaying recorded market messages (``venueguard sim --replay FILE.jsonl``).

A recording is JSON lines: each line is either a BitMEX message (``{"table": ..., "action": ...,
"data": [...]}``) or a record holding one under ``msg`` or ``recv`` (an object, or the raw frame
text). Lines that hold no table message (welcome, acks, ``pong``) are skipped.

Each subscription to a public table gets the recording from its start, filtered to the topics of
that subscribe request (by table, and by symbol for ``table:SYMBOL``), in order: a topic added
later, on the same connection or another one, still starts with its ``partial``. With
``speed`` 1 messages are spaced as recorded, using the first row's ``timestamp`` (or the record's
``ts``); ``speed`` 2 plays twice as fast; 0 plays as fast as the connection takes them. The
pacing and the wait for a slow reader are :class:`~venueguard.sim.replayer.Player`'s, shared with
the Binance dialect.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Set
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from venueguard.sim.bitmex.conn import WsConnection
from venueguard.sim.replayer import Player, ReplayError
from venueguard.venues.bitmex import timefmt


@dataclass(frozen=True, slots=True)
class Recorded:
    ts_ms: int | None
    table: str
    action: str
    msg: dict[str, Any]
    payload: bytes
    symbols: frozenset[str]


def _ts_of(record: dict[str, Any], msg: dict[str, Any]) -> int | None:
    rows = msg.get("data")
    if isinstance(rows, list) and rows and isinstance(rows[0], dict):
        ts = timefmt.parse_ms_or_none(rows[0].get("timestamp"))
        if ts is not None:
            return ts
    for key in ("ts", "ts_ms", "recv_ts"):
        value = record.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return int(value if value > 1e11 else value * 1000)
        ts = timefmt.parse_ms_or_none(value)
        if ts is not None:
            return ts
    return None


def _message(record: object, where: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    if not isinstance(record, dict):
        return None
    inner: object = record
    for key in ("msg", "recv"):
        if key in record:
            inner = record[key]
            break
    if isinstance(inner, str):
        try:
            inner = orjson.loads(inner)
        except orjson.JSONDecodeError:
            return None  # e.g. a recorded "pong"
    if not isinstance(inner, dict) or not isinstance(inner.get("table"), str):
        return None
    if not isinstance(inner.get("data", []), list):
        raise ReplayError(f"{where}: 'data' must be a list")
    return record, inner


class Recording:
    """The recorded table messages, in file order."""

    def __init__(self, items: Iterable[Recorded], source: str = "<memory>") -> None:
        self.items = list(items)
        self.source = source

    @classmethod
    def parse_lines(cls, lines: Iterable[str], source: str = "<memory>") -> Recording:
        items = []
        for number, line in enumerate(lines, start=1):
            text = line.strip()
            if not text:
                continue
            where = f"{source}:{number}"
            try:
                record = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                raise ReplayError(f"{where}: not JSON: {exc.msg}") from None
            found = _message(record, where)
            if found is None:
                continue
            outer, msg = found
            rows = msg.get("data", [])
            symbols = frozenset(r["symbol"] for r in rows
                                if isinstance(r, dict) and isinstance(r.get("symbol"), str))
            flt = msg.get("filter")
            if isinstance(flt, dict) and isinstance(flt.get("symbol"), str):
                symbols = symbols | {flt["symbol"]}
            items.append(Recorded(_ts_of(outer, msg), msg["table"], str(msg.get("action", "")),
                                  msg, orjson.dumps(msg), symbols))
        return cls(items, source)

    @classmethod
    def load(cls, path: str | Path) -> Recording:
        try:
            with open(path, encoding="utf-8") as handle:
                return cls.parse_lines(handle, str(path))
        except OSError as exc:
            raise ReplayError(f"{path}: cannot read: {exc}") from None


def select(item: Recorded, topics: Set[str]) -> tuple[bytes, dict[str, Any]] | None:
    """The message as ``topics`` should see it (rows of other symbols removed), or None."""
    if item.table in topics or f"{item.table}:*" in topics:
        return item.payload, item.msg
    prefix = item.table + ":"
    wanted = {t[len(prefix):] for t in topics if t.startswith(prefix)}
    if not wanted or not (item.symbols & wanted):
        return None
    if item.symbols <= wanted:
        return item.payload, item.msg
    rows = [r for r in item.msg.get("data", [])
            if isinstance(r, dict) and r.get("symbol") in wanted]
    msg = {**item.msg, "data": rows}
    return orjson.dumps(msg), msg


class ReplayPlayer(Player[tuple[bytes, dict[str, Any], bool]]):
    """Plays the recording's messages of ``topics`` (one subscribe request) into one connection;
    a topic unsubscribed since is left out from then on."""

    conn: WsConnection

    def __init__(self, recording: Recording, conn: WsConnection, *, speed: float,
                 tables: frozenset[str], topics: frozenset[str]) -> None:
        super().__init__(conn, speed=speed, name=f"sim-replay-{conn.serial}")
        self.recording = recording
        self.tables = tables
        self.topics = topics

    def items(self) -> Iterator[tuple[int | None, tuple[bytes, dict[str, Any], bool]]]:
        for item in self.recording.items:
            if item.table not in self.tables:
                continue
            chosen = select(item, self.topics & self.conn.topics)
            if chosen is not None:
                yield item.ts_ms, (*chosen, item.action != "partial")

    def send(self, item: tuple[bytes, dict[str, Any], bool]) -> None:
        payload, msg, delta = item
        self.conn.send_data(payload, msg, delta=delta)
