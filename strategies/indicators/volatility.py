"""Volatility indicators: true range, ATR (Wilder or SMA smoothing) and Bollinger Bands.

Same shape as every indicator: ``update``/``update_hlc`` return ``value``, plain ``value`` and
``ready`` attributes, ``reset``, and JSON-safe ``snapshot``/``restore``.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, Final, Literal, final

from barbus.strategies.indicators.averages import SMA
from barbus.strategies.indicators.checks import _check_state, _require_period, _require_positive
from barbus.strategies.indicators.exact_sums import (
    _BINARY_BITS,
    _DECIMAL_INT_SCALE,
    _ages,
    _binary_units,
    _decimal_units,
)

__all__ = ["ATR", "BollingerBands", "TrueRange"]

_NAN: Final = math.nan


@final
class TrueRange:
    """True range: ``max(high - low, |high - prev_close|, |low - prev_close|)`` (talib.TRANGE).

    The first bar has no previous close, so like TA-Lib the value is NaN (not ready) there.
    """

    __slots__ = ("_has_prev", "_prev_close", "ready", "value", "warmup")

    def __init__(self) -> None:
        self.warmup: Final = 2  # the first bar has no previous close
        self.reset()

    def reset(self) -> None:
        """Forget every bar: back to the warm-up state of a new instance."""
        self._has_prev = False
        self._prev_close = _NAN
        self.value: float = _NAN
        self.ready: bool = False

    def update_hlc(self, high: float, low: float, close: float) -> float:
        prev_close = self._prev_close
        self._prev_close = close
        if not self._has_prev:
            self._has_prev = True
            return self.value
        tr = high - low
        up = abs(high - prev_close)
        down = abs(low - prev_close)
        # Comparisons rather than max(): no call on the hot path.
        tr = up if up > tr else tr
        tr = down if down > tr else tr
        self.value = tr
        self.ready = True
        return tr

    def snapshot(self) -> dict[str, Any]:
        return {
            "kind": "TrueRange",
            "has_prev": self._has_prev,
            "prev_close": self._prev_close,
            "value": self.value,
            "ready": self.ready,
        }

    def restore(self, state: dict[str, Any]) -> None:
        _check_state(state, "TrueRange")
        self._has_prev = bool(state["has_prev"])
        self._prev_close = float(state["prev_close"])
        self.value = float(state["value"])
        self.ready = bool(state["ready"])


@final
class ATR:
    """Average true range over ``period`` true ranges; ready after ``period + 1`` bars.

    ``smoothing="wilder"`` (talib.ATR): the first value is the simple mean of the first
    ``period`` true ranges, then ``atr = (atr * (period - 1) + tr) / period``.
    ``smoothing="sma"``: the simple moving average of the last ``period`` true ranges (what the
    textbook Supertrend uses), exact like every window sum, so never negative.
    """

    __slots__ = (
        "_count",
        "_sma",
        "_sum",
        "_tr",
        "_wilder",
        "period",
        "ready",
        "smoothing",
        "value",
        "warmup",
    )

    def __init__(self, period: int, smoothing: Literal["wilder", "sma"] = "wilder") -> None:
        self.period: Final = _require_period(period)
        if smoothing not in ("wilder", "sma"):
            raise ValueError(f"smoothing must be 'wilder' or 'sma', got {smoothing!r}")
        self.smoothing: Final = smoothing
        self.warmup: Final = period + 1  # ``period`` true ranges, the first on bar 2
        self._wilder: Final = smoothing == "wilder"
        self._tr: Final = TrueRange()
        self._sma: Final = SMA(period)
        self.reset()

    def reset(self) -> None:
        """Forget every bar: back to the warm-up state of a new instance."""
        self._tr.reset()
        self._sma.reset()
        self._count = 0  # true ranges seen during the Wilder warm-up; stops at ``period``
        self._sum = 0.0
        self.value: float = _NAN
        self.ready: bool = False

    def update_hlc(self, high: float, low: float, close: float) -> float:
        tr_indicator = self._tr
        tr = tr_indicator.update_hlc(high, low, close)
        if not tr_indicator.ready:
            return self.value
        if not self._wilder:
            sma = self._sma
            atr = sma.update(tr)
            if sma.ready:
                self.value = atr
                self.ready = True
            return self.value
        period = self.period
        if self.ready:
            self.value = (self.value * (period - 1) + tr) / period
            return self.value
        self._count += 1
        self._sum += tr
        if self._count == period:
            self.value = self._sum / period
            self.ready = True
        return self.value

    def snapshot(self) -> dict[str, Any]:
        return {
            "kind": "ATR",
            "period": self.period,
            "smoothing": self.smoothing,
            "tr": self._tr.snapshot(),
            "sma": self._sma.snapshot(),
            "count": self._count,
            "sum": self._sum,
            "value": self.value,
            "ready": self.ready,
        }

    def restore(self, state: dict[str, Any]) -> None:
        _check_state(state, "ATR", period=self.period, smoothing=self.smoothing)
        self._tr.restore(state["tr"])
        self._sma.restore(state["sma"])
        self._count = int(state["count"])
        self._sum = float(state["sum"])
        self.value = float(state["value"])
        self.ready = bool(state["ready"])


@final
class BollingerBands:
    """Bollinger Bands: SMA middle +/- ``num_std`` population standard deviations (ddof=0).

    Matches talib.BBANDS(close, period, num_std, num_std, matype=0). After each update:
    ``middle`` (also ``value``), ``std``, ``upper``, ``lower``, ``percent_b`` =
    (x - lower) / (upper - lower) (NaN when the bands coincide) and ``bandwidth`` =
    (upper - lower) / middle (NaN when middle is 0). ``band(k)`` gives (lower, upper) at another
    multiplier from the same mean and std. Ready after ``period`` inputs.

    Middle and deviation are functions of the window's contents alone: the window's values are
    exact integers on the SMA's grids (decimal units of 1e-8 while every value in the window is
    such a decimal, else units of 2**-80; see ``strategies.indicators.averages``), their sum S
    and sum of squares Q are kept as Python ints, and ``middle = S / (n * scale)`` and
    ``variance = (n * Q - S**2) / (n * scale)**2`` are each one correctly rounded int division.
    So there is no cancellation, no drift, no residue when a window turns flat (the std of a
    constant window is exactly 0) and no dependence on where the series started. The cost is
    a few big-int operations per update (bbrs updates it once per 1h bar).
    """

    __slots__ = (
        "_bad",
        "_odd",
        "_s1",
        "_s2",
        "_window",
        "bandwidth",
        "lower",
        "middle",
        "num_std",
        "percent_b",
        "period",
        "ready",
        "std",
        "upper",
        "value",
        "warmup",
    )

    def __init__(self, period: int = 20, num_std: float = 2.0) -> None:
        self.period: Final = _require_period(period)
        self.warmup: Final = period  # ready after this many updates
        self.num_std: Final = _require_positive(num_std, "num_std")
        self._window: deque[float] = deque(maxlen=period)
        self.reset()

    def reset(self) -> None:
        """Forget every input: back to the warm-up state of a new instance."""
        self._window.clear()
        self._s1 = 0  # sum of the window's units (decimal or binary, as _odd says)
        self._s2 = 0  # sum of their squares
        self._odd = 0  # updates until every value in the window is decimal again
        self._bad = 0  # updates until no NaN or inf is left in the window
        self.value: float = _NAN
        self.middle: float = _NAN
        self.std: float = _NAN
        self.upper: float = _NAN
        self.lower: float = _NAN
        self.percent_b: float = _NAN
        self.bandwidth: float = _NAN
        self.ready: bool = False

    def _units(self, x: float) -> int:
        if self._odd == 0:
            return int(_decimal_units(x))
        return _binary_units(x)

    def _rebuild(self) -> None:
        """Mode and sums from the full window alone."""
        self._odd, self._bad = _ages(self._window)
        if self._bad == 0:
            units = [self._units(x) for x in self._window]
            self._s1 = sum(units)
            self._s2 = sum([u * u for u in units])

    def update(self, x: float) -> float:
        window = self._window
        decimal = not math.isnan(_decimal_units(x))
        if not self.ready:
            window.append(x)
            if len(window) < self.period:
                return self.value
            self.ready = True
            self._rebuild()
        else:
            out = window[0]
            window.append(x)
            odd = self._odd
            if self._bad or x - x != 0.0 or (odd == 0 and not decimal) or (decimal and odd == 1):
                self._rebuild()  # a switch of mode, or a NaN/inf in the window
            else:
                self._odd = odd - 1 if decimal and odd else odd if decimal else self.period
                a = self._units(x)
                b = self._units(out)
                self._s1 += a - b
                self._s2 += a * a - b * b
        period = self.period
        if self._bad:
            middle = sum(window) / period
            std = _NAN
        else:
            scale = _DECIMAL_INT_SCALE if self._odd == 0 else 1 << _BINARY_BITS
            s1 = self._s1
            middle = s1 / (period * scale)
            variance = (period * self._s2 - s1 * s1) / (period * scale) ** 2
            std = math.sqrt(variance)
        width = self.num_std * std
        upper = middle + width
        lower = middle - width
        spread = 2.0 * width  # upper - lower without its cancellation
        self.value = middle
        self.middle = middle
        self.std = std
        self.upper = upper
        self.lower = lower
        self.percent_b = (x - lower) / spread if spread != 0.0 else _NAN
        self.bandwidth = spread / middle if middle != 0.0 else _NAN
        return middle

    def band(self, num_std: float) -> tuple[float, float]:
        """(lower, upper) at ``num_std`` standard deviations around the current middle."""
        width = num_std * self.std
        return self.middle - width, self.middle + width

    def snapshot(self) -> dict[str, Any]:
        return {
            "kind": "BollingerBands",
            "period": self.period,
            "num_std": self.num_std,
            "window": list(self._window),
            "outputs": [
                self.middle,
                self.std,
                self.upper,
                self.lower,
                self.percent_b,
                self.bandwidth,
            ],
            "ready": self.ready,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Sums from the saved window alone (older snapshots' pivot, mean, m2, noise and since
        are ignored); the outputs are those of the last update, as saved."""
        _check_state(state, "BollingerBands", period=self.period, num_std=self.num_std)
        values = [float(v) for v in state["window"]]
        if len(values) > self.period or bool(state["ready"]) != (len(values) == self.period):
            raise ValueError(f"BollingerBands snapshot has {len(values)} of {self.period} values")
        self.reset()
        self._window.extend(values)
        middle, std, upper, lower, percent_b, bandwidth = (float(v) for v in state["outputs"])
        self.value = middle
        self.middle = middle
        self.std = std
        self.upper = upper
        self.lower = lower
        self.percent_b = percent_b
        self.bandwidth = bandwidth
        if len(values) == self.period:
            self.ready = True
            self._rebuild()
