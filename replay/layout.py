"""What a bar file looks like: its column names and how a CSV's first line tells its layout.

The one-shot loader (:mod:`replay.loader`) and the chunked reader (:mod:`replay.chunks`) both
read CSV text the same way: the same byte-order mark, emptiness and binary checks, the same
header or headerless-Binance detection and the same pyarrow column types. Its own module so
neither reader imports the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv

from barbus.daemon.core.errors import DataError

__all__ = [
    "HEADER",
    "HEAD_BYTES",
    "PRICE_COLUMNS",
    "TIME_NAMES",
    "columns_problem",
    "convert_options",
    "csv_layout",
    "csv_text",
    "decode",
]

PRICE_COLUMNS = ("open", "high", "low", "close", "volume")
HEADER = ("open_time_ms", *PRICE_COLUMNS)
TIME_NAMES = ("open_time_ms", "open_time", "timestamp")
HEAD_BYTES = 65536


def csv_text(path: Path, data: bytes) -> bytes:
    """``data`` without a UTF-8 byte-order mark, refused if empty or binary (a NUL in its
    first 64 KiB): the checks the one-shot and the chunked read share."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    if not data.strip():
        raise DataError(f"{path}: file is empty")
    if b"\x00" in data[:HEAD_BYTES]:
        raise DataError(f"{path}: not a UTF-8 text CSV file (binary data)")
    return data


def decode(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a UTF-8 text CSV file") from None


def csv_layout(path: Path, data: bytes) -> tuple[bool, str, int]:
    """(has a header, time column name, column count) of a CSV; DataError for a wrong header."""
    first = decode(path, data[: data.find(b"\n") if b"\n" in data else len(data)]).strip()
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


def convert_options(time_name: str) -> pa_csv.ConvertOptions:
    """pyarrow's conversion of the six bar columns: prices and epoch times as float64, an
    ISO-8601 ``timestamp`` left to pyarrow's inference; other columns are not read."""
    types: dict[str, pa.DataType] = {name: pa.float64() for name in PRICE_COLUMNS}
    if time_name != "timestamp":
        types[time_name] = pa.float64()
    return pa_csv.ConvertOptions(column_types=types, include_columns=[time_name, *PRICE_COLUMNS])


def columns_problem(
    columns: Sequence[str], *, has_time: bool, time_names: Sequence[str]
) -> str | None:
    """What a table with ``columns`` (lower case) lacks: a time column or price columns."""
    missing = [n for n in PRICE_COLUMNS if n not in columns]
    if has_time and not missing:
        return None
    return f"lack {'a time column (' + '/'.join(time_names) + ')' if not has_time else missing}"
