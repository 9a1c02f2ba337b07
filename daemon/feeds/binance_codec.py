"""Binance kline wire formats to and from :class:`~daemon.events.Bar`. Pure: no I/O, no asyncio.

WebSocket: raw (``{"e": "kline", ...}``) or combined (``{"stream": ..., "data": {...}}``) kline
events; only the final push of a candle (``k.x == true``) becomes a bar. REST: the
``/api/v3/klines`` array of 12-element rows. Prices arrive as JSON strings and are parsed with
``float`` (the bundled CSVs round-trip the same way). Every malformed message raises
:class:`MessageError` saying what is wrong, so the feed can log, count and skip it.
"""

from __future__ import annotations

import json
import math
from typing import Any

from daemon.errors import DataError
from daemon.events import INTERVAL_MS, Bar, validate_bar

__all__ = [
    "MessageError",
    "decode_rest_klines",
    "decode_ws_message",
    "encode_rest_kline",
    "encode_ws_kline",
    "stream_name",
]


class MessageError(DataError):
    """A message that is not a well-formed kline event or row."""


def stream_name(symbol: str, interval: str) -> str:
    """The stream name Binance uses: lowercase symbol, e.g. ``btcusdt@kline_1m``."""
    return f"{symbol.lower()}@kline_{interval}"


def _price(value: Any, what: str) -> float:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise MessageError(f"{what} is {value!r}, not a decimal string")
    try:
        number = float(value)
    except ValueError:
        raise MessageError(f"{what} is {value!r}, not a number") from None
    if not math.isfinite(number):
        raise MessageError(f"{what} is {value!r}, not finite")
    return number


def _int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise MessageError(f"{what} is {value!r}, not an integer")
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
        raise MessageError(f"k.s is {symbol!r}, not a symbol")
    if interval not in INTERVAL_MS:
        raise MessageError(f"k.i is {interval!r}, not a known interval")
    open_time = _int(kline.get("t"), "k.t")
    close_time = kline.get("T")
    if close_time is not None and _int(close_time, "k.T") != open_time + INTERVAL_MS[interval] - 1:
        raise MessageError(f"k.T {close_time} does not close the candle opened at {open_time}")
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
        if not isinstance(row, list) or len(row) < 6:
            raise MessageError(f"klines row {index} is not an array of at least 6 fields")
        open_time = _int(row[0], f"row {index} open time")
        if now_ms is not None and open_time + step > now_ms:
            continue  # the newest candle may still be open: never a bar
        bar = Bar(
            symbol,
            interval,
            open_time,
            *(_price(row[i], f"row {index} field {i}") for i in range(1, 6)),
        )
        try:
            bars.append(validate_bar(bar))
        except DataError as exc:
            raise MessageError(str(exc)) from None
    return bars


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
