"""Writing cache entries: the column files, the metadata, and the rename into place.

An entry is written in a temporary folder (``.tmp-<key>-<pid>``) and renamed over the old one
when complete, so a reader never sees half an entry (the caller holds the entry's file lock). A
large source arrives in chunks: a column writer appends each to its ``.npy`` file and
rewrites the header with the row count at the end; the steps between the chunks' bars tell the
interval, and a gap counter then reproduces :meth:`BarSeries.gaps` over the written column, so
the bytes are the same as a one-shot write's. Its
own module because writing files is a different job from deciding when to (:mod:`replay.cache`).
"""

from __future__ import annotations

import io
import os
import shutil
import time
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

from barbus.daemon.core.errors import DataError
from barbus.daemon.core.events import MINUTE_MS, interval_ms
from barbus.daemon.core.series import BarSeries, FloatArray, GapReport, IntArray
from barbus.replay.cache_entry import (
    COLUMNS,
    DTYPES,
    CacheEntry,
    checksum,
    entry_of,
    fingerprint,
    write_meta,
)
from barbus.replay.intervals import bar_interval, declared_interval, join_facts, step_facts

__all__ = ["tmp_dir", "write_chunks", "write_entry", "write_from_source"]


def tmp_dir(root: Path, key: str) -> Path:
    """Where this process builds the entry ``key`` before renaming it into place."""
    return root / f".tmp-{key}-{os.getpid()}"


def write_from_source(
    root: Path, source: Path, symbol: str, key: str, chunk_bytes: int, exact_errors_max_bytes: int
) -> tuple[CacheEntry, bool]:
    """Parse ``source`` (block by block if larger than ``chunk_bytes``) into the entry ``key``;
    also whether it went block by block. A problem in a chunked file up to
    ``exact_errors_max_bytes`` is located by a one-shot parse (the exact file line)."""
    from barbus.replay.chunks import (  # pandas/pyarrow: load them late
        ChunkProblemError,
        csv_chunks,
        parquet_chunks,
    )
    from barbus.replay.loader import load_bars

    size = source.stat().st_size
    if size <= chunk_bytes:
        return write_entry(root, source, load_bars(source, symbol), key), False
    if source.suffix.lower() == ".parquet":
        # About chunk_bytes of decoded columns (48 bytes a row) per batch.
        chunks = parquet_chunks(source, chunk_bytes // 48)
    else:
        chunks = csv_chunks(source, chunk_bytes)
    try:
        return write_chunks(root, source, symbol, key, chunks), True
    except ChunkProblemError as problem:
        if size <= exact_errors_max_bytes:
            # Parse it whole to name the exact file line (or to read what the block
            # reader could not, e.g. time stamps whose format changes after block one).
            return write_entry(root, source, load_bars(source, symbol), key), False
        where = f" data row {problem.row + 1}:" if problem.row >= 0 else ""
        raise DataError(f"{source}:{where} {problem.what}") from None


def write_entry(root: Path, source: Path, series: BarSeries, key: str) -> CacheEntry:
    """Write ``series`` (parsed whole from ``source``) as the entry ``key``."""
    source_print = fingerprint(source)
    tmp = _fresh_tmp(root, key)
    arrays = dict(zip(COLUMNS, series.columns(), strict=True))
    checksums, column_bytes = {}, {}
    for name, array in arrays.items():
        contiguous = np.ascontiguousarray(array, dtype=DTYPES[name])
        path = tmp / f"{name}.npy"
        np.save(path, contiguous, allow_pickle=False)
        checksums[name] = checksum(contiguous)
        column_bytes[name] = path.stat().st_size
    entry = entry_of(series, key, source_print, checksums, column_bytes)
    _install(root, tmp, entry)
    return entry


def write_chunks(
    root: Path,
    source: Path,
    symbol: str,
    key: str,
    chunks: Iterable[tuple[IntArray, list[FloatArray]]],
) -> CacheEntry:
    """Write the validated ``chunks`` of ``source`` as the entry ``key``, column by column;
    nothing is left behind if a chunk raises."""
    source_print = fingerprint(source)
    tmp = _fresh_tmp(root, key)
    writers = {name: _ColumnWriter(tmp / f"{name}.npy", DTYPES[name]) for name in COLUMNS}
    zero_volume = 0
    first_ms: int | None = None
    last_ms: int | None = None
    facts: tuple[int, int] | None = None  # of the steps so far: they tell the interval
    try:
        for times, prices in chunks:
            for name, column in zip(COLUMNS, (times, *prices), strict=True):
                writers[name].append(column)
            facts = join_facts(facts, step_facts(times, last_ms))
            last_ms = int(times[-1])
            zero_volume += int(np.count_nonzero(prices[4] == 0.0))
            if first_ms is None:
                first_ms = int(times[0])
        finished = {name: writer.finish() for name, writer in writers.items()}
        assert first_ms is not None
        assert last_ms is not None
        interval = bar_interval(source, first_ms, facts, declared_interval(source))
        gaps = _gaps_of_column(tmp / "open_time_ms.npy", interval_ms(interval))
    except BaseException:
        for writer in writers.values():
            writer.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    entry = CacheEntry(
        key=key,
        symbol=symbol,
        interval=interval,
        rows=writers["open_time_ms"].rows,
        first_open_time_ms=first_ms,
        last_open_time_ms=last_ms,
        source=source_print,
        checksums={name: digest for name, (digest, _) in finished.items()},
        column_bytes={name: size for name, (_, size) in finished.items()},
        gaps=asdict(gaps.report()),
        zero_volume_bars=zero_volume,
        created_unix=time.time(),
    )
    _install(root, tmp, entry)
    return entry


def _fresh_tmp(root: Path, key: str) -> Path:
    tmp = tmp_dir(root, key)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def _install(root: Path, tmp: Path, entry: CacheEntry) -> None:
    """Write the metadata and rename the finished folder into place."""
    write_meta(tmp, entry)
    directory = root / entry.key
    if directory.exists():
        trash = root / f".old-{entry.key}-{os.getpid()}"
        directory.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)
    tmp.rename(directory)


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


def _gaps_of_column(path: Path, step_ms: int, block_rows: int = 1 << 20) -> _GapCounter:
    """The gaps of a written open-time column, read from its memory map a block at a time."""
    times = np.load(path, mmap_mode="r")
    gaps = _GapCounter(step_ms)
    for start in range(0, len(times), block_rows):
        gaps.add(np.asarray(times[start : start + block_rows]))
    del times
    return gaps


class _GapCounter:
    """:meth:`BarSeries.gaps` computed block by block (the same report for the same bars)."""

    def __init__(self, step_ms: int) -> None:
        self.step_ms = step_ms
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
        holes = np.flatnonzero(steps > self.step_ms)
        if holes.size == 0:
            return
        missing = (steps[holes] - self.step_ms) // MINUTE_MS
        worst = int(np.argmax(missing))
        self.count += int(holes.size)
        self.missing += int(missing.sum())
        if int(missing[worst]) > self.largest:  # the first largest, as argmax over the file
            self.largest = int(missing[worst])
            self.largest_after_ms = int(joined[holes[worst]])

    def report(self) -> GapReport:
        return GapReport(self.count, self.largest, self.missing, self.largest_after_ms)
