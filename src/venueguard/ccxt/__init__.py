"""venueguard under any ccxt exchange: ``guard(exchange)`` (needs the extra ``venueguard[ccxt]``).

See :mod:`venueguard.ccxt.guard` and the README, "Use it from your bot"::

    import ccxt.pro
    from venueguard.ccxt import guard
    exchange = guard(ccxt.pro.binanceusdm({"apiKey": KEY, "secret": SECRET}))
"""

from __future__ import annotations

from typing import Any

__all__ = ["GuardConfig", "GuardedExchange", "StreamConfig", "guard"]


def __getattr__(name: str) -> Any:
    # imported on first use, so ``import venueguard.ccxt`` stays light
    if name in ("GuardConfig", "GuardedExchange", "guard"):
        from venueguard.ccxt import guard as module

        return getattr(module, name)
    if name == "StreamConfig":
        from venueguard.ccxt.streams import StreamConfig

        return StreamConfig
    raise AttributeError(f"module 'venueguard.ccxt' has no attribute {name!r}")
