"""The cache as the terminal shows it: one line per entry, and the disk use and counters.

What ``barbus cache ingest``, ``ls`` and ``stats`` print. Its own module because formatting
for a terminal is the CLI's concern, not the cache's: the cache hands over entries and counters.
"""

from __future__ import annotations

from barbus.daemon.core.events import format_time_ms
from barbus.replay.cache import BarCache
from barbus.replay.cache_entry import CacheEntry

__all__ = ["format_entries", "format_stats"]


def format_entries(entries: list[CacheEntry]) -> str:
    """One line per entry: key, rows, period, gaps, size and source."""
    lines = []
    for e in entries:
        gaps = e.gaps.get("count", 0)
        lines.append(
            f"{e.key}  {e.rows:>10,} rows  {format_time_ms(e.first_open_time_ms)} -> "
            f"{format_time_ms(e.last_open_time_ms)}  gaps {gaps}  "
            f"{e.nbytes / 1e6:8.1f} MB  {e.source.path}"
        )
    return "\n".join(lines)


def format_stats(cache: BarCache) -> str:
    """Disk usage and the counters summed over every process that flushed them."""
    entries = cache.entries()
    totals = cache.shared_stats()
    return "\n".join(
        [
            f"cache          {cache.root}",
            f"entries        {len(entries)} ({sum(e.rows for e in entries):,} rows, "
            f"{sum(e.nbytes for e in entries) / 1e6:.1f} MB on disk)",
            f"memory hits    {totals.memory_hits}",
            f"disk hits      {totals.disk_hits}",
            f"builds         {totals.builds} "
            f"(+ {totals.rebuilds} rebuilds of stale or corrupt entries)",
            f"evictions      {totals.evictions}",
            f"peak mapped    {totals.peak_bytes_mapped / 1e6:.1f} MB in one process",
        ]
    )
