"""Retry amplification in a 503 storm: requests sent per logical request, venueguard vs peers.

Each client gets a fresh simulator with the same seed (so the fault's seeded draws are the
same), ``overload_503`` at ``--probability`` (BitMEX sheds new orders) for the whole run, and
``--logical`` order placements started every ``--interval-s`` seconds, each its own task, as a
bot would. Requests that reached the venue are counted by the simulator (``/_sim/truth``), never
by the client. Clients:

* venueguard :class:`~venueguard.io.http_session.RestSession` with its defaults (retry budget
  10 % of requests, adaptive throttling, backoff from 0.5 s after a 503, at most 5 attempts);
* tenacity: ``@retry(wait=wait_exponential(multiplier=0.25, max=8), stop=stop_after_attempt(8),
  retry=retry_if_exception_type(Overloaded))`` around one signed POST;
* a plain loop: retry after 0.5 s, up to 8 attempts.

    .venv/bin/python bench/retry_amplification.py                      # p = 0.8, 60 orders
    .venv/bin/python bench/retry_amplification.py --probability 0.95 --logical 100
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from venueguard.io import errors
from venueguard.io.http_session import RestConfig, RestSession
from venueguard.sim.testing import SimHandle, running_sim

POST_ORDER = "POST /api/v1/order"
ATTEMPTS = 8


class Overloaded(Exception):
    """A 503 from the venue (the peers' view of it)."""


@dataclass
class Result:
    name: str
    logical: int
    sent: int
    placed: int
    wall_s: float

    @property
    def per_logical(self) -> float:
        return self.sent / self.logical if self.logical else 0.0


async def _post(sim: SimHandle, body: dict[str, Any]) -> dict[str, Any]:
    status, _, data = await sim.request("POST", "/order", body)
    if status == 503:
        raise Overloaded(str(data))
    if status != 200:
        raise RuntimeError(f"unexpected {status}: {data}")
    return dict(data)


def _body(i: int, price: float) -> dict[str, Any]:
    return {"symbol": "XBTUSD", "side": "Buy", "orderQty": 100, "price": price,
            "clOrdID": f"amp-{i}", "ordType": "Limit", "execInst": "ParticipateDoNotInitiate"}


async def venueguard_client(sim: SimHandle, rest: RestSession, i: int, price: float) -> bool:
    try:
        await rest.place_order("XBTUSD", "Buy", 100, price, cl_ord_id=f"amp-{i}",
                               ord_type="Limit", exec_inst="ParticipateDoNotInitiate")
    except errors.VenueError:
        return False
    return True


async def tenacity_client(sim: SimHandle, rest: RestSession, i: int, price: float) -> bool:
    @retry(wait=wait_exponential(multiplier=0.25, max=8), stop=stop_after_attempt(ATTEMPTS),
           retry=retry_if_exception_type(Overloaded), reraise=True)
    async def place() -> dict[str, Any]:
        return await _post(sim, _body(i, price))

    try:
        await place()
    except Overloaded:
        return False
    return True


async def plain_client(sim: SimHandle, rest: RestSession, i: int, price: float) -> bool:
    for _ in range(ATTEMPTS):
        try:
            await _post(sim, _body(i, price))
        except Overloaded:
            await asyncio.sleep(0.5)
            continue
        return True
    return False


Client = Callable[[SimHandle, RestSession, int, float], Awaitable[bool]]


async def measure(name: str, client: Client, args: argparse.Namespace) -> Result:
    async with running_sim(scenario=None, seed=args.seed, rest_per_min=1_000_000,
                           rest_unauth_per_min=1_000_000, order_per_s=100_000) as sim:
        rest = RestSession(RestConfig(base_url=sim.api_url, api_key=sim.api_key,
                                      api_secret=sim.api_secret))
        _, _, rows = await sim.request("GET", "/orderBook/L2", signed=False,
                                       query={"symbol": "XBTUSD", "depth": 1})
        price = min(r["price"] for r in rows if r["side"] == "Buy") - 50.0
        before = (await sim.truth())["requests"].get(POST_ORDER, 0)
        await sim.add_fault("overload_503", probability=args.probability)
        started = time.monotonic()
        tasks = []
        for i in range(args.logical):
            tasks.append(asyncio.create_task(client(sim, rest, i, price)))
            await asyncio.sleep(args.interval_s)
        outcomes = await asyncio.gather(*tasks)
        wall = time.monotonic() - started
        truth = await sim.truth()
        await rest.close()
    sent = truth["requests"].get(POST_ORDER, 0) - before
    placed = len([o for o in truth["orders"] if str(o.get("clOrdID", "")).startswith("amp-")])
    assert placed == sum(outcomes), "every placement the client saw succeed is at the venue"
    return Result(name, args.logical, sent, placed, wall)


async def main_async(args: argparse.Namespace) -> None:
    results = [await measure("venueguard RestSession (defaults)", venueguard_client, args),
               await measure(f"tenacity exponential, {ATTEMPTS} attempts", tenacity_client,
                             args),
               await measure(f"plain loop, 0.5 s, {ATTEMPTS} attempts", plain_client, args)]
    print(f"overload_503 probability {args.probability:g}, {args.logical} orders started every "
          f"{args.interval_s:g} s; requests counted by the simulator")
    print(f"{'client':<36} {'logical':>7} {'sent':>6} {'sent/logical':>13} {'placed':>7} "
          f"{'wall s':>7}")
    for r in results:
        print(f"{r.name:<36} {r.logical:>7} {r.sent:>6} {r.per_logical:>13.2f} {r.placed:>7} "
              f"{r.wall_s:>7.1f}")
    vg = results[0].per_logical
    for r in results[1:]:
        print(f"{r.name} sends {r.per_logical / vg:.1f}x the requests per logical request of "
              "venueguard")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--probability", type=float, default=0.8)
    parser.add_argument("--logical", type=int, default=60)
    parser.add_argument("--interval-s", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=3)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
