"""``guard(exchange)``: a ccxt async/pro exchange with venueguard's policies underneath.

The guarded object answers every ccxt attribute: unified methods keep their names (snake_case
and camelCase), their arguments and their return shapes. What changes is what happens around
each call (see the README, "Use it from your bot"):

* ``fetch_*`` / ``load_markets`` and other reads: :class:`~venueguard.ccxt.rest.CcxtRest`
  (classified outcomes, health, retry budget, backoff, throttling; retried when the rules say);
* ``create_order`` (and ``create_limit_order``, ``create_market_buy_order``, ...),
  ``create_orders`` (one ``create_order`` per entry), ``edit_order``, ``cancel_order``,
  ``cancel_all_orders``: through
  :class:`~venueguard.ccxt.orders.CcxtOrders` (client order id in the venue's own parameter,
  journaled before it is sent, never resent blindly, UNKNOWN until the venue settles it);
* ``watch_order_book`` / ``watch_ticker`` / ``watch_trades`` / ``watch_orders`` /
  ``watch_my_trades``: :class:`~venueguard.ccxt.streams.CcxtStreams` (fresh or recovered);
  on bitmex and binanceusdm the first three come from venueguard's own sessions instead
  (:mod:`venueguard.ccxt.native`, ccxt's shapes; ``GuardConfig(native_streams=False)`` opts out);
* anything else (``market()``, ``amount_to_precision()``, ``has``, ``id`` ...) is ccxt's own.

The exchange object reads time through venueguard's clock seam (:mod:`venueguard.ccxt.clock`):
the system clock on a real event loop, the loop's clock on a virtual-time one.

Usage::

    import ccxt.pro as ccxtpro
    from venueguard.ccxt import guard
    exchange = guard(ccxtpro.binanceusdm({"apiKey": ..., "secret": ...}))
    book = await exchange.watch_order_book("BTC/USDT:USDT")
    order = await exchange.create_order("BTC/USDT:USDT", "limit", "buy", 0.001, 50_000)
    await exchange.close()
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import ccxt

from venueguard.ccxt.checks import require_ccxt, require_credentials, require_websocket
from venueguard.ccxt.clock import route_clock
from venueguard.ccxt.errors import OrderUnknown
from venueguard.ccxt.native import NATIVE_KINDS, NATIVE_VENUES, NativeStreams
from venueguard.ccxt.orders import DEFAULT_JOURNAL, CcxtOrders, OrdersConfig
from venueguard.ccxt.rest import CcxtRest
from venueguard.ccxt.streams import CcxtStreams, StreamConfig
from venueguard.core.backoff import BackoffConfig, RandomSource
from venueguard.core.budget import BudgetConfig
from venueguard.core.throttle import ThrottleConfig
from venueguard.io.clock import SYSTEM_CLOCK, Clock
from venueguard.io.errors import ConfigError, VenueguardError
from venueguard.io.http_session import RestConfig, Timeouts
from venueguard.io.journal import Journal
from venueguard.telemetry.alerts import Alerts
from venueguard.telemetry.events import EventLog
from venueguard.telemetry.metrics import Metrics
from venueguard.venues.ccxt.classify import venue_facts

__all__ = ["GuardConfig", "GuardedExchange", "guard"]

_CAMEL_RE = re.compile(r"(?<!^)(?=[A-Z])")
_WATCH_KINDS = {"watch_order_book": "orderbook", "watch_ticker": "ticker",
                "watch_trades": "trades", "watch_orders": "orders",
                "watch_my_trades": "mytrades"}
# calls that need the account's credentials (the rest is public market data)
_PRIVATE_PREFIXES = ("create_", "edit_", "cancel_", "fetch_my_", "fetch_balance",
                     "fetch_position", "fetch_ledger", "fetch_deposit", "fetch_withdraw",
                     "fetch_open_order", "fetch_closed_order", "fetch_canceled",
                     "withdraw", "transfer", "set_", "watch_orders", "watch_my_trades",
                     "watch_balance", "watch_position")
_PRIVATE_NAMES = frozenset({"fetch_order", "fetch_orders", "fetch_order_trades"})
_WRITE_PREFIXES = ("create_", "edit_", "cancel_", "withdraw", "transfer", "set_")
_ORDER_ALIASES = {
    "create_limit_order": ("limit", None), "create_market_order": ("market", None),
    "create_limit_buy_order": ("limit", "buy"), "create_limit_sell_order": ("limit", "sell"),
    "create_market_buy_order": ("market", "buy"), "create_market_sell_order": ("market", "sell"),
}


def is_private(snake: str) -> bool:
    """Whether ccxt's unified call ``snake`` needs the account's credentials."""
    return snake in _PRIVATE_NAMES or snake.startswith(_PRIVATE_PREFIXES)


def _snake(name: str) -> str:
    return name if name.islower() else _CAMEL_RE.sub("_", name).lower()


@dataclass(frozen=True, slots=True)
class GuardConfig:
    """Settings of one guarded exchange (immutable; shared pieces are in ``venueguard.core``)."""

    timeouts: Timeouts = field(default_factory=lambda: Timeouts(total_s=30.0))
    backoff: BackoffConfig = field(default_factory=lambda: BackoffConfig(
        base_s=0.25, cap_s=5.0, reset_after_s=0.0))
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    throttle: ThrottleConfig | None = field(default_factory=ThrottleConfig)
    max_attempts: int = 5
    streams: StreamConfig = field(default_factory=StreamConfig)
    orders: OrdersConfig = field(default_factory=OrdersConfig)
    rules_text: str | None = None  # a user rules file's text, merged over the venue's rules
    rules_source: str = "<rules>"
    # bitmex / binanceusdm: watch_order_book, watch_trades, watch_ticker from venueguard's own
    # sessions (venueguard.ccxt.native); False keeps ccxt's readers under the stream checks
    native_streams: bool = True


class GuardedExchange:
    """See the module docstring. Build it with :func:`guard`."""

    def __init__(self, exchange: Any, config: GuardConfig | None = None, *,
                 events: EventLog | None = None, metrics: Metrics | None = None,
                 alerts: Alerts | None = None,
                 journal: Journal | str | Path | bool | object | None = DEFAULT_JOURNAL,
                 clock: Clock = SYSTEM_CLOCK, rng: RandomSource | None = None) -> None:
        cfg = config or GuardConfig()
        exchange_id = getattr(exchange, "id", None)
        if not isinstance(exchange_id, str) or not hasattr(exchange, "fetch2"):
            raise ConfigError("guard() needs a ccxt exchange object from ccxt.async_support or "
                              "ccxt.pro (for example ccxt.pro.binanceusdm())")
        if not hasattr(exchange, "fetch") or not _is_async(exchange):
            raise ConfigError(f"guard() needs ccxt's asyncio classes: use ccxt.async_support."
                              f"{exchange_id} or ccxt.pro.{exchange_id}, not ccxt.{exchange_id}")
        facts = venue_facts(exchange_id, cfg.rules_text, cfg.rules_source)
        route_clock(exchange)   # ccxt's own clock reads are the process clock seam's
        self.raw = exchange
        self.venue = f"ccxt:{exchange_id}"
        self.config = cfg
        self.clock = clock
        rng = rng or random.Random()
        self.rest = CcxtRest(exchange, facts, RestConfig(
            base_url=f"ccxt://{exchange_id}", timeouts=cfg.timeouts, backoff=cfg.backoff,
            budget=cfg.budget, throttle=cfg.throttle, max_attempts=cfg.max_attempts,
            rules=facts.rules), events=events, metrics=metrics, alerts=alerts, clock=clock,
            rng=rng, venue=self.venue)
        self.notify = self.rest.notify
        self.events = self.notify.events
        self.metrics = metrics
        self.streams = CcxtStreams(exchange, self.notify, config=cfg.streams, clock=clock,
                                   rng=rng)
        self.orders = CcxtOrders(exchange, self.rest, facts, cfg.orders,
                                 journal=DEFAULT_JOURNAL if journal is True else journal,
                                 clock=clock, rng=rng)
        self.native: NativeStreams | None = None
        if cfg.native_streams and exchange_id in NATIVE_VENUES:
            self.native = NativeStreams(
                exchange, self.notify, load_markets=lambda: self.load_markets(),
                max_age_s=cfg.streams.max_age_s.get("orderbook", 5.0),
                ticker_max_age_s=cfg.streams.max_age_s.get("ticker", 15.0),
                max_ts_age_ms=cfg.streams.max_ts_age_ms, freshness=cfg.streams.freshness,
                clock=clock, rng=rng)

    # ---- ccxt's surface ---------------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        # only reached for names this class does not define
        raw = self.__dict__.get("raw")
        if raw is None:
            raise AttributeError(name)
        attr = getattr(raw, name)
        if not callable(attr) or name.startswith("_"):
            return attr
        wrapped = self._wrap(name, attr)
        if wrapped is None:
            return attr
        self.__dict__[name] = wrapped  # found directly from now on (no __getattr__)
        return wrapped

    def _wrap(self, name: str, attr: Any) -> Callable[..., Awaitable[Any]] | None:
        snake = _snake(name)
        if snake in _WATCH_KINDS:
            return self._watcher(snake, attr)
        if snake in _ORDER_ALIASES:
            order_type, side = _ORDER_ALIASES[snake]
            return self._alias(order_type, side)
        if snake in ("create_order", "create_orders", "edit_order", "cancel_order",
                     "cancel_all_orders", "cancel_all_orders_after"):
            return getattr(self, snake)  # type: ignore[no-any-return]
        if not snake.startswith(("fetch", "load_", "create_", "edit_", "cancel_", "withdraw",
                                 "transfer", "set_", "watch_", "un_watch", "close")):
            return None  # helpers (market(), amount_to_precision(), parse_*) are ccxt's own
        if snake.startswith(("watch_", "un_watch", "close")):
            return None
        private = is_private(snake)
        idempotent = not snake.startswith(_WRITE_PREFIXES)
        rest = self.rest

        async def call(*args: Any, **kwargs: Any) -> Any:
            if private:
                require_credentials(self.raw, snake)
            return await rest.call(snake, lambda: attr(*args, **kwargs), idempotent=idempotent)

        call.__name__ = name
        return call

    def _watcher(self, snake: str, attr: Any) -> Callable[..., Awaitable[Any]]:
        kind = _WATCH_KINDS[snake]
        streams = self.streams
        orders = self.orders
        native = self.native

        checked = False

        async def private(symbol: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            result = await streams.watch(kind, symbol, attr, args, kwargs)
            orders.on_rows(kind, result)
            return result

        def watch(*args: Any, **kwargs: Any) -> Awaitable[Any]:
            # a plain function returning the stream's coroutine: one frame less per message
            nonlocal checked
            if not checked:
                require_websocket(self.raw)
                if kind in ("orders", "mytrades"):
                    require_credentials(self.raw, snake)
                checked = True
            symbol = args[0] if args and isinstance(args[0], str) else kwargs.get("symbol")
            if kind in ("orders", "mytrades"):
                return private(str(symbol or "*"), args, kwargs)
            if native is not None and kind in NATIVE_KINDS and symbol:
                return native.watch(kind, str(symbol), args, kwargs)
            return streams.watch(kind, str(symbol or "*"), attr, args, kwargs)

        watch.__name__ = snake
        return watch

    def _alias(self, order_type: str, side: str | None) -> Callable[..., Awaitable[Any]]:
        async def create(symbol: str, *args: Any, **kwargs: Any) -> Any:
            rest_args = list(args)
            if side is None:
                order_side = rest_args.pop(0) if rest_args else kwargs.pop("side")
            else:
                order_side = side
            amount = rest_args.pop(0) if rest_args else kwargs.pop("amount")
            price = None
            if order_type == "limit":
                price = rest_args.pop(0) if rest_args else kwargs.pop("price")
            params = rest_args.pop(0) if rest_args else kwargs.pop("params", {})
            return await self.create_order(symbol, order_type, order_side, amount, price,
                                           params)

        return create

    # ---- orders -------------------------------------------------------------------------------

    async def create_order(self, symbol: str, type: str, side: str, amount: float,
                           price: float | None = None, params: dict[str, Any] | None = None
                           ) -> dict[str, Any]:
        """ccxt's ``create_order``; the client order id goes in the venue's own parameter."""
        require_credentials(self.raw, "create_order")
        return await self.orders.create(symbol, type, side, amount, price, dict(params or {}))

    async def create_orders(self, orders: list[dict[str, Any]],
                            params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """ccxt's ``create_orders`` as one ``create_order`` per entry, concurrently, each with its
        own client id and settling; answers in entry order. A refused entry is ccxt's
        ``{"status": "rejected", "clientOrderId": ..., "info": {...}}``; all refused: the first
        error is raised; any left UNKNOWN: :class:`~venueguard.ccxt.errors.OrderUnknown` once
        all have their outcome, with ``results`` (None where unknown) and ``cl_ord_ids``."""
        require_credentials(self.raw, "create_orders")
        if not isinstance(orders, list) or not orders:
            raise ccxt.ArgumentsRequired("create_orders needs a non-empty list of order dicts")
        shared = dict(params or {})
        entries: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for index, entry in enumerate(orders):       # every entry checked before any is sent
            missing = [k for k in ("symbol", "type", "side", "amount")
                       if not isinstance(entry, dict) or entry.get(k) is None]
            if missing:
                raise ccxt.ArgumentsRequired(
                    f"create_orders: entry {index} lacks {', '.join(missing)}")
            entry_params = {**shared, **dict(entry.get("params") or {})}
            entry_params["clientOrderId"] = self.orders.client_id_for(entry_params)
            entries.append((entry, entry_params))
        ids: list[str] = [entry_params["clientOrderId"] for _, entry_params in entries]
        outcomes = await asyncio.gather(*(
            self.orders.create(e["symbol"], e["type"], e["side"], e["amount"], e.get("price"), p)
            for e, p in entries), return_exceptions=True)
        results: list[dict[str, Any] | None] = []
        unknown: OrderUnknown | None = None
        failures: list[BaseException] = []
        for cl, outcome in zip(ids, outcomes, strict=True):
            if isinstance(outcome, OrderUnknown):
                unknown = unknown or outcome
                results.append(None)
            elif isinstance(outcome, ccxt.BaseError | VenueguardError):
                failures.append(outcome)
                results.append({"id": None, "clientOrderId": cl, "status": "rejected",
                                "info": {"error": type(outcome).__name__,
                                         "message": str(outcome)[:200]}})
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                results.append(outcome)
        if unknown is not None:
            unknown.results = results
            unknown.cl_ord_ids = [cl for cl, r in zip(ids, results, strict=True) if r is None]
            raise unknown
        if len(failures) == len(orders):
            raise failures[0]
        return [r for r in results if r is not None]

    async def edit_order(self, id: str, symbol: str, type: str, side: str,
                         amount: float | None = None, price: float | None = None,
                         params: dict[str, Any] | None = None) -> dict[str, Any]:
        """ccxt's ``edit_order``; never resent after an ambiguous outcome."""
        require_credentials(self.raw, "edit_order")
        return await self.orders.edit(id, symbol, type, side, amount, price, dict(params or {}))

    async def cancel_order(self, id: str, symbol: str | None = None,
                           params: dict[str, Any] | None = None) -> dict[str, Any]:
        """ccxt's ``cancel_order``; an ambiguous cancel is settled by a lookup."""
        require_credentials(self.raw, "cancel_order")
        return await self.orders.cancel(id, symbol, dict(params or {}))

    async def cancel_all_orders(self, symbol: str | None = None,
                                params: dict[str, Any] | None = None) -> Any:
        """ccxt's ``cancel_all_orders`` (one bulk cancel)."""
        require_credentials(self.raw, "cancel_all_orders")
        return await self.orders.cancel_all(symbol, dict(params or {}))

    async def cancel_all_orders_after(self, timeout: int,  # noqa: ASYNC109 (ccxt's signature)
                                      params: dict[str, Any] | None = None) -> Any:
        """ccxt's dead man's switch (``cancelAllAfter``), where the venue has one."""
        require_credentials(self.raw, "cancel_all_orders_after")
        return await self.orders.cancel_all_after(timeout, dict(params or {}))

    def order_state(self, client_order_id: str) -> str | None:
        """What venueguard knows of an order it sent (``NEW``, ``UNKNOWN``, ...), or None."""
        return self.orders.state_of(client_order_id)

    # ---- state ----------------------------------------------------------------------------------

    def is_fresh(self, kind: str, symbol: str) -> bool:
        """Whether ``orderbook`` / ``ticker`` / ``trades`` of ``symbol`` is fresh now."""
        if self.native is not None and kind in NATIVE_KINDS:
            return self.native.is_fresh(kind, symbol)
        return self.streams.is_fresh(kind, symbol)

    @property
    def venue_state(self) -> str:
        """HEALTHY, DEGRADED, COOLDOWN or BLOCKED."""
        return self.rest.health.state.value

    def reset_venue(self, reason: str = "operator reset") -> None:
        """Leave BLOCKED by an explicit decision."""
        self.rest.reset_venue(reason)

    async def close(self) -> None:
        """Stop the order tasks, close ccxt's connections and wait for pending closes."""
        await self.orders.aclose()
        try:
            if self.native is not None:
                await self.native.aclose()
            await self.raw.close()
        finally:
            await self.streams.aclose()

    async def start_orders(self) -> None:
        """Open the order journal and reconcile it with the venue now (the first order call
        does it otherwise): unfinished orders settled, phantoms adopted, the switch armed."""
        require_credentials(self.raw, "start_orders")
        await self.orders.start()

    async def __aenter__(self) -> GuardedExchange:
        if self.orders.journal_exists() and getattr(self.raw, "apiKey", None):
            await self.orders.start()      # a restart: settle what the journal left in doubt
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()


def _is_async(exchange: Any) -> bool:
    import inspect

    return inspect.iscoroutinefunction(getattr(type(exchange), "fetch", None))


def guard(exchange: Any, config: GuardConfig | None = None, *, events: EventLog | None = None,
          metrics: Metrics | None = None, alerts: Alerts | None = None,
          journal: Journal | str | Path | bool | object | None = DEFAULT_JOURNAL,
          clock: Clock = SYSTEM_CLOCK,
          rng: RandomSource | None = None) -> GuardedExchange:
    """Wrap a ccxt async/pro exchange object; see :class:`GuardedExchange`.

    ``journal``: by default the account's own
    (:func:`~venueguard.ccxt.orders.default_journal`); a path or a
    :class:`~venueguard.io.journal.Journal`: that one; ``False`` or None: none (a crash forgets
    the orders in doubt; logged as a warning)."""
    require_ccxt()
    return GuardedExchange(exchange, config, events=events, metrics=metrics, alerts=alerts,
                           journal=journal, clock=clock, rng=rng)
