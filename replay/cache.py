"""The on-disk columnar bar cache: parse a file once, memory-map it ever after.

Layout: ``<root>/<SYMBOL>-<key>/`` holds one ``.npy`` file per column (``open_time_ms`` int64,
``open`` ... ``volume`` float64, little-endian, C order) and ``meta.json`` (format version,
symbol, interval, rows, first/last open time, source path + size + mtime + sha256, an xxh3
checksum and byte length per column, the gap report). ``key`` hashes the resolved source path
and symbol. ``.npy`` rather than Arrow IPC: ``numpy.load(mmap_mode="r")`` maps a column with no
third-party code on the read path, one file per column lets a job map only what it reads, and
the header is a fixed 128 bytes that says dtype and shape, so a truncated file is caught by a
length check before any page is touched.

Every open re-checks the source's size and mtime (and, if they moved, its sha256) so a changed
source is rebuilt, never served stale; it checks each column's length and, unless told not to,
its checksum (xxh3: ~10 GB/s), so a corrupt entry is reported and rebuilt from the source.
Builds happen in a temporary folder renamed into place under a file lock, so concurrent
workers never see half an entry and never build the same entry twice. A CSV larger than
``chunk_bytes`` is parsed block by block and each column appended to its ``.npy`` file as it
goes (the header is rewritten with the row count at the end), so ingest memory is bounded by the
block, not by the file; the bytes are the same as a one-shot build's. Only regular files are
read: a FIFO or a device is refused before it is opened.

On top sits an in-process LRU of mapped series with a byte budget and counters that tell a
memory hit (the LRU), a disk hit (an entry mapped from disk) and a build (the source parsed)
apart. :meth:`BarCache.flush_stats` adds them to ``<root>/stats.sqlite``, which ``barbus cache
stats`` reads. SQLite rather than a JSON file rewritten under a lock: each flush is one
transaction of ``value = value + ?`` updates, so concurrent batch workers cannot lose each
other's counts (no read-modify-write in Python, SQLite's own locking with a busy timeout, no
separate lock file), and a process killed mid-flush leaves the totals as they were (journal).

A cache folder that cannot be written (a path under a regular file, a read-only mount, no
space) does not stop a run: existing entries are still mapped, anything else is parsed straight
from the source, with one WARNING per process. A data file's gaps are reported once per
process when the file is first loaded; batch workers are told not to (``announce=False``),
because the parent already did for every dataset before dispatching.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import logging
import os
import shutil
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

from barbus.daemon.core.errors import DataError
from barbus.daemon.core.events import MINUTE_MS, format_time_ms
from barbus.daemon.core.series import BarSeries, GapReport, symbol_from_name
from barbus.replay.files import regular_file_problem

__all__ = [
    "COLUMNS",
    "FORMAT_VERSION",
    "BarCache",
    "CacheEntry",
    "CacheStats",
    "SourceFingerprint",
    "default_cache_dir",
    "format_entries",
    "format_stats",
    "regular_file_problem",
]

log = logging.getLogger("barbus.cache")
data_log = logging.getLogger("barbus.replay")  # what is in the data, not about the cache

FORMAT_VERSION = 1
COLUMNS = ("open_time_ms", "open", "high", "low", "close", "volume")
_DTYPES = {name: np.dtype("<i8") if name == "open_time_ms" else np.dtype("<f8") for name in COLUMNS}
DEFAULT_BUDGET_BYTES = 2 * 1024**3
DEFAULT_CHUNK_BYTES = 8 * 1024**2  # CSV files larger than this are ingested block by block
# A problem in a chunked file up to this size is located by a one-shot text parse (the exact
# file line); beyond it the error names the data row, as parsing it whole would not fit.
EXACT_ERRORS_MAX_BYTES = 256 * 1024**2


def _refuse_special(path: Path) -> None:
    problem = regular_file_problem(path)
    if problem is not None:
        raise DataError(problem)


def default_cache_dir() -> Path:
    """``$BARBUS_CACHE_DIR``, else ``$XDG_CACHE_HOME/barbus``, else ``~/.cache/barbus``."""
    explicit = os.environ.get("BARBUS_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "barbus"


@dataclass(frozen=True)
class SourceFingerprint:
    """What identifies the source file's content: cheap stat fields plus a content hash."""

    path: str
    size: int
    mtime_ns: int
    sha256: str


@dataclass(frozen=True)
class CacheEntry:
    """One cached series, as described by its ``meta.json``."""

    key: str
    symbol: str
    interval: str
    rows: int
    first_open_time_ms: int
    last_open_time_ms: int
    source: SourceFingerprint
    checksums: dict[str, str]
    column_bytes: dict[str, int]
    gaps: dict[str, Any]
    zero_volume_bars: int
    created_unix: float
    format_version: int = FORMAT_VERSION

    @property
    def nbytes(self) -> int:
        return sum(self.column_bytes.values())

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> CacheEntry:
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise ValueError(f"metadata is a JSON {type(raw).__name__}, not an object")
        if raw.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"format version {raw.get('format_version')!r} != {FORMAT_VERSION}")
        raw["source"] = SourceFingerprint(**raw["source"])
        expected = {f.name for f in fields(cls)}
        if set(raw) != expected:
            raise ValueError(f"fields {sorted(set(raw) ^ expected)} missing or unexpected")
        entry = cls(**raw)
        if set(entry.checksums) != set(COLUMNS) or set(entry.column_bytes) != set(COLUMNS):
            raise ValueError("column list does not match this format version")
        return entry


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


class CorruptCacheError(Exception):
    """A cache entry failed a check; it is rebuilt from its source."""


def _symbol_of(source: Path) -> str:
    """The symbol from the file name; a missing file is reported as missing, not as a name."""
    try:
        return symbol_from_name(source)
    except DataError:
        if not source.exists():
            raise DataError(f"{source}: no such data file") from None
        raise


def _entry_key(source: Path, symbol: str) -> str:
    digest = hashlib.sha256(f"{source.resolve()}\0{symbol}".encode()).hexdigest()
    return f"{symbol}-{digest[:16]}"


def _fingerprint(source: Path, sha256: str | None = None) -> SourceFingerprint:
    stat = source.stat()
    if sha256 is None:
        with source.open("rb") as handle:
            sha256 = hashlib.file_digest(handle, "sha256").hexdigest()
    return SourceFingerprint(str(source.resolve()), stat.st_size, stat.st_mtime_ns, sha256)


def _checksum(array: np.ndarray[Any, Any]) -> str:
    return xxhash.xxh3_64_hexdigest(np.ascontiguousarray(array).data)


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
        self._lru: OrderedDict[str, tuple[BarSeries, CacheEntry]] = OrderedDict()
        self._announced: set[str] = set()  # keys whose gaps were reported
        self.unwritable: str | None = None  # why the folder cannot be written, once seen

    # -- public API -----------------------------------------------------------------------

    def load(self, source: Path, symbol: str | None = None) -> BarSeries:
        """The series of ``source``: from the LRU, else mapped from disk, else ingested."""
        source = Path(source)
        _refuse_special(source)
        symbol = symbol or _symbol_of(source)
        key = _entry_key(source, symbol)
        cached = self._lru.get(key)
        if cached is not None and self._source_unchanged(source, cached[1]):
            self._lru.move_to_end(key)
            self.stats.memory_hits += 1
            return cached[0]
        if cached is not None:
            self._forget(key)
        series, entry = self._open_or_build(source, symbol, key)
        self._remember(key, series, entry)
        if self.announce and entry.gaps.get("count") and key not in self._announced:
            self._announced.add(key)
            gaps = GapReport(**entry.gaps).describe()
            data_log.warning("%s: %s (replayed as is, no bars invented)", entry.source.path, gaps)
        return series

    def ingest(self, source: Path, symbol: str | None = None, *, force: bool = False) -> CacheEntry:
        """Make sure ``source`` is cached (rebuilt if ``force``); return its entry."""
        source = Path(source)
        _refuse_special(source)
        symbol = symbol or _symbol_of(source)
        key = _entry_key(source, symbol)
        self._forget(key)
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
        self.stats.bytes_mapped = 0
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
        mine, before = asdict(self.stats), asdict(self._flushed)
        deltas = [(name, mine[name] - before[name]) for name in _ADDED]
        if not any(delta for _, delta in deltas) and mine["peak_bytes_mapped"] == 0:
            return self.shared_stats()  # nothing to add: no folder or file created for zeros
        if self.unwritable is not None:
            return self.shared_stats()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with contextlib.closing(self._stats_db()) as db, db:
                db.execute(
                    "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER)"
                )
                db.executemany(
                    "INSERT INTO counters VALUES (?, ?) ON CONFLICT(name) "
                    "DO UPDATE SET value = value + excluded.value",
                    deltas,
                )
                db.execute(
                    "INSERT INTO counters VALUES ('peak_bytes_mapped', ?) ON CONFLICT(name) "
                    "DO UPDATE SET value = max(value, excluded.value)",
                    (mine["peak_bytes_mapped"],),
                )
        except (OSError, sqlite3.Error) as exc:
            self._cannot_write(exc, "cache counters are not recorded")
            return self.shared_stats()
        self._flushed = CacheStats(**mine)
        return self.shared_stats()

    def shared_stats(self) -> CacheStats:
        """The counters accumulated in ``stats.sqlite`` by every process (zero if none yet)."""
        path = self.root / _STATS_FILE
        if not path.is_file():
            return CacheStats()
        try:
            with contextlib.closing(self._stats_db(read_only=True)) as db:
                rows = dict(db.execute("SELECT name, value FROM counters").fetchall())
        except sqlite3.Error as exc:
            log.warning("%s: unreadable cache counters (%s)", path, exc)
            return CacheStats()
        known = {name: int(rows[name]) for name in (*_ADDED, "peak_bytes_mapped") if name in rows}
        return CacheStats(**known)

    def _stats_db(self, *, read_only: bool = False) -> sqlite3.Connection:
        path = self.root / _STATS_FILE
        if read_only:
            db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0)
        else:
            db = sqlite3.connect(path, timeout=30.0)  # waits out other writers' transactions
            # A killed process cannot corrupt the file either way (the journal is still
            # written); OFF only skips the fsyncs a counter does not need.
            db.execute("PRAGMA synchronous = OFF")
        return db

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

    def _remember(self, key: str, series: BarSeries, entry: CacheEntry) -> None:
        self._lru[key] = (series, entry)
        self.stats.bytes_mapped += entry.nbytes
        self.stats.peak_bytes_mapped = max(self.stats.peak_bytes_mapped, self.stats.bytes_mapped)
        while self.stats.bytes_mapped > self.budget_bytes and len(self._lru) > 1:
            oldest = next(iter(self._lru))
            self._forget(oldest)
            self.stats.evictions += 1

    def _forget(self, key: str) -> None:
        dropped = self._lru.pop(key, None)
        if dropped is not None:
            self.stats.bytes_mapped -= dropped[1].nbytes

    @staticmethod
    def _source_unchanged(source: Path, entry: CacheEntry) -> bool:
        try:
            stat = source.stat()
        except OSError:
            return True  # the source is gone: what is mapped is still the last good copy
        return stat.st_size == entry.source.size and stat.st_mtime_ns == entry.source.mtime_ns

    def _open_or_build(
        self, source: Path, symbol: str, key: str, *, fallback: bool = True
    ) -> tuple[BarSeries, CacheEntry]:
        """The entry mapped from disk, else built; else (``fallback``, the folder cannot be
        written) the source parsed into memory."""
        found = self._open_existing(source, key)
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
                shutil.rmtree(self.root / f".tmp-{key}-{os.getpid()}", ignore_errors=True)
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
        stat_ = source.stat()
        columns = dict(zip(COLUMNS, series.columns(), strict=True))
        entry = _entry_of(
            series,
            key,
            SourceFingerprint(str(source.resolve()), stat_.st_size, stat_.st_mtime_ns, ""),
            checksums={},
            column_bytes={name: int(array.nbytes) for name, array in columns.items()},
        )
        return series, entry

    def _open_existing(self, source: Path, key: str) -> tuple[BarSeries, CacheEntry] | str | None:
        """The mapped entry; else why it cannot be used; None when there is no entry."""
        directory = self.root / key
        try:
            entry = CacheEntry.from_json((directory / "meta.json").read_text(encoding="utf-8"))
        except (FileNotFoundError, NotADirectoryError):
            return None
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            return f"unreadable metadata ({exc})"
        entry, stale = self._freshen(source, entry, directory)
        if stale:
            return stale
        try:
            return self._map(directory, entry), entry
        except CorruptCacheError as exc:
            return str(exc)

    def _freshen(
        self, source: Path, entry: CacheEntry, directory: Path
    ) -> tuple[CacheEntry, str | None]:
        """The entry (its fingerprint refreshed if only the mtime moved) and why it is stale."""
        try:
            stat = source.stat()
        except FileNotFoundError:
            log.warning("%s: source is gone; serving the cached copy in %s", source, directory)
            return entry, None
        if stat.st_size == entry.source.size and stat.st_mtime_ns == entry.source.mtime_ns:
            return entry, None
        current = _fingerprint(source)
        if current.sha256 != entry.source.sha256:
            return entry, "the source file changed"
        # Same content, new mtime (copied or touched): record the new stat, keep the data.
        refreshed = CacheEntry(**{**asdict(entry), "source": current})
        try:
            self._write_meta(directory, refreshed)
        except OSError as exc:  # a read-only cache: serve it, re-hashing next time
            log.debug("%s: new mtime not recorded (%s)", directory, exc)
        return refreshed, None

    def _map(self, directory: Path, entry: CacheEntry) -> BarSeries:
        columns = []
        for name in COLUMNS:
            path = directory / f"{name}.npy"
            try:
                size = path.stat().st_size
                array = np.load(path, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise CorruptCacheError(f"{path.name}: unreadable ({exc})") from None
            if array.dtype != _DTYPES[name] or array.shape != (entry.rows,):
                raise CorruptCacheError(
                    f"{path.name}: {array.dtype} {array.shape}, expected "
                    f"{_DTYPES[name]} ({entry.rows},)"
                )
            if size != entry.column_bytes[name]:
                raise CorruptCacheError(
                    f"{path.name}: {size} bytes, expected {entry.column_bytes[name]}"
                )
            if self.verify_checksums and _checksum(array) != entry.checksums[name]:
                raise CorruptCacheError(f"{path.name}: checksum mismatch")
            columns.append(array)
        times, *prices = columns
        return BarSeries(entry.symbol, entry.interval, entry.source.path, times, *prices)

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
                found = self._open_existing(source, key)
                if isinstance(found, tuple):
                    self.stats.disk_hits += 1
                    return found
            if reason:
                log.warning("%s: rebuilding cache entry %s: %s", source, key, reason)
            started = time.perf_counter()
            entry = self._parse_and_write(source, symbol, key)
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
            return self._map(directory, entry), entry

    def _parse_and_write(self, source: Path, symbol: str, key: str) -> CacheEntry:
        """Parse ``source`` (block by block if it is a large CSV) into a new entry."""
        from barbus.replay.loader import (  # pandas/pyarrow: load them late
            ChunkProblemError,
            load_bars,
        )

        size = source.stat().st_size
        if size <= self.chunk_bytes:
            return self._write_entry(source, load_bars(source, symbol), key)
        try:
            entry = self._write_chunks(source, symbol, key)
        except ChunkProblemError as problem:
            if size <= EXACT_ERRORS_MAX_BYTES:
                # Parse it whole to name the exact file line (or to read what the block
                # reader could not, e.g. time stamps whose format changes after block one).
                return self._write_entry(source, load_bars(source, symbol), key)
            where = f" data row {problem.row + 1}:" if problem.row >= 0 else ""
            raise DataError(f"{source}:{where} {problem.what}") from None
        self.chunked_ingests += 1
        return entry

    def _write_chunks(self, source: Path, symbol: str, key: str) -> CacheEntry:
        from barbus.replay.loader import csv_chunks, parquet_chunks

        if source.suffix.lower() == ".parquet":
            # About chunk_bytes of decoded columns (48 bytes a row) per batch.
            chunks = parquet_chunks(source, self.chunk_bytes // 48)
        else:
            chunks = csv_chunks(source, self.chunk_bytes)
        fingerprint = _fingerprint(source)
        tmp = self._fresh_tmp(key)
        writers = {name: _ColumnWriter(tmp / f"{name}.npy", _DTYPES[name]) for name in COLUMNS}
        gaps = _GapCounter()
        zero_volume = 0
        first_ms: int | None = None
        try:
            for times, prices in chunks:
                for name, column in zip(COLUMNS, (times, *prices), strict=True):
                    writers[name].append(column)
                gaps.add(times)
                zero_volume += int(np.count_nonzero(prices[4] == 0.0))
                if first_ms is None:
                    first_ms = int(times[0])
            finished = {name: writer.finish() for name, writer in writers.items()}
        except BaseException:
            for writer in writers.values():
                writer.close()
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        assert first_ms is not None
        assert gaps.last_ms is not None
        entry = CacheEntry(
            key=key,
            symbol=symbol,
            interval="1m",
            rows=writers["open_time_ms"].rows,
            first_open_time_ms=first_ms,
            last_open_time_ms=gaps.last_ms,
            source=fingerprint,
            checksums={name: digest for name, (digest, _) in finished.items()},
            column_bytes={name: size for name, (_, size) in finished.items()},
            gaps=asdict(gaps.report()),
            zero_volume_bars=zero_volume,
            created_unix=time.time(),
        )
        self._install(tmp, entry)
        return entry

    def _fresh_tmp(self, key: str) -> Path:
        tmp = self.root / f".tmp-{key}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        return tmp

    def _install(self, tmp: Path, entry: CacheEntry) -> None:
        """Write the metadata and rename the finished folder into place."""
        self._write_meta(tmp, entry)
        directory = self.root / entry.key
        if directory.exists():
            trash = self.root / f".old-{entry.key}-{os.getpid()}"
            directory.rename(trash)
            shutil.rmtree(trash, ignore_errors=True)
        tmp.rename(directory)

    def _write_entry(self, source: Path, series: BarSeries, key: str) -> CacheEntry:
        fingerprint = _fingerprint(source)
        tmp = self._fresh_tmp(key)
        arrays = dict(zip(COLUMNS, series.columns(), strict=True))
        checksums, column_bytes = {}, {}
        for name, array in arrays.items():
            contiguous = np.ascontiguousarray(array, dtype=_DTYPES[name])
            path = tmp / f"{name}.npy"
            np.save(path, contiguous, allow_pickle=False)
            checksums[name] = _checksum(contiguous)
            column_bytes[name] = path.stat().st_size
        entry = _entry_of(series, key, fingerprint, checksums, column_bytes)
        self._install(tmp, entry)
        return entry

    @staticmethod
    def _write_meta(directory: Path, entry: CacheEntry) -> None:
        tmp = directory / "meta.json.tmp"
        tmp.write_text(entry.to_json(), encoding="utf-8")
        tmp.replace(directory / "meta.json")

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


def _npy_header(dtype: np.dtype[Any], rows: int) -> bytes:
    """The ``.npy`` (version 1.0) header ``numpy.save`` writes for a 1-D array of ``rows``."""
    buffer = io.BytesIO()
    header = {
        "descr": np.lib.format.dtype_to_descr(dtype),
        "fortran_order": False,
        "shape": (rows,),
    }
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue()


class _ColumnWriter:
    """One ``.npy`` column written chunk by chunk, checksummed as it goes.

    A placeholder header goes first; :meth:`finish` rewrites it with the final row count (the
    header is padded to 128 bytes whatever the count, so the data never moves).
    """

    def __init__(self, path: Path, dtype: np.dtype[Any]) -> None:
        self.path = path
        self.dtype = dtype
        self.rows = 0
        self._hash = xxhash.xxh3_64()
        self._header_bytes = len(_npy_header(dtype, 0))
        self._handle = path.open("wb")
        self._handle.write(_npy_header(dtype, 0))

    def append(self, column: np.ndarray[Any, Any]) -> None:
        data = np.ascontiguousarray(column, dtype=self.dtype)
        self._handle.write(data.data)
        self._hash.update(data.data)
        self.rows += data.size

    def finish(self) -> tuple[str, int]:
        """(xxh3 checksum, file size) once the real header is in place."""
        header = _npy_header(self.dtype, self.rows)
        if len(header) != self._header_bytes:
            raise DataError(f"{self.path}: {self.rows} rows do not fit a fixed .npy header")
        self._handle.seek(0)
        self._handle.write(header)
        self._handle.close()
        return self._hash.hexdigest(), self.path.stat().st_size

    def close(self) -> None:
        self._handle.close()


class _GapCounter:
    """:meth:`BarSeries.gaps` computed chunk by chunk (the same report for the same bars)."""

    def __init__(self) -> None:
        self.last_ms: int | None = None
        self.count = 0
        self.missing = 0
        self.largest = 0
        self.largest_after_ms: int | None = None

    def add(self, times: np.ndarray[Any, Any]) -> None:
        joined = times if self.last_ms is None else np.concatenate(([self.last_ms], times))
        self.last_ms = int(times[-1])
        if joined.size < 2:
            return
        steps = np.diff(joined)
        holes = np.flatnonzero(steps > MINUTE_MS)
        if holes.size == 0:
            return
        missing = steps[holes] // MINUTE_MS - 1
        worst = int(np.argmax(missing))
        self.count += int(holes.size)
        self.missing += int(missing.sum())
        if int(missing[worst]) > self.largest:  # the first largest, as argmax over the file
            self.largest = int(missing[worst])
            self.largest_after_ms = int(joined[holes[worst]])

    def report(self) -> GapReport:
        return GapReport(self.count, self.largest, self.missing, self.largest_after_ms)


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


def _entry_of(
    series: BarSeries,
    key: str,
    source: SourceFingerprint,
    checksums: dict[str, str],
    column_bytes: dict[str, int],
) -> CacheEntry:
    """The entry that describes ``series`` (built on disk, or held in memory only)."""
    return CacheEntry(
        key=key,
        symbol=series.symbol,
        interval=series.interval,
        rows=len(series),
        first_open_time_ms=int(series.open_time_ms[0]),
        last_open_time_ms=int(series.open_time_ms[-1]),
        source=source,
        checksums=checksums,
        column_bytes=column_bytes,
        gaps=asdict(series.gaps()),
        zero_volume_bars=series.zero_volume_bars(),
        created_unix=time.time(),
    )
