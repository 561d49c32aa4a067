"""System tests: the async ones marked ``virtual_time`` run on a virtual-time loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from venueguard.io.vloop import VirtualTimeLoop

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def pytest_asyncio_loop_factories(config: pytest.Config,
                                  item: pytest.Item) -> dict[str, LoopFactory]:
    """Tests marked ``virtual_time`` (module or test) run on :class:`VirtualTimeLoop`: time passes
    only when every task waits, and sockets are in memory; ``real_time`` opts a test out. The
    others get asyncio's own loop, as without this hook."""
    if item.get_closest_marker("virtual_time") and not item.get_closest_marker("real_time"):
        return {"virtual": VirtualTimeLoop}
    return {"asyncio": asyncio.new_event_loop}
