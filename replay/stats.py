"""Performance statistics from an equity curve and a trade log. Pure functions, numpy only.

Conventions: returns and drawdown in percent; the equity curve is marked once per 1-minute bar
and starts with the starting cash; Sharpe uses per-bar simple returns, risk-free rate 0,
annualised by sqrt(bars per year) with crypto's 24/7 calendar (525,600 one-minute bars a year).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from daemon.events import Trade

__all__ = ["BARS_PER_YEAR_1M", "PerformanceStats", "compute_stats"]

BARS_PER_YEAR_1M = 365 * 24 * 60


@dataclass(frozen=True, slots=True)
class PerformanceStats:
    total_return_pct: float
    buy_and_hold_return_pct: float
    max_drawdown_pct: float
    sharpe: float
    trades: int
    win_rate_pct: float
    exposure_pct: float
    final_equity: float


def compute_stats(
    equity: npt.NDArray[np.float64],
    trades: Sequence[Trade],
    first_open: float,
    last_close: float,
    bars_in_market: int,
    bars_per_year: int = BARS_PER_YEAR_1M,
) -> PerformanceStats:
    """Summarise a run; ``equity[0]`` is the starting cash, then one mark per bar."""
    start, final = float(equity[0]), float(equity[-1])
    bars = len(equity) - 1
    peaks = np.maximum.accumulate(equity)
    max_drawdown = float(np.max(1.0 - equity / peaks)) if bars else 0.0
    sharpe = 0.0
    if bars >= 2:
        returns = np.diff(equity) / equity[:-1]
        std = float(np.std(returns, ddof=1))
        if std > 0.0 and math.isfinite(std):
            sharpe = float(np.mean(returns)) / std * math.sqrt(bars_per_year)
    wins = sum(1 for t in trades if t.profit > 0.0)
    return PerformanceStats(
        total_return_pct=100.0 * (final / start - 1.0),
        buy_and_hold_return_pct=100.0 * (last_close / first_open - 1.0) if bars else 0.0,
        max_drawdown_pct=100.0 * max_drawdown,
        sharpe=sharpe,
        trades=len(trades),
        win_rate_pct=100.0 * wins / len(trades) if trades else 0.0,
        exposure_pct=100.0 * bars_in_market / bars if bars else 0.0,
        final_equity=final,
    )
