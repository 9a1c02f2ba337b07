"""Market orders: sized by fraction of equity, quote or units, filled at the next open plus
slippage with the taker fee (numbers by hand)."""

from __future__ import annotations

import pytest

from barbus.daemon.core.broker import ExecutionConfig
from barbus.daemon.core.events import ExitReason, Side
from barbus.daemon.core.orders import Order
from tests.unit.core.kit import at, bar, fills, flat, order_events, run

FEES = ExecutionConfig(fee_bps=10.0, slippage_bps=5.0)
MINUTES = [flat(0, 100.0), bar(1, 200.0, 210.0, 190.0, 205.0), flat(2, 205.0)]


@pytest.mark.parametrize(
    ("order", "units"),
    [
        (Order.buy(0.25), 0.25 * 10_000.0 / 200.0),  # of equity at the reference price (open)
        (Order.buy(quote=1_000.0), 1_000.0 / 200.0),  # quote / reference price
        (Order.buy(units=3.0), 3.0),
    ],
    ids=["fraction", "quote", "units"],
)
def test_a_market_buy_fills_at_the_next_open_plus_slippage_with_the_taker_fee(
    order: Order, units: float
) -> None:
    engine, events = run(MINUTES, {0: order}, FEES)

    [fill] = fills(events)
    price = 200.0 * 1.0005
    assert (fill.time_ms, fill.side, fill.reason) == (at(1), Side.BUY, ExitReason.SIGNAL)
    assert fill.price == pytest.approx(price, rel=1e-15)
    assert fill.size == pytest.approx(units, rel=1e-15)
    assert fill.fee == pytest.approx(units * price * 0.001, rel=1e-12)
    assert engine.position.size == pytest.approx(units, rel=1e-15)
    assert engine.position.entry_price == pytest.approx(price, rel=1e-15)
    assert engine.account.cash == pytest.approx(10_000.0 - units * price * 1.001, rel=1e-12)
    [placed] = order_events(events, "placed")
    assert (placed.order_id, placed.order_type, placed.time_ms) == (fill.order_id, "market", at(1))
    assert engine.fills == 1


def test_a_fraction_is_of_equity_including_the_position_at_the_reference_price() -> None:
    minutes = [flat(0, 100.0), flat(1, 100.0), bar(2, 120.0, 125.0, 110.0, 121.0), flat(3, 121.0)]
    engine, events = run(minutes, {0: Order.buy(units=10.0), 1: Order.buy(0.5)})

    second = fills(events)[1]
    equity = (10_000.0 - 10.0 * 100.0) + 10.0 * 120.0  # cash + position x open of minute 2
    assert second.size == pytest.approx(0.5 * equity / 120.0, rel=1e-15)
    assert engine.position.size == pytest.approx(10.0 + 0.5 * equity / 120.0, rel=1e-15)


def test_a_market_sell_fills_at_the_next_open_minus_slippage() -> None:
    minutes = [flat(0, 100.0), flat(1, 100.0), bar(2, 90.0, 95.0, 80.0, 85.0), flat(3, 85.0)]
    engine, events = run(minutes, {0: Order.buy(units=10.0), 1: Order.sell(units=4.0)}, FEES)

    buy, sell = fills(events)
    assert sell.time_ms == at(2)
    assert sell.price == pytest.approx(90.0 * 0.9995, rel=1e-15)
    assert sell.fee == pytest.approx(4.0 * 90.0 * 0.9995 * 0.001, rel=1e-12)
    assert engine.position.size == pytest.approx(6.0, rel=1e-15)
    cash = 10_000.0 - 10.0 * buy.price * 1.001 + 4.0 * sell.price * 0.999
    assert engine.account.cash == pytest.approx(cash, rel=1e-12)


def test_an_unsized_sell_closes_the_long_and_an_unsized_buy_spends_the_cash() -> None:
    minutes = [flat(0, 100.0), flat(1, 100.0), flat(2, 125.0), flat(3, 125.0)]
    engine, events = run(minutes, {0: Order.buy(), 1: Order.sell()})

    buy, sell = fills(events)
    assert buy.size == pytest.approx(100.0, rel=1e-15)
    assert sell.size == buy.size
    assert engine.position.size == 0.0
    assert engine.account.cash == pytest.approx(12_500.0, rel=1e-12)


def test_an_unsized_sell_while_flat_is_rejected_not_filled() -> None:
    engine, events = run([flat(0, 100.0), flat(1, 100.0)], {0: Order.sell()})

    assert fills(events) == []
    [rejected] = order_events(events, "rejected")
    assert rejected.time_ms == at(1)
    assert engine.position.size == 0.0


def test_fill_at_close_fills_a_market_order_at_the_decision_bars_close() -> None:
    close = ExecutionConfig(fee_bps=0.0, slippage_bps=0.0, fill_at="close")
    engine, events = run([bar(0, 100.0, 110.0, 95.0, 104.0)], {0: Order.buy(units=2.0)}, close)

    [fill] = fills(events)
    assert (fill.price, fill.size, fill.time_ms) == (104.0, 2.0, at(1))
    assert engine.account.cash == 10_000.0 - 208.0
