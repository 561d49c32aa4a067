"""Classify what one ccxt call ran into, with the core classifier and the venue's rule table.

Public API::

    VenueFacts(exchange_id, rules, client_id_param, client_id_len, client_id_query,
               dms_endpoint, dms_param)
    venue_facts(exchange_id, user_rules=None, source="<rules>") -> VenueFacts
    Reply(status, headers, body)               # the last HTTP response ccxt read for the call
    classify_call(error, reply, rules, wall_ms=None) -> Classification
    exception_kind(error) -> Kind | None       # from ccxt's exception class (exceptions.toml)
    transport_of(error) -> (Transport, sent) | None   # the failure below HTTP, if that was it

Order of evidence for a failed call: with a response, the core classifier reads the status, the
headers and the venue's own code and message (``bodies.neutral_body``) through the venue's rule
overrides; only when that gives a generic verdict (a plain 4xx, an error inside a 2xx, nothing
recognised) does ccxt's exception class refine it. Without a response, the exception's cause
says which transport failure it was (connect refused: nothing sent; read timeout: ambiguous).
An exception ccxt raised before sending anything (a missing argument, an unknown symbol in its
market table) is never ambiguous.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, NamedTuple

from venueguard.core.classify import Classification, Outcome, classify, classify_text
from venueguard.core.kinds import AMBIGUOUS_KINDS, Kind, Transport
from venueguard.core.rules import RuleSet, default_rules, parse_rules
from venueguard.venues.bitmex.rules import bitmex_rules
from venueguard.venues.ccxt.bodies import neutral_body, venue_error

__all__ = [
    "Reply",
    "VenueFacts",
    "classify_call",
    "exception_kind",
    "transport_of",
    "venue_facts",
]

_GENERIC = frozenset({Kind.OK, Kind.BAD_REQUEST, Kind.UNKNOWN})

# exception class names (aiohttp, asyncio, socket) -> the transport failure and whether the
# request was written; most specific first, matched along the exception's cause chain
_TRANSPORT_NAMES: tuple[tuple[str, Transport, bool | None], ...] = (
    ("ClientConnectorDNSError", Transport.DNS, False),
    ("gaierror", Transport.DNS, False),
    ("ConnectionTimeoutError", Transport.CONNECT_TIMEOUT, False),
    ("ClientConnectorCertificateError", Transport.TLS, False),
    ("ClientConnectorSSLError", Transport.TLS, False),
    ("ClientConnectorError", Transport.CONNECTION_REFUSED, False),
    ("ConnectionRefusedError", Transport.CONNECTION_REFUSED, False),
    ("ServerDisconnectedError", Transport.RESET_AFTER_SEND, True),
    ("ClientPayloadError", Transport.RESET_AFTER_SEND, True),
    ("SocketTimeoutError", Transport.READ_TIMEOUT, True),
    ("ServerTimeoutError", Transport.READ_TIMEOUT, True),
    ("TimeoutError", Transport.READ_TIMEOUT, True),
    ("ConnectionResetError", Transport.CONNECTION_RESET, None),
    ("ClientOSError", Transport.CONNECTION_RESET, None),
    ("ClientConnectionError", Transport.OTHER, None),
)


class Reply(NamedTuple):
    """The HTTP response ccxt read (``on_rest_response``): status, headers, raw body text."""

    status: int
    headers: Mapping[str, str] | None
    body: str | None


@dataclass(frozen=True, slots=True)
class VenueFacts:
    """What venueguard needs to know about one ccxt exchange id (see ``venues.toml``)."""

    exchange_id: str
    rules: RuleSet
    client_id_param: str
    client_id_len: int
    client_id_query: str  # "" when the venue cannot be asked by client id through ccxt
    dms_endpoint: str = ""  # an implicit ccxt method arming the switch with milliseconds
    dms_param: str = ""


def _package_text(*parts: str) -> str:
    node = resources.files("venueguard.venues.ccxt")
    for part in parts:
        node = node.joinpath(part)
    return node.read_text("utf-8")


@cache
def _venues() -> Mapping[str, Mapping[str, Any]]:
    return tomllib.loads(_package_text("venues.toml"))


@cache
def _exception_kinds() -> Mapping[str, Kind]:
    table = tomllib.loads(_package_text("exceptions.toml"))["exceptions"]
    return {name: Kind(kind) for name, kind in table.items()}


@cache
def _venue_rules(name: str) -> RuleSet:
    if name == "bitmex":  # the native adapter's table: one source for BitMEX's texts
        return bitmex_rules()
    return parse_rules(_package_text("rules", f"{name}.toml"), f"venues/ccxt/rules/{name}.toml",
                       base=default_rules())


def venue_facts(exchange_id: str, user_rules: str | None = None,
                source: str = "<rules>") -> VenueFacts:
    """Facts for ``exchange_id``; ``user_rules`` (a rules file's text) merges over the venue's
    overrides, which merge over the default table."""
    venues = _venues()
    entry = {**venues["default"], **venues.get(exchange_id, {})}
    rules = _venue_rules(entry["rules"]) if "rules" in entry else default_rules()
    if user_rules is not None:
        rules = parse_rules(user_rules, source, base=rules)
    return VenueFacts(exchange_id, rules, str(entry["client_id_param"]),
                      int(entry["client_id_len"]), str(entry["client_id_query"]),
                      str(entry["dms_endpoint"]), str(entry["dms_param"]))


def exception_kind(error: BaseException) -> Kind | None:
    """The kind ccxt's exception class stands for (its most specific listed ancestor)."""
    table = _exception_kinds()
    for klass in type(error).__mro__:
        found = table.get(klass.__name__)
        if found is not None:
            return found
    return None


def transport_of(error: BaseException) -> tuple[Transport, bool | None] | None:
    """The failure below HTTP behind ``error`` (its cause chain), or None if there was none."""
    seen: set[int] = set()
    current: BaseException | None = error.__cause__ or error.__context__
    chain: list[BaseException] = []
    while current is not None and id(current) not in seen and len(chain) < 16:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or current.__context__
    for exc in chain:
        names = {klass.__name__ for klass in type(exc).__mro__}
        for name, transport, sent in _TRANSPORT_NAMES:
            if name in names:
                return transport, sent
    return None


def _with_kind(cls: Classification, kind: Kind, rules: RuleSet) -> Classification:
    return cls._replace(kind=kind, action=rules.rule(kind).action,
                        ambiguous=kind in AMBIGUOUS_KINDS)


def classify_call(error: BaseException | None, reply: Reply | None, rules: RuleSet,
                  wall_ms: int | None = None) -> Classification:
    """The verdict on one ccxt call: ``error`` is what it raised (None: it returned), ``reply``
    the last HTTP response it read (None: none was read for this attempt)."""
    if reply is None:
        if error is None:
            return classify(Outcome(status=200), rules)
        failure = transport_of(error)
        if failure is not None:
            return classify(Outcome(transport=failure[0], sent=failure[1]), rules)
        # raised before anything was sent: never ambiguous
        kind = exception_kind(error) or Kind.BAD_REQUEST
        if kind in AMBIGUOUS_KINDS or kind is Kind.OK:
            kind = Kind.TRANSIENT_NETWORK
        return Classification(kind, rules.rule(kind).action, False, None, None, str(error)[:300])
    if error is None:  # success: the body is not read at all
        return classify(Outcome(status=reply.status, headers=reply.headers, wall_ms=wall_ms),
                        rules)
    body = neutral_body(reply.body)
    cls = classify(Outcome(status=reply.status, headers=reply.headers, body=body,
                           wall_ms=wall_ms), rules)
    if cls.kind not in _GENERIC:
        return cls
    code, message = venue_error(reply.body)
    if (code is not None or message is not None) and classify_text(
            message or "", name=code, status=reply.status, rules=rules) is not Kind.UNKNOWN:
        return cls  # the venue's own words matched a rule
    hint = exception_kind(error)
    if hint is not None:
        return _with_kind(cls, hint, rules)
    if cls.kind is Kind.OK:  # ccxt refused a 2xx answer and nothing says why
        return _with_kind(cls, Kind.UNKNOWN, rules)
    return cls
