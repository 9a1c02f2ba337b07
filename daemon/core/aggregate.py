"""Incremental timeframe aggregation: input bars (1-minute, or any interval that divides the
timeframe) in, higher-timeframe bars out. "Minute" below is one input bar.

Buckets are aligned to UTC epoch multiples of the timeframe (as Binance and a pandas
``resample(label="left", closed="left")`` do). A bucket is released *as soon as its last minute
arrives*, so a 15m strategy decides at 00:15 and not one minute late at 00:16. When that last
minute is missing (a gap in the data or an exchange halt), the bucket is released when the first
minute of a later bucket arrives, before that minute is added: :meth:`TimeframeAggregator.add`
then leaves it in :attr:`~TimeframeAggregator.late` for the engine to decide on first. One call per
minute does both (the engine's hot path). Empty buckets produce nothing: bars are never invented.
"""

from __future__ import annotations

from typing import Any, final

from barbus.daemon.core.events import MINUTE_MS, Bar, interval_ms

__all__ = ["TimeframeAggregator"]


@final
class TimeframeAggregator:
    """Build ``interval`` bars from consecutive input bars (``bar_ms`` long) of one symbol."""

    __slots__ = (
        "_bucket_ms",
        "_close",
        "_high",
        "_last_minute_offset_ms",
        "_low",
        "_open",
        "_start_ms",
        "_volume",
        "interval",
        "late",
        "symbol",
    )

    def __init__(self, symbol: str, interval: str, bar_ms: int = MINUTE_MS) -> None:
        self.symbol = symbol
        self.interval = interval
        self._bucket_ms = interval_ms(interval)
        self._last_minute_offset_ms = self._bucket_ms - bar_ms
        self._start_ms = -1  # -1: no bucket open
        self._open = self._high = self._low = self._close = self._volume = 0.0
        self.late: Bar | None = None

    def add(self, minute: Bar) -> Bar | None:
        """Add one 1-minute bar; return the completed bucket if this was its last minute.

        A bucket still open from before ``minute``'s bucket (its last minute never came) is
        released first into :attr:`late`, where it stays until the caller takes it (sets None).
        """
        t = minute.open_time_ms
        offset = t % self._bucket_ms
        start = self._start_ms
        if start < 0 or t - offset != start:
            if start >= 0:
                self.late = self._release()
            self._start_ms = t - offset
            self._open = minute.open
            self._high = minute.high
            self._low = minute.low
            self._close = minute.close
            self._volume = minute.volume
        else:
            if minute.high > self._high:
                self._high = minute.high
            if minute.low < self._low:
                self._low = minute.low
            self._close = minute.close
            self._volume += minute.volume
        if offset == self._last_minute_offset_ms:
            return self._release()
        return None

    def _release(self) -> Bar:
        bar = Bar(
            self.symbol,
            self.interval,
            self._start_ms,
            self._open,
            self._high,
            self._low,
            self._close,
            self._volume,
        )
        self._start_ms = -1
        return bar

    def snapshot(self) -> dict[str, Any]:
        """JSON-serialisable state of the open bucket."""
        return {
            "start_ms": self._start_ms,
            "ohlcv": [self._open, self._high, self._low, self._close, self._volume],
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`snapshot`."""
        self._start_ms = int(state["start_ms"])
        self._open, self._high, self._low, self._close, self._volume = (
            float(v) for v in state["ohlcv"]
        )
