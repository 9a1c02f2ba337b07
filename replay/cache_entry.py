"""One cache entry: its folder layout, its ``meta.json`` and the checks that make it usable.

Layout: ``<root>/<SYMBOL>-<key>/`` holds one ``.npy`` file per column (``open_time_ms`` int64,
``open`` ... ``volume`` float64, little-endian, C order) and ``meta.json`` (format version,
symbol, interval, rows, first/last open time, source path + size + mtime + sha256, an xxh3
checksum and byte length per column, the gap report). ``key`` hashes the resolved source path
and symbol. ``.npy`` rather than Arrow IPC: ``numpy.load(mmap_mode="r")`` maps a column with no
third-party code on the read path, one file per column lets a job map only what it reads, and
the header is a fixed 128 bytes that says dtype and shape, so a truncated file is caught by a
length check before any page is touched.

Its own module because the format is shared by the cache (:mod:`replay.cache`, which maps
entries), the writer (:mod:`replay.cache_write`) and the listing (:mod:`replay.cache_listing`);
changing anything here (the key, the fingerprint, the fields) orphans every existing cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

from barbus.daemon.core.series import BarSeries

__all__ = [
    "COLUMNS",
    "DTYPES",
    "FORMAT_VERSION",
    "CacheEntry",
    "CorruptCacheError",
    "SourceFingerprint",
    "checksum",
    "entry_key",
    "entry_of",
    "fingerprint",
    "map_entry",
    "memory_entry",
    "open_entry",
    "write_meta",
]

log = logging.getLogger("barbus.cache")

FORMAT_VERSION = 1
COLUMNS = ("open_time_ms", "open", "high", "low", "close", "volume")
DTYPES = {name: np.dtype("<i8") if name == "open_time_ms" else np.dtype("<f8") for name in COLUMNS}


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


class CorruptCacheError(Exception):
    """A cache entry failed a check; it is rebuilt from its source."""


def entry_key(source: Path, symbol: str) -> str:
    digest = hashlib.sha256(f"{source.resolve()}\0{symbol}".encode()).hexdigest()
    return f"{symbol}-{digest[:16]}"


def fingerprint(source: Path, sha256: str | None = None) -> SourceFingerprint:
    stat = source.stat()
    if sha256 is None:
        with source.open("rb") as handle:
            sha256 = hashlib.file_digest(handle, "sha256").hexdigest()
    return SourceFingerprint(str(source.resolve()), stat.st_size, stat.st_mtime_ns, sha256)


def checksum(array: np.ndarray[Any, Any]) -> str:
    return xxhash.xxh3_64_hexdigest(np.ascontiguousarray(array).data)


def map_entry(directory: Path, entry: CacheEntry, *, verify_checksums: bool) -> BarSeries:
    """The entry's columns memory-mapped as a series; :class:`CorruptCacheError` when a file
    is unreadable or its dtype, shape, size or (if ``verify_checksums``) checksum is wrong."""
    columns = []
    for name in COLUMNS:
        path = directory / f"{name}.npy"
        try:
            size = path.stat().st_size
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise CorruptCacheError(f"{path.name}: unreadable ({exc})") from None
        if array.dtype != DTYPES[name] or array.shape != (entry.rows,):
            raise CorruptCacheError(
                f"{path.name}: {array.dtype} {array.shape}, expected {DTYPES[name]} ({entry.rows},)"
            )
        if size != entry.column_bytes[name]:
            raise CorruptCacheError(
                f"{path.name}: {size} bytes, expected {entry.column_bytes[name]}"
            )
        if verify_checksums and checksum(array) != entry.checksums[name]:
            raise CorruptCacheError(f"{path.name}: checksum mismatch")
        columns.append(array)
    times, *prices = columns
    return BarSeries(entry.symbol, entry.interval, entry.source.path, times, *prices)


def entry_of(
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


def memory_entry(series: BarSeries, source: Path, key: str) -> CacheEntry:
    """The entry of ``series`` parsed into memory only (no files: no checksums, no hash)."""
    stat = source.stat()
    columns = dict(zip(COLUMNS, series.columns(), strict=True))
    return entry_of(
        series,
        key,
        SourceFingerprint(str(source.resolve()), stat.st_size, stat.st_mtime_ns, ""),
        checksums={},
        column_bytes={name: int(array.nbytes) for name, array in columns.items()},
    )


def open_entry(
    directory: Path, source: Path, *, verify_checksums: bool
) -> tuple[BarSeries, CacheEntry] | str | None:
    """The entry in ``directory`` mapped, if its source is unchanged; else why it cannot be
    used; None when there is no entry."""
    try:
        entry = CacheEntry.from_json((directory / "meta.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        return f"unreadable metadata ({exc})"
    entry, stale = _freshen(source, entry, directory)
    if stale:
        return stale
    try:
        return map_entry(directory, entry, verify_checksums=verify_checksums), entry
    except CorruptCacheError as exc:
        return str(exc)


def _freshen(source: Path, entry: CacheEntry, directory: Path) -> tuple[CacheEntry, str | None]:
    """The entry (its fingerprint refreshed if only the mtime moved) and why it is stale."""
    try:
        stat = source.stat()
    except FileNotFoundError:
        log.warning("%s: source is gone; serving the cached copy in %s", source, directory)
        return entry, None
    if stat.st_size == entry.source.size and stat.st_mtime_ns == entry.source.mtime_ns:
        return entry, None
    current = fingerprint(source)
    if current.sha256 != entry.source.sha256:
        return entry, "the source file changed"
    # Same content, new mtime (copied or touched): record the new stat, keep the data.
    refreshed = CacheEntry(**{**asdict(entry), "source": current})
    try:
        write_meta(directory, refreshed)
    except OSError as exc:  # a read-only cache: serve it, re-hashing next time
        log.debug("%s: new mtime not recorded (%s)", directory, exc)
    return refreshed, None


def write_meta(directory: Path, entry: CacheEntry) -> None:
    """Replace ``directory``'s ``meta.json`` with ``entry`` in one rename."""
    tmp = directory / "meta.json.tmp"
    tmp.write_text(entry.to_json(), encoding="utf-8")
    tmp.replace(directory / "meta.json")
