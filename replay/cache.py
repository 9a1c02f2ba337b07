"""The on-disk columnar bar cache: parse a file once, memory-map it ever after.

Entries (one folder of ``.npy`` columns and a ``meta.json`` per source and symbol) are
described in :mod:`replay.cache_entry` and written by :mod:`replay.cache_write`; this module
decides when to map, build or rebuild one, and keeps the mapped series.

Every open re-checks the source's size and mtime (and, if they moved, its sha256) so a changed
source is rebuilt, never served stale; it checks each column's length and, unless told not to,
its checksum (xxh3: ~10 GB/s), so a corrupt entry is reported and rebuilt from the source.
Builds happen under a file lock, so concurrent workers never build the same entry twice; a
source larger than ``chunk_bytes`` is ingested block by block. Only regular files are read: a
FIFO or a device is refused before it is opened.

On top sits an in-process LRU of mapped series with a byte budget and counters that tell a
memory hit (the LRU), a disk hit (an entry mapped from disk) and a build (the source parsed)
apart. :meth:`BarCache.flush_stats` adds them to ``<root>/stats.sqlite``
(:mod:`replay.cache_stats`), which ``barbus cache stats`` reads.

A cache folder that cannot be written (a path under a regular file, a read-only mount, no
space) does not stop a run: existing entries are still mapped, anything else is parsed straight
from the source, with one WARNING per process. A data file's gaps are reported once per
process when the file is first loaded; batch workers are told not to (``announce=False``),
because the parent already did for every dataset before dispatching.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

from barbus.daemon.core.errors import DataError
from barbus.daemon.core.series import BarSeries, GapReport, symbol_from_name
from barbus.replay.cache_entry import (
    CacheEntry,
    entry_key,
    map_entry,
    memory_entry,
    open_entry,
)
from barbus.replay.cache_lru import MappedSeries
from barbus.replay.cache_stats import CacheStats, add_counts, read_counts, unflushed
from barbus.replay.cache_write import tmp_dir, write_from_source
from barbus.replay.files import refuse_special

__all__ = ["BarCache", "default_cache_dir"]

log = logging.getLogger("barbus.cache")
data_log = logging.getLogger("barbus.replay")  # what is in the data, not about the cache

DEFAULT_BUDGET_BYTES = 2 * 1024**3
DEFAULT_CHUNK_BYTES = 8 * 1024**2  # CSV files larger than this are ingested block by block
# A problem in a chunked file up to this size is located by a one-shot text parse (the exact
# file line); beyond it the error names the data row, as parsing it whole would not fit.
EXACT_ERRORS_MAX_BYTES = 256 * 1024**2


def default_cache_dir() -> Path:
    """``$BARBUS_CACHE_DIR``, else ``$XDG_CACHE_HOME/barbus``, else ``~/.cache/barbus``."""
    explicit = os.environ.get("BARBUS_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "barbus"


def _symbol_of(source: Path) -> str:
    """The symbol from the file name; a missing file is reported as missing, not as a name."""
    try:
        return symbol_from_name(source)
    except DataError:
        if not source.exists():
            raise DataError(f"{source}: no such data file") from None
        raise


class BarCache:
    """Load bar files through the on-disk cache and an in-process LRU of mapped series."""

    def __init__(
        self,
        root: Path | None = None,
        budget_bytes: int = DEFAULT_BUDGET_BYTES,
        *,
        verify_checksums: bool = True,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        announce: bool = True,
    ) -> None:
        """``announce=False`` keeps data-level warnings (gaps, an unusable cache folder) quiet:
        for batch workers, whose parent has already reported them once for every dataset."""
        self.root = Path(root) if root is not None else default_cache_dir()
        self.budget_bytes = budget_bytes
        self.verify_checksums = verify_checksums
        self.chunk_bytes = chunk_bytes
        self.announce = announce
        self.chunked_ingests = 0  # builds of this instance that went block by block
        self.stats = CacheStats()
        self._flushed = CacheStats()
        self._lru = MappedSeries(self.stats)
        self._announced: set[str] = set()  # keys whose gaps were reported
        self.unwritable: str | None = None  # why the folder cannot be written, once seen

    # -- public API -----------------------------------------------------------------------

    def load(self, source: Path, symbol: str | None = None) -> BarSeries:
        """The series of ``source``: from the LRU, else mapped from disk, else ingested."""
        source = Path(source)
        refuse_special(source)
        symbol = symbol or _symbol_of(source)
        key = entry_key(source, symbol)
        held = self._lru.get(key, source)
        if held is not None:
            return held
        series, entry = self._open_or_build(source, symbol, key)
        self._lru.put(key, series, entry, self.budget_bytes)
        if self.announce and entry.gaps.get("count") and key not in self._announced:
            self._announced.add(key)
            gaps = GapReport(**entry.gaps).describe()
            data_log.warning("%s: %s (replayed as is, no bars invented)", entry.source.path, gaps)
        return series

    def ingest(self, source: Path, symbol: str | None = None, *, force: bool = False) -> CacheEntry:
        """Make sure ``source`` is cached (rebuilt if ``force``); return its entry."""
        source = Path(source)
        refuse_special(source)
        symbol = symbol or _symbol_of(source)
        key = entry_key(source, symbol)
        self._lru.forget(key)
        try:
            if force:
                return self._build(source, symbol, key, reason="forced", force=True)[1]
            return self._open_or_build(source, symbol, key, fallback=False)[1]
        except OSError as exc:
            if not self._inside_root(exc):
                raise
            raise DataError(
                f"cache folder {self.root} cannot be written ({_describe(exc)})"
            ) from None

    def entries(self) -> list[CacheEntry]:
        """Every readable entry on disk, by symbol then first open time."""
        found = []
        if self.root.is_dir():
            for meta in self.root.glob("*/meta.json"):
                try:
                    found.append(CacheEntry.from_json(meta.read_text(encoding="utf-8")))
                except (OSError, ValueError, TypeError, KeyError) as exc:
                    log.warning("%s: unreadable cache metadata (%s)", meta, exc)
        return sorted(found, key=lambda e: (e.symbol, e.first_open_time_ms, e.key))

    def clear(self) -> int:
        """Delete every entry and the shared counters; return how many entries were removed."""
        self._lru.clear()
        if not self.root.is_dir():
            return 0
        removed = 0
        for child in self.root.iterdir():
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
                if not child.name.startswith("."):
                    removed += 1
            else:
                child.unlink(missing_ok=True)
        return removed

    def flush_stats(self) -> CacheStats:
        """Add this process's counters since the last flush to ``stats.sqlite``; return totals.

        Never fails a run: a folder that cannot be written was reported once already (or is
        reported here, once), and the counts are then simply not recorded.
        """
        deltas = unflushed(self.stats, self._flushed)
        if not any(delta for _, delta in deltas) and self.stats.peak_bytes_mapped == 0:
            return self.shared_stats()  # nothing to add: no folder or file created for zeros
        if self.unwritable is not None:
            return self.shared_stats()
        mine = asdict(self.stats)
        try:
            add_counts(self.root, deltas, mine["peak_bytes_mapped"])
        except (OSError, sqlite3.Error) as exc:
            self._cannot_write(exc, "cache counters are not recorded")
            return self.shared_stats()
        self._flushed = CacheStats(**mine)
        return self.shared_stats()

    def shared_stats(self) -> CacheStats:
        """The counters accumulated in ``stats.sqlite`` by every process (zero if none yet)."""
        return read_counts(self.root)

    def _cannot_write(self, exc: BaseException, consequence: str) -> None:
        """Remember (and, once per process, say) that the folder cannot be written."""
        if self.unwritable is not None:
            return
        self.unwritable = _describe(exc)
        if self.announce:
            log.warning(
                "cache folder %s cannot be written (%s); %s",
                self.root,
                self.unwritable,
                consequence,
            )

    # -- internals ------------------------------------------------------------------------

    def _open_or_build(
        self, source: Path, symbol: str, key: str, *, fallback: bool = True
    ) -> tuple[BarSeries, CacheEntry]:
        """The entry mapped from disk, else built; else (``fallback``, the folder cannot be
        written) the source parsed into memory."""
        found = open_entry(self.root / key, source, verify_checksums=self.verify_checksums)
        if isinstance(found, tuple):
            self.stats.disk_hits += 1
            return found
        if self.unwritable is None or not fallback:
            try:
                return self._build(source, symbol, key, reason=found)
            except OSError as exc:
                if not fallback or not self._inside_root(exc):
                    raise
                self._cannot_write(exc, "running without the cache (data parsed from the source)")
                shutil.rmtree(tmp_dir(self.root, key), ignore_errors=True)
        return self._uncached(source, symbol, key)

    def _inside_root(self, exc: OSError) -> bool:
        """Whether ``exc`` is about the cache folder (not, say, the source file)."""
        if exc.filename is None:
            return True
        root = os.path.abspath(self.root)
        name = os.path.abspath(os.fsdecode(exc.filename))
        return name == root or name.startswith(root + os.sep) or root.startswith(name + os.sep)

    def _uncached(self, source: Path, symbol: str, key: str) -> tuple[BarSeries, CacheEntry]:
        """``source`` parsed straight into memory, with an entry that lives in the LRU only."""
        from barbus.replay.loader import load_bars

        if not source.exists():
            raise DataError(f"{source}: no such data file")
        series = load_bars(source, symbol)
        entry = memory_entry(series, source, key)
        return series, entry

    def _build(
        self, source: Path, symbol: str, key: str, reason: str | None, *, force: bool = False
    ) -> tuple[BarSeries, CacheEntry]:
        if not source.exists():
            problem = f" ({reason})" if reason else ""
            raise DataError(
                f"{source}: no such data file, and no usable cache entry for it{problem}"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        with self._locked(key):
            directory = self.root / key
            if not force:
                # Another process may have (re)built it while we waited for the lock.
                found = open_entry(self.root / key, source, verify_checksums=self.verify_checksums)
                if isinstance(found, tuple):
                    self.stats.disk_hits += 1
                    return found
            if reason:
                log.warning("%s: rebuilding cache entry %s: %s", source, key, reason)
            started = time.perf_counter()
            entry, chunked = write_from_source(
                self.root, source, symbol, key, self.chunk_bytes, EXACT_ERRORS_MAX_BYTES
            )
            self.chunked_ingests += chunked
            if reason:
                self.stats.rebuilds += 1
            else:
                self.stats.builds += 1
            log.info(
                "%s: cached %s rows of %s in %.2f s (%s)",
                source,
                f"{entry.rows:,}",
                symbol,
                time.perf_counter() - started,
                GapReport(**entry.gaps).describe(),
            )
            return map_entry(directory, entry, verify_checksums=self.verify_checksums), entry

    @contextlib.contextmanager
    def _locked(self, name: str) -> Iterator[None]:
        with (self.root / f".{name}.lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {os.fsdecode(exc.filename)}" if exc.filename is not None else ""
        return f"{exc.strerror}{where}"
    return f"{type(exc).__name__}: {exc}"
