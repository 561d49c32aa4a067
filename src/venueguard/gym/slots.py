"""The agent's own orders: venueguard's :class:`~venueguard.core.orders.OrderTable` behind a
fixed number of slots, so the observation has a fixed shape and actions can name an order.

A new order takes the first free slot; a slot is freed once its order has been shown finished
(FILLED, CANCELED or REJECTED) in one observation. Only live orders are scanned each step, so the
cost does not grow with the number of orders an episode has seen.
"""

from __future__ import annotations

import random

from venueguard.core.orders import (
    TERMINAL_STATES,
    ClOrdIdGenerator,
    Order,
    OrderState,
    OrderTable,
)

__all__ = ["AgentOrders"]

# state values, not members: a str hash is cached, an Enum member's is computed in Python
TERMINAL_VALUES = frozenset(s.value for s in TERMINAL_STATES)


class AgentOrders:
    def __init__(self, slots: int, seed: int) -> None:
        self.table = OrderTable(ClOrdIdGenerator(random.Random(f"{seed}:gym-ids"), prefix="gym"))
        self.slots: list[str | None] = [None] * slots
        self._done: list[int] = []

    def free_slot(self) -> int | None:
        for index, cl in enumerate(self.slots):
            if cl is None:
                return index
        return None

    def new(self, slot: int, symbol: str, side: str, qty: int, price: float,
            now: float) -> Order:
        order = self.table.new_order(symbol, side, qty, price, now=now, wall_ms=0)
        self.slots[slot] = order.cl_ord_id
        return order

    def at(self, slot: int) -> Order | None:
        if not 0 <= slot < len(self.slots):
            return None
        cl = self.slots[slot]
        return None if cl is None else self.table.orders[cl]

    def live(self) -> list[Order]:
        """Orders in slots, in slot order."""
        orders = self.table.orders
        return [orders[cl] for cl in self.slots if cl is not None]

    def in_state(self, state: OrderState) -> int:
        return sum(1 for o in self.live() if o.state is state)

    def mark_shown(self, finished: list[int] | None = None) -> None:
        """An observation was taken: its finished orders may leave their slots next step.

        ``finished``: the slots the observation found finished, when it already looked."""
        if finished is None:
            orders = self.table.orders
            finished = [i for i, cl in enumerate(self.slots)
                        if cl is not None and orders[cl].state._value_ in TERMINAL_VALUES]
        self._done = finished

    def release_finished(self) -> None:
        """Free the slots of orders shown finished in the previous observation."""
        for index in self._done:
            self.slots[index] = None
        self._done = []
