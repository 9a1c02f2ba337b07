"""The one asyncio seam between a data source and the kernel, identical for every feed.

A feed is an async iterator of *batches* of bars: the live feed yields a batch per closed candle
(or REST page), the replay feed a batch per memory chunk (tens of thousands of bars), so a
consumer awaits once per batch, never once per bar. :func:`pump` is the only code that moves
bars from a feed into the kernel: onto a bus, or into a sink such as the daemon's per-bar path
(which pushes each bar into its session and commits what it caused).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Protocol

from barbus.daemon.core.bus import EventBus
from barbus.daemon.core.events import Bar

__all__ = ["Feed", "pump"]


class Feed(Protocol):
    """Anything that produces bars in strictly rising time order per stream."""

    def batches(self) -> AsyncIterator[Sequence[Bar]]:
        """Yield batches of bars; the iterator ends when the feed is exhausted or stopped."""
        ...


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
