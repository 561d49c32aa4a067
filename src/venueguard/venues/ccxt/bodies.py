"""A venue's own error code and message, read from the body ccxt received.

ccxt maps many venue codes to its exception classes only when the request went to the venue's
real host (Binance's futures codes, for one), and several venues answer HTTP 200 with an error
inside the body (Bybit ``retCode``, OKX ``code``, Kraken ``error``). So the classifier is fed the
status plus the venue's own code and message, read here, and never the exception class alone.

Shapes understood (first that applies)::

    BitMEX    {"error": {"message": ..., "name": ...}}
    Kraken    {"error": ["EAPI:Invalid nonce", ...], "result": ...}      (empty list: success)
    Coinbase  {"error": "INSUFFICIENT_FUND", "message"|"error_description": ...}
              {"success": false, "error_response": {"error": ..., "message": ...}}
              {"errors": [{"id": ..., "message": ...}]}
    Bybit     {"retCode": 10002, "retMsg": ...}                           (0: success)
    OKX       {"code": "51008", "msg": ..., "data": [{"sCode": ..., "sMsg": ...}]}  ("0": ok)
    Binance   {"code": -1021, "msg": ...}; a 503 body may carry only ``msg``
    generic   {"code": ..., "message": ...}

``venue_error(body)`` returns ``(code, message)`` (either may be None); ``neutral_body`` turns them
into the one error shape the core classifier reads (``{"error": {"message", "name"}}``) so a
per-venue rule pattern can match by ``name`` (the venue's code) and by text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from venueguard.core.responses import decode_body

__all__ = ["neutral_body", "venue_error"]

_OK_CODES = frozenset({"0", "00000", "200"})


def _text(value: object) -> str | None:
    if value is None or isinstance(value, Mapping | list):
        return None
    text = str(value)
    return text if text else None


def _from_dict(body: Mapping[str, object]) -> tuple[str | None, str | None]:
    code: str | None
    message: str | None
    err = body.get("error")
    if isinstance(err, Mapping):  # BitMEX
        return _text(err.get("name")), _text(err.get("message"))
    if isinstance(err, list):  # Kraken: a list of "EClass:Text" strings
        texts = [str(e) for e in err if e]
        return (texts[0], "; ".join(texts)) if texts else (None, None)
    if isinstance(err, str) and err:  # Coinbase style: a code plus a description
        message = (_text(body.get("message")) or _text(body.get("error_description"))
                   or _text(body.get("error_details")) or err)
        return err, message
    inner = body.get("error_response")
    if isinstance(inner, Mapping) and body.get("success") is False:  # Coinbase create order
        code = _text(inner.get("error")) or _text(inner.get("preview_failure_reason"))
        message = _text(inner.get("message")) or _text(inner.get("error_details")) or code
        return code, message
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], Mapping):
        first = errors[0]
        return _text(first.get("id")), _text(first.get("message"))
    if "retCode" in body:  # Bybit
        code = _text(body.get("retCode"))
        if code in _OK_CODES:
            return None, None
        return code, _text(body.get("retMsg"))
    code = _text(body.get("code"))
    message = _text(body.get("msg")) or _text(body.get("message"))
    data = body.get("data")
    if code is not None and isinstance(data, list):  # OKX: a per-order failure speaks first
        for row in data[:100]:
            if isinstance(row, Mapping):
                s_code = _text(row.get("sCode"))
                if s_code is not None and s_code not in _OK_CODES:
                    return s_code, _text(row.get("sMsg"))
    if code in _OK_CODES:
        return None, None
    if code is None and message is None:
        return None, None
    if code is None and "msg" not in body and "timestamp" not in body:
        return None, None  # a "message" field alone is data on too many venues
    return code, message


def venue_error(body: object) -> tuple[str | None, str | None]:
    """``(code, message)`` of the venue's error in ``body`` (raw text or decoded JSON)."""
    decoded = decode_body(body)
    if isinstance(decoded, Mapping):
        return _from_dict(decoded)
    if isinstance(decoded, Sequence) and not isinstance(decoded, str):
        for row in decoded[:1000]:  # batch answers: the first failed row speaks
            if isinstance(row, Mapping):
                code, message = _from_dict(row)
                if code is not None or message is not None:
                    return code, message
    return None, None


def neutral_body(body: object) -> object:
    """The body the core classifier reads: the venue's error as ``{"error": {...}}``, or the
    original text (an HTML error page keeps its Cloudflare code), or None."""
    code, message = venue_error(body)
    if code is None and message is None:
        decoded = decode_body(body)
        return decoded if isinstance(decoded, str) else None
    return {"error": {"message": message or "", "name": code}}
