"""The rules every bar source obeys, and the parsing of open times and numbers they check.

Whichever way bars arrive (a whole file, a file in chunks, a DataFrame), a bar is valid by the
same rules and a bad one is named in the same words: :func:`first_problem` holds the rules,
:func:`validate` names the first row that breaks one, and the ``text_*`` and ``epoch_*``
parsers turn text or epoch numbers of any unit into epoch milliseconds, naming the first field
that is not one. Its own module because the loader, the chunked reader and the DataFrame
ingest all check through it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from barbus.daemon.core.errors import DataError
from barbus.daemon.core.events import MINUTE_MS
from barbus.daemon.core.series import FloatArray, IntArray

__all__ = [
    "epoch_times",
    "epoch_unit",
    "first_problem",
    "text_numbers",
    "text_times",
    "times_ms",
    "validate",
]

_MAX_TIME = 2.0**53  # beyond this a float64 time is no longer an exact integer


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


def first_problem(times: IntArray, prices: Sequence[FloatArray]) -> tuple[int, str] | None:
    """(row, description) of the first invalid row, or None; the rules every source obeys.

    The whole-series rule, one bar interval, is :func:`replay.intervals.bar_interval`'s.
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
    return None


def validate(
    path: Path | str, times: IntArray, prices: Sequence[FloatArray], lines: IntArray, unit: str
) -> None:
    """Raise :class:`DataError` for the first row that breaks a rule every source obeys,
    named as ``unit`` ``lines[row]`` (file line, Parquet or DataFrame row)."""
    problem = first_problem(times, prices)
    if problem is None:
        return
    row, what = problem
    where = f" {unit} {int(lines[row])}:" if row >= 0 else ""
    raise DataError(f"{path}:{where} {what}")
