"""Binance kline wire formats to and from :class:`~daemon.core.events.Bar`. No I/O, no asyncio.

WebSocket: raw (``{"e": "kline", ...}``) or combined (``{"stream": ..., "data": {...}}``) kline
events; only the final push of a candle (``k.x == true``) becomes a bar. REST: the
``/api/v3/klines`` array of 12-element rows. Prices arrive as JSON strings and are parsed with
``float`` (the bundled CSVs round-trip the same way). Every malformed message raises
:class:`MessageError` saying what is wrong, so the feed can log, count and skip it.

The edge rules (:func:`check_edge`, :func:`decode_rest_page`) refuse well-formed klines that
would poison later bars: a candle that closes in the future (beyond a clock-skew allowance), an
open time not aligned to the interval or before 2010, a price or volume above an absolute
ceiling. They raise :class:`RejectedBarError` with a short reason that the feed counts by.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from barbus.daemon.core.errors import DataError
from barbus.daemon.core.events import INTERVAL_MS, Bar, format_time_ms, validate_bar
from barbus.daemon.log import clip

__all__ = [
    "MAX_OPEN_TIME_MS",
    "MIN_OPEN_TIME_MS",
    "EdgeLimits",
    "MessageError",
    "RejectedBarError",
    "RestPage",
    "check_edge",
    "decode_rest_klines",
    "decode_rest_page",
    "decode_ws_message",
    "encode_rest_kline",
    "encode_ws_kline",
    "stream_name",
]


MIN_OPEN_TIME_MS = 1_262_304_000_000  # 2010-01-01: no exchange had a kline before
# 2200-01-01: a hard bound checked while decoding, before anything formats or stores the time
# (10**30 overflows SQLite and time.gmtime); the feed's bound is tighter (now + skew).
MAX_OPEN_TIME_MS = 7_258_118_400_000


class MessageError(DataError):
    """A message that is not a well-formed kline event or row."""


class RejectedBarError(MessageError):
    """A well-formed kline refused at the edge; ``reason`` (future, misaligned, implausible)
    is the label it is counted under."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class EdgeLimits:
    """What a bar may look like before it is believed (see :func:`check_edge`)."""

    step_ms: int
    max_skew_ms: int = 5_000
    max_price: float = 1e12
    max_volume: float = 1e15


def check_edge(bar: Bar, limits: EdgeLimits, now_ms: int) -> None:
    """Raise :class:`RejectedBarError` unless ``bar`` has closed by ``now_ms`` (+ the skew
    allowance), opens on an interval boundary after 2010 and has prices and volume below the
    ceilings.
    ``bar`` already passed :func:`validate_bar` (finite, low > 0, open/close in [low, high])."""
    open_ms = bar.open_time_ms
    ahead_ms = open_ms + limits.step_ms - now_ms
    if ahead_ms > limits.max_skew_ms:
        hint = "; is this machine's clock behind?" if ahead_ms < 3_600_000 else ""
        raise RejectedBarError(
            "future",
            f"{bar.describe()}: closes after now ({format_time_ms(now_ms)}) "
            f"+ {limits.max_skew_ms / 1000:g} s clock-skew allowance{hint}",
        )
    if open_ms < MIN_OPEN_TIME_MS:
        raise RejectedBarError("implausible", f"{bar.describe()}: opens before 2010")
    if open_ms % limits.step_ms:
        raise RejectedBarError(
            "misaligned",
            f"{bar.describe()}: open time {open_ms} is not a multiple of {limits.step_ms} ms",
        )
    if bar.high > limits.max_price:
        raise RejectedBarError(
            "implausible", f"{bar.describe()}: price {bar.high:g} above {limits.max_price:g}"
        )
    if bar.volume > limits.max_volume:
        raise RejectedBarError(
            "implausible",
            f"{bar.describe()}: volume {bar.volume:g} above {limits.max_volume:g}",
        )


def _open_time(value: Any, what: str) -> int:
    """An open time inside the hard bounds, so that formatting and storing it cannot fail."""
    open_time = _int(value, what)
    if open_time > MAX_OPEN_TIME_MS:
        raise RejectedBarError("future", f"{what} {clip(open_time, 40)} is after the year 2200")
    if open_time < 0:
        raise RejectedBarError("implausible", f"{what} {clip(open_time, 40)} is before 1970")
    return open_time


def stream_name(symbol: str, interval: str) -> str:
    """The stream name Binance uses: lowercase symbol, e.g. ``btcusdt@kline_1m``."""
    return f"{symbol.lower()}@kline_{interval}"


def _price(value: Any, what: str) -> float:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise MessageError(f"{what} is {clip(repr(value), 60)}, not a decimal string")
    try:
        number = float(value)
    except ValueError:
        raise MessageError(f"{what} is {clip(repr(value), 60)}, not a number") from None
    if not math.isfinite(number):
        raise MessageError(f"{what} is {clip(repr(value), 60)}, not finite")
    return number


def _int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise MessageError(f"{what} is {clip(repr(value), 60)}, not an integer")
    return value


def decode_ws_message(text: str | bytes) -> Bar | None:
    """A closed candle from one WebSocket message, or None for an update of an open candle or a
    control message (subscription acknowledgement). Raises MessageError when malformed."""
    try:
        message = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MessageError(f"not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise MessageError(f"expected a JSON object, got {type(message).__name__}")
    if "result" in message and "id" in message:
        return None  # {"result": null, "id": 1}: a SUBSCRIBE acknowledgement
    event = message.get("data", message) if "stream" in message else message
    if not isinstance(event, dict) or event.get("e") != "kline":
        raise MessageError(f"not a kline event: {str(message)[:200]}")
    kline = event.get("k")
    if not isinstance(kline, dict):
        raise MessageError("kline event without a 'k' object")
    closed = kline.get("x")
    if not isinstance(closed, bool):
        raise MessageError(f"k.x is {closed!r}, not a boolean")
    if not closed:
        return None
    symbol = kline.get("s")
    interval = kline.get("i")
    if not isinstance(symbol, str) or not symbol:
        raise MessageError(f"k.s is {clip(repr(symbol), 60)}, not a symbol")
    if interval not in INTERVAL_MS:
        raise MessageError(f"k.i is {clip(repr(interval), 60)}, not a known interval")
    open_time = _open_time(kline.get("t"), "k.t")
    close_time = kline.get("T")
    if close_time is not None and _int(close_time, "k.T") != open_time + INTERVAL_MS[interval] - 1:
        raise MessageError(
            f"k.T {clip(close_time, 40)} does not close the candle opened at {open_time}"
        )
    bar = Bar(
        symbol.upper(),
        interval,
        open_time,
        _price(kline.get("o"), "k.o"),
        _price(kline.get("h"), "k.h"),
        _price(kline.get("l"), "k.l"),
        _price(kline.get("c"), "k.c"),
        _price(kline.get("v"), "k.v"),
    )
    try:
        return validate_bar(bar)
    except DataError as exc:
        raise MessageError(str(exc)) from None


def decode_rest_klines(
    payload: Any, symbol: str, interval: str, *, now_ms: int | None = None
) -> list[Bar]:
    """Bars from a ``/api/v3/klines`` response; rows whose candle is still open are dropped."""
    if not isinstance(payload, list):
        raise MessageError(f"klines response is {type(payload).__name__}, not a list")
    step = INTERVAL_MS[interval]
    bars = []
    for index, row in enumerate(payload):
        open_time = _open_time(_rest_row(row, index)[0], f"row {index} open time")
        if now_ms is not None and open_time + step > now_ms:
            continue  # the newest candle may still be open: never a bar
        bars.append(_rest_bar(row, index, symbol, interval, open_time))
    return bars


def _rest_row(row: Any, index: int) -> list[Any]:
    """``row`` if it is a klines array (open time, O, H, L, C, V, ...), else MessageError."""
    if not isinstance(row, list) or len(row) < 6:
        raise MessageError(f"klines row {index} is not an array of at least 6 fields")
    return row


def _rest_bar(row: list[Any], index: int, symbol: str, interval: str, open_time: int) -> Bar:
    """The validated bar of a klines row; a row that is not a candle is MessageError."""
    bar = Bar(
        symbol,
        interval,
        open_time,
        *(_price(row[i], f"row {index} field {i}") for i in range(1, 6)),
    )
    try:
        return validate_bar(bar)
    except DataError as exc:
        raise MessageError(str(exc)) from None


@dataclass
class RestPage:
    """One checked ``/api/v3/klines`` page: its usable bars in rising open time, how many rows
    the exchange sent, and how many it refused by reason (with one example to log)."""

    bars: list[Bar]
    rows: int
    rejected: dict[str, int] = field(default_factory=dict)
    example: str = ""

    def refuse(self, reason: str, why: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1
        if not self.example:
            self.example = why


def decode_rest_page(
    payload: Any,
    symbol: str,
    interval: str,
    *,
    start_ms: int | None,
    end_ms: int | None,
    limit: int,
    now_ms: int,
    limits: EdgeLimits,
) -> RestPage:
    """Check a klines page like WebSocket messages, row by row.

    A page that is not a list, has more rows than ``limit`` (checked before any row is decoded,
    so a flood costs nothing) or has a malformed row raises :class:`MessageError`: the whole page
    is bad and is asked for again. Otherwise rows whose candle is still open are skipped, rows
    failing :func:`check_edge` or outside ``[start_ms, end_ms]`` are refused and counted
    (``out_of_range_row``), unsorted rows are put in order and counted (``unsorted_row``; dropping
    them would punch a hole in the series), and repeated open times keep the first row
    (``duplicate_row``)."""
    if not isinstance(payload, list):
        raise MessageError(f"klines response is {type(payload).__name__}, not a list")
    if len(payload) > limit:
        raise MessageError(f"klines page has {len(payload)} rows, more than the {limit} asked for")
    page = RestPage([], len(payload))
    step = INTERVAL_MS[interval]
    bars = page.bars
    latest = -1
    for index, row in enumerate(payload):
        try:
            open_time = _open_time(_rest_row(row, index)[0], f"row {index} open time")
        except RejectedBarError as exc:
            page.refuse(exc.reason, str(exc))
            continue
        if now_ms < open_time + step <= now_ms + limits.max_skew_ms:
            continue  # the newest candle may still be open: never a bar
        bar = _rest_bar(row, index, symbol, interval, open_time)
        try:
            check_edge(bar, limits, now_ms)
        except RejectedBarError as exc:
            page.refuse(exc.reason, str(exc))
            continue
        if (start_ms is not None and open_time < start_ms) or (
            end_ms is not None and open_time > end_ms
        ):
            page.refuse("out_of_range_row", f"{bar.describe()}: outside the range asked for")
            continue
        if open_time < latest:
            page.refuse("unsorted_row", f"{bar.describe()}: after a later row")
        latest = max(latest, open_time)
        bars.append(bar)
    if "unsorted_row" in page.rejected:
        bars.sort(key=lambda b: b.open_time_ms)
    kept: list[Bar] = []
    for bar in bars:
        if kept and bar.open_time_ms == kept[-1].open_time_ms:
            page.refuse("duplicate_row", f"{bar.describe()}: sent twice")
            continue
        kept.append(bar)
    page.bars = kept
    return page


def _decimal(value: float) -> str:
    return repr(float(value))


def encode_ws_kline(
    bar: Bar, *, event_time_ms: int, closed: bool = True, combined: bool = True
) -> str:
    """The WebSocket message Binance sends for ``bar`` (used by the simulated exchange)."""
    step = INTERVAL_MS[bar.interval]
    event = {
        "e": "kline",
        "E": event_time_ms,
        "s": bar.symbol,
        "k": {
            "t": bar.open_time_ms,
            "T": bar.open_time_ms + step - 1,
            "s": bar.symbol,
            "i": bar.interval,
            "f": 0,
            "L": 0,
            "o": _decimal(bar.open),
            "c": _decimal(bar.close),
            "h": _decimal(bar.high),
            "l": _decimal(bar.low),
            "v": _decimal(bar.volume),
            "n": 0,
            "x": closed,
            "q": "0",
            "V": "0",
            "Q": "0",
            "B": "0",
        },
    }
    if combined:
        return json.dumps({"stream": stream_name(bar.symbol, bar.interval), "data": event})
    return json.dumps(event)


def encode_rest_kline(bar: Bar) -> list[Any]:
    """One ``/api/v3/klines`` row for ``bar``."""
    step = INTERVAL_MS[bar.interval]
    return [
        bar.open_time_ms,
        _decimal(bar.open),
        _decimal(bar.high),
        _decimal(bar.low),
        _decimal(bar.close),
        _decimal(bar.volume),
        bar.open_time_ms + step - 1,
        "0",
        0,
        "0",
        "0",
        "0",
    ]
