"""Shared test fixtures.

Conformance tests that read the real BitMEX captures and the swagger spec find them through
``VENUEGUARD_FIXTURES`` (default: ``../shared/bitmex`` next to the checkout) and skip, saying why,
where they are absent. Every other test uses data the project makes itself.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from venueguard.core.rules import default_rules
from venueguard.io.vloop import VirtualTimeLoop
from venueguard.sim.testing import SimHandle, running_sim
from venueguard.venues.bitmex.rules import bitmex_rules

REPO_ROOT = Path(__file__).resolve().parent.parent


def bitmex_fixtures_path() -> Path:
    raw = os.environ.get("VENUEGUARD_FIXTURES")
    return Path(raw) if raw else (REPO_ROOT.parent / "shared" / "bitmex")


@pytest.fixture(scope="session")
def bitmex_fixtures() -> Path:
    """The directory holding PROTOCOL.md, swagger.json and fixtures/; skips when absent."""
    path = bitmex_fixtures_path()
    if not (path / "fixtures").is_dir():
        pytest.skip(f"BitMEX captures not found at {path} "
                    "(set VENUEGUARD_FIXTURES to their directory)")
    return path


@pytest.fixture(autouse=True)
def _state_dir_in_tmp(tmp_path_factory: pytest.TempPathFactory,
                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Default journals (``guard(exchange)``) go to a fresh directory per test, never to the
    user's own state directory."""
    monkeypatch.setenv("VENUEGUARD_STATE_DIR", str(tmp_path_factory.mktemp("state")))


@pytest.fixture(autouse=True)
def _empty_default_rule_caches() -> Iterator[None]:
    """Each test starts with the packaged rule tables' classify caches empty.

    ``default_rules()`` and ``bitmex_rules()`` are parsed once per process and each ``RuleSet``
    keeps two bounded caches (``memo``: text -> kind, ``verdicts``: outcome -> classification).
    Emptied here, no test
    depends on what an earlier test classified, and every test reaches the pattern scan and
    the verdict code itself (which mutation testing relies on, see README "Mutation testing").
    """
    for rules in (default_rules(), bitmex_rules()):
        rules.memo.clear()
        rules.verdicts.clear()
    yield


LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def pytest_asyncio_loop_factories(config: pytest.Config,
                                  item: pytest.Item) -> dict[str, LoopFactory]:
    """Tests marked ``virtual_time`` (module or test) run on :class:`VirtualTimeLoop`: time passes
    only when every task waits, and sockets are in memory; ``real_time`` opts a test out. The
    others get asyncio's own loop, as without this hook."""
    if item.get_closest_marker("virtual_time") and not item.get_closest_marker("real_time"):
        return {"virtual": VirtualTimeLoop}
    return {"asyncio": asyncio.new_event_loop}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``slow`` run first, in their usual order, then the rest.

    With test workers (``make test``: pytest-xdist), a long test that starts near the end holds
    the whole run while the other workers sit idle; started first, the long ones overlap and
    the many short tests fill the gaps. Mark a test that takes more than a few seconds
    ``slow``.
    """
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


SimFactory = Callable[..., Awaitable[SimHandle]]


@pytest.fixture
async def sim_server() -> AsyncIterator[SimFactory]:
    """A factory of in-process simulators on 127.0.0.1 (any free port), all stopped at teardown:
    ``sim = await sim_server(scenario="calm", seed=1, rate=50.0, book_format="modern",
    symbols=("XBTUSD",), **config_overrides)``."""
    async with AsyncExitStack() as stack:
        async def start(scenario: str | None = "calm", seed: int = 1, rate: float = 50.0,
                        book_format: str = "modern", symbols: Sequence[str] = ("XBTUSD",),
                        **overrides: Any) -> SimHandle:
            return await stack.enter_async_context(running_sim(
                scenario=scenario, seed=seed, rate_msgs_s=rate, book_format=book_format,
                symbols=tuple(symbols), **overrides))

        yield start
