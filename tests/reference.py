"""Independent reference implementations of the indicators, for tests only.

Written from the textbook formulas over whole arrays (numpy windows, pandas rolling/ewm), never
from the incremental code in ``strategies.indicators``, so a shared mistake is unlikely. Every
function returns float64 arrays aligned with its input, NaN during the warm-up, with the same
warm-up lengths as TA-Lib. Supertrend, whose bands depend on their own previous values, is a
plain loop.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "FloatArray",
    "assert_close",
    "atr",
    "bollinger",
    "ema",
    "keltner",
    "rsi",
    "sma",
    "stoch_rsi",
    "stochastic",
    "supertrend",
    "true_range",
    "vwap_utc_day",
    "wilder_averages",
    "williams_r",
    "zscore",
]

FloatArray = NDArray[np.float64]


def _floats(values: ArrayLike) -> FloatArray:
    return np.asarray(values, dtype=np.float64)


def _nans(n: int) -> FloatArray:
    return np.full(n, np.nan)


def _recursive_from(
    seed_index: int, seed: float, rest: FloatArray, alpha: float, n: int
) -> FloatArray:
    """``y[seed_index] = seed``, then ``y = (1 - alpha) * y + alpha * x`` over ``rest``."""
    out = _nans(n)
    if seed_index < n:
        series = pd.Series(np.concatenate(([seed], rest)))
        out[seed_index:] = series.ewm(alpha=alpha, adjust=False).mean().to_numpy()
    return out


def sma(x: ArrayLike, period: int) -> FloatArray:
    """Mean of each window of ``period`` values."""
    values = _floats(x)
    out = _nans(len(values))
    if len(values) >= period:
        out[period - 1 :] = sliding_window_view(values, period).mean(axis=1)
    return out


def ema(x: ArrayLike, period: int) -> FloatArray:
    """EMA with alpha = 2 / (period + 1), seeded with the mean of the first ``period`` values."""
    values = _floats(x)
    n = len(values)
    if n < period:
        return _nans(n)
    seed = math.fsum(values[:period]) / period
    return _recursive_from(period - 1, seed, values[period:], 2.0 / (period + 1), n)


def true_range(high: ArrayLike, low: ArrayLike, close: ArrayLike) -> FloatArray:
    """max(high - low, |high - previous close|, |low - previous close|); NaN on the first bar."""
    h, lo, c = _floats(high), _floats(low), _floats(close)
    out = _nans(len(c))
    prev = c[:-1]
    out[1:] = np.maximum.reduce([h[1:] - lo[1:], np.abs(h[1:] - prev), np.abs(lo[1:] - prev)])
    return out


def atr(
    high: ArrayLike,
    low: ArrayLike,
    close: ArrayLike,
    period: int,
    smoothing: Literal["wilder", "sma"] = "wilder",
) -> FloatArray:
    """Average true range: Wilder's smoothing seeded with a simple mean, or a rolling mean."""
    tr = true_range(high, low, close)
    n = len(tr)
    if smoothing == "sma":
        return pd.Series(tr).rolling(period).mean().to_numpy()
    if n <= period:
        return _nans(n)
    seed = math.fsum(tr[1 : period + 1]) / period
    return _recursive_from(period, seed, tr[period + 1 :], 1.0 / period, n)


def wilder_averages(x: ArrayLike, period: int) -> tuple[FloatArray, FloatArray]:
    """Wilder-smoothed average gain and average loss of the changes of ``x``."""
    values = _floats(x)
    n = len(values)
    if n <= period:
        return _nans(n), _nans(n)
    change = np.diff(values)
    gains = np.where(change > 0.0, change, 0.0)
    losses = np.where(change < 0.0, -change, 0.0)
    alpha = 1.0 / period
    avg_gain = _recursive_from(period, math.fsum(gains[:period]) / period, gains[period:], alpha, n)
    avg_loss = _recursive_from(
        period, math.fsum(losses[:period]) / period, losses[period:], alpha, n
    )
    return avg_gain, avg_loss


def rsi(x: ArrayLike, period: int) -> FloatArray:
    """100 * avg_gain / (avg_gain + avg_loss), and 50 where both are exactly 0 (flat prices)."""
    avg_gain, avg_loss = wilder_averages(x, period)
    total = avg_gain + avg_loss
    with np.errstate(invalid="ignore", divide="ignore"):
        out = 100.0 * avg_gain / total
    return np.where(total == 0.0, 50.0, out)


def bollinger(x: ArrayLike, period: int, num_std: float) -> dict[str, FloatArray]:
    """Middle, population std, upper, lower, %B and bandwidth over windows of ``period``.

    Two-pass over each window's deviations from its first value: subtracting nearby floats is
    exact, so a flat window has a std of exactly 0 and nothing cancels at high price levels.
    """
    values = _floats(x)
    n = len(values)
    names = ("middle", "std", "upper", "lower", "percent_b", "bandwidth")
    out = {name: _nans(n) for name in names}
    if n < period:
        return out
    windows = sliding_window_view(values, period)
    shifted = windows - windows[:, :1]
    shifted_mean = shifted.mean(axis=1)
    std = np.sqrt(((shifted - shifted_mean[:, None]) ** 2).mean(axis=1))
    middle = windows[:, 0] + shifted_mean
    upper = middle + num_std * std
    lower = middle - num_std * std
    with np.errstate(invalid="ignore", divide="ignore"):
        percent_b = np.where(
            upper != lower, (values[period - 1 :] - lower) / (upper - lower), np.nan
        )
        bandwidth = np.where(middle != 0.0, (upper - lower) / middle, np.nan)
    for name, column in zip(names, (middle, std, upper, lower, percent_b, bandwidth), strict=True):
        out[name][period - 1 :] = column
    return out


def supertrend(
    high: ArrayLike,
    low: ArrayLike,
    close: ArrayLike,
    period: int,
    multiplier: float,
    smoothing: Literal["sma", "wilder"] = "sma",
    atr_values: ArrayLike | None = None,
) -> dict[str, FloatArray]:
    """Textbook Supertrend as a plain loop: value, trend (+1/-1, 0 before ready), upper, lower.

    ``atr_values`` replaces the reference ATR, to test the band logic on exactly the same ATR.
    """
    frame = pd.DataFrame({"high": _floats(high), "low": _floats(low), "close": _floats(close)})
    frame["atr"] = (
        atr(frame["high"], frame["low"], frame["close"], period, smoothing)
        if atr_values is None
        else _floats(atr_values)
    )
    frame["hl2"] = (frame["high"] + frame["low"]) / 2.0
    frame["basic_upper"] = frame["hl2"] + multiplier * frame["atr"]
    frame["basic_lower"] = frame["hl2"] - multiplier * frame["atr"]
    n = len(frame)
    closes = frame["close"].tolist()
    atrs = frame["atr"].tolist()
    basic_upper = frame["basic_upper"].tolist()
    basic_lower = frame["basic_lower"].tolist()
    nan = math.nan
    value, trend, upper, lower = [nan] * n, [0.0] * n, [nan] * n, [nan] * n
    started = False
    for i in range(n):
        if math.isnan(atrs[i]):
            continue
        if not started:
            upper[i], lower[i], trend[i] = basic_upper[i], basic_lower[i], 1.0
            started = True
        else:
            prev_close = closes[i - 1]
            prev_upper, prev_lower, prev_trend = upper[i - 1], lower[i - 1], trend[i - 1]
            if basic_upper[i] < prev_upper or prev_close > prev_upper:
                upper[i] = basic_upper[i]
            else:
                upper[i] = prev_upper
            if basic_lower[i] > prev_lower or prev_close < prev_lower:
                lower[i] = basic_lower[i]
            else:
                lower[i] = prev_lower
            if prev_trend == 1.0 and closes[i] < lower[i]:
                trend[i] = -1.0
            elif prev_trend == -1.0 and closes[i] > upper[i]:
                trend[i] = 1.0
            else:
                trend[i] = prev_trend
        value[i] = lower[i] if trend[i] == 1.0 else upper[i]
    return {
        name: _floats(column)
        for name, column in zip(
            ("value", "trend", "upper", "lower"), (value, trend, upper, lower), strict=True
        )
    }


def assert_close(
    actual: ArrayLike,
    expected: ArrayLike,
    *,
    rtol: float,
    atol: float | FloatArray = 0.0,
    what: str = "",
) -> None:
    """NaN exactly where ``expected`` is NaN, elsewhere ``|a - e| <= atol + rtol * |e|``.

    Unlike ``np.testing.assert_allclose`` the tolerance ``atol`` may be per element.
    """
    a, e = _floats(actual), _floats(expected)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != {e.shape}"
    nan_a, nan_e = np.isnan(a), np.isnan(e)
    if not np.array_equal(nan_a, nan_e):
        i = int(np.flatnonzero(nan_a != nan_e)[0])
        raise AssertionError(
            f"{what}: NaN mismatch at index {i}: actual {a[i]!r}, expected {e[i]!r}"
        )
    tolerance = np.broadcast_to(atol, e.shape) + rtol * np.abs(e)
    error = np.where(nan_e, 0.0, np.abs(a - e))
    bad = error > tolerance
    if bad.any():
        i = int(np.argmax(np.where(bad, error / np.maximum(tolerance, 1e-300), 0.0)))
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {e.size} values off; worst at index {i}: "
            f"actual {a[i]!r}, expected {e[i]!r}, |diff| {error[i]:.3g} > tolerance "
            f"{tolerance[i]:.3g} (rtol={rtol:g})"
        )


# --- references for the indicators TA-Lib lacks, or where barbus deviates from it ----------------


def _position_in_range(
    x: pd.Series, highest: pd.Series, lowest: pd.Series, flat: pd.Series
) -> pd.Series:
    """100 * (x - lowest) / (highest - lowest), and 50 where ``flat``."""
    spread = highest - lowest
    with np.errstate(invalid="ignore", divide="ignore"):
        raw = 100.0 * (x - lowest) / spread
    return raw.where(~flat, 50.0).where(spread.notna())


def stochastic(
    high: ArrayLike,
    low: ArrayLike,
    close: ArrayLike,
    k_period: int,
    k_smoothing: int,
    d_period: int,
) -> dict[str, FloatArray]:
    """Slow stochastic with rolling means; a flat range (highest == lowest) gives raw %K = 50.

    ``k`` and ``d`` are both NaN until ``d`` is defined, as TA-Lib reports them.
    """
    h, lo, c = pd.Series(_floats(high)), pd.Series(_floats(low)), pd.Series(_floats(close))
    highest = h.rolling(k_period).max()
    lowest = lo.rolling(k_period).min()
    raw = _position_in_range(c, highest, lowest, highest == lowest)
    k = raw.rolling(k_smoothing).mean()
    d = k.rolling(d_period).mean()
    return {"k": k.where(d.notna()).to_numpy(), "d": d.to_numpy()}


def williams_r(high: ArrayLike, low: ArrayLike, close: ArrayLike, period: int) -> FloatArray:
    """-100 * (highest high - close) / (highest high - lowest low); -50 on a flat range."""
    h, lo, c = pd.Series(_floats(high)), pd.Series(_floats(low)), pd.Series(_floats(close))
    highest = h.rolling(period).max()
    lowest = lo.rolling(period).min()
    k = _position_in_range(c, highest, lowest, highest == lowest)
    return (k - 100.0).to_numpy()


def stoch_rsi(
    close: ArrayLike, period: int, k_period: int, d_period: int, flat_range: float
) -> dict[str, FloatArray]:
    """Fast stochastic of ``rsi`` over ``k_period`` values, 50 where the RSI range is below
    ``flat_range``; ``d`` its rolling mean. Both NaN until ``d`` is defined."""
    r = pd.Series(rsi(close, period))
    highest = r.rolling(k_period).max()
    lowest = r.rolling(k_period).min()
    k = _position_in_range(r, highest, lowest, (highest - lowest) < flat_range)
    d = k.rolling(d_period).mean()
    return {"k": k.where(d.notna()).to_numpy(), "d": d.to_numpy()}


def zscore(x: ArrayLike, period: int) -> dict[str, FloatArray]:
    """(x - rolling mean) / rolling population std, 0 where the std is 0."""
    bands = bollinger(x, period, 1.0)
    mean, std = bands["middle"], bands["std"]
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(std == 0.0, 0.0, (_floats(x) - mean) / std)
    return {"value": z, "mean": mean, "std": std}


def keltner(
    high: ArrayLike,
    low: ArrayLike,
    close: ArrayLike,
    period: int,
    multiplier: float,
    atr_period: int,
) -> dict[str, FloatArray]:
    """EMA(close) +/- multiplier * Wilder ATR, every output NaN until both are defined."""
    middle = pd.Series(ema(close, period))
    width = pd.Series(atr(high, low, close, atr_period, "wilder"))
    defined = middle.notna() & width.notna()
    frame = pd.DataFrame(
        {
            "middle": middle,
            "upper": middle + multiplier * width,
            "lower": middle - multiplier * width,
        }
    )
    frame["atr"] = width
    return {name: frame[name].where(defined).to_numpy() for name in frame.columns}


def vwap_utc_day(
    high: ArrayLike, low: ArrayLike, close: ArrayLike, volume: ArrayLike, open_time_ms: ArrayLike
) -> FloatArray:
    """Cumulative sum(typical price * volume) / cumulative volume, restarted each UTC day; the
    typical price itself while the day's volume is 0."""
    frame = pd.DataFrame(
        {
            "tp": (pd.Series(_floats(high)) + _floats(low) + _floats(close)) / 3.0,
            "volume": _floats(volume),
            "day": pd.to_datetime(np.asarray(open_time_ms, dtype=np.int64), unit="ms").floor("D"),
        }
    )
    frame["pv"] = frame["tp"] * frame["volume"]
    sums = frame.groupby("day", sort=False)[["pv", "volume"]].cumsum()
    vwap = sums["pv"] / sums["volume"]
    return vwap.where(sums["volume"] != 0.0, frame["tp"]).to_numpy()
