"""An engine's state as JSON: the snapshot the daemon commits with every bar, and its restore.

Two versions restore: version 2 (strategy, open bucket, position, working orders, trailing stop,
the cash of an account of its own) and version 1 (no ``version`` key: the long-only engine of
the first releases, its position and cash in one ``portfolio``). The format and its checks are
a job apart from the per-bar path, which never calls them; the functions read and set the
engine's fields directly, as its own methods did.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from barbus.daemon.core.events import Bar
from barbus.daemon.core.working import SIGNAL_BUY, SIGNAL_NONE, SIGNAL_SELL, WorkingOrder

if TYPE_CHECKING:
    from barbus.daemon.core.engine import StrategyEngine

__all__ = ["SNAPSHOT_VERSION", "restore_engine", "snapshot_engine"]

SNAPSHOT_VERSION = 2
"""Version 1 (no ``version`` key) is the long-only engine of the first releases; it restores."""


def snapshot_engine(engine: StrategyEngine) -> dict[str, Any]:
    """JSON-serialisable state to resume exactly: strategy, open bucket, position, orders
    (and the cash of an account of its own; a shared account is saved by its owner)."""
    aggregator = engine._aggregator
    last_bar = engine.last_bar
    return {
        "version": SNAPSHOT_VERSION,
        "strategy": engine.strategy.snapshot(),
        "aggregator": None if aggregator is None else aggregator.snapshot(),
        "position": engine.position.snapshot(),
        "cash": engine.account.cash if engine.own_account else None,
        "pending": engine._pending,
        "stop_level": engine._stop_level,
        "target_level": engine._target_level,
        "trail_rate": engine._trail_rate,
        "trail_extreme": engine._trail_extreme,
        "orders": [w.snapshot() for w in engine._working],
        "next_order_id": engine._next_order_id,
        "bars": engine.bars,
        "bars_in_market": engine.bars_in_market,
        "unfilled_orders": engine.unfilled_orders,
        "last_bar": None if last_bar is None else list(last_bar),
        "trade_from_ms": engine.trade_from_ms,
    }


def restore_engine(engine: StrategyEngine, state: dict[str, Any]) -> None:
    """Continue from a :func:`snapshot_engine` taken on an engine built with the same
    arguments, or from a version 1 snapshot (the long-only engine before orders and accounts)."""
    version = state.get("version", 1)
    if version not in (1, SNAPSHOT_VERSION):
        raise ValueError(f"engine snapshot version {version!r} is newer than this release")
    engine.strategy.restore(state["strategy"])
    if engine._aggregator is not None:
        engine._aggregator.restore(state["aggregator"])
    if version == 1:
        portfolio = state["portfolio"]
        engine.position.restore(portfolio)
        cash: Any = portfolio["cash"]
        working: list[WorkingOrder] = []
        trail_rate, trail_extreme, next_order_id = 0.0, 0.0, 1
    else:
        engine.position.restore(state["position"])
        cash = state["cash"]
        working = [WorkingOrder.restore(w) for w in state["orders"]]
        trail_rate = float(state["trail_rate"])
        trail_extreme = float(state["trail_extreme"])
        next_order_id = int(state["next_order_id"])
    if cash is not None:
        if not engine.own_account:
            raise ValueError("a snapshot of an engine with its own account, on a shared one")
        engine.account.restore({"cash": cash})
    pending = int(state["pending"])
    stop_level = float(state["stop_level"])
    target_level = float(state["target_level"])
    if pending not in (SIGNAL_NONE, SIGNAL_BUY, SIGNAL_SELL) or (
        math.isnan(stop_level) or math.isnan(target_level) or math.isnan(trail_extreme)
    ):
        raise ValueError(f"pending {pending}, stop {stop_level}, target {target_level}")
    engine._pending = pending
    engine._stop_level = stop_level
    engine._target_level = target_level
    engine._trail_rate = trail_rate
    engine._trail_extreme = trail_extreme
    engine._working = working
    engine._next_order_id = next_order_id
    engine._rewatch()
    engine.bars = int(state["bars"])
    engine.bars_in_market = int(state["bars_in_market"])
    engine.unfilled_orders = int(state["unfilled_orders"])
    last = state["last_bar"]
    engine.last_bar = None if last is None else Bar(*last)
    engine.trade_from_ms = int(state["trade_from_ms"])
