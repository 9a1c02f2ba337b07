"""Contract suite for ``strategies.indicators``: one parametrised set of checks for all of them.

Each case is compared on the two bundled BTCUSDT 1-minute files with TA-Lib where TA-Lib has the
indicator and convention, otherwise with the independent formulas in ``tests.reference``; then
the shared contract: ``ready`` boundary, snapshot/restore continuity, flat state, reset and
argument validation. Indicator runs are cached per module, so the 130k-bar replays run once.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

import numpy as np
import pytest
import talib

from barbus.strategies.indicators import ATR, EMA, RSI, SMA, BollingerBands, Supertrend, TrueRange
from tests import reference as ref
from tests.reference import FloatArray, assert_close
from tests.unit.strategies import indicator_kit as kit
from tests.unit.strategies.indicator_kit import (
    DATA_FILES,
    EPS,
    RTOL,
    Expected,
    Indicator,
    Market,
)


@dataclass(frozen=True)
class Case:
    id: str
    make: Callable[[], Indicator]
    outputs: tuple[str, ...]  # attributes recorded after every bar; "value" first
    expected: Callable[[Market], dict[str, Expected]]
    period: int  # warm-up scale, for choosing snapshot points


def record(indicator: Indicator, outputs: tuple[str, ...], market: Market) -> dict[str, FloatArray]:
    """Run ``market`` through ``indicator``; one float array per output, plus ``ready``.

    A lone "value" is taken from what the update returns (the fast path: most cases); the
    contract that it equals the ``value`` attribute has its own test.
    """
    if not isinstance(indicator, TrueRange | ATR | Supertrend | SMA | EMA | RSI | BollingerBands):
        raise TypeError(f"not an indicator: {indicator!r}")
    closes = market.close.tolist()
    if outputs == ("value",):
        values: list[float] = []
        ready: list[bool] = []
        add_value, add_ready = values.append, ready.append
        if isinstance(indicator, TrueRange | ATR | Supertrend):
            update_hlc = indicator.update_hlc
            for high, low, close in zip(*market.columns("hlc"), strict=True):
                add_value(update_hlc(high, low, close))
                add_ready(indicator.ready)
        else:
            update = indicator.update
            for close in closes:
                add_value(update(close))
                add_ready(indicator.ready)
        return {"value": np.array(values), "ready": np.array(ready, dtype=np.float64)}
    get = attrgetter(*outputs, "ready")
    rows: list[tuple[float, ...]] = []
    add_row = rows.append
    if isinstance(indicator, TrueRange | ATR | Supertrend):
        update_hlc = indicator.update_hlc
        for high, low, close in zip(*market.columns("hlc"), strict=True):
            update_hlc(high, low, close)
            add_row(get(indicator))
    else:
        update = indicator.update
        for close in closes:
            update(close)
            add_row(get(indicator))
    table = np.array(rows, dtype=np.float64).reshape(len(rows), len(outputs) + 1)
    return {name: table[:, i] for i, name in enumerate((*outputs, "ready"))}


# --- cases -------------------------------------------------------------------------------------


def sma_case(period: int) -> Case:
    return Case(
        f"SMA({period})",
        lambda: SMA(period),
        ("value",),
        lambda m: {"value": Expected(talib.SMA(m.close, period))},
        period,
    )


def ema_case(period: int) -> Case:
    return Case(
        f"EMA({period})",
        lambda: EMA(period),
        ("value",),
        lambda m: {"value": Expected(talib.EMA(m.close, period))},
        period,
    )


def rsi_expected(market: Market, period: int) -> dict[str, Expected]:
    own = ref.rsi(market.close, period)
    if period < 2:  # TA-Lib refuses period 1
        return {"value": Expected(own)}
    # TA-Lib returns 0 wherever avg_gain + avg_loss < 1e-8 (flat stretches); we return the ratio,
    # or 50 for an exact 0 (the documented deviation). Those points use our reference instead.
    gain, loss = ref.wilder_averages(market.close, period)
    below = gain + loss < 1e-8
    return {"value": Expected(np.where(below, own, talib.RSI(market.close, period)))}


def rsi_case(period: int) -> Case:
    return Case(
        f"RSI({period})",
        lambda: RSI(period),
        ("value",),
        lambda m: rsi_expected(m, period),
        period + 1,
    )


BAND_OUTPUTS = ("value", "middle", "std", "upper", "lower", "percent_b", "bandwidth")


def bollinger_expected(market: Market, period: int, num_std: float) -> dict[str, Expected]:
    own = ref.bollinger(market.close, period, num_std)
    spread = own["upper"] - own["lower"]
    # %B divides by the band spread, which can be 1e-7 of the price: its absolute error is a few
    # ulps of the price over the spread, so the tolerance scales the same way.
    with np.errstate(divide="ignore", invalid="ignore"):
        percent_b_atol = 16 * EPS * np.abs(market.close) / spread
    expected = {
        "value": Expected(own["middle"]),
        "middle": Expected(own["middle"]),
        "upper": Expected(own["upper"]),
        "lower": Expected(own["lower"]),
        "std": Expected(own["std"]),
        "percent_b": Expected(own["percent_b"], atol=percent_b_atol),
        # The reference works on the float images of the decimal prices, the indicator on the
        # decimals themselves (exactly): their std differ by ulps of the price, which is up to
        # 1e-9 of a std of 1e-7 of the price, so bandwidth (std / price) gets a few EPS absolute.
        "bandwidth": Expected(own["bandwidth"], atol=16 * EPS * num_std),
    }
    if period >= 2:  # TA-Lib refuses period 1
        upper, middle, lower = talib.BBANDS(market.close, period, num_std, num_std)  # SMA
        expected |= {
            "value": Expected(middle),
            "middle": Expected(middle),
            "upper": Expected(upper),
            "lower": Expected(lower),
        }
    return expected


def bollinger_case(period: int, num_std: float) -> Case:
    return Case(
        f"BollingerBands({period},{num_std})",
        lambda: BollingerBands(period, num_std),
        BAND_OUTPUTS,
        lambda m: bollinger_expected(m, period, num_std),
        period,
    )


def true_range_case() -> Case:
    return Case(
        "TrueRange",
        TrueRange,
        ("value",),
        lambda m: {"value": Expected(talib.TRANGE(m.high, m.low, m.close))},
        2,
    )


def atr_case(period: int, smoothing: str) -> Case:
    def expected(m: Market) -> dict[str, Expected]:
        if smoothing == "wilder":
            return {"value": Expected(talib.ATR(m.high, m.low, m.close, period))}
        return {"value": Expected(ref.atr(m.high, m.low, m.close, period, "sma"))}

    return Case(
        f"ATR({period},{smoothing})",
        lambda: ATR(period, "wilder" if smoothing == "wilder" else "sma"),
        ("value",),
        expected,
        period + 1,
    )


def supertrend_case(period: int, multiplier: float, smoothing: str) -> Case:
    atr_smoothing: Any = smoothing

    def expected(m: Market) -> dict[str, Expected]:
        own = ref.supertrend(m.high, m.low, m.close, period, multiplier, atr_smoothing)
        expected = {
            "value": Expected(own["value"]),
            "trend": Expected(own["trend"], rtol=0.0),
            "upper": Expected(own["upper"]),
            "lower": Expected(own["lower"]),
        }
        if smoothing == "wilder":  # TA-Lib >= 0.6 has the Wilder-ATR Supertrend: same rules
            value, trend = talib.SUPERTREND(m.high, m.low, m.close, period, multiplier)
            expected |= {
                "value": Expected(value),
                "trend": Expected(trend.astype(np.float64), rtol=0.0),
            }
        return expected

    return Case(
        f"Supertrend({period},{multiplier},{smoothing})",
        lambda: Supertrend(period, multiplier, atr_smoothing),
        ("value", "trend", "upper", "lower"),
        expected,
        period + 1,
    )


CASES = [
    *(sma_case(p) for p in (1, 2, 14, 20, 50)),
    *(ema_case(p) for p in (1, 2, 14, 50)),
    *(rsi_case(p) for p in (1, 2, 14, 50)),
    *(bollinger_case(p, k) for p, k in ((1, 2.0), (2, 2.0), (14, 2.5), (20, 2.0), (50, 1.8))),
    true_range_case(),
    *(atr_case(p, s) for p in (1, 14, 50) for s in ("wilder", "sma")),
    supertrend_case(12, 3.0, "sma"),
    supertrend_case(10, 1.0, "sma"),
    supertrend_case(11, 2.0, "sma"),
    supertrend_case(10, 3.0, "wilder"),
]
CASE_PARAMS = [pytest.param(case, id=case.id) for case in CASES]


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def markets() -> dict[str, Market]:
    return kit.load_markets()


def run_case(case: Case, market: Market) -> dict[str, FloatArray]:
    return record(case.make(), case.outputs, market)


@pytest.fixture(scope="module")
def runs(markets: dict[str, Market]) -> kit.Runs[Case]:
    return kit.Runs(markets, run_case)


@pytest.fixture(scope="module")
def short_market(markets: dict[str, Market]) -> Market:
    return markets["btc-2025"].head(600)


# --- real data vs TA-Lib / reference -----------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("data", DATA_FILES)
@pytest.mark.parametrize("case", CASE_PARAMS)
def test_matches_reference_on_real_data(case: Case, data: str, runs: kit.Runs[Case]) -> None:
    kit.assert_matches_expected(case, data, runs)


@pytest.mark.slow
@pytest.mark.parametrize("data", DATA_FILES)
@pytest.mark.parametrize("case", CASE_PARAMS)
def test_ready_flips_exactly_where_reference_starts(
    case: Case, data: str, runs: kit.Runs[Case]
) -> None:
    # Arrange
    reference_value = runs.expected(case, data)["value"].values
    first_defined = int(np.argmax(~np.isnan(reference_value)))

    # Act
    ready = runs.actual(case, data)["ready"].astype(bool)

    # Assert
    assert not ready[:first_defined].any()
    assert ready[first_defined:].all()


# --- state ---------------------------------------------------------------------------------------


def snapshot_points(case: Case) -> list[int]:
    """Mid warm-up, just after it, and well into the series."""
    return sorted({max(1, case.period // 2), case.period + 3, 400})


def recorder(case: Case) -> kit.Record:
    """Feed a market through an indicator made by ``case``, recording the case's outputs."""

    def run(indicator: Indicator, market: Market) -> dict[str, FloatArray]:
        return record(indicator, case.outputs, market)

    return run


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_restored_snapshot_continues_bit_identically(case: Case, short_market: Market) -> None:
    kit.assert_snapshot_continues(case.make, recorder(case), short_market, snapshot_points(case))


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_state_stays_flat_over_a_long_run(case: Case, markets: dict[str, Market]) -> None:
    # A float's repr is at most ~24 chars; 16 of slack per number.
    market = markets["btc-2025"].head(10_000)
    kit.assert_state_stays_flat(case.make, recorder(case), market, 2 * case.period, 16)


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_reset_returns_to_the_warm_up_state(case: Case, short_market: Market) -> None:
    kit.assert_reset_returns_to_warm_up(case.make, recorder(case), short_market)


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_update_returns_the_value_attribute(case: Case, short_market: Market) -> None:
    # Arrange
    indicator = case.make()
    returned = record(indicator, ("value",), short_market)["value"]  # from the update's return
    again = case.make()

    # Act
    attribute = record(again, ("value", "ready"), short_market)["value"]  # read from the attribute

    # Assert
    assert returned.tobytes() == attribute.tobytes()


def test_restore_refuses_a_snapshot_of_other_arguments_or_type() -> None:
    # Arrange
    sma_14 = SMA(14).snapshot()

    # Act / Assert
    with pytest.raises(ValueError, match="period"):
        SMA(20).restore(sma_14)
    with pytest.raises(ValueError, match="cannot restore"):
        EMA(14).restore(sma_14)
    with pytest.raises(ValueError, match="smoothing"):
        ATR(14, "sma").restore(ATR(14, "wilder").snapshot())


# --- numerics ----------------------------------------------------------------------------------

DRIFT_UPDATES = 1_000_000
DRIFT_TAIL = 1_000


@pytest.fixture(scope="module")
def random_walk() -> FloatArray:
    """A deterministic 1-minute-like random walk around 1e5 (steps of std 10)."""
    rng = np.random.default_rng(20250520)
    return 1e5 + np.cumsum(rng.normal(0.0, 10.0, DRIFT_UPDATES))


@pytest.mark.parametrize("period", [20])
def test_sma_does_not_drift_over_a_million_updates(period: int, random_walk: FloatArray) -> None:
    # Arrange
    sma = SMA(period)
    update = sma.update
    head, tail = random_walk[:-DRIFT_TAIL].tolist(), random_walk[-DRIFT_TAIL:].tolist()

    # Act
    for x in head:
        update(x)
    last = [update(x) for x in tail]

    # Assert
    window = random_walk[-(DRIFT_TAIL + period - 1) :]
    assert_close(last, ref.sma(window, period)[period - 1 :], rtol=RTOL, what="SMA")


@pytest.mark.parametrize("period", [20])
def test_bollinger_does_not_drift_over_a_million_updates(
    period: int, random_walk: FloatArray
) -> None:
    # Arrange
    bands = BollingerBands(period, 2.0)
    update = bands.update
    head, tail = random_walk[:-DRIFT_TAIL].tolist(), random_walk[-DRIFT_TAIL:].tolist()

    # Act
    for x in head:
        update(x)
    last = []
    for x in tail:
        update(x)
        last.append((bands.middle, bands.std, bands.upper, bands.lower))

    # Assert
    window = random_walk[-(DRIFT_TAIL + period - 1) :]
    expected = ref.bollinger(window, period, 2.0)
    actual = np.array(last)
    for i, name in enumerate(("middle", "std", "upper", "lower")):
        assert_close(actual[:, i], expected[name][period - 1 :], rtol=RTOL, what=name)


def test_bollinger_std_is_exactly_zero_once_a_jump_leaves_the_window() -> None:
    # Arrange: a factor-of-10 outlier, then a flat window. A purely sliding M2 would keep a
    # residue of ~eps * 1e12 here, i.e. a std of ~1e-2 instead of 0.
    bands = BollingerBands(5, 2.0)
    series = [100_000.0, 1_000_000.0, *([100_000.01] * 5)]

    # Act
    for x in series:
        bands.update(x)

    # Assert
    assert bands.std == 0.0
    assert bands.upper == bands.lower == bands.middle
    assert math.isnan(bands.percent_b)
    assert bands.bandwidth == 0.0


def test_bollinger_band_gives_other_multipliers_around_the_same_middle(
    markets: dict[str, Market],
) -> None:
    # Arrange
    close = markets["btc-2025"].close[:5_000]
    bands = BollingerBands(20, 2.0)
    rows = []

    # Act
    for x in close.tolist():
        bands.update(x)
        rows.append((*bands.band(2.5), *bands.band(2.0), bands.lower, bands.upper))

    # Assert
    table = np.array(rows)
    upper, _, lower = talib.BBANDS(close, 20, 2.5, 2.5)  # matype 0: SMA
    assert_close(table[:, 0], lower, rtol=RTOL, what="lower(2.5)")
    assert_close(table[:, 1], upper, rtol=RTOL, what="upper(2.5)")
    assert np.array_equal(table[:, 2:4], table[:, 4:6], equal_nan=True)


def test_rsi_of_a_flat_series_is_neutral() -> None:
    # Arrange
    flat = np.full(100, 42_000.0)
    rsi = RSI(14)

    # Act
    values = [rsi.update(x) for x in flat.tolist()]

    # Assert: 50 from the first ready value on; TA-Lib says 0 (the documented deviation).
    assert all(math.isnan(v) for v in values[:14])
    assert values[14:] == [50.0] * (100 - 14)
    assert talib.RSI(flat, 14)[-1] == 0.0


# --- arguments ---------------------------------------------------------------------------------

BAD_ARGUMENTS: list[tuple[Callable[..., object], tuple[object, ...]]] = [
    (SMA, (0,)),
    (SMA, (-3,)),
    (SMA, (2.5,)),
    (SMA, (True,)),
    (SMA, ("20",)),
    (EMA, (0,)),
    (RSI, (0,)),
    (ATR, (0,)),
    (ATR, (14, "ema")),
    (BollingerBands, (0, 2.0)),
    (BollingerBands, (20, 0.0)),
    (BollingerBands, (20, -2.0)),
    (BollingerBands, (20, math.nan)),
    (BollingerBands, (20, math.inf)),
    (Supertrend, (0, 3.0)),
    (Supertrend, (10, 0.0)),
    (Supertrend, (10, math.nan)),
    (Supertrend, (10, 3.0, "ema")),
]


@pytest.mark.parametrize(("factory", "args"), kit.bad_argument_params(BAD_ARGUMENTS))
def test_constructor_rejects_bad_arguments(
    factory: Callable[..., object], args: tuple[object, ...]
) -> None:
    compiled = sys.modules[getattr(factory, "__module__", "")].__file__ or ""
    if compiled.endswith(".so") and any(isinstance(a, bool) for a in args):
        # The compiled kernel's typed signature takes a bool as the int or float it is (mypyc
        # unboxes it before the check sees a bool): the same indicator as with the number.
        numbers = tuple((type(a) is bool and int(a)) or a for a in args)
        made = [repr(factory(*a).snapshot()) for a in (args, numbers)]  # type: ignore[attr-defined]
        assert made[0] == made[1]
        return
    # The compiled kernel refuses an argument of another type before the indicator's own check
    # (its signature is typed): a TypeError naming the type; pure Python, the ValueError.
    with pytest.raises((ValueError, TypeError), match=r"must be|object expected; got"):
        factory(*args)
