"""``metatrend``: three Supertrends must agree; long when all turn up, flat when all turn down."""

from __future__ import annotations

import dataclasses
from typing import ClassVar, final

from barbus.daemon.events import Bar, Signal
from barbus.strategies.base import BaseParams, Strategy, require
from barbus.strategies.indicators import Supertrend

__all__ = ["MetaTrend", "MetaTrendParams"]


@dataclasses.dataclass(frozen=True)
class MetaTrendParams(BaseParams):
    timeframe: str = "15m"
    period_1: int = 12
    multiplier_1: float = 3.0
    period_2: int = 10
    multiplier_2: float = 1.0
    period_3: int = 11
    multiplier_3: float = 2.0

    def __post_init__(self) -> None:
        super().__post_init__()
        for i in (1, 2, 3):
            period = getattr(self, f"period_{i}")
            multiplier = getattr(self, f"multiplier_{i}")
            require(period >= 1, f"period_{i} must be >= 1, got {period}")
            require(multiplier > 0.0, f"multiplier_{i} must be > 0, got {multiplier}")


@final
class MetaTrend(Strategy[MetaTrendParams]):
    """Meta-trend is +1 when all three Supertrends are up, -1 when all are down, else 0.

    BUY when it becomes +1, SELL when it becomes -1 (+1 -> 0 does not exit). "Becomes" needs an
    observed change: the first bar on which all three are ready only sets the starting state,
    because a freshly initialised Supertrend starts "up" by convention, not by evidence.
    """

    name: ClassVar[str] = "metatrend"
    params_type: ClassVar[type[BaseParams]] = MetaTrendParams

    __slots__ = ("_meta", "_supertrends")

    def __init__(self, params: MetaTrendParams) -> None:
        super().__init__(params)
        p = params
        self._supertrends = (
            Supertrend(p.period_1, p.multiplier_1, atr_smoothing="sma"),
            Supertrend(p.period_2, p.multiplier_2, atr_smoothing="sma"),
            Supertrend(p.period_3, p.multiplier_3, atr_smoothing="sma"),
        )
        self._meta: int | None = None  # None until all three are ready

    @property
    def warmup_bars(self) -> int:
        """The first bar with all three ready only sets the state (a Supertrend is ready after
        ``period + 1`` bars), so the first change can come one bar later."""
        p = self.params
        return max(p.period_1, p.period_2, p.period_3) + 2

    def on_bar(self, bar: Bar, position: float) -> Signal | None:
        high, low, close = bar.high, bar.low, bar.close
        a, b, c = self._supertrends
        a.update_hlc(high, low, close)
        b.update_hlc(high, low, close)
        c.update_hlc(high, low, close)
        if not (a.ready and b.ready and c.ready):
            return None
        total = a.trend + b.trend + c.trend
        meta = 1 if total == 3 else -1 if total == -3 else 0
        previous = self._meta
        self._meta = meta
        if previous is None or meta == previous:
            return None
        if meta == 1:
            return Signal.BUY
        if meta == -1:
            return Signal.SELL
        return None
