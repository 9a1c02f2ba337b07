"""Momentum indicators: Wilder's RSI.

Same shape as every indicator: ``update`` returns ``value``, plain ``value`` and ``ready``
attributes, ``reset``, and JSON-safe ``snapshot``/``restore``.
"""

from __future__ import annotations

import math
from typing import Any, Final, final

from barbus.strategies.indicators.checks import _check_state, _require_period

__all__ = ["RSI"]

_NAN: Final = math.nan


@final
class RSI:
    """Wilder's relative strength index in [0, 100] (talib.RSI convention).

    Changes start at the 2nd input; the first value, at input ``period + 1``, uses the simple means
    of the first ``period`` gains and losses, then ``avg = (avg * (period - 1) + new) / period``
    and ``value = 100 * avg_gain / (avg_gain + avg_loss)``, in TA-Lib's order of operations.

    Deliberate deviation: when ``avg_gain + avg_loss == 0`` (perfectly flat prices) the value is
    50.0, neutral, where TA-Lib returns 0 (which would read as maximally oversold). TA-Lib also
    returns 0 whenever that sum is below 1e-8; here only an exact zero is special.
    """

    __slots__ = (
        "_avg_gain",
        "_avg_loss",
        "_count",
        "_prev",
        "_started",
        "period",
        "ready",
        "value",
        "warmup",
    )

    def __init__(self, period: int = 14) -> None:
        self.period: Final = _require_period(period)
        self.warmup: Final = period + 1  # ``period`` changes need one more input
        self.reset()

    def reset(self) -> None:
        """Forget every input: back to the warm-up state of a new instance."""
        self._started = False  # an input was seen, so ``_prev`` is set
        self._prev = _NAN
        self._count = 0  # changes seen during warm-up; stops at ``period``
        self._avg_gain = 0.0  # sums of gains/losses during warm-up, then Wilder averages
        self._avg_loss = 0.0
        self.value: float = _NAN
        self.ready: bool = False

    def update(self, x: float) -> float:
        prev = self._prev
        self._prev = x
        if not self._started:  # first input: no change yet
            self._started = True
            return self.value
        change = x - prev
        period = self.period
        if self.ready:
            gain = self._avg_gain * (period - 1)
            loss = self._avg_loss * (period - 1)
            if change < 0.0:
                loss -= change
            else:
                gain += change
            gain /= period
            loss /= period
        else:
            gain = self._avg_gain
            loss = self._avg_loss
            if change < 0.0:
                loss -= change
            else:
                gain += change
            self._count += 1
            if self._count < period:
                self._avg_gain = gain
                self._avg_loss = loss
                return self.value
            gain /= period
            loss /= period
            self.ready = True
        self._avg_gain = gain
        self._avg_loss = loss
        total = gain + loss
        self.value = 100.0 * (gain / total) if total != 0.0 else 50.0
        return self.value

    def snapshot(self) -> dict[str, Any]:
        return {
            "kind": "RSI",
            "period": self.period,
            "started": self._started,
            "prev": self._prev,
            "count": self._count,
            "avg_gain": self._avg_gain,
            "avg_loss": self._avg_loss,
            "value": self.value,
            "ready": self.ready,
        }

    def restore(self, state: dict[str, Any]) -> None:
        _check_state(state, "RSI", period=self.period)
        self._started = bool(state["started"])
        self._prev = float(state["prev"])
        self._count = int(state["count"])
        self._avg_gain = float(state["avg_gain"])
        self._avg_loss = float(state["avg_loss"])
        self.value = float(state["value"])
        self.ready = bool(state["ready"])
