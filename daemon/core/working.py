"""What an engine's book holds between bars: working orders and the pending signal order.

A working order (the request, its number, when it starts working and when it expires) is
built on the per-bar path and written into every snapshot, so it sits here, between the engine
that works it (:mod:`barbus.daemon.core.engine`) and the snapshot that saves it
(:mod:`barbus.daemon.core.engine_snapshot`), which then need not import each other. The signal
codes are ints because a snapshot stores the pending signal as one.
"""

from __future__ import annotations

from typing import Any, final

from barbus.daemon.core.events import Side
from barbus.daemon.core.orders import Order, OrderKind

__all__ = ["SIGNAL_BUY", "SIGNAL_NONE", "SIGNAL_SELL", "WorkingOrder"]

# The signal order an engine holds for the next open: none, buy all-in, sell the long.
SIGNAL_NONE = 0
SIGNAL_BUY = 1
SIGNAL_SELL = -1


@final
class WorkingOrder:
    """An order the broker holds: the request, its number, and when it works and expires."""

    __slots__ = ("active_from_ms", "expires_ms", "order", "order_id")

    def __init__(self, order: Order, order_id: int, active_from_ms: int, expires_ms: int) -> None:
        self.order = order
        self.order_id = order_id
        self.active_from_ms = active_from_ms
        self.expires_ms = expires_ms  # 0: good till cancelled

    def snapshot(self) -> dict[str, Any]:
        o = self.order
        return {
            "order_id": self.order_id,
            "active_from_ms": self.active_from_ms,
            "expires_ms": self.expires_ms,
            "side": o.side.value,
            "kind": o.kind.value,
            "fraction": o.fraction,
            "quote": o.quote,
            "units": o.units,
            "target": o.target,
            "price": o.price,
            "good_for_bars": o.good_for_bars,
            "tag": o.tag,
            "stop_loss_pct": o.stop_loss_pct,
            "take_profit_pct": o.take_profit_pct,
            "trailing_stop_pct": o.trailing_stop_pct,
        }

    @classmethod
    def restore(cls, state: dict[str, Any]) -> WorkingOrder:
        order = Order(
            Side(state["side"]),
            OrderKind(state["kind"]),
            fraction=state["fraction"],
            quote=state["quote"],
            units=state["units"],
            target=state["target"],
            price=state["price"],
            good_for_bars=state["good_for_bars"],
            tag=state["tag"],
            stop_loss_pct=state["stop_loss_pct"],
            take_profit_pct=state["take_profit_pct"],
            trailing_stop_pct=state["trailing_stop_pct"],
        )
        return cls(
            order, int(state["order_id"]), int(state["active_from_ms"]), int(state["expires_ms"])
        )
