"""The overload model: its curve, seeded decisions, the order rate, and the simulator using it."""

from __future__ import annotations

import asyncio
import math
import random

import pytest

from venueguard.sim.overload import OrderRate, OverloadModel
from venueguard.sim.testing import SimHandle

ORDER = {"symbol": "XBTUSD", "side": "Buy", "orderQty": 100, "price": 30000}


def test_load_curve_is_zero_to_the_threshold_then_rises_to_the_ceiling() -> None:
    model = OverloadModel(ceiling=0.8, threshold=2.0, scale=1.0)
    assert model.probability(1.0) == 0.0
    assert model.probability(2.0) == 0.0
    ps = [model.probability(x) for x in (2.5, 3.0, 4.0, 8.0)]
    assert ps == sorted(ps) and ps[0] > 0
    assert model.probability(3.0) == pytest.approx(0.8 * (1 - math.exp(-1.0)))
    assert model.probability(50.0) == pytest.approx(0.8)


def test_intensity_and_flat_modes_keep_the_older_rules() -> None:
    linear = OverloadModel.from_params({"probability": 0.1, "follow_intensity": True})
    assert linear.mode == "intensity"
    assert linear.probability(linear.load(3.0, orders_per_s=100.0)) == pytest.approx(0.3)
    assert linear.probability(linear.load(20.0)) == 1.0
    flat = OverloadModel.from_params({"probability": 0.25})
    assert flat.mode == "flat" and flat.probability(9.0) == 0.25


def test_order_rate_adds_to_the_load_only_in_load_mode() -> None:
    model = OverloadModel.from_params({"probability": 1.0, "follow_load": True,
                                       "order_weight_s": 0.5})
    assert model.mode == "load"
    assert model.load(1.0, orders_per_s=4.0) == pytest.approx(3.0)
    assert model.probability(model.load(1.0, 0.0)) == 0.0
    assert model.probability(model.load(1.0, 4.0)) > 0.4


def test_same_rng_seed_same_decisions_and_no_draw_when_certain() -> None:
    model = OverloadModel(ceiling=0.9)
    loads = [1.0, 2.5, 3.0, 6.0, 2.1, 4.0] * 20
    first = [model.decide(x, random.Random(7)) for x in loads]
    runs = []
    for _ in range(2):
        rng = random.Random(11)
        runs.append([model.decide(x, rng) for x in loads])
    assert runs[0] == runs[1]
    assert not any(d for d, x in zip(runs[0], loads, strict=True) if x <= 2.0)
    assert sum(runs[0]) > 0 and first[3]  # p(6.0) = 0.84: the first draw of seed 7 sheds
    rng = random.Random(3)
    state = rng.getstate()
    assert model.decide(1.0, rng) is False and rng.getstate() == state


@pytest.mark.parametrize("kwargs", [{"ceiling": 1.5}, {"scale": 0.0}, {"threshold": -1.0}])
def test_bad_parameters_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        OverloadModel(**kwargs)  # type: ignore[arg-type]


def test_order_rate_reads_a_steady_rate_and_decays() -> None:
    rate = OrderRate(tau_s=2.0)
    assert rate.rate(0.0) == 0.0
    t = 0.0
    for _ in range(200):  # 5 requests per second for 40 s
        rate.on_request(t)
        t += 0.2
    assert rate.rate(t) == pytest.approx(5.0, rel=0.15)
    assert rate.rate(t + 10.0) < 0.05
    rate.on_request(t - 5.0)  # a late report never moves time backwards
    assert rate.rate(t) > 0


async def test_follow_load_sheds_in_bursts_not_in_calm(sim: SimHandle) -> None:
    await sim.add_fault("overload_503", probability=1.0, follow_load=True, order_weight_s=0.0)
    engine = sim.server.engine
    engine.intensity = lambda symbol: 1.2  # type: ignore[method-assign]
    calm = [(await sim.request("POST", "/order", {**ORDER, "clOrdID": f"c{i}"}))[0]
            for i in range(5)]
    engine.intensity = lambda symbol: 30.0  # type: ignore[method-assign]
    burst = [(await sim.request("POST", "/order", {**ORDER, "clOrdID": f"b{i}"}))[0]
             for i in range(5)]
    assert calm == [200] * 5 and burst == [503] * 5


async def test_a_client_hammering_the_venue_raises_its_own_load(sim_server) -> None:  # type: ignore[no-untyped-def]
    sim = await sim_server(order_per_s=1000, rest_per_min=10_000)
    await sim.add_fault("overload_503", probability=1.0, follow_load=True, order_weight_s=2.0,
                        load_threshold=2.0, load_scale=0.5)
    sim.server.engine.intensity = lambda symbol: 1.0  # type: ignore[method-assign]
    first = (await sim.request("POST", "/order", {**ORDER, "clOrdID": "first"}))[0]
    statuses = [(await sim.request("POST", "/order", {**ORDER, "clOrdID": f"h{i}"}))[0]
                for i in range(30)]
    # the first order meets a quiet venue; thirty in quick succession push the load past
    # the threshold (2 s average: ~15/s * 2.0 s weight), so most of the later ones are shed
    assert first == 200
    assert set(statuses) <= {200, 503} and statuses.count(503) >= 20
    assert sim.server.order_rate.rate(sim.server.engine.now_ms / 1000) > 2.0


async def test_a_scheduled_burst_raises_intensity_and_sheds(sim_server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "burst.toml"
    path.write_text('[overload]\nprobability = 1.0\nfollow_load = true\norder_weight_s = 0\n'
                    '[market]\nspread_widen_ticks = 0\n'
                    '[[burst]]\nat_s = 0.3\nsize = 40\n')
    sim = await sim_server(scenario=str(path))
    assert sim.server.engine.markets["XBTUSD"].params.spread_widen_ticks == 0.0
    assert (await sim.request("POST", "/order", {**ORDER, "clOrdID": "before"}))[0] == 200
    for _ in range(100):
        if sim.server.engine.intensity("XBTUSD") > 20:
            break
        await sim.request("GET", "/position")
        await asyncio.sleep(0.02)
    assert sim.server.engine.intensity("XBTUSD") > 20
    assert (await sim.request("POST", "/order", {**ORDER, "clOrdID": "during"}))[0] == 503
