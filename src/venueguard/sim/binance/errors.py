"""Binance USDⓈ-M error codes, texts and HTTP statuses, as the venue sends them.

A request the venue refuses raises :class:`BinanceError`; the REST layer answers with its
``status`` and the body ``{"code": CODE, "msg": TEXT}``. The "execution status unknown" 503 has no
code on the live venue: its body is ``{"timestamp", "path", "msg"}`` (:func:`unknown_503_body`).
"""

from __future__ import annotations

__all__ = ["BinanceError", "unknown_503_body"]

UNKNOWN = (-1000, "An unknown error occured while processing the request.")
TOO_MANY_REQUESTS = -1003
TIMEOUT_TEXT = ("Timeout waiting for response from backend server. Send status unknown; "
                "execution status unknown.")
TIMESTAMP_OUTSIDE = "Timestamp for this request is outside of the recvWindow."
TIMESTAMP_AHEAD = "Timestamp for this request was 1000ms ahead of the server's time."
BAD_SIGNATURE = "Signature for this request is not valid."
KEY_FORMAT = "API-key format invalid."
KEY_INVALID = "Invalid API-key, IP, or permissions for action."
UNKNOWN_ORDER = "Unknown order sent."
NO_SUCH_ORDER = "Order does not exist."
MARGIN = "Margin is insufficient."
DUPLICATE_CLIENT_ID = "clientOrderId is duplicated"
BAD_CLIENT_ID = "Client order id is not valid."
UNKNOWN_503 = "Unknown error, please check your request or try again later."


class BinanceError(Exception):
    """A refused request: HTTP ``status`` with ``{"code": code, "msg": msg}``."""

    def __init__(self, status: int, code: int, msg: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{code}: {msg}")
        self.status = status
        self.code = code
        self.msg = msg
        self.headers = headers or {}

    def body(self) -> dict[str, object]:
        return {"code": self.code, "msg": self.msg}


def bad(code: int, msg: str) -> BinanceError:
    """A 400 with ``code`` and ``msg``."""
    return BinanceError(400, code, msg)


def mandatory(name: str) -> BinanceError:
    return invalid_value(name)


def illegal_chars(name: str) -> BinanceError:
    return bad(-1100, f"Illegal characters found in parameter '{name}'; legal range is "
                      "'^[0-9]{1,20}$'.")


def invalid_value(name: str) -> BinanceError:
    return bad(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or "
                      "malformed.")


def invalid_symbol() -> BinanceError:
    return bad(-1121, "Invalid symbol.")


def too_many(limit: int) -> BinanceError:
    return bad(TOO_MANY_REQUESTS, f"Too many requests; current limit is {limit} requests per "
                                  "minute. Please use the websocket for live updates to avoid "
                                  "polling the API.")


def banned(until_ms: int) -> BinanceError:
    return bad(TOO_MANY_REQUESTS, f"Way too many requests; IP banned until {until_ms}. Please "
                                  "use the websocket for live updates to avoid bans.")


def too_many_orders(limit: int, interval: str) -> BinanceError:
    return bad(-1015, f"Too many new orders; current limit is {limit} orders per {interval}.")


def start_after_end() -> BinanceError:
    return bad(-1023, "Start time is greater than end time.")


def window_too_long(hours: int) -> BinanceError:
    return bad(-1127, f"More than {hours} hours between startTime and endTime.")


def bad_combination() -> BinanceError:
    return bad(-1128, "Combination of optional parameters invalid.")


def min_notional(notional: str) -> BinanceError:
    return bad(-4164, f"Order's notional must be no smaller than {notional} (unless you choose "
                      "reduce only).")


def unknown_503_body(path: str, now_ms: int) -> dict[str, object]:
    """The live 503 "execution status unknown" body (no ``code`` field)."""
    return {"timestamp": now_ms, "path": path, "msg": UNKNOWN_503}
