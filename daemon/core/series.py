"""A validated series of bars of one interval as numpy columns, and what is missing from it.

The one in-memory shape of historical data: the loader produces it, the cache memory-maps it,
the replay feed serves it. Columns may be read-only memory maps; nothing here writes to them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from barbus.daemon.core.errors import DataError
from barbus.daemon.core.events import MINUTE_MS, Bar, format_time_ms, interval_ms

__all__ = ["BarSeries", "FloatArray", "GapReport", "IntArray", "symbol_from_name"]

_PRICES = ("open", "high", "low", "close", "volume")
_SYMBOL_IN_NAME = re.compile(r"^([A-Z0-9]{4,20})[_-]")

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class GapReport:
    """Missing minutes in a series: how many holes, the largest, and how many minutes in all."""

    count: int
    largest_minutes: int
    missing_minutes: int
    largest_after_ms: int | None  # open time of the bar before the largest gap

    def describe(self) -> str:
        if self.count == 0:
            return "no gaps"
        where = format_time_ms(self.largest_after_ms) if self.largest_after_ms is not None else "?"
        return (
            f"{self.count} gap(s), {self.missing_minutes} missing minute(s), "
            f"largest {self.largest_minutes} min after {where}"
        )


@dataclass(frozen=True, slots=True)
class BarSeries:
    """Columns of validated bars of one symbol and ``interval``, strictly rising in time."""

    symbol: str
    interval: str
    source: str
    open_time_ms: IntArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray

    def __len__(self) -> int:
        return len(self.open_time_ms)

    @classmethod
    def from_bars(cls, bars: Sequence[Bar], source: str) -> BarSeries:
        """Columns of ``bars`` (of one symbol and interval, in order)."""
        if not bars:
            raise DataError(f"{source}: no bars")
        return cls(
            bars[0].symbol,
            bars[0].interval,
            source,
            np.array([b.open_time_ms for b in bars], dtype=np.int64),
            *(np.array([getattr(b, f) for b in bars], dtype=np.float64) for f in _PRICES),
        )

    def to_bars(self) -> list[Bar]:
        """The series as :class:`Bar` objects (a cold path: the replay feed builds its own)."""
        rows = zip(*(column.tolist() for column in self.columns()), strict=True)
        return [Bar(self.symbol, self.interval, *row) for row in rows]

    def columns(
        self,
    ) -> tuple[IntArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
        """The six columns in file order: open time, open, high, low, close, volume."""
        return (self.open_time_ms, self.open, self.high, self.low, self.close, self.volume)

    def between(self, start_ms: int | None, end_ms: int | None) -> BarSeries:
        """Bars with ``start_ms <= open_time_ms < end_ms`` (bounds optional); views, not copies."""
        times = self.open_time_ms
        lo = 0 if start_ms is None else int(np.searchsorted(times, start_ms, side="left"))
        hi = len(times) if end_ms is None else int(np.searchsorted(times, end_ms, side="left"))
        return BarSeries(
            self.symbol,
            self.interval,
            self.source,
            times[lo:hi],
            self.open[lo:hi],
            self.high[lo:hi],
            self.low[lo:hi],
            self.close[lo:hi],
            self.volume[lo:hi],
        )

    def gaps(self) -> GapReport:
        """Count the holes between consecutive bars (in minutes, whatever the interval)."""
        if len(self) < 2:
            return GapReport(0, 0, 0, None)
        step = interval_ms(self.interval)
        steps = np.diff(self.open_time_ms)
        holes = np.flatnonzero(steps > step)
        if holes.size == 0:
            return GapReport(0, 0, 0, None)
        missing = (steps[holes] - step) // MINUTE_MS
        worst = int(np.argmax(missing))
        return GapReport(
            count=int(holes.size),
            largest_minutes=int(missing[worst]),
            missing_minutes=int(missing.sum()),
            largest_after_ms=int(self.open_time_ms[holes[worst]]),
        )

    def zero_volume_bars(self) -> int:
        """Minutes present but without trades (e.g. an exchange halt)."""
        return int(np.count_nonzero(self.volume == 0.0))


def symbol_from_name(path: Path) -> str:
    """The symbol a file name starts with (``BTCUSDT_1m_...csv.gz`` -> ``BTCUSDT``)."""
    match = _SYMBOL_IN_NAME.match(path.name)
    if match is None:
        raise DataError(f"{path}: cannot tell the symbol from the file name; pass --symbol")
    return match.group(1)
