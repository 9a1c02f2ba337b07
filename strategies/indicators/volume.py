"""Volume indicators: on-balance volume and a VWAP anchored at the UTC day.

Same shape as every indicator: ``update_cv``/``update_hlcv`` return ``value``, plain
``value``/``ready``/``warmup`` attributes, ``reset``, and JSON-safe ``snapshot``/``restore``.
Both are cumulative, so they depend on where they started (OBV by definition, the VWAP within
the day the run started in).
"""

from __future__ import annotations

import math
from typing import Any, Final, final

from barbus.strategies.indicators.checks import _check_state

__all__ = ["OBV", "VWAP"]

_NAN: Final = math.nan
DAY_MS: Final = 86_400_000


@final
class OBV:
    """On-balance volume (talib.OBV): starts at the first bar's volume, then adds the volume
    when the close rose, subtracts it when it fell. ``update_cv(close, volume)``; ready from the
    first bar (``warmup`` 1)."""

    __slots__ = ("_prev_close", "ready", "value", "warmup")

    def __init__(self) -> None:
        self.warmup: Final[int] = 1
        self.reset()

    def reset(self) -> None:
        """Forget every bar: back to the warm-up state of a new instance."""
        self._prev_close = _NAN
        self.value: float = _NAN
        self.ready: bool = False

    def update_cv(self, close: float, volume: float) -> float:
        prev = self._prev_close
        self._prev_close = close
        if not self.ready:
            self.ready = True
            self.value = volume
        elif close > prev:
            self.value += volume
        elif close < prev:
            self.value -= volume
        return self.value

    def snapshot(self) -> dict[str, Any]:
        return {
            "kind": "OBV",
            "prev_close": self._prev_close,
            "value": self.value,
            "ready": self.ready,
        }

    def restore(self, state: dict[str, Any]) -> None:
        _check_state(state, "OBV")
        self._prev_close = float(state["prev_close"])
        self.value = float(state["value"])
        self.ready = bool(state["ready"])


@final
class VWAP:
    """Volume-weighted average of the typical price ``(high + low + close) / 3``, anchored at
    the UTC day: ``update_hlcv(high, low, close, volume, open_time_ms)`` starts a new sum when a
    bar opens on another UTC day than the one before. Ready from the first bar (``warmup`` 1).

    No TA-Lib equivalent. While the day's volume is still 0 the value is the bar's typical price
    (no trade moved it), not NaN. A run started mid-day averages from its first bar.
    """

    __slots__ = ("_day", "_pv", "_volume", "ready", "value", "warmup")

    def __init__(self) -> None:
        self.warmup: Final[int] = 1
        self.reset()

    def reset(self) -> None:
        """Forget every bar: back to the warm-up state of a new instance."""
        self._day = -1  # UTC day number (open_time_ms // DAY_MS) of the sums; -1: none yet
        self._pv = 0.0  # the day's sum of typical price x volume
        self._volume = 0.0  # the day's volume
        self.value: float = _NAN
        self.ready: bool = False

    def update_hlcv(
        self, high: float, low: float, close: float, volume: float, open_time_ms: int
    ) -> float:
        tp = (high + low + close) / 3.0
        day = open_time_ms // DAY_MS
        if day != self._day:
            self._day = day
            pv = tp * volume
            total = volume
        else:
            pv = self._pv + tp * volume
            total = self._volume + volume
        self._pv = pv
        self._volume = total
        self.value = pv / total if total != 0.0 else tp
        self.ready = True
        return self.value

    def snapshot(self) -> dict[str, Any]:
        return {
            "kind": "VWAP",
            "day": self._day,
            "pv": self._pv,
            "volume": self._volume,
            "value": self.value,
            "ready": self.ready,
        }

    def restore(self, state: dict[str, Any]) -> None:
        _check_state(state, "VWAP")
        self._day = int(state["day"])
        self._pv = float(state["pv"])
        self._volume = float(state["volume"])
        self.value = float(state["value"])
        self.ready = bool(state["ready"])
