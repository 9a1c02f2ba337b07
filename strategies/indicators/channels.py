"""Price channels: Donchian (highest high / lowest low) and Keltner (EMA +/- ATR).

Same shape as every indicator: ``update_hlc`` returns ``value`` (the middle line), plain
``value``/``ready``/``warmup`` and ``upper``/``lower``/``middle`` attributes (NaN until
``ready``), ``reset``, and JSON-safe ``snapshot``/``restore``.
"""

from __future__ import annotations

import math
from typing import Any, Final, final

from barbus.strategies.indicators.averages import EMA
from barbus.strategies.indicators.checks import _check_state, _require_period, _require_positive
from barbus.strategies.indicators.rolling import RollingMax, RollingMin
from barbus.strategies.indicators.volatility import ATR

__all__ = ["DonchianChannel", "KeltnerChannel"]

_NAN: Final = math.nan


@final
class DonchianChannel:
    """``upper`` = highest high and ``lower`` = lowest low of the last ``period`` bars (this one
    included: talib.MAX(high) and talib.MIN(low)), ``middle`` = ``value`` = their mean. Ready
    after ``period`` bars. Exact, so a function of the window alone.

    For a breakout rule compare the close with the channel of the bars before it (keep the
    previous ``upper``), since this bar's high is inside its own channel.
    """

    __slots__ = ("_high", "_low", "lower", "middle", "period", "ready", "upper", "value", "warmup")

    def __init__(self, period: int = 20) -> None:
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
        self.middle: float = _NAN
        self.upper: float = _NAN
        self.lower: float = _NAN
        self.ready: bool = False

    def update_hlc(self, high: float, low: float, close: float) -> float:
        """``close`` is unused; the signature is that of every bar indicator."""
        highs = self._high
        upper = highs.update(high)
        lower = self._low.update(low)
        if highs.ready:
            self.ready = True
            self.upper = upper
            self.lower = lower
            self.value = self.middle = (upper + lower) / 2.0
        return self.value

    def snapshot(self) -> dict[str, Any]:
        return {
            "kind": "DonchianChannel",
            "period": self.period,
            "high": self._high.snapshot(),
            "low": self._low.snapshot(),
            "outputs": [self.middle, self.upper, self.lower],
            "ready": self.ready,
        }

    def restore(self, state: dict[str, Any]) -> None:
        _check_state(state, "DonchianChannel", period=self.period)
        self._high.restore(state["high"])
        self._low.restore(state["low"])
        self.middle, self.upper, self.lower = (float(v) for v in state["outputs"])
        self.value = self.middle
        self.ready = bool(state["ready"])


@final
class KeltnerChannel:
    """``middle`` = ``value`` = EMA(close, ``period``), ``upper``/``lower`` = middle +/-
    ``multiplier`` x Wilder ATR(``atr_period``), the ATR also as ``atr``. Ready when both are,
    after ``max(period, atr_period + 1)`` bars.

    TA-Lib has no Keltner channel; this is the common (StockCharts) definition, defaults EMA 20,
    ATR 10, x2, built from the talib-convention EMA and ATR.
    """

    __slots__ = (
        "_atr",
        "_ema",
        "atr",
        "atr_period",
        "lower",
        "middle",
        "multiplier",
        "period",
        "ready",
        "upper",
        "value",
        "warmup",
    )

    def __init__(self, period: int = 20, multiplier: float = 2.0, atr_period: int = 10) -> None:
        self.period: Final = _require_period(period)
        self.atr_period: Final = _require_period(atr_period, "atr_period")
        self.multiplier: Final = _require_positive(multiplier, "multiplier")
        self.warmup: Final[int] = max(period, atr_period + 1)
        self._ema: Final = EMA(period)
        self._atr: Final = ATR(atr_period, "wilder")
        self.reset()

    def reset(self) -> None:
        """Forget every bar: back to the warm-up state of a new instance."""
        self._ema.reset()
        self._atr.reset()
        self.value: float = _NAN
        self.middle: float = _NAN
        self.upper: float = _NAN
        self.lower: float = _NAN
        self.atr: float = _NAN
        self.ready: bool = False

    def update_hlc(self, high: float, low: float, close: float) -> float:
        ema = self._ema
        middle = ema.update(close)
        atr_indicator = self._atr
        atr = atr_indicator.update_hlc(high, low, close)
        if ema.ready and atr_indicator.ready:
            width = self.multiplier * atr
            self.ready = True
            self.value = self.middle = middle
            self.atr = atr
            self.upper = middle + width
            self.lower = middle - width
        return self.value

    def snapshot(self) -> dict[str, Any]:
        return {
            "kind": "KeltnerChannel",
            "period": self.period,
            "multiplier": self.multiplier,
            "atr_period": self.atr_period,
            "ema": self._ema.snapshot(),
            "atr": self._atr.snapshot(),
            "outputs": [self.middle, self.upper, self.lower, self.atr],
            "ready": self.ready,
        }

    def restore(self, state: dict[str, Any]) -> None:
        _check_state(
            state,
            "KeltnerChannel",
            period=self.period,
            multiplier=self.multiplier,
            atr_period=self.atr_period,
        )
        self._ema.restore(state["ema"])
        self._atr.restore(state["atr"])
        self.middle, self.upper, self.lower, self.atr = (float(v) for v in state["outputs"])
        self.value = self.middle
        self.ready = bool(state["ready"])
