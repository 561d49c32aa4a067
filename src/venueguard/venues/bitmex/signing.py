"""BitMEX request signing (REST and websocket), shared by the client and the simulator.

signature = hex(HMAC_SHA256(secret, VERB + PATH + expires + BODY)), where PATH includes ``/api/v1``
and the query string exactly as sent, and BODY is the raw request body ("" when there is none).
The websocket form signs ``"GET/realtime" + expires``.
"""

from __future__ import annotations

import hashlib
import hmac

#: The documented test pair from BitMEX's API key usage page; the simulator's default account.
TEST_API_KEY = "LAqUlngMIQkIUjXMUreyu3qn"
TEST_API_SECRET = "chNOOS4KvNXR_Xq4k4c9qsfoKWvnDecLATCRlcBwyKDYnWgO"


def sign(secret: str, verb: str, path: str, expires: int, body: bytes | str = b"") -> str:
    """Return the hex signature for one request; ``path`` carries the query string as sent."""
    data = body.encode() if isinstance(body, str) else body
    message = verb.upper().encode() + path.encode() + str(int(expires)).encode() + data
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign_ws(secret: str, expires: int) -> str:
    """Signature for websocket authentication (``authKeyExpires`` or the URL/header forms)."""
    return sign(secret, "GET", "/realtime", expires)


def auth_headers(key: str, secret: str, verb: str, path: str, expires: int,
                 body: bytes | str = b"") -> dict[str, str]:
    """The three BitMEX auth headers for one request."""
    return {
        "api-key": key,
        "api-expires": str(int(expires)),
        "api-signature": sign(secret, verb, path, expires, body),
    }


def verify(secret: str, verb: str, path: str, expires: int, body: bytes | str,
           signature: str) -> bool:
    """Constant-time check of a received signature (False for any non-hex text, which a
    header may carry in any encoding)."""
    if not signature.isascii():
        return False
    return hmac.compare_digest(sign(secret, verb, path, expires, body), signature.lower())
