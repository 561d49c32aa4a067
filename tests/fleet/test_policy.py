from __future__ import annotations

import pytest

from venueguard.core.kinds import Kind
from venueguard.fleet.policy import (
    BAN_SCOPES,
    BanNotice,
    Bucket,
    Gcra,
    Scope,
    account_tag,
    buckets_for,
    fleet_view,
    worst_regime,
)


def test_gcra_allows_the_burst_then_the_rate() -> None:
    bucket = Bucket("rest", Scope.ACCOUNT, 60, 60.0, headroom=0.0)
    gcra = Gcra()
    waits = [gcra.reserve(bucket, 100.0, max_wait_s=1e9) for _ in range(62)]
    assert waits[:60] == [0.0] * 60
    assert waits[60] == pytest.approx(1.0)
    assert waits[61] == pytest.approx(2.0)


def test_gcra_refuses_beyond_max_wait_without_reserving() -> None:
    bucket = Bucket("rest", Scope.ACCOUNT, 2, 1.0, headroom=0.0)
    gcra = Gcra()
    assert gcra.reserve(bucket, 0.0, 0.0) == 0.0
    assert gcra.reserve(bucket, 0.0, 0.0) == 0.0
    before = gcra.tat
    assert gcra.reserve(bucket, 0.0, 0.1) is None
    assert gcra.tat == before
    assert gcra.reserve(bucket, 0.0, 1.0) == pytest.approx(0.5)


def test_sustained_rate_respects_headroom() -> None:
    bucket = Bucket("rest", Scope.ACCOUNT, 100, 60.0, headroom=0.02)
    gcra = Gcra()
    now, sent = 0.0, 0
    while now < 600.0:
        wait = gcra.reserve(bucket, now, 1e9)
        assert wait is not None
        now += wait
        sent += 1
    # over ten minutes: never more than the limit per minute plus the first burst
    assert sent <= 100 * 10 + bucket.burst
    assert sent >= 0.95 * 100 * 10


def test_floor_remaining_never_raises_the_bucket() -> None:
    bucket = Bucket("rest", Scope.ACCOUNT, 10, 10.0, headroom=0.0)
    gcra = Gcra()
    gcra.floor_remaining(bucket, 2, 0.0)
    assert gcra.tokens(bucket, 0.0) == pytest.approx(2.0)
    gcra.floor_remaining(bucket, 8, 0.0)
    assert gcra.tokens(bucket, 0.0) == pytest.approx(2.0)


def test_share_divides_the_limit() -> None:
    bucket = Bucket("rest", Scope.ACCOUNT, 120, 60.0)
    assert bucket.share(8).limit == 15
    assert bucket.share(500).limit == 1
    with pytest.raises(ValueError):
        Bucket("x", Scope.IP, 0, 1.0)


def test_buckets_follow_the_venue_and_rest_limit() -> None:
    bitmex = buckets_for("sim", rest_limit=30)
    assert [(b.name, b.limit) for b in bitmex] == [("rest", 30), ("order", 10)]
    assert buckets_for("binance-usdm")[0].scope is Scope.IP


def test_ban_notice_round_trip_and_activity() -> None:
    notice = BanNotice(Scope.IP, "COOLDOWN", 1000.0, "edge_protection", "522", "m1")
    assert BanNotice.from_json(notice.to_json()) == notice
    assert notice.active(999.0) and not notice.active(1000.0)
    assert BanNotice(Scope.ACCOUNT, "BLOCKED", None, "x", "", "m").active(1e12)
    with pytest.raises(ValueError):
        BanNotice.from_json({"scope": "ip", "state": "WHATEVER"})
    assert BAN_SCOPES[Kind.IP_BANNED] is Scope.IP
    assert BAN_SCOPES[Kind.RATE_LIMITED] is Scope.ACCOUNT


def test_fleet_view_is_the_worst_of_the_live_members() -> None:
    statuses: dict[str, dict[str, object]] = {
        "a": {"wall": 100.0, "regime": "NORMAL", "health": "HEALTHY", "resting": 2},
        "b": {"wall": 99.5, "regime": "SAFE", "health": "DEGRADED", "resting": 1},
        "gone": {"wall": 10.0, "regime": "SAFE", "health": "BLOCKED", "resting": 9},
    }
    view = fleet_view(statuses, "a", 100.0, max_age_s=3.0)
    assert (view.members, view.regime, view.health) == (2, "SAFE", "DEGRADED")
    assert (view.resting, view.others_resting) == (3, 1)
    assert worst_regime(["NORMAL", "RECOVERING", "CAUTIOUS"]) == "RECOVERING"


def test_account_tag_hides_the_key() -> None:
    tag = account_tag("bitmex", "my-secret-key")
    assert "my-secret-key" not in tag and len(tag) == 20
    assert tag == account_tag("bitmex", "my-secret-key") != account_tag("bitmex", "other")


def test_account_tag_of_a_key_that_is_not_utf8() -> None:
    """Regression: a key header whose bytes are not UTF-8 (aiohttp hands it over with surrogate
    escapes) raised UnicodeEncodeError: a guarding proxy answered 500 and logged a traceback."""
    raw = b"\x80key-\xff".decode("utf-8", "surrogateescape")
    tag = account_tag("bitmex", raw)
    assert len(tag) == 20 and tag != account_tag("bitmex", "key-")
    assert tag == account_tag("bitmex", b"\x80key-\xff".decode("utf-8", "surrogateescape"))
    assert account_tag("bitmex", "plain") == account_tag("bitmex", "plain")  # UTF-8: unchanged
