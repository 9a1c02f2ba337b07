"""The sizing rules on their own, against hand arithmetic: units an order asks for, units free
cash pays (fee included, rounded down), and which sells plainly ask for a short."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

import pytest

from barbus.daemon.core.account import Account, Position
from barbus.daemon.core.events import Bar, Side
from barbus.daemon.core.orders import Order
from barbus.daemon.core.sizing import affordable_units, order_units, sells_short
from barbus.daemon.core.working import WorkingOrder


@dataclass
class Holder:
    position: Position = field(default_factory=Position)
    last_bar: Bar | None = None


def working(order: Order) -> WorkingOrder:
    return WorkingOrder(order, 1, 0, 0)


@pytest.mark.parametrize(
    ("order", "held", "units"),
    [
        (Order.buy(units=2.5), 0.0, 2.5),
        (Order.buy(quote=500.0), 0.0, 5.0),  # 500 / 100
        (Order.buy(0.5), 0.0, 50.0),  # 0.5 * 10,000 equity / 100
        (Order.buy(), -3.0, 3.0),  # covers the short
        (Order.buy(), 0.0, math.inf),  # all free cash
        (Order.sell(), 2.0, 2.0),  # closes the long
        (Order.sell(), 0.0, 0.0),  # nothing to close
        (Order.sell(), -2.0, 0.0),  # a short: nothing to close, not a bigger short
    ],
)
def test_order_units_are_the_size_the_order_names_at_the_reference_price(
    order: Order, held: float, units: float
) -> None:
    account = Account("own", 10_000.0)
    assert order_units(order, held, 100.0, account, Holder()) == units


def test_a_buy_affords_what_free_cash_pays_fee_included_rounded_down() -> None:
    units = affordable_units(Side.BUY, 1000.0, 100.0, 100.0, 0.001)
    # 1000 / 1.001 / 100 = 9.99000999...: the float at or just below it, never above
    exact = Fraction(1000) / Fraction(1.001) / 100
    assert Fraction(units) <= exact
    assert float(exact) - units <= 4 * math.ulp(units)
    assert units * 100.0 <= 1000.0 / 1.001


def test_a_short_affords_the_units_whose_margin_stays_within_free_cash() -> None:
    # proceeds 99.95 * 0.999 go to the cash, the position's value at 100 counts twice (gross)
    unit_cost = 2.0 * 100.0 - 99.95 * (1.0 - 0.001)
    assert unit_cost == pytest.approx(100.14995)
    units = affordable_units(Side.SELL, 1000.0, 99.95, 100.0, 0.001)
    assert units * unit_cost <= 1000.0
    assert units == pytest.approx(1000.0 / 100.14995, rel=1e-12)


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
def test_no_free_cash_affords_nothing(side: Side) -> None:
    assert affordable_units(side, 0.0, 100.0, 100.0, 0.001) == 0.0
    assert affordable_units(side, -5.0, 100.0, 100.0, 0.001) == 0.0


@pytest.mark.parametrize(
    ("order", "held", "book", "buy_pending", "short"),
    [
        (Order.target_position(-0.5), 1.0, [], False, True),
        (Order.target_position(0.5), 0.0, [], False, False),
        (Order.buy(units=1.0), 0.0, [], False, False),
        (Order.sell(units=1.0), 0.0, [], False, True),  # nothing long, nothing to buy
        (Order.sell(units=1.0), 0.0, [], True, False),  # a signal buy comes first
        (Order.sell(units=1.0), 0.0, [Order.buy(units=1.0)], False, False),
        (Order.sell(units=3.0), 2.0, [], False, True),  # more than the long
        (Order.sell(units=2.0), 2.0, [], False, False),
        (Order.sell(units=3.0), 2.0, [Order.buy(units=1.0)], False, False),
        (Order.sell(units=3.5), 2.0, [Order.buy(units=1.0)], False, True),
        (Order.sell(units=9.0), 2.0, [Order.buy(0.5)], False, False),  # a buy of unknown units
        (Order.sell(0.5), 1.0, [], False, False),  # a fraction: sized at the fill
        (Order.sell(), 0.0, [], False, False),  # "everything": closes the long only
    ],
)
def test_a_sell_plainly_asks_for_a_short_only_beyond_the_long_and_the_working_buys(
    order: Order, held: float, book: list[Order], buy_pending: bool, short: bool
) -> None:
    assert sells_short(order, held, [working(o) for o in book], buy_pending) is short
