"""A pandas DataFrame of bars (1-minute, or one interval up to 1d) as a validated
:class:`~daemon.core.series.BarSeries`.

The Python API's ingest (notebooks hold data as DataFrames, not files). Every rule and message is
the file loader's (:mod:`replay.validate`): rows are named ``row N``, the position (``df.iloc[N]``).

Open times come from a DatetimeIndex, else the first column named (any case) ``open_time_ms``,
``open_time``, ``timestamp``, ``time``, ``datetime`` or ``date``, else an index of such a name:

- datetimes of any unit; naive ones are UTC, aware ones are converted to UTC. A datetime before
  1980 is refused as what it most likely is: epoch numbers that ``pd.to_datetime`` read as
  nanoseconds (its default unit), which is how microsecond stamps turn into January 1970;
- epoch numbers in seconds, milliseconds, microseconds or (integers) nanoseconds, told apart by
  magnitude; ``time_unit`` may declare the unit, and a declaration the magnitude contradicts is
  an error naming both (never a silent 1970 or year 50000);
- text: ISO-8601 date-times (UTC unless an offset is given) or epoch numbers.
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import pandas as pd

from barbus.daemon.core.errors import ConfigError, DataError
from barbus.daemon.core.events import format_time_ms
from barbus.daemon.core.series import BarSeries, FloatArray, IntArray
from barbus.replay.intervals import bar_interval, step_facts
from barbus.replay.layout import PRICE_COLUMNS, columns_problem
from barbus.replay.validate import (
    epoch_times,
    epoch_unit,
    text_numbers,
    text_times,
    times_ms,
    validate,
)

__all__ = ["FRAME_TIME_NAMES", "TIME_UNITS", "series_from_frame"]

FRAME_TIME_NAMES = ("open_time_ms", "open_time", "timestamp", "time", "datetime", "date")
TIME_UNITS = ("s", "ms", "us", "ns")
_EARLIEST_MS = 315_532_800_000  # 1980-01-01T00:00:00Z: earlier datetimes are unit mix-ups
_ROW = "row"


def series_from_frame(
    frame: pd.DataFrame,
    symbol: str | None = None,
    *,
    time_unit: str | None = None,
    source: str = "DataFrame",
) -> BarSeries:
    """Validate ``frame`` (open time + ``open, high, low, close, volume``) into a series.

    ``symbol`` defaults to the value of a ``symbol`` column holding one value. Problems are a
    :class:`DataError` naming ``source`` and the first bad row.
    """
    if not isinstance(frame, pd.DataFrame):
        raise ConfigError(f"expected a pandas DataFrame, got {type(frame).__name__}")
    if time_unit is not None and time_unit not in TIME_UNITS:
        raise ConfigError(f"time_unit must be one of {', '.join(TIME_UNITS)}, got {time_unit!r}")
    used = {*FRAME_TIME_NAMES, *PRICE_COLUMNS, "symbol"}
    by_lower: dict[str, Hashable] = {}
    for column in frame.columns:
        lower = str(column).lower()
        if lower in by_lower and lower in used:  # other columns are ignored, clash or not
            raise DataError(f"{source}: columns {by_lower[lower]!r} and {column!r} clash")
        by_lower.setdefault(lower, column)
    time_name, stamps = _time_source(frame, by_lower)
    lacking = columns_problem(
        list(by_lower),
        has_time=stamps is not None,
        time_names=(*FRAME_TIME_NAMES, "a DatetimeIndex"),
    )
    if lacking is not None:
        raise DataError(f"{source}: columns {list(frame.columns)} {lacking}")
    assert stamps is not None  # columns_problem checked it
    if len(frame) == 0:
        raise DataError(f"{source}: no data rows")
    times = _times(source, stamps.reset_index(drop=True), time_name, time_unit)
    prices = [
        _prices(source, frame[by_lower[name]].reset_index(drop=True), name)
        for name in PRICE_COLUMNS
    ]
    validate(source, times, prices, np.arange(len(times), dtype=np.int64), _ROW)
    interval = bar_interval(source, int(times[0]), step_facts(times), None)
    return BarSeries(_symbol(source, frame, by_lower, symbol), interval, source, times, *prices)


def _time_source(
    frame: pd.DataFrame, by_lower: dict[str, Hashable]
) -> tuple[str, pd.Series | None]:
    """(name, values) of the open times: a DatetimeIndex, a time column, a time-named index."""
    if isinstance(frame.index, pd.DatetimeIndex):
        return str(frame.index.name or "index"), frame.index.to_series()
    for name in FRAME_TIME_NAMES:
        if name in by_lower:
            return name, frame[by_lower[name]]
    if str(frame.index.name).lower() in FRAME_TIME_NAMES:
        return str(frame.index.name), frame.index.to_series()
    return "", None


def _times(source: str, values: pd.Series, name: str, time_unit: str | None) -> IntArray:
    """Epoch ms of the open times, by their dtype."""
    dtype = values.dtype
    if isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(dtype):
        if time_unit is not None:
            raise ConfigError(f"time_unit={time_unit!r} is for epoch numbers; {name} is {dtype}")
        return _datetimes_ms(source, values)
    if pd.api.types.is_bool_dtype(dtype) or not (
        pd.api.types.is_numeric_dtype(dtype)
        or pd.api.types.is_object_dtype(dtype)
        or pd.api.types.is_string_dtype(dtype)
    ):
        raise DataError(f"{source}: time column {name} is {dtype}, not a time or epoch number")
    rows = pd.DataFrame(index=values.index)
    if not pd.api.types.is_numeric_dtype(dtype):  # text: ISO-8601 or epoch numbers
        rows[name] = values.astype(str)
        return text_times(source, rows, name, iso=True, unit=_ROW)
    bad = values.isna().to_numpy() | (values.to_numpy(dtype=np.float64, na_value=-1.0) < 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"{source}: row {row}: open time is empty, negative or out of range")
    if pd.api.types.is_integer_dtype(dtype):  # exact integers, nanoseconds included
        raw = values.to_numpy()
        if int(raw.max()) >= 2**63:
            raise DataError(f"{source}: time column {name} holds numbers beyond int64")
        whole = raw.astype(np.int64)
        _check_unit(source, int(whole[0]), time_unit)
        converted = times_ms(whole)
        assert converted is not None  # non-negative int64, checked above
        return converted
    floats = values.to_numpy(dtype=np.float64)
    times = epoch_times(source, floats, rows, _ROW)
    _check_unit(source, int(floats[0]), time_unit)
    return times


def _check_unit(source: str, first: int, declared: str | None) -> None:
    """Refuse a declared epoch unit that the first open time's magnitude contradicts."""
    found = epoch_unit(first)
    if declared is None or declared == found:
        return
    scale = {"s": 1000.0, "ms": 1.0, "us": 1e-3, "ns": 1e-6}
    try:
        as_declared = format_time_ms(int(first * scale[declared]))
    except (OverflowError, ValueError, OSError):
        as_declared = "out of range"
    raise DataError(
        f"{source}: time_unit={declared!r} but the first open time {first} looks like epoch "
        f"{found} ({format_time_ms(int(first * scale[found]))}); read as {declared} it would "
        f"be {as_declared}"
    )


def _datetimes_ms(source: str, values: pd.Series) -> IntArray:
    """Epoch ms of datetimes (naive = UTC), refusing NaT, sub-millisecond and pre-1980 ones."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    if values.isna().any():
        row = int(np.flatnonzero(values.isna().to_numpy())[0])
        raise DataError(f"{source}: row {row}: open time is empty (NaT)")
    native = values.to_numpy()
    ms = native.astype("datetime64[ms]")
    times: IntArray = ms.astype(np.int64)
    early = times < _EARLIEST_MS
    if early.any():
        row = int(np.flatnonzero(early)[0])
        as_ns = int(native[row : row + 1].astype("datetime64[ns]").astype(np.int64)[0])
        unit = epoch_unit(max(as_ns, 0))
        raise DataError(
            f"{source}: row {row}: open time {format_time_ms(int(times[row]))} is before 1980: "
            f"it looks like epoch {unit} read as nanoseconds (pandas' default unit); convert "
            f"with pd.to_datetime(values, unit={unit!r}) or pass the numbers themselves"
        )
    ragged = ms != native  # below a millisecond: not on a whole minute, whatever ms says
    if ragged.any():
        row = int(np.flatnonzero(ragged)[0])
        raise DataError(f"{source}: row {row}: open time is not on a whole minute")
    return times


def _prices(source: str, values: pd.Series, name: str) -> FloatArray:
    """A price or volume column as floats; text is parsed as the loader parses a CSV field."""
    dtype = values.dtype
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        return np.ascontiguousarray(values.to_numpy(dtype=np.float64, na_value=np.nan))
    if pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
        rows = pd.DataFrame({name: values.astype(str)}, index=values.index)
        return np.ascontiguousarray(text_numbers(source, rows, name, _ROW))
    raise DataError(f"{source}: column {name} is {dtype}, not numeric")


def _symbol(
    source: str, frame: pd.DataFrame, by_lower: dict[str, Hashable], symbol: str | None
) -> str:
    if symbol is not None:
        return symbol
    if "symbol" in by_lower:
        found = frame[by_lower["symbol"]].unique()
        if len(found) == 1:
            return str(found[0])
        shown = ", ".join(map(str, found[:5]))
        raise DataError(f"{source}: the symbol column holds several symbols ({shown}); pass one")
    raise DataError(f"{source}: cannot tell the symbol; pass symbol= (e.g. symbol='BTCUSDT')")
