"""Positions: scaling in and out, trades per closed quantity, shorts and their refusal."""

from __future__ import annotations

import logging

import pytest

from barbus.daemon.core.broker import ExecutionConfig
from barbus.daemon.core.events import Direction, ExitReason, Side, StrategyHalted
from barbus.daemon.core.orders import Order
from barbus.daemon.core.session import Session
from tests.unit.core.kit import at, bar, engine, fills, flat, order_events, run, trades

FEE = ExecutionConfig(fee_bps=10.0, slippage_bps=0.0)
SHORT_FEE = ExecutionConfig(fee_bps=10.0, slippage_bps=0.0, allow_short=True)


def test_scaling_in_averages_the_entry_price_and_keeps_the_entry_fees() -> None:
    minutes = [flat(0, 100.0), flat(1, 100.0), flat(2, 120.0), flat(3, 120.0)]
    engine_, events = run(minutes, {0: Order.buy(units=1.0), 1: Order.buy(units=3.0)}, FEE)

    position = engine_.position
    assert position.size == 4.0
    assert position.entry_price == pytest.approx((100.0 + 3 * 120.0) / 4, rel=1e-15)  # 115
    assert position.entry_fee == pytest.approx(0.1 + 0.36, rel=1e-12)
    assert position.entry_time_ms == at(1)  # the first entry
    assert trades(events) == []
    assert engine_.account.cash == pytest.approx(10_000.0 - 100.1 - 360.36, rel=1e-12)


def test_scaling_out_closes_one_trade_per_quantity_with_its_share_of_the_entry_fee() -> None:
    minutes = [flat(0, 100.0), flat(1, 100.0), flat(2, 120.0), flat(3, 130.0), flat(4, 110.0)]
    script = {
        0: Order.buy(units=1.0),
        1: Order.buy(units=3.0),
        2: Order.sell(units=1.0),
        3: Order.sell(),  # the rest
    }
    engine_, events = run(minutes, script, FEE)

    first, second = trades(events)
    assert (first.size, first.entry_price, first.exit_price) == (1.0, 115.0, 130.0)
    assert first.entry_fee == pytest.approx(0.46 / 4, rel=1e-12)
    assert first.exit_fee == pytest.approx(0.13, rel=1e-12)
    assert first.profit == pytest.approx(130.0 - 115.0 - 0.115 - 0.13, rel=1e-12)
    assert first.profit_pct == pytest.approx(100 * 14.755 / (115.0 + 0.115), rel=1e-12)
    assert (first.entry_time_ms, first.exit_time_ms) == (at(1), at(3))
    assert (second.size, second.entry_price, second.exit_price) == (3.0, 115.0, 110.0)
    assert second.entry_fee == pytest.approx(0.46 * 3 / 4, rel=1e-12)
    assert second.profit == pytest.approx(330.0 - 345.0 - 0.345 - 0.33, rel=1e-12)
    assert {first.direction, second.direction} == {Direction.LONG}
    assert engine_.position.size == 0.0
    assert engine_.account.cash == pytest.approx(10_000.0 + 14.755 - 15.675, rel=1e-12)


def test_a_short_profits_when_the_price_falls_and_equity_counts_the_signed_position() -> None:
    minutes = [flat(0, 100.0), flat(1, 100.0), flat(2, 90.0), flat(3, 90.0)]
    engine_, events = run(minutes, {0: Order.sell(units=2.0), 1: Order.buy()}, SHORT_FEE)

    sell, cover = fills(events)
    assert (sell.side, sell.size, cover.side, cover.size) == (Side.SELL, 2.0, Side.BUY, 2.0)
    [trade] = trades(events)
    assert trade.direction is Direction.SHORT
    assert (trade.entry_price, trade.exit_price) == (100.0, 90.0)
    assert trade.profit == pytest.approx(200.0 - 180.0 - 0.2 - 0.18, rel=1e-12)
    assert trade.profit_pct == pytest.approx(100 * 19.62 / 200.2, rel=1e-12)
    assert engine_.account.cash == pytest.approx(10_019.62, rel=1e-12)
    assert engine_.equity_curve is not None
    # While short, at minute 1's close of 100: cash 10199.8 + (-2) x 100.
    assert engine_.equity_curve[1] == pytest.approx(10_199.8 - 200.0, rel=1e-12)


def test_a_sell_of_more_than_the_long_flips_to_a_short_at_one_fill_price() -> None:
    minutes = [flat(0, 100.0), flat(1, 100.0), flat(2, 110.0), flat(3, 110.0)]
    engine_, events = run(minutes, {0: Order.buy(units=1.0), 1: Order.sell(units=3.0)}, SHORT_FEE)

    _, close, open_ = fills(events)
    assert (close.size, open_.size, close.price, open_.price) == (1.0, 2.0, 110.0, 110.0)
    [trade] = trades(events)
    assert trade.direction is Direction.LONG
    assert engine_.position.size == -2.0
    assert engine_.position.entry_price == 110.0


def test_a_short_without_allow_short_halts_that_strategy_in_one_line_and_not_the_other(
    caplog: pytest.LogCaptureFixture,
) -> None:
    session = Session()
    shorty = session.add(engine({0: Order.sell(units=1.0)}, name="shorty"))
    longy = session.add(engine({0: Order.buy(units=1.0)}, name="longy"))
    with caplog.at_level(logging.ERROR, logger="barbus.bus"):
        for minute in range(3):
            session.push(flat(minute, 100.0))

    [halted] = [e for e in session.drain() if isinstance(e, StrategyHalted)]
    assert (halted.strategy, halted.time_ms) == ("shorty", at(0))
    assert "strategy shorty sold short on the BTCUSDT 1m bar at 2025-05-20T00:00:00Z" in (
        halted.reason
    )
    assert "allow" in halted.reason
    [record] = caplog.records
    assert record.exc_info is None
    assert "\n" not in record.getMessage()
    assert "shorty" in record.getMessage()
    assert shorty.position.size == 0.0
    assert shorty.fills == 0
    assert longy.position.size == 1.0
    assert longy.bars == 3


@pytest.mark.parametrize(
    "order", [Order.target_position(-0.5), Order.sell(units=1.0), Order.sell(0.5, stop=90.0)]
)
def test_every_kind_of_short_order_is_refused_without_allow_short(order: Order) -> None:
    session = Session()
    session.add(engine({0: order}, name="shorty"))
    for minute in range(3):
        session.push(flat(minute, 100.0))

    assert "sold short" in session.bus.halted["shorty"]


def test_a_sell_of_more_than_the_long_without_allow_short_halts_and_books_nothing() -> None:
    session = Session()
    shorty = session.add(engine({0: Order.buy(units=1.0), 1: Order.sell(units=3.0)}, FEE))
    for minute in range(4):
        session.push(flat(minute, 100.0))

    assert "sold short" in session.bus.halted[shorty.name]
    # The long stays as it was before the refused order: no half-booked exit.
    assert shorty.position.size == 1.0
    assert shorty.trades == []
    assert shorty.account.cash == pytest.approx(10_000.0 - 100.1, rel=1e-12)


def test_a_cover_at_end_of_data_is_a_short_trade() -> None:
    engine_, _ = run(
        [flat(0, 100.0), flat(1, 100.0), flat(2, 95.0)], {0: Order.sell(units=1.0)}, SHORT_FEE
    )
    engine_.finish()

    [trade] = engine_.trades
    assert (trade.direction, trade.exit_reason) == (Direction.SHORT, ExitReason.END_OF_DATA)
    assert trade.exit_price == 95.0


def test_a_buy_of_more_than_the_short_covers_it_and_opens_a_long_at_one_fill_price() -> None:
    minutes = [flat(0, 100.0), flat(1, 100.0), flat(2, 90.0), flat(3, 90.0)]
    engine_, events = run(minutes, {0: Order.sell(units=2.0), 1: Order.buy(units=5.0)}, SHORT_FEE)

    _, cover, long = fills(events)
    assert (cover.size, long.size, cover.price, long.price) == (2.0, 3.0, 90.0, 90.0)
    [trade] = trades(events)
    assert trade.direction is Direction.SHORT
    assert engine_.position.size == 3.0
    cash = 10_000.0 + 200.0 - 0.2 - (5 * 90.0) * 1.001
    assert engine_.account.cash == pytest.approx(cash, rel=1e-12)


def test_a_resting_sized_sell_that_fills_after_the_bracket_closed_the_long_sells_nothing() -> None:
    # The stop loss (98) closes the long first in minute 2; the sell limit at 101 then fills
    # against a flat position: on an account without shorts it sells nothing and says so,
    # without halting (the order was a plain exit when it was placed).
    session = Session()
    seller = session.add(
        engine({0: Order.buy(units=1.0, stop_loss_pct=2.0), 1: Order.sell(units=1.0, limit=101.0)})
    )
    for b in [flat(0, 100.0), flat(1, 100.0), bar(2, 100.0, 102.0, 97.0, 99.0), flat(3, 99.0)]:
        session.push(b)

    assert seller.name not in session.bus.halted
    [trade] = seller.trades
    assert trade.exit_reason is ExitReason.STOP_LOSS
    assert seller.position.size == 0.0
    [rejected] = order_events(seller.outbox, "rejected")
    assert rejected.detail == "nothing to sell: the account does not allow shorts"


def test_a_sell_of_more_than_the_long_sells_down_to_flat_when_the_long_shrank() -> None:
    # Placed while long 2, the limit sell of 2 finds 1 left (a partial exit filled first):
    # it sells that 1 and reports the rest as not sold, no halt, no short.
    session = Session()
    seller = session.add(
        engine(
            {
                0: Order.buy(units=2.0),
                1: [Order.sell(units=2.0, limit=105.0), Order.sell(units=1.0)],
            }
        )
    )
    for b in [flat(0, 100.0), flat(1, 100.0), flat(2, 100.0), bar(3, 100.0, 106.0, 99.0, 105.0)]:
        session.push(b)

    assert seller.name not in session.bus.halted
    assert seller.position.size == 0.0
    assert [t.size for t in seller.trades] == [1.0, 1.0]
    [reduced] = order_events(seller.outbox, "reduced")
    assert reduced.detail == "the rest would be short: the account does not allow shorts"
