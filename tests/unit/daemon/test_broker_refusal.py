"""The broker never books a non-finite fill: the order is refused and the strategy halted."""

from __future__ import annotations

import logging
import math

import pytest

from barbus.daemon.core.account import Account, Position
from barbus.daemon.core.broker import ExecutionConfig, OrderRejectedError, PaperBroker
from barbus.daemon.core.bus import EventBus
from barbus.daemon.core.engine import StrategyEngine
from barbus.daemon.core.events import ExitReason, Signal
from tests.factories import T0_MS, Scripted, ScriptParams, make_bar

MINUTE = 60_000


def engine_on_bus(script: dict[int, Signal]) -> tuple[StrategyEngine, EventBus]:
    engine = StrategyEngine(Scripted(ScriptParams(), script), "BTCUSDT", ExecutionConfig())
    bus = EventBus()
    bus.subscribe(engine.name, ["BTCUSDT"], ["1m"], engine.on_bar)
    return engine, bus


def test_sell_at_1e307_with_a_position_open_is_refused_and_the_strategy_halted_in_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine, bus = engine_on_bus({T0_MS: Signal.BUY, T0_MS + MINUTE: Signal.SELL})
    bus.publish(make_bar(100.0, minute=0))
    bus.publish(make_bar(100.0, minute=1))  # the buy fills at this open: ~99.9 units
    before = {**engine.position.snapshot(), "cash": engine.account.cash}
    assert before["size"] > 1.0

    with caplog.at_level(logging.ERROR, logger="barbus.bus"):
        bus.publish(make_bar(1e307, minute=2, open=1e307, high=1e307))  # the sell fills here

    assert engine.name in bus.halted
    assert "OrderRejectedError" in bus.halted[engine.name]
    assert bus.errors[engine.name] == 1
    # Nothing of the refused order was booked: the account is the last good one, finite.
    assert {**engine.position.snapshot(), "cash": engine.account.cash} == before
    assert all(math.isfinite(v) for v in before.values())
    assert engine.fills == 1
    assert engine.trades == []
    [record] = caplog.records
    assert record.exc_info is None  # one line, no traceback
    assert "halted" in record.getMessage()
    assert "refused" in record.getMessage()


@pytest.mark.parametrize("price", [math.inf, math.nan, 0.0, -5.0, 1e308 * 10])
def test_buy_at_a_non_finite_or_non_positive_price_is_refused(price: float) -> None:
    broker = PaperBroker(10.0, 5.0)

    with pytest.raises(OrderRejectedError, match="buy of BTCUSDT refused"):
        broker.buy_all_in("s", "BTCUSDT", price, T0_MS, 10_000.0)


def test_sell_whose_proceeds_overflow_is_refused() -> None:
    broker = PaperBroker(10.0, 5.0)

    with pytest.raises(OrderRejectedError, match="not finite"):
        broker.sell("s", "BTCUSDT", 1e307, T0_MS, 100.0, ExitReason.SIGNAL)
    fill = broker.sell("s", "BTCUSDT", 1e300, T0_MS, 100.0, ExitReason.SIGNAL)
    assert math.isfinite(fill.price * fill.size + fill.fee)


def test_a_position_refuses_a_fill_that_would_make_cash_infinite() -> None:
    broker = PaperBroker(0.0, 0.0)
    account = Account("s", 1e308)
    position = Position()
    position.add(broker.buy_all_in("s", "BTCUSDT", 1.0, T0_MS, account.cash), account)
    account.cash = 1.7e308  # as if other proceeds had already piled up
    sell = broker.sell("s", "BTCUSDT", 1.0, T0_MS + MINUTE, position.size, ExitReason.SIGNAL)

    with pytest.raises(OrderRejectedError, match="cash would be inf"):
        position.reduce(sell, account)

    assert account.cash == 1.7e308
    assert position.size == 1e308
    assert position.trades == []


def test_replay_of_a_refused_order_ends_with_one_strategy_error_line() -> None:
    from barbus.daemon.core.errors import StrategyError
    from barbus.replay.runner import ReplayConfig, run_replay
    from tests.factories import series_from_bars

    bars = [make_bar(100.0, minute=m) for m in range(30)] + [
        make_bar(1e307, minute=m, open=1e307, high=1e307) for m in range(30, 60)
    ]
    config = ReplayConfig(
        strategy="random", params={"entry_probability": 1.0, "exit_probability": 1.0}
    )
    with pytest.raises(StrategyError, match="OrderRejectedError") as caught:
        run_replay(config, series=series_from_bars(bars))
    assert "\n" not in str(caught.value)
