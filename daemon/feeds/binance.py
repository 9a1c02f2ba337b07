"""The live feed: Binance-compatible kline WebSocket + REST backfill, over aiohttp.

Guarantee: per stream, bars come out in strictly rising open time, each exactly once, with no
hole that the exchange could have filled. On every (re)connect the WebSocket is opened first
(so nothing published meanwhile is lost), then everything after the last delivered bar is
fetched over REST; a live bar that arrives after a hole triggers a REST fetch of the hole first.
Duplicates and stale (out-of-order) bars are counted and dropped; malformed messages are
logged, counted and skipped. Reconnects use exponential backoff with jitter; heartbeats and a
receive timeout detect dead connections; the exchange's routine disconnects are just reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from daemon.errors import ConfigError
from daemon.events import INTERVAL_MS, Bar
from daemon.feeds.binance_codec import (
    MessageError,
    decode_rest_klines,
    decode_ws_message,
    stream_name,
)

__all__ = ["BinanceFeed", "FeedConfig", "FeedCounters", "FeedTemporaryError"]

log = logging.getLogger("barbus.feed")

REST_PAGE_LIMIT = 1000


class FeedTemporaryError(Exception):
    """The exchange could not be reached or answered nonsense: retry after a backoff."""


@dataclass(frozen=True)
class FeedConfig:
    """Where the exchange is and how patient to be with it."""

    rest_url: str
    ws_url: str
    symbols: tuple[str, ...]
    interval: str = "1m"
    reconnect_initial_seconds: float = 0.5
    reconnect_max_seconds: float = 30.0
    heartbeat_seconds: float = 20.0
    receive_timeout_seconds: float = 120.0
    request_timeout_seconds: float = 10.0

    def __post_init__(self) -> None:
        if not self.symbols:
            raise ConfigError("feed: at least one symbol is needed")
        if self.interval not in INTERVAL_MS:
            raise ConfigError(f"feed: unknown interval {self.interval!r}")
        # NaN compares false with everything, so each bound is written to fail on it.
        for name, most in (
            ("reconnect_initial_seconds", 3600.0),
            ("reconnect_max_seconds", 3600.0),
            ("heartbeat_seconds", 3600.0),
            ("receive_timeout_seconds", 86400.0),
            ("request_timeout_seconds", 3600.0),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not (
                isinstance(value, int | float) and 0 < value <= most
            ):
                raise ConfigError(f"feed: {name} must be > 0 and <= {most:g} seconds, got {value}")
        if self.reconnect_max_seconds < self.reconnect_initial_seconds:
            raise ConfigError(
                f"feed: reconnect_max_seconds ({self.reconnect_max_seconds}) must be >= "
                f"reconnect_initial_seconds ({self.reconnect_initial_seconds})"
            )

    @property
    def stream_url(self) -> str:
        streams = "/".join(stream_name(s, self.interval) for s in self.symbols)
        return f"{self.ws_url.rstrip('/')}/stream?streams={streams}"


@dataclass
class FeedCounters:
    """What the feed saw; exported as metrics and shown in ``/status``."""

    messages: int = 0
    malformed: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    unexpected: int = 0
    reconnects: int = 0
    connected: bool = False
    last_message_monotonic: float = 0.0
    errors: list[str] = field(default_factory=list)
    received: dict[tuple[str, str], int] = field(default_factory=dict)  # (symbol, live|backfill)
    # Bars or REST rows refused at the edge, by reason (future, misaligned, implausible, ...).
    rejected: dict[str, int] = field(default_factory=dict)
    # Holes the exchange could not fill after retries: recorded, never invented.
    gaps_recorded: int = 0
    recent_gaps: list[tuple[str, int, int]] = field(default_factory=list)  # (symbol, from, to) ms

    def count(self, symbol: str, source: str, bars: int) -> None:
        key = (symbol, source)
        self.received[key] = self.received.get(key, 0) + bars

    @property
    def live_bars(self) -> int:
        """Closed candles delivered from the WebSocket, all symbols."""
        return sum(n for (_, source), n in self.received.items() if source == "live")

    @property
    def backfilled(self) -> int:
        """Bars fetched over REST to fill holes, all symbols."""
        return sum(n for (_, source), n in self.received.items() if source == "backfill")


class BinanceFeed:
    """Bars of ``config.symbols``, contiguous after ``last_open_ms`` per symbol (None: from now)."""

    def __init__(self, config: FeedConfig, last_open_ms: dict[str, int | None]) -> None:
        self.config = config
        self.step_ms = INTERVAL_MS[config.interval]
        self.last_open_ms: dict[str, int | None] = {s: last_open_ms.get(s) for s in config.symbols}
        self.counters = FeedCounters()
        self._stop_requested = False
        self._stop_event = asyncio.Event()  # wakes the reconnect backoff on stop()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._random = random.Random()
        # When the last live candle of each symbol arrived (monotonic s): decision-lag clock.
        self.received_monotonic: dict[str, float] = {}

    def _stopping(self) -> bool:
        return self._stop_requested

    async def stop(self) -> None:
        """Stop after the current message; the iterator of :meth:`batches` then ends."""
        self._stop_requested = True
        self._stop_event.set()
        if self._ws is not None and not self._ws.closed:
            await self._ws.close()

    async def fetch_recent(self, symbol: str, count: int) -> list[Bar]:
        """The ``count`` (<= 1000) most recent closed bars of ``symbol``, oldest first: warm-up."""
        timeout = aiohttp.ClientTimeout(total=self.config.request_timeout_seconds)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            payload = await self._get_klines(
                session, symbol, {"limit": str(min(count, REST_PAGE_LIMIT))}
            )
        try:
            return decode_rest_klines(payload, symbol, self.config.interval, now_ms=_wall_ms())
        except MessageError as exc:
            raise FeedTemporaryError(f"klines response for {symbol}: {exc}") from None

    async def batches(self) -> AsyncIterator[Sequence[Bar]]:
        timeout = aiohttp.ClientTimeout(total=self.config.request_timeout_seconds)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            attempt = 0
            while not self._stopping():
                try:
                    async for batch in self._session_batches(session):
                        attempt = 0  # data flowed: the connection is healthy again
                        yield batch
                except (aiohttp.ClientError, TimeoutError, OSError, FeedTemporaryError) as exc:
                    self._note_error(f"{type(exc).__name__}: {exc}")
                finally:
                    self.counters.connected = False
                    self._ws = None
                if self._stopping():
                    break
                self.counters.reconnects += 1
                delay = min(
                    self.config.reconnect_max_seconds,
                    self.config.reconnect_initial_seconds * 2**attempt,
                ) * self._random.uniform(0.5, 1.0)
                attempt += 1
                log.info("feed: reconnecting in %.2f s (attempt %d)", delay, attempt)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop_event.wait(), timeout=delay)

    async def _session_batches(self, session: aiohttp.ClientSession) -> AsyncIterator[list[Bar]]:
        async with session.ws_connect(
            self.config.stream_url,
            heartbeat=self.config.heartbeat_seconds,
            timeout=aiohttp.ClientWSTimeout(
                ws_receive=self.config.receive_timeout_seconds, ws_close=5.0
            ),
        ) as ws:
            self._ws = ws
            if self._stopping():  # stop() came while we were connecting
                return
            self.counters.connected = True
            log.info("feed: connected to %s", self.config.stream_url)
            # Subscribed first, then catch up: whatever closes meanwhile waits in the socket.
            for symbol in self.config.symbols:
                caught_up = await self._backfill(session, symbol, up_to_ms=None)
                if caught_up:
                    yield caught_up
            async for message in ws:
                if message.type == aiohttp.WSMsgType.TEXT:
                    bars = await self._on_text(session, message.data)
                    if bars:
                        yield bars
                elif message.type in (
                    aiohttp.WSMsgType.CLOSE,
                    aiohttp.WSMsgType.CLOSED,
                    aiohttp.WSMsgType.ERROR,
                ):
                    break
            if not self._stopping():
                log.info("feed: the exchange closed the connection (code %s)", ws.close_code)

    async def _on_text(self, session: aiohttp.ClientSession, text: str) -> list[Bar]:
        counters = self.counters
        counters.messages += 1
        received = counters.last_message_monotonic = time.monotonic()
        try:
            bar = decode_ws_message(text)
        except MessageError as exc:
            counters.malformed += 1
            log.warning("feed: malformed message skipped: %s", exc)
            return []
        if bar is None:
            return []
        if bar.symbol not in self.last_open_ms or bar.interval != self.config.interval:
            counters.unexpected += 1
            log.warning("feed: unexpected stream %s %s skipped", bar.symbol, bar.interval)
            return []
        last = self.last_open_ms[bar.symbol]
        if last is not None and bar.open_time_ms <= last:
            if bar.open_time_ms == last:
                counters.duplicates += 1
            else:
                counters.out_of_order += 1
            return []
        out: list[Bar] = []
        if last is not None and bar.open_time_ms > last + self.step_ms:
            out = await self._backfill(
                session, bar.symbol, up_to_ms=bar.open_time_ms - self.step_ms
            )
        out.append(bar)
        self.last_open_ms[bar.symbol] = bar.open_time_ms
        self.received_monotonic[bar.symbol] = received
        counters.count(bar.symbol, "live", 1)
        return out

    async def _backfill(
        self, session: aiohttp.ClientSession, symbol: str, up_to_ms: int | None
    ) -> list[Bar]:
        """Closed bars after the last delivered one (up to ``up_to_ms`` inclusive), in order."""
        last = self.last_open_ms[symbol]
        if last is None:
            return []  # nothing delivered yet: live bars start the series
        fetched: list[Bar] = []
        while True:
            params = {"startTime": str(last + self.step_ms), "limit": str(REST_PAGE_LIMIT)}
            if up_to_ms is not None:
                params["endTime"] = str(up_to_ms)
            payload = await self._get_klines(session, symbol, params)
            try:
                page = decode_rest_klines(payload, symbol, self.config.interval, now_ms=_wall_ms())
            except MessageError as exc:
                raise FeedTemporaryError(f"klines response for {symbol}: {exc}") from None
            page = [b for b in page if b.open_time_ms > last]
            if not page:
                break
            fetched += page
            last = page[-1].open_time_ms
            if len(page) < REST_PAGE_LIMIT:
                break
        if fetched:
            self.last_open_ms[symbol] = last
            self.counters.count(symbol, "backfill", len(fetched))
            log.info("feed: backfilled %d %s bar(s) over REST", len(fetched), symbol)
        return fetched

    async def _get_klines(
        self, session: aiohttp.ClientSession, symbol: str, params: dict[str, str]
    ) -> Any:
        url = f"{self.config.rest_url.rstrip('/')}/api/v3/klines"
        query = {"symbol": symbol, "interval": self.config.interval, **params}
        try:
            async with session.get(url, params=query) as response:
                if response.status != 200:
                    body = (await response.text())[:200]
                    raise FeedTemporaryError(f"GET klines {symbol}: HTTP {response.status} {body}")
                return await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise FeedTemporaryError(f"GET klines {symbol}: {type(exc).__name__}: {exc}") from None
        except ValueError as exc:
            raise FeedTemporaryError(f"GET klines {symbol}: not JSON: {exc}") from None

    def _note_error(self, text: str) -> None:
        log.warning("feed: %s", text)
        self.counters.errors = [*self.counters.errors[-9:], text]


def _wall_ms() -> int:
    """Wall-clock now: used only to drop a still-open candle from a REST answer."""
    return int(time.time() * 1000)
