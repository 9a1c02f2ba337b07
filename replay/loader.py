"""Read 1-minute bar files into a validated :class:`~replay.series.BarSeries` (at ingest only).

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

Only regular files are read (a FIFO would block for ever, a device never end). :func:`load_bars`
reads the whole file; :func:`csv_chunks` streams a large CSV in blocks for the cache's chunked
ingest, with the same validation, so memory is bounded by the block and not by the file.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import zlib
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from barbus.daemon.core.errors import DataError
from barbus.daemon.core.events import MINUTE_MS
from barbus.daemon.core.series import BarSeries, FloatArray, IntArray, symbol_from_name
from barbus.replay.files import regular_file_problem

__all__ = [
    "BUNDLED_SAMPLE",
    "ChunkProblemError",
    "bundled_data_path",
    "csv_chunks",
    "load_bars",
    "parquet_chunks",
]

BUNDLED_SAMPLE = "BTCUSDT_1m_2025-05-20_2025-08-18.csv.gz"
PRICE_COLUMNS = ("open", "high", "low", "close", "volume")
HEADER = ("open_time_ms", *PRICE_COLUMNS)
TIME_NAMES = ("open_time_ms", "open_time", "timestamp")
_MAX_TIME = 2.0**53  # beyond this a float64 time is no longer an exact integer


def bundled_data_path(name: str = BUNDLED_SAMPLE) -> Path:
    """Path of a real Binance sample shipped inside the package (``replay/data``)."""
    path = Path(str(resources.files("barbus.replay") / "data" / name))
    if not path.is_file():
        raise DataError(f"bundled data file {name!r} is missing from the installation ({path})")
    return path


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
        return BarSeries(symbol, "1m", str(path), times, *prices)
    data = _decompress(path, raw)
    columns = _fast_csv_columns(path, data)
    if columns is not None:
        times, prices = columns
        if _first_problem(times, prices) is None:
            return BarSeries(symbol, "1m", str(path), times, *prices)
    # Slow path: parse as text to name the exact line of the first problem.
    frame = _text_frame(path, _decode(path, data))
    lines = frame.index.to_numpy(dtype=np.int64)
    times, prices = _frame_columns(path, frame)
    validate(path, times, prices, lines, "line")
    return BarSeries(symbol, "1m", str(path), times, *prices)


def _read_bytes(path: Path) -> bytes:
    problem = regular_file_problem(path)
    if problem is not None:
        raise DataError(problem)
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
    return _csv_text(path, raw)


def _csv_text(path: Path, data: bytes) -> bytes:
    """``data`` without a UTF-8 byte-order mark, refused if empty or binary (a NUL in its
    first 64 KiB): the checks the one-shot and the chunked read share."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    if not data.strip():
        raise DataError(f"{path}: file is empty")
    if b"\x00" in data[:_HEAD_BYTES]:
        raise DataError(f"{path}: not a UTF-8 text CSV file (binary data)")
    return data


def _decode(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a UTF-8 text CSV file") from None


def _layout(path: Path, data: bytes) -> tuple[bool, str, int]:
    """(has a header, time column name, column count) of a CSV; DataError for a wrong header."""
    first = _decode(path, data[: data.find(b"\n") if b"\n" in data else len(data)]).strip()
    fields = [f.strip().strip('"').lower() for f in first.split(",")]
    if fields[0].lstrip("-").replace(".", "", 1).isdigit():
        if len(fields) < 6:
            raise DataError(
                f"{path}: line 1 has {len(fields)} columns; a Binance kline row has at least 6 "
                "(open time, open, high, low, close, volume)"
            )
        return False, "open_time_ms", len(fields)
    if fields[0] in TIME_NAMES and tuple(fields[1:6]) == PRICE_COLUMNS:
        return True, fields[0], len(fields)
    raise DataError(
        f"{path}: unexpected header {first!r}; expected {','.join(HEADER)}, "
        f"timestamp,{','.join(PRICE_COLUMNS)}, or a headerless Binance kline CSV"
    )


def _fast_csv_columns(path: Path, data: bytes) -> tuple[IntArray, list[FloatArray]] | None:
    """Parse with pyarrow; None when a field is not numeric (the slow path will name it)."""
    has_header, time_name, width = _layout(path, data)
    names = [time_name, *PRICE_COLUMNS]
    read = pa_csv.ReadOptions(
        column_names=None if has_header else [*names, *(f"extra{i}" for i in range(6, width))],
        autogenerate_column_names=False,
    )
    types: dict[str, pa.DataType] = {name: pa.float64() for name in PRICE_COLUMNS}
    if time_name != "timestamp":
        types[time_name] = pa.float64()
    convert = pa_csv.ConvertOptions(column_types=types, include_columns=names)
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


def epoch_unit(first: int) -> str:
    """The unit of an epoch number by its magnitude: ``s``, ``ms``, ``us`` or ``ns``.

    Seconds below 1e11 (ms passed 1e11 in 1973), microseconds from 1e14 (ms reach 1e14 only in
    the year 5138), nanoseconds from 1e17 (µs reach 1e17 in the year 5138 too).
    """
    if first < 10**11:
        return "s"
    if first < 10**14:
        return "ms"
    return "us" if first < 10**17 else "ns"


_TO_MS = {"s": (1000, 1), "ms": (1, 1), "us": (1, 1000), "ns": (1, 1_000_000)}


def times_ms(raw: npt.NDArray[np.generic], first: int | None = None) -> IntArray | None:
    """Open times in epoch ms from numbers (s, ms, µs or, as integers, ns by magnitude) or
    date-time strings.

    The unit is told by the first open time: ``raw[0]``, or ``first`` (the file's first) when
    ``raw`` is a later chunk of the file.
    """
    if raw.dtype.kind in "Mm":
        return raw.astype("datetime64[ms]").astype(np.int64)
    if raw.dtype.kind in "iu":  # exact integers: nanoseconds need no float round trip
        if raw.size == 0 or int(raw.min()) < 0 or int(raw.max()) >= 2**63:
            return None
        whole = raw.astype(np.int64)
        times_by, divide_by = _TO_MS[epoch_unit(int(whole[0]) if first is None else first)]
        return whole * times_by if times_by > 1 else whole // divide_by
    if raw.dtype.kind == "O":
        try:
            stamps = pd.to_datetime(pd.Series(raw), utc=True, format="ISO8601")
        except (ValueError, TypeError):
            return None
        if stamps.isna().any():
            return None
        return np.asarray(stamps.dt.as_unit("ms").astype("int64"), dtype=np.int64)
    values = raw.astype(np.float64)
    if not np.all(np.isfinite(values)) or np.any(values < 0) or np.any(values >= _MAX_TIME):
        return None
    if np.any(values != np.floor(values)):
        return None
    times = values.astype(np.int64)
    times_by, divide_by = _TO_MS[epoch_unit(int(times[0]) if first is None else first)]
    return times * times_by if times_by > 1 else times // divide_by


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


def columns_problem(
    columns: Sequence[str], *, has_time: bool, time_names: Sequence[str]
) -> str | None:
    """What a table with ``columns`` (lower case) lacks: a time column or price columns."""
    missing = [n for n in PRICE_COLUMNS if n not in columns]
    if has_time and not missing:
        return None
    return f"lack {'a time column (' + '/'.join(time_names) + ')' if not has_time else missing}"


def _text_frame(path: Path, text: str) -> pd.DataFrame:
    """The six columns as text; the index is the file line number; blank lines dropped."""
    has_header, time_name, _ = _layout(path, text.encode("utf-8"))
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


def text_times(
    path: Path | str, frame: pd.DataFrame, time_name: str, *, iso: bool, unit: str = "line"
) -> IntArray:
    """Epoch ms of the text column ``time_name`` of ``frame`` (index: line or row numbers):
    ISO-8601 times when ``iso`` and the first is not a number, else epoch numbers."""
    if iso and not _is_number(str(frame[time_name].iloc[0])):
        stamps = pd.to_datetime(frame[time_name], utc=True, format="ISO8601", errors="coerce")
        _fail_rows(
            path, stamps.isna().to_numpy(), frame, f"{time_name} is not an ISO-8601 time", unit
        )
        return np.asarray(stamps.dt.as_unit("ms").astype("int64"), dtype=np.int64)
    return epoch_times(path, text_numbers(path, frame, time_name, unit), frame, unit)


def epoch_times(
    path: Path | str, values: FloatArray, frame: pd.DataFrame, unit: str = "line"
) -> IntArray:
    """Epoch ms of epoch numbers (s, ms or µs by magnitude), the first bad row named."""
    _fail_rows(
        path,
        ~np.isfinite(values) | (values < 0) | (values >= _MAX_TIME),
        frame,
        "open time is empty, negative or out of range",
        unit,
    )
    _fail_rows(path, values != np.floor(values), frame, "open time is not an integer", unit)
    converted = times_ms(values)
    assert converted is not None  # every value was checked above
    return converted


def _is_number(text: str) -> bool:
    """Whether the first time field is a number (epoch) rather than an ISO-8601 date-time."""
    try:
        float(text.strip())
    except ValueError:
        return False
    return True


def text_numbers(
    path: Path | str, frame: pd.DataFrame, column: str, unit: str = "line"
) -> FloatArray:
    """The text column ``column`` of ``frame`` as floats; an empty or non-numeric field is a
    :class:`DataError` naming its ``unit`` (line, row) by the frame's index."""
    text = frame[column].str.strip()
    _fail_rows(path, (text.isna() | (text == "")).to_numpy(), frame, f"{column} is empty", unit)
    values = pd.to_numeric(text, errors="coerce")
    _fail_rows(
        path, values.isna().to_numpy(), frame, f"{column} is not a number", unit, frame[column]
    )
    return values.to_numpy(dtype=np.float64)


def _fail_rows(
    path: Path | str,
    mask: npt.NDArray[np.bool_],
    frame: pd.DataFrame,
    what: str,
    unit: str = "line",
    show: pd.Series | None = None,
) -> None:
    if mask.any():
        row = int(np.flatnonzero(mask)[0])
        value = f": {show.iloc[row]!r}" if show is not None else ""
        raise DataError(f"{path}: {unit} {frame.index[row]}: {what}{value}")


def _first_problem(
    times: IntArray, prices: Sequence[FloatArray], *, spacing: bool = True
) -> tuple[int, str] | None:
    """(row, description) of the first invalid row, or None; the rules every source obeys.

    ``spacing=False`` leaves out the whole-file rule on the smallest step (for one chunk).
    """
    o, h, lo, c, v = prices
    steps = np.diff(times)
    checks: list[tuple[npt.NDArray[np.bool_], str]] = [
        (~np.isfinite(o + h + lo + c + v), "NaN or infinite value"),
        (h < lo, "high is below low"),
        ((o < lo) | (o > h) | (c < lo) | (c > h), "open/close outside [low, high]"),
        (lo <= 0.0, "non-positive price"),
        (v < 0.0, "negative volume"),
        (times % MINUTE_MS != 0, "open time is not on a whole minute"),
        # Report against the later row: that is the one out of place.
        (np.concatenate(([False], steps == 0)), "duplicated open time (same as the previous row)"),
        (
            np.concatenate(([False], steps < 0)),
            "open time earlier than the previous row (file not sorted)",
        ),
    ]
    for mask, what in checks:
        if mask.any():
            rows = np.flatnonzero(mask)
            more = f" (and {rows.size - 1} more)" if rows.size > 1 else ""
            return int(rows[0]), what + more
    if spacing and steps.size and int(steps.min()) != MINUTE_MS:
        return -1, _spacing_problem(int(steps.min()))
    return None


def _spacing_problem(smallest_step_ms: int) -> str:
    return (
        f"bars are at least {smallest_step_ms // 1000} s apart; barbus replays "
        "1-minute bars (strategies aggregate them to their own timeframe)"
    )


def validate(
    path: Path | str, times: IntArray, prices: Sequence[FloatArray], lines: IntArray, unit: str
) -> None:
    """Raise :class:`DataError` for the first row that breaks a rule every source obeys,
    named as ``unit`` ``lines[row]`` (file line, Parquet or DataFrame row)."""
    problem = _first_problem(times, prices)
    if problem is None:
        return
    row, what = problem
    where = f" {unit} {int(lines[row])}:" if row >= 0 else ""
    raise DataError(f"{path}:{where} {what}")


# -- chunked parsing (large files, for the cache) ---------------------------------------------


class ChunkProblemError(Exception):
    """What :func:`csv_chunks` found wrong, by 0-based data row (-1: not one row's fault).

    The caller decides the message: the exact file line from a one-shot parse when the file
    is small enough to parse again, else the data row.
    """

    def __init__(self, row: int, what: str) -> None:
        super().__init__(what)
        self.row = row
        self.what = what


_HEAD_BYTES = 65536


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
            head = stream.read(_HEAD_BYTES)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: corrupt gzip data: {exc}") from None
    return _csv_text(path, head)


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
    """The rules of :func:`_first_problem` applied chunk by chunk, across boundaries too."""

    def __init__(self, time_name: str) -> None:
        self.time_name = time_name
        self.rows = 0
        self._first: int | None = None  # the file's first raw open time: its unit
        self._previous: int | None = None
        self._smallest_step: int | None = None

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
        found = _first_problem(times, prices, spacing=False)
        if found is not None:
            raise ChunkProblemError(self.rows + found[0], found[1])
        if self._previous is not None:
            step = int(times[0]) - self._previous
            if step <= 0:
                what = "duplicated open time (same as the previous row)"
                if step < 0:
                    what = "open time earlier than the previous row (file not sorted)"
                raise ChunkProblemError(self.rows, what)
            self._step(step)
        if times.size > 1:
            self._step(int(np.diff(times).min()))
        self.rows += times.size
        self._previous = int(times[-1])
        return times, prices

    def _step(self, step: int) -> None:
        if self._smallest_step is None or step < self._smallest_step:
            self._smallest_step = step

    def finish(self, path: Path) -> None:
        """The whole-file rules: at least one row, 1-minute bars."""
        if self.rows == 0:
            raise DataError(f"{path}: no data rows")
        if self._smallest_step is not None and self._smallest_step != MINUTE_MS:
            raise ChunkProblemError(-1, _spacing_problem(self._smallest_step))


def csv_chunks(path: Path, chunk_bytes: int) -> Iterator[tuple[IntArray, list[FloatArray]]]:
    """Validated (open times, [open, high, low, close, volume]) of a CSV, block by block.

    Every rule of :func:`load_bars` is applied, across block boundaries too. A problem is a
    :class:`ChunkProblemError` (rows may already have been yielded: the caller discards them);
    an empty, binary or unreadable file a :class:`DataError`.
    """
    problem = regular_file_problem(path)
    if problem is not None:
        raise DataError(problem)
    has_header, time_name, width = _layout(path, _head(path))
    names = [time_name, *PRICE_COLUMNS]
    everything = [*names, *(f"extra{i}" for i in range(6, width))]
    types: dict[str, pa.DataType] = {name: pa.float64() for name in PRICE_COLUMNS}
    if time_name != "timestamp":
        types[time_name] = pa.float64()
    convert = pa_csv.ConvertOptions(column_types=types, include_columns=names)
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
    problem = regular_file_problem(path)
    if problem is not None:
        raise DataError(problem)
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
