"""Moving averages: SMA (an exact window sum) and EMA.

Indicators are called once per bar in million-bar replays, so they take plain floats, keep
O(period) fixed state in ``__slots__`` and never touch numpy on the hot path.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, Final, final

from barbus.strategies.indicators.checks import _check_state, _require_period
from barbus.strategies.indicators.exact_sums import (
    _BINARY_BITS,
    _BINARY_ONE,
    _DECIMAL_LIMIT,
    _DECIMAL_SCALE,
    _ages,
    _binary_units,
    _decimal_units,
)

__all__ = ["EMA", "SMA"]

_NAN: Final = math.nan


@final
class SMA:
    """Simple moving average of the last ``period`` inputs (talib.SMA).

    NaN and not ready until ``period`` inputs were seen. The value is the correctly rounded mean
    of the window's exact sum (decimal fast path, binary fallback: see
    :mod:`~barbus.strategies.indicators.exact_sums`), so it is a function of the window's contents
    alone: never of where the series started, of a restore, or of rounding history; a constant
    window gives that constant exactly. While a NaN or an infinity is in the window the value is
    the plain float mean of the window.
    """

    __slots__ = (
        "_bad",
        "_binary_den",
        "_decimal_den",
        "_dsum",
        "_fast_limit",
        "_isum",
        "_limit",
        "_odd",
        "_window",
        "period",
        "ready",
        "value",
        "warmup",
    )

    def __init__(self, period: int) -> None:
        self.period: Final = _require_period(period)
        self.warmup: Final = period  # ready after this many updates
        # Raw inputs while warming up or while a NaN/inf is in the window, else the inputs' units:
        # decimal units (floats) in decimal mode (``_odd == 0``), binary units (ints) otherwise.
        self._window: deque[float] = deque(maxlen=period)
        self._decimal_den: Final = period * _DECIMAL_SCALE
        self._binary_den: Final = period << _BINARY_BITS
        # Each |m| below 2**53 / period: every partial sum of the window is an exact float.
        self._limit: Final = min(_DECIMAL_LIMIT, 2.0**53 / period)
        self.reset()

    def reset(self) -> None:
        """Forget every input: back to the warm-up state of a new instance."""
        self._window.clear()
        self._dsum = 0.0  # sum of the decimal units in the window, in decimal mode
        self._isum = 0  # sum of binary units over the window, in binary mode
        self._odd = -1  # updates until every value in the window is decimal; -1: warming up
        self._fast_limit = 0.0
        self._bad = 0  # updates until no NaN or inf is left in the window
        self.value: float = _NAN
        self.ready: bool = False

    def update(self, x: float) -> float:
        # The hot path, inline: x is a decimal and so is the whole window (``_odd == 0``).
        m = x * 1e8
        m = (m + 6755399441055744.0) - 6755399441055744.0
        limit = self._fast_limit  # the unit bound in decimal mode, 0 (nothing passes) otherwise
        if -limit < m < limit and m / 1e8 == x:
            window = self._window
            total = self._dsum + (m - window[0])
            window.append(m)
            self._dsum = total
            value = total / self._decimal_den
            self.value = value
            return value
        decimal = m / 1e8 == x and -self._limit < m < self._limit
        odd = self._odd
        if odd > 0 and not self._bad and x - x == 0.0:  # binary mode, x finite (x - x not NaN)
            if not decimal:
                odd = self.period
            elif odd == 1:  # the last non-decimal value leaves now: back to decimal units
                return self._rebuild([*self._raw_window()[1:], x])
            else:
                odd -= 1
            self._odd = odd
            units: deque[int] = self._window  # type: ignore[assignment]  # binary mode: ints
            q = int(x * 1208925819614629174706176.0)  # 2**80
            isum = self._isum + (q - units[0])
            units.append(q)
            self._isum = isum
            value = isum / self._binary_den
            self.value = value
            return value
        return self._update_slow(x)

    def _update_slow(self, x: float) -> float:
        """Warm-up, and the switches of mode that only the whole window can decide."""
        window = self._window
        if self._odd < 0:  # warming up
            window.append(x)
            if len(window) < self.period:
                return self.value
            self.ready = True
            return self._rebuild(list(window))
        # A non-decimal value meets decimal mode, or a NaN/inf is or comes in the window.
        return self._rebuild([*self._raw_window()[1:], x])

    def _rebuild(self, raw: list[float]) -> float:
        """Mode, window, sums and value from the full window's raw values alone."""
        window = self._window
        window.clear()
        limit = self._limit
        odd, bad = _ages(raw, limit)
        self._odd = odd
        self._bad = bad
        self._fast_limit = limit if odd == 0 else 0.0
        if odd == 0:
            units = [_decimal_units(x, limit) for x in raw]
            window.extend(units)
            self._dsum = total = math.fsum(units)
            value = total / self._decimal_den
        elif bad == 0:
            binary = [_binary_units(x) for x in raw]
            window.extend(binary)  # ints: exact units of these floats
            self._isum = isum = sum(binary)
            value = isum / self._binary_den
        else:  # NaN or inf in the window: raw values, recomputed on every update while it stays
            window.extend(raw)
            value = sum(raw) / self.period
        self.value = value
        return value

    def _raw_window(self) -> list[float]:
        """The window's inputs: decimal units / 1e8 and binary units / 2**80 are exact."""
        window = self._window
        if self._odd == 0:
            return [v / _DECIMAL_SCALE for v in window]
        if self._odd > 0 and self._bad == 0:
            return [v / _BINARY_ONE for v in window]
        return list(window)

    def snapshot(self) -> dict[str, Any]:
        return {
            "kind": "SMA",
            "period": self.period,
            "window": self._raw_window(),
            "value": self.value,
            "ready": self.ready,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Rebuild from the saved window alone (older snapshots' "sum" and "since" are ignored),
        so a restored SMA is exactly one that saw those values."""
        _check_state(state, "SMA", period=self.period)
        values = [float(v) for v in state["window"]]
        if len(values) > self.period or bool(state["ready"]) != (len(values) == self.period):
            raise ValueError(f"SMA snapshot has {len(values)} of {self.period} values")
        self.reset()
        if len(values) == self.period:
            self.ready = True
            self._rebuild(values)
        else:
            self._window.extend(values)


@final
class EMA:
    """Exponential moving average with ``alpha = 2 / (period + 1)`` (talib.EMA convention).

    Seeded with the SMA of the first ``period`` inputs, which is the first value (ready after
    ``period`` inputs); then ``ema += alpha * (x - ema)``, the same operations as TA-Lib.
    """

    __slots__ = ("_alpha", "_count", "_sum", "period", "ready", "value", "warmup")

    def __init__(self, period: int) -> None:
        self.period: Final = _require_period(period)
        self.warmup: Final = period  # ready after this many updates
        self._alpha: Final = 2.0 / (period + 1)
        self.reset()

    def reset(self) -> None:
        """Forget every input: back to the warm-up state of a new instance."""
        self._count = 0  # inputs seen during warm-up; stops at ``period``
        self._sum = 0.0
        self.value: float = _NAN
        self.ready: bool = False

    def update(self, x: float) -> float:
        if self.ready:
            value = self.value
            value = (x - value) * self._alpha + value
            self.value = value
            return value
        self._count += 1
        self._sum += x
        if self._count == self.period:
            self.value = self._sum / self.period
            self.ready = True
        return self.value

    def snapshot(self) -> dict[str, Any]:
        return {
            "kind": "EMA",
            "period": self.period,
            "count": self._count,
            "sum": self._sum,
            "value": self.value,
            "ready": self.ready,
        }

    def restore(self, state: dict[str, Any]) -> None:
        _check_state(state, "EMA", period=self.period)
        self._count = int(state["count"])
        self._sum = float(state["sum"])
        self.value = float(state["value"])
        self.ready = bool(state["ready"])
