"""A real redis-server per test module (loopback, free port, no persistence); the tests that
need one skip, saying why, only when the binary cannot be had."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from venueguard.fleet.testing import RedisServer, RedisUnavailable


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    pytest.importorskip("redis", reason="the redis extra is not installed "
                                        "(pip install 'venueguard[redis]')")
    try:
        server = RedisServer.start()
    except RedisUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.stop()
