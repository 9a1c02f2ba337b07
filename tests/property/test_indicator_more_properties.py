"""Property tests for the indicators added in issue 11, on generated series.

The series are those of ``test_indicator_properties`` (flat, walks, factor-of-10 jumps, steps,
tick grids; price levels 1e-8..1e9), with volumes (zeros included) and open times that cross
UTC midnights. For every indicator: ``ready`` first turns True after exactly ``warmup`` updates
and stays True; a JSON snapshot taken anywhere, restored into a fresh instance, continues with
bit-identical outputs. The indicators whose reference is a pandas formula (TA-Lib has none) are
also compared with ``tests.reference`` here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from barbus.strategies.indicators import (
    ADX,
    CCI,
    DEMA,
    MACD,
    OBV,
    ROC,
    TEMA,
    VWAP,
    WMA,
    DonchianChannel,
    KeltnerChannel,
    RollingMax,
    RollingMin,
    RollingStd,
    Stochastic,
    StochRSI,
    WilliamsR,
    ZScore,
)
from tests import reference as ref
from tests.property.test_indicator_properties import bars, price_atol
from tests.reference import FloatArray, assert_close
from tests.unit.strategies.indicator_kit import Inputs, Market

RTOL = 1e-9
EPS = float(np.finfo(np.float64).eps)
DAY_MS = 86_400_000

property_settings = settings(deadline=None, max_examples=50)
periods = st.integers(min_value=1, max_value=30)


def rows_of(data: Market, inputs: Inputs) -> list[tuple[Any, ...]]:
    """The bars' input columns that ``inputs`` names, one tuple a bar."""
    return list(zip(*data.columns(inputs), strict=True))


@st.composite
def series(draw: st.DrawFn) -> Market:
    """Bars with volumes (some 0) and rising open times, minutes to hours apart."""
    high, low, close = draw(bars())
    n = len(close)
    rng = np.random.default_rng(draw(st.integers(min_value=0, max_value=2**32 - 1)))
    volume = np.round(rng.exponential(5.0, n), 5) * (rng.random(n) > 0.1)
    steps = rng.choice([60_000, 60_000, 60_000, 3_600_000, 6 * 3_600_000], size=n)
    start = 20_000 * DAY_MS + int(rng.integers(0, DAY_MS // 60_000)) * 60_000
    times = start + np.cumsum(steps) - steps[0]
    return Market(high, low, close, np.asarray(volume, dtype=np.float64), times.astype(np.int64))


Build = Callable[[int, int, int, float], Any]
KINDS: list[tuple[str, Inputs, Build]] = [
    ("MACD", "c", lambda p, q, r, m: MACD(p, p + q, r)),
    ("Stochastic", "hlc", lambda p, q, r, m: Stochastic(p, q, r)),
    ("StochRSI", "c", lambda p, q, r, m: StochRSI(p, q, r)),
    ("WilliamsR", "hlc", lambda p, q, r, m: WilliamsR(p)),
    ("ADX", "hlc", lambda p, q, r, m: ADX(p)),
    ("CCI", "hlc", lambda p, q, r, m: CCI(p)),
    ("ROC", "c", lambda p, q, r, m: ROC(p)),
    ("OBV", "cv", lambda p, q, r, m: OBV()),
    ("WMA", "c", lambda p, q, r, m: WMA(p)),
    ("DEMA", "c", lambda p, q, r, m: DEMA(p)),
    ("TEMA", "c", lambda p, q, r, m: TEMA(p)),
    ("DonchianChannel", "hlc", lambda p, q, r, m: DonchianChannel(p)),
    ("KeltnerChannel", "hlc", lambda p, q, r, m: KeltnerChannel(p, m, q)),
    ("RollingMax", "c", lambda p, q, r, m: RollingMax(p)),
    ("RollingMin", "c", lambda p, q, r, m: RollingMin(p)),
    ("RollingStd", "c", lambda p, q, r, m: RollingStd(p)),
    ("ZScore", "c", lambda p, q, r, m: ZScore(p)),
    ("VWAP", "hlcvt", lambda p, q, r, m: VWAP()),
]
KIND_PARAMS = [pytest.param(inputs, build, id=name) for name, inputs, build in KINDS]
arguments = st.tuples(periods, periods, periods, st.sampled_from((0.5, 1.0, 2.0)))


OUTPUTS: tuple[str, ...] = ("value", "signal", "hist", "k", "d", "plus_di", "minus_di")
OUTPUTS += ("upper", "lower", "middle", "atr", "mean", "std")


def record(indicator: Any, inputs: str, rows: list[tuple[Any, ...]]) -> NDArray[np.float64]:
    """Every output the indicator has, and ready, after each row."""
    update = getattr(
        indicator,
        {"c": "update", "hlc": "update_hlc", "cv": "update_cv"}.get(inputs, "update_hlcv"),
    )
    names = [name for name in OUTPUTS if hasattr(indicator, name)]
    table = []
    for row in rows:
        update(*row)
        table.append([getattr(indicator, name) for name in names] + [indicator.ready])
    return np.array(table, dtype=np.float64).reshape(len(rows), len(names) + 1)


@pytest.mark.parametrize(("inputs", "build"), KIND_PARAMS)
@property_settings
@given(data=series(), args=arguments, split_at=st.floats(min_value=0.0, max_value=1.0))
def test_restored_snapshot_continues_identically(
    inputs: Inputs, build: Build, data: Market, args: tuple[int, int, int, float], split_at: float
) -> None:
    # Arrange
    def make() -> Any:
        return build(*args)

    rows = rows_of(data, inputs)
    split = int(split_at * len(rows))
    uninterrupted = record(make(), inputs, rows)
    first = make()
    record(first, inputs, rows[:split])
    state = json.loads(json.dumps(first.snapshot()))
    resumed = make()

    # Act
    resumed.restore(state)
    restored_state = json.dumps(resumed.snapshot())
    continued = record(resumed, inputs, rows[split:])

    # Assert
    assert restored_state == json.dumps(state)
    assert continued.tobytes() == uninterrupted[split:].tobytes()


@pytest.mark.parametrize(("inputs", "build"), KIND_PARAMS)
@property_settings
@given(data=series(), args=arguments)
def test_ready_turns_true_after_exactly_warmup_updates(
    inputs: Inputs, build: Build, data: Market, args: tuple[int, int, int, float]
) -> None:
    # Arrange
    indicator = build(*args)

    # Act
    ready = record(indicator, inputs, rows_of(data, inputs))[:, -1].astype(bool)

    # Assert
    warmup = indicator.warmup
    assert isinstance(warmup, int)
    assert warmup >= 1
    assert not ready[: warmup - 1].any()
    assert ready[warmup - 1 :].all()
    assert np.isnan(indicator.value) == (len(ready) < warmup)


# --- the pandas-reference indicators -------------------------------------------------------------


def run_outputs(indicator: Any, inputs: str, rows: list[tuple[Any, ...]], *names: str) -> Any:
    update = getattr(
        indicator,
        {"c": "update", "hlc": "update_hlc", "cv": "update_cv"}.get(inputs, "update_hlcv"),
    )
    table = []
    for row in rows:
        update(*row)
        table.append([getattr(indicator, name) for name in names])
    array = np.array(table, dtype=np.float64).reshape(len(rows), len(names))
    return dict(zip(names, array.T, strict=True))


@property_settings
@given(data=series(), period=periods)
def test_zscore_matches_reference(data: Market, period: int) -> None:
    # Act
    actual = run_outputs(ZScore(period), "c", rows_of(data, "c"), "value", "mean", "std")

    # Assert: (x - mean) / std carries a few ulps of x (and of the prices in the window)
    # over std, so the absolute tolerance scales with the prices over the std.
    expected = ref.zscore(data.close, period)
    atol = price_atol(data.close)
    for name in ("mean", "std"):
        assert_close(actual[name], expected[name], rtol=RTOL, atol=atol, what=name)
    with np.errstate(divide="ignore", invalid="ignore"):
        z_atol = np.nan_to_num(16 * atol / expected["std"], nan=0.0, posinf=np.inf)
    assert_close(actual["value"], expected["value"], rtol=RTOL, atol=z_atol, what="z")


@property_settings
@given(data=series())
def test_vwap_matches_reference(data: Market) -> None:
    # Act
    actual = run_outputs(VWAP(), "hlcvt", rows_of(data, "hlcvt"), "value")["value"]

    # Assert
    expected = ref.vwap_utc_day(data.high, data.low, data.close, data.volume, data.open_time_ms)
    atol = price_atol(data.high, data.low, data.close)
    assert_close(actual, expected, rtol=RTOL, atol=atol, what="VWAP")


@property_settings
@given(
    data=series(),
    period=periods,
    atr_period=periods,
    multiplier=st.sampled_from((0.5, 2.0, 3.0)),
)
def test_keltner_matches_reference(
    data: Market, period: int, atr_period: int, multiplier: float
) -> None:
    # Act
    names = ("middle", "upper", "lower", "atr")
    actual = run_outputs(
        KeltnerChannel(period, multiplier, atr_period), "hlc", rows_of(data, "hlc"), *names
    )

    # Assert
    expected = ref.keltner(data.high, data.low, data.close, period, multiplier, atr_period)
    atol = price_atol(data.high, data.low, data.close)
    for name in names:
        assert_close(actual[name], expected[name], rtol=RTOL, atol=atol, what=name)


@property_settings
@given(data=series(), period=periods)
def test_donchian_and_rolling_extremes_are_exact(data: Market, period: int) -> None:
    # Act
    channel = run_outputs(DonchianChannel(period), "hlc", rows_of(data, "hlc"), "upper", "lower")
    highest = run_outputs(RollingMax(period), "c", rows_of(data, "c"), "value")["value"]
    lowest = run_outputs(RollingMin(period), "c", rows_of(data, "c"), "value")["value"]

    # Assert: extremes are inputs, so they are equal, not close.
    def rolling(x: FloatArray, how: str) -> FloatArray:
        return np.asarray(getattr(pd.Series(x).rolling(period), how)().to_numpy())

    assert np.array_equal(channel["upper"], rolling(data.high, "max"), equal_nan=True)
    assert np.array_equal(channel["lower"], rolling(data.low, "min"), equal_nan=True)
    assert np.array_equal(highest, rolling(data.close, "max"), equal_nan=True)
    assert np.array_equal(lowest, rolling(data.close, "min"), equal_nan=True)


@property_settings
@given(data=series(), period=periods)
def test_wma_matches_weighted_windows(data: Market, period: int) -> None:
    # Act
    actual = run_outputs(WMA(period), "c", rows_of(data, "c"), "value")["value"]

    # Assert
    expected = np.full(len(data.close), np.nan)
    if len(data.close) >= period:
        weights = np.arange(1.0, period + 1.0)
        windows = sliding_window_view(data.close, period)
        expected[period - 1 :] = windows @ weights / weights.sum()
    assert_close(actual, expected, rtol=RTOL, atol=price_atol(data.close), what="WMA")


@property_settings
@given(data=series(), k_period=periods, k_smoothing=periods, d_period=periods)
def test_stochastic_and_williams_match_reference(
    data: Market, k_period: int, k_smoothing: int, d_period: int
) -> None:
    # Act
    rows = rows_of(data, "hlc")
    stochastic = run_outputs(Stochastic(k_period, k_smoothing, d_period), "hlc", rows, "k", "d")
    williams = run_outputs(WilliamsR(k_period), "hlc", rows, "value")["value"]

    # Assert: 0..100 scales; the position in a range of a few ulps is itself a few ulps.
    hlc = (data.high, data.low, data.close)
    expected = ref.stochastic(*hlc, k_period, k_smoothing, d_period)
    for name in ("k", "d"):
        assert_close(stochastic[name], expected[name], rtol=RTOL, atol=1e-9, what=name)
    assert_close(williams, ref.williams_r(*hlc, k_period), rtol=RTOL, atol=1e-9, what="%R")
    for values, low, high in ((stochastic["k"], 0.0, 100.0), (williams, -100.0, 0.0)):
        ready = values[~np.isnan(values)]
        assert ((ready >= low) & (ready <= high)).all()


@property_settings
@given(data=series(), period=periods, k_period=periods, d_period=periods)
def test_stoch_rsi_stays_in_range(data: Market, period: int, k_period: int, d_period: int) -> None:
    # Act
    outputs = run_outputs(StochRSI(period, k_period, d_period), "c", rows_of(data, "c"), "k", "d")

    # Assert
    for values in outputs.values():
        ready = values[~np.isnan(values)]
        assert ((ready >= 0.0) & (ready <= 100.0)).all()
