"""Bad input to the ccxt bridge: one line that names the fix, never a traceback."""

from __future__ import annotations

import gc
import subprocess
import sys
import warnings

import ccxt
import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro
import pytest

from venueguard.ccxt import guard
from venueguard.ccxt.checks import check_version, resolve_exchange
from venueguard.ccxt.guarded import is_private
from venueguard.io.errors import ConfigError

from ccxt_testkit import FakeVenue, point_at, quick_config


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and "Traceback" not in text
    return text


def test_unknown_exchange_id_names_the_list() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_exchange("binanse", pro=True)
    text = _one_line(caught.value)
    assert "unknown ccxt exchange id 'binanse'" in text and "binance" in text


def test_exchange_without_websocket_support_names_the_fix() -> None:
    rest_only = next(name for name in ccxt.exchanges if name not in ccxt_pro.exchanges)
    with pytest.raises(ConfigError) as caught:
        resolve_exchange(rest_only, pro=True)
    assert "no websocket support" in _one_line(caught.value)


async def test_watch_on_a_rest_only_object_names_ccxt_pro() -> None:
    exchange = guard(ccxt_async.bitmex())
    try:
        with pytest.raises(ConfigError) as caught:
            await exchange.watch_order_book("BTC/USD:BTC")
    finally:
        await exchange.close()
    assert "ccxt.pro.bitmex" in _one_line(caught.value)


async def test_private_call_without_credentials_names_the_variables() -> None:
    exchange = guard(ccxt_pro.bitmex())
    try:
        with pytest.raises(ConfigError) as caught:
            await exchange.create_order("BTC/USD:BTC", "limit", "buy", 100, 50_000.0)
        with pytest.raises(ConfigError):
            await exchange.fetch_open_orders("BTC/USD:BTC")
    finally:
        await exchange.close()
    text = _one_line(caught.value)
    assert "apiKey" in text and "VENUEGUARD_API_KEY" in text and "VENUEGUARD_API_SECRET" in text


@pytest.mark.parametrize(("name", "private"), [
    ("fetch_order_book", False), ("fetch_ticker", False), ("fetch_trades", False),
    ("fetch_ohlcv", False), ("load_markets", False), ("fetch_order", True),
    ("fetch_orders", True), ("fetch_open_orders", True), ("fetch_my_trades", True),
    ("fetch_balance", True), ("fetch_positions", True), ("create_order", True),
    ("cancel_all_orders", True), ("watch_orders", True)])
def test_only_private_calls_need_credentials(name: str, private: bool) -> None:
    assert is_private(name) is private


@pytest.mark.parametrize("version", ["4.4.99", "3.1.0", "", "dev"])
def test_unsupported_ccxt_version_is_refused(version: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_version(version)
    assert "ccxt >= 4.5" in _one_line(caught.value)
    check_version("4.5.78")  # the pinned release is fine


def test_the_synchronous_ccxt_class_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        guard(ccxt.bitmex())
    assert "ccxt.async_support.bitmex" in _one_line(caught.value)


@pytest.mark.parametrize(("venue", "expected"), [
    ("ccxt:nosuchvenue", "unknown ccxt exchange id 'nosuchvenue'"),
    ("ccxt:", "invalid venue"),
])
def test_monitor_refuses_a_bad_ccxt_venue_in_one_line(venue: str, expected: str) -> None:
    done = subprocess.run([sys.executable, "-m", "venueguard", "monitor", "--venue", venue,
                           "--duration", "1", "--port", "0"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert expected in lines[-1] and "Traceback" not in done.stderr


async def test_an_order_with_an_unknown_side_is_refused_and_nothing_is_sent(
        fake_venue: FakeVenue) -> None:
    """Regression: a side that is neither buy nor sell was once sent as a buy."""
    raw = ccxt_pro.bitmex({"apiKey": "key", "secret": "secret", "enableRateLimit": False})
    point_at(raw, fake_venue.origin)
    fake_venue.respond((200, []))
    exchange = guard(raw, quick_config(), journal=False)
    try:
        with pytest.raises(ccxt.InvalidOrder) as caught:
            await exchange.create_order("BTC/USD:BTC", "limit", "sel", 100, 50_000.0)
    finally:
        await exchange.close()
    assert "side must be buy or sell, not 'sel'" in _one_line(caught.value)
    assert not [seen for seen in fake_venue.seen if seen.method == "POST"]


async def test_create_orders_checks_every_entry_before_any_is_sent() -> None:
    """Regression: the entries before a bad one were left as coroutines never awaited."""
    exchange = guard(ccxt_pro.bitmex({"apiKey": "key", "secret": "secret"}), journal=False)
    good = {"symbol": "BTC/USD:BTC", "type": "limit", "side": "buy", "amount": 100,
            "price": 50_000.0}
    try:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            with pytest.raises(ccxt.ArgumentsRequired) as caught:
                await exchange.create_orders([good, {"symbol": "BTC/USD:BTC"}])
            gc.collect()
    finally:
        await exchange.close()
    assert "entry 1 lacks type, side, amount" in _one_line(caught.value)
    assert not [w for w in seen if "never awaited" in str(w.message)]
    assert exchange.orders.runtime is None              # nothing journaled, nothing sent
