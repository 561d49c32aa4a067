"""The vocabulary shared by classification, rules and venue health.

``Kind`` says what happened, ``Action`` says what to do about it by default, ``AlertTier`` says how
loudly to tell a human. The string values are stable: they appear in metric labels
(``venueguard_rest_errors_total{kind}``), in the event log and in rule files.
"""

from __future__ import annotations

import enum


class Kind(enum.Enum):
    """What an outcome was. ``Kind(value)`` parses the names used in rule files."""

    OK = "ok"
    TRANSIENT_NETWORK = "transient_network"  # refused, connect timeout, reset before send
    DNS = "dns"
    AMBIGUOUS_TIMEOUT = "ambiguous_timeout"  # read timeout, 502, 504, reset after send
    SERVER_ERROR = "server_error"  # other 5xx: reached the venue, outcome unknown
    OVERLOADED = "overloaded"  # 503 load shedding: definitely not processed
    RATE_LIMITED = "rate_limited"  # 429
    FORBIDDEN = "forbidden"  # 403 access denied
    EDGE_PROTECTION = "edge_protection"  # Cloudflare 522
    SOFTWARE_BANNED = "software_banned"  # Cloudflare 1010
    IP_BANNED = "ip_banned"  # Cloudflare 1006, 1007, 1008
    INVALID_CREDENTIALS = "invalid_credentials"
    NONCE_EXPIRED = "nonce_expired"  # expired request / nonce not increasing / token expired
    ORDER_REJECTED = "order_rejected"  # validation of the order's fields or state
    ORDER_TYPE_DISABLED = "order_type_disabled"
    AMOUNT_TOO_LOW = "amount_too_low"
    AMOUNT_TOO_HIGH = "amount_too_high"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    UNKNOWN_SYMBOL = "unknown_symbol"  # unknown symbol or websocket table/topic
    DUPLICATE_CLORDID = "duplicate_clordid"
    ORDER_NOT_OPEN = "order_not_open"  # cancel of an order that is already closed
    ALREADY_SUBSCRIBED = "already_subscribed"
    NOT_FOUND = "not_found"  # 404
    BAD_REQUEST = "bad_request"  # other 4xx: processed and refused; resending will not help
    UNKNOWN = "unknown"
    # Outcomes decided on our side of the wire (never produced by classifying a response and
    # never named in rule files): see ``LOCAL_KINDS``.
    BAD_RESPONSE = "bad_response"  # the venue answered, but not in the shape its API promises
    COOLDOWN = "cooldown"  # refused locally: the venue is cooling down; nothing was sent
    BLOCKED = "blocked"  # refused locally: the venue is BLOCKED; nothing was sent
    THROTTLED = "throttled"  # refused locally by adaptive throttling; nothing was sent
    REFUSED = "refused"  # refused locally by the order runtime (closed, safe mode); not sent


class Action(enum.Enum):
    """The default answer to a kind (the rule table decides which)."""

    NONE = "none"  # success; nothing to do
    RETRY = "retry"  # retry with normal backoff (budget permitting)
    BACKOFF = "backoff"  # retry with a longer backoff (overload)
    WAIT_RETRY_AFTER = "wait_retry_after"  # wait Retry-After, then retry
    RECONCILE = "reconcile"  # outcome unknown: resolve with venue evidence before any resend
    COOLDOWN = "cooldown"  # stop sending to the venue for the rule's cooldown_s
    BLOCK = "block"  # stop everything until an explicit reset
    DISCONNECT = "disconnect"  # warn and disconnect; do not retry
    RESYNC = "resync"  # re-sync the clock / credentials, then reconnect
    WARN = "warn"  # warn only; the request is not retried
    FAIL = "fail"  # the request is wrong; hand the error to the caller, never retry
    RETRY_ONCE = "retry_once"  # retry once, then alert


class AlertTier(enum.Enum):
    """How loudly to tell a human."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class Transport(enum.Enum):
    """A failure below HTTP: no status line was read."""

    DNS = "dns"
    CONNECTION_REFUSED = "connection_refused"
    CONNECT_TIMEOUT = "connect_timeout"
    READ_TIMEOUT = "read_timeout"  # request written, no (complete) response
    CONNECTION_RESET = "connection_reset"  # ambiguous unless ``sent`` is False
    RESET_AFTER_SEND = "reset_after_send"  # connection lost after the request was written
    TLS = "tls"
    OTHER = "other"


#: Kinds a ``VenueError`` may carry that no classifier produces and no rule file names: the
#: response was unreadable, or the request was refused on our side before it was sent.
LOCAL_KINDS: frozenset[Kind] = frozenset({
    Kind.BAD_RESPONSE, Kind.COOLDOWN, Kind.BLOCKED, Kind.THROTTLED, Kind.REFUSED})

#: The kinds a classifier produces and a rule file may name, in declaration order.
CLASSIFIED_KINDS: tuple[Kind, ...] = tuple(k for k in Kind if k not in LOCAL_KINDS)

#: Kinds after which the request may have been processed by the venue.
AMBIGUOUS_KINDS: frozenset[Kind] = frozenset({Kind.AMBIGUOUS_TIMEOUT, Kind.SERVER_ERROR})

#: Kinds that prove the venue did not process the request (it never reached the matching
#: engine: load shedding, rate limit, a connection never made, an edge or a ban in front of
#: the venue). Only these make an order request safe to send again with the same client id,
#: and only these let an order whose request failed be closed as never placed at once.
NOT_PROCESSED_KINDS: frozenset[Kind] = frozenset({
    Kind.OVERLOADED, Kind.RATE_LIMITED, Kind.TRANSIENT_NETWORK, Kind.DNS, Kind.EDGE_PROTECTION,
    Kind.FORBIDDEN, Kind.SOFTWARE_BANNED, Kind.IP_BANNED})

#: The venue's answers about one order: it has no order by that id, the order is not open any
#: more, the client id is taken. They are evidence for reconciliation (a lookup by client id
#: before an order shows, a cancel that raced a fill), never a sign that the venue is in trouble.
ORDER_ANSWER_KINDS: frozenset[Kind] = frozenset({
    Kind.NOT_FOUND, Kind.ORDER_NOT_OPEN, Kind.DUPLICATE_CLORDID})
