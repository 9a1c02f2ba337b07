"""The bars before the first live one: a warm-up per fresh symbol (the data folder, then REST),
and after a restart the report of what the feed's REST backfill brought.

A symbol with no recorded history is warmed up on recent bars fed with trading disabled, as
many as its strategies need (their ``warmup_bars`` of their own timeframe): the newest the data
folder holds (``barbus data download``), and over REST the rest up to the exchange's last
closed bar (all of them when the folder has none, or none recent enough), retried with backoff
while the exchange is unreachable. A symbol with history is backfilled by the feed
itself; the first WebSocket bar after a restart logs one line with what that backfill brought.
Apart from the service because it is about which bars come first, not about the lifecycle.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from barbus.daemon.books import Books
from barbus.daemon.core.data_folder import DataFolder, default_data_dir
from barbus.daemon.core.errors import DataError
from barbus.daemon.core.events import Bar, format_time_ms, interval_ms
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
    warmed: list[tuple[str, int, int, int]] = []
    for symbol in config.feed.symbols:
        if symbol in books.live_from:
            continue  # history already recorded: the feed backfills from there
        bars, stored = await _fetch(books, feed, symbol, stop)
        step = interval_ms(config.feed.interval)
        live_from = max(b.open_time_ms for b in bars) + step if bars else 0
        books.live_from[symbol] = live_from
        for book in books.by_name.values():
            if book.config.symbol == symbol:
                book.engine.trade_from_ms = live_from
        for bar in bars:
            books.process(bar, "warmup")
        if bars:  # the last bar accepted, whatever order the exchange sent them in
            feed.last_open_ms[symbol] = books.guards[symbol].last_open_time_ms
        warmed.append((symbol, len(bars), stored, live_from))
    # Said once every symbol is in: a minute barrier releases a symbol's bars only then.
    for symbol, count, stored, live_from in warmed:
        cold = [
            b.config.name
            for b in books.by_name.values()
            if b.config.symbol == symbol and not b.engine.strategy.ready
        ]
        log.log(
            logging.WARNING if cold else logging.INFO,
            "%s: warmed up on %d bars (%d wanted; %d from the data folder, %d over REST), "
            "trading from %s; %s",
            symbol,
            count,
            _wanted_bars(books, symbol),
            stored,
            count - stored,
            format_time_ms(live_from) if live_from else "the first live bar",
            f"indicators not ready yet: {', '.join(cold)} (the exchange had too few bars)"
            if cold
            else "indicators ready",
        )


def _wanted_bars(books: Books, symbol: str) -> int:
    """Feed bars (of ``[feed] interval``) to warm ``symbol``'s strategies up on: ``[feed]
    warmup_bars`` (0: no warm-up), or more where a strategy needs ``warmup_bars`` bars of its
    timeframe before its first decision, plus the partial bucket the first bar may fall in."""
    floor = books.config.warmup_bars
    if not floor:
        return 0
    needs = [floor]
    feed_ms = interval_ms(books.config.feed.interval)
    for book in books.by_name.values():
        if book.config.symbol == symbol:
            strategy = book.engine.strategy
            per_bar = interval_ms(strategy.params.timeframe) // feed_ms
            needs.append(strategy.warmup_bars * per_bar + per_bar - 1)
    return max(needs)


async def _fetch(
    books: Books, feed: LiveFeed, symbol: str, stop: asyncio.Event
) -> tuple[list[Bar], int]:
    """Warm-up bars and how many came from the data folder; REST retried with backoff while
    the exchange is unreachable."""
    count = _wanted_bars(books, symbol)
    if not count:
        return [], 0
    stored = _stored(books, symbol, count)
    settings = books.config.feed
    delay = settings.reconnect_initial_seconds
    while True:
        try:
            return await _recent(feed, symbol, count, stored)
        except FeedTemporaryError as exc:
            log.warning("warm-up of %s failed (%s); retrying in %.1f s", symbol, exc, delay)
        try:
            await asyncio.wait_for(stop.wait(), timeout=delay)
        except TimeoutError:
            delay = min(delay * 2, settings.reconnect_max_seconds)
            continue
        raise StoppedError


def _stored(books: Books, symbol: str, count: int) -> list[Bar]:
    """The newest ``count`` bars of ``symbol`` in the data folder (none: none there, or a
    folder that cannot be read, said in one line: REST brings them all)."""
    folder = DataFolder(books.config.data_dir or default_data_dir())
    try:
        return folder.tail_bars(symbol, books.config.feed.interval, count)
    except (OSError, DataError) as exc:
        log.warning("warm-up of %s: the data folder %s is not used (%s)", symbol, folder.root, exc)
        return []


async def _recent(
    feed: LiveFeed, symbol: str, count: int, stored: list[Bar]
) -> tuple[list[Bar], int]:
    """The last ``count`` closed bars, and how many of them are ``stored``'s: the folder's up
    to its newest bar, the exchange's after it.

    One request for the exchange's newest closed bar tells how many the folder lacks; when it
    lacks ``count`` or more (it is too old), every bar comes over REST.
    """
    if not stored:
        return await feed.fetch_recent(symbol, count), 0
    newest = await feed.fetch_recent(symbol, 1)
    step = interval_ms(stored[-1].interval)
    missing = (newest[-1].open_time_ms - stored[-1].open_time_ms) // step if newest else 0
    if missing >= count:
        return await feed.fetch_recent(symbol, count), 0
    if missing <= 1:
        fetched = newest if missing == 1 else []
    else:
        fetched = await feed.fetch_recent(symbol, missing)
    # Only bars before the exchange's: the folder may hold bars the exchange has not (a sim).
    before = fetched[0].open_time_ms if fetched else newest[-1].open_time_ms + 1 if newest else None
    if before is not None:
        stored = [bar for bar in stored if bar.open_time_ms < before]
    kept = stored[max(len(stored) - (count - len(fetched)), 0) :]
    return kept + fetched, len(kept)


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
