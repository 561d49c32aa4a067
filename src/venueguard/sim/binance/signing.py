"""HMAC-SHA256 request signing as Binance USDⓈ-M checks it (docs/binance-dialect.md).

The signed payload is the query string followed directly by the request body, both exactly as
sent (no ``&`` between them); ``signature`` is the hex digest and is not part of the payload.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["TEST_API_KEY", "TEST_API_SECRET", "sign", "split_signature", "verify"]

# The simulator's own credentials (64 characters, like the venue's keys).
TEST_API_KEY = "vgSimBinanceKey0000000000000000000000000000000000000000000000001"
TEST_API_SECRET = "vgSimBinanceSecret0000000000000000000000000000000000000000000001"


def sign(secret: str, payload: str) -> str:
    """Hex HMAC-SHA256 of ``payload`` under ``secret``."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def split_signature(raw: str) -> tuple[str, str | None]:
    """(``raw`` without its ``signature=`` parameter, the signature or None).

    The signature is the last parameter when clients follow the venue's documentation; it is
    accepted anywhere, and the payload is what remains in the original order.
    """
    if not raw:
        return "", None
    parts = raw.split("&")
    kept: list[str] = []
    signature: str | None = None
    for part in parts:
        if part.startswith("signature="):
            signature = part[len("signature="):]
        else:
            kept.append(part)
    return "&".join(kept), signature


def verify(secret: str, payload: str, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, payload), signature.strip().lower())
