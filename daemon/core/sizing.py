"""Order sizing: how many units an order asks for, how many the free cash pays, and whether a
sell plainly asks for a short.

Arithmetic on numbers the engine hands over, run when an order is placed or fills, never on a
quiet bar: apart from the engine's per-bar path so the rules read in one place. The tolerances
are the engine's too (it closes, rejects and reduces by them).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from barbus.daemon.core.account import Account, Holder
from barbus.daemon.core.events import Side
from barbus.daemon.core.orders import Order
from barbus.daemon.core.working import WorkingOrder

__all__ = [
    "MIN_FILL",
    "SAME_SIZE",
    "TARGET_BAND",
    "affordable_units",
    "order_units",
    "sells_short",
]

# A quantity left below this fraction of the order (rounding after sizing) is no fill.
MIN_FILL = 1e-12
# Sizes this close (relative) are the same size: a target already held, a sell sized to close.
SAME_SIZE = 1e-9
# A target within this fraction of the position it asks for is met: fees and price moves would
# otherwise make a target sent every bar trade crumbs every bar.
TARGET_BAND = 1e-3


def order_units(
    order: Order, held: float, ref_price: float, account: Account, holder: Holder
) -> float:
    """The units an order without a target asks for at ``ref_price``; with no size, a buy
    covers the short or spends all free cash (``inf``), a sell closes the long."""
    if order.units is not None:
        return order.units
    if order.quote is not None:
        return order.quote / ref_price
    if order.fraction is not None:
        return order.fraction * account.equity(holder, ref_price) / ref_price
    if order.side is Side.BUY:
        return -held if held < 0.0 else math.inf  # cover the short, else all free cash
    return held if held > 0.0 else 0.0  # close the long


def affordable_units(
    side: Side, free: float, price: float, ref_price: float, fee_rate: float
) -> float:
    """The most units ``free`` cash opens at ``price``, fee included, rounded down."""
    if side is Side.BUY:
        return _affordable(free, price, fee_rate)
    # a short adds the proceeds to the cash and its value at ref_price to the gross
    return _units_within(free, 2.0 * ref_price - price * (1.0 - fee_rate))


def sells_short(
    order: Order, held: float, working: Sequence[WorkingOrder], buy_pending: bool
) -> bool:
    """Whether ``order`` plainly asks for a short: a negative target, a sized sell with no
    long and no buy working to make one, or a sell of more units than the long and the
    working buys of units hold. (A fill that finds less than that, after a bracket closed
    the long, sells down to flat only.)"""
    if order.target is not None:
        return order.target < 0.0
    if order.side is not Side.SELL or not order.sized:
        return False
    buys = [w.order for w in working if w.order.side is Side.BUY]
    if held <= 0.0 and not buys and not buy_pending:
        return True
    if order.units is None or buy_pending or any(b.units is None for b in buys):
        return False
    return order.units > (held + sum(b.units or 0.0 for b in buys)) * (1.0 + SAME_SIZE)


def _affordable(free: float, price: float, fee_rate: float) -> float:
    """The most units ``free`` pays for at ``price``, fee included, rounded down."""
    if free <= 0.0:
        return 0.0
    notional = free / (1.0 + fee_rate)
    size = notional / price
    while size > 0.0 and size * price > notional:
        size = math.nextafter(size, 0.0)
    return size


def _units_within(free: float, unit_cost: float) -> float:
    """The most units whose cost of ``unit_cost`` each stays within ``free``, rounded down."""
    if free <= 0.0 or unit_cost <= 0.0:
        return 0.0
    size = free / unit_cost
    while size > 0.0 and size * unit_cost > free:
        size = math.nextafter(size, 0.0)
    return size
