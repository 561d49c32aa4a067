"""A deliberately naive order-book replay, used as the reference the real book must match.

It shares no code with ``venueguard.core.book``: rows are kept whole in a dict keyed by
(id, side), exactly as BitMEX's ``keys`` say, and merged field by field on update. Prices per
side are summed at the end. Use it from any test::

    from reference_book import replay_reference          # tests/venues on sys.path
    # or: from tests.venues.reference_book import replay_reference  (repo root on sys.path)

    books = replay_reference(messages)   # {symbol: {"Buy": {price: size}, "Sell": {...}}}

``messages`` are websocket messages as dicts, JSON text or JSON bytes; other tables and
non-data frames are ignored.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

L2_TABLES = ("orderBookL2", "orderBookL2_25")


class ReferenceDesync(AssertionError):
    """The stream is not self-consistent (unknown id, duplicate insert, missing price)."""


class ReferenceBook:
    """Naive multi-symbol replay of one L2 table (or several, if they never share a symbol).

    ``strict=True`` raises :class:`ReferenceDesync` on an inconsistent delta; ``strict=False``
    forgets that symbol until its next partial (what a client does before resyncing).
    """

    def __init__(self, tables: Iterable[str] = L2_TABLES, strict: bool = True) -> None:
        self.tables = set(tables)
        self.strict = strict
        self.rows: dict[str, dict[tuple[Any, str], dict[str, Any]]] = {}
        self.synced: set[str] = set()

    def apply_message(self, message: Mapping[str, Any] | str | bytes) -> None:
        if isinstance(message, str | bytes):
            if message in ("pong", b"pong"):
                return
            message = json.loads(message)
        assert isinstance(message, Mapping)
        if message.get("table") not in self.tables:
            return
        action = message["action"]
        data = message["data"]
        if action == "partial":
            self._partial(message.get("filter"), data)
            return
        for row in data:
            symbol = row["symbol"]
            if symbol not in self.synced:
                continue
            book = self.rows[symbol]
            key = (row["id"], row["side"])
            if action == "insert":
                if key in book or "price" not in row:
                    self._desync(symbol, f"bad insert {key}")
                    continue
                book[key] = dict(row)
            elif action == "update":
                if key not in book:
                    self._desync(symbol, f"update of unknown {key}")
                    continue
                book[key].update(row)
            elif action == "delete":
                if key not in book:
                    self._desync(symbol, f"delete of unknown {key}")
                    continue
                del book[key]
            else:
                raise ValueError(f"unknown action {action!r}")

    def _partial(self, flt: Mapping[str, Any] | None, data: list[dict[str, Any]]) -> None:
        if flt is not None and "symbol" in flt:
            symbols = {flt["symbol"]}
        elif flt is not None:
            symbols = set(self.rows) | {row["symbol"] for row in data}
        else:
            symbols = {row["symbol"] for row in data}
        for symbol in symbols:
            self.rows[symbol] = {}
            self.synced.add(symbol)
        for row in data:
            if row["symbol"] in symbols:
                key = (row["id"], row["side"])
                if key in self.rows[row["symbol"]]:
                    self._desync(row["symbol"], f"duplicate {key} in partial")
                    continue
                self.rows[row["symbol"]][key] = dict(row)

    def _desync(self, symbol: str, why: str) -> None:
        if self.strict:
            raise ReferenceDesync(f"{symbol}: {why}")
        self.synced.discard(symbol)
        self.rows.pop(symbol, None)

    def sides(self, symbol: str) -> dict[str, dict[float, float]]:
        out: dict[str, dict[float, float]] = {"Buy": {}, "Sell": {}}
        for row in self.rows.get(symbol, {}).values():
            side = out[row["side"]]
            side[row["price"]] = side.get(row["price"], 0) + row["size"]
        return out

    def result(self) -> dict[str, dict[str, dict[float, float]]]:
        return {symbol: self.sides(symbol) for symbol in sorted(self.synced)}


def replay_reference(messages: Iterable[Mapping[str, Any] | str | bytes],
                     tables: Iterable[str] = L2_TABLES, strict: bool = True
                     ) -> dict[str, dict[str, dict[float, float]]]:
    """Replay ``messages`` naively; ``{symbol: {"Buy": {price: size}, "Sell": {...}}}``.

    Only symbols that received a partial (and, with ``strict=False``, are still in sync)
    appear in the result.
    """
    book = ReferenceBook(tables, strict)
    for message in messages:
        book.apply_message(message)
    return book.result()


def capture_groups(fixtures: Path) -> dict[str, list[dict[str, Any]]]:
    """{recorded connection: [L2 message, ...]} for every capture file record with L2 messages.

    ``fixtures`` is the shared BitMEX directory (the ``bitmex_fixtures`` test fixture); records
    carry the message under ``msg`` or ``recv``.
    """
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for path in sorted((fixtures / "fixtures").glob("*.jsonl")):
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            msg = record.get("msg", record.get("recv"))
            if isinstance(msg, dict) and msg.get("table") in L2_TABLES:
                name = f"{path.name}:{record.get('fixture', record.get('file', ''))}"
                groups[name].append(msg)
    return dict(groups)
