"""Read bar files into a validated :class:`~daemon.core.series.BarSeries`, at ingest.

The bars are of one interval, 1m to 1d: the smallest step between them, which a name such as
``BTCUSDT_1m_...`` or ``BTCUSDT-1h-2025-06.csv`` (or a data folder's interval folder) must agree
with when it declares one (:func:`~replay.validate.bar_interval`).

Accepted inputs (CSV may be gzip-compressed; the layout is told apart by the first line):

* barbus export: header ``open_time_ms,open,high,low,close,volume`` (``open_time`` is accepted
  for the first name); extra columns are ignored;
* Binance kline CSV (data.binance.vision): no header, 12 columns, open time first; open times in
  microseconds (Binance's spot files since 2025) become milliseconds;
* plain OHLCV: header ``timestamp,open,high,low,close,volume`` where ``timestamp`` is the bar's
  open time as ISO-8601 (UTC unless an offset is given) or epoch seconds / ms / µs;
* Parquet (``.parquet``) with either set of column names.

CSV is parsed with pyarrow (several million rows a second). When anything is wrong, the file is
parsed again with pandas row by row as text, so the error names the file line a user can open.
Gaps (missing minutes) are legal in real data: they are reported, never filled.

Only regular files are read (a FIFO would block for ever, a device never end). This module
reads a whole file; :mod:`replay.chunks` streams a large CSV in blocks for the cache's chunked
ingest, with the same layout (:mod:`replay.layout`) and rules (:mod:`replay.validate`).
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from barbus.daemon.core.errors import DataError
from barbus.daemon.core.series import BarSeries, FloatArray, IntArray, symbol_from_name
from barbus.replay.files import BUNDLED_SAMPLE, bundled_data_path, refuse_special
from barbus.replay.intervals import bar_interval, declared_interval, step_facts
from barbus.replay.layout import (
    PRICE_COLUMNS,
    TIME_NAMES,
    columns_problem,
    convert_options,
    csv_layout,
    csv_text,
    decode,
)
from barbus.replay.validate import (
    first_problem,
    text_numbers,
    text_times,
    times_ms,
    validate,
)

__all__ = ["BUNDLED_SAMPLE", "bundled_data_path", "load_bars"]


def load_bars(path: Path, symbol: str | None = None) -> BarSeries:
    """Load and validate a 1-minute bar file; raise :class:`DataError` naming what is wrong."""
    path = Path(path)
    raw = _read_bytes(path)
    if symbol is None:
        symbol = symbol_from_name(path)
    if path.suffix.lower() == ".parquet":
        times, prices = _parquet_columns(path, raw)
        lines = np.arange(1, len(times) + 1, dtype=np.int64)  # Parquet has rows, not lines
        validate(path, times, prices, lines, "row")
        return _series(path, symbol, times, prices)
    data = _decompress(path, raw)
    columns = _fast_csv_columns(path, data)
    if columns is not None:
        times, prices = columns
        if first_problem(times, prices) is None:
            return _series(path, symbol, times, prices)
    # Slow path: parse as text to name the exact line of the first problem.
    frame = _text_frame(path, decode(path, data))
    lines = frame.index.to_numpy(dtype=np.int64)
    times, prices = _frame_columns(path, frame)
    validate(path, times, prices, lines, "line")
    return _series(path, symbol, times, prices)


def _series(path: Path, symbol: str, times: IntArray, prices: list[FloatArray]) -> BarSeries:
    """The validated columns as a series of the interval the bars and the file name say."""
    interval = bar_interval(path, int(times[0]), step_facts(times), declared_interval(path))
    return BarSeries(symbol, interval, str(path), times, *prices)


def _read_bytes(path: Path) -> bytes:
    refuse_special(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such data file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not a data file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except MemoryError:
        raise DataError(
            f"{path}: too large to read into memory; ingest it into the cache"
        ) from None


def _decompress(path: Path, raw: bytes) -> bytes:
    """The CSV bytes: gunzipped if need be, without a UTF-8 byte-order mark, not empty."""
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{path}: corrupt gzip data: {exc}") from None
    return csv_text(path, raw)


def _fast_csv_columns(path: Path, data: bytes) -> tuple[IntArray, list[FloatArray]] | None:
    """Parse with pyarrow; None when a field is not numeric (the slow path will name it)."""
    has_header, time_name, width = csv_layout(path, data)
    names = [time_name, *PRICE_COLUMNS]
    read = pa_csv.ReadOptions(
        column_names=None if has_header else [*names, *(f"extra{i}" for i in range(6, width))],
        autogenerate_column_names=False,
    )
    convert = convert_options(time_name)
    try:
        table = pa_csv.read_csv(pa.BufferReader(data), read_options=read, convert_options=convert)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowKeyError):
        return None
    if table.num_rows == 0:
        raise DataError(f"{path}: no data rows")
    if any(table.column(name).null_count for name in names):
        return None
    return _time_and_prices(path, table.column(time_name).to_numpy(), table, names)


def _time_and_prices(
    path: Path, raw_times: npt.NDArray[np.generic], table: pa.Table, names: Sequence[str]
) -> tuple[IntArray, list[FloatArray]] | None:
    times = times_ms(raw_times)
    if times is None:
        return None
    prices = [
        np.ascontiguousarray(table.column(name).to_numpy(), dtype=np.float64) for name in names[1:]
    ]
    return times, prices


def _parquet_columns(path: Path, raw: bytes) -> tuple[IntArray, list[FloatArray]]:
    try:
        table = pq.read_table(pa.BufferReader(raw))
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path}: not a readable Parquet file: {exc}") from None
    columns = [name.lower() for name in table.column_names]
    table = table.rename_columns(columns)
    time_name = next((n for n in TIME_NAMES if n in columns), None)
    lacking = columns_problem(columns, has_time=time_name is not None, time_names=TIME_NAMES)
    if lacking is not None:
        raise DataError(f"{path}: Parquet columns {table.column_names} {lacking}")
    assert time_name is not None  # columns_problem checked it
    if table.num_rows == 0:
        raise DataError(f"{path}: no data rows")
    names = [time_name, *PRICE_COLUMNS]
    for name in PRICE_COLUMNS:
        if not pa.types.is_floating(table.column(name).type) and not pa.types.is_integer(
            table.column(name).type
        ):
            raise DataError(
                f"{path}: Parquet column {name} is {table.column(name).type}, not numeric"
            )
    if table.column(time_name).null_count:
        raise DataError(f"{path}: column {time_name} holds invalid or missing open times")
    raw_times = table.column(time_name).to_numpy(zero_copy_only=False)
    columns_ms = _time_and_prices(path, raw_times, table, names)
    if columns_ms is None:
        raise DataError(f"{path}: column {time_name} holds invalid or missing open times")
    times, prices = columns_ms
    nulls = [name for name in PRICE_COLUMNS if table.column(name).null_count]
    if nulls:
        raise DataError(f"{path}: Parquet columns {nulls} have missing values")
    return times, prices


def _text_frame(path: Path, text: str) -> pd.DataFrame:
    """The six columns as text; the index is the file line number; blank lines dropped."""
    has_header, time_name, _ = csv_layout(path, text.encode("utf-8"))
    first_line = 2 if has_header else 1
    frame = pd.read_csv(
        io.StringIO(text),
        header=0 if has_header else None,
        usecols=range(6),
        names=[time_name, *PRICE_COLUMNS],
        dtype=str,
        keep_default_na=False,  # "NaN" stays text, so it is reported as not a number
        skip_blank_lines=False,  # keep row i on file line i + first_line
    )
    frame.index = pd.RangeIndex(first_line, first_line + len(frame))
    blank = (frame.fillna("").apply(lambda column: column.str.strip()) == "").all(axis=1)
    kept: pd.DataFrame = frame.loc[~blank]
    if kept.empty:
        raise DataError(f"{path}: no data rows")
    return kept


def _frame_columns(path: Path, frame: pd.DataFrame) -> tuple[IntArray, list[FloatArray]]:
    time_name = str(frame.columns[0])
    times = text_times(path, frame, time_name, iso=time_name == "timestamp")
    return times, [text_numbers(path, frame, name) for name in PRICE_COLUMNS]
