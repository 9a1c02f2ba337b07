"""The example strategy ``examples/strategies/ema_cross.py``, loaded from a copy outside the
project as a user would: its signals are exactly the crosses of two plain pandas EMAs."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from barbus.daemon.core.errors import StrategyError
from barbus.daemon.core.events import Bar, Signal
from barbus.daemon.core.strategy import AnyStrategy
from barbus.replay.loader import load_bars
from barbus.strategies import create_strategy, resolve_strategy
from barbus.strategies.testing import check_strategy
from tests.factories import aggregate, bars_from_closes, bars_of

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "strategies" / "ema_cross.py"


@pytest.fixture
def ema_cross(tmp_path: Path) -> Iterator[type[AnyStrategy]]:
    """The class from a copy of the example in a folder of its own; sys.path/modules restored."""
    shutil.copy(EXAMPLE, tmp_path / "my_ema.py")
    path, modules = list(sys.path), set(sys.modules)
    yield resolve_strategy("my_ema.py:EmaCross", tmp_path).cls
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        del sys.modules[name]


def pandas_ema(close: pd.Series, period: int) -> pd.Series:
    """TA-Lib's EMA: NaN for period - 1 bars, the mean of the first period values, then
    ewm(adjust=False) with alpha = 2 / (period + 1)."""
    seeded = close.copy()
    seeded.iloc[: period - 1] = np.nan
    seeded.iloc[period - 1] = close.iloc[:period].mean()
    out = seeded.iloc[period - 1 :].ewm(alpha=2.0 / (period + 1), adjust=False).mean()
    return out.reindex(close.index)


def signals(strategy: AnyStrategy, bars: list[Bar]) -> list[tuple[int, Signal]]:
    """(0-based bar index, signal), flat all the time: the strategy ignores the position."""
    out = []
    for i, bar in enumerate(bars):
        signal = strategy.on_bar(bar, 0.0)
        if signal is not None:
            assert isinstance(signal, Signal)
            out.append((i, signal))
    return out


def test_name_parameters_and_warmup(ema_cross: type[AnyStrategy]) -> None:
    strategy = create_strategy(ema_cross)
    assert ema_cross.name == "ema_cross"
    assert strategy.params.as_dict() == {
        "timeframe": "1m", "stop_loss_pct": 0.0, "take_profit_pct": 0.0, "fast": 12, "slow": 26,
    }  # fmt: skip
    assert strategy.warmup_bars == 27
    with pytest.raises(StrategyError, match=r"fast must be >= 1, got 0"):
        create_strategy(ema_cross, {"fast": 0})
    with pytest.raises(StrategyError, match=r"slow \(12\) must be > fast \(12\)"):
        create_strategy(ema_cross, {"slow": 12})
    with pytest.raises(StrategyError, match=r"stop_loss_pct"):
        create_strategy(ema_cross, {"stop_loss_pct": -1.0})


def test_crosses_by_hand(ema_cross: type[AnyStrategy]) -> None:
    # fast=1 (the close itself), slow=2 (alpha 2/3, seeded with the mean of two closes):
    # bar 1: slow NaN. bar 2: 10 - 10 = 0. bar 3: 10 - 10 = 0, a tie is no cross. bar 4: slow
    # 10 + 2/3 * 3 = 12, diff +1 after 0: BUY. bar 5: slow 12 + 2/3 * (7 - 12) = 8.67, diff -1.67
    # after +1: SELL. bar 6: slow 8.67 + 2/3 * (8 - 8.67) = 8.22, diff -0.22: no cross.
    strategy = create_strategy(ema_cross, {"fast": 1, "slow": 2})
    bars = bars_from_closes([10.0, 10.0, 10.0, 13.0, 7.0, 8.0])
    assert signals(strategy, bars) == [(3, Signal.BUY), (4, Signal.SELL)]


def test_the_first_cross_can_come_at_warmup_bars(ema_cross: type[AnyStrategy]) -> None:
    # slow=2: warmup 3. bar 2: diff 0; bar 3: fast 13, slow 10 + 2/3 * 3 = 12: BUY at bar 3.
    strategy = create_strategy(ema_cross, {"fast": 1, "slow": 2})
    assert strategy.warmup_bars == 3
    assert signals(strategy, bars_from_closes([10.0, 10.0, 13.0])) == [(2, Signal.BUY)]


@pytest.mark.parametrize(("timeframe", "fast", "slow"), [("1m", 12, 26), ("15m", 5, 20)])
def test_signals_are_the_crosses_of_pandas_emas(
    ema_cross: type[AnyStrategy], btc_2025_path: Path, timeframe: str, fast: int, slow: int
) -> None:
    minutes = bars_of(load_bars(btc_2025_path))[:60_000]
    bars = minutes if timeframe == "1m" else aggregate(minutes, timeframe)[0]
    close = pd.Series([bar.close for bar in bars])
    diff = (pandas_ema(close, fast) - pandas_ema(close, slow)).to_numpy()
    prev = np.concatenate(([np.nan], diff[:-1]))
    up = np.flatnonzero((diff > 0) & (prev <= 0))
    down = np.flatnonzero((diff < 0) & (prev >= 0))
    expected = sorted([(int(i), Signal.BUY) for i in up] + [(int(i), Signal.SELL) for i in down])

    actual = signals(
        create_strategy(ema_cross, {"timeframe": timeframe, "fast": fast, "slow": slow}), bars
    )

    assert len(expected) > 50
    # Exact: pandas and the incremental EMA may differ in the last bits, but no cross on this data
    # is that close to a tie.
    assert actual == expected


def test_it_passes_the_contract(ema_cross: type[AnyStrategy]) -> None:
    assert check_strategy(ema_cross)
    assert check_strategy(ema_cross, {"fast": 3, "slow": 7, "timeframe": "5m"})
