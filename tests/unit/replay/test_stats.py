"""compute_stats against hand-computed figures and an independent pandas formula, alone and
through a real replay's summary.json and report."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import empyrical
import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest

from barbus.daemon.core.events import ExitReason, Trade, parse_utc_ms
from barbus.replay.outputs import format_report, write_outputs
from barbus.replay.runner import ReplayConfig, run_replay
from barbus.replay.stats import (
    DAY_MS,
    LOWER_IS_BETTER,
    PerformanceStats,
    compute_stats,
    daily_returns,
    lower_is_better,
)

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


def minute_marks(n: int, step_ms: int = 60_000) -> npt.NDArray[np.int64]:
    """Mark times of a curve of ``n`` values: the start, then one bar close per ``step_ms``."""
    return T0_MS + step_ms * np.arange(n, dtype=np.int64)


def daily(*values: float) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """A curve with one mark per UTC day close: the start at T0 (a midnight), then day ends."""
    return curve(*values), minute_marks(len(values), DAY_MS)


def stats_of(
    equity: npt.NDArray[np.float64],
    trades: Sequence[Trade] = (),
    *,
    first_open: float = 100.0,
    last_close: float = 100.0,
    bars_in_market: int = 0,
    mark_ms: npt.NDArray[np.int64] | None = None,
) -> PerformanceStats:
    return compute_stats(
        equity,
        trades,
        first_open=first_open,
        last_close=last_close,
        bars_in_market=bars_in_market,
        mark_ms=minute_marks(len(equity)) if mark_ms is None else mark_ms,
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
    equity = curve(*([10_000.0] * 50))
    stats = stats_of(equity, mark_ms=minute_marks(50, DAY_MS))

    assert stats.sharpe == 0.0
    assert stats.sortino == 0.0
    assert stats.cagr_pct == 0.0
    assert stats.calmar is None  # no drawdown to divide by
    assert stats.max_drawdown_pct == 0.0
    assert stats.max_drawdown_days == 0.0
    assert stats.total_return_pct == 0.0
    assert stats.final_equity == 10_000.0


def test_sharpe_and_sortino_of_three_known_daily_returns_match_hand_computation() -> None:
    # Day returns +10 %, +10 %, -10 %: mean 1/30, sample std 0.2/sqrt(3), so mean/std =
    # sqrt(3)/6; downside deviation sqrt(0.01/3) = 0.1/sqrt(3), so mean/dd = sqrt(3)/3.
    equity, marks = daily(100.0, 110.0, 121.0, 108.9)
    stats = stats_of(equity, mark_ms=marks)

    assert stats.days == 3
    assert stats.sharpe == pytest.approx(math.sqrt(3.0) / 6.0 * math.sqrt(365.0), rel=1e-12)
    assert stats.sortino == pytest.approx(math.sqrt(3.0) / 3.0 * math.sqrt(365.0), rel=1e-12)


def test_minute_marks_of_one_day_collapse_into_one_daily_return() -> None:
    # 1440 minutes of day 1 end at 110, day 2's end at 99 (marks at each bar's close, the last
    # of a day at the next midnight): two daily returns, +10 % and -10 %, whatever happens inside.
    rng = np.random.default_rng(7)
    day1 = 100.0 + rng.uniform(-5.0, 5.0, 1440)
    day2 = 100.0 + rng.uniform(-5.0, 5.0, 1440)
    day1[-1], day2[-1] = 110.0, 99.0
    equity = np.concatenate(([100.0], day1, day2))

    returns = daily_returns(equity, minute_marks(len(equity)))

    np.testing.assert_allclose(returns, [0.1, -0.1], rtol=1e-12)
    # mean 0, so both ratios are exactly 0 (not undefined: the std is positive)
    assert stats_of(equity).sharpe == pytest.approx(0.0, abs=1e-12)


def test_a_day_without_bars_counts_as_a_zero_return_day() -> None:
    # Closes on day 1 and day 3; day 2 has no bar: its close is day 1's.
    equity = curve(100.0, 110.0, 121.0)
    marks = np.array([T0_MS, T0_MS + DAY_MS, T0_MS + 3 * DAY_MS], dtype=np.int64)

    np.testing.assert_allclose(daily_returns(equity, marks), [0.1, 0.0, 0.1], rtol=1e-12)


def test_sharpe_is_negative_for_a_losing_curve() -> None:
    equity, marks = daily(100.0, 99.0, 97.0, 98.0, 95.0)
    sharpe = stats_of(equity, mark_ms=marks).sharpe
    assert sharpe is not None
    assert sharpe < 0.0


def test_a_run_within_one_utc_day_has_no_annualised_figures() -> None:
    # 1000 minutes of one day: one daily return, no sample standard deviation, no honest year.
    equity = 100.0 + np.cumsum(np.random.default_rng(3).normal(0.0, 0.1, 1001))
    equity[0] = 100.0

    stats = stats_of(equity)

    assert stats.days == 1
    assert (stats.sharpe, stats.sortino, stats.cagr_pct, stats.calmar) == (None, None, None, None)
    assert stats.max_drawdown_pct > 0.0  # the rest is still measured


def test_sortino_without_a_losing_day_is_undefined() -> None:
    equity, marks = daily(100.0, 101.0, 103.0, 104.0)
    stats = stats_of(equity, mark_ms=marks)

    assert stats.sortino is None
    assert stats.sharpe is not None
    assert stats.sharpe > 0.0


def test_cagr_and_calmar_of_a_curve_that_doubles_in_half_a_year() -> None:
    # x2 over 182.5 days: x4 a year, CAGR 300 %; drawdown 120 -> 90 is 25 %: Calmar 3 / 0.25 = 12.
    equity = curve(100.0, 120.0, 90.0, 200.0)
    marks = np.array([0, 1, 2, 3], dtype=np.int64) * (DAY_MS * 365 // 6) + T0_MS

    stats = stats_of(equity, mark_ms=marks)

    assert stats.cagr_pct == pytest.approx(300.0, rel=1e-12)
    assert stats.calmar == pytest.approx(12.0, rel=1e-12)


def test_profit_factor_expectancy_and_average_trade_match_hand_computation() -> None:
    trades = [make_trade(10.0), make_trade(-5.0), make_trade(0.0), make_trade(3.0, minute=5)]

    stats = stats_of(curve(100.0, 101.0, 102.0), trades)

    assert stats.profit_factor == pytest.approx(13.0 / 5.0, rel=1e-15)
    assert stats.expectancy == pytest.approx(8.0 / 4.0, rel=1e-15)
    assert stats.avg_trade_pct == pytest.approx(8.0 / 4.0, rel=1e-15)  # make_trade: pct = profit


def test_trade_figures_without_losers_or_trades_are_undefined() -> None:
    winners = stats_of(curve(100.0, 101.0), [make_trade(1.0), make_trade(2.0)])
    nothing = stats_of(curve(100.0, 101.0))

    assert winners.profit_factor is None
    assert winners.expectancy == pytest.approx(1.5)
    assert (nothing.profit_factor, nothing.expectancy, nothing.avg_trade_pct) == (None, None, None)


def test_longest_drawdown_runs_from_its_peak_to_the_mark_that_regains_it() -> None:
    # Day marks: peak 120 on day 1, under water days 2-4, back to 120 on day 5 (4 days long);
    # later a new peak 130 on day 6 and under water to the end, day 8 (2 days so far).
    equity = curve(100.0, 120.0, 110.0, 90.0, 119.0, 120.0, 130.0, 125.0, 129.0)

    stats = stats_of(equity, mark_ms=minute_marks(len(equity), DAY_MS))

    assert stats.max_drawdown_days == pytest.approx(4.0, rel=1e-15)


def test_a_drawdown_that_never_recovers_lasts_to_the_end() -> None:
    equity = curve(100.0, 99.0, 98.0, 99.5)  # under water from the start, 3 days

    stats = stats_of(equity, mark_ms=minute_marks(len(equity), DAY_MS))

    assert stats.max_drawdown_days == pytest.approx(3.0, rel=1e-15)


def test_drawdowns_rank_lowest_first_and_are_declared_once() -> None:
    assert {"max_drawdown_pct", "max_drawdown_days"} == LOWER_IS_BETTER
    assert lower_is_better("max_drawdown_pct")
    assert not lower_is_better("sharpe")


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
        sharpe=None,
        trades=0,
        win_rate_pct=0.0,
        exposure_pct=0.0,
        final_equity=10_000.0,
    )


# --------------------------------------------------------------------------------------------
# an independent pandas formula on a random curve


def reference_daily_returns(
    equity: npt.NDArray[np.float64], bar_open_ms: npt.NDArray[np.int64]
) -> pd.Series:
    """QuantStats-style daily returns, written independently: the equity after each bar, indexed
    by the bar's open time, resampled to UTC day closes (days without bars keep the last close),
    the starting cash as the close before the first day, pct_change."""
    after_bar = pd.Series(equity[1:], index=pd.to_datetime(bar_open_ms, unit="ms", utc=True))
    closes = after_bar.resample("1D").last().ffill()
    before = pd.Series([equity[0]], index=[closes.index[0] - pd.Timedelta(days=1)])
    returns: pd.Series = pd.concat([before, closes]).pct_change().dropna()
    return returns


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_daily_sharpe_sortino_and_drawdown_match_pandas_on_a_random_curve(seed: int) -> None:
    # 20 days of minutes starting at 07:13 UTC, with a whole day missing in the middle.
    rng = np.random.default_rng(seed)
    bar_open = T0_MS + 433 * 60_000 + 60_000 * np.arange(20 * 1440, dtype=np.int64)
    bar_open = bar_open[(bar_open < T0_MS + 8 * DAY_MS) | (bar_open >= T0_MS + 9 * DAY_MS)]
    n = len(bar_open)
    equity = 10_000.0 * np.exp(np.cumsum(rng.normal(2e-5, 1e-3, n)))
    equity = np.concatenate(([10_000.0], equity))
    marks = np.concatenate((bar_open[:1], bar_open + 60_000))
    frame = pd.Series(equity)

    returns = reference_daily_returns(equity, bar_open)
    expected_sharpe = returns.mean() / returns.std() * math.sqrt(365)
    downside = math.sqrt((returns.clip(upper=0.0) ** 2).mean())
    expected_sortino = returns.mean() / downside * math.sqrt(365)
    expected_drawdown = 100.0 * (1.0 - frame / frame.cummax()).max()
    expected_return = 100.0 * (frame.iloc[-1] / frame.iloc[0] - 1.0)
    years = (marks[-1] - marks[0]) / (365 * DAY_MS)
    expected_cagr = 100.0 * ((frame.iloc[-1] / frame.iloc[0]) ** (1.0 / years) - 1.0)

    stats = stats_of(equity, mark_ms=marks)

    assert len(returns) == 21 == stats.days  # 07:13 on day 0 to 07:13 on day 20, one day empty
    assert (returns == 0.0).sum() == 1  # the missing day
    assert expected_drawdown > 1.0  # the curve really has a drawdown to measure
    assert stats.sharpe == pytest.approx(expected_sharpe, rel=1e-9)
    assert stats.sortino == pytest.approx(expected_sortino, rel=1e-9)
    assert stats.cagr_pct == pytest.approx(expected_cagr, rel=1e-9)
    assert stats.calmar == pytest.approx(expected_cagr / expected_drawdown, rel=1e-9)
    assert stats.max_drawdown_pct == pytest.approx(expected_drawdown, rel=1e-12)
    assert stats.total_return_pct == pytest.approx(expected_return, rel=1e-12)


def test_daily_sharpe_and_sortino_match_empyrical() -> None:
    """Against the reference library itself (empyrical-reloaded, a test dependency)."""
    rng = np.random.default_rng(11)
    equity = 10_000.0 * np.exp(np.cumsum(rng.normal(1e-5, 1e-3, 10 * 1440)))
    equity = np.concatenate(([10_000.0], equity))
    bar_open = T0_MS + 60_000 * np.arange(10 * 1440, dtype=np.int64)
    returns = reference_daily_returns(equity, bar_open)

    stats = stats_of(equity)

    assert stats.sharpe == pytest.approx(
        empyrical.sharpe_ratio(returns, annualization=365), rel=1e-9
    )
    assert stats.sortino == pytest.approx(
        empyrical.sortino_ratio(returns, annualization=365), rel=1e-9
    )


# --------------------------------------------------------------------------------------------
# through a real replay: summary.json and the report


def test_a_replay_summary_has_daily_figures_matching_pandas(tmp_path: Path) -> None:
    config = ReplayConfig(
        strategy="sma_cross",
        start_ms=parse_utc_ms("2025-06-02"),
        end_ms=parse_utc_ms("2025-06-16"),
    )
    result = run_replay(config)
    returns = reference_daily_returns(
        result.equity, np.asarray(result.series.open_time_ms, dtype=np.int64)
    )
    profits = pd.Series([t.profit for t in result.trades])

    summary = json.loads(write_outputs(result, tmp_path)["summary"].read_text(encoding="utf-8"))

    assert len(returns) == 14 == summary["days"]
    assert summary["sharpe"] == pytest.approx(returns.mean() / returns.std() * math.sqrt(365))
    downside = math.sqrt((returns.clip(upper=0.0) ** 2).mean())
    assert summary["sortino"] == pytest.approx(returns.mean() / downside * math.sqrt(365))
    assert summary["profit_factor"] == pytest.approx(
        profits[profits > 0].sum() / -profits[profits < 0].sum()
    )
    assert summary["expectancy"] == pytest.approx(profits.mean())
    for key in ("cagr_pct", "calmar", "avg_trade_pct", "max_drawdown_days"):
        assert isinstance(summary[key], float), key
    report = format_report(result)
    assert "(daily returns, 14 UTC days, x sqrt(365))" in report
    assert "profit factor" in report


def test_a_replay_within_one_day_writes_null_annualised_figures(tmp_path: Path) -> None:
    config = ReplayConfig(
        strategy="sma_cross",
        start_ms=parse_utc_ms("2025-06-02"),
        end_ms=parse_utc_ms("2025-06-02T12:00"),
    )
    result = run_replay(config)

    summary = json.loads(write_outputs(result, tmp_path)["summary"].read_text(encoding="utf-8"))

    assert summary["days"] == 1
    assert [summary[k] for k in ("sharpe", "sortino", "cagr_pct", "calmar")] == [None] * 4
    assert "sharpe        n/a   sortino n/a" in format_report(result)
