"""Wilder's directional movement system: ADX with +DI and -DI.

Same shape as every indicator: ``update_hlc`` returns ``value``, plain ``value``/``ready``/
``warmup`` attributes, ``reset``, and JSON-safe ``snapshot``/``restore``.
"""

from __future__ import annotations

import math
from typing import Any, Final, final

from barbus.strategies.indicators.checks import _check_state, _require_period

__all__ = ["ADX"]

_NAN: Final = math.nan


@final
class ADX:
    """Average directional index (``value``, talib.ADX) with ``plus_di``/``minus_di``
    (talib.PLUS_DI/MINUS_DI), in TA-Lib's operations and order.

    +DM = high - previous high when that exceeds previous low - low and is > 0 (-DM the mirror
    image); the DMs and the true range are Wilder-smoothed sums (the first ``period - 1`` bars
    after the first summed, then ``s += new - s / period``); ``plus_di = 100 * +DM / TR`` from bar
    ``period + 1``; DX = 100 * |+DI - -DI| / (+DI + -DI); the ADX is the mean of the first
    ``period`` DXs (bar ``2 * period``, when ``ready``), then ``(adx * (period - 1) + dx) /
    period``. The DIs are NaN before bar ``period + 1``.

    A zero true-range sum gives DIs of 0 and a zero DI sum leaves the ADX as it was, as in
    TA-Lib, except that only an exact 0 counts (TA-Lib: anything below 1e-8, which depends on
    the price scale).
    """

    __slots__ = (
        "_count",
        "_dm_minus",
        "_dm_plus",
        "_prev_close",
        "_prev_high",
        "_prev_low",
        "_sum_dx",
        "_tr",
        "minus_di",
        "period",
        "plus_di",
        "ready",
        "value",
        "warmup",
    )

    def __init__(self, period: int = 14) -> None:
        self.period: Final = _require_period(period)
        self.warmup: Final[int] = 2 * period  # talib lookback 2 * period - 1
        self.reset()

    def reset(self) -> None:
        """Forget every bar: back to the warm-up state of a new instance."""
        self._count = 0  # bars seen, up to 2 * period
        self._prev_high = _NAN
        self._prev_low = _NAN
        self._prev_close = _NAN
        self._dm_plus = 0.0  # Wilder sums of +DM, -DM and the true range
        self._dm_minus = 0.0
        self._tr = 0.0
        self._sum_dx = 0.0  # DXs summed during the ADX warm-up
        self.plus_di: float = _NAN
        self.minus_di: float = _NAN
        self.value: float = _NAN
        self.ready: bool = False

    def update_hlc(self, high: float, low: float, close: float) -> float:
        count = self._count
        prev_close = self._prev_close
        diff_plus = high - self._prev_high
        diff_minus = self._prev_low - low
        self._prev_high = high
        self._prev_low = low
        self._prev_close = close
        if count == 0:
            self._count = 1
            return self.value
        tr = high - low
        up = abs(high - prev_close)
        down = abs(low - prev_close)
        tr = up if up > tr else tr
        tr = down if down > tr else tr
        period = self.period
        dm_plus = self._dm_plus
        dm_minus = self._dm_minus
        if count >= period:  # smoothing: from bar period + 1 on
            dm_plus -= dm_plus / period
            dm_minus -= dm_minus / period
            tr = self._tr - self._tr / period + tr
        else:
            tr = self._tr + tr
        if diff_minus > 0.0 and diff_plus < diff_minus:
            dm_minus += diff_minus
        elif diff_plus > 0.0 and diff_plus > diff_minus:
            dm_plus += diff_plus
        self._dm_plus = dm_plus
        self._dm_minus = dm_minus
        self._tr = tr
        if count < period:
            self._count = count + 1
            return self.value
        if tr != 0.0:
            minus_di = 100.0 * (dm_minus / tr)
            plus_di = 100.0 * (dm_plus / tr)
        else:
            minus_di = plus_di = 0.0
        self.plus_di = plus_di
        self.minus_di = minus_di
        di_sum = minus_di + plus_di
        if self.ready:
            if di_sum != 0.0:
                dx = 100.0 * (abs(minus_di - plus_di) / di_sum)
                self.value = (self.value * (period - 1) + dx) / period
            return self.value
        if di_sum != 0.0:
            self._sum_dx += 100.0 * (abs(minus_di - plus_di) / di_sum)
        count += 1
        self._count = count
        if count == 2 * period:
            self.value = self._sum_dx / period
            self.ready = True
        return self.value

    def snapshot(self) -> dict[str, Any]:
        return {
            "kind": "ADX",
            "period": self.period,
            "count": self._count,
            "prev": [self._prev_high, self._prev_low, self._prev_close],
            "sums": [self._dm_plus, self._dm_minus, self._tr, self._sum_dx],
            "outputs": [self.value, self.plus_di, self.minus_di],
            "ready": self.ready,
        }

    def restore(self, state: dict[str, Any]) -> None:
        _check_state(state, "ADX", period=self.period)
        self._count = int(state["count"])
        self._prev_high, self._prev_low, self._prev_close = (float(v) for v in state["prev"])
        self._dm_plus, self._dm_minus, self._tr, self._sum_dx = (float(v) for v in state["sums"])
        self.value, self.plus_di, self.minus_di = (float(v) for v in state["outputs"])
        self.ready = bool(state["ready"])
