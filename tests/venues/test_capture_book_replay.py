"""Replaying the captured L2 messages through decode + BookSet ends in the reference book.

Each capture group is one connection (the api-connectors file holds several, told apart by
``fixture``); each L2 table gets its own BookSet, as a session keeps them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from reference_book import capture_groups, replay_reference

from venueguard.venues.bitmex.book import BookSet
from venueguard.venues.bitmex.messages import TableMessage, decode


def replay_pipeline(messages: list[dict[str, Any]], table: str) -> dict[str, Any]:
    books = BookSet()
    now = 0.0
    for msg in messages:
        decoded = decode(orjson.dumps(msg))
        assert isinstance(decoded, TableMessage)
        if decoded.table != table:
            continue
        now += 0.001
        for symbol, result in books.apply(decoded.action, decoded.data, now,
                                          decoded.filter):
            assert not result.needs_resync, (symbol, result)
    return {symbol: book.sides() for symbol, book in sorted(books.books.items()) if book.valid}


def test_capture_replay_matches_reference(bitmex_fixtures: Path) -> None:
    groups = capture_groups(bitmex_fixtures)
    assert len(groups) >= 2  # api-connectors (2023, legacy-style updates) and roq (2025)
    levels_checked = 0
    for messages in groups.values():
        for table in {msg["table"] for msg in messages}:
            expected = replay_reference(messages, tables=[table])
            assert replay_pipeline(messages, table) == expected
            levels_checked += sum(len(side) for book in expected.values()
                                  for side in book.values())
    assert levels_checked > 0


def test_api_connectors_group_applies_update_without_price(bitmex_fixtures: Path) -> None:
    """The 2023 orderBookL2_25 capture: two partials per symbol, updates carrying no price."""
    groups = capture_groups(bitmex_fixtures)
    name = next(n for n in groups if "orderbookSymboledEmptyPartial" in n)
    messages = groups[name]
    final = replay_pipeline(messages, "orderBookL2_25")
    last_update = [m for m in messages if m["action"] == "update"][-1]["data"][0]
    last_partial = [m for m in messages if m["action"] == "partial"
                    and m["filter"]["symbol"] == last_update["symbol"]][-1]
    price = next(r["price"] for r in last_partial["data"] if r["id"] == last_update["id"])
    assert "price" not in last_update
    assert final[last_update["symbol"]][last_update["side"]][price] == last_update["size"]
    assert final["ETHYLDH23"] == {"Buy": {}, "Sell": {}}  # its last partial was empty
