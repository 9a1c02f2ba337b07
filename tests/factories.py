"""Builders for test inputs: bars and bar series from a few numbers."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar

from barbus.daemon.core.aggregate import TimeframeAggregator
from barbus.daemon.core.events import MINUTE_MS, Bar, Signal
from barbus.daemon.core.params import BaseParams
from barbus.daemon.core.series import BarSeries
from barbus.daemon.core.strategy import Strategy

T0_MS = 1_747_699_200_000  # 2025-05-20T00:00:00Z, a whole day (so every bucket is aligned)


def make_bar(
    close: float = 100.0,
    *,
    minute: int = 0,
    open: float | None = None,
    high: float | None = None,
    low: float | None = None,
    volume: float = 1.0,
    symbol: str = "BTCUSDT",
    interval: str = "1m",
) -> Bar:
    """A consistent 1-minute bar ``minute`` minutes after :data:`T0_MS`."""
    o = close if open is None else open
    h = max(o, close) if high is None else high
    lo = min(o, close) if low is None else low
    return Bar(symbol, interval, T0_MS + minute * MINUTE_MS, o, h, lo, close, volume)


def bars_from_closes(closes: Sequence[float], symbol: str = "BTCUSDT") -> list[Bar]:
    """Consecutive flat-range minutes (open = previous close) closing at ``closes``."""
    bars = []
    previous = closes[0]
    for i, close in enumerate(closes):
        bars.append(make_bar(close, minute=i, open=previous, symbol=symbol))
        previous = close
    return bars


def bars_of(series: BarSeries) -> list[Bar]:
    """The :class:`Bar` objects of a series, in order."""
    return series.to_bars()


def aggregate(minutes: Sequence[Bar], interval: str) -> tuple[list[Bar], list[int]]:
    """Drive a :class:`TimeframeAggregator` as the engine does.

    Returns the released bars and, for each, the index of the minute that released it.
    """
    agg = TimeframeAggregator(minutes[0].symbol, interval)
    out: list[Bar] = []
    released_at: list[int] = []
    for i, minute in enumerate(minutes):
        done = agg.add(minute)
        if agg.late is not None:
            out.append(agg.late)
            released_at.append(i)
            agg.late = None
        if done is not None:
            out.append(done)
            released_at.append(i)
    return out, released_at


def series_from_bars(bars: Sequence[Bar], source: str = "test") -> BarSeries:
    """Columns of ``bars`` as a :class:`BarSeries`."""
    return BarSeries.from_bars(bars, source)


@dataclasses.dataclass(frozen=True)
class ScriptParams(BaseParams):
    pass


class Scripted(Strategy[ScriptParams]):
    """Emit the signal scripted for each decision bar's open time; record what it saw."""

    name: ClassVar[str] = "scripted"
    params_type: ClassVar[type[BaseParams]] = ScriptParams

    def __init__(self, params: ScriptParams, script: dict[int, Signal]) -> None:
        super().__init__(params)
        self.script = script
        self.seen: list[tuple[Bar, float]] = []

    def on_bar(self, bar: Bar, position: float) -> Signal | None:
        self.seen.append((bar, position))
        return self.script.get(bar.open_time_ms)

    def snapshot(self) -> dict[str, Any]:
        return {}

    def restore(self, state: dict[str, Any]) -> None:
        pass
