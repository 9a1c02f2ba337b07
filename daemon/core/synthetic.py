"""Deterministic synthetic 1-minute bars, for benchmarks, tests and the strategy contract check."""

from __future__ import annotations

import numpy as np

from barbus.daemon.core.events import MINUTE_MS
from barbus.daemon.core.series import BarSeries

__all__ = ["synthetic_series"]

T0_MS = 1_747_699_200_000  # 2025-05-20T00:00:00Z


def synthetic_series(
    n: int,
    seed: int = 7,
    start_price: float = 100_000.0,
    symbol: str = "SYNTHUSDT",
    *,
    raw: bool = False,
) -> BarSeries:
    """A gap-free geometric random walk of ``n`` bars with consistent OHLC; same seed, same bars.

    Like exchange data, prices are on a 0.01 tick and volumes on a 1e-5 step (so windowed
    indicators take their decimal fast path, as on real data); ``raw=True`` keeps the walk's full
    binary floats, the case of data that are not decimals (their exact-integer path).
    """
    rng = np.random.default_rng(seed)
    close = start_price * np.exp(np.cumsum(rng.normal(0.0, 0.001, n)))
    open_ = np.concatenate(([start_price], close[:-1]))
    spread = np.abs(rng.normal(0.0, 0.0005, n)) * close
    high = np.maximum(open_, close) + spread
    low = np.minimum(open_, close) - spread
    # Activity changes hour by hour (lognormal), so higher timeframes see volume spikes too.
    activity = np.repeat(rng.lognormal(0.0, 0.6, n // 60 + 1), 60)[:n]
    volume = rng.gamma(2.0, 5.0, n) * activity
    if not raw:
        open_, close = np.round(open_, 2), np.round(close, 2)
        high = np.maximum(np.round(high, 2), np.maximum(open_, close))
        low = np.minimum(np.round(low, 2), np.minimum(open_, close))
        volume = np.round(volume, 5)
    times = T0_MS + np.arange(n, dtype=np.int64) * MINUTE_MS
    source = f"synthetic(n={n}, seed={seed}{', raw' if raw else ''})"
    return BarSeries(symbol, "1m", source, times, open_, high, low, close, volume)
