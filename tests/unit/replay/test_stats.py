"""compute_stats against hand-computed figures and an independent pandas formula."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest

from daemon.events import ExitReason, Trade
from replay.stats import BARS_PER_YEAR_1M, PerformanceStats, compute_stats

T0_MS = 1_747_699_200_000


def curve(*values: float) -> npt.NDArray[np.float64]:
    return np.array(values, dtype=np.float64)


def make_trade(profit: float, minute: int = 0) -> Trade:
    """A closed round trip whose only relevant figure is ``profit``."""
    return Trade(
        strategy="test",
        symbol="BTCUSDT",
        entry_time_ms=T0_MS + minute * 60_000,
        exit_time_ms=T0_MS + (minute + 1) * 60_000,
        entry_price=100.0,
        exit_price=100.0 + profit,
        size=1.0,
        entry_fee=0.0,
        exit_fee=0.0,
        profit=profit,
        profit_pct=profit,
        exit_reason=ExitReason.SIGNAL,
    )


def stats_of(
    equity: npt.NDArray[np.float64],
    trades: Sequence[Trade] = (),
    *,
    first_open: float = 100.0,
    last_close: float = 100.0,
    bars_in_market: int = 0,
    bars_per_year: int = BARS_PER_YEAR_1M,
) -> PerformanceStats:
    return compute_stats(
        equity,
        trades,
        first_open=first_open,
        last_close=last_close,
        bars_in_market=bars_in_market,
        bars_per_year=bars_per_year,
    )


# --------------------------------------------------------------------------------------------
# hand-computed values


def test_max_drawdown_of_rise_fall_recovery_is_25_percent() -> None:
    # Peak 120, trough 90: 30 / 120 = 25 %; the later new high does not erase it.
    stats = stats_of(curve(100.0, 120.0, 90.0, 130.0))

    assert stats.max_drawdown_pct == pytest.approx(25.0, rel=1e-15)
    assert stats.total_return_pct == pytest.approx(30.0, rel=1e-14)
    assert stats.final_equity == 130.0


def test_max_drawdown_takes_the_deepest_of_several_dips() -> None:
    # Dips: 110 -> 99 (10 %), 200 -> 150 (25 %), 150 -> 180 no dip, 180 -> 170 (vs peak 200: 15 %).
    stats = stats_of(curve(100.0, 110.0, 99.0, 200.0, 150.0, 180.0, 170.0))

    assert stats.max_drawdown_pct == pytest.approx(25.0, rel=1e-14)


def test_max_drawdown_from_the_starting_cash_counts() -> None:
    stats = stats_of(curve(100.0, 50.0, 75.0))

    assert stats.max_drawdown_pct == pytest.approx(50.0, rel=1e-15)
    assert stats.total_return_pct == pytest.approx(-25.0, rel=1e-14)


def test_rising_curve_has_no_drawdown() -> None:
    assert stats_of(curve(100.0, 101.0, 101.0, 105.0)).max_drawdown_pct == 0.0


def test_flat_curve_has_zero_sharpe_drawdown_and_return() -> None:
    stats = stats_of(curve(*([10_000.0] * 50)))

    assert stats.sharpe == 0.0
    assert stats.max_drawdown_pct == 0.0
    assert stats.total_return_pct == 0.0
    assert stats.final_equity == 10_000.0


def test_sharpe_of_three_known_returns_matches_hand_computation() -> None:
    # Returns +10 %, +10 %, -10 %: mean 1/30, sample std 0.2/sqrt(3), so mean/std = sqrt(3)/6;
    # annualised with 4 bars a year (sqrt 2) that is sqrt(3)/3.
    stats = stats_of(curve(100.0, 110.0, 121.0, 108.9), bars_per_year=4)

    assert stats.sharpe == pytest.approx(math.sqrt(3.0) / 3.0, rel=1e-12)


def test_sharpe_is_annualised_by_root_of_a_24_7_minute_year() -> None:
    equity = curve(100.0, 110.0, 121.0, 108.9)

    per_bar = stats_of(equity, bars_per_year=1).sharpe
    default = stats_of(equity).sharpe

    assert BARS_PER_YEAR_1M == 525_600
    assert default == pytest.approx(per_bar * math.sqrt(525_600), rel=1e-12)


def test_sharpe_is_negative_for_a_losing_curve() -> None:
    assert stats_of(curve(100.0, 99.0, 97.0, 98.0, 95.0)).sharpe < 0.0


def test_sharpe_needs_two_returns() -> None:
    # One bar: one return, no sample standard deviation.
    assert stats_of(curve(100.0, 120.0)).sharpe == 0.0


def test_win_rate_counts_only_strictly_profitable_trades() -> None:
    trades = [make_trade(10.0), make_trade(-5.0), make_trade(0.0), make_trade(3.0, minute=5)]

    stats = stats_of(curve(100.0, 101.0, 102.0), trades)

    assert stats.trades == 4
    assert stats.win_rate_pct == pytest.approx(50.0, rel=1e-15)


def test_win_rate_of_three_winners_in_three_is_100_percent() -> None:
    stats = stats_of(curve(100.0, 101.0), [make_trade(1.0), make_trade(2.0), make_trade(0.5)])

    assert stats.win_rate_pct == 100.0


def test_no_trades_gives_zero_trades_and_zero_win_rate() -> None:
    stats = stats_of(curve(100.0, 101.0, 99.0))

    assert stats.trades == 0
    assert stats.win_rate_pct == 0.0


def test_exposure_is_bars_in_market_over_bars() -> None:
    # Five marks after the starting cash = five bars; three of them in the market.
    stats = stats_of(curve(100.0, 100.0, 101.0, 102.0, 101.0, 101.0), bars_in_market=3)

    assert stats.exposure_pct == pytest.approx(60.0, rel=1e-15)


def test_buy_and_hold_is_last_close_over_first_open() -> None:
    stats = stats_of(curve(100.0, 100.0, 100.0), first_open=80.0, last_close=100.0)

    assert stats.buy_and_hold_return_pct == pytest.approx(25.0, rel=1e-14)


def test_buy_and_hold_loss_is_negative() -> None:
    stats = stats_of(curve(100.0, 100.0), first_open=200.0, last_close=150.0)

    assert stats.buy_and_hold_return_pct == pytest.approx(-25.0, rel=1e-14)


def test_curve_without_bars_gives_all_zero_figures() -> None:
    stats = stats_of(curve(10_000.0), first_open=80.0, last_close=100.0, bars_in_market=0)

    assert stats == PerformanceStats(
        total_return_pct=0.0,
        buy_and_hold_return_pct=0.0,
        max_drawdown_pct=0.0,
        sharpe=0.0,
        trades=0,
        win_rate_pct=0.0,
        exposure_pct=0.0,
        final_equity=10_000.0,
    )


# --------------------------------------------------------------------------------------------
# an independent pandas formula on a random curve


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sharpe_and_drawdown_match_pandas_on_a_random_curve(seed: int) -> None:
    rng = np.random.default_rng(seed)
    equity = 10_000.0 * np.exp(np.cumsum(rng.normal(2e-4, 3e-3, 5_000)))
    equity = np.concatenate(([10_000.0], equity))
    frame = pd.Series(equity)

    returns = frame.pct_change().dropna()
    expected_sharpe = returns.mean() / returns.std() * math.sqrt(BARS_PER_YEAR_1M)
    expected_drawdown = 100.0 * (1.0 - frame / frame.cummax()).max()
    expected_return = 100.0 * (frame.iloc[-1] / frame.iloc[0] - 1.0)

    stats = stats_of(equity)

    assert expected_drawdown > 1.0  # the curve really has a drawdown to measure
    assert stats.sharpe == pytest.approx(expected_sharpe, rel=1e-12)
    assert stats.max_drawdown_pct == pytest.approx(expected_drawdown, rel=1e-12)
    assert stats.total_return_pct == pytest.approx(expected_return, rel=1e-12)
