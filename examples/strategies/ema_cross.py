"""``ema_cross``: long while the fast EMA of close is above the slow one. Copy this file to start.

A strategy is a parameter dataclass plus a class with ``on_bar``. barbus hands ``on_bar`` one bar
of the strategy's timeframe at a time (it aggregates 1-minute bars for you) with the position
held, and acts on the returned ``Signal``: BUY goes all in, SELL goes flat; a BUY while long or a
SELL while flat is ignored. ``stop_loss_pct`` and ``take_profit_pct`` come with every strategy.

Run it from anywhere: ``barbus replay --strategy ema_cross.py:EmaCross --param fast=9``.
"""

from __future__ import annotations

import dataclasses
import math

from barbus.daemon.events import Bar, Signal
from barbus.strategies.base import BaseParams, Strategy, require
from barbus.strategies.indicators import EMA


@dataclasses.dataclass(frozen=True)
class EmaCrossParams(BaseParams):
    """The EMA periods, in bars of ``timeframe`` (inherited, default ``1m``, like the exits)."""

    fast: int = 12
    slow: int = 26

    def __post_init__(self) -> None:
        super().__post_init__()  # checks timeframe, stop_loss_pct and take_profit_pct
        require(self.fast >= 1, f"fast must be >= 1, got {self.fast}")
        require(self.slow > self.fast, f"slow ({self.slow}) must be > fast ({self.fast})")


class EmaCross(Strategy[EmaCrossParams]):
    """BUY when the fast EMA crosses above the slow one, SELL when it crosses below.

    A cross up is fast > slow on this bar while fast <= slow on the previous bar, both EMAs
    ready; a cross down is the mirror image. An exact tie is no cross.
    """

    name = "ema_cross"  # the registered name (default: the class name in snake_case)
    params_type = EmaCrossParams

    def __init__(self, params: EmaCrossParams) -> None:
        super().__init__(params)
        # Indicators and plain fields set here are the state: barbus saves and restores them
        # (daemon restarts) without a hand-written snapshot/restore.
        self._fast = EMA(params.fast)
        self._slow = EMA(params.slow)
        self._prev_diff = math.nan  # fast - slow on the previous bar

    @property
    def warmup_bars(self) -> int:
        """The slow EMA is ready at bar ``slow``; a cross also needs the bar before: slow + 1."""
        return self.params.slow + 1

    def on_bar(self, bar: Bar, position: float) -> Signal | None:
        diff = self._fast.update(bar.close) - self._slow.update(bar.close)
        prev, self._prev_diff = self._prev_diff, diff
        # An EMA is NaN until ready and NaN compares False: no signal until both were ready twice.
        if diff > 0.0 and prev <= 0.0:
            return Signal.BUY
        if diff < 0.0 and prev >= 0.0:
            return Signal.SELL
        return None
