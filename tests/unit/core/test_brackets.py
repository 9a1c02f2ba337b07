"""Brackets attached to an order's entry: stop loss, take profit, trailing stop (by hand)."""

from __future__ import annotations

import pytest

from barbus.daemon.core.broker import ExecutionConfig
from barbus.daemon.core.events import Bar, ExitReason, Side
from barbus.daemon.core.orders import Order
from tests.unit.core.kit import at, bar, fills, flat, run, trades

SHORTS = ExecutionConfig(fee_bps=0.0, slippage_bps=0.0, allow_short=True)


def entered_long(*later: Bar) -> list[Bar]:
    """The decision minute 0 at 100, minute 1 (an entry at its open of 100), then ``later``."""
    return [flat(0, 100.0), bar(1, 100.0, 100.5, 99.5, 100.0), *later]


@pytest.mark.parametrize(
    ("minute", "reason", "price"),
    [
        (bar(2, 99.0, 100.0, 96.0, 98.0), ExitReason.STOP_LOSS, 97.0),  # the level
        (bar(2, 95.0, 96.0, 94.0, 95.0), ExitReason.STOP_LOSS, 95.0),  # a gap: the open
        (bar(2, 101.0, 107.0, 100.0, 106.0), ExitReason.TAKE_PROFIT, 106.0),
        (bar(2, 108.0, 109.0, 107.0, 108.0), ExitReason.TAKE_PROFIT, 108.0),  # a gap up
        (bar(2, 100.0, 110.0, 90.0, 100.0), ExitReason.STOP_LOSS, 97.0),  # both: the stop
    ],
    ids=["stop", "stop-gap", "target", "target-gap", "both-means-stop"],
)
def test_a_long_bracket_exits_by_the_stop_or_target_rule(
    minute: Bar, reason: ExitReason, price: float
) -> None:
    engine, events = run(
        entered_long(minute), {0: Order.buy(units=1.0, stop_loss_pct=3.0, take_profit_pct=6.0)}
    )

    [trade] = trades(events)
    assert (trade.exit_reason, trade.exit_time_ms) == (reason, at(2))
    assert trade.exit_price == pytest.approx(price, rel=1e-15)
    assert engine.position.size == 0.0


def test_a_bracket_exit_is_a_taker_fill_with_slippage() -> None:
    execution = ExecutionConfig(fee_bps=10.0, slippage_bps=5.0, maker_fee_bps=0.0)
    minutes = [flat(0, 100.0), flat(1, 100.0), bar(2, 99.0, 100.0, 80.0, 85.0)]
    _, events = run(minutes, {0: Order.buy(units=1.0, limit=100.0, stop_loss_pct=3.0)}, execution)

    entry, exit_ = fills(events)
    assert (entry.price, entry.fee) == (100.0, 0.0)  # the limit entry: maker
    assert exit_.price == pytest.approx(97.0 * 0.9995, rel=1e-15)
    assert exit_.fee == pytest.approx(97.0 * 0.9995 * 0.001, rel=1e-12)


def test_a_trailing_stop_moves_after_a_minute_never_within_it() -> None:
    minutes = entered_long(
        bar(2, 108.0, 110.0, 107.0, 109.0),  # low 107 is above the stop of 98 it started with;
        # only after this minute does the stop move to 110 x 0.98 = 107.8
        bar(3, 108.0, 109.0, 107.0, 108.0),  # low 107 <= 107.8: out at the level
    )
    _, events = run(minutes, {0: Order.buy(units=1.0, trailing_stop_pct=2.0)})

    [trade] = trades(events)
    assert (trade.exit_reason, trade.exit_time_ms) == (ExitReason.TRAILING_STOP, at(3))
    assert trade.exit_price == pytest.approx(110.0 * 0.98, rel=1e-15)


def test_a_trailing_stop_never_moves_down() -> None:
    minutes = entered_long(
        bar(2, 100.0, 110.0, 100.0, 109.0),  # stop -> 107.8
        bar(3, 109.0, 109.5, 108.0, 108.5),  # a lower high: the stop stays at 107.8
        bar(4, 108.0, 108.0, 107.5, 107.6),
    )
    _, events = run(minutes, {0: Order.buy(units=1.0, trailing_stop_pct=2.0)})

    [trade] = trades(events)
    assert trade.exit_time_ms == at(4)
    assert trade.exit_price == pytest.approx(107.8, rel=1e-15)


@pytest.mark.parametrize(
    ("minute", "reason", "price"),
    [
        (bar(2, 101.0, 104.0, 100.0, 103.0), ExitReason.STOP_LOSS, 103.0),  # above for a short
        (bar(2, 105.0, 106.0, 104.0, 105.0), ExitReason.STOP_LOSS, 105.0),  # a gap up: the open
        (bar(2, 99.0, 100.0, 93.0, 94.0), ExitReason.TAKE_PROFIT, 94.0),  # below for a short
        (bar(2, 100.0, 110.0, 90.0, 100.0), ExitReason.STOP_LOSS, 103.0),  # both: the stop
    ],
    ids=["stop", "stop-gap", "target", "both-means-stop"],
)
def test_a_short_bracket_is_the_mirror_image(minute: Bar, reason: ExitReason, price: float) -> None:
    engine, events = run(
        entered_long(minute),
        {0: Order.sell(units=1.0, stop_loss_pct=3.0, take_profit_pct=6.0)},
        SHORTS,
    )

    [trade] = trades(events)
    assert (trade.exit_reason, trade.direction.value) == (reason, "short")
    assert trade.exit_price == pytest.approx(price, rel=1e-15)
    assert fills(events)[-1].side is Side.BUY
    assert engine.position.size == 0.0


def test_a_short_trailing_stop_follows_the_low() -> None:
    minutes = entered_long(
        bar(2, 92.0, 93.0, 90.0, 91.0),  # high 93 < 102; afterwards the stop is 90 x 1.02
        bar(3, 91.0, 92.0, 90.5, 91.5),  # high 92 < 91.8? no: 92 >= 91.8 -> out at 91.8
    )
    _, events = run(minutes, {0: Order.sell(units=1.0, trailing_stop_pct=2.0)}, SHORTS)

    [trade] = trades(events)
    assert (trade.exit_reason, trade.exit_time_ms) == (ExitReason.TRAILING_STOP, at(3))
    assert trade.exit_price == pytest.approx(90.0 * 1.02, rel=1e-15)


def test_the_strategys_stop_loss_parameter_brackets_an_order_without_its_own() -> None:
    minutes = entered_long(bar(2, 99.0, 100.0, 95.0, 96.0))
    _, events = run(minutes, {0: Order.buy(units=1.0)}, stop_loss_pct=2.0)

    [trade] = trades(events)
    assert (trade.exit_reason, trade.exit_price) == (ExitReason.STOP_LOSS, 98.0)


def test_zero_turns_the_strategys_stop_off_for_one_order() -> None:
    minutes = entered_long(bar(2, 99.0, 100.0, 95.0, 96.0))
    engine, events = run(minutes, {0: Order.buy(units=1.0, stop_loss_pct=0.0)}, stop_loss_pct=2.0)

    assert trades(events) == []
    assert engine.position.size == 1.0


@pytest.mark.parametrize(
    ("later", "reason", "price"),
    [
        # Entry 100: stop loss 97 is above the trail's 95, so the stop loss is the level.
        ([bar(2, 99.0, 100.0, 96.0, 97.0)], ExitReason.STOP_LOSS, 97.0),
        # After a high of 110 the trail (104.5) is above 97: the trailing stop is the level.
        (
            [bar(2, 100.0, 110.0, 100.0, 109.0), bar(3, 106.0, 106.0, 104.0, 105.0)],
            ExitReason.TRAILING_STOP,
            104.5,
        ),
    ],
    ids=["stop-loss-above-the-trail", "trail-above-the-stop-loss"],
)
def test_with_a_stop_loss_and_a_trailing_stop_the_exit_names_the_level_that_was_hit(
    later: list[Bar], reason: ExitReason, price: float
) -> None:
    order = Order.buy(units=1.0, stop_loss_pct=3.0, trailing_stop_pct=5.0)
    _, events = run(entered_long(*later), {0: order})

    [trade] = trades(events)
    assert trade.exit_reason is reason
    assert trade.exit_price == pytest.approx(price, rel=1e-15)


@pytest.mark.parametrize(
    ("entry", "minute", "reason", "price"),
    [
        # A buy limit at 95 fills on the way down to 90: the 2% stop (93.1) is hit after it.
        (
            Order.buy(units=1.0, limit=95.0, stop_loss_pct=2.0),
            bar(1, 99.0, 99.0, 90.0, 91.0),
            ExitReason.STOP_LOSS,
            95.0 * 0.98,
        ),
        # It opens below the limit (fills at the open, 94): the stop is at 94 x 0.98, not the open.
        (
            Order.buy(units=1.0, limit=95.0, stop_loss_pct=2.0),
            bar(1, 94.0, 94.5, 90.0, 91.0),
            ExitReason.STOP_LOSS,
            94.0 * 0.98,
        ),
        # A buy stop at 105 with a 1% stop: assumed stopped out at 103.95, not at the open.
        (
            Order.buy(units=1.0, stop=105.0, stop_loss_pct=1.0),
            bar(1, 101.0, 106.0, 100.0, 101.0),
            ExitReason.STOP_LOSS,
            105.0 * 0.99,
        ),
        # A short by a sell limit at 105 with a 2% trailing stop: the high 110 came after it.
        (
            Order.sell(units=1.0, limit=105.0, trailing_stop_pct=2.0),
            bar(1, 101.0, 110.0, 100.0, 109.0),
            ExitReason.TRAILING_STOP,
            105.0 * 1.02,
        ),
    ],
    ids=["limit", "limit-gap", "stop-entry", "short-trailing"],
)
def test_a_resting_entrys_stop_is_checked_in_the_minute_it_fills(
    entry: Order, minute: Bar, reason: ExitReason, price: float
) -> None:
    engine, events = run([flat(0, 100.0), minute], {0: entry}, SHORTS)

    [trade] = trades(events)
    assert (trade.exit_reason, trade.exit_time_ms, trade.entry_time_ms) == (reason, at(1), at(1))
    assert trade.exit_price == pytest.approx(price, rel=1e-15)
    assert engine.position.size == 0.0


def test_a_resting_entrys_target_is_not_credited_in_the_minute_it_fills() -> None:
    # The high (110) may have come before the fill at 95: no take profit in that minute.
    minute = bar(1, 99.0, 110.0, 94.0, 96.0)
    engine, events = run(
        [flat(0, 100.0), minute], {0: Order.buy(units=1.0, limit=95.0, take_profit_pct=3.0)}
    )

    assert trades(events) == []
    assert engine.position.size == 1.0


def test_a_resting_fill_that_keeps_the_levels_does_not_recheck_a_trail_moved_this_minute() -> None:
    # Long 2 from 100 with a 2% trail; minute 2's high moves the trail to 107.8 after the
    # minute, so its low of 107 must not trigger it, even though a sell limit fills in it.
    minutes = entered_long(bar(2, 108.0, 110.0, 107.0, 109.0))
    engine, events = run(
        minutes,
        {0: Order.buy(units=2.0, trailing_stop_pct=2.0), 1: Order.sell(units=1.0, limit=109.5)},
    )

    [trade] = trades(events)
    assert (trade.exit_reason, trade.size, trade.exit_price) == (ExitReason.LIMIT, 1.0, 109.5)
    assert engine.position.size == 1.0
