"""Volatility indicators: true range, ATR (Wilder or SMA smoothing) and Bollinger Bands.

Same shape as every indicator: ``update``/``update_hlc`` return ``value``, plain ``value`` and
``ready`` attributes, ``reset``, and JSON-safe ``snapshot``/``restore``.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, Final, Literal, final

from strategies.indicators.averages import (
    SMA,
    _check_state,
    _require_period,
    _require_positive,
)

__all__ = ["ATR", "BollingerBands", "TrueRange"]

_NAN: Final = math.nan

# A sliding update's rounding error in M2 is a few ulps of the terms it added and removed
# (accumulated in ``_noise``), times up to ``period`` for the drift of the running mean. Below
# ``period * 2**-20 * noise`` M2 could be mostly that error, so it is recomputed exactly; above it
# the relative error of M2 is at most a few times 2**-32.
_NOISE_FLOOR: Final = 2.0**-20


@final
class TrueRange:
    """True range: ``max(high - low, |high - prev_close|, |low - prev_close|)`` (talib.TRANGE).

    The first bar has no previous close, so like TA-Lib the value is NaN (not ready) there.
    """

    __slots__ = ("_has_prev", "_prev_close", "ready", "value")

    def __init__(self) -> None:
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
    textbook Supertrend uses); clamped at 0 so running-sum residue can never make it negative.
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
    )

    def __init__(self, period: int, smoothing: Literal["wilder", "sma"] = "wilder") -> None:
        self.period: Final = _require_period(period)
        if smoothing not in ("wilder", "sma"):
            raise ValueError(f"smoothing must be 'wilder' or 'sma', got {smoothing!r}")
        self.smoothing: Final = smoothing
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
                self.value = atr if atr > 0.0 else 0.0
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

    Variance is never E[x^2] - E[x]^2 (at BTC ~1e5 with std ~10 that cancels catastrophically).
    Mean and M2 slide Welford-style by (x_in, x_out) in coordinates shifted by a pivot near the
    mean, and are recomputed exactly (two-pass, ``math.fsum``) every ``period`` updates and
    whenever M2 falls to the rounding noise its sliding updates may have left: a purely sliding
    M2 keeps a residue of ~eps * jump^2 when a window turns flat after a jump, i.e. a std of
    ~1e-8 * jump instead of 0. Such a collapse needs an outlier to leave the window, so these
    recomputes are rare (a handful per 130k real 1-minute bars at period >= 14; for tiny periods
    they are cheap anyway) and the update stays amortised O(1).
    """

    __slots__ = (
        "_m2",
        "_mean",
        "_noise",
        "_pivot",
        "_since",
        "_threshold",
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
    )

    def __init__(self, period: int = 20, num_std: float = 2.0) -> None:
        self.period: Final = _require_period(period)
        self.num_std: Final = _require_positive(num_std, "num_std")
        self._threshold: Final = period * _NOISE_FLOOR
        self._window: deque[float] = deque(maxlen=period)
        self.reset()

    def reset(self) -> None:
        """Forget every input: back to the warm-up state of a new instance."""
        self._window.clear()
        self._pivot = 0.0  # window values are used as x - pivot
        self._mean = 0.0  # mean of x - pivot over the window
        self._m2 = 0.0  # sum of squared deviations from the mean
        self._noise = 0.0  # bound on the rounding error M2 picked up since the last recompute
        self._since = 0  # updates since the last exact recompute
        self.value: float = _NAN
        self.middle: float = _NAN
        self.std: float = _NAN
        self.upper: float = _NAN
        self.lower: float = _NAN
        self.percent_b: float = _NAN
        self.bandwidth: float = _NAN
        self.ready: bool = False

    def _recompute(self) -> None:
        """Exact two-pass mean and M2 over the window, pivoted on the window's mean."""
        window = self._window
        period = self.period
        pivot = math.fsum(window) / period
        shifted = [v - pivot for v in window]
        mean = math.fsum(shifted) / period
        self._pivot = pivot
        self._mean = mean
        self._m2 = math.fsum([(y - mean) * (y - mean) for y in shifted])
        self._noise = 0.0
        self._since = 0

    def update(self, x: float) -> float:
        window = self._window
        period = self.period
        if self.ready:
            pivot = self._pivot
            y_in = x - pivot
            y_out = window[0] - pivot
            window.append(x)
            delta = y_in - y_out
            old_mean = self._mean
            mean = old_mean + delta / period
            dev_in = y_in - mean
            dev_out = y_out - old_mean
            m2 = self._m2 + delta * (dev_in + dev_out)
            noise = self._noise + abs(delta) * (abs(dev_in) + abs(dev_out) + abs(mean))
            self._since += 1
            if self._since >= period or m2 < noise * self._threshold:
                self._recompute()
            else:
                self._mean = mean
                self._m2 = m2
                self._noise = noise
        else:
            window.append(x)
            if len(window) < period:
                return self.value
            self._recompute()
            self.ready = True
        middle = self._pivot + self._mean
        m2 = self._m2
        std = math.sqrt(m2 / period) if m2 > 0.0 else 0.0
        width = self.num_std * std
        upper = middle + width
        lower = middle - width
        spread = upper - lower
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
            "pivot": self._pivot,
            "mean": self._mean,
            "m2": self._m2,
            "noise": self._noise,
            "since": self._since,
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
        _check_state(state, "BollingerBands", period=self.period, num_std=self.num_std)
        self._window.clear()
        self._window.extend(float(v) for v in state["window"])
        self._pivot = float(state["pivot"])
        self._mean = float(state["mean"])
        self._m2 = float(state["m2"])
        self._noise = float(state["noise"])
        self._since = int(state["since"])
        middle, std, upper, lower, percent_b, bandwidth = (float(v) for v in state["outputs"])
        self.value = middle
        self.middle = middle
        self.std = std
        self.upper = upper
        self.lower = lower
        self.percent_b = percent_b
        self.bandwidth = bandwidth
        self.ready = bool(state["ready"])
