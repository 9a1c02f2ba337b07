"""Accounting invariants of the engine under arbitrary bars, signals, fees and risk exits."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from barbus.daemon.core.broker import ExecutionConfig
from barbus.daemon.core.engine import StrategyEngine
from barbus.daemon.core.events import Bar, ExitReason, Signal
from barbus.daemon.core.orders import Cancel, Order
from barbus.daemon.core.session import Session
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


@st.composite
def order_decisions(draw: st.DrawFn, price: float) -> object:
    """One decision of any kind, priced around ``price``."""
    side = draw(st.sampled_from(["buy", "sell"]))
    make = Order.buy if side == "buy" else Order.sell
    size = draw(
        st.sampled_from(
            [{}, {"fraction": 0.3}, {"fraction": 1.0}, {"quote": 2_500.0}, {"units": 1.0}]
        )
    )
    kind = draw(st.sampled_from(["market", "limit", "stop"]))
    level = price * draw(st.floats(0.97, 1.03))
    priced = {} if kind == "market" else {kind: level}
    bracket = draw(
        st.sampled_from(
            [{}, {"stop_loss_pct": 2.0, "take_profit_pct": 3.0}, {"trailing_stop_pct": 1.5}]
        )
    )
    extra = {"good_for_bars": draw(st.integers(0, 3)), "tag": draw(st.sampled_from(["", "a"]))}
    choice = draw(st.integers(0, 9))
    if choice == 0:
        return Cancel(draw(st.sampled_from(["", "a"])))
    if choice == 1:
        return Order.target_position(draw(st.sampled_from([-0.5, 0.0, 0.5, 1.0])))
    return make(**size, **priced, **bracket, **extra)  # type: ignore[arg-type]


@st.composite
def order_scenarios(draw: st.DrawFn) -> tuple[list[Bar], dict[int, object], ExecutionConfig]:
    n = draw(st.integers(2, 80))
    price = draw(st.floats(1e-2, 1e5))
    bars, script = [], {}
    for minute in range(n):
        close = max(price * (1.0 + draw(st.floats(-0.05, 0.05))), 1e-6)
        wick = draw(st.floats(0.0, 0.03))
        bars.append(
            make_bar(
                close,
                minute=minute,
                open=price,
                high=max(price, close) * (1 + wick),
                low=min(price, close) * (1 - wick),
            )
        )
        if draw(st.booleans()):
            script[minute] = draw(order_decisions(close))
        price = close
    execution = ExecutionConfig(
        fee_bps=draw(st.sampled_from([0.0, 10.0])),
        slippage_bps=draw(st.sampled_from([0.0, 5.0])),
        maker_fee_bps=draw(st.sampled_from([None, 2.0])),
        allow_short=True,
    )
    return bars, script, execution


class _Orders(Scripted):
    def on_bar(self, bar: Bar, position: float) -> Any:
        self.seen.append((bar, position))
        return self.script.get(bar.open_time_ms)


@settings(max_examples=150, deadline=None)
@given(order_scenarios())
def test_books_balance_under_any_orders_shorts_and_brackets(
    scenario: tuple[list[Bar], dict[int, object], ExecutionConfig],
) -> None:
    bars, by_minute, execution = scenario
    script = {bars[m].open_time_ms: d for m, d in by_minute.items()}
    engine = StrategyEngine(_Orders(ScriptParams(), script), "BTCUSDT", execution)  # type: ignore[arg-type]
    start = execution.starting_cash
    for bar in bars:
        engine.on_bar(bar)
        account = engine.account
        assert math.isfinite(account.cash)
        # No leverage: while long or flat the free cash is the cash, and a buy never spends
        # more than that (a short's free cash may fall below 0 as the price rises: no
        # liquidation).
        if engine.position.size >= 0.0:
            assert account.cash >= -1e-9 * start
    engine.finish()

    assert engine.position.size == 0.0
    total = math.fsum(t.profit for t in engine.trades)
    assert math.isclose(engine.account.cash, start + total, rel_tol=1e-9, abs_tol=1e-9 * start)
    for trade in engine.trades:
        assert trade.entry_time_ms <= trade.exit_time_ms
        assert trade.size > 0.0
        assert trade.entry_fee >= 0.0
        assert trade.exit_fee >= 0.0


@st.composite
def shared_scenarios(
    draw: st.DrawFn,
) -> tuple[list[list[Bar]], list[dict[int, object]], list[bool], ExecutionConfig]:
    """Two symbols' minutes, a script per engine (three engines), arrival orders per minute."""
    n = draw(st.integers(2, 40))
    streams: list[list[Bar]] = []
    for symbol, start in (("BTCUSDT", 100.0), ("ETHUSDT", 10.0)):
        price, bars = start, []
        for minute in range(n):
            close = price * (1.0 + draw(st.floats(-0.04, 0.04)))
            wick = draw(st.floats(0.0, 0.02))
            bars.append(
                make_bar(
                    close,
                    minute=minute,
                    open=price,
                    high=max(price, close) * (1 + wick),
                    low=min(price, close) * (1 - wick),
                    symbol=symbol,
                )
            )
            price = close
        streams.append(bars)
    scripts = []
    for symbol_index in (0, 1, 0):
        script = {}
        for minute in range(n):
            if draw(st.integers(0, 2)) == 0:
                script[minute] = draw(order_decisions(streams[symbol_index][minute].close))
        scripts.append(script)
    flips = [draw(st.booleans()) for _ in range(n)]
    execution = ExecutionConfig(fee_bps=draw(st.sampled_from([0.0, 10.0])), slippage_bps=5.0)
    return streams, scripts, flips, execution


def _shared_run(
    streams: list[list[Bar]],
    scripts: list[dict[int, object]],
    flips: list[bool],
    execution: ExecutionConfig,
) -> tuple[str, float, list[float]]:
    session = Session()
    account = session.open_account("pool", 20_000.0, allow_short=True)
    engines = []
    for i, (symbol_index, script) in enumerate(zip((0, 1, 0), scripts, strict=True)):
        bars = streams[symbol_index]
        timed = {bars[m].open_time_ms: d for m, d in script.items()}
        engines.append(
            session.add(
                StrategyEngine(
                    _Orders(ScriptParams(), timed),  # type: ignore[arg-type]
                    bars[0].symbol,
                    execution,
                    name=f"e{i}",
                    account=account,
                )
            )
        )
    for minute, flip in enumerate(flips):
        pair = [streams[0][minute], streams[1][minute]]
        for bar in pair[::-1] if flip else pair:
            session.push(bar)
    session.finish()
    assert not session.bus.halted
    events = session.drain()
    text = repr(events)
    return text, account.cash, [math.fsum(t.profit for t in e.trades) for e in engines]


@settings(max_examples=60, deadline=None)
@given(shared_scenarios())
def test_a_shared_account_balances_and_ignores_the_arrival_order(
    scenario: tuple[list[list[Bar]], list[dict[int, object]], list[bool], ExecutionConfig],
) -> None:
    streams, scripts, flips, execution = scenario
    text, cash, profits = _shared_run(streams, scripts, flips, execution)
    same_text, same_cash, _ = _shared_run(streams, scripts, [False] * len(flips), execution)

    assert text == same_text
    assert cash == same_cash
    assert math.isclose(cash, 20_000.0 + math.fsum(profits), rel_tol=1e-9, abs_tol=1e-6)
