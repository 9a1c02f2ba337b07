"""Property tests: every indicator against ``tests.reference`` (or TA-Lib) on generated series.

Series cover flat prices, random walks, factor-of-10 jumps, flat stretches after jumps and prices
on a tick grid (ties), at price levels from 1e-8 to 1e9, lengths 1..300. Bars are consistent:
low <= open, close <= high.

Tolerance: rtol 1e-9 as on real data, plus an absolute term of 1e-12 x the series' largest price
(~4500 ulps of it). Outputs derived from running sums or a standard deviation carry an absolute
error of a few ulps of the prices that went through the window, not of the output itself: after
a factor-of-10 drop, or for a std of 1e-7 of the price, the relative error of the output can exceed
1e-9 while the error is still at machine-epsilon level for the prices involved.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import numpy as np
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from barbus.strategies.indicators import ATR, EMA, RSI, SMA, BollingerBands, Supertrend, TrueRange
from tests import reference as ref
from tests.reference import FloatArray, assert_close

RTOL = 1e-9
ATOL_PER_PRICE = 1e-12
PRICE_LEVELS = (1e-8, 1e-3, 1.0, 1e5, 1e9)
SHAPES = ("flat", "walk", "jumps", "steps", "ticks")

Smoothing = Literal["wilder", "sma"]
SMOOTHINGS: tuple[Smoothing, ...] = ("wilder", "sma")

property_settings = settings(deadline=None, max_examples=100)
periods = st.integers(min_value=1, max_value=60)
smoothings = st.sampled_from(SMOOTHINGS)


@st.composite
def closes(draw: st.DrawFn, max_size: int = 300) -> FloatArray:
    """A close series of one of the shapes, at one price level."""
    n = draw(st.integers(min_value=1, max_value=max_size))
    level = draw(st.sampled_from(PRICE_LEVELS))
    shape = draw(st.sampled_from(SHAPES))
    rng = np.random.default_rng(draw(st.integers(min_value=0, max_value=2**32 - 1)))
    volatility = draw(st.sampled_from((1e-4, 1e-3, 1e-2, 5e-2)))
    log_path = np.cumsum(rng.normal(0.0, volatility, n))
    path: FloatArray
    if shape == "flat":
        path = np.ones(n)
    elif shape == "walk":
        path = np.exp(log_path)
    elif shape == "jumps":  # a random walk with occasional factor-of-10 moves either way
        jumps = rng.choice([-1.0, 0.0, 1.0], size=n, p=[0.03, 0.94, 0.03])
        path = np.exp(log_path) * np.power(10.0, np.cumsum(jumps))
    elif shape == "steps":  # flat stretches at levels a factor of 10 apart
        levels = np.power(10.0, rng.integers(-1, 2, size=n).astype(np.float64))
        run_starts = rng.random(n) < 0.05
        path = levels[np.maximum.accumulate(np.where(run_starts, np.arange(n), 0))]
    else:  # "ticks": a walk on a grid of 1e-3 of the level, so many changes are exactly 0
        path = np.asarray(np.round(np.exp(log_path * 0.1), 3), dtype=np.float64)
    return np.asarray(level * path, dtype=np.float64)


@st.composite
def bars(draw: st.DrawFn) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(high, low, close) with open = previous close and random wicks (or none)."""
    close = draw(closes())
    rng = np.random.default_rng(draw(st.integers(min_value=0, max_value=2**32 - 1)))
    wick = draw(st.sampled_from((0.0, 1e-3, 2e-2)))
    opens = np.concatenate((close[:1], close[:-1]))
    high = np.maximum(opens, close) * (1.0 + wick * rng.random(len(close)))
    low = np.minimum(opens, close) * (1.0 - wick * rng.random(len(close)))
    assert (low <= np.minimum(opens, close)).all()
    assert (high >= np.maximum(opens, close)).all()
    return high, low, close


def price_atol(*series: FloatArray) -> float:
    return ATOL_PER_PRICE * max(float(np.max(np.abs(s))) for s in series)


def run(update: Callable[..., float], *columns: FloatArray) -> FloatArray:
    """Outputs of ``update`` called on each row of ``columns``."""
    return np.array([update(*row) for row in zip(*(c.tolist() for c in columns), strict=True)])


# --- each indicator vs its reference -----------------------------------------------------------


@property_settings
@given(close=closes(), period=periods)
def test_sma_matches_reference(close: FloatArray, period: int) -> None:
    actual = run(SMA(period).update, close)
    assert_close(actual, ref.sma(close, period), rtol=RTOL, atol=price_atol(close), what="SMA")


@property_settings
@given(close=closes(), period=periods)
def test_ema_matches_reference_and_talib(close: FloatArray, period: int) -> None:
    actual = run(EMA(period).update, close)
    assert_close(actual, ref.ema(close, period), rtol=RTOL, atol=price_atol(close), what="EMA")
    assert_close(actual, talib.EMA(close, period), rtol=RTOL, atol=price_atol(close), what="talib")


@property_settings
@given(close=closes(), period=periods)
def test_rsi_matches_reference_and_stays_in_range(close: FloatArray, period: int) -> None:
    # Arrange / Act
    actual = run(RSI(period).update, close)

    # Assert: RSI is a ratio of Wilder averages of the same exact price changes, so it is
    # compared relatively (plus 1e-9 on its 0..100 scale), whatever the price level.
    assert_close(actual, ref.rsi(close, period), rtol=RTOL, atol=1e-9, what="RSI")
    ready = actual[~np.isnan(actual)]
    assert ((ready >= 0.0) & (ready <= 100.0)).all()


@property_settings
@given(close=closes(), period=periods, num_std=st.sampled_from((0.5, 1.8, 2.0, 2.5)))
def test_bollinger_matches_reference(close: FloatArray, period: int, num_std: float) -> None:
    # Arrange
    bands = BollingerBands(period, num_std)
    names = ("middle", "std", "upper", "lower", "percent_b", "bandwidth")
    rows = []

    # Act
    for x in close.tolist():
        bands.update(x)
        rows.append(tuple(getattr(bands, name) for name in names))

    # Assert
    actual = dict(zip(names, np.array(rows).reshape(len(rows), len(names)).T, strict=True))
    expected = ref.bollinger(close, period, num_std)
    atol = price_atol(close)
    for name in ("middle", "std", "upper", "lower"):
        assert_close(actual[name], expected[name], rtol=RTOL, atol=atol, what=name)
    assert (actual["std"][~np.isnan(actual["std"])] >= 0.0).all()
    with np.errstate(divide="ignore", invalid="ignore"):
        assert_close(
            actual["bandwidth"],
            expected["bandwidth"],
            rtol=RTOL,
            atol=atol / np.abs(expected["middle"]),
            what="bandwidth",
        )
    # %B divides by the spread: only meaningful where the spread is well above price rounding.
    spread = expected["upper"] - expected["lower"]
    assert np.isnan(actual["percent_b"][np.isnan(expected["percent_b"])]).all()
    wide = spread > 1e-6 * price_atol(close) / ATOL_PER_PRICE
    assert_close(
        actual["percent_b"][wide],
        expected["percent_b"][wide],
        rtol=RTOL,
        atol=atol / spread[wide],
        what="percent_b",
    )


@property_settings
@given(hlc=bars())
def test_true_range_is_bit_identical_to_talib(hlc: tuple[FloatArray, ...]) -> None:
    actual = run(TrueRange().update_hlc, *hlc)
    assert np.array_equal(actual, talib.TRANGE(*hlc), equal_nan=True)


@property_settings
@given(hlc=bars(), period=periods, smoothing=smoothings)
def test_atr_matches_reference_and_is_never_negative(
    hlc: tuple[FloatArray, FloatArray, FloatArray], period: int, smoothing: Smoothing
) -> None:
    # Arrange
    high, low, close = hlc

    # Act
    actual = run(ATR(period, smoothing).update_hlc, *hlc)

    # Assert
    atol = price_atol(*hlc)
    expected = ref.atr(high, low, close, period, smoothing)
    assert_close(actual, expected, rtol=RTOL, atol=atol, what=f"ATR {smoothing}")
    if smoothing == "wilder":
        assert_close(actual, talib.ATR(*hlc, period), rtol=RTOL, atol=atol, what="talib")
    assert (actual[~np.isnan(actual)] >= 0.0).all()


@property_settings
@given(
    hlc=bars(),
    period=periods,
    multiplier=st.sampled_from((0.5, 1.0, 2.0, 3.0)),
    atr_smoothing=smoothings,
)
def test_supertrend_follows_the_textbook_loop(
    hlc: tuple[FloatArray, FloatArray, FloatArray],
    period: int,
    multiplier: float,
    atr_smoothing: Smoothing,
) -> None:
    # Arrange: the reference loop gets exactly our ATR, so a tie (close == band, common on a
    # tick grid) is decided on identical numbers; the ATR itself is checked in its own test.
    high, low, close = hlc
    supertrend = Supertrend(period, multiplier, atr_smoothing)
    atr_values = run(ATR(period, atr_smoothing).update_hlc, *hlc)
    rows = []

    # Act
    for h, lo, c in zip(high.tolist(), low.tolist(), close.tolist(), strict=True):
        supertrend.update_hlc(h, lo, c)
        rows.append((supertrend.value, supertrend.trend, supertrend.upper, supertrend.lower))

    # Assert
    table = np.array(rows).reshape(len(rows), 4)
    expected = ref.supertrend(
        high, low, close, period, multiplier, atr_smoothing, atr_values=atr_values
    )
    for i, name in enumerate(("value", "trend", "upper", "lower")):
        assert np.array_equal(table[:, i], expected[name], equal_nan=True), name
    trend = table[:, 1]
    ready = ~np.isnan(atr_values)
    assert set(trend[ready].tolist()) <= {-1.0, 1.0}
    assert (trend[~ready] == 0.0).all()


# --- invariants --------------------------------------------------------------------------------


@property_settings
@given(
    constant=st.floats(min_value=1e-8, max_value=1e9, allow_nan=False, allow_infinity=False),
    period=periods,
    n=st.integers(min_value=1, max_value=200),
)
def test_sma_of_a_constant_is_the_constant(constant: float, period: int, n: int) -> None:
    # Arrange
    sma = SMA(period)

    # Act
    values = [sma.update(constant) for _ in range(n)]

    # Assert: exactly the constant (the window sums are exact), so fast == slow on a flat stretch.
    assert all(math.isnan(v) for v in values[: period - 1])
    assert all(v == constant for v in values[period - 1 :])


@property_settings
@given(
    constant=st.floats(min_value=1e-8, max_value=1e9, allow_nan=False, allow_infinity=False),
    period=periods,
)
def test_flat_prices_give_zero_std_and_neutral_rsi(constant: float, period: int) -> None:
    # Arrange
    bands, rsi = BollingerBands(period), RSI(period)

    # Act
    for _ in range(period + 1):
        bands.update(constant)
        rsi.update(constant)

    # Assert
    assert bands.std == 0.0
    assert math.isnan(bands.percent_b)
    assert rsi.value == 50.0
