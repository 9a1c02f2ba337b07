"""The live feed: Binance-compatible kline WebSocket + REST backfill, over aiohttp.

Guarantee: per stream, bars come out in strictly rising open time, each exactly once, with no
hole that the exchange could have filled. On every (re)connect the WebSocket is opened first
(so nothing published meanwhile is lost), then everything after the last delivered bar is
fetched over REST; a live bar that arrives after a hole triggers a REST fetch of the hole first.
Duplicates and stale (out-of-order) bars are counted and dropped; malformed messages are
logged, counted and skipped. Reconnects use exponential backoff with jitter; heartbeats and a
receive timeout (counting data messages, not pings) detect dead connections; the exchange's
routine disconnects are just reconnects.

Nothing from the exchange is believed unchecked (see ``check_edge``): a candle closing after
now + ``max_clock_skew_seconds``, an open time off the interval grid, a price above
``max_price`` or a volume above ``max_volume`` is refused and counted in
``counters.rejected[reason]``, and so is a bar whose range leaves [previous close /
``plausible_factor``, previous close * ``plausible_factor``] -- unless
``implausible_accept_after`` consecutive bars agree on the new level, which is then accepted and
logged, so a real repricing cannot stall the feed for good. A refused bar never moves
``last_open_ms``: the next good bar backfills its minute from REST, where the exchange may have
the true bar. REST pages come from the klines client (``binance_rest``), which checks them row
by row; a bad page is a retryable error; a backfill stops after ``max_backfill_pages`` pages (the
next live bar carries on from there) and yields to the event loop between pages. The settings
and counters are in ``binance_config``. A hole that REST cannot fill after
``gap_retries`` retries is recorded (log line, ``gaps_recorded``, ``recent_gaps``), never
invented. Warnings are rate-limited per kind, and echoed input is cut to 200 characters.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Sequence

import aiohttp

from barbus.daemon.core.events import INTERVAL_MS, Bar, format_time_ms
from barbus.daemon.feeds.binance_codec import (
    EdgeLimits,
    MessageError,
    RejectedBarError,
    check_edge,
    decode_ws_message,
)
from barbus.daemon.feeds.binance_config import FeedConfig, FeedCounters
from barbus.daemon.feeds.binance_rest import (
    FeedTemporaryError,
    KlinesClient,
    count_rejected,
    wall_ms,
)
from barbus.daemon.log import RateLimitedLog, clip

# FeedConfig and FeedCounters are binance_config's, where the daemon imports them from; they are
# named here too only for the tests that still import them from this module.
__all__ = ["BinanceFeed"]

log = logging.getLogger("barbus.feed")

RECENT_GAPS = 10


class BinanceFeed:
    """Bars of ``config.symbols``, contiguous after ``last_open_ms`` per symbol (None: from now)."""

    def __init__(self, config: FeedConfig, last_open_ms: dict[str, int | None]) -> None:
        self.config = config
        self.step_ms = INTERVAL_MS[config.interval]
        self.last_open_ms: dict[str, int | None] = {s: last_open_ms.get(s) for s in config.symbols}
        # The close of the last accepted bar per symbol: the plausibility reference.
        self.last_close: dict[str, float] = {}
        self.counters = FeedCounters()
        self.limits = EdgeLimits(
            self.step_ms,
            round(config.max_clock_skew_seconds * 1000),
            config.max_price,
            config.max_volume,
        )
        self.warnings = RateLimitedLog(log)
        self._stop_requested = False
        self._stop_event = asyncio.Event()  # wakes the reconnect backoff on stop()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._random = random.Random()
        # symbol -> (level, consecutive implausible bars near it, last such open time)
        self._new_level: dict[str, tuple[float, int, int]] = {}
        self._backfill_complete = True
        # When the last live candle of each symbol arrived (monotonic s): decision-lag clock.
        self.received_monotonic: dict[str, float] = {}

    def _stopping(self) -> bool:
        return self._stop_requested

    async def stop(self) -> None:
        """Stop after the current message; the iterator of :meth:`batches` then ends."""
        self._stop_requested = True
        self._stop_event.set()
        self.warnings.flush()
        if self._ws is not None and not self._ws.closed:
            await self._ws.close()

    async def fetch_recent(self, symbol: str, count: int) -> list[Bar]:
        """The ``count`` most recent closed bars of ``symbol``, oldest first: warm-up.

        Paged backwards by :meth:`KlinesClient.recent` (at most ``max_backfill_pages`` pages,
        each checked as a backfill page is; a bad one fails the whole fetch and the caller
        retries it); the bars are then held to the plausibility rule like live ones."""
        async with self._http() as session:
            recent = await self._klines(session).recent(symbol, count)
        bars = [bar for bar in recent if self._plausible(bar)]
        if bars:
            self.last_close[symbol] = bars[-1].close
        return bars

    def _http(self) -> aiohttp.ClientSession:
        """A session whose every request gives up after ``request_timeout_seconds``."""
        timeout = aiohttp.ClientTimeout(total=self.config.request_timeout_seconds)
        return aiohttp.ClientSession(timeout=timeout)

    def _klines(self, session: aiohttp.ClientSession) -> KlinesClient:
        config = self.config
        return KlinesClient(
            session,
            config.rest_url,
            config.interval,
            self.limits,
            page_limit=config.rest_page_limit,
            max_pages=config.max_backfill_pages,
            rejected=self.counters.rejected,
            warnings=self.warnings,
        )

    async def batches(self) -> AsyncIterator[Sequence[Bar]]:
        async with self._http() as session:
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
                self.warnings.flush()
                if self._stopping():
                    break
                self.counters.reconnects += 1
                delay = min(
                    self.config.reconnect_max_seconds,
                    self.config.reconnect_initial_seconds * 2**attempt,
                ) * self._random.uniform(0.5, 1.0)
                attempt += 1
                log.info("feed: reconnecting in %.2f s (attempt %d)", delay, attempt)
                await self._sleep(delay)

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake at once on :meth:`stop`."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop_event.wait(), timeout=seconds)

    async def _session_batches(self, session: aiohttp.ClientSession) -> AsyncIterator[list[Bar]]:
        # No ws_receive timeout: aiohttp restarts it on every ping/pong, so a stream that
        # answers pings but sends no data would never time out. The loop below times data.
        async with session.ws_connect(
            self.config.stream_url,
            heartbeat=self.config.heartbeat_seconds,
            timeout=aiohttp.ClientWSTimeout(ws_close=5.0),
        ) as ws:
            self._ws = ws
            klines = self._klines(session)
            if self._stopping():  # stop() came while we were connecting
                return
            self.counters.connected = True
            log.info("feed: connected to %s", self.config.stream_url)
            # Subscribed first, then catch up: whatever closes meanwhile waits in the socket.
            for symbol in self.config.symbols:
                async for page in self._backfill(klines, symbol, up_to_ms=None):
                    yield page
            patience = self.config.receive_timeout_seconds
            while True:
                try:
                    async with asyncio.timeout(patience):
                        message = await ws.receive()
                except TimeoutError:
                    if self._stopping():
                        return
                    raise TimeoutError(
                        f"no message for {patience:g} s (receive_timeout_seconds); reconnecting"
                    ) from None
                if message.type == aiohttp.WSMsgType.TEXT:
                    async for bars in self._on_text(klines, message.data):
                        yield bars
                elif message.type in (
                    aiohttp.WSMsgType.CLOSE,
                    aiohttp.WSMsgType.CLOSING,
                    aiohttp.WSMsgType.CLOSED,
                    aiohttp.WSMsgType.ERROR,
                ):
                    break
            if not self._stopping():
                log.info("feed: the exchange closed the connection (code %s)", ws.close_code)

    async def _on_text(self, klines: KlinesClient, text: str) -> AsyncIterator[list[Bar]]:
        counters = self.counters
        counters.messages += 1
        received = counters.last_message_monotonic = time.monotonic()
        self.warnings.tick(received)
        try:
            bar = decode_ws_message(text)
            if bar is not None and bar.interval == self.config.interval:
                check_edge(bar, self.limits, wall_ms())
        except RejectedBarError as exc:
            self._reject(exc.reason, str(exc))
            return
        except MessageError as exc:
            counters.malformed += 1
            self.warnings.warning("malformed", "feed: malformed message skipped: %s", clip(exc))
            return
        if bar is None:
            return
        if bar.symbol not in self.last_open_ms or bar.interval != self.config.interval:
            counters.unexpected += 1
            self.warnings.warning(
                "unexpected",
                "feed: unexpected stream %s %s skipped",
                clip(bar.symbol, 40),
                bar.interval,
            )
            return
        last = self.last_open_ms[bar.symbol]
        if last is not None and bar.open_time_ms <= last:
            kind = "duplicate" if bar.open_time_ms == last else "out_of_order"
            if kind == "duplicate":
                counters.duplicates += 1
            else:
                counters.out_of_order += 1
            self.warnings.warning(
                kind,
                "feed: %s dropped (%s): not after the last delivered bar at %s",
                bar.describe(),
                kind.replace("_", " "),
                format_time_ms(last),
            )
            return
        if last is not None and bar.open_time_ms > last + self.step_ms:
            async for page in self._backfill(
                klines, bar.symbol, up_to_ms=bar.open_time_ms - self.step_ms
            ):
                yield page
            if not self._backfill_complete or self._stopping():
                return  # the hole is not filled yet: the next live bar carries on
        if not self._plausible(bar):
            return
        self.last_open_ms[bar.symbol] = bar.open_time_ms
        self.last_close[bar.symbol] = bar.close
        self.received_monotonic[bar.symbol] = received
        counters.count(bar.symbol, "live", 1)
        yield [bar]

    def _plausible(self, bar: Bar) -> bool:
        """Whether ``bar`` stays within ``plausible_factor`` of the previous accepted close.

        A bar outside is refused ("implausible") unless it is the ``implausible_accept_after``-th
        bar in a row (distinct open times) near one new level: then the level is believed (a
        real repricing) and the bar accepted, with a WARNING line. The first bar of a run has no
        reference and is only held to the absolute ceilings."""
        symbol = bar.symbol
        reference = self.last_close.get(symbol)
        if reference is None:
            return True
        factor = self.config.plausible_factor
        if reference / factor <= bar.low and bar.high <= reference * factor:
            self._new_level.pop(symbol, None)
            return True
        level, seen, last_open = self._new_level.get(symbol, (bar.close, 0, -1))
        if not (level / factor <= bar.low and bar.high <= level * factor):
            level, seen, last_open = bar.close, 0, -1
        if bar.open_time_ms > last_open:
            seen += 1
            last_open = bar.open_time_ms
        if seen >= self.config.implausible_accept_after:
            self._new_level.pop(symbol, None)
            log.warning(
                "feed: %s accepted at a new price level (close %g; previous close %g): "
                "%d bars in a row agree",
                bar.describe(),
                bar.close,
                reference,
                seen,
            )
            return True
        self._new_level[symbol] = (level, seen, last_open)
        self._reject(
            "implausible",
            f"{bar.describe()}: range {bar.low:g}..{bar.high:g} outside the previous close "
            f"{reference:g} / * {factor:g}",
        )
        return False

    async def _backfill(
        self, klines: KlinesClient, symbol: str, up_to_ms: int | None
    ) -> AsyncIterator[list[Bar]]:
        """Closed bars after the last delivered one (up to ``up_to_ms`` inclusive), page by page
        in order, ``last_open_ms`` moved after each page. Leaves ``_backfill_complete`` False
        when it stopped at ``max_backfill_pages`` before reaching ``up_to_ms``."""
        self._backfill_complete = True
        last = self.last_open_ms[symbol]
        if last is None:
            return  # nothing delivered yet: live bars start the series
        config, step = self.config, self.step_ms
        limit = klines.page_limit
        pages = misses = fetched = 0
        while not self._stopping():
            start = last + step
            if up_to_ms is not None and start > up_to_ms:
                break
            if pages >= config.max_backfill_pages:
                self._backfill_complete = up_to_ms is None
                log.warning(
                    "feed: backfill of %s paused after %d pages at %s; it goes on at the next bar",
                    symbol,
                    pages,
                    format_time_ms(last),
                )
                break
            page = await klines.page(symbol, start, up_to_ms, limit)
            pages += 1
            accepted: list[Bar] = []
            previous = last
            for bar in page.bars:
                if not self._plausible(bar):
                    continue
                if bar.open_time_ms > previous + step:
                    self._record_gap(symbol, previous + step, bar.open_time_ms - step)
                accepted.append(bar)
                previous = bar.open_time_ms
                self.last_close[symbol] = bar.close
            if accepted:
                last = self.last_open_ms[symbol] = previous
                self.counters.count(symbol, "backfill", len(accepted))
                fetched += len(accepted)
                misses = 0
                yield accepted
                await asyncio.sleep(0)  # HTTP, signals and the watchdog run between pages
                if page.rows >= limit:
                    continue  # a full page: there may be more
            if up_to_ms is None or last >= up_to_ms:
                break  # caught up with the exchange
            # An empty or stale answer while the hole is still open: ask again, then record it.
            if misses >= config.gap_retries:
                self._record_gap(symbol, last + step, up_to_ms)
                break
            await self._sleep(config.gap_retry_seconds * 2**misses)
            misses += 1
        if fetched:
            log.info("feed: backfilled %d %s bar(s) over REST", fetched, symbol)

    def _reject(self, reason: str, text: str) -> None:
        count_rejected(self.counters.rejected, reason)
        self.warnings.warning(reason, "feed: bar rejected (%s): %s", reason, clip(text))

    def _record_gap(self, symbol: str, from_ms: int, to_ms: int) -> None:
        counters = self.counters
        counters.gaps_recorded += 1
        counters.recent_gaps = [
            *counters.recent_gaps[-(RECENT_GAPS - 1) :],
            (symbol, from_ms, to_ms),
        ]
        self.warnings.warning(
            "gap",
            "feed: %s has no bars from %s to %s on the exchange (%d missing); recorded as a gap",
            symbol,
            format_time_ms(from_ms),
            format_time_ms(to_ms),
            (to_ms - from_ms) // self.step_ms + 1,
        )

    def _note_error(self, text: str) -> None:
        text = clip(text)
        log.warning("feed: %s", text)
        self.counters.errors = [*self.counters.errors[-9:], text]
