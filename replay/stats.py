"""Performance statistics from an equity curve and a trade log. Pure functions, numpy only.

Conventions, chosen so the figures compare with QuantStats / empyrical / pyfolio:

- returns and drawdown in percent; the equity curve is marked once per 1-minute bar and starts
  with the starting cash (``equity[0]``, marked at the first bar's open);
- Sharpe and Sortino come from **daily** returns: the equity at each UTC day's close (the mark of
  the last bar that opened that day; a day without bars keeps the previous close), the first
  day measured from the starting cash; risk-free rate 0, annualised by sqrt(365) (crypto trades
  every calendar day). Sharpe = mean / std(ddof=1) * sqrt(365); Sortino = mean / downside
  deviation * sqrt(365), the downside deviation being sqrt(mean(min(r, 0)^2)) as in empyrical;
- CAGR compounds the total return over the run's elapsed time (365-day years); Calmar is CAGR
  over the maximum drawdown;
- annualised figures (Sharpe, Sortino, CAGR, Calmar) need at least two daily returns, i.e. a run
  that touches two UTC days; below that they are ``None`` (JSON null, an empty CSV cell), never a
  made-up number. A ratio with a zero denominator is ``None`` too (Sortino without a losing day,
  Calmar without a drawdown, profit factor without a losing trade), except that a flat curve
  (no return, no risk) has Sharpe and Sortino 0.

Not per bar: this runs once per replay, so it may allocate, but it stays free of pandas so that
batch workers never import it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from barbus.daemon.core.events import Trade

__all__ = [
    "DAYS_PER_YEAR",
    "LOWER_IS_BETTER",
    "PerformanceStats",
    "compute_stats",
    "daily_returns",
    "lower_is_better",
]

DAYS_PER_YEAR = 365  # calendar days: crypto trades 24/7
DAY_MS = 86_400_000
_YEAR_MS = DAYS_PER_YEAR * DAY_MS

# The one declaration of which figures rank lowest first (batch sort, "best" plots, index.html).
LOWER_IS_BETTER = frozenset({"max_drawdown_pct", "max_drawdown_days"})

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def lower_is_better(metric: str) -> bool:
    """Whether the best value of ``metric`` is its lowest (a drawdown), else its highest."""
    return metric in LOWER_IS_BETTER


@dataclass(frozen=True, slots=True)
class PerformanceStats:
    total_return_pct: float
    buy_and_hold_return_pct: float
    max_drawdown_pct: float
    sharpe: float | None
    trades: int
    win_rate_pct: float
    exposure_pct: float
    final_equity: float
    sortino: float | None = None
    cagr_pct: float | None = None
    calmar: float | None = None
    profit_factor: float | None = None
    expectancy: float | None = None  # mean profit per trade, quote currency
    avg_trade_pct: float | None = None  # mean return per trade, percent
    max_drawdown_days: float = 0.0  # the longest time under a previous peak
    days: int = 0  # daily returns behind Sharpe and Sortino


def daily_returns(equity: FloatArray, mark_ms: IntArray) -> FloatArray:
    """Simple returns of the UTC day closes, the first from ``equity[0]`` (the starting cash).

    ``mark_ms[i]`` is the time of ``equity[i]``; a bar's mark is its close, so it belongs to the
    day of ``mark - 1 ms`` (the bar closing at midnight is the last of that day).
    """
    if len(equity) < 2:
        return np.empty(0, dtype=np.float64)
    day = np.subtract(mark_ms[1:], 1, dtype=np.int64)
    np.floor_divide(day, DAY_MS, out=day)
    days = np.arange(int(day[0]), int(day[-1]) + 1, dtype=np.int64)
    last_of_day = np.searchsorted(day, days, side="right") - 1  # gap days keep the last close
    closes = np.empty(len(days) + 1, dtype=np.float64)
    closes[0] = equity[0]
    closes[1:] = equity[1:][last_of_day]
    return np.diff(closes) / closes[:-1]


def compute_stats(
    equity: FloatArray,
    trades: Sequence[Trade],
    first_open: float,
    last_close: float,
    bars_in_market: int,
    mark_ms: IntArray,
) -> PerformanceStats:
    """Summarise a run; ``equity[0]`` is the starting cash, then one mark per bar at ``mark_ms``."""
    start, final = float(equity[0]), float(equity[-1])
    bars = len(equity) - 1
    # In place where numpy allows: a 1 M-bar run's temporaries are 8 MB each, and a batch
    # worker's peak memory is set here (the same values as the plain expressions).
    peaks = np.maximum.accumulate(equity)
    drawdown = np.divide(equity, peaks)
    np.subtract(1.0, drawdown, out=drawdown)
    max_drawdown = float(np.max(drawdown)) if bars else 0.0
    del drawdown
    returns = daily_returns(equity, mark_ms)
    sharpe, sortino, cagr, calmar = _annualised(returns, start, final, mark_ms, max_drawdown)
    profits = np.array([t.profit for t in trades], dtype=np.float64)
    gains, losses = float(profits[profits > 0.0].sum()), float(-profits[profits < 0.0].sum())
    wins = int(np.count_nonzero(profits > 0.0))
    return PerformanceStats(
        total_return_pct=100.0 * (final / start - 1.0),
        buy_and_hold_return_pct=100.0 * (last_close / first_open - 1.0) if bars else 0.0,
        max_drawdown_pct=100.0 * max_drawdown,
        sharpe=sharpe,
        trades=len(trades),
        win_rate_pct=100.0 * wins / len(trades) if trades else 0.0,
        exposure_pct=100.0 * bars_in_market / bars if bars else 0.0,
        final_equity=final,
        sortino=sortino,
        cagr_pct=cagr,
        calmar=calmar,
        profit_factor=gains / losses if losses > 0.0 else None,
        expectancy=float(profits.mean()) if trades else None,
        avg_trade_pct=float(np.mean([t.profit_pct for t in trades])) if trades else None,
        max_drawdown_days=_longest_drawdown_ms(equity, peaks, mark_ms) / DAY_MS,
        days=len(returns),
    )


def _annualised(
    returns: FloatArray, start: float, final: float, mark_ms: IntArray, max_drawdown: float
) -> tuple[float | None, float | None, float | None, float | None]:
    """(Sharpe, Sortino, CAGR %, Calmar), each None where undefined (see the module notes)."""
    if len(returns) < 2:
        return None, None, None, None
    root = math.sqrt(DAYS_PER_YEAR)
    mean = float(np.mean(returns))
    std = float(np.std(returns, ddof=1))
    downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
    flat = mean == 0.0 and std == 0.0
    sharpe = 0.0 if flat else _ratio(mean, std, root)
    sortino = 0.0 if flat else _ratio(mean, downside, root)
    elapsed_ms = int(mark_ms[-1]) - int(mark_ms[0])
    cagr: float | None = None
    if elapsed_ms > 0 and start > 0.0 and final > 0.0:
        try:
            cagr = math.exp(math.log(final / start) * _YEAR_MS / elapsed_ms) - 1.0
        except OverflowError:  # a big gain over minutes: no meaningful yearly rate
            cagr = None
    elif final <= 0.0:
        cagr = -1.0
    calmar = cagr / max_drawdown if cagr is not None and max_drawdown > 0.0 else None
    return sharpe, sortino, None if cagr is None else 100.0 * cagr, calmar


def _ratio(numerator: float, denominator: float, scale: float) -> float | None:
    if denominator > 0.0 and math.isfinite(denominator):
        return numerator / denominator * scale
    return None


def _longest_drawdown_ms(equity: FloatArray, peaks: FloatArray, mark_ms: IntArray) -> int:
    """Longest time from a peak to the mark that regains it (or to the end if none does)."""
    if len(equity) < 2:
        return 0
    times = np.asarray(mark_ms, dtype=np.int64)
    under = equity < peaks
    last_peak = np.arange(len(equity), dtype=np.int64)
    last_peak[under] = 0
    np.maximum.accumulate(last_peak, out=last_peak)
    since = times[last_peak]
    np.subtract(times, since, out=since)
    longest = int(np.max(since))  # to each mark still under water
    del since
    recovered = under[:-1] & ~under[1:]  # ... and to each mark that is back at a peak
    if recovered.any():
        ends = np.flatnonzero(recovered) + 1
        longest = max(longest, int(np.max(times[ends] - times[last_peak[ends - 1]])))
    return longest
