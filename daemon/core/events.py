"""The records that flow through barbus: bars in, orders and fills out, round-trip trades logged.

`Bar` is on the hot path (one per minute per symbol, a million per replay), so it is a plain
``NamedTuple`` of Python scalars: immutable, picklable and cheap to build. It is *not* validated
on construction; feeds validate at the edge with :func:`validate_bar` / :class:`BarGuard` (live)
or vectorised checks over whole columns (replay). Everything else here is a cold record.
"""

from __future__ import annotations

import enum
import math
import time
from dataclasses import dataclass
from typing import NamedTuple

from barbus.daemon.core.errors import DataError

__all__ = [
    "INTERVAL_MS",
    "INTERVAL_NAMES",
    "Bar",
    "BarGuard",
    "Direction",
    "EngineEvent",
    "ExitReason",
    "Fill",
    "OrderEvent",
    "Side",
    "Signal",
    "StrategyHalted",
    "Trade",
    "format_time_ms",
    "interval_ms",
    "parse_utc_ms",
    "validate_bar",
]

MINUTE_MS = 60_000
INTERVAL_MS: dict[str, int] = {
    "1m": MINUTE_MS,
    "3m": 3 * MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1h": 60 * MINUTE_MS,
    "2h": 120 * MINUTE_MS,
    "4h": 240 * MINUTE_MS,
    "6h": 360 * MINUTE_MS,
    "8h": 480 * MINUTE_MS,
    "12h": 720 * MINUTE_MS,
    "1d": 1440 * MINUTE_MS,
}
INTERVAL_NAMES: dict[int, str] = {ms: name for name, ms in INTERVAL_MS.items()}


def interval_ms(interval: str) -> int:
    """Return the length of a Binance-style interval name ("1m", "15m", "1h", ...) in ms."""
    try:
        return INTERVAL_MS[interval]
    except KeyError:
        known = ", ".join(INTERVAL_MS)
        raise DataError(f"unknown interval {interval!r}; known intervals: {known}") from None


def format_time_ms(time_ms: int) -> str:
    """Format epoch milliseconds as ISO-8601 UTC, e.g. ``2025-05-20T00:15:00Z``."""
    seconds, millis = divmod(time_ms, 1000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{text}.{millis:03d}Z" if millis else f"{text}Z"


class Bar(NamedTuple):
    """One OHLCV candle covering ``[open_time_ms, open_time_ms + interval)`` (UTC epoch ms)."""

    symbol: str
    interval: str
    open_time_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float

    def describe(self) -> str:
        """Name the bar for error messages: symbol, interval and UTC open time."""
        return f"{self.symbol} {self.interval} bar at {format_time_ms(self.open_time_ms)}"


def validate_bar(bar: Bar) -> Bar:
    """Return ``bar`` if its prices and volume are sane, else raise :class:`DataError` naming it."""
    prices = (bar.open, bar.high, bar.low, bar.close)
    if any(math.isnan(p) or math.isinf(p) for p in (*prices, bar.volume)):
        raise DataError(f"{bar.describe()}: NaN or infinite value in {bar}")
    if bar.high < bar.low:
        raise DataError(f"{bar.describe()}: high {bar.high} < low {bar.low}")
    if not (bar.low <= bar.open <= bar.high and bar.low <= bar.close <= bar.high):
        raise DataError(f"{bar.describe()}: open/close outside [low, high] in {bar}")
    if bar.low <= 0.0:
        raise DataError(f"{bar.describe()}: non-positive price {bar.low}")
    if bar.volume < 0.0:
        raise DataError(f"{bar.describe()}: negative volume {bar.volume}")
    return bar


class BarGuard:
    """Validate bars of one stream at the edge: sane values and strictly rising open times."""

    __slots__ = ("last_open_time_ms",)

    def __init__(self, last_open_time_ms: int | None = None) -> None:
        self.last_open_time_ms = last_open_time_ms

    def check(self, bar: Bar) -> Bar:
        """Return ``bar`` if valid and newer than the last accepted bar, else raise DataError."""
        validate_bar(bar)
        last = self.last_open_time_ms
        if last is not None and bar.open_time_ms <= last:
            raise DataError(
                f"{bar.describe()}: open time not after the previous bar's "
                f"({format_time_ms(last)}); bars must arrive in strictly rising time order"
            )
        self.last_open_time_ms = bar.open_time_ms
        return bar


class Signal(enum.IntEnum):
    """What a strategy wants after seeing a bar (long-only: enter or leave the market)."""

    SELL = -1
    BUY = 1


class Side(enum.StrEnum):
    BUY = "buy"
    SELL = "sell"


class ExitReason(enum.StrEnum):
    """Why a fill happened: a strategy's market order or signal, its resting limit or stop order,
    a bracket level, or the end of the data."""

    SIGNAL = "signal"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LOSS = "stop_loss"
    TAKE_PROFIT = "take_profit"
    TRAILING_STOP = "trailing_stop"
    END_OF_DATA = "end_of_data"


class Direction(enum.StrEnum):
    LONG = "long"
    SHORT = "short"


@dataclass(frozen=True, slots=True)
class Fill:
    """An executed order: price includes slippage, ``fee`` is in quote currency."""

    strategy: str
    symbol: str
    side: Side
    time_ms: int
    price: float
    size: float
    fee: float
    reason: ExitReason
    order_id: int = 0  # the engine's order number; 0 for a signal or a bracket exit


@dataclass(frozen=True, slots=True)
class Trade:
    """One closed quantity (an entry, then an exit of that much), as written to ``trades.csv``.

    ``size`` is positive for both directions; ``entry_price`` is the position's average entry
    price, ``entry_fee`` its share of the entry fees.
    """

    strategy: str
    symbol: str
    entry_time_ms: int
    exit_time_ms: int
    entry_price: float
    exit_price: float
    size: float
    entry_fee: float
    exit_fee: float
    profit: float
    profit_pct: float
    exit_reason: ExitReason
    direction: Direction = Direction.LONG


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """An order's life outside its fills: ``placed``, ``cancelled``, ``expired``, ``rejected``
    (nothing could be filled) or ``reduced`` (filled smaller than asked: cash ran short)."""

    event: str
    strategy: str
    symbol: str
    time_ms: int
    order_id: int
    side: Side
    order_type: str  # market, limit or stop
    price: float | None  # the limit or stop level
    detail: str = ""


@dataclass(frozen=True, slots=True)
class StrategyHalted:
    """A strategy stopped: its decision or its order failed on a bar; ``reason`` is one line."""

    strategy: str
    time_ms: int
    reason: str


EngineEvent = OrderEvent | Fill | Trade | StrategyHalted
"""What an engine's outbox holds, in the order it happened."""


EPOCH_SECONDS_BELOW = 100_000_000_000  # 1e11: a smaller bare number is epoch seconds, not ms


def epoch_ms(number: int) -> tuple[int, bool]:
    """A bare epoch number as ms, and whether it was read as seconds (below 1e11, that is
    before 1973 as milliseconds: no bar data is that old)."""
    seconds = number < EPOCH_SECONDS_BELOW
    return (number * 1000 if seconds else number), seconds


def parse_utc_ms(text: str) -> int:
    """Parse an ISO-8601 date or datetime (UTC when no offset is given) or epoch ms digits."""
    from datetime import UTC, datetime  # local: a cold path

    stripped = text.strip()
    if stripped.isascii() and stripped.isdigit():  # isdigit() alone admits "²", int() does not
        return int(stripped)
    try:
        moment = datetime.fromisoformat(stripped.replace("Z", "+00:00"))
    except ValueError:
        raise DataError(
            f"cannot read time {text!r}: use an ISO date like 2025-06-01 or 2025-06-01T12:00, "
            "or epoch milliseconds"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)
