"""Cancel a task awaiting each RedisBackend call at many moments of the call; count the
cancellations the task did not see (it returned normally instead of raising CancelledError),
and the ones that left it running for more than a second.

Run alone it checks the redis client found first on ``sys.path`` and prints one JSON line::

    PYTHONPATH=DIR:src python tests/fleet/cancel_probe.py redis://127.0.0.1:PORT/0

(``DIR``: ``pip install --target DIR 'redis==X.Y.Z'``), which is how tests/fleet/
test_redis_cancel.py checks each client release listed in ``VENUEGUARD_REDIS_CLIENTS``.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from venueguard.fleet.policy import Bucket, Scope
from venueguard.fleet.redis_backend import RedisBackend

Call = Callable[[RedisBackend], Coroutine[Any, Any, object]]
BUCKET = Bucket("cancel-probe", Scope.ACCOUNT, 1_000_000, 60.0)
CALLS: dict[str, Call] = {
    "ping": lambda b: b.ping(),
    "reserve": lambda b: b.reserve([BUCKET], 1.0, count_request=True),
    "lease": lambda b: b.lease("cancel-probe", 5.0),
    "status": lambda b: b.exchange_status("cancel-probe", {"regime": "NORMAL"}, 3.0),
    "bans": lambda b: b.current_bans(),
}


async def _one(backend: RedisBackend, call: Call, steps: int, delay_s: float) -> str:
    task = asyncio.create_task(call(backend))
    for _ in range(steps):
        await asyncio.sleep(0)
    if delay_s:
        await asyncio.sleep(delay_s)
    if task.done():
        return "finished first"
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=1.0)
    if not done:
        return "hung"
    return "cancelled" if task.cancelled() else "lost"


async def losses(url: str, tries: int = 40, seed: int = 7) -> dict[str, dict[str, int]]:
    """{call: {"cancelled": n, "lost": n, "hung": n, "finished first": n}}."""
    rng = random.Random(seed)
    backend = RedisBackend(url, venue="probe", account="cancel-probe")
    out: dict[str, dict[str, int]] = {}
    try:
        await backend.ping()
        for name, call in CALLS.items():
            counts = dict.fromkeys(("cancelled", "lost", "hung", "finished first"), 0)
            for i in range(tries):
                # the first loop steps of a call (where a lost cancellation was seen), then
                # moments spread over the round trip
                steps, delay = (i, 0.0) if i < 10 else (0, rng.uniform(0.0, 0.0006))
                counts[await _one(backend, call, steps, delay)] += 1
            out[name] = counts
    finally:
        await backend.aclose()
    return out


def main() -> None:
    import redis

    result = asyncio.run(losses(sys.argv[1]))
    print(json.dumps({"version": redis.__version__, "losses": result}))


if __name__ == "__main__":
    main()
