"""Every row of the environment contract, forced one at a time (docs/gym.md)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("gymnasium", reason="venueguard[gym] is not installed")

from venueguard.core.orders import OrderState
from venueguard.gym import ActionKind, Contract, VenueEnv
from venueguard.gym.contract import ROW_NAMES, ROWS
from venueguard.gym.spaces import ORDER_STATES

HOLD = np.zeros(5, dtype=np.int64)
QUIET = Contract.perfect()  # every row off; tests switch on the row they force


def make(contract: Contract = QUIET, seed: int = 7, **kwargs: Any) -> VenueEnv:
    env = VenueEnv("faulty", contract=contract, **kwargs)
    env.reset(seed=seed)
    for _ in range(5):  # let the feed see a book
        env.step(HOLD)
    return env


def state_of(obs: dict[str, Any], slot: int = 0) -> OrderState | None:
    code = int(obs["order_state"][slot])
    return None if code == 0 else ORDER_STATES[code - 1]


def effects(info: dict[str, Any], action: str = "place") -> list[dict[str, object]]:
    return [e for e in info["effects"] if e["action"] == action]


def place(env: VenueEnv, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    obs, _, _, _, info = env.step(env.encode(ActionKind.PLACE, **{"offset": 3, **kwargs}))
    return obs, info


def hold(env: VenueEnv, steps: int) -> tuple[dict[str, Any], dict[str, Any]]:
    obs: dict[str, Any] = {}
    info: dict[str, Any] = {}
    for _ in range(steps):
        obs, _, _, _, info = env.step(HOLD)
    return obs, info


def test_the_table_documents_every_row_and_the_contract_switches_each() -> None:
    assert [r.name for r in ROWS] == list(ROW_NAMES)
    assert all(Contract.faulty().rows().values())
    assert not any(Contract.perfect().rows().values())
    assert Contract.faulty().with_rows(ban=False).rows()["ban"] is False
    with pytest.raises(ValueError, match="unknown contract row"):
        Contract.faulty().with_rows(nonsense=True)
    with pytest.raises(ValueError, match="mode"):
        VenueEnv("chaotic")


def test_accepted_in_the_same_step_when_nothing_interferes() -> None:
    env = make()
    obs, info = place(env)
    assert [(e["result"], e["reason"]) for e in effects(info)] == [("accepted", "")]
    assert state_of(obs) is OrderState.NEW
    assert obs["order_info"][0][0] == 1.0  # a buy
    assert obs["order_info"][0][2] == 1.0  # one lot


def test_overload_rejects_place_but_never_cancel() -> None:
    env = make(QUIET.with_rows(overload=True))
    place(env)
    env.inject_fault({"kind": "overload_503", "probability": 1.0})
    obs, info = place(env)
    assert [(e["result"], e["reason"]) for e in effects(info)] == [("rejected", "overload")]
    assert state_of(obs, 1) is OrderState.REJECTED
    obs, _, _, _, info = env.step(env.encode(ActionKind.CANCEL, slot=0))
    assert [e["result"] for e in effects(info, "cancel")] == ["accepted"]
    assert state_of(obs, 0) is OrderState.CANCELED


def test_overload_fault_does_nothing_while_its_row_is_off() -> None:
    env = make()
    env.inject_fault({"kind": "overload_503", "probability": 1.0})
    _, info = place(env)
    assert [e["result"] for e in effects(info)] == ["accepted"]


def test_rate_limit_fault_rejects_and_the_venue_cools_down() -> None:
    env = make(QUIET.with_rows(rate_limit=True, cooldown=True))
    env.inject_fault({"kind": "rate_limit_429", "retry_after_s": 2})
    _, info = place(env)
    (effect,) = effects(info)
    assert (effect["result"], effect["reason"], effect["retry_after_s"]) == (
        "rejected", "rate_limit", 2.0)
    assert info["health"] == "COOLDOWN"
    _, info = place(env)
    assert [(e["result"], e["reason"]) for e in effects(info)] == [("refused", "cooldown")]
    env.venue.clear_faults()
    _, info = hold(env, 20)  # Retry-After has passed
    _, info = place(env)
    assert [e["result"] for e in effects(info)] == ["accepted"]


def test_rate_limit_of_the_venues_buckets_empties_under_hammering() -> None:
    env = make(QUIET.with_rows(rate_limit=True))
    results = []
    for _ in range(200):  # 10 requests a second against 120 a minute
        _, _, _, _, info = env.step(env.encode(ActionKind.CANCEL_ALL))
        results += [e["reason"] for e in effects(info, "cancel_all")]
    assert results[:100].count("rate_limit") == 0
    assert results[-50:].count("rate_limit") > 25


def test_post_only_cross_comes_back_canceled_and_without_the_row_it_takes() -> None:
    env = make(QUIET.with_rows(post_only=True))
    obs, info = place(env, offset=-10)  # ten ticks through the touch
    assert [(e["result"], e["reason"]) for e in effects(info)] == [("rejected", "post_only")]
    assert state_of(obs) is OrderState.CANCELED
    assert info["venue_position"] == 0
    env = make()
    obs, info = place(env, offset=-10)
    assert [e["result"] for e in effects(info)] == ["accepted"]
    assert info["venue_position"] == env.venue.spec.lot_size
    assert obs["position"][0] == 1.0


def test_ack_delay_answers_k_steps_later() -> None:
    env = make(Contract.perfect().with_rows(ack_delay=True).__class__(
        **{**dict.fromkeys(ROW_NAMES, False), "ack_delay": True}, scenarios=(), ack_steps=3))
    obs, info = place(env)
    assert [(e["result"], e["delay_steps"]) for e in effects(info)] == [("in_flight", 3)]
    assert state_of(obs) is OrderState.PENDING_NEW
    obs, info = hold(env, 2)
    assert state_of(obs) is OrderState.PENDING_NEW and not info["effects"]
    obs, info = hold(env, 1)
    assert [(e["result"], e["sent_step"]) for e in effects(info)] == [("accepted", 5)]
    assert state_of(obs) is OrderState.NEW


def test_latency_fault_adds_steps_to_the_ack() -> None:
    contract = Contract(**{**dict.fromkeys(ROW_NAMES, False), "ack_delay": True},
                        scenarios=(), ack_steps=0)
    env = make(contract)
    env.inject_fault({"kind": "latency", "ms": 450})
    _, info = place(env)
    assert [e["delay_steps"] for e in effects(info)] == [5]


def test_ambiguous_timeout_leaves_unknown_until_evidence() -> None:
    contract = Contract(**{**dict.fromkeys(ROW_NAMES, False), "ambiguous": True},
                        scenarios=(), ack_steps=0, evidence_steps=8)
    env = make(contract)
    env.inject_fault({"kind": "timeout_after_accept"})
    obs, info = place(env)
    assert [(e["result"], e["reason"]) for e in effects(info)] == [("unknown", "timeout")]
    assert state_of(obs) is OrderState.UNKNOWN
    assert env.venue.engine.get_orders(filter={"open": True})  # the venue has it
    obs, info = hold(env, 7)
    assert state_of(obs) is OrderState.UNKNOWN and not info["events"]
    obs, info = hold(env, 1)
    assert state_of(obs) is OrderState.NEW
    assert [e["event"] for e in info["events"]] == ["evidence"]


def test_ambiguous_bad_gateway_on_cancel_settles_to_canceled() -> None:
    contract = Contract(**{**dict.fromkeys(ROW_NAMES, False), "ambiguous": True},
                        scenarios=(), ack_steps=0, evidence_steps=4)
    env = make(contract)
    place(env)
    env.inject_fault({"kind": "bad_gateway_after_accept"})
    obs, _, _, _, info = env.step(env.encode(ActionKind.CANCEL, slot=0))
    assert [(e["result"], e["reason"]) for e in effects(info, "cancel")] == [
        ("unknown", "bad_gateway")]
    assert state_of(obs) is OrderState.PENDING_CANCEL
    obs, _ = hold(env, 4)
    assert state_of(obs) is OrderState.CANCELED


def test_late_fill_the_venue_fills_before_the_agent_knows() -> None:
    contract = Contract(**{**dict.fromkeys(ROW_NAMES, False), "late_fill": True},
                        scenarios=(), ack_steps=0)
    env = make(contract)
    env.inject_fault({"kind": "late_fill", "delay_s": 1.0})
    obs, info = place(env, offset=-10)  # takes liquidity at once
    lot = env.venue.spec.lot_size
    assert info["venue_position"] == lot and info["position"] == 0
    obs, info = hold(env, 9)
    assert info["position"] == 0
    obs, info = hold(env, 1)
    assert info["position"] == lot and obs["position"][0] == 1.0
    assert [e["event"] for e in info["events"]] == ["late_fill"]


def test_cancel_race_the_fill_wins() -> None:
    contract = Contract(**{**dict.fromkeys(ROW_NAMES, False), "late_fill": True},
                        scenarios=(), ack_steps=0)
    env = make(contract)
    place(env)
    env.inject_fault({"kind": "cancel_race"})
    obs, _, _, _, info = env.step(env.encode(ActionKind.CANCEL, slot=0))
    assert [(e["result"], e["reason"]) for e in effects(info, "cancel")] == [
        ("rejected", "filled_first")]
    assert state_of(obs) is OrderState.FILLED
    assert info["position"] == env.venue.spec.lot_size == info["venue_position"]


def test_stale_data_freezes_until_the_client_reconnects() -> None:
    contract = Contract(**{**dict.fromkeys(ROW_NAMES, False), "stale_data": True},
                        scenarios=(), ack_steps=0, stale_after_s=2.0, reconnect_steps=3)
    env = make(contract)
    env.inject_fault({"kind": "ws_stall"})
    ages = []
    fresh = []
    events: list[str] = []
    for _ in range(30):
        obs, _, _, _, info = env.step(HOLD)
        ages.append(float(obs["market"][8]))
        fresh.append(int(obs["data_fresh"]))
        events += [e["event"] for e in info["events"]]
    assert ages[18] == pytest.approx(1.9, abs=1e-4)  # frozen: the age grows step by step
    assert fresh[:19] == [1] * 19 and fresh[19] == 0  # stale once older than 2 s
    assert events == ["stale", "resync"]
    assert fresh[-1] == 1 and ages[-1] < 0.5


def test_stale_data_row_off_leaves_the_feed_alone() -> None:
    env = make()
    env.inject_fault({"kind": "ws_stall"})
    obs, _ = hold(env, 40)
    assert obs["data_fresh"] == 1 and float(obs["market"][8]) < 1.0


def test_gap_forces_a_resync_and_counts_a_gap_event() -> None:
    contract = Contract(**{**dict.fromkeys(ROW_NAMES, False), "gap": True},
                        scenarios=(), ack_steps=0, resync_steps=2)
    env = make(contract)
    env.inject_fault({"kind": "ws_gap", "count": 3})
    obs, info = hold(env, 1)
    assert obs["data_fresh"] == 0
    obs, info = hold(env, 1)
    assert obs["data_fresh"] == 1 and [e["event"] for e in info["events"]] == ["resync"]
    obs, _ = hold(env, 10)  # the next snapshot counts it
    assert float(obs["market"][6]) == 1.0
    _, info = place(env)  # no refusal: data is fresh again
    assert [e["result"] for e in effects(info)] == ["accepted"]


def test_ws_drop_reconnects() -> None:
    contract = Contract(**{**dict.fromkeys(ROW_NAMES, False), "gap": True},
                        scenarios=(), ack_steps=0, reconnect_steps=4)
    env = make(contract)
    env.inject_fault({"kind": "ws_drop"})
    obs, _ = hold(env, 3)
    assert obs["data_fresh"] == 0
    obs, info = hold(env, 1)
    assert obs["data_fresh"] == 1 and [e["event"] for e in info["events"]] == ["resync"]


def test_cooldown_after_403_refuses_actions_until_it_ends() -> None:
    env = make(QUIET.with_rows(cooldown=True))
    env.inject_fault({"kind": "forbidden_403", "duration_s": 1})
    obs, info = place(env)
    assert [(e["result"], e["reason"]) for e in effects(info)] == [("rejected", "forbidden")]
    assert info["health"] == "COOLDOWN" and obs["health"] == 2
    assert env.venue.health.until == pytest.approx(env.venue.now_s - 0.1 + 300.0)
    _, info = place(env)
    assert [(e["result"], e["reason"]) for e in effects(info)] == [("refused", "cooldown")]


def test_ban_blocks_for_the_rest_of_the_episode() -> None:
    env = make(QUIET.with_rows(ban=True))
    env.inject_fault({"kind": "cloudflare_1010", "duration_s": 0.5})
    obs, info = place(env)
    assert [(e["result"], e["reason"]) for e in effects(info)] == [
        ("rejected", "software_banned")]
    assert obs["health"] == 3
    hold(env, 20)  # the fault is long over
    _, info = place(env)
    assert [(e["result"], e["reason"]) for e in effects(info)] == [("refused", "blocked")]


def test_bad_credentials_reject_without_blocking() -> None:
    env = make(QUIET.with_rows(ban=True))
    env.inject_fault({"kind": "invalid_key", "duration_s": 0.2})
    _, info = place(env)
    assert [(e["result"], e["reason"]) for e in effects(info)] == [("rejected", "invalid_key")]
    hold(env, 3)
    _, info = place(env)
    assert [e["result"] for e in effects(info)] == ["accepted"]


def test_scenarios_are_the_simulators_and_run_in_simulated_time() -> None:
    contract = Contract(scenarios=("silent-stall",), stale_after_s=5.0)
    env = VenueEnv("faulty", contract=contract)
    env.reset(seed=3)
    seen: list[tuple[int, str]] = []
    for _ in range(300):
        _, _, _, _, info = env.step(HOLD)
        seen += [(info["step"], str(e.get("kind", e["event"]))) for e in info["events"]]
    assert seen[0] == (201, "ws_stall")  # at_s = 20 with 100 ms steps
    assert (250, "stale") in seen  # 5 s without data: the client gives up
    assert seen[-1][1] == "resync"


def test_perfect_mode_ignores_injected_faults() -> None:
    env = VenueEnv("perfect")
    env.reset(seed=1)
    hold(env, 3)
    for kind in ("overload_503", "forbidden_403", "timeout_after_accept", "cloudflare_1006"):
        env.inject_fault({"kind": kind})
    _, info = place(env)
    assert [e["result"] for e in effects(info)] == ["accepted"]
    assert info["health"] == "HEALTHY"


def test_local_refusals_name_the_reason() -> None:
    env = make(slots=1)
    _, _, _, _, info = env.step(env.encode(ActionKind.CANCEL, slot=0))
    assert [e["reason"] for e in effects(info, "cancel")] == ["not_cancelable"]
    place(env)
    _, info = place(env)
    assert [(e["result"], e["reason"]) for e in effects(info)] == [("refused", "no_slot")]
    with pytest.raises(ValueError, match="outside"):
        env.step(np.array([9, 0, 0, 0, 0]))


@pytest.mark.parametrize("index", range(5))
def test_each_action_component_is_checked_against_its_bound(index: int) -> None:
    env = make(slots=1)
    nvec = [int(n) for n in env.action_space.nvec]
    for bad in (nvec[index], -1):
        action = [0, 0, 0, 0, 0]
        action[index] = bad
        with pytest.raises(ValueError, match=r"action \[.*\] is outside"):
            env.step(np.array(action))
    last = [0, 0, 0, 0, 0]
    last[index] = nvec[index] - 1
    env.step(np.array(last))                   # the highest value of each component is valid
    with pytest.raises(ValueError, match="outside"):
        env.step([0, 0, 0, 0])                 # four components, not five


def test_faults_given_at_reset_start_with_the_episode() -> None:
    env = VenueEnv("faulty", contract=QUIET.with_rows(overload=True))
    env.reset(seed=2, options={"faults": [{"kind": "overload_503", "probability": 1.0}]})
    _, info = place(env)
    assert [(e["result"], e["reason"]) for e in effects(info)] == [("rejected", "overload")]
    env.reset(seed=2)
    _, info = place(env)
    assert [e["result"] for e in effects(info)] == ["accepted"]


def test_ambiguous_amend_settles_from_the_venues_row() -> None:
    contract = Contract(**{**dict.fromkeys(ROW_NAMES, False), "ambiguous": True},
                        scenarios=(), ack_steps=0, evidence_steps=3)
    env = make(contract)
    place(env, offset=5)
    env.inject_fault({"kind": "timeout_after_accept"})
    obs, _, _, _, info = env.step(env.encode(ActionKind.AMEND, offset=6, lots=2, slot=0))
    assert [(e["result"], e["reason"]) for e in effects(info, "amend")] == [("unknown", "timeout")]
    assert state_of(obs) is OrderState.PENDING_AMEND
    obs, _ = hold(env, 3)
    assert state_of(obs) is OrderState.NEW
    assert obs["order_info"][0][2] == 2.0  # the venue's row: the amend went through


def test_a_request_the_venue_finds_invalid_is_rejected() -> None:
    env = make()
    place(env, offset=5)
    # same price and size: "Invalid amend: orderQty, leavesQty, price, stopPx unchanged"
    action = env.encode(ActionKind.AMEND, offset=5, lots=1, slot=0)
    obs, _, _, _, info = env.step(action)
    (effect,) = effects(info, "amend")
    assert (effect["result"], effect["reason"]) == ("rejected", "invalid")
    assert "unchanged" in str(effect["message"])
    assert state_of(obs) is OrderState.NEW


def test_stale_data_holds_private_rows_until_the_resync() -> None:
    contract = Contract(**{**dict.fromkeys(ROW_NAMES, False), "stale_data": True},
                        scenarios=(), ack_steps=0, stale_after_s=1.0, reconnect_steps=2)
    env = make(contract)
    env.inject_fault({"kind": "ws_stall"})
    _, info = place(env, offset=-10)  # the REST answer comes back: the order row shows it
    assert info["venue_position"] == env.venue.spec.lot_size
    assert info["position"] == 0  # the execution rides the stalled websocket
    events: list[str] = []
    for _ in range(15):
        _, _, _, _, info = env.step(HOLD)
        events += [e["event"] for e in info["events"]]
        if "resync" in events:
            break
    assert events == ["stale", "resync"]
    assert info["position"] == info["venue_position"]


def test_stall_on_new_connections_stays_dark_until_the_fault_ends() -> None:
    contract = Contract(**{**dict.fromkeys(ROW_NAMES, False), "stale_data": True},
                        scenarios=(), ack_steps=0, stale_after_s=1.0, reconnect_steps=2)
    env = make(contract)
    env.inject_fault({"kind": "ws_stall", "new_connections": True, "duration_s": 4.0})
    fresh = []
    for _ in range(60):
        obs, _ = hold(env, 1)
        fresh.append(int(obs["data_fresh"]))
    assert fresh.index(0) == 9  # 1 s without data
    back = fresh.index(1, 10)
    assert 40 <= back <= 45  # every reconnect meets the fault again until it ends at 4 s
    assert all(fresh[back:])
    assert env.venue.stats["reconnects"] >= 10


def test_reordered_and_duplicated_messages_are_dropped_and_counted() -> None:
    contract = Contract(**{**dict.fromkeys(ROW_NAMES, False), "stale_data": True},
                        scenarios=(), ack_steps=0)
    env = make(contract)
    env.inject_fault({"kind": "ws_duplicate", "probability": 1.0})
    obs, info = hold(env, 20)
    assert info["data_rejected"] > 0 and obs["data_fresh"] == 1
