"""Without Redis at start a member is careful: it takes limit / fleet size, says so once, and
keeps retrying; a refused password is one line naming the fix (and never shows a password).

Regression: unreachable or refusing Redis left each monitor at ``share_of=1``, so two of them
used twice the account's limit.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from venueguard import cli
from venueguard.app.monitor import StartupError, config_from_args
from venueguard.fleet import Fleet, FleetConfig
from venueguard.fleet.testing import RedisServer, RedisUnavailable, free_port
from venueguard.telemetry.events import EventLog

pytest.importorskip("redis", reason="the redis extra is not installed")


class Collect:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, record: dict[str, Any]) -> None:
        self.events.append(record)

    def named(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == name]


def _fleet(url: str, log: Collect, fleet_size: int = 4) -> Fleet:
    events = EventLog()
    events.subscribe(log)
    return Fleet(FleetConfig(redis_url=url, venue="bitmex", rest_limit=60,
                             fleet_size=fleet_size, probe_s=0.1),
                 api_key="k", events=events)


async def _wait(predicate: Any, timeout_s: float) -> bool:
    async with asyncio.timeout(timeout_s):
        while not predicate():  # noqa: ASYNC110 - polling an event log
            await asyncio.sleep(0.02)
    return True


async def test_unreachable_at_start_takes_limit_over_fleet_size_then_rejoins() -> None:
    port = free_port()
    log = Collect()
    fleet = _fleet(f"redis://127.0.0.1:{port}/0", log, fleet_size=4)
    await fleet.start()
    try:
        assert fleet.degraded
        [said] = log.named("fleet.degraded")
        assert said["share_of"] == 4
        # 60 a minute / 4 members = 15: one request every ~4 s once the share's single
        # request (it starts empty but one) is used
        waits = [await fleet.reserve(order_route=False, first=True, max_wait_s=60.0)
                 for _ in range(3)]
        assert all(w is not None for w in waits)
        assert waits[2] - waits[1] == pytest.approx(60 / 15 / 0.98, rel=0.05)  # type: ignore[operator]
        assert waits[1] > 1.0  # type: ignore[operator]
        await asyncio.sleep(0.5)                  # still retrying, said once
        assert len(log.named("fleet.degraded")) == 1
        try:
            server = RedisServer.start(port)
        except RedisUnavailable as exc:
            pytest.skip(str(exc))
        try:
            await _wait(lambda: log.named("fleet.rejoined"), 10.0)
            assert not fleet.degraded
            assert len(log.named("fleet.degraded")) == 1
        finally:
            await fleet.aclose()
            server.stop()
    finally:
        await fleet.aclose()


@pytest.fixture(scope="module")
def locked_server() -> Any:
    try:
        server = RedisServer.start(password="s3cret-pw")
    except RedisUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("credentials", ["", ":wrong-pw@"])
async def test_refused_credentials_are_one_line_naming_the_fix(
        locked_server: RedisServer, credentials: str) -> None:
    log = Collect()
    fleet = _fleet(f"redis://{credentials}127.0.0.1:{locked_server.port}/0", log, fleet_size=2)
    await fleet.start()
    try:
        assert fleet.degraded
        await asyncio.sleep(0.4)                 # the probe keeps asking; said once
        [said] = log.named("fleet.degraded")
        reason = str(said["reason"])
        assert "\n" not in reason
        assert "refused this member's credentials" in reason
        assert "redis://:PASSWORD@HOST:PORT/DB" in reason
        assert "wrong-pw" not in reason and "s3cret" not in reason
        assert said["share_of"] == 2
        assert any(t.get_name() == "fleet-probe" and not t.done() for t in fleet._tasks)
    finally:
        await fleet.aclose()


async def test_the_right_password_joins(locked_server: RedisServer) -> None:
    log = Collect()
    fleet = _fleet(f"redis://:s3cret-pw@127.0.0.1:{locked_server.port}/0", log)
    await fleet.start()
    try:
        assert not fleet.degraded and not log.named("fleet.degraded")
    finally:
        await fleet.aclose()


def test_redis_without_fleet_size_refuses_to_start() -> None:
    args = cli.build_parser().parse_args(["monitor", "--redis", "redis://127.0.0.1:6379/0"])
    with pytest.raises(StartupError, match="--redis needs --fleet-size N"):
        config_from_args(args, {})
    args = cli.build_parser().parse_args(["monitor", "--redis", "redis://127.0.0.1:6379/0",
                                          "--fleet-size", "3"])
    assert config_from_args(args, {}).fleet_size == 3
