"""The series one process has mapped, least recently used first, within a byte budget.

A hit costs a dictionary lookup and a ``stat`` of the source (a changed source is dropped, so
it is mapped again from a rebuilt entry). Its own module because keeping mapped series in
memory is a different job from finding or building them on disk (:mod:`replay.cache`); it
keeps the memory counters of the :class:`~replay.cache_stats.CacheStats` it is given.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from barbus.daemon.core.series import BarSeries
from barbus.replay.cache_entry import CacheEntry
from barbus.replay.cache_stats import CacheStats

__all__ = ["MappedSeries"]


class MappedSeries:
    """An LRU of (series, entry) by cache key that counts hits, evictions and bytes mapped."""

    def __init__(self, stats: CacheStats) -> None:
        self.stats = stats
        self._lru: OrderedDict[str, tuple[BarSeries, CacheEntry]] = OrderedDict()

    def get(self, key: str, source: Path) -> BarSeries | None:
        """The series of ``key`` if it is held and its source is unchanged (a memory hit)."""
        cached = self._lru.get(key)
        if cached is not None and _source_unchanged(source, cached[1]):
            self._lru.move_to_end(key)
            self.stats.memory_hits += 1
            return cached[0]
        if cached is not None:
            self.forget(key)
        return None

    def put(self, key: str, series: BarSeries, entry: CacheEntry, budget_bytes: int) -> None:
        """Hold ``series``, evicting the least recently used beyond ``budget_bytes`` (the
        newest is always kept)."""
        self._lru[key] = (series, entry)
        self.stats.bytes_mapped += entry.nbytes
        self.stats.peak_bytes_mapped = max(self.stats.peak_bytes_mapped, self.stats.bytes_mapped)
        while self.stats.bytes_mapped > budget_bytes and len(self._lru) > 1:
            oldest = next(iter(self._lru))
            self.forget(oldest)
            self.stats.evictions += 1

    def forget(self, key: str) -> None:
        dropped = self._lru.pop(key, None)
        if dropped is not None:
            self.stats.bytes_mapped -= dropped[1].nbytes

    def clear(self) -> None:
        self._lru.clear()
        self.stats.bytes_mapped = 0


def _source_unchanged(source: Path, entry: CacheEntry) -> bool:
    try:
        stat = source.stat()
    except OSError:
        return True  # the source is gone: what is mapped is still the last good copy
    return stat.st_size == entry.source.size and stat.st_mtime_ns == entry.source.mtime_ns
