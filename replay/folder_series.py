"""``--data SYMBOL``: one symbol's bars from the data folder, read across its month files.

A data value that names no file but reads as a symbol (``BTCUSDT``, or ``BTCUSDT:1h`` for one
interval) stands for that symbol's series folder in the data folder
(:mod:`barbus.daemon.core.data_folder`, written by ``barbus data download``). A series folder
is read as one series: the month files the period touches, each through the cache when there
is one (a month is parsed once; ``barbus data update`` re-parses only the month it extended),
joined in time order. A period inside one month maps that month's entry with no copy; a longer
one is joined into memory once per load.

Its own module, importing neither pandas nor pyarrow, because every loader of bars (the
replay, the batch driver and its workers, the sim exchange) goes through :func:`load_data`.
"""

from __future__ import annotations

import itertools
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from barbus.daemon.core.data_folder import DataFolder, default_data_dir, month_span
from barbus.daemon.core.errors import DataError
from barbus.daemon.core.events import format_time_ms
from barbus.daemon.core.series import BarSeries, symbol_from_name

if TYPE_CHECKING:
    from barbus.replay.cache import BarCache

__all__ = ["SYMBOL_REF", "data_label", "load_data", "resolve_data", "symbol_of"]

# A symbol, optionally ":interval". No dot and no slash: nothing a file name would need.
SYMBOL_REF = re.compile(r"([A-Za-z0-9]{2,30})(?::([0-9]{1,2}[mhdwM]))?")


def resolve_data(
    value: str | os.PathLike[str], data_dir: Path | None = None, base: Path | None = None
) -> Path:
    """The path a ``--data`` value stands for: the file (from ``base`` when relative), else,
    when it reads as a symbol, that symbol's series folder in the data folder.

    ``SYMBOL`` alone takes the 1-minute series when there is one, else the only one there is.
    """
    text = os.fspath(value)
    path = Path(text) if base is None else base / text
    match = SYMBOL_REF.fullmatch(text)
    if path.exists() or match is None:
        return path
    symbol, interval = match.group(1).upper(), match.group(2)
    folder = DataFolder(data_dir if data_dir is not None else default_data_dir())
    intervals = [i for s, i in folder.series() if s == symbol]
    if not intervals:
        raise DataError(
            f"{text}: no such data file, and no {symbol} in the data folder {folder.root} "
            f"(get it with: barbus data download {symbol} --start DATE)"
        )
    if interval is None:
        if "1m" in intervals or len(intervals) == 1:
            interval = "1m" if "1m" in intervals else intervals[0]
        else:
            raise DataError(
                f"{text}: the data folder holds {symbol} at {', '.join(intervals)}; "
                f"say which, e.g. --data {symbol}:{intervals[0]}"
            )
    elif interval not in intervals:
        raise DataError(
            f"{text}: the data folder {folder.root} holds {symbol} at {', '.join(intervals)} "
            f"only, not {interval}"
        )
    return folder.series_dir(symbol, interval)


def symbol_of(path: Path) -> str:
    """The symbol of a data path: a series folder's (``<root>/SYMBOL/1m``), else the file name's."""
    return path.parent.name if path.is_dir() else symbol_from_name(path)


def data_label(path: Path | str) -> str:
    """How a result table names its data: a file's name, a series folder's ``SYMBOL/interval``."""
    path = Path(path)
    return f"{path.parent.name}/{path.name}" if path.is_dir() else path.name


def load_data(
    path: Path,
    symbol: str | None = None,
    cache: BarCache | None = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> BarSeries:
    """The bars of ``path``: a file (through ``cache``, else parsed), or a series folder's
    months that ``[start_ms, end_ms)`` touches (all of them without a period). The result may
    hold bars outside the period: the caller cuts it, as it does a file's."""
    path = Path(path)
    if not path.is_dir():
        return _load_file(path, symbol, cache)
    months = _month_files(path)
    touched = [p for p, (lo, hi) in months if _overlaps(lo, hi, start_ms, end_ms)]
    # No month in the period: load them all, so the empty-period error says where data is.
    chosen = touched or [p for p, _ in months]
    symbol = symbol or symbol_of(path)
    parts = [_load_file(p, symbol, cache) for p in chosen]
    for before, after in itertools.pairwise(parts):
        if after.open_time_ms[0] <= before.open_time_ms[-1]:
            raise DataError(
                f"{after.source}: starts at {format_time_ms(int(after.open_time_ms[0]))}, not "
                f"after the end of {before.source} ({format_time_ms(int(before.open_time_ms[-1]))})"
            )
    if len(parts) == 1:
        columns = parts[0].columns()  # one month: its mapped columns, no copy
    else:
        columns = tuple(  # type: ignore[assignment]
            np.concatenate(column) for column in zip(*(p.columns() for p in parts), strict=True)
        )
    return BarSeries(symbol, parts[0].interval, str(path), *columns)


def _load_file(path: Path, symbol: str | None, cache: BarCache | None) -> BarSeries:
    if cache is not None:
        return cache.load(path, symbol)
    # Late import: a worker that only maps cached data never loads pandas or pyarrow.
    from barbus.replay.loader import load_bars

    return load_bars(path, symbol)


def _month_files(directory: Path) -> list[tuple[Path, tuple[int, int]]]:
    """The series folder's month files in order, each with its month's [start, end) in ms."""
    months = []
    folder = DataFolder(directory.parent.parent)
    for path in folder.month_files(directory.parent.name, directory.name):
        try:  # the glob's ????-?? may still be no month (2025-13)
            months.append((path, month_span(path.stem[-7:])))
        except ValueError:
            continue
    if not months:
        raise DataError(f"{directory}: no month files (SYMBOL-interval-YYYY-MM.csv) in it")
    return months


def _overlaps(lo: int, hi: int, start_ms: int | None, end_ms: int | None) -> bool:
    return (end_ms is None or lo < end_ms) and (start_ms is None or hi > start_ms)
