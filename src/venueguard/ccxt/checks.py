"""Bad input for the ccxt bridge: one line that names the fix, raised as ``ConfigError``.

Public API::

    MIN_CCXT = (4, 5)
    require_ccxt() -> module                     # ccxt installed and recent enough
    check_version(version: str) -> None           # "4.5.78" fine; "4.4.0" or "abc" refused
    resolve_exchange(exchange_id, *, pro) -> type # the class for an id (unknown id refused)
    require_websocket(exchange) -> None           # the exchange object streams (ccxt.pro)
    require_credentials(exchange, method) -> None # keys present for a private call
"""

from __future__ import annotations

import importlib
import re
from types import ModuleType
from typing import Any

from venueguard.io.errors import ConfigError

__all__ = [
    "MIN_CCXT",
    "check_version",
    "require_ccxt",
    "require_credentials",
    "require_websocket",
    "resolve_exchange",
]

MIN_CCXT = (4, 5)
_VERSION_RE = re.compile(r"^(\d+)\.(\d+)")


def check_version(version: str) -> None:
    """Refuse a ccxt release older than ``MIN_CCXT`` (or one whose version cannot be read)."""
    found = _VERSION_RE.match(version or "")
    if found is None or (int(found.group(1)), int(found.group(2))) < MIN_CCXT:
        raise ConfigError(f"ccxt {version or '(unknown version)'} is not supported: "
                          f"install ccxt >= {MIN_CCXT[0]}.{MIN_CCXT[1]} "
                          "(pip install 'venueguard[ccxt]')")


def require_ccxt() -> ModuleType:
    """The ccxt module, or ConfigError saying how to install it."""
    try:
        module = importlib.import_module("ccxt")
    except ImportError:
        raise ConfigError("ccxt is not installed: pip install 'venueguard[ccxt]'") from None
    check_version(str(getattr(module, "__version__", "")))
    return module


def resolve_exchange(exchange_id: str, *, pro: bool) -> type[Any]:
    """The ccxt class for ``exchange_id`` (from ``ccxt.pro`` when ``pro``)."""
    ccxt = require_ccxt()
    module = importlib.import_module("ccxt.pro" if pro else "ccxt.async_support")
    known: list[str] = list(getattr(ccxt, "exchanges", []))
    klass = getattr(module, exchange_id, None) if exchange_id in known else None
    if klass is None:
        if pro and exchange_id in known:
            raise ConfigError(f"ccxt exchange {exchange_id!r} has no websocket support in "
                              "ccxt.pro: use a REST-only setup or pick a venue that streams")
        close = [name for name in known if name.startswith(exchange_id[:3])][:5]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ConfigError(f"unknown ccxt exchange id {exchange_id!r}{hint}: see ccxt.exchanges "
                          "for the list")
    return klass  # type: ignore[no-any-return]


def require_websocket(exchange: Any) -> None:
    """Refuse a ``watch_*`` on an object that cannot stream (ccxt.async_support, not ccxt.pro)."""
    has = getattr(exchange, "has", {}) or {}
    if not hasattr(exchange, "watch_order_book") or not has.get("ws", False):
        raise ConfigError(f"ccxt exchange {getattr(exchange, 'id', '?')!r} has no websocket "
                          "support here: create it from ccxt.pro (ccxt.pro."
                          f"{getattr(exchange, 'id', 'EXCHANGE')}) to use watch_* calls")


def require_credentials(exchange: Any, method: str) -> None:
    """Refuse a private call when the exchange's required credentials are missing."""
    required = getattr(exchange, "requiredCredentials", {}) or {}
    missing = [name for name, needed in required.items()
               if needed and not getattr(exchange, name, None)]
    if missing:
        names = {"apiKey": "VENUEGUARD_API_KEY", "secret": "VENUEGUARD_API_SECRET",
                 "password": "VENUEGUARD_API_PASSWORD"}
        env = ", ".join(names.get(name, name) for name in missing)
        raise ConfigError(f"{method} needs credentials ({', '.join(missing)}) that are not set: "
                          f"pass them to the ccxt exchange or set {env}")
