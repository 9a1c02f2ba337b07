"""The cache's counters: one process's, and the totals of every process in ``stats.sqlite``.

SQLite rather than a JSON file rewritten under a lock: each flush is one transaction of
``value = value + ?`` updates, so concurrent batch workers cannot lose each other's counts (no
read-modify-write in Python, SQLite's own locking with a busy timeout, no separate lock file),
and a process killed mid-flush leaves the totals as they were (journal). Its own module because
counting is bookkeeping about the cache, not the cache's job of serving series.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["CacheStats", "add_counts", "read_counts", "unflushed"]

log = logging.getLogger("barbus.cache")


@dataclass
class CacheStats:
    """Counters of one process (or, from ``stats.sqlite``, of all processes so far).

    ``hits`` (memory + disk) and ``misses`` (builds + rebuilds: the source had to be parsed)
    are derived, so a warm open from disk is never counted as a miss.
    """

    memory_hits: int = 0  # served from this process's LRU
    disk_hits: int = 0  # an existing entry mapped from disk
    builds: int = 0  # a new entry parsed from its source
    rebuilds: int = 0  # a stale or corrupt entry parsed again
    evictions: int = 0
    bytes_mapped: int = 0
    peak_bytes_mapped: int = 0

    @property
    def hits(self) -> int:
        return self.memory_hits + self.disk_hits

    @property
    def misses(self) -> int:
        return self.builds + self.rebuilds

    def as_dict(self) -> dict[str, int]:
        return {**asdict(self), "hits": self.hits, "misses": self.misses}


_ADDED = ("memory_hits", "disk_hits", "builds", "rebuilds", "evictions")  # summed over processes
_STATS_FILE = "stats.sqlite"


def unflushed(current: CacheStats, flushed: CacheStats) -> list[tuple[str, int]]:
    """(name, count) of each summed counter since the last flush."""
    mine, before = asdict(current), asdict(flushed)
    return [(name, mine[name] - before[name]) for name in _ADDED]


def add_counts(root: Path, deltas: list[tuple[str, int]], peak_bytes_mapped: int) -> None:
    """Add ``deltas`` to the totals and raise their peak, in one transaction (an OSError or
    :class:`sqlite3.Error` when the folder cannot be written)."""
    root.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(_connect(root)) as db, db:
        db.execute("CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER)")
        db.executemany(
            "INSERT INTO counters VALUES (?, ?) ON CONFLICT(name) "
            "DO UPDATE SET value = value + excluded.value",
            deltas,
        )
        db.execute(
            "INSERT INTO counters VALUES ('peak_bytes_mapped', ?) ON CONFLICT(name) "
            "DO UPDATE SET value = max(value, excluded.value)",
            (peak_bytes_mapped,),
        )


def read_counts(root: Path) -> CacheStats:
    """The counters accumulated in ``stats.sqlite`` by every process (zero if none yet)."""
    path = root / _STATS_FILE
    if not path.is_file():
        return CacheStats()
    try:
        with contextlib.closing(_connect(root, read_only=True)) as db:
            rows = dict(db.execute("SELECT name, value FROM counters").fetchall())
    except sqlite3.Error as exc:
        log.warning("%s: unreadable cache counters (%s)", path, exc)
        return CacheStats()
    known = {name: int(rows[name]) for name in (*_ADDED, "peak_bytes_mapped") if name in rows}
    return CacheStats(**known)


def _connect(root: Path, *, read_only: bool = False) -> sqlite3.Connection:
    path = root / _STATS_FILE
    if read_only:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0)
    else:
        db = sqlite3.connect(path, timeout=30.0)  # waits out other writers' transactions
        # A killed process cannot corrupt the file either way (the journal is still
        # written); OFF only skips the fsyncs a counter does not need.
        db.execute("PRAGMA synchronous = OFF")
    return db
