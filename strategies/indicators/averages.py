"""Moving averages (SMA, EMA) and the argument/state checks every indicator shares.

Indicators are called once per bar in million-bar replays, so they take plain floats, keep
O(period) fixed state in ``__slots__`` and never touch numpy on the hot path.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, Final, final

__all__ = ["EMA", "SMA"]

_NAN: Final = math.nan


def _require_period(period: object, name: str = "period") -> int:
    """Return ``period`` if it is an integer >= 1 (bools are rejected), else raise ValueError."""
    if isinstance(period, bool) or not isinstance(period, int) or period < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {period!r}")
    return period


def _require_positive(value: object, name: str) -> float:
    """Return ``value`` as a float if it is a finite real number > 0, else raise ValueError."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _check_state(state: dict[str, Any], kind: str, **params: object) -> None:
    """Refuse a snapshot taken from another indicator type or other constructor arguments."""
    if state.get("kind") != kind:
        raise ValueError(f"snapshot of {state.get('kind')!r} cannot restore a {kind}")
    for key, expected in params.items():
        if state.get(key) != expected:
            raise ValueError(
                f"snapshot has {key}={state.get(key)!r} but this {kind} has {key}={expected!r}"
            )


@final
class SMA:
    """Simple moving average of the last ``period`` inputs (talib.SMA).

    NaN and not ready until ``period`` inputs were seen. The running sum is updated with
    ``x_in - x_out`` and re-anchored with ``math.fsum`` over the window every ``period``
    updates, so rounding error never accumulates over a long replay (amortised O(1)).
    """

    __slots__ = ("_since", "_sum", "_window", "period", "ready", "value")

    def __init__(self, period: int) -> None:
        self.period: Final = _require_period(period)
        self._window: deque[float] = deque(maxlen=period)
        self.reset()

    def reset(self) -> None:
        """Forget every input: back to the warm-up state of a new instance."""
        self._window.clear()
        self._sum = 0.0
        self._since = 0  # updates since the sum was last recomputed exactly
        self.value: float = _NAN
        self.ready: bool = False

    def update(self, x: float) -> float:
        window = self._window
        period = self.period
        if self.ready:
            # Locals instead of attribute round trips: this is the hottest loop of a replay.
            total = self._sum + (x - window[0])
            window.append(x)
            since = self._since + 1
            if since >= period:
                total = math.fsum(window)
                since = 0
            self._sum = total
            self._since = since
            value = total / period
            self.value = value
            return value
        window.append(x)
        if len(window) < period:
            return self.value
        self._sum = math.fsum(window)
        self._since = 0
        self.ready = True
        self.value = self._sum / period
        return self.value

    def snapshot(self) -> dict[str, Any]:
        return {
            "kind": "SMA",
            "period": self.period,
            "window": list(self._window),
            "sum": self._sum,
            "since": self._since,
            "value": self.value,
            "ready": self.ready,
        }

    def restore(self, state: dict[str, Any]) -> None:
        _check_state(state, "SMA", period=self.period)
        self._window.clear()
        self._window.extend(float(v) for v in state["window"])
        self._sum = float(state["sum"])
        self._since = int(state["since"])
        self.value = float(state["value"])
        self.ready = bool(state["ready"])


@final
class EMA:
    """Exponential moving average with ``alpha = 2 / (period + 1)`` (talib.EMA convention).

    Seeded with the SMA of the first ``period`` inputs, which is the first value (ready after
    ``period`` inputs); then ``ema += alpha * (x - ema)``, the same operations as TA-Lib.
    """

    __slots__ = ("_alpha", "_count", "_sum", "period", "ready", "value")

    def __init__(self, period: int) -> None:
        self.period: Final = _require_period(period)
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
