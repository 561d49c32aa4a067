"""BitMEX websocket topics and the commands a client sends.

A topic is ``table`` or ``table:SYMBOL`` (no symbol = every symbol). Commands are JSON objects
``{"op": ..., "args": ...}``; the builders here return plain dicts, and :func:`encode` turns one
into the bytes to send. Heartbeats are the bare text frames :data:`PING` / :data:`PONG`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import orjson

from venueguard.venues.bitmex.signing import sign_ws

PING = "ping"
PONG = "pong"

#: Tables that need no authentication.
PUBLIC_TABLES: frozenset[str] = frozenset({
    "announcement", "connected", "chat", "publicNotifications", "instrument", "settlement",
    "funding", "insurance", "liquidation", "orderBookL2", "orderBookL2_25", "orderBook10",
    "quote", "trade", "quoteBin1m", "quoteBin5m", "quoteBin1h", "quoteBin1d",
    "tradeBin1m", "tradeBin5m", "tradeBin1h", "tradeBin1d",
})
#: Account-locked tables (subscribing without auth gets a 401 error frame).
PRIVATE_TABLES: frozenset[str] = frozenset({
    "privateNotifications", "account", "wallet", "affiliate", "margin", "position",
    "transact", "order", "execution",
})
ALL_TABLES: frozenset[str] = PUBLIC_TABLES | PRIVATE_TABLES
#: Tables that never take a ``:SYMBOL`` suffix.
NO_SYMBOL_TABLES: frozenset[str] = frozenset({
    "account", "affiliate", "announcement", "connected", "chat", "insurance", "margin",
    "publicNotifications", "privateNotifications", "transact", "wallet",
})
#: Incremental level-2 book tables (partial/insert/update/delete keyed by id).
BOOK_L2_TABLES: frozenset[str] = frozenset({"orderBookL2", "orderBookL2_25"})
#: Insert-only tables (``keys`` is empty).
INSERT_ONLY_TABLES: frozenset[str] = frozenset({
    "trade", "quote", "execution", "quoteBin1m", "quoteBin5m", "quoteBin1h", "quoteBin1d",
    "tradeBin1m", "tradeBin5m", "tradeBin1h", "tradeBin1d",
})

#: Row keys per table as BitMEX announces them in partials (observed values).
TABLE_KEYS: Mapping[str, tuple[str, ...]] = {
    "orderBookL2": ("symbol", "id", "side"),
    "orderBookL2_25": ("symbol", "id", "side"),
    "orderBook10": ("symbol",),
    "trade": (),
    "quote": (),
    "execution": (),
    "instrument": ("symbol",),
    "order": ("orderID",),
    "position": ("account", "symbol", "currency"),
    "margin": ("account", "currency"),
    "wallet": ("account", "currency"),
    "funding": ("timestamp", "symbol"),
    "settlement": ("timestamp", "symbol"),
    "liquidation": ("orderID",),
}


class TopicError(ValueError):
    """A topic string that cannot be a BitMEX topic."""


@dataclass(frozen=True, slots=True)
class Topic:
    """One subscription: ``table`` plus an optional ``symbol`` (None = all symbols)."""

    table: str
    symbol: str | None = None

    def __str__(self) -> str:
        return format_topic(self.table, self.symbol)

    @property
    def private(self) -> bool:
        """True for account-locked tables."""
        return self.table in PRIVATE_TABLES

    def covers(self, table: str, symbol: str | None) -> bool:
        """True when a row of ``table`` for ``symbol`` belongs to this subscription."""
        return table == self.table and (self.symbol is None or self.symbol == symbol)


def parse_topic(text: str) -> Topic:
    """Parse ``table`` or ``table:SYMBOL``; raises TopicError on a malformed string.

    The table name is not checked against :data:`ALL_TABLES` (the venue decides, with an
    "Unknown table" error); use :func:`is_known_table` for that.
    """
    if not isinstance(text, str) or not text or len(text) > 200:
        raise TopicError(f"topic must be a non-empty string of at most 200 chars: {text!r:.60}")
    table, sep, symbol = text.partition(":")
    if not table or (sep and not symbol) or ":" in symbol or any(c.isspace() for c in text):
        raise TopicError(f"malformed topic: {text!r:.60}")
    return Topic(table, symbol if sep else None)


def format_topic(table: str, symbol: str | None = None) -> str:
    """``table`` or ``table:SYMBOL``; a symbol on a no-symbol table is dropped."""
    if symbol is None or table in NO_SYMBOL_TABLES:
        return table
    return f"{table}:{symbol}"


def is_known_table(table: str) -> bool:
    """True for tables BitMEX lists in its websocket help."""
    return table in ALL_TABLES


def keys_for(table: str) -> tuple[str, ...]:
    """Row keys of ``table`` (empty for insert-only and unknown tables)."""
    return TABLE_KEYS.get(table, ())


def _topic_args(topics: Iterable[Topic | str]) -> list[str]:
    return [str(t) if isinstance(t, Topic) else t for t in topics]


def subscribe_op(topics: Iterable[Topic | str]) -> dict[str, object]:
    """``{"op": "subscribe", "args": [...]}``; the venue acks each topic separately."""
    return {"op": "subscribe", "args": _topic_args(topics)}


def unsubscribe_op(topics: Iterable[Topic | str]) -> dict[str, object]:
    """``{"op": "unsubscribe", "args": [...]}``."""
    return {"op": "unsubscribe", "args": _topic_args(topics)}


def auth_key_expires_op(api_key: str, expires_s: int, signature: str) -> dict[str, object]:
    """``authKeyExpires`` with an already computed signature (``expires_s`` stays a number)."""
    return {"op": "authKeyExpires", "args": [api_key, int(expires_s), signature]}


def auth_op(api_key: str, api_secret: str, expires_s: int) -> dict[str, object]:
    """``authKeyExpires`` signed with ``api_secret`` over ``GET/realtime`` + expires."""
    return auth_key_expires_op(api_key, expires_s, sign_ws(api_secret, expires_s))


def cancel_all_after_op(timeout_ms: int) -> dict[str, object]:
    """Dead man's switch: cancel everything after ``timeout_ms`` (0 disarms)."""
    if timeout_ms < 0:
        raise ValueError("timeout_ms must be >= 0")
    return {"op": "cancelAllAfter", "args": int(timeout_ms)}


def encode(op: Mapping[str, object]) -> bytes:
    """Serialise a command for sending as a text frame (UTF-8 JSON bytes)."""
    return orjson.dumps(op)


def subscribe_query(topics: Iterable[Topic | str]) -> str:
    """The ``subscribe=`` URL query value (comma-separated topics)."""
    return ",".join(_topic_args(topics))
