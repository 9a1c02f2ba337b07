"""Moving averages (SMA, EMA) and the exact window sums the windowed indicators share.

Indicators are called once per bar in million-bar replays, so they take plain floats, keep
O(period) fixed state in ``__slots__`` and never touch numpy on the hot path.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from typing import Any, Final, final

from barbus.strategies.indicators.checks import _check_state, _require_period

__all__ = ["EMA", "SMA"]

_NAN: Final = math.nan


# --- exact window sums ---------------------------------------------------------------------
# A windowed quantity must be a function of its window's contents alone, or a replay's results
# depend on where it started (a running float sum keeps a start-dependent residue of an ulp or
# so, which decides the side of an exact tie such as fast == slow on a flat stretch). So window
# sums are exact, on one of two fixed grids, each a function of the value alone:
#
# * decimal: exchange prices and volumes are decimals with at most 8 places. ``x`` is decimal
#   when ``m = round(x * 1e8)`` gives back ``m / 1e8 == x``; the integers ``m`` are then summed
#   exactly in floats (every partial sum below 2**53) and the mean is the single, correctly
#   rounded division ``sum(m) / (n * 1e8)``. This is the hot path, as fast as the old running
#   sum with its periodic fsum (measured: an sma_cross replay of cent-rounded bars takes 0.97x
#   the old CPU time).
# * binary: any other finite value is ``q = int(x * 2**80)``, summed as a Python int (exact for
#   every |x| >= 2**-28; smaller values are quantised to 2**-80) and divided with int true
#   division, also correctly rounded. An update costs about 2.5x a decimal one (the int
#   conversion and the big-int division dominate; an sma_cross replay of the raw synthetic walk
#   takes ~1.4x the old time). Taken while any value in the window is not decimal, which the
#   window's contents decide, so the result is canonical. A canonical O(window) fsum would cost
#   O(period) per update instead; floats alone cannot sum 53-bit mantissas exactly.
#
# Either way the mean of a constant window is that constant exactly, and a correctly rounded
# mean of the same window is the same float whatever came before it.
_DECIMAL_SCALE: Final = 1e8
_DECIMAL_INT_SCALE: Final = 10**8
_ROUND: Final = 6755399441055744.0  # 1.5 * 2**52: (v + _ROUND) - _ROUND rounds |v| < 2**51
_DECIMAL_LIMIT: Final = 2.0**51
_BINARY_BITS: Final = 80
_BINARY_SCALE: Final = 2.0**_BINARY_BITS
_BINARY_ONE: Final = 1 << _BINARY_BITS


def _decimal_units(x: float, limit: float = _DECIMAL_LIMIT) -> float:
    """``x`` in units of 1e-8 as an integral float if ``x`` is such a decimal below ``limit``
    units, else NaN (also for NaN and infinities)."""
    m = x * _DECIMAL_SCALE
    m = (m + _ROUND) - _ROUND
    if m / _DECIMAL_SCALE == x and -limit < m < limit:
        return m
    return _NAN


def _binary_units(x: float) -> int:
    """``x`` on the fixed 2**-80 grid (truncated toward zero); ``x`` must be finite."""
    return int(x * _BINARY_SCALE)


def _ages(window: Iterable[float], limit: float = _DECIMAL_LIMIT) -> tuple[int, int]:
    """Updates until no non-decimal, and until no non-finite, value is left in a full window."""
    odd = bad = 0
    for age, x in enumerate(window, start=1):
        if math.isnan(_decimal_units(x, limit)):  # not decimal
            odd = age
            if not math.isfinite(x):
                bad = age
    return odd, bad


@final
class SMA:
    """Simple moving average of the last ``period`` inputs (talib.SMA).

    NaN and not ready until ``period`` inputs were seen. The value is the correctly rounded mean
    of the window's exact sum (decimal fast path, binary fallback: see the notes above), so it
    is a function of the window's contents alone: never of where the series started, of a
    restore, or of rounding history; a constant window gives that constant exactly. While a NaN
    or an infinity is in the window the value is the plain float mean of the window.
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
