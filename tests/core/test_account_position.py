"""The account's position against its members' sum: only an unexplained change that lasts is a
mismatch; membership changes re-take the reference; agreement again resolves it."""

from __future__ import annotations

import pytest

from venueguard.core.account_position import (
    AccountCheckConfig,
    AccountMismatch,
    AccountPositionCheck,
    AccountResolved,
)

CFG = AccountCheckConfig(grace_s=10.0)


def test_members_fills_that_add_up_are_never_a_mismatch() -> None:
    check = AccountPositionCheck(CFG)
    assert check.on_sample("XBTUSD", 0, {"a": 0, "b": 0}, 0.0) == []
    for t in range(1, 60):
        # a fills 100, b sells 300: the account moves by the sum
        assert check.on_sample("XBTUSD", -200, {"a": 100, "b": -300}, float(t)) == []


def test_a_standing_offset_at_start_is_the_reference() -> None:
    check = AccountPositionCheck(CFG)
    check.on_sample("XBTUSD", 500, {"a": 0, "b": 200}, 0.0)       # e.g. a manual position
    assert check.on_sample("XBTUSD", 600, {"a": 100, "b": 200}, 30.0) == []


def test_an_unexplained_change_is_a_mismatch_only_after_the_grace() -> None:
    check = AccountPositionCheck(CFG)
    check.on_sample("XBTUSD", 0, {"a": 0, "b": 0}, 0.0)
    assert check.on_sample("XBTUSD", 200, {"a": 0, "b": 0}, 1.0) == []   # b not published yet
    assert check.on_sample("XBTUSD", 200, {"a": 0, "b": 200}, 2.0) == []  # now it is: fine
    assert check.on_sample("XBTUSD", 300, {"a": 0, "b": 200}, 3.0) == []
    assert check.on_sample("XBTUSD", 300, {"a": 0, "b": 200}, 12.9) == []
    [mismatch] = check.on_sample("XBTUSD", 300, {"a": 0, "b": 200}, 13.0)
    assert mismatch == AccountMismatch("XBTUSD", 300, 200, 100, ("a", "b"))
    assert "unexplained +100" in mismatch.detail
    assert check.on_sample("XBTUSD", 300, {"a": 0, "b": 200}, 20.0) == []   # said once
    assert check.on_sample("XBTUSD", 300, {"a": 100, "b": 200}, 21.0) == [
        AccountResolved("XBTUSD")]


def test_a_member_joining_or_leaving_takes_the_reference_again() -> None:
    check = AccountPositionCheck(CFG)
    check.on_sample("XBTUSD", 0, {"a": 0}, 0.0)
    # c joins with its own journal's position; nothing moved at the venue
    assert check.on_sample("XBTUSD", 0, {"a": 0, "c": 700}, 1.0) == []
    assert check.on_sample("XBTUSD", 0, {"a": 0, "c": 700}, 30.0) == []
    assert check.on_sample("XBTUSD", 0, {"a": 0}, 31.0) == []
    assert check.on_sample("XBTUSD", 0, {"a": 0}, 60.0) == []


def test_symbols_are_checked_apart() -> None:
    check = AccountPositionCheck(CFG)
    check.on_sample("XBTUSD", 0, {"a": 0}, 0.0)
    check.on_sample("ETHUSD", 0, {"a": 0}, 0.0)
    check.on_sample("ETHUSD", 5, {"a": 0}, 1.0)
    assert check.on_sample("XBTUSD", 0, {"a": 0}, 20.0) == []
    assert [type(d) for d in check.on_sample("ETHUSD", 5, {"a": 0}, 20.0)] == [AccountMismatch]


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        AccountCheckConfig(grace_s=0)


def test_differences_that_change_from_sample_to_sample_are_lag_not_a_mismatch() -> None:
    """Fills reach the members a little after the venue: a sample just after one sees a
    difference, the next sees another one (or none). Only a steady one is unexplained."""
    check = AccountPositionCheck(CFG)
    check.on_sample("XBTUSD", 0, {"a": 0, "b": 0}, 0.0)
    for t, venue, b in ((10, 100, 0), (20, 300, 100), (30, 400, 300), (40, 550, 400)):
        assert check.on_sample("XBTUSD", venue, {"a": 0, "b": b}, float(t)) == []
