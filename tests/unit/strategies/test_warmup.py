"""Warm-up API: ``ready`` and ``warmup_bars`` of the shipped strategies against hand arithmetic,
checked bar by bar on real data; plus the name/params_type defaults of ``__init_subclass__``."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import pytest

from barbus.daemon.core.events import Bar, Signal
from barbus.daemon.core.params import BaseParams, ParamValue
from barbus.daemon.core.strategy import Strategy, snake_case
from barbus.replay.loader import load_bars
from barbus.strategies import create_strategy
from barbus.strategies.indicators import ATR, EMA, RSI, SMA, BollingerBands, Supertrend, TrueRange
from tests.factories import bars_from_closes, bars_of, make_bar

# (strategy, overrides, indicators part = bar on which ``ready`` turns True, warmup_bars), by hand:
# sma_cross: the slow SMA is ready at bar ``slow``; a cross needs the previous bar too: slow + 1.
# bbrs: Bollinger ``bb_period``, RSI ``rsi_period + 1`` (changes start at bar 2), volume SMA
#   ``volume_period``: the largest; decisions on that same bar.
# metatrend: a Supertrend is ready with its ATR, ``period + 1`` (true ranges start at bar 2); the
#   first all-ready bar only sets the state, so the first change is one bar later.
# random: no indicators: ready from the start, may decide on bar 1.
CASES: list[tuple[str, dict[str, ParamValue], int, int]] = [
    ("sma_cross", {"fast": 3, "slow": 5}, 5, 6),
    ("sma_cross", {}, 30, 31),
    ("sma_cross", {"fast": 1, "slow": 2}, 2, 3),
    ("sma_cross", {"fast": 50, "slow": 200}, 200, 201),
    ("bbrs", {}, 20, 20),
    ("bbrs", {"bb_period": 10, "rsi_period": 14, "volume_period": 5}, 15, 15),
    ("bbrs", {"bb_period": 30, "rsi_period": 7, "volume_period": 40}, 40, 40),
    ("bbrs", {"bb_period": 2, "rsi_period": 2, "volume_period": 2}, 3, 3),
    ("metatrend", {}, 13, 14),
    ("metatrend", {"period_1": 3, "period_2": 30, "period_3": 7}, 31, 32),
    ("metatrend", {"period_1": 1, "period_2": 1, "period_3": 1}, 2, 3),
    ("random", {}, 0, 1),
    ("random", {"entry_probability": 1.0, "exit_probability": 1.0}, 0, 1),
]


@pytest.fixture(scope="module")
def minutes(btc_2025_path: Path) -> list[Bar]:
    return bars_of(load_bars(btc_2025_path))[:3000]


def first_signal_bar(strategy: Strategy[Any], bars: list[Bar]) -> int | None:
    """The 1-based number of the first bar with a decision (position tracked like the engine)."""
    position = 0.0
    for number, bar in enumerate(bars, start=1):
        signal = strategy.on_bar(bar, position)
        if signal is not None:
            return number
        position = 1.0 if signal is Signal.BUY else position
    return None


@pytest.mark.parametrize(("name", "overrides", "ready_at", "warmup"), CASES)
def test_ready_turns_true_at_the_indicators_part_and_no_decision_before_warmup_bars(
    minutes: list[Bar], name: str, overrides: dict[str, ParamValue], ready_at: int, warmup: int
) -> None:
    strategy = create_strategy(name, overrides)
    assert strategy.warmup_bars == warmup
    assert strategy.ready is (ready_at == 0)
    position = 0.0
    decisions = []
    for number, bar in enumerate(minutes, start=1):
        signal = strategy.on_bar(bar, position)
        assert strategy.ready is (number >= ready_at), f"ready wrong after bar {number}"
        if signal is not None:
            decisions.append(number)
            position = 1.0 if signal is Signal.BUY else 0.0
    assert decisions, "the series should produce decisions"
    assert min(decisions) >= warmup
    assert ready_at <= warmup  # feeding warmup_bars bars leaves the strategy ready


def test_sma_cross_can_decide_exactly_at_warmup_bars() -> None:
    # fast=3, slow=5: bars 1..5 flat at 10 (diff 0 at bar 5), bar 6 jumps to 20: fast 40/3 > slow 12
    strategy = create_strategy("sma_cross", {"fast": 3, "slow": 5})
    assert strategy.warmup_bars == 6
    assert first_signal_bar(strategy, bars_from_closes([10.0] * 5 + [20.0])) == 6


def test_metatrend_can_decide_exactly_at_warmup_bars() -> None:
    # periods 1: each Supertrend is ready at bar 2 (ATR = true range 2, lower bands 10 - 2m = 8, 8,
    # 6 for m = 1, 1, 2), meta starts at +1; bar 3 closes at 4, below every lower band: SELL.
    strategy = create_strategy(
        "metatrend",
        {"period_1": 1, "period_2": 1, "period_3": 1, "multiplier_1": 1.0, "multiplier_3": 2.0},
    )
    bars = [make_bar(10.0, minute=i, high=11.0, low=9.0) for i in range(2)]
    bars.append(make_bar(4.0, minute=2, open=5.0, high=5.0, low=3.0))
    assert strategy.warmup_bars == 3
    assert first_signal_bar(strategy, bars) == 3


def test_bbrs_can_decide_exactly_at_warmup_bars() -> None:
    # periods 2, warmup 3. Bar 3: closes 12 -> 10: middle 11, std 1, bands at 1 sigma: close 10 is
    # on the lower band; RSI(2) = 0 (only a loss); volume 10 > 1.5 * (1 + 10) / 2 = 8.25; bandwidth
    # at 2 sigma 4 / 11 > 0.05 is trending: trending_std 1 and trending_rsi_low 30: BUY.
    strategy = create_strategy(
        "bbrs",
        {"bb_period": 2, "rsi_period": 2, "volume_period": 2, "trending_std": 1.0},
    )
    bars = [
        make_bar(12.0, minute=0, volume=1.0),
        make_bar(12.0, minute=1, volume=1.0),
        make_bar(10.0, minute=2, volume=10.0),
    ]
    assert strategy.warmup_bars == 3
    assert first_signal_bar(strategy, bars) == 3


def test_random_can_decide_on_the_first_bar() -> None:
    strategy = create_strategy("random", {"entry_probability": 1.0})
    assert (strategy.warmup_bars, strategy.ready) == (1, True)
    assert first_signal_bar(strategy, [make_bar()]) == 1


@pytest.mark.parametrize(
    ("indicator", "warmup"),
    [
        (SMA(7), 7),
        (EMA(9), 9),
        (RSI(14), 15),
        (TrueRange(), 2),
        (ATR(5), 6),
        (ATR(5, "sma"), 6),
        (BollingerBands(20), 20),
        (Supertrend(10, 3.0), 11),
        (Supertrend(4, 1.0, atr_smoothing="wilder"), 5),
    ],
)
def test_indicator_warmup_is_the_update_on_which_ready_turns_true(
    indicator: Any, warmup: int
) -> None:
    assert indicator.warmup == warmup
    for number in range(1, warmup + 3):
        price = 100.0 + (number % 3)
        if hasattr(indicator, "update_hlc"):
            indicator.update_hlc(price + 1.0, price - 1.0, price)
        else:
            indicator.update(price)
        assert indicator.ready is (number >= warmup), number


def test_strategy_warmup_properties_are_read_only() -> None:
    strategy = create_strategy("sma_cross")
    with pytest.raises(AttributeError):
        strategy.warmup_bars = 3  # type: ignore[misc]
    with pytest.raises(AttributeError):
        strategy.ready = True  # type: ignore[misc]


@pytest.mark.parametrize(
    ("class_name", "expected"),
    [
        ("EmaCross", "ema_cross"),
        ("MyRSIStrategy", "my_rsi_strategy"),
        ("Breakout2", "breakout2"),
        ("A", "a"),
        ("HTTPFeedTest", "http_feed_test"),
    ],
)
def test_snake_case(class_name: str, expected: str) -> None:
    assert snake_case(class_name) == expected


def test_a_class_without_name_or_params_type_gets_defaults() -> None:
    class EmaCross(Strategy[BaseParams]):
        def on_bar(self, bar: Bar, position: float) -> Signal | None:
            return None

        def snapshot(self) -> dict[str, Any]:
            return {}

        def restore(self, state: dict[str, Any]) -> None:
            pass

    @dataclasses.dataclass(frozen=True)
    class Named(BaseParams):
        window: int = 3

    class Custom(EmaCross):
        name: ClassVar[str] = "custom"
        params_type: ClassVar[type[BaseParams]] = Named

    class Child(Custom):
        pass

    assert (EmaCross.name, EmaCross.params_type) == ("ema_cross", BaseParams)
    assert (Custom.name, Custom.params_type) == ("custom", Named)
    # a subclass is another strategy (its own name) with its parent's parameters
    assert (Child.name, Child.params_type) == ("child", Named)
    assert create_strategy("sma_cross").name == "sma_cross"
    assert create_strategy("random").name == "random"
