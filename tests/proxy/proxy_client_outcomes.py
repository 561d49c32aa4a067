"""The faults the client tests post, and what each client shows under them, as the table "What
the clients see" of docs/commands/proxy.md gives it (ccxt 4.5.78, Python and Node, and
nautilus_trader's BitMEX adapter). The tests check each client's outcome against these, once
with the fault posted to the simulator and once posted to the proxy."""

from __future__ import annotations

from typing import Any

REST_KINDS: list[tuple[str, dict[str, Any]]] = [
    ("overload_503", {}), ("rate_limit_429", {"retry_after_s": 1}), ("forbidden_403", {}),
    ("cloudflare_522", {}), ("cloudflare_1010", {}), ("cloudflare_1006", {}),
    ("timeout_after_accept", {"hold_s": 0.3}), ("bad_gateway_after_accept", {}),
    ("latency", {"ms": 50})]

WS_KINDS: list[tuple[str, dict[str, Any]]] = [
    ("ws_drop", {}), ("ws_stall", {}), ("ws_half_open", {}), ("ws_gap", {"count": 3}),
    ("ws_reorder", {"probability": 1.0}), ("ws_duplicate", {"probability": 1.0}),
    ("ws_stale_timestamps", {"delay_s": 30}), ("ws_future_timestamps", {"ahead_s": 60})]

_UNAVAILABLE = "ExchangeNotAvailable"

#: ccxt's error class on one create_order / createOrder, per exchange class ("ok": placed).
CCXT_REST: dict[str, dict[str, str]] = {
    "bitmex": {"overload_503": _UNAVAILABLE, "rate_limit_429": "DDoSProtection",
               "forbidden_403": _UNAVAILABLE, "cloudflare_522": _UNAVAILABLE,
               "cloudflare_1010": _UNAVAILABLE, "cloudflare_1006": _UNAVAILABLE,
               "timeout_after_accept": _UNAVAILABLE, "bad_gateway_after_accept": _UNAVAILABLE,
               "latency": "ok"},
    "binanceusdm": {"overload_503": _UNAVAILABLE, "rate_limit_429": "DDoSProtection",
                    "forbidden_403": _UNAVAILABLE, "cloudflare_522": "RequestTimeout",
                    "cloudflare_1010": _UNAVAILABLE, "cloudflare_1006": _UNAVAILABLE,
                    "timeout_after_accept": "RequestTimeout",
                    "bad_gateway_after_accept": _UNAVAILABLE, "latency": "ok"},
}

#: The same in Node: a dropped connection is a NetworkError there, not ExchangeNotAvailable.
NODE_CCXT_REST: dict[str, dict[str, str]] = {
    "bitmex": {**CCXT_REST["bitmex"], "timeout_after_accept": "NetworkError"},
    "binanceusdm": CCXT_REST["binanceusdm"],
}

LOST = "connection lost"


def lost(seen: str) -> str:
    """ccxt's two ways of showing a connection cut under it: the ``NetworkError`` that rejects
    the pending ``watch_order_book``, or, when the cut lands between two calls (nothing pending
    to reject), a new connection made by the next call."""
    return LOST if seen == "NetworkError" or seen.endswith(" after reconnecting") else seen


#: What watch_order_book / watchOrderBook gives in the 1.5 s after the fault hits (Python and
#: Node alike), through ``lost``: the error class, "silent", or "updates" with the book's time.
CCXT_STREAMS: dict[str, dict[str, str]] = {
    "bitmex": {"ws_drop": LOST, "ws_stall": "silent", "ws_half_open": "silent",
               "ws_gap": "updates fresh", "ws_reorder": "updates fresh",
               "ws_duplicate": "updates fresh", "ws_stale_timestamps": "updates stale",
               "ws_future_timestamps": "updates future"},
    "binanceusdm": {"ws_drop": LOST, "ws_stall": "silent", "ws_half_open": "silent",
                    "ws_gap": "ChecksumError", "ws_reorder": "ChecksumError",
                    "ws_duplicate": "updates fresh", "ws_stale_timestamps": "updates stale",
                    "ws_future_timestamps": "updates future"},
}

#: nautilus_trader's BitMEX websocket client: its book deltas in the 1.5 s after the hit.
NAUTILUS_STREAMS: dict[str, str] = {
    "ws_drop": "updates fresh after reconnecting", "ws_stall": "silent", "ws_half_open": "silent",
    "ws_gap": "updates fresh", "ws_reorder": "updates fresh", "ws_duplicate": "updates fresh",
    "ws_stale_timestamps": "updates stale", "ws_future_timestamps": "updates future"}
