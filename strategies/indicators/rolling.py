"""Rolling window statistics: maximum, minimum, standard deviation and z-score.

Same shape as every indicator: ``update`` returns ``value``, plain ``value``/``ready``/``warmup``
attributes, ``reset``, and JSON-safe ``snapshot``/``restore``. Each is a function of its
window's contents alone (exact extremes; the deviation reuses Bollinger's exact integer sums).
Inputs are finite floats.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, Final, final

from barbus.strategies.indicators.checks import _check_state, _require_period
from barbus.strategies.indicators.volatility import BollingerBands

__all__ = ["RollingMax", "RollingMin", "RollingStd", "ZScore"]

_NAN: Final = math.nan


class _RollingExtreme:
    """Monotonic deque of (update number, value): O(1) amortised per update, exact.

    The deque holds the candidates for the extreme, oldest first; a newer value at least as
    extreme evicts the older ones (ties keep the newest), the front leaves when it ages out.
    """

    __slots__ = ("_count", "_numbers", "_values", "period", "ready", "value", "warmup")

    _kind = ""
    _is_max = True

    def __init__(self, period: int) -> None:
        self.period: Final = _require_period(period)
        self.warmup: Final[int] = period  # talib.MAX/MIN lookback period - 1
        self._numbers: deque[int] = deque()
        self._values: deque[float] = deque()
        self.reset()

    def reset(self) -> None:
        """Forget every input: back to the warm-up state of a new instance."""
        self._numbers.clear()
        self._values.clear()
        self._count = 0  # updates seen (the number of the last one)
        self.value: float = _NAN
        self.ready: bool = False

    def update(self, x: float) -> float:
        count = self._count + 1
        self._count = count
        numbers = self._numbers
        values = self._values
        if self._is_max:
            while values and values[-1] <= x:
                values.pop()
                numbers.pop()
        else:
            while values and values[-1] >= x:
                values.pop()
                numbers.pop()
        values.append(x)
        numbers.append(count)
        if numbers[0] <= count - self.period:
            numbers.popleft()
            values.popleft()
        if count >= self.period:
            self.ready = True
            self.value = values[0]
        return self.value

    def snapshot(self) -> dict[str, Any]:
        count = self._count
        return {
            "kind": self._kind,
            "period": self.period,
            "seen": min(count, self.period),
            "ages": [count - n for n in self._numbers],
            "values": list(self._values),
            "value": self.value,
            "ready": self.ready,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Candidates by age, so a restored instance is exactly one that saw that window."""
        _check_state(state, self._kind, period=self.period)
        ages = [int(a) for a in state["ages"]]
        values = [float(v) for v in state["values"]]
        seen = int(state["seen"])
        if len(ages) != len(values) or not 0 <= seen <= self.period:
            raise ValueError(f"{self._kind} snapshot is inconsistent: {state!r}")
        self.reset()
        self._count = seen
        self._numbers.extend(seen - a for a in ages)
        self._values.extend(values)
        self.value = float(state["value"])
        self.ready = bool(state["ready"])


@final
class RollingMax(_RollingExtreme):
    """Largest of the last ``period`` inputs (talib.MAX); ready after ``period`` inputs."""

    __slots__ = ()
    _kind = "RollingMax"
    _is_max = True


@final
class RollingMin(_RollingExtreme):
    """Smallest of the last ``period`` inputs (talib.MIN); ready after ``period`` inputs."""

    __slots__ = ()
    _kind = "RollingMin"
    _is_max = False


@final
class RollingStd:
    """Population standard deviation (ddof=0) of the last ``period`` inputs (talib.STDDEV,
    nbdev=1); ``mean`` is the window's mean. Ready after ``period`` inputs.

    Computed exactly as the Bollinger deviation (exact integer sums), so it depends on the
    window alone and a flat window's std is exactly 0; TA-Lib's ``E[x^2] - E[x]^2`` in floats
    leaves a residue there.
    """

    __slots__ = ("_bands", "mean", "period", "ready", "value", "warmup")

    def __init__(self, period: int = 20) -> None:
        self.period: Final = _require_period(period)
        self.warmup: Final[int] = period
        self._bands: Final = BollingerBands(period, 1.0)
        self.reset()

    def reset(self) -> None:
        """Forget every input: back to the warm-up state of a new instance."""
        self._bands.reset()
        self.value: float = _NAN
        self.mean: float = _NAN
        self.ready: bool = False

    def update(self, x: float) -> float:
        bands = self._bands
        bands.update(x)
        if bands.ready:
            self.ready = True
            self.mean = bands.middle
            self.value = bands.std
        return self.value

    def snapshot(self) -> dict[str, Any]:
        return {
            "kind": "RollingStd",
            "period": self.period,
            "bands": self._bands.snapshot(),
            "ready": self.ready,
        }

    def restore(self, state: dict[str, Any]) -> None:
        _check_state(state, "RollingStd", period=self.period)
        self.reset()
        bands = self._bands
        bands.restore(state["bands"])
        if bands.ready:
            self.ready = True
            self.mean = bands.middle
            self.value = bands.std


@final
class ZScore:
    """How many population standard deviations the input is from its window's mean:
    ``(x - mean) / std`` over the last ``period`` inputs (this input included), with ``mean``
    and ``std`` as attributes. Ready after ``period`` inputs. No TA-Lib equivalent.

    A flat window (std exactly 0, so x == mean) gives 0.0, the neutral reading, not NaN.
    """

    __slots__ = ("_std", "mean", "period", "ready", "std", "value", "warmup")

    def __init__(self, period: int = 20) -> None:
        self.period: Final = _require_period(period)
        self.warmup: Final[int] = period
        self._std: Final = RollingStd(period)
        self.reset()

    def reset(self) -> None:
        """Forget every input: back to the warm-up state of a new instance."""
        self._std.reset()
        self.value: float = _NAN
        self.mean: float = _NAN
        self.std: float = _NAN
        self.ready: bool = False

    def _set(self, x: float) -> None:
        rolling = self._std
        mean = rolling.mean
        std = rolling.value
        self.ready = True
        self.mean = mean
        self.std = std
        self.value = (x - mean) / std if std != 0.0 else 0.0

    def update(self, x: float) -> float:
        rolling = self._std
        rolling.update(x)
        if rolling.ready:
            self._set(x)
        return self.value

    def snapshot(self) -> dict[str, Any]:
        return {
            "kind": "ZScore",
            "period": self.period,
            "std": self._std.snapshot(),
            "value": self.value,
            "ready": self.ready,
        }

    def restore(self, state: dict[str, Any]) -> None:
        _check_state(state, "ZScore", period=self.period)
        self.reset()
        rolling = self._std
        rolling.restore(state["std"])
        if rolling.ready:
            self.ready = True
            self.mean = rolling.mean
            self.std = rolling.value
            self.value = float(state["value"])
