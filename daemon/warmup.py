"""The bars before the first live one: a REST warm-up per fresh symbol, and after a restart the
report of what the feed's REST backfill brought.

A symbol with no recorded history is warmed up on recent REST bars fed with trading disabled,
as many as its strategies need (their ``warmup_bars`` of their own timeframe), retried with
backoff while the exchange is unreachable. A symbol with history is backfilled by the feed
itself; the first WebSocket bar after a restart logs one line with what that backfill brought.
Apart from the service because it is about which bars come first, not about the lifecycle.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from barbus.daemon.books import Books
from barbus.daemon.core.events import MINUTE_MS, Bar, format_time_ms, interval_ms
from barbus.daemon.feed import LiveFeed
from barbus.daemon.feeds.binance_rest import FeedTemporaryError
from barbus.daemon.log import kv

__all__ = ["ResumeBackfill", "StoppedError", "last_open_times", "seed_plausibility", "warm_up"]

log = logging.getLogger("barbus.daemon")


class StoppedError(Exception):
    """A stop was requested while the daemon was still warming up."""


def last_open_times(books: Books) -> dict[str, int | None]:
    """Per configured symbol, the last recorded bar (None: none): where the feed resumes."""
    return {
        s: (g.last_open_time_ms if (g := books.guards.get(s)) else None)
        for s in books.config.feed.symbols
    }


def seed_plausibility(books: Books, feed: LiveFeed) -> None:
    """The feed judges a bar against the previous close: after a restart, the recorded one."""
    for book in books.by_name.values():
        last = book.engine.last_bar
        if last is not None and feed.last_open_ms.get(last.symbol) == last.open_time_ms:
            feed.last_close[last.symbol] = last.close


async def warm_up(books: Books, feed: LiveFeed, stop: asyncio.Event) -> None:
    """Feed every symbol without history its warm-up bars; :class:`StoppedError` on a stop."""
    config = books.config
    warmed: list[tuple[str, int, int]] = []
    for symbol in config.feed.symbols:
        if symbol in books.live_from:
            continue  # history already recorded: the feed backfills from there
        bars = await _fetch(books, feed, symbol, stop)
        live_from = max(b.open_time_ms for b in bars) + MINUTE_MS if bars else 0
        books.live_from[symbol] = live_from
        for book in books.by_name.values():
            if book.config.symbol == symbol:
                book.engine.trade_from_ms = live_from
        for bar in bars:
            books.process(bar, "warmup")
        if bars:  # the last bar accepted, whatever order the exchange sent them in
            feed.last_open_ms[symbol] = books.guards[symbol].last_open_time_ms
        warmed.append((symbol, len(bars), live_from))
    # Said once every symbol is in: a minute barrier releases a symbol's bars only then.
    for symbol, count, live_from in warmed:
        cold = [
            b.config.name
            for b in books.by_name.values()
            if b.config.symbol == symbol and not b.engine.strategy.ready
        ]
        log.log(
            logging.WARNING if cold else logging.INFO,
            "%s: warmed up on %d bars (%d wanted), trading from %s; %s",
            symbol,
            count,
            _minutes(books, symbol),
            format_time_ms(live_from) if live_from else "the first live bar",
            f"indicators not ready yet: {', '.join(cold)} (the exchange had too few bars)"
            if cold
            else "indicators ready",
        )


def _minutes(books: Books, symbol: str) -> int:
    """1-minute bars to warm ``symbol``'s strategies up on: ``[feed] warmup_bars`` (0: no
    warm-up), or more where a strategy needs ``warmup_bars`` bars of its timeframe before
    its first decision, plus the partial bucket the first minute may fall in."""
    floor = books.config.warmup_bars
    if not floor:
        return 0
    needs = [floor]
    for book in books.by_name.values():
        if book.config.symbol == symbol:
            strategy = book.engine.strategy
            minutes = interval_ms(strategy.params.timeframe) // MINUTE_MS
            needs.append(strategy.warmup_bars * minutes + minutes - 1)
    return max(needs)


async def _fetch(books: Books, feed: LiveFeed, symbol: str, stop: asyncio.Event) -> list[Bar]:
    """Warm-up bars over REST, retried with backoff while the exchange is unreachable."""
    count = _minutes(books, symbol)
    if not count:
        return []
    settings = books.config.feed
    delay = settings.reconnect_initial_seconds
    while True:
        try:
            return await feed.fetch_recent(symbol, count)
        except FeedTemporaryError as exc:
            log.warning("warm-up of %s failed (%s); retrying in %.1f s", symbol, exc, delay)
        try:
            await asyncio.wait_for(stop.wait(), timeout=delay)
        except TimeoutError:
            delay = min(delay * 2, settings.reconnect_max_seconds)
            continue
        raise StoppedError


class ResumeBackfill:
    """Counts the REST pages that follow a restart; the first WebSocket bar of a symbol ends
    them and logs one line with what they brought."""

    def __init__(self, pending: dict[str, list[int]]) -> None:
        # Per symbol: [last bar before the restart, bars backfilled, first, last].
        self.pending = pending
        self._seen: dict[str, int] = {}  # the feed's backfill counter at the last batch

    def note(self, feed: LiveFeed, batch: Sequence[Bar]) -> None:
        if not self.pending or not batch:
            return
        symbol = batch[0].symbol
        report = self.pending.get(symbol)
        if report is None:
            return
        backfilled = feed.counters.received.get((symbol, "backfill"), 0)
        seen, self._seen[symbol] = self._seen.get(symbol, 0), backfilled
        if backfilled - seen >= len(batch):  # a REST page (counted by the feed as it came)
            report[1] += len(batch)
            if not report[2]:
                report[2] = batch[0].open_time_ms
            report[3] = batch[-1].open_time_ms
            return
        del self.pending[symbol]
        resumed_after, bars, first, last = report
        fields: dict[str, object] = {"symbol": symbol, "bars": bars}
        if bars:
            fields.update(**{"from": format_time_ms(first), "to": format_time_ms(last)})
        fields["resumed_after"] = format_time_ms(resumed_after)
        fields["first_live_bar"] = format_time_ms(batch[0].open_time_ms)
        log.info("backfilled after restart %s", kv(fields))
