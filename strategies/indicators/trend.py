"""Trend indicators: the Supertrend (ATR bands around the bar midpoint that only ratchet).

Same shape as every indicator: ``update_hlc`` returns ``value``, plain ``value`` and ``ready``
attributes, ``reset``, and JSON-safe ``snapshot``/``restore``.
"""

from __future__ import annotations

import math
from typing import Any, Final, Literal, final

from barbus.strategies.indicators.checks import _check_state, _require_positive
from barbus.strategies.indicators.volatility import ATR

__all__ = ["Supertrend"]

_NAN: Final = math.nan


@final
class Supertrend:
    """Textbook Supertrend over an owned ATR (``atr_smoothing`` "sma" by default, or "wilder").

    ``hl2 = (high + low) / 2``; basic bands are ``hl2 +/- multiplier * atr``. On the first bar with
    a ready ATR the final bands are the basic ones and the trend is +1 (up, by convention, not
    evidence). Afterwards, with ``prev_close`` the previous bar's close, the final upper band takes
    the basic one only if it is lower or ``prev_close`` broke above the previous final upper (and
    symmetrically for the lower band); an up trend turns down when close < final lower, a down
    trend turns up when close > final upper.

    Attributes: ``trend`` (+1/-1; 0 before ready), ``upper`` and ``lower`` (final bands) and
    ``value``: the final lower band in an up trend, else the final upper band (NaN before ready).
    """

    __slots__ = (
        "_atr",
        "_prev_close",
        "atr_smoothing",
        "lower",
        "multiplier",
        "period",
        "ready",
        "trend",
        "upper",
        "value",
        "warmup",
    )

    def __init__(
        self,
        period: int,
        multiplier: float,
        atr_smoothing: Literal["sma", "wilder"] = "sma",
    ) -> None:
        self._atr: Final = ATR(period, atr_smoothing)  # validates period and smoothing
        self.period: Final = period
        self.multiplier: Final = _require_positive(multiplier, "multiplier")
        self.atr_smoothing: Final = atr_smoothing
        self.warmup: Final = self._atr.warmup  # ready on the first bar with a ready ATR
        self.reset()

    def reset(self) -> None:
        """Forget every bar: back to the warm-up state of a new instance."""
        self._atr.reset()
        self._prev_close = _NAN
        self.trend: int = 0
        self.upper: float = _NAN
        self.lower: float = _NAN
        self.value: float = _NAN
        self.ready: bool = False

    def update_hlc(self, high: float, low: float, close: float) -> float:
        atr_indicator = self._atr
        atr = atr_indicator.update_hlc(high, low, close)
        if not atr_indicator.ready:
            self._prev_close = close
            return self.value
        hl2 = (high + low) / 2.0
        offset = self.multiplier * atr
        upper = hl2 + offset
        lower = hl2 - offset
        if self.ready:
            prev_close = self._prev_close
            prev_upper = self.upper
            prev_lower = self.lower
            if not (upper < prev_upper or prev_close > prev_upper):
                upper = prev_upper
            if not (lower > prev_lower or prev_close < prev_lower):
                lower = prev_lower
            trend = self.trend
            if trend == 1:
                if close < lower:
                    trend = -1
            elif close > upper:
                trend = 1
        else:
            trend = 1
            self.ready = True
        self._prev_close = close
        self.trend = trend
        self.upper = upper
        self.lower = lower
        self.value = lower if trend == 1 else upper
        return self.value

    def snapshot(self) -> dict[str, Any]:
        return {
            "kind": "Supertrend",
            "period": self.period,
            "multiplier": self.multiplier,
            "atr_smoothing": self.atr_smoothing,
            "atr": self._atr.snapshot(),
            "prev_close": self._prev_close,
            "trend": self.trend,
            "upper": self.upper,
            "lower": self.lower,
            "value": self.value,
            "ready": self.ready,
        }

    def restore(self, state: dict[str, Any]) -> None:
        _check_state(
            state,
            "Supertrend",
            period=self.period,
            multiplier=self.multiplier,
            atr_smoothing=self.atr_smoothing,
        )
        self._atr.restore(state["atr"])
        self._prev_close = float(state["prev_close"])
        self.trend = int(state["trend"])
        self.upper = float(state["upper"])
        self.lower = float(state["lower"])
        self.value = float(state["value"])
        self.ready = bool(state["ready"])
