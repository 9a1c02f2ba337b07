"""Exact window sums on two fixed grids, so a windowed indicator is a function of its window alone.

SMA, WMA and Bollinger Bands keep their windows in these units. A module of its own because all
three share the grids and the rules for switching between them (the notes below); SMA's fast path
inlines the decimal conversion, WMA and Bollinger Bands call these on every update.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Final

_NAN: Final = math.nan

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
