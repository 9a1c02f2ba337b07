"""The one asyncio seam between a data source and the kernel, identical for every feed.

A feed is an async iterator of *batches* of bars: the live feed yields a batch per closed candle
(or REST page), the replay feed a batch per memory chunk (tens of thousands of bars), so a
consumer awaits once per batch, never once per bar. :func:`pump` is the only code that moves
bars from a feed into the kernel: onto a bus, or into a sink such as the daemon's per-bar path
(which pushes each bar into its session and commits what it caused).

:class:`LiveFeed` is what the daemon needs of a feed beyond its bars (warm-up over REST, the
counters it exports, stopping); the Binance feed is one, a scripted feed in a test another.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from barbus.daemon.core.bus import EventBus
from barbus.daemon.core.events import Bar

if TYPE_CHECKING:
    from barbus.daemon.feeds.binance_config import FeedCounters

__all__ = ["Feed", "LiveFeed", "dropped", "pump"]


class Feed(Protocol):
    """Anything that produces bars in strictly rising time order per stream."""

    def batches(self) -> AsyncIterator[Sequence[Bar]]:
        """Yield batches of bars; the iterator ends when the feed is exhausted or stopped."""
        ...


class LiveFeed(Feed, Protocol):
    """A feed the daemon streams from: its bars, REST warm-up, counters and a stop."""

    counters: FeedCounters
    last_open_ms: dict[str, int | None]  # the last bar delivered per symbol
    last_close: dict[str, float]  # the close it judges the next bar's plausibility by
    received_monotonic: dict[str, float]  # when the last live candle of a symbol arrived

    async def fetch_recent(self, symbol: str, count: int) -> list[Bar]:
        """The last ``count`` closed 1-minute bars of ``symbol``."""
        ...

    async def stop(self) -> None:
        """End :meth:`batches` and close what the feed holds open."""
        ...


def dropped(counters: FeedCounters) -> int:
    """Bars of subscribed streams that arrived but were not delivered (counted by the feed)."""
    return counters.duplicates + counters.out_of_order + sum(counters.rejected.values())


async def pump(
    feed: Feed,
    sink: EventBus | Callable[[Bar], object],
    on_batch: Callable[[Sequence[Bar]], object] | None = None,
) -> int:
    """Hand every bar of ``feed`` to ``sink`` (a bus's publish, or a callable) in order, after
    ``on_batch`` has seen its batch; return how many bars were handed over."""
    push = sink.publish if isinstance(sink, EventBus) else sink
    count = 0
    async for batch in feed.batches():
        if on_batch is not None:
            on_batch(batch)
        for bar in batch:
            push(bar)
        count += len(batch)
    return count
