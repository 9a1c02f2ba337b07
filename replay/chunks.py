"""A large bar file read block by block, with every rule of the one-shot loader.

The cache's chunked ingest (:mod:`replay.cache`) appends each block to its column files, so
ingest memory is bounded by the block and not by the file. A checker carries the rules across
block boundaries (order, duplicates, the smallest step) and reports a problem by data row: the
caller decides whether to parse the file whole again for the exact file line. Its own module
because streaming is a different reader from :func:`~replay.loader.load_bars`, sharing only the
layout (:mod:`replay.layout`) and the rules (:mod:`replay.validate`).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from barbus.daemon.core.errors import DataError
from barbus.daemon.core.series import FloatArray, IntArray
from barbus.replay.files import refuse_special
from barbus.replay.layout import (
    HEAD_BYTES,
    PRICE_COLUMNS,
    TIME_NAMES,
    convert_options,
    csv_layout,
    csv_text,
)
from barbus.replay.validate import first_problem, times_ms

__all__ = ["ChunkProblemError", "csv_chunks", "parquet_chunks"]


class ChunkProblemError(Exception):
    """What :func:`csv_chunks` found wrong, by 0-based data row (-1: not one row's fault).

    The caller decides the message: the exact file line from a one-shot parse when the file
    is small enough to parse again, else the data row.
    """

    def __init__(self, row: int, what: str) -> None:
        super().__init__(what)
        self.row = row
        self.what = what


@contextlib.contextmanager
def _open_text_stream(path: Path) -> Iterator[io.BufferedIOBase]:
    """The file's CSV bytes as a stream, gunzipped on the fly if it is gzip."""
    with path.open("rb") as raw:
        compressed = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        if not compressed:
            yield raw
            return
        with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
            yield unzipped


def _head(path: Path) -> bytes:
    """The first 64 KiB of CSV text (gunzipped, without a byte-order mark)."""
    try:
        with _open_text_stream(path) as stream:
            head = stream.read(HEAD_BYTES)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: corrupt gzip data: {exc}") from None
    return csv_text(path, head)


def _line_blocks(stream: io.BufferedIOBase, chunk_bytes: int) -> Iterator[memoryview]:
    """The stream in blocks of about ``chunk_bytes``, each ending at a line end.

    Bar files have no quoted line breaks, so a block boundary never splits a row. A line
    longer than a block makes the block grow until the line ends.
    """
    tail = b""
    while True:
        data = stream.read(chunk_bytes)
        if not data:
            if tail.strip():
                yield memoryview(tail)
            return
        data = tail + data if tail else data
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            tail = data
            continue
        tail = data[cut:]
        yield memoryview(data)[:cut]  # no copy: pyarrow reads the buffer in place


class _ChunkChecker:
    """The rules of :func:`~replay.validate.first_problem` applied chunk by chunk, across
    boundaries too."""

    def __init__(self, time_name: str) -> None:
        self.time_name = time_name
        self.rows = 0
        self._first: int | None = None  # the file's first raw open time: its unit
        self._previous: int | None = None

    def check(self, table: pa.Table | pa.RecordBatch) -> tuple[IntArray, list[FloatArray]]:
        """(times, prices) of a chunk whose six columns are time, open ... volume."""
        if any(table.column(i).null_count for i in range(6)):
            nulls = [table.column(i).is_null().to_numpy(zero_copy_only=False) for i in range(6)]
            row = int(np.flatnonzero(np.logical_or.reduce(nulls))[0])
            raise ChunkProblemError(self.rows + row, "a field is empty")
        raw_times = table.column(0).to_numpy(zero_copy_only=False)
        if self._first is None and raw_times.dtype.kind in "iuf":
            self._first = int(raw_times[0])
        times = times_ms(raw_times, self._first)
        if times is None:
            raise ChunkProblemError(-1, f"column {self.time_name} holds invalid open times")
        prices = [
            np.ascontiguousarray(table.column(i).to_numpy(zero_copy_only=False), dtype=np.float64)
            for i in range(1, 6)
        ]
        found = first_problem(times, prices)
        if found is not None:
            raise ChunkProblemError(self.rows + found[0], found[1])
        if self._previous is not None:
            step = int(times[0]) - self._previous
            if step <= 0:
                what = "duplicated open time (same as the previous row)"
                if step < 0:
                    what = "open time earlier than the previous row (file not sorted)"
                raise ChunkProblemError(self.rows, what)
        self.rows += times.size
        self._previous = int(times[-1])
        return times, prices

    def finish(self, path: Path) -> None:
        """The whole-file rule: at least one row (its one interval is the writer's to find)."""
        if self.rows == 0:
            raise DataError(f"{path}: no data rows")


def csv_chunks(path: Path, chunk_bytes: int) -> Iterator[tuple[IntArray, list[FloatArray]]]:
    """Validated (open times, [open, high, low, close, volume]) of a CSV, block by block.

    Every rule of :func:`~replay.loader.load_bars` is applied, across block boundaries too. A
    problem is a :class:`ChunkProblemError` (rows may already have been yielded: the caller
    discards them); an empty, binary or unreadable file a :class:`DataError`.
    """
    refuse_special(path)
    has_header, time_name, width = csv_layout(path, _head(path))
    everything = [time_name, *PRICE_COLUMNS, *(f"extra{i}" for i in range(6, width))]
    convert = convert_options(time_name)
    checker = _ChunkChecker(time_name)
    with _open_text_stream(path) as stream:
        try:
            for number, block in enumerate(_line_blocks(stream, chunk_bytes)):
                read = pa_csv.ReadOptions(
                    column_names=everything,
                    skip_rows=1 if number == 0 and has_header else 0,
                    autogenerate_column_names=False,
                    block_size=1 << 20,
                )
                table = pa_csv.read_csv(
                    pa.BufferReader(block), read_options=read, convert_options=convert
                )
                del block
                if table.num_rows:
                    yield checker.check(table)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowKeyError) as exc:
            raise ChunkProblemError(-1, f"cannot be parsed: {str(exc)[:200]}") from None
        except (OSError, EOFError, zlib.error) as exc:
            raise ChunkProblemError(
                -1, f"corrupt gzip data or unreadable: {str(exc)[:200]}"
            ) from None
    checker.finish(path)


def parquet_chunks(path: Path, chunk_rows: int) -> Iterator[tuple[IntArray, list[FloatArray]]]:
    """Like :func:`csv_chunks` for a Parquet file, ``chunk_rows`` rows at a time."""
    refuse_special(path)
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path}: not a readable Parquet file: {exc}") from None
    with contextlib.closing(parquet):
        schema = parquet.schema_arrow
        by_lower = {name.lower(): name for name in schema.names}
        time_name = next((n for n in TIME_NAMES if n in by_lower), None)
        missing = [n for n in PRICE_COLUMNS if n not in by_lower]
        if time_name is None or missing:
            raise ChunkProblemError(-1, "lacks a time column or a price column")
        for name in PRICE_COLUMNS:
            kind = schema.field(by_lower[name]).type
            if not (pa.types.is_floating(kind) or pa.types.is_integer(kind)):
                raise ChunkProblemError(-1, f"Parquet column {name} is {kind}, not numeric")
        columns = [by_lower[n] for n in (time_name, *PRICE_COLUMNS)]
        checker = _ChunkChecker(time_name)
        try:
            for batch in parquet.iter_batches(batch_size=max(chunk_rows, 1), columns=columns):
                if batch.num_rows:
                    yield checker.check(batch)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
            raise ChunkProblemError(-1, f"cannot be read: {str(exc)[:200]}") from None
    checker.finish(path)
