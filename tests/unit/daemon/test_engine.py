from __future__ import annotations

import json
from typing import Any

import pytest

from barbus.daemon.core.broker import ExecutionConfig
from barbus.daemon.core.bus import EventBus
from barbus.daemon.core.engine import StrategyEngine
from barbus.daemon.core.events import Bar, ExitReason, Fill, Signal
from tests.factories import T0_MS, Scripted, ScriptParams, bars_from_closes, make_bar

MINUTE = 60_000


def run(
    bars: list[Bar],
    script: dict[int, Signal],
    execution: ExecutionConfig | None = None,
    **params: Any,
) -> tuple[StrategyEngine, Scripted]:
    strategy = Scripted(ScriptParams(**params), script)
    engine = StrategyEngine(strategy, "BTCUSDT", execution or ExecutionConfig(), record_equity=True)
    bus = EventBus()
    bus.subscribe(engine.name, ["BTCUSDT"], ["1m"], engine.on_bar)
    for bar in bars:
        bus.publish(bar)
    engine.finish()
    assert not bus.halted
    return engine, strategy


def at(minute: int) -> int:
    return T0_MS + minute * MINUTE


def test_buy_fills_at_next_open_with_slippage_and_fee_then_sell_closes_round_trip() -> None:
    bars = [
        make_bar(100.0, minute=0),
        make_bar(110.0, minute=1, open=102.0),
        make_bar(120.0, minute=2, open=111.0),
        make_bar(121.0, minute=3, open=119.0),
    ]
    engine, _ = run(bars, {at(0): Signal.BUY, at(2): Signal.SELL})

    [trade] = engine.trades
    entry = 102.0 * 1.0005
    size = (10_000.0 / 1.001) / entry
    exit_price = 119.0 * 0.9995
    assert (trade.entry_time_ms, trade.exit_time_ms) == (at(1), at(3))
    assert trade.entry_price == pytest.approx(entry, rel=1e-15)
    assert trade.size == pytest.approx(size, rel=1e-15)
    assert trade.entry_fee == pytest.approx(10_000.0 / 1.001 * 0.001, rel=1e-12)
    assert trade.exit_fee == pytest.approx(size * exit_price * 0.001, rel=1e-12)
    expected_profit = size * (exit_price - entry) - trade.entry_fee - trade.exit_fee
    assert trade.profit == pytest.approx(expected_profit, rel=1e-12)
    assert trade.profit_pct == pytest.approx(100 * expected_profit / 10_000.0, rel=1e-9)
    assert trade.exit_reason is ExitReason.SIGNAL
    assert engine.account.cash == pytest.approx(10_000.0 + expected_profit, rel=1e-12)


def test_equity_is_marked_to_market_every_minute() -> None:
    bars = bars_from_closes([100.0, 100.0, 105.0, 95.0])
    engine, _ = run(bars, {at(0): Signal.BUY}, ExecutionConfig(fee_bps=0, slippage_bps=0))

    assert engine.equity_curve is not None
    size = 10_000.0 / 100.0
    assert engine.equity_curve[:3] == pytest.approx([10_000.0, 10_000.0, size * 105.0])
    assert (engine.bars, engine.bars_in_market) == (4, 3)
    assert engine.trades[-1].exit_reason is ExitReason.END_OF_DATA
    assert engine.trades[-1].exit_price == 95.0


def test_fill_at_close_fills_on_the_decision_bar_close_at_its_close_time() -> None:
    bars = bars_from_closes([100.0, 101.0, 102.0])
    engine, _ = run(
        bars,
        {at(0): Signal.BUY, at(1): Signal.SELL},
        ExecutionConfig(fee_bps=0, slippage_bps=0, fill_at="close"),
    )
    [trade] = engine.trades
    assert (trade.entry_price, trade.exit_price) == (100.0, 101.0)
    assert (trade.entry_time_ms, trade.exit_time_ms) == (at(1), at(2))


def test_redundant_signals_are_ignored() -> None:
    bars = bars_from_closes([100.0] * 6)
    engine, strategy = run(
        bars,
        {
            at(0): Signal.SELL,
            at(1): Signal.BUY,
            at(2): Signal.BUY,
            at(3): Signal.SELL,
            at(4): Signal.SELL,
        },
    )
    assert len(engine.trades) == 1
    assert [position > 0 for _, position in strategy.seen] == [
        False,
        False,
        True,
        True,
        False,
        False,
    ]


def test_stop_loss_exits_at_the_stop_level_with_slippage() -> None:
    bars = [
        make_bar(100.0, minute=0),
        make_bar(100.0, minute=1),
        make_bar(99.0, minute=2, open=100.0, low=96.0),
        make_bar(99.0, minute=3),
    ]
    engine, _ = run(
        bars, {at(0): Signal.BUY}, ExecutionConfig(fee_bps=0, slippage_bps=0), stop_loss_pct=3.0
    )
    [trade] = engine.trades
    assert trade.exit_reason is ExitReason.STOP_LOSS
    assert trade.exit_price == pytest.approx(97.0)
    assert trade.exit_time_ms == at(2)


def test_stop_loss_after_a_gap_down_fills_at_the_open() -> None:
    bars = [
        make_bar(100.0, minute=0),
        make_bar(100.0, minute=1),
        make_bar(90.0, minute=2, open=91.0, low=89.0),
    ]
    engine, _ = run(
        bars, {at(0): Signal.BUY}, ExecutionConfig(fee_bps=0, slippage_bps=10), stop_loss_pct=3.0
    )
    [trade] = engine.trades
    assert trade.exit_reason is ExitReason.STOP_LOSS
    assert trade.exit_price == pytest.approx(91.0 * 0.999)


def test_take_profit_and_stop_in_the_same_bar_assumes_the_stop_came_first() -> None:
    wide = make_bar(100.0, minute=2, open=100.0, low=90.0, high=110.0)
    engine, _ = run(
        [make_bar(100.0), make_bar(100.0, minute=1), wide],
        {at(0): Signal.BUY},
        ExecutionConfig(fee_bps=0, slippage_bps=0),
        stop_loss_pct=3.0,
        take_profit_pct=6.0,
    )
    assert engine.trades[0].exit_reason is ExitReason.STOP_LOSS


def test_take_profit_exits_at_target() -> None:
    bars = [
        make_bar(100.0),
        make_bar(100.0, minute=1),
        make_bar(104.0, minute=2, open=100.0, high=107.0),
        make_bar(104.0, minute=3),
    ]
    engine, _ = run(
        bars, {at(0): Signal.BUY}, ExecutionConfig(fee_bps=0, slippage_bps=0), take_profit_pct=6.0
    )
    [trade] = engine.trades
    assert trade.exit_reason is ExitReason.TAKE_PROFIT
    assert trade.exit_price == pytest.approx(106.0)


def test_higher_timeframe_decides_on_bucket_close_and_fills_next_minute() -> None:
    bars = bars_from_closes([100.0 + i for i in range(12)])
    engine, strategy = run(bars, {at(0): Signal.BUY}, timeframe="5m")

    assert [(b.interval, b.open_time_ms) for b, _ in strategy.seen] == [
        ("5m", at(0)),
        ("5m", at(5)),
    ]
    assert strategy.seen[0][0].close == 104.0
    assert engine.trades[0].entry_time_ms == at(5)


def test_late_bucket_decision_fills_at_the_open_of_the_minute_after_the_one_that_released_it() -> (
    None
):
    # Live, minute 6 has closed when it releases the bucket, so its open is a price from before
    # the decision: the order fills at minute 7's open.
    bars = bars_from_closes([100.0 + i for i in range(4)])  # minutes 0..3, minute 4 missing
    bars.append(make_bar(150.0, minute=6, open=149.0))
    bars.append(make_bar(151.0, minute=7, open=150.5))
    bars.append(make_bar(152.0, minute=8, open=151.0))
    engine, strategy = run(bars, {at(0): Signal.BUY}, timeframe="5m")
    assert strategy.seen[0][0].close == 103.0
    assert engine.trades[0].entry_time_ms == at(7)
    assert engine.trades[0].entry_price == 150.5 * (1.0 + 5.0 / 10_000.0)


def test_late_bucket_sell_after_a_late_buy_each_fill_one_minute_after_the_release() -> None:
    # Buckets 0-4 and 5-9 both miss their last minute: a late BUY filled at minute 7's open and
    # a late SELL released by minute 10 filled at minute 11's open, never at the releasing open.
    bars = bars_from_closes([100.0 + i for i in range(4)])  # minutes 0..3
    bars += [make_bar(110.0 + m, minute=m, open=109.0 + m) for m in (6, 7, 8)]
    bars += [make_bar(130.0 + m, minute=m, open=129.0 + m) for m in (10, 11, 12)]
    engine, _ = run(
        bars, {at(0): Signal.BUY, at(5): Signal.SELL}, ExecutionConfig(0.0, 0.0), timeframe="5m"
    )
    [trade] = engine.trades
    assert (trade.entry_time_ms, trade.entry_price) == (at(7), 116.0)
    assert (trade.exit_time_ms, trade.exit_price) == (at(11), 140.0)
    assert trade.exit_reason is ExitReason.SIGNAL


@pytest.mark.parametrize("fee_bps", [10.0, 0.0, 7.5])
def test_an_all_in_buy_leaves_exactly_zero_cash(fee_bps: float) -> None:
    # The old rounding: cash 10000, fee 10 bps, slippage 5 bps, open 28080.12 left
    # 10000 - (size * price + fee) = -1.8e-12 in the account. Every buy here must leave 0.0.
    leftovers = []
    for k in range(200):
        price = 28_080.12 + 0.37 * k
        cash = 10_000.0 + 13.1 * k
        strategy = Scripted(ScriptParams(), {at(0): Signal.BUY})
        engine = StrategyEngine(
            strategy, "BTCUSDT", ExecutionConfig(fee_bps, 5.0, "next_open", cash)
        )
        engine.on_bar(make_bar(price, minute=0))
        engine.on_bar(make_bar(price, minute=1, open=price))
        [fill] = [event for event in engine.drain() if isinstance(event, Fill)]
        assert engine.fills == 1
        leftovers.append(engine.account.cash)
        assert fill.fee >= 0.0
        # The fee is still fee_bps of the notional, to rounding (hand formula).
        notional = cash / (1.0 + fee_bps / 10_000.0)
        assert fill.fee == pytest.approx(notional * fee_bps / 10_000.0, rel=1e-9, abs=1e-9)
        assert fill.price == price * (1.0 + 5.0 / 10_000.0)
        assert fill.size * fill.price <= notional
    assert leftovers == [0.0] * 200


def test_order_pending_at_end_of_data_is_counted_not_filled() -> None:
    engine, _ = run(bars_from_closes([100.0, 101.0]), {at(1): Signal.BUY})
    assert engine.trades == []
    assert engine.unfilled_orders == 1


def test_engine_snapshot_restore_mid_run_gives_the_same_trades() -> None:
    closes = [100.0 + (i % 17) - (i % 5) for i in range(200)]
    bars = bars_from_closes(closes)
    script = {at(i): Signal.BUY if i % 11 == 0 else Signal.SELL for i in range(0, 200, 7)}
    whole, _ = run(bars, script, stop_loss_pct=2.0, timeframe="3m")

    execution = ExecutionConfig()
    first = StrategyEngine(
        Scripted(ScriptParams(timeframe="3m", stop_loss_pct=2.0), script), "BTCUSDT", execution
    )
    for bar in bars[:100]:
        first.on_bar(bar)
    state = json.loads(json.dumps(first.snapshot()))
    second = StrategyEngine(
        Scripted(ScriptParams(timeframe="3m", stop_loss_pct=2.0), script), "BTCUSDT", execution
    )
    second.restore(state)
    for bar in bars[100:]:
        second.on_bar(bar)
    second.finish()

    assert first.trades + second.trades == whole.trades
    assert second.account.cash == whole.account.cash
