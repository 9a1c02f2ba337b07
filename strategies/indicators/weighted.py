"""Weighted and multiple-EMA averages: WMA (exact window), DEMA and TEMA (talib conventions).

Same shape as every indicator: ``update`` returns ``value``, plain ``value``/``ready``/``warmup``
attributes, ``reset``, and JSON-safe ``snapshot``/``restore``.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, Final, final

from barbus.strategies.indicators.averages import EMA
from barbus.strategies.indicators.checks import _check_state, _require_period
from barbus.strategies.indicators.exact_sums import (
    _BINARY_BITS,
    _DECIMAL_INT_SCALE,
    _ages,
    _binary_units,
    _decimal_units,
)

__all__ = ["DEMA", "TEMA", "WMA"]

_NAN: Final = math.nan


@final
class WMA:
    """Linearly weighted moving average (talib.WMA): weights 1..period, the newest heaviest,
    over ``period * (period + 1) / 2``. Ready after ``period`` inputs.

    Exact like the SMA and Bollinger sums: the window's values are integers on the decimal
    (1e-8) or binary (2**-80) grid that its contents pick (see ``averages``), the plain sum S and
    the weighted sum W are Python ints (``W += period * new - S`` slides the weights), and the
    value is one correctly rounded division, so it depends on the window's contents alone.
    """

    __slots__ = (
        "_bad",
        "_den",
        "_odd",
        "_s",
        "_w",
        "_window",
        "period",
        "ready",
        "value",
        "warmup",
    )

    def __init__(self, period: int = 20) -> None:
        self.period: Final = _require_period(period)
        self.warmup: Final[int] = period  # talib lookback period - 1
        self._den: Final = period * (period + 1) // 2
        self._window: deque[float] = deque(maxlen=period)
        self.reset()

    def reset(self) -> None:
        """Forget every input: back to the warm-up state of a new instance."""
        self._window.clear()
        self._s = 0  # sum of the window's units (decimal or binary, as _odd says)
        self._w = 0  # sum of weight * units, weight 1 for the oldest
        self._odd = 0  # updates until every value in the window is decimal again
        self._bad = 0  # updates until no NaN or inf is left in the window
        self.value: float = _NAN
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
            self._s = sum(units)
            self._w = sum([weight * u for weight, u in enumerate(units, start=1)])

    def update(self, x: float) -> float:
        window = self._window
        period = self.period
        decimal = not math.isnan(_decimal_units(x))
        if not self.ready:
            window.append(x)
            if len(window) < period:
                return self.value
            self.ready = True
            self._rebuild()
        else:
            out = window[0]
            window.append(x)
            odd = self._odd
            if self._bad or x - x != 0.0 or (odd == 0 and not decimal) or (decimal and odd == 1):
                self._rebuild()  # a switch of grid, or a NaN/inf in the window
            else:
                self._odd = odd - 1 if decimal and odd else odd if decimal else period
                a = self._units(x)
                s = self._s
                self._w += period * a - s
                self._s = s + a - self._units(out)
        if self._bad:
            total = 0.0
            for weight, v in enumerate(window, start=1):
                total += weight * v
            value = total / self._den
        else:
            scale = _DECIMAL_INT_SCALE if self._odd == 0 else 1 << _BINARY_BITS
            value = self._w / (self._den * scale)
        self.value = value
        return value

    def snapshot(self) -> dict[str, Any]:
        return {
            "kind": "WMA",
            "period": self.period,
            "window": list(self._window),
            "value": self.value,
            "ready": self.ready,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Sums from the saved window alone."""
        _check_state(state, "WMA", period=self.period)
        values = [float(v) for v in state["window"]]
        if len(values) > self.period or bool(state["ready"]) != (len(values) == self.period):
            raise ValueError(f"WMA snapshot has {len(values)} of {self.period} values")
        self.reset()
        self._window.extend(values)
        self.value = float(state["value"])
        if len(values) == self.period:
            self.ready = True
            self._rebuild()


@final
class DEMA:
    """Double EMA, ``2 * ema1 - ema2`` with ``ema2`` the EMA of ``ema1`` (talib.DEMA).

    Each EMA is seeded with the SMA of its first ``period`` inputs (``ema2``'s inputs start
    when ``ema1`` is ready), so it is ready after ``2 * period - 1`` inputs.
    """

    __slots__ = ("_ema1", "_ema2", "period", "ready", "value", "warmup")

    def __init__(self, period: int = 20) -> None:
        self.period: Final = _require_period(period)
        self.warmup: Final[int] = 2 * period - 1  # talib lookback 2 * (period - 1)
        self._ema1: Final = EMA(period)
        self._ema2: Final = EMA(period)
        self.reset()

    def reset(self) -> None:
        """Forget every input: back to the warm-up state of a new instance."""
        self._ema1.reset()
        self._ema2.reset()
        self.value: float = _NAN
        self.ready: bool = False

    def update(self, x: float) -> float:
        ema1 = self._ema1
        e1 = ema1.update(x)
        if ema1.ready:
            ema2 = self._ema2
            e2 = ema2.update(e1)
            if ema2.ready:
                self.ready = True
                self.value = 2.0 * e1 - e2
        return self.value

    def snapshot(self) -> dict[str, Any]:
        return {
            "kind": "DEMA",
            "period": self.period,
            "ema1": self._ema1.snapshot(),
            "ema2": self._ema2.snapshot(),
            "value": self.value,
            "ready": self.ready,
        }

    def restore(self, state: dict[str, Any]) -> None:
        _check_state(state, "DEMA", period=self.period)
        self._ema1.restore(state["ema1"])
        self._ema2.restore(state["ema2"])
        self.value = float(state["value"])
        self.ready = bool(state["ready"])


@final
class TEMA:
    """Triple EMA, ``3 * ema1 - 3 * ema2 + ema3``, each the EMA of the one before
    (talib.TEMA, SMA-seeded like DEMA): ready after ``3 * period - 2`` inputs."""

    __slots__ = ("_ema1", "_ema2", "_ema3", "period", "ready", "value", "warmup")

    def __init__(self, period: int = 20) -> None:
        self.period: Final = _require_period(period)
        self.warmup: Final[int] = 3 * period - 2  # talib lookback 3 * (period - 1)
        self._ema1: Final = EMA(period)
        self._ema2: Final = EMA(period)
        self._ema3: Final = EMA(period)
        self.reset()

    def reset(self) -> None:
        """Forget every input: back to the warm-up state of a new instance."""
        self._ema1.reset()
        self._ema2.reset()
        self._ema3.reset()
        self.value: float = _NAN
        self.ready: bool = False

    def update(self, x: float) -> float:
        ema1 = self._ema1
        e1 = ema1.update(x)
        if ema1.ready:
            ema2 = self._ema2
            e2 = ema2.update(e1)
            if ema2.ready:
                ema3 = self._ema3
                e3 = ema3.update(e2)
                if ema3.ready:
                    self.ready = True
                    self.value = 3.0 * e1 - 3.0 * e2 + e3
        return self.value

    def snapshot(self) -> dict[str, Any]:
        return {
            "kind": "TEMA",
            "period": self.period,
            "ema1": self._ema1.snapshot(),
            "ema2": self._ema2.snapshot(),
            "ema3": self._ema3.snapshot(),
            "value": self.value,
            "ready": self.ready,
        }

    def restore(self, state: dict[str, Any]) -> None:
        _check_state(state, "TEMA", period=self.period)
        self._ema1.restore(state["ema1"])
        self._ema2.restore(state["ema2"])
        self._ema3.restore(state["ema3"])
        self.value = float(state["value"])
        self.ready = bool(state["ready"])
