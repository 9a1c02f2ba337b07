"""``ema_long_short``: EmaCross's signals, but long or short a fraction of equity by a target.

After the fast EMA crosses above the slow one the strategy asks to hold ``+fraction`` of the
account's equity, after a cross below ``-fraction`` (a short); it is flat until the first cross.
``Order.target_position`` buys or sells the difference at the next minute's open, so a flip
closes the old position and opens the new one at that one fill: quantity = fraction x equity /
price, with equity = cash + position x price, both at the fill's reference price (the open,
before fees and slippage).

Shorts need an account that allows them:
``barbus replay --strategy ema_long_short.py:EmaLongShort --allow-short`` (or ``allow_short =
true`` on the daemon's account); without it the first cross down halts the strategy.
"""

from __future__ import annotations

import dataclasses
import math

from barbus.daemon.events import Bar
from barbus.strategies.base import BaseParams, Order, Strategy, require
from barbus.strategies.indicators import EMA


@dataclasses.dataclass(frozen=True)
class EmaLongShortParams(BaseParams):
    """EMA periods in bars of ``timeframe``; ``fraction`` of equity held long or short."""

    fast: int = 12
    slow: int = 26
    fraction: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.fast >= 1, f"fast must be >= 1, got {self.fast}")
        require(self.slow > self.fast, f"slow ({self.slow}) must be > fast ({self.fast})")
        require(0.0 < self.fraction <= 1.0, f"fraction must be in (0, 1], got {self.fraction}")


class EmaLongShort(Strategy[EmaLongShortParams]):
    """Target +fraction after a cross up, -fraction after a cross down (EmaCross's crosses)."""

    name = "ema_long_short"
    params_type = EmaLongShortParams

    def __init__(self, params: EmaLongShortParams) -> None:
        super().__init__(params)
        self._fast = EMA(params.fast)
        self._slow = EMA(params.slow)
        self._prev_diff = math.nan

    @property
    def warmup_bars(self) -> int:
        return self.params.slow + 1

    def on_bar(self, bar: Bar, position: float) -> Order | None:
        diff = self._fast.update(bar.close) - self._slow.update(bar.close)
        prev, self._prev_diff = self._prev_diff, diff
        if diff > 0.0 and prev <= 0.0:
            return Order.target_position(self.params.fraction)
        if diff < 0.0 and prev >= 0.0:
            return Order.target_position(-self.params.fraction)
        return None
