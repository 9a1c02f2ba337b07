"""Oscillators: MACD, Stochastic, Stochastic RSI, Williams %R, CCI and rate of change.

Same shape as every indicator: ``update``/``update_hlc`` return ``value``, plain
``value``/``ready``/``warmup`` attributes (extra outputs such as ``signal``, ``k``, ``d`` too,
all NaN until ``ready``), ``reset``, and JSON-safe ``snapshot``/``restore``.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, Final, final

from barbus.strategies.indicators.averages import EMA, SMA
from barbus.strategies.indicators.checks import _check_state, _require_period
from barbus.strategies.indicators.momentum import RSI
from barbus.strategies.indicators.rolling import RollingMax, RollingMin

__all__ = ["CCI", "MACD", "ROC", "StochRSI", "Stochastic", "WilliamsR"]

_NAN: Final = math.nan
FLAT_RSI_RANGE: Final = 1e-9  # an RSI range below this is flat for StochRSI (rounding noise)


@final
class MACD:
    """MACD line ``fast EMA - slow EMA`` (``value``), its ``signal`` EMA and ``hist`` = line -
    signal (talib.MACD, EMAs with alpha = 2 / (period + 1)). Ready after ``slow + signal - 1``
    inputs, when all three are defined.

    TA-Lib's seeding, kept: the slow EMA is seeded with the SMA of the first ``slow`` inputs and
    the fast EMA, on the same input, with the SMA of the last ``fast`` of them (so the fast EMA
    is not ``talib.EMA(x, fast)``); the signal EMA is seeded with the SMA of the first
    ``signal`` MACD values.
    """

    __slots__ = (
        "_count",
        "_fast",
        "_fast_alpha",
        "_recent",
        "_signal",
        "_slow",
        "fast",
        "hist",
        "ready",
        "signal",
        "signal_period",
        "slow",
        "value",
        "warmup",
    )

    def __init__(self, fast: int = 12, slow: int = 26, signal: int = 9) -> None:
        self.fast: Final = _require_period(fast, "fast")
        self.slow: Final = _require_period(slow, "slow")
        self.signal_period: Final = _require_period(signal, "signal")
        if fast >= slow:
            raise ValueError(f"fast must be < slow, got fast={fast!r}, slow={slow!r}")
        self.warmup: Final[int] = slow + signal - 1  # talib lookback slow - 1 + signal - 1
        self._fast_alpha: Final = 2.0 / (fast + 1)
        self._slow: Final = EMA(slow)
        self._signal: Final = EMA(signal)
        self._recent: deque[float] = deque(maxlen=fast)  # inputs while the slow EMA warms up
        self.reset()

    def reset(self) -> None:
        """Forget every input: back to the warm-up state of a new instance."""
        self._slow.reset()
        self._signal.reset()
        self._recent.clear()
        self._fast = _NAN  # the fast EMA, from the slow EMA's seed on
        self.value: float = _NAN
        self.signal: float = _NAN
        self.hist: float = _NAN
        self.ready: bool = False

    def update(self, x: float) -> float:
        slow_ema = self._slow
        seeded = slow_ema.ready
        slow = slow_ema.update(x)
        if seeded:
            fast = self._fast
            fast = (x - fast) * self._fast_alpha + fast
            self._fast = fast
        else:
            recent = self._recent
            recent.append(x)
            if not slow_ema.ready:
                return self.value
            total = 0.0
            for v in recent:  # in order, as TA-Lib sums its seed
                total += v
            fast = total / self.fast
            self._fast = fast
            recent.clear()
        line = fast - slow
        signal_ema = self._signal
        signal = signal_ema.update(line)
        if signal_ema.ready:
            self.ready = True
            self.value = line
            self.signal = signal
            self.hist = line - signal
        return self.value

    def snapshot(self) -> dict[str, Any]:
        return {
            "kind": "MACD",
            "fast": self.fast,
            "slow": self.slow,
            "signal_period": self.signal_period,
            "slow_ema": self._slow.snapshot(),
            "signal_ema": self._signal.snapshot(),
            "recent": list(self._recent),
            "fast_ema": self._fast,
            "outputs": [self.value, self.signal, self.hist],
            "ready": self.ready,
        }

    def restore(self, state: dict[str, Any]) -> None:
        _check_state(
            state, "MACD", fast=self.fast, slow=self.slow, signal_period=self.signal_period
        )
        self.reset()
        self._slow.restore(state["slow_ema"])
        self._signal.restore(state["signal_ema"])
        self._recent.extend(float(v) for v in state["recent"])
        self._fast = float(state["fast_ema"])
        self.value, self.signal, self.hist = (float(v) for v in state["outputs"])
        self.ready = bool(state["ready"])


def _stochastic_k(close: float, highest: float, lowest: float) -> float:
    """Where ``close`` sits in [lowest, highest] on 0..100; 50 if flat.

    ``100 * (fraction)`` rather than TA-Lib's ``x / (range / 100)``: an ulp apart at most, but
    never outside [0, 100] (the fraction of two monotonically rounded differences is <= 1).
    """
    spread = highest - lowest
    return 100.0 * ((close - lowest) / spread) if spread != 0.0 else 50.0


@final
class Stochastic:
    """Stochastic oscillator %K and %D (talib.STOCH with SMA smoothing), ``value`` = ``k``.

    Raw %K = 100 * (close - lowest low) / (highest high - lowest low) over ``k_period`` bars
    (this one included); ``k`` = SMA(``k_smoothing``) of raw %K (1: the fast stochastic,
    talib.STOCHF), ``d`` = SMA(``d_period``) of ``k``. Ready after ``k_period + k_smoothing +
    d_period - 2`` bars.

    Deliberate deviation: raw %K of a flat range (highest == lowest) is 50, neutral, where TA-Lib
    returns 0 (which would read as maximally oversold), as for the RSI.
    """

    __slots__ = (
        "_d",
        "_high",
        "_k",
        "_low",
        "d",
        "d_period",
        "k",
        "k_period",
        "k_smoothing",
        "ready",
        "value",
        "warmup",
    )

    def __init__(self, k_period: int = 14, k_smoothing: int = 3, d_period: int = 3) -> None:
        self.k_period: Final = _require_period(k_period, "k_period")
        self.k_smoothing: Final = _require_period(k_smoothing, "k_smoothing")
        self.d_period: Final = _require_period(d_period, "d_period")
        self.warmup: Final[int] = k_period + k_smoothing + d_period - 2
        self._high: Final = RollingMax(k_period)
        self._low: Final = RollingMin(k_period)
        self._k: Final = SMA(k_smoothing)
        self._d: Final = SMA(d_period)
        self.reset()

    def reset(self) -> None:
        """Forget every bar: back to the warm-up state of a new instance."""
        self._high.reset()
        self._low.reset()
        self._k.reset()
        self._d.reset()
        self.value: float = _NAN
        self.k: float = _NAN
        self.d: float = _NAN
        self.ready: bool = False

    def update_hlc(self, high: float, low: float, close: float) -> float:
        highs = self._high
        highest = highs.update(high)
        lowest = self._low.update(low)
        if not highs.ready:
            return self.value
        k_sma = self._k
        k = k_sma.update(_stochastic_k(close, highest, lowest))
        if not k_sma.ready:
            return self.value
        d_sma = self._d
        d = d_sma.update(k)
        if d_sma.ready:
            self.ready = True
            self.value = k
            self.k = k
            self.d = d
        return self.value

    def snapshot(self) -> dict[str, Any]:
        return {
            "kind": "Stochastic",
            "k_period": self.k_period,
            "k_smoothing": self.k_smoothing,
            "d_period": self.d_period,
            "high": self._high.snapshot(),
            "low": self._low.snapshot(),
            "k_sma": self._k.snapshot(),
            "d_sma": self._d.snapshot(),
            "outputs": [self.k, self.d],
            "ready": self.ready,
        }

    def restore(self, state: dict[str, Any]) -> None:
        _check_state(
            state,
            "Stochastic",
            k_period=self.k_period,
            k_smoothing=self.k_smoothing,
            d_period=self.d_period,
        )
        self._high.restore(state["high"])
        self._low.restore(state["low"])
        self._k.restore(state["k_sma"])
        self._d.restore(state["d_sma"])
        self.k, self.d = (float(v) for v in state["outputs"])
        self.value = self.k
        self.ready = bool(state["ready"])


@final
class StochRSI:
    """Stochastic RSI (talib.STOCHRSI, SMA %D): where Wilder's RSI(``period``) sits in the range
    of its last ``k_period`` values, ``k`` (= ``value``) = 100 * (rsi - lowest) / (highest -
    lowest), and ``d`` = SMA(``d_period``) of ``k``. Ready after ``period + k_period + d_period
    - 1`` inputs.

    Deviations: the RSI of flat prices is 50 (as ``RSI``), and ``k`` is 50 when the RSI range is
    below ``FLAT_RSI_RANGE`` (1e-9 on the RSI's 0..100 scale, whatever the price). On unchanged
    closes the RSI repeats its value up to rounding, so an exact test would read ulps of noise
    as 0 or 100; TA-Lib does, and returns 0 for an exactly flat range.
    """

    __slots__ = (
        "_d",
        "_high",
        "_low",
        "_rsi",
        "d",
        "d_period",
        "k",
        "k_period",
        "period",
        "ready",
        "value",
        "warmup",
    )

    def __init__(self, period: int = 14, k_period: int = 5, d_period: int = 3) -> None:
        self.period: Final = _require_period(period)
        self.k_period: Final = _require_period(k_period, "k_period")
        self.d_period: Final = _require_period(d_period, "d_period")
        self.warmup: Final[int] = period + k_period + d_period - 1
        self._rsi: Final = RSI(period)
        self._high: Final = RollingMax(k_period)
        self._low: Final = RollingMin(k_period)
        self._d: Final = SMA(d_period)
        self.reset()

    def reset(self) -> None:
        """Forget every input: back to the warm-up state of a new instance."""
        self._rsi.reset()
        self._high.reset()
        self._low.reset()
        self._d.reset()
        self.value: float = _NAN
        self.k: float = _NAN
        self.d: float = _NAN
        self.ready: bool = False

    def update(self, x: float) -> float:
        rsi = self._rsi
        r = rsi.update(x)
        if not rsi.ready:
            return self.value
        highs = self._high
        highest = highs.update(r)
        lowest = self._low.update(r)
        if not highs.ready:
            return self.value
        spread = highest - lowest
        k = 100.0 * ((r - lowest) / spread) if spread >= FLAT_RSI_RANGE else 50.0
        d_sma = self._d
        d = d_sma.update(k)
        if d_sma.ready:
            self.ready = True
            self.value = self.k = k
            self.d = d
        return self.value

    def snapshot(self) -> dict[str, Any]:
        return {
            "kind": "StochRSI",
            "period": self.period,
            "k_period": self.k_period,
            "d_period": self.d_period,
            "rsi": self._rsi.snapshot(),
            "high": self._high.snapshot(),
            "low": self._low.snapshot(),
            "d_sma": self._d.snapshot(),
            "outputs": [self.k, self.d],
            "ready": self.ready,
        }

    def restore(self, state: dict[str, Any]) -> None:
        _check_state(
            state, "StochRSI", period=self.period, k_period=self.k_period, d_period=self.d_period
        )
        self._rsi.restore(state["rsi"])
        self._high.restore(state["high"])
        self._low.restore(state["low"])
        self._d.restore(state["d_sma"])
        self.k, self.d = (float(v) for v in state["outputs"])
        self.value = self.k
        self.ready = bool(state["ready"])


@final
class WilliamsR:
    """Williams %R in [-100, 0] (talib.WILLR): -100 * (highest high - close) / (highest high -
    lowest low) over ``period`` bars, this one included. Ready after ``period`` bars.

    Deliberate deviation: a flat range gives -50, neutral, where TA-Lib returns 0 (which would
    read as maximally overbought).
    """

    __slots__ = ("_high", "_low", "period", "ready", "value", "warmup")

    def __init__(self, period: int = 14) -> None:
        self.period: Final = _require_period(period)
        self.warmup: Final[int] = period
        self._high: Final = RollingMax(period)
        self._low: Final = RollingMin(period)
        self.reset()

    def reset(self) -> None:
        """Forget every bar: back to the warm-up state of a new instance."""
        self._high.reset()
        self._low.reset()
        self.value: float = _NAN
        self.ready: bool = False

    def update_hlc(self, high: float, low: float, close: float) -> float:
        highs = self._high
        highest = highs.update(high)
        lowest = self._low.update(low)
        if highs.ready:
            spread = highest - lowest  # -100 * fraction: never outside [-100, 0]
            self.value = -100.0 * ((highest - close) / spread) if spread != 0.0 else -50.0
            self.ready = True
        return self.value

    def snapshot(self) -> dict[str, Any]:
        return {
            "kind": "WilliamsR",
            "period": self.period,
            "high": self._high.snapshot(),
            "low": self._low.snapshot(),
            "value": self.value,
            "ready": self.ready,
        }

    def restore(self, state: dict[str, Any]) -> None:
        _check_state(state, "WilliamsR", period=self.period)
        self._high.restore(state["high"])
        self._low.restore(state["low"])
        self.value = float(state["value"])
        self.ready = bool(state["ready"])


@final
class CCI:
    """Commodity channel index (talib.CCI): ``(tp - mean) / (0.015 * mean deviation)`` of the
    typical price ``tp = (high + low + close) / 3`` over ``period`` bars; 0 when the mean
    deviation is 0. Ready after ``period`` bars.

    O(period) per update, as exactness needs: the mean and the mean absolute deviation are
    recomputed from the window with ``math.fsum`` (correctly rounded), so the value depends on
    the window alone. TA-Lib sums in its ring buffer's order, which depends on where its input
    started; near CCI = 0 the two differ by a few ulps of the price over the deviation.
    """

    __slots__ = ("_window", "period", "ready", "value", "warmup")

    def __init__(self, period: int = 20) -> None:
        self.period: Final = _require_period(period)
        self.warmup: Final[int] = period
        self._window: deque[float] = deque(maxlen=period)
        self.reset()

    def reset(self) -> None:
        """Forget every bar: back to the warm-up state of a new instance."""
        self._window.clear()
        self.value: float = _NAN
        self.ready: bool = False

    def update_hlc(self, high: float, low: float, close: float) -> float:
        tp = (high + low + close) / 3.0
        window = self._window
        window.append(tp)
        period = self.period
        if len(window) < period:
            return self.value
        mean = math.fsum(window) / period
        deviation = math.fsum([abs(v - mean) for v in window]) / period
        self.value = (tp - mean) / (0.015 * deviation) if deviation != 0.0 else 0.0
        self.ready = True
        return self.value

    def snapshot(self) -> dict[str, Any]:
        return {
            "kind": "CCI",
            "period": self.period,
            "window": list(self._window),
            "value": self.value,
            "ready": self.ready,
        }

    def restore(self, state: dict[str, Any]) -> None:
        _check_state(state, "CCI", period=self.period)
        values = [float(v) for v in state["window"]]
        if len(values) > self.period or bool(state["ready"]) != (len(values) == self.period):
            raise ValueError(f"CCI snapshot has {len(values)} of {self.period} values")
        self.reset()
        self._window.extend(values)
        self.value = float(state["value"])
        self.ready = bool(state["ready"])


@final
class ROC:
    """Rate of change in percent (talib.ROC): ``(x / x[period bars ago] - 1) * 100``; 0 when
    that old input is 0, as in TA-Lib. Ready after ``period + 1`` inputs."""

    __slots__ = ("_window", "period", "ready", "value", "warmup")

    def __init__(self, period: int = 10) -> None:
        self.period: Final = _require_period(period)
        self.warmup: Final[int] = period + 1
        self._window: deque[float] = deque(maxlen=period + 1)
        self.reset()

    def reset(self) -> None:
        """Forget every input: back to the warm-up state of a new instance."""
        self._window.clear()
        self.value: float = _NAN
        self.ready: bool = False

    def update(self, x: float) -> float:
        window = self._window
        window.append(x)
        if len(window) > self.period:
            old = window[0]
            self.value = (x / old - 1.0) * 100.0 if old != 0.0 else 0.0
            self.ready = True
        return self.value

    def snapshot(self) -> dict[str, Any]:
        return {
            "kind": "ROC",
            "period": self.period,
            "window": list(self._window),
            "value": self.value,
            "ready": self.ready,
        }

    def restore(self, state: dict[str, Any]) -> None:
        _check_state(state, "ROC", period=self.period)
        values = [float(v) for v in state["window"]]
        if len(values) > self.period + 1 or bool(state["ready"]) != (len(values) > self.period):
            raise ValueError(f"ROC snapshot has {len(values)} of {self.period + 1} values")
        self.reset()
        self._window.extend(values)
        self.value = float(state["value"])
        self.ready = bool(state["ready"])
