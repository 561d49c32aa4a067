"""BitMEX error texts, exactly as the venue sends them.

The client matches on these texts to classify failures, and the simulator
sends them, so both sides share one table. Constants hold fixed texts;
``*_text`` functions build the texts that carry a value.

REST errors travel as ``{"error": {"message": ..., "name": ...}}`` (see
:func:`rest_error_body`). Websocket errors travel as
``{"status": ..., "error": ..., "meta": {...}, "request": {...}}`` (see
:func:`ws_error_frame`).
"""

from __future__ import annotations

from collections.abc import Mapping

# --- REST ``error.name`` values -------------------------------------------------
NAME_HTTP = "HTTPError"
NAME_VALIDATION = "ValidationError"
NAME_RATE_LIMIT = "RateLimitError"
NAME_WEBSOCKET = "WebsocketError"
NAME_CODED_HTTP = "CodedHTTPError"
NAME_GENERIC = "Error"

# --- REST message texts ------------------------------------------------------------
OVERLOADED = "The system is currently overloaded. Please try again later."
DUPLICATE_CLORDID = "Duplicate clOrdID"
INVALID_ORDER_ID = "Invalid orderID"
INVALID_ORD_STATUS = "Invalid ordStatus"
INVALID_ORIG_CLORDID = "Invalid origClOrdID"
INVALID_SYMBOL = "Invalid symbol"
INVALID_SIDE = "Invalid side"
INVALID_ORDER_QTY = "Invalid orderQty"
INVALID_LEAVES_QTY = "Invalid leavesQty"
INVALID_PRICE = "Invalid price"
INVALID_PRICE_TICK = "Invalid price tickSize"
UNSUPPORTED_ORD_TYPE = "Unsupported ordType"
UNSUPPORTED_TIME_IN_FORCE = "Unsupported timeInForce"
UNSUPPORTED_EXEC_INST = "Unsupported execInst"
INVALID_AMEND_UNCHANGED = "Invalid amend: orderQty, leavesQty, price, stopPx unchanged"
ORDER_ID_OR_ORIG_REQUIRED = "orderID or origClOrdID must be sent."
ORDER_QTY_REQUIRED = "orderQty is required"
SIGNATURE_NOT_VALID = "Signature not valid."
INVALID_API_KEY = "Invalid API Key."
MISSING_API_KEY = "Missing API key."
KEY_DISABLED = "This key is disabled."
IP_NOT_ALLOWED = "This IP address is not allowed to use this key."
ACCESS_DENIED = "Access Denied"
ACCOUNT_RESTRICTED = "Account is restricted"
NOT_FOUND = "Not Found"
UNABLE_TO_CANCEL = "Unable to cancel order"
UNABLE_TO_CANCEL_NOT_FOUND = "Unable to cancel order: Not found or not owned by user"

BAD_GATEWAY_HTML = (
    "<html>\n<head><title>502 Bad Gateway</title></head>\n"
    '<body bgcolor="white">\n<center><h1>502 Bad Gateway</h1></center>\n'
    "</body>\n</html>\n"
)
# Not captured from the venue; shaped like the 502 page.
GATEWAY_TIMEOUT_HTML = (
    "<html>\n<head><title>504 Gateway Time-out</title></head>\n"
    '<body bgcolor="white">\n<center><h1>504 Gateway Time-out</h1></center>\n'
    "</body>\n</html>\n"
)

# --- Websocket error texts ------------------------------------------------------------
WS_DOCS_SUFFIX = " Please see the documentation at https://www.bitmex.com/app/wsAPI."
WS_ACCOUNT_LOCKED = (
    "User requested an account-locked subscription but no authorization was provided."
)
WS_ACCOUNT_LOCKED_NOTES = (
    "Account-locked tables include the following: account,affiliate,execution,"
    "margin,order,position,privateNotifications,transact,wallet"
)
WS_MAX_PENDING = "Max Pending subscription limit reached, please try again later."
# Not seen in any capture (BitMEX documents only that it is an error): this project's text.
WS_ALREADY_AUTHENTICATED = "Already authenticated." + WS_DOCS_SUFFIX
WS_TOKEN_EXPIRED_NOTE = (
    "Please re-subscribe with a new token to continue receiving messages for this subscription."
)
# Not seen in any capture: this project's text.
WS_UNKNOWN_OP = "Unknown or unsupported command"


def rate_limit_text(retry_after_s: int) -> str:
    """``Rate limit exceeded, retry in N seconds.`` (REST 429 and WS 429)."""
    return f"Rate limit exceeded, retry in {int(retry_after_s)} seconds."


def invalid_ord_status_text(ord_status: str) -> str:
    """Amend of a closed order, e.g. ``Invalid ordStatus: Filled`` (form used since 2021-12)."""
    return f"{INVALID_ORD_STATUS}: {ord_status}"


def expired_text(now_s: int) -> str:
    """``api-expires`` in the past; ``now_s`` is the venue's clock in UNIX seconds."""
    return f"This request has expired - `expires` is in the past. Current time: {int(now_s)}"


def cancel_state_text(ord_status: str) -> str:
    """Per-row error when cancelling an order that is no longer open (HTTP 200)."""
    return f"Unable to cancel order due to existing state: {ord_status}"


def insufficient_balance_text(required: int, currency: str = "XBt") -> str:
    """Margin check failure, e.g. ``Account has insufficient Available Balance, 5 XBt required``."""
    return f"Account has insufficient Available Balance, {int(required)} {currency} required"


def required_arg_text(arg: str) -> str:
    """Missing required parameter, e.g. ``'symbol' is a required arg.``."""
    return f"'{arg}' is a required arg."


def ws_unknown_table_text(table: str) -> str:
    """Websocket subscribe to a table that does not exist."""
    return f"Unknown table: {table}"


def ws_already_subscribed_text(topic: str) -> str:
    """Websocket subscribe to a topic already active on this connection (the current form;
    older servers put a space after ``topic:``)."""
    return f"You are already subscribed to this topic:{topic}.{WS_DOCS_SUFFIX}"


def ws_not_subscribed_text(topic: str) -> str:
    """Websocket unsubscribe from a topic that is not active (text not seen in captures)."""
    return f"You are not subscribed to this topic:{topic}.{WS_DOCS_SUFFIX}"


def ws_decode_error_text(detail: str = "Unexpected token a in JSON at position 0") -> str:
    """Websocket frame that is not valid JSON (sent with ``meta: {}`` and no ``request``)."""
    return f"Failed to decode incoming data: {detail}.{WS_DOCS_SUFFIX}"


def ws_token_expired_text(topic: str) -> str:
    """Legacy token auth expired for a private subscription."""
    return f"Access Token expired for subscription: {topic}"


def rest_error_body(message: str, name: str = NAME_HTTP) -> dict[str, object]:
    """The REST error JSON: ``{"error": {"message": message, "name": name}}``."""
    return {"error": {"message": message, "name": name}}


def ws_error_frame(
    status: int,
    error: str,
    *,
    meta: Mapping[str, object] | None = None,
    request: Mapping[str, object] | None = None,
) -> dict[str, object]:
    """A websocket error frame; ``request`` is left out when ``None`` (decode errors)."""
    frame: dict[str, object] = {"status": status, "error": error, "meta": dict(meta or {})}
    if request is not None:
        frame["request"] = dict(request)
    return frame


def is_cancel_state_error(text: str) -> bool:
    """True for the per-row cancel errors that mean "already closed" (idempotent success)."""
    return text.startswith(UNABLE_TO_CANCEL)
