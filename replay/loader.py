"""Read 1-minute kline files into validated numpy columns (pandas here, at ingest only).

Two layouts are accepted, told apart by the first line:

* barbus/freqtrade export: a header ``open_time_ms,open,high,low,close,volume`` (``open_time``
  is accepted as the first column name too); extra columns are ignored;
* Binance kline CSV (data.binance.vision): no header, 12 columns, open time first. Open times in
  microseconds (Binance's spot files since 2025) are converted to milliseconds.

Every check names the offending line of the file, so a user can open it and look. Gaps (missing
minutes) are legal in real data: they are counted and reported, never filled.
"""

from __future__ import annotations

import gzip
import io
import re
import zlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from daemon.errors import DataError
from daemon.events import MINUTE_MS, format_time_ms

__all__ = ["BUNDLED_SAMPLE", "BarSeries", "GapReport", "bundled_data_path", "load_bars"]

BUNDLED_SAMPLE = "BTCUSDT_1m_2025-05-20_2025-08-18.csv.gz"
HEADER = ("open_time_ms", "open", "high", "low", "close", "volume")
_SYMBOL_IN_NAME = re.compile(r"^([A-Z0-9]{4,20})[_-]")
_MICROSECONDS_THRESHOLD = 10**14  # epoch ms reach 1e14 only in the year 5138

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def bundled_data_path(name: str = BUNDLED_SAMPLE) -> Path:
    """Path of a real Binance sample shipped inside the package (``replay/data``)."""
    path = Path(str(resources.files("replay") / "data" / name))
    if not path.is_file():
        raise DataError(f"bundled data file {name!r} is missing from the installation ({path})")
    return path


@dataclass(frozen=True, slots=True)
class GapReport:
    """Missing minutes in a series: how many holes, the largest, and how many minutes in all."""

    count: int
    largest_minutes: int
    missing_minutes: int
    largest_after_ms: int | None  # open time of the bar before the largest gap

    def describe(self) -> str:
        if self.count == 0:
            return "no gaps"
        where = format_time_ms(self.largest_after_ms) if self.largest_after_ms is not None else "?"
        return (
            f"{self.count} gap(s), {self.missing_minutes} missing minute(s), "
            f"largest {self.largest_minutes} min after {where}"
        )


@dataclass(frozen=True, slots=True)
class BarSeries:
    """Columns of validated 1-minute bars of one symbol, strictly rising in time."""

    symbol: str
    interval: str
    source: str
    open_time_ms: IntArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray

    def __len__(self) -> int:
        return len(self.open_time_ms)

    def between(self, start_ms: int | None, end_ms: int | None) -> BarSeries:
        """Bars with ``start_ms <= open_time_ms < end_ms`` (bounds optional); views, not copies."""
        times = self.open_time_ms
        lo = 0 if start_ms is None else int(np.searchsorted(times, start_ms, side="left"))
        hi = len(times) if end_ms is None else int(np.searchsorted(times, end_ms, side="left"))
        return BarSeries(
            self.symbol,
            self.interval,
            self.source,
            times[lo:hi],
            self.open[lo:hi],
            self.high[lo:hi],
            self.low[lo:hi],
            self.close[lo:hi],
            self.volume[lo:hi],
        )

    def gaps(self) -> GapReport:
        """Count the holes between consecutive bars."""
        if len(self) < 2:
            return GapReport(0, 0, 0, None)
        steps = np.diff(self.open_time_ms)
        holes = np.flatnonzero(steps > MINUTE_MS)
        if holes.size == 0:
            return GapReport(0, 0, 0, None)
        missing = steps[holes] // MINUTE_MS - 1
        worst = int(np.argmax(missing))
        return GapReport(
            count=int(holes.size),
            largest_minutes=int(missing[worst]),
            missing_minutes=int(missing.sum()),
            largest_after_ms=int(self.open_time_ms[holes[worst]]),
        )

    def zero_volume_bars(self) -> int:
        """Minutes present but without trades (e.g. an exchange halt)."""
        return int(np.count_nonzero(self.volume == 0.0))


def _open_text(path: Path) -> io.TextIOBase:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such data file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not a data file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{path}: corrupt gzip data: {exc}") from None
    try:
        return io.StringIO(raw.decode("utf-8-sig"))  # -sig: tolerate a byte-order mark
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a UTF-8 text CSV file") from None


def _read_frame(path: Path, text: io.TextIOBase) -> pd.DataFrame:
    """Return the six columns (floats, or strings if any field is not a number).

    The frame's index is the 1-based line number in the file; blank lines are dropped.
    """
    first = text.readline().strip()
    if not first:
        raise DataError(f"{path}: file is empty")
    fields = [f.strip().strip('"').lower() for f in first.split(",")]
    text.seek(0)
    if fields[0].lstrip("-").isdigit():
        if len(fields) < 6:
            raise DataError(
                f"{path}: line 1 has {len(fields)} columns; a Binance kline row has at least 6 "
                "(open time, open, high, low, close, volume)"
            )
        return _parse(text, header=None, first_line=1)
    if fields[0] == "open_time":
        fields[0] = "open_time_ms"
    if tuple(fields[:6]) != HEADER:
        raise DataError(
            f"{path}: unexpected header {first!r}; expected {','.join(HEADER)} "
            "(or a headerless Binance kline CSV)"
        )
    return _parse(text, header=0, first_line=2)


def _parse(text: io.TextIOBase, header: int | None, first_line: int) -> pd.DataFrame:
    """Parse as float64 (fast); on a non-numeric field re-read as text so the row can be named."""
    try:
        frame = pd.read_csv(
            text,
            header=header,
            usecols=range(6),
            names=HEADER,
            dtype=np.float64,
            skip_blank_lines=False,  # keep row i on file line i + first_line
        )
    except ValueError:
        text.seek(0)
        frame = pd.read_csv(
            text, header=header, usecols=range(6), names=HEADER, dtype=str, skip_blank_lines=False
        )
    frame.index = pd.RangeIndex(first_line, first_line + len(frame))
    return frame.dropna(how="all")


def _numeric(path: Path, frame: pd.DataFrame, column: str) -> FloatArray:
    if frame[column].dtype == np.float64:
        return frame[column].to_numpy()
    values = pd.to_numeric(frame[column].str.strip(), errors="coerce")
    bad = values.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{path}: line {frame.index[row]}: {column} is not a number: "
            f"{frame[column].iloc[row]!r}"
        )
    return values.to_numpy(dtype=np.float64)


def _fail_at(path: Path, mask: npt.NDArray[np.bool_], lines: IntArray, what: str) -> None:
    if mask.any():
        rows = np.flatnonzero(mask)
        more = f" (and {rows.size - 1} more)" if rows.size > 1 else ""
        raise DataError(f"{path}: line {int(lines[rows[0]])}: {what}{more}")


def load_bars(path: Path, symbol: str | None = None) -> BarSeries:
    """Load and validate a 1-minute kline CSV / CSV.gz; raise :class:`DataError` on bad input.

    ``symbol`` defaults to the file name's prefix (``BTCUSDT_1m_...csv.gz`` -> ``BTCUSDT``).
    """
    path = Path(path)
    text = _open_text(path)
    if symbol is None:
        match = _SYMBOL_IN_NAME.match(path.name)
        if match is None:
            raise DataError(f"{path}: cannot tell the symbol from the file name; pass --symbol")
        symbol = match.group(1)
    try:
        frame = _read_frame(path, text)
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: malformed CSV: {exc}") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: no data rows") from None
    if frame.empty:
        raise DataError(f"{path}: no data rows")

    lines = frame.index.to_numpy(dtype=np.int64)
    times_f = _numeric(path, frame, "open_time_ms")
    _fail_at(
        path,
        ~np.isfinite(times_f) | (times_f < 0) | (times_f >= 2.0**53),
        lines,
        "open time is empty, negative or out of range",
    )
    _fail_at(path, times_f != np.floor(times_f), lines, "open time is not an integer")
    times = times_f.astype(np.int64)
    if times[0] >= _MICROSECONDS_THRESHOLD:
        times //= 1000
    o, h, lo, c, v = (_numeric(path, frame, col) for col in HEADER[1:])

    _fail_at(path, ~np.isfinite(o + h + lo + c + v), lines, "NaN or infinite value")
    _fail_at(path, h < lo, lines, "high is below low")
    _fail_at(path, (o < lo) | (o > h) | (c < lo) | (c > h), lines, "open/close outside [low, high]")
    _fail_at(path, lo <= 0.0, lines, "non-positive price")
    _fail_at(path, v < 0.0, lines, "negative volume")
    _fail_at(path, times % MINUTE_MS != 0, lines, "open time is not on a whole minute")
    steps = np.diff(times)
    # Report against the later row: that is the one out of place.
    shifted = np.concatenate(([False], steps == 0))
    _fail_at(path, shifted, lines, "duplicated open time (same as the previous row)")
    shifted = np.concatenate(([False], steps < 0))
    _fail_at(path, shifted, lines, "open time earlier than the previous row (file not sorted)")
    if steps.size and int(steps.min()) != MINUTE_MS:
        raise DataError(
            f"{path}: bars are at least {int(steps.min()) // 1000} s apart; barbus replays "
            "1-minute bars (strategies aggregate them to their own timeframe)"
        )
    return BarSeries(symbol, "1m", str(path), times, o, h, lo, c, v)
