"""Contract suite for the indicators added in issue 11 (oscillators, ADX, channels, weighted and
multiple-EMA averages, rolling statistics, volume).

Each case runs on the two bundled BTCUSDT 1-minute files and is compared value by value (NaNs
included) with TA-Lib, or with the pandas formulas in ``tests.reference`` where TA-Lib has no
such indicator or barbus deviates from it (flat ranges); then the contract: ``ready`` flips
after exactly ``warmup`` updates (TA-Lib's lookback + 1, written out by hand per case), a
JSON-round-tripped snapshot continues bit-identically, reset, argument checks, and windowed
indicators depending on their window alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pytest
import talib
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray
from talib._ta_lib import MA_Type

from barbus.strategies.indicators import (
    ADX,
    CCI,
    DEMA,
    EMA,
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
from barbus.strategies.indicators.oscillators import FLAT_RSI_RANGE
from tests import reference as ref
from tests.reference import FloatArray, assert_close
from tests.unit.strategies import indicator_kit as kit
from tests.unit.strategies.indicator_kit import (
    DATA_FILES,
    EPS,
    RTOL,
    Expected,
    Inputs,
    Market,
)

# Outputs on a fixed 0..100 scale built from a rolling mean (Stochastic, StochRSI, Williams %R):
# TA-Lib's running-sum SMA leaves a residue of ~1e-13 where the exact mean is 0, so these get an
# absolute 1e-9 on that scale besides the relative 1e-9.
SCALE_ATOL = 1e-9
SMA_TYPE = MA_Type.SMA


class Indicator(kit.Indicator, Protocol):
    @property
    def warmup(self) -> int: ...


@dataclass(frozen=True)
class Case:
    id: str
    make: Callable[[], Indicator]
    inputs: Inputs
    outputs: tuple[str, ...]  # attributes recorded after every bar; "value" first
    expected: Callable[[Market], dict[str, Expected]]
    warmup: int  # TA-Lib's lookback + 1, by hand


def updater(indicator: kit.Indicator, inputs: Inputs) -> Callable[..., float]:
    name = {"c": "update", "hlc": "update_hlc", "cv": "update_cv", "hlcvt": "update_hlcv"}[inputs]
    method: Callable[..., float] = getattr(indicator, name)
    return method


def record(indicator: kit.Indicator, case: Case, market: Market) -> dict[str, FloatArray]:
    """Run ``market`` through ``indicator``; one float array per output, plus ``ready`` and the
    values the updates returned (``returned``)."""
    update = updater(indicator, case.inputs)
    outputs = case.outputs
    rows: list[list[float]] = []
    for row in zip(*market.columns(case.inputs), strict=True):
        returned = update(*row)
        rows.append([getattr(indicator, name) for name in outputs] + [indicator.ready, returned])
    table = np.array(rows, dtype=np.float64).reshape(len(rows), len(outputs) + 2)
    return {name: table[:, i] for i, name in enumerate((*outputs, "ready", "returned"))}


# --- expectations --------------------------------------------------------------------------------


def _spread_any(flags: NDArray[Any], window: int) -> NDArray[np.bool_]:
    """True wherever ``flags`` was True in the last ``window`` positions."""
    series = pd.Series(np.asarray(flags, dtype=np.float64))
    return np.asarray(series.rolling(window, min_periods=1).max().to_numpy() > 0.0)


def talib_max(x: FloatArray, period: int) -> FloatArray:
    """talib.MAX, which refuses period 1 (the window is the value itself)."""
    return talib.MAX(x, period) if period > 1 else x.copy()


def talib_min(x: FloatArray, period: int) -> FloatArray:
    """talib.MIN, which refuses period 1."""
    return talib.MIN(x, period) if period > 1 else x.copy()


def macd_case(fast: int, slow: int, signal: int) -> Case:
    def expected(m: Market) -> dict[str, Expected]:
        line, sig, hist = talib.MACD(m.close, fast, slow, signal)
        # The line is a difference of two EMAs of the price: an ulp of either (TA-Lib's C build
        # rounds an EMA step differently now and then) is an ulp of the price, which near a zero
        # crossing is far above 1e-9 of the line.
        atol = 8 * EPS * np.abs(m.close)
        return {
            "value": Expected(line, atol=atol),
            "signal": Expected(sig, atol=atol),
            "hist": Expected(hist, atol=atol),
        }

    return Case(
        f"MACD({fast},{slow},{signal})",
        lambda: MACD(fast, slow, signal),
        "c",
        ("value", "signal", "hist"),
        expected,
        slow + signal - 1,
    )


def stochastic_case(k_period: int, k_smoothing: int, d_period: int) -> Case:
    def expected(m: Market) -> dict[str, Expected]:
        k, d = talib.STOCH(
            m.high, m.low, m.close, k_period, k_smoothing, SMA_TYPE, d_period, SMA_TYPE
        )
        own = ref.stochastic(m.high, m.low, m.close, k_period, k_smoothing, d_period)
        # A flat range is the documented deviation (50, TA-Lib 0): where one reached an output,
        # the reference decides.
        flat = talib.MAX(m.high, k_period) == talib.MIN(m.low, k_period)
        k_hit = _spread_any(flat, k_smoothing)
        d_hit = _spread_any(flat, k_smoothing + d_period - 1)
        return {
            "value": Expected(np.where(k_hit, own["k"], k), atol=SCALE_ATOL),
            "k": Expected(np.where(k_hit, own["k"], k), atol=SCALE_ATOL),
            "d": Expected(np.where(d_hit, own["d"], d), atol=SCALE_ATOL),
        }

    return Case(
        f"Stochastic({k_period},{k_smoothing},{d_period})",
        lambda: Stochastic(k_period, k_smoothing, d_period),
        "hlc",
        ("value", "k", "d"),
        expected,
        k_period + k_smoothing + d_period - 2,
    )


def stoch_rsi_case(period: int, k_period: int, d_period: int) -> Case:
    def expected(m: Market) -> dict[str, Expected]:
        k, d = talib.STOCHRSI(m.close, period, k_period, d_period, SMA_TYPE)
        own = ref.stoch_rsi(m.close, period, k_period, d_period, FLAT_RSI_RANGE)
        # Where the RSI range is within rounding noise of flat (or TA-Lib's RSI is its flat 0),
        # TA-Lib reads ulps as 0..100 and barbus says 50: the reference decides there.
        gain, loss = ref.wilder_averages(m.close, period)
        rsi = pd.Series(ref.rsi(m.close, period))
        spread = rsi.rolling(k_period).max() - rsi.rolling(k_period).min()
        shaky = np.asarray((spread < 1e-6).to_numpy()) | _spread_any(gain + loss < 1e-8, k_period)
        k_hit = shaky
        d_hit = _spread_any(shaky, d_period)
        return {
            "value": Expected(np.where(k_hit, own["k"], k), atol=SCALE_ATOL),
            "k": Expected(np.where(k_hit, own["k"], k), atol=SCALE_ATOL),
            "d": Expected(np.where(d_hit, own["d"], d), atol=SCALE_ATOL),
        }

    return Case(
        f"StochRSI({period},{k_period},{d_period})",
        lambda: StochRSI(period, k_period, d_period),
        "c",
        ("value", "k", "d"),
        expected,
        period + k_period + d_period - 1,
    )


def williams_case(period: int) -> Case:
    def expected(m: Market) -> dict[str, Expected]:
        flat = talib.MAX(m.high, period) == talib.MIN(m.low, period)
        own = ref.williams_r(m.high, m.low, m.close, period)
        willr = talib.WILLR(m.high, m.low, m.close, period)
        return {"value": Expected(np.where(flat, own, willr), atol=SCALE_ATOL)}

    return Case(
        f"WilliamsR({period})", lambda: WilliamsR(period), "hlc", ("value",), expected, period
    )


def adx_case(period: int) -> Case:
    def expected(m: Market) -> dict[str, Expected]:
        hlc = (m.high, m.low, m.close)
        return {
            "value": Expected(talib.ADX(*hlc, period)),
            "plus_di": Expected(talib.PLUS_DI(*hlc, period)),
            "minus_di": Expected(talib.MINUS_DI(*hlc, period)),
        }

    return Case(
        f"ADX({period})",
        lambda: ADX(period),
        "hlc",
        ("value", "plus_di", "minus_di"),
        expected,
        2 * period,
    )


def cci_case(period: int) -> Case:
    def expected(m: Market) -> dict[str, Expected]:
        # Near CCI = 0 the numerator tp - mean cancels: TA-Lib's mean (summed in its ring
        # buffer's order) and the exact one differ by a few ulps of tp, which is a few ulps of
        # tp over 0.015 x the mean deviation in CCI units.
        tp = (m.high + m.low + m.close) / 3.0
        atol = np.full(len(tp), np.inf)
        if len(tp) >= period:
            windows = sliding_window_view(tp, period)
            deviation = np.abs(windows - windows.mean(axis=1)[:, None]).mean(axis=1)
            with np.errstate(divide="ignore"):
                atol[period - 1 :] = 8 * EPS * np.abs(tp[period - 1 :]) / (0.015 * deviation)
        return {"value": Expected(talib.CCI(m.high, m.low, m.close, period), atol=atol)}

    return Case(f"CCI({period})", lambda: CCI(period), "hlc", ("value",), expected, period)


def simple_case(
    name: str,
    make: Callable[[], Indicator],
    inputs: Inputs,
    talib_values: Callable[[Market], FloatArray],
    warmup: int,
) -> Case:
    return Case(
        name, make, inputs, ("value",), lambda m: {"value": Expected(talib_values(m))}, warmup
    )


def rolling_std_case(period: int) -> Case:
    def expected(m: Market) -> dict[str, Expected]:
        # Not talib.STDDEV: its E[x^2] - E[x]^2 loses eps * x^2 / var, 1e-6 relative for a
        # std of 0.005 at 1e5 (period 2); the two-pass formula of the Bollinger reference.
        return {
            "value": Expected(ref.bollinger(m.close, period, 1.0)["std"]),
            "mean": Expected(talib.SMA(m.close, period)),
        }

    return Case(
        f"RollingStd({period})",
        lambda: RollingStd(period),
        "c",
        ("value", "mean"),
        expected,
        period,
    )


def zscore_case(period: int) -> Case:
    def expected(m: Market) -> dict[str, Expected]:
        own = ref.zscore(m.close, period)
        # z = (x - mean) / std: the cancellation in x - mean costs a few ulps of x over std.
        with np.errstate(divide="ignore", invalid="ignore"):
            atol = np.where(own["std"] > 0.0, 8 * EPS * np.abs(m.close) / own["std"], 0.0)
        return {
            "value": Expected(own["value"], atol=np.nan_to_num(atol, nan=0.0)),
            "mean": Expected(talib.SMA(m.close, period)),
            "std": Expected(own["std"]),
        }

    return Case(
        f"ZScore({period})",
        lambda: ZScore(period),
        "c",
        ("value", "mean", "std"),
        expected,
        period,
    )


def donchian_case(period: int) -> Case:
    def expected(m: Market) -> dict[str, Expected]:
        upper, lower = talib_max(m.high, period), talib_min(m.low, period)
        middle = (upper + lower) / 2.0
        return {
            "value": Expected(middle),
            "middle": Expected(middle),
            "upper": Expected(upper, rtol=0.0),
            "lower": Expected(lower, rtol=0.0),
        }

    return Case(
        f"DonchianChannel({period})",
        lambda: DonchianChannel(period),
        "hlc",
        ("value", "middle", "upper", "lower"),
        expected,
        period,
    )


def keltner_case(period: int, multiplier: float, atr_period: int) -> Case:
    def expected(m: Market) -> dict[str, Expected]:
        middle = talib.EMA(m.close, period)
        atr = talib.ATR(m.high, m.low, m.close, atr_period)
        defined = ~np.isnan(middle) & ~np.isnan(atr)
        middle = np.where(defined, middle, np.nan)
        atr = np.where(defined, atr, np.nan)
        return {
            "value": Expected(middle),
            "middle": Expected(middle),
            "upper": Expected(middle + multiplier * atr),
            "lower": Expected(middle - multiplier * atr),
            "atr": Expected(atr),
        }

    return Case(
        f"KeltnerChannel({period},{multiplier},{atr_period})",
        lambda: KeltnerChannel(period, multiplier, atr_period),
        "hlc",
        ("value", "middle", "upper", "lower", "atr"),
        expected,
        max(period, atr_period + 1),
    )


def vwap_case() -> Case:
    def expected(m: Market) -> dict[str, Expected]:
        own = ref.vwap_utc_day(m.high, m.low, m.close, m.volume, m.open_time_ms)
        return {"value": Expected(own)}

    return Case("VWAP", VWAP, "hlcvt", ("value",), expected, 1)


CASES = [
    macd_case(12, 26, 9),
    macd_case(5, 35, 5),
    macd_case(2, 3, 1),
    stochastic_case(14, 3, 3),
    stochastic_case(5, 3, 3),
    stochastic_case(14, 1, 3),
    stoch_rsi_case(14, 5, 3),
    stoch_rsi_case(14, 14, 3),
    williams_case(14),
    williams_case(2),
    adx_case(14),
    adx_case(5),
    adx_case(2),
    cci_case(20),
    cci_case(2),
    simple_case("ROC(10)", lambda: ROC(10), "c", lambda m: talib.ROC(m.close, 10), 11),
    simple_case("ROC(1)", lambda: ROC(1), "c", lambda m: talib.ROC(m.close, 1), 2),
    simple_case("OBV", OBV, "cv", lambda m: talib.OBV(m.close, m.volume), 1),
    simple_case("WMA(20)", lambda: WMA(20), "c", lambda m: talib.WMA(m.close, 20), 20),
    simple_case("WMA(1)", lambda: WMA(1), "c", lambda m: talib.WMA(m.close, 1), 1),
    simple_case("DEMA(20)", lambda: DEMA(20), "c", lambda m: talib.DEMA(m.close, 20), 39),
    simple_case("DEMA(2)", lambda: DEMA(2), "c", lambda m: talib.DEMA(m.close, 2), 3),
    simple_case("TEMA(20)", lambda: TEMA(20), "c", lambda m: talib.TEMA(m.close, 20), 58),
    simple_case("TEMA(2)", lambda: TEMA(2), "c", lambda m: talib.TEMA(m.close, 2), 4),
    simple_case(
        "RollingMax(20)", lambda: RollingMax(20), "c", lambda m: talib.MAX(m.close, 20), 20
    ),
    simple_case("RollingMin(7)", lambda: RollingMin(7), "c", lambda m: talib.MIN(m.close, 7), 7),
    simple_case("RollingMax(1)", lambda: RollingMax(1), "c", lambda m: talib_max(m.close, 1), 1),
    rolling_std_case(20),
    rolling_std_case(2),
    zscore_case(20),
    donchian_case(20),
    donchian_case(1),
    keltner_case(20, 2.0, 10),
    keltner_case(5, 1.5, 14),
    vwap_case(),
]
CASE_PARAMS = [pytest.param(case, id=case.id) for case in CASES]
WINDOWED_PREFIXES = ("Roll", "ZScore", "WMA", "CCI", "Donchian", "Will", "Stochastic(", "ROC")
WINDOWED = [case for case in CASES if case.id.startswith(WINDOWED_PREFIXES)]


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def markets() -> dict[str, Market]:
    return kit.load_markets()


@pytest.fixture(scope="module")
def short_market(markets: dict[str, Market]) -> Market:
    return markets["btc-2025"].head(600)


def run_case(case: Case, market: Market) -> dict[str, FloatArray]:
    return record(case.make(), case, market)


@pytest.fixture(scope="module")
def runs(markets: dict[str, Market]) -> kit.Runs[Case]:
    return kit.Runs(markets, run_case)


# --- real data vs TA-Lib / reference -------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("data", DATA_FILES)
@pytest.mark.parametrize("case", CASE_PARAMS)
def test_matches_talib_or_reference_on_real_data(
    case: Case, data: str, runs: kit.Runs[Case]
) -> None:
    kit.assert_matches_expected(case, data, runs)


@pytest.mark.slow
@pytest.mark.parametrize("data", DATA_FILES)
@pytest.mark.parametrize("case", CASE_PARAMS)
def test_ready_flips_after_warmup_updates(case: Case, data: str, runs: kit.Runs[Case]) -> None:
    # Arrange
    reference_value = runs.expected(case, data)["value"].values
    first_defined = int(np.argmax(~np.isnan(reference_value)))

    # Act
    indicator = case.make()
    ready = runs.actual(case, data)["ready"].astype(bool)

    # Assert: warmup is TA-Lib's lookback + 1, and ready says so on the bar it happens.
    assert indicator.warmup == case.warmup == first_defined + 1
    assert not ready[: case.warmup - 1].any()
    assert ready[case.warmup - 1 :].all()


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_update_returns_the_value_attribute(case: Case, short_market: Market) -> None:
    # Act
    run = record(case.make(), case, short_market)

    # Assert
    assert run["returned"].tobytes() == run["value"].tobytes()


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_state_lives_in_slots_and_outputs_are_plain_floats(
    case: Case, short_market: Market
) -> None:
    # Arrange
    indicator = case.make()

    # Act
    record(indicator, case, short_market.head(100))

    # Assert: no per-instance dict (the hot path touches slots only), floats out.
    assert not hasattr(indicator, "__dict__")
    assert type(indicator.ready) is bool
    assert type(indicator.warmup) is int
    for name in case.outputs:
        assert type(getattr(indicator, name)) is float, name


# --- state ---------------------------------------------------------------------------------------


def recorder(case: Case) -> kit.Record:
    """Feed a market through an indicator made by ``case``, through the case's update method."""

    def run(indicator: kit.Indicator, market: Market) -> dict[str, FloatArray]:
        return record(indicator, case, market)

    return run


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_restored_snapshot_continues_bit_identically(case: Case, short_market: Market) -> None:
    splits = sorted({max(1, case.warmup // 2), case.warmup - 1, case.warmup + 3, 400})
    kit.assert_snapshot_continues(case.make, recorder(case), short_market, splits)


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_reset_returns_to_the_warm_up_state(case: Case, short_market: Market) -> None:
    kit.assert_reset_returns_to_warm_up(case.make, recorder(case), short_market)


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_state_stays_flat_over_a_long_run(case: Case, markets: dict[str, Market]) -> None:
    # The same numbers, only their digits may differ (a float's repr is <= 24 chars).
    market = markets["btc-2025"].head(10_000)
    kit.assert_state_stays_flat(case.make, recorder(case), market, 2 * case.warmup, 24)


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_restore_refuses_another_indicator(case: Case) -> None:
    # Arrange
    other = EMA(3).snapshot()

    # Act / Assert
    with pytest.raises(ValueError, match="cannot restore"):
        case.make().restore(other)


SAME_KIND_OTHER_ARGUMENTS: list[tuple[Indicator, Indicator, str]] = [
    (MACD(12, 26, 9), MACD(12, 26, 8), "signal_period"),
    (Stochastic(14, 3, 3), Stochastic(14, 1, 3), "k_smoothing"),
    (StochRSI(14, 5, 3), StochRSI(14, 14, 3), "k_period"),
    (KeltnerChannel(20, 2.0, 10), KeltnerChannel(20, 1.5, 10), "multiplier"),
    (RollingMax(5), RollingMax(6), "period"),
    (WMA(5), WMA(6), "period"),
    (ADX(14), ADX(5), "period"),
]


@pytest.mark.parametrize(("source", "target", "key"), SAME_KIND_OTHER_ARGUMENTS)
def test_restore_refuses_a_snapshot_of_other_arguments(
    source: Indicator, target: Indicator, key: str
) -> None:
    with pytest.raises(ValueError, match=key):
        target.restore(source.snapshot())


# --- windowed: a function of the window alone ----------------------------------------------------


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in WINDOWED])
def test_windowed_indicator_does_not_depend_on_where_it_started(
    case: Case, markets: dict[str, Market]
) -> None:
    # Arrange: one run from bar 0 and one from bar 1_234, both long past warm-up afterwards.
    market = markets["btc-2023-flat-and-gap"].head(20_000)
    start = 1_234
    settled = start + case.warmup + 3 * 20  # the smoothing windows of Stochastic included

    # Act
    early = record(case.make(), case, market)
    late = record(case.make(), case, market.tail(start))

    # Assert: bit-identical outputs once the late run's windows hold the same bars.
    for name in case.outputs:
        assert early[name][settled:].tobytes() == late[name][settled - start :].tobytes(), name


# --- hand-computed behaviour ---------------------------------------------------------------------


def test_flat_range_is_neutral_for_stochastic_williams_and_zscore() -> None:
    # Arrange
    stochastic, williams, zscore = Stochastic(3, 1, 2), WilliamsR(3), ZScore(3)

    # Act
    for _ in range(6):
        stochastic.update_hlc(100.0, 100.0, 100.0)
        williams.update_hlc(100.0, 100.0, 100.0)
        zscore.update(100.0)

    # Assert: the documented deviations; TA-Lib says 0 for both oscillators.
    assert (stochastic.k, stochastic.d) == (50.0, 50.0)
    assert williams.value == -50.0
    assert (zscore.value, zscore.std, zscore.mean) == (0.0, 0.0, 100.0)
    flat = np.full(6, 100.0)
    assert talib.STOCH(flat, flat, flat, 3, 1, SMA_TYPE, 2, SMA_TYPE)[0][-1] == 0.0
    assert talib.WILLR(flat, flat, flat, 3)[-1] == 0.0


def test_stochastic_and_williams_by_hand() -> None:
    # Arrange: highs 10, 12, 11; lows 8, 9, 7; close 10 -> range 7..12, close 3/5 of the way.
    stochastic, williams = Stochastic(3, 1, 1), WilliamsR(3)
    bars = [(10.0, 8.0, 9.0), (12.0, 9.0, 11.0), (11.0, 7.0, 10.0)]

    # Act
    for bar in bars:
        stochastic.update_hlc(*bar)
        williams.update_hlc(*bar)

    # Assert
    assert stochastic.k == pytest.approx(60.0, rel=1e-15)
    assert williams.value == pytest.approx(-40.0, rel=1e-15)


def test_oscillators_never_leave_their_scale() -> None:
    # Arrange: TA-Lib's (close - low) / ((high - low) / 100) gives 100.00000000000001 here.
    high, low = 195.82, 193.91
    stochastic, williams, stoch_rsi = Stochastic(1, 1, 1), WilliamsR(1), StochRSI(1, 2, 1)
    assert (high - low) / ((high - low) / 100.0) > 100.0

    # Act
    stochastic.update_hlc(high, low, high)
    williams.update_hlc(high, low, low)
    for x in (low, high, low, high):  # RSI(1) of these is 0, 100, 0, 100
        stoch_rsi.update(x)

    # Assert
    assert stochastic.k == 100.0
    assert williams.value == -100.0
    assert stoch_rsi.k == 100.0


def test_wma_by_hand() -> None:
    # Arrange
    wma = WMA(3)

    # Act
    values = [wma.update(x) for x in (1.0, 2.0, 4.0, 8.0)]

    # Assert: (1*1 + 2*2 + 3*4) / 6, then (1*2 + 2*4 + 3*8) / 6.
    assert math.isnan(values[0])
    assert math.isnan(values[1])
    assert values[2:] == [17.0 / 6.0, 34.0 / 6.0]


def test_obv_and_roc_by_hand() -> None:
    # Arrange
    obv, roc = OBV(), ROC(2)
    closes = [10.0, 11.0, 11.0, 10.5, 12.0]
    volumes = [5.0, 2.0, 7.0, 1.5, 4.0]

    # Act
    obvs = [obv.update_cv(c, v) for c, v in zip(closes, volumes, strict=True)]
    rocs = [roc.update(c) for c in closes]

    # Assert
    assert obvs == [5.0, 7.0, 7.0, 5.5, 9.5]
    assert math.isnan(rocs[1])
    assert rocs[2:] == [
        (11.0 / 10.0 - 1.0) * 100.0,
        (10.5 / 11.0 - 1.0) * 100.0,
        (12.0 / 11.0 - 1.0) * 100.0,
    ]


def test_vwap_restarts_at_utc_midnight_and_survives_a_zero_volume_start() -> None:
    # Arrange: two bars before 00:00 UTC, then a zero-volume bar and a traded bar after it.
    vwap = VWAP()
    day = 86_400_000
    midnight = 20_000 * day

    # Act
    first = vwap.update_hlcv(12.0, 9.0, 9.0, 2.0, midnight - 120_000)  # tp 10
    second = vwap.update_hlcv(22.0, 19.0, 19.0, 3.0, midnight - 60_000)  # tp 20
    quiet = vwap.update_hlcv(31.0, 29.0, 30.0, 0.0, midnight)  # tp 30, no volume
    traded = vwap.update_hlcv(42.0, 39.0, 39.0, 1.0, midnight + 60_000)  # tp 40

    # Assert
    assert first == 10.0
    assert second == pytest.approx((10.0 * 2 + 20.0 * 3) / 5, rel=1e-15)
    assert quiet == 30.0
    assert traded == 40.0  # the quiet bar weighs nothing


def test_macd_fast_ema_is_seeded_where_the_slow_one_is() -> None:
    # Arrange: TA-Lib seeds the fast EMA on the slow EMA's seed bar with the mean of the last
    # ``fast`` inputs, so the MACD line is not talib.EMA(fast) - talib.EMA(slow).
    close = np.linspace(100.0, 120.0, 60) + np.sin(np.arange(60.0))
    macd = MACD(3, 6, 2)

    # Act
    lines = np.array([macd.update(x) for x in close.tolist()])

    # Assert
    by_hand = np.full(60, np.nan)
    fast = float(np.mean(close[3:6]))
    slow = float(np.mean(close[:6]))
    line = [fast - slow]
    for x in close[6:].tolist():
        fast += (x - fast) * (2.0 / 4.0)
        slow += (x - slow) * (2.0 / 7.0)
        line.append(fast - slow)
    by_hand[6:] = line[1:]  # ready once the 2-value signal EMA is: after 7 inputs
    assert_close(lines, by_hand, rtol=1e-12, what="MACD line")
    naive = talib.EMA(close, 3) - talib.EMA(close, 6)
    assert not np.allclose(lines[6:], naive[6:], rtol=1e-9)


# --- arguments -----------------------------------------------------------------------------------

BAD_ARGUMENTS: list[tuple[Callable[..., object], tuple[object, ...]]] = [
    (MACD, (0, 26, 9)),
    (MACD, (12, 12, 9)),
    (MACD, (26, 12, 9)),
    (MACD, (12, 26, 0)),
    (Stochastic, (0, 3, 3)),
    (Stochastic, (14, 0, 3)),
    (Stochastic, (14, 3, 2.5)),
    (StochRSI, (14, 0, 3)),
    (StochRSI, (True, 5, 3)),
    (WilliamsR, (0,)),
    (ADX, (0,)),
    (CCI, ("20",)),
    (ROC, (0,)),
    (WMA, (0,)),
    (DEMA, (-1,)),
    (TEMA, (0,)),
    (RollingMax, (0,)),
    (RollingMin, (1.0,)),
    (RollingStd, (0,)),
    (ZScore, (0,)),
    (DonchianChannel, (0,)),
    (KeltnerChannel, (20, 0.0, 10)),
    (KeltnerChannel, (20, math.nan, 10)),
    (KeltnerChannel, (20, 2.0, 0)),
]


@pytest.mark.parametrize(("factory", "args"), kit.bad_argument_params(BAD_ARGUMENTS))
def test_constructor_rejects_bad_arguments(
    factory: Callable[..., object], args: tuple[object, ...]
) -> None:
    kit.assert_rejects(factory, args)


@pytest.mark.slow
@pytest.mark.parametrize("data", DATA_FILES)
def test_rolling_std_matches_talib_where_talib_is_accurate(data: str, runs: kit.Runs[Case]) -> None:
    # Arrange: over 20 bars the 1m BTC std is large enough for TA-Lib's one-pass formula.
    case = next(c for c in CASES if c.id == "RollingStd(20)")
    close = runs.markets[data].close

    # Act
    actual = runs.actual(case, data)

    # Assert
    assert_close(actual["value"], talib.STDDEV(close, 20, 1.0), rtol=RTOL, what="STDDEV")
