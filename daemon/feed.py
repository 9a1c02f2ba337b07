"""The one asyncio seam between a data source and the bus, identical for every feed.

A feed is an async iterator of *batches* of bars: the live feed yields a batch per closed candle,
the replay feed a batch per memory chunk (tens of thousands of bars), so replay awaits once per
chunk, never once per bar. :func:`pump` is the only code that moves bars from a feed to the bus.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from barbus.daemon.core.bus import EventBus
from barbus.daemon.core.events import Bar

__all__ = ["Feed", "pump"]


class Feed(Protocol):
    """Anything that produces bars in strictly rising time order per stream."""

    def batches(self) -> AsyncIterator[Sequence[Bar]]:
        """Yield batches of bars; the iterator ends when the feed is exhausted or stopped."""
        ...


async def pump(feed: Feed, bus: EventBus) -> int:
    """Publish every bar of ``feed`` on ``bus`` in order; return how many bars were published."""
    publish = bus.publish
    count = 0
    async for batch in feed.batches():
        for bar in batch:
            publish(bar)
        count += len(batch)
    return count
