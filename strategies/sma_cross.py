"""``sma_cross``: long when the fast SMA of close crosses above the slow one."""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar, final

from barbus.daemon.events import Bar, Signal
from barbus.strategies.base import BaseParams, Strategy, require
from barbus.strategies.indicators import SMA

__all__ = ["SmaCross", "SmaCrossParams"]


@dataclasses.dataclass(frozen=True)
class SmaCrossParams(BaseParams):
    fast: int = 10
    slow: int = 30

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.fast >= 1, f"fast must be >= 1, got {self.fast}")
        require(
            self.slow > self.fast, f"slow ({self.slow}) must be greater than fast ({self.fast})"
        )


@final
class SmaCross(Strategy[SmaCrossParams]):
    """Symmetric crosses, both SMAs ready on both bars: up is fast > slow now and fast <= slow on
    the previous bar; down is fast < slow now and fast >= slow before. An exact tie is no cross,
    so a flat stretch (fast == slow exactly) neither enters nor exits.
    """

    name: ClassVar[str] = "sma_cross"
    params_type: ClassVar[type[BaseParams]] = SmaCrossParams

    __slots__ = ("_fast", "_prev_diff", "_slow")

    def __init__(self, params: SmaCrossParams) -> None:
        super().__init__(params)
        self._fast = SMA(params.fast)
        self._slow = SMA(params.slow)
        self._prev_diff = math.nan  # fast - slow on the previous bar; NaN until both are ready

    @property
    def warmup_bars(self) -> int:
        """A cross compares with the previous bar, so the first one can come a bar after the slow
        SMA is ready: ``slow + 1``."""
        return self.params.slow + 1

    def on_bar(self, bar: Bar, position: float) -> Signal | None:
        close = bar.close
        diff = self._fast.update(close) - self._slow.update(close)
        prev = self._prev_diff
        self._prev_diff = diff
        # NaN compares false, so nothing fires until both SMAs were ready on two bars.
        if diff > 0.0 and prev <= 0.0:
            return Signal.BUY
        if diff < 0.0 and prev >= 0.0:
            return Signal.SELL
        return None
