"""Limit and stop orders on 1-minute bars: when they fill, at what price, with which fee; expiry
in bars of the strategy's timeframe; cancel and replace by tag (numbers by hand)."""

from __future__ import annotations

import pytest

from barbus.daemon.core.broker import ExecutionConfig
from barbus.daemon.core.events import Bar, ExitReason, Side
from barbus.daemon.core.orders import Cancel, Order
from tests.unit.core.kit import FREE, at, bar, fills, flat, order_events, run

# Maker 2 bps, taker 10 bps, slippage 5 bps: every price and fee below tells which rule applied.
FEES = ExecutionConfig(fee_bps=10.0, slippage_bps=5.0, maker_fee_bps=2.0, taker_fee_bps=10.0)


def test_a_buy_limit_fills_on_the_first_later_minute_whose_low_reaches_it_at_the_limit() -> None:
    minutes = [
        bar(0, 100.0, 100.0, 90.0, 100.0),  # the decision minute: its low is in the past
        bar(1, 99.0, 101.0, 96.0, 98.0),  # low 96 > 95: no fill
        bar(2, 97.0, 98.0, 94.0, 96.0),  # low 94 <= 95: fills at min(open 97, 95) = 95
        bar(3, 90.0, 91.0, 80.0, 85.0),
    ]
    engine, events = run(minutes, {0: Order.buy(units=2.0, limit=95.0)}, FEES)

    [fill] = fills(events)
    assert (fill.time_ms, fill.price, fill.size) == (at(2), 95.0, 2.0)
    assert fill.reason is ExitReason.LIMIT
    assert fill.fee == pytest.approx(2.0 * 95.0 * 0.0002, rel=1e-12)  # maker, no slippage
    assert engine.account.cash == pytest.approx(10_000.0 - 190.0 - 2.0 * 95.0 * 0.0002)
    assert engine.open_orders == []


def test_a_buy_limit_on_a_minute_that_opens_below_it_fills_at_the_open() -> None:
    minutes = [flat(0, 100.0), bar(1, 92.0, 93.0, 91.0, 92.5)]
    _, events = run(minutes, {0: Order.buy(units=1.0, limit=95.0)}, FEES)

    [fill] = fills(events)
    assert fill.price == 92.0
    assert fill.fee == pytest.approx(92.0 * 0.0002, rel=1e-12)


def test_a_sell_limit_fills_when_the_high_reaches_it_at_max_of_open_and_limit() -> None:
    minutes = [
        flat(0, 100.0),
        flat(1, 100.0),  # the buy fills here at 100
        bar(2, 101.0, 104.0, 100.0, 103.0),  # high 104 < 105
        bar(3, 103.0, 106.0, 102.0, 104.0),  # high 106 >= 105: fills at max(103, 105)
        bar(4, 110.0, 111.0, 109.0, 110.0),
    ]
    engine, events = run(
        minutes, {0: Order.buy(units=2.0), 1: Order.sell(units=2.0, limit=105.0)}, FEES
    )

    _, sell = fills(events)
    assert (sell.time_ms, sell.price, sell.reason) == (at(3), 105.0, ExitReason.LIMIT)
    assert sell.fee == pytest.approx(2.0 * 105.0 * 0.0002, rel=1e-12)
    assert engine.position.size == 0.0


def test_a_buy_stop_triggers_on_the_high_and_fills_at_max_of_open_and_stop_plus_slippage() -> None:
    minutes = [
        flat(0, 100.0),
        bar(1, 100.0, 104.0, 99.0, 103.0),  # high 104 < 105
        bar(2, 103.0, 106.0, 102.0, 105.0),  # triggers: max(103, 105) = 105, plus slippage
        flat(3, 105.0),
    ]
    _, events = run(minutes, {0: Order.buy(units=1.0, stop=105.0)}, FEES)

    [fill] = fills(events)
    assert (fill.time_ms, fill.reason) == (at(2), ExitReason.STOP)
    assert fill.price == pytest.approx(105.0 * 1.0005, rel=1e-15)
    assert fill.fee == pytest.approx(105.0 * 1.0005 * 0.001, rel=1e-12)  # taker


def test_a_buy_stop_on_a_minute_that_gaps_above_it_fills_at_the_open_plus_slippage() -> None:
    minutes = [flat(0, 100.0), bar(1, 108.0, 109.0, 107.0, 108.0)]
    _, events = run(minutes, {0: Order.buy(units=1.0, stop=105.0)}, FEES)

    [fill] = fills(events)
    assert fill.price == pytest.approx(108.0 * 1.0005, rel=1e-15)


def test_a_sell_stop_triggers_at_low_reaching_it_and_fills_at_min_of_open_and_stop() -> None:
    minutes = [
        flat(0, 100.0),
        flat(1, 100.0),
        bar(2, 99.0, 99.5, 96.0, 97.0),  # low 96 > 95
        bar(3, 94.0, 95.0, 93.0, 94.0),  # opens below the stop: min(94, 95) = 94
    ]
    _, events = run(minutes, {0: Order.buy(units=1.0), 1: Order.sell(stop=95.0)}, FEES)

    _, sell = fills(events)
    assert (sell.time_ms, sell.reason) == (at(3), ExitReason.STOP)
    assert sell.price == pytest.approx(94.0 * 0.9995, rel=1e-15)
    assert sell.fee == pytest.approx(94.0 * 0.9995 * 0.001, rel=1e-12)


def late_bucket_minutes() -> list[Bar]:
    # A 5m bucket (minutes 0..4) whose minute 4 never comes: minute 5 releases it.
    return [flat(m, 100.0) for m in range(4)] + [
        bar(5, 100.0, 101.0, 90.0, 95.0),  # the releasing minute: its range is before the order
        bar(6, 96.0, 97.0, 93.0, 94.0),
        flat(7, 94.0),
    ]


def test_a_limit_placed_on_a_late_bucket_never_fills_in_the_releasing_minute() -> None:
    _, events = run(
        late_bucket_minutes(), {0: Order.buy(units=1.0, limit=98.0)}, FREE, timeframe="5m"
    )

    [fill] = fills(events)
    assert (fill.time_ms, fill.price) == (at(6), 96.0)  # not minute 5 at 98


def test_a_market_order_placed_on_a_late_bucket_fills_at_the_open_after_the_release() -> None:
    _, events = run(late_bucket_minutes(), {0: Order.buy(units=1.0)}, FREE, timeframe="5m")

    [fill] = fills(events)
    assert (fill.time_ms, fill.price) == (at(6), 96.0)


@pytest.mark.parametrize(("dip_minute", "filled"), [(14, True), (15, False)])
def test_good_for_bars_counts_bars_of_the_strategys_timeframe(
    dip_minute: int, filled: bool
) -> None:
    # 5m bars; decided at bucket 0's close; good for 2 bars: minutes 5..14, expired at 15.
    minutes = [flat(m, 100.0) for m in range(17)]
    minutes[dip_minute] = bar(dip_minute, 100.0, 100.0, 89.0, 100.0)
    engine, events = run(
        minutes, {0: Order.buy(units=1.0, limit=90.0, good_for_bars=2)}, FREE, timeframe="5m"
    )

    if filled:
        [fill] = fills(events)
        assert (fill.time_ms, fill.price) == (at(14), 90.0)
        assert order_events(events, "expired") == []
    else:
        assert fills(events) == []
        [expired] = order_events(events, "expired")
        assert expired.time_ms == at(15)
    assert engine.open_orders == []


def test_good_for_one_bar_on_1m_works_for_the_next_minute_only() -> None:
    minutes = [flat(0, 100.0), flat(1, 100.0), bar(2, 100.0, 100.0, 80.0, 90.0)]
    _, events = run(minutes, {0: Order.buy(units=1.0, limit=95.0, good_for_bars=1)})

    assert fills(events) == []
    assert [e.time_ms for e in order_events(events, "expired")] == [at(2)]


def test_cancel_by_tag_removes_only_that_tag() -> None:
    minutes = [flat(0, 100.0), flat(1, 100.0), bar(2, 100.0, 100.0, 80.0, 85.0), flat(3, 85.0)]
    _, events = run(
        minutes,
        {
            0: [
                Order.buy(units=1.0, limit=95.0, tag="a"),
                Order.buy(units=2.0, limit=90.0, tag="b"),
            ],
            1: Cancel("a"),
        },
    )

    [fill] = fills(events)
    assert (fill.size, fill.price) == (2.0, 90.0)
    [cancelled] = order_events(events, "cancelled")
    assert cancelled.time_ms == at(2)  # the close of the decision minute 1
    assert cancelled.price == 95.0


def test_cancel_without_a_tag_removes_every_resting_order() -> None:
    minutes = [flat(0, 100.0), flat(1, 100.0), bar(2, 100.0, 130.0, 70.0, 85.0)]
    engine, events = run(
        minutes,
        {
            0: [Order.buy(units=1.0, limit=95.0, tag="a"), Order.buy(units=2.0, stop=120.0)],
            1: Cancel(),
        },
    )

    assert fills(events) == []
    assert len(order_events(events, "cancelled")) == 2
    assert engine.open_orders == []


def test_an_order_with_a_resting_orders_tag_replaces_it() -> None:
    minutes = [
        flat(0, 100.0),
        flat(1, 99.0),
        bar(2, 99.0, 99.0, 96.0, 97.0),  # reaches the new limit 97, not the old 95
        bar(3, 94.0, 94.0, 90.0, 91.0),
    ]
    engine, events = run(
        minutes,
        {
            0: Order.buy(units=1.0, limit=95.0, tag="dip"),
            1: Order.buy(units=1.0, limit=97.0, tag="dip"),
        },
    )

    [fill] = fills(events)
    assert (fill.time_ms, fill.price) == (at(2), 97.0)
    [cancelled] = order_events(events, "cancelled")
    assert (cancelled.price, cancelled.detail) == (95.0, "replaced")
    assert engine.position.size == 1.0


def test_resting_orders_of_one_minute_fill_in_the_order_they_were_placed() -> None:
    minutes = [flat(0, 100.0), bar(1, 100.0, 100.0, 80.0, 85.0)]
    _, events = run(
        minutes,
        {0: [Order.buy(units=1.0, limit=90.0), Order.buy(units=2.0, limit=95.0)]},
    )

    assert [(f.size, f.price) for f in fills(events)] == [(1.0, 90.0), (2.0, 95.0)]
    assert [f.side for f in fills(events)] == [Side.BUY, Side.BUY]


@pytest.mark.parametrize(
    ("order", "minute", "ref", "price"),
    [
        (Order.buy(0.5, limit=95.0), bar(1, 99.0, 99.0, 94.0, 95.0), 95.0, 95.0),
        (Order.buy(0.5, limit=95.0), bar(1, 92.0, 93.0, 91.0, 92.0), 92.0, 92.0),
        (Order.buy(0.5, stop=105.0), bar(1, 101.0, 106.0, 101.0, 105.0), 105.0, 105.0 * 1.0005),
        (Order.buy(0.5, stop=105.0), bar(1, 108.0, 109.0, 107.0, 108.0), 108.0, 108.0 * 1.0005),
    ],
    ids=["limit", "limit-gap", "stop", "stop-gap"],
)
def test_a_fraction_sizes_a_resting_order_at_its_reference_price_before_slippage(
    order: Order, minute: Bar, ref: float, price: float
) -> None:
    _, events = run([flat(0, 100.0), minute], {0: order}, FEES)

    [fill] = fills(events)
    assert fill.size == pytest.approx(0.5 * 10_000.0 / ref, rel=1e-15)
    assert fill.price == pytest.approx(price, rel=1e-15)
