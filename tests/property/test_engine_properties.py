"""Accounting invariants of the engine under arbitrary bars, signals, fees and risk exits."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from barbus.daemon.core.broker import ExecutionConfig
from barbus.daemon.core.engine import StrategyEngine
from barbus.daemon.core.events import Bar, ExitReason, Signal
from tests.factories import Scripted, ScriptParams, make_bar

Scenario = tuple[list[Bar], dict[int, Signal], ExecutionConfig, dict[str, Any]]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    n = draw(st.integers(2, 120))
    price = draw(st.floats(1e-4, 1e6))
    bars, script = [], {}
    minute = 0
    for _ in range(n):
        minute += draw(st.integers(1, 3))  # gaps included
        move = draw(st.floats(-0.2, 0.2))
        close = max(price * (1.0 + move), 1e-9)
        wick = draw(st.floats(0.0, 0.05))
        bar = make_bar(
            close,
            minute=minute,
            open=price,
            high=max(price, close) * (1 + wick),
            low=min(price, close) * (1 - wick),
        )
        bars.append(bar)
        signal = draw(st.sampled_from([None, None, Signal.BUY, Signal.SELL]))
        if signal is not None:
            script[bar.open_time_ms] = signal
        price = close
    execution = ExecutionConfig(
        fee_bps=draw(st.sampled_from([0.0, 10.0, 75.0])),
        slippage_bps=draw(st.sampled_from([0.0, 5.0])),
        fill_at=draw(st.sampled_from(["next_open", "close"])),
    )
    params = {
        "timeframe": draw(st.sampled_from(["1m", "3m"])),
        "stop_loss_pct": draw(st.sampled_from([0.0, 3.0])),
        "take_profit_pct": draw(st.sampled_from([0.0, 6.0])),
    }
    return bars, script, execution, params


@settings(max_examples=100)
@given(scenarios())
def test_books_balance_whatever_the_bars_and_signals(scenario: Scenario) -> None:
    bars, script, execution, params = scenario
    engine = StrategyEngine(
        Scripted(ScriptParams(**params), script), "BTCUSDT", execution, record_equity=True
    )
    for bar in bars:
        engine.on_bar(bar)
        assert engine.account.cash >= -1e-9 * execution.starting_cash
        assert engine.position.size >= 0.0
    engine.finish()

    assert engine.position.size == 0.0
    total_profit = math.fsum(t.profit for t in engine.trades)
    assert math.isclose(engine.account.cash, execution.starting_cash + total_profit, rel_tol=1e-9)
    assert engine.equity_curve is not None
    assert math.isclose(engine.equity_curve[-1], engine.account.cash, rel_tol=1e-12)
    for before, after in zip(engine.trades, engine.trades[1:], strict=False):
        assert before.exit_time_ms <= after.entry_time_ms
    for trade in engine.trades:
        assert trade.entry_time_ms <= trade.exit_time_ms
        if trade.exit_reason is ExitReason.END_OF_DATA:
            assert trade is engine.trades[-1]
        if execution.fee_bps == 0.0:
            assert trade.entry_fee == trade.exit_fee == 0.0
