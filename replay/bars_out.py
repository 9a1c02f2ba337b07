"""Write 1-minute bars as a file that :func:`~barbus.replay.loader.load_bars` reads back exactly.

The inverse of the loader, for whatever hands bars to a replay or a simulated exchange as a file:
parity's export of a daemon's recorded bars, the Python API's DataFrames for batch workers, the
benchmarks' synthetic data, tests. It is apart from the loader because writing needs none of the
loader's parsing and validation (and the loader none of this).

CSV (``.csv``, gzip-compressed for ``.csv.gz``) has the barbus export header and every float as
its ``repr``, the shortest text that parses back to the same float; Parquet (``.parquet``) has
the same columns. A file is written under a temporary name and then renamed, so nobody reads
half of one.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack
from itertools import islice
from operator import attrgetter
from pathlib import Path
from typing import cast

import numpy as np
import numpy.typing as npt

from barbus.daemon.core.data_folder import BAR_CSV_ROW
from barbus.daemon.core.errors import ConfigError
from barbus.daemon.core.events import Bar
from barbus.daemon.core.series import BarSeries

__all__ = ["BarColumns", "write_bars"]

BarColumns = tuple[npt.ArrayLike, ...]
"""Six columns: open times (epoch ms), open, high, low, close, volume (as
:meth:`BarSeries.columns` gives them)."""
Bars = BarSeries | BarColumns | Iterable[Bar]

_NAMES = ("open_time_ms", "open", "high", "low", "close", "volume")
_ROW = BAR_CSV_ROW  # the data folder's rows: the same text for the same bars
_FIELDS = attrgetter(*_NAMES)
_BLOCK_ROWS = 65_536  # rows formatted per write: bounded memory, few calls


def write_bars(path: Path, bars: Bars) -> Path:
    """Write ``bars`` (a series, its six columns, or bars of one symbol in order) to ``path``,
    as CSV, gzipped CSV or Parquet by its suffix; its folder is made if need be. Returns
    ``path``; :func:`~barbus.replay.loader.load_bars` of it gives the same bars, bit for bit."""
    path = Path(path)
    name = path.name.lower()
    if not name.endswith((".csv", ".csv.gz", ".parquet")):
        raise ConfigError(f"{path}: bars are written as .csv, .csv.gz or .parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.partial")
    try:
        if name.endswith(".parquet"):
            _write_parquet(partial, bars)
        else:
            with ExitStack() as stack:
                handle: io.BufferedIOBase = stack.enter_context(partial.open("wb"))
                if name.endswith(".gz"):  # no time stamp or name inside: same bars, same bytes
                    handle = stack.enter_context(
                        gzip.GzipFile("", "wb", compresslevel=6, fileobj=handle, mtime=0)
                    )
                handle.write((",".join(_NAMES) + "\n").encode())
                for block in _row_blocks(bars):
                    handle.write("".join(block).encode())
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def _columns_of(bars: Bars) -> Sequence[npt.ArrayLike] | None:
    """The six columns of a series or of a columns tuple; None for bars."""
    if isinstance(bars, BarSeries):
        return bars.columns()
    if isinstance(bars, tuple) and bars and not isinstance(bars[0], Bar):
        if len(bars) != len(_NAMES):
            raise ValueError(f"bars as columns are {len(_NAMES)} columns, got {len(bars)}")
        return bars
    return None


def _typed(
    columns: Sequence[npt.ArrayLike],
) -> list[npt.NDArray[np.int64] | npt.NDArray[np.float64]]:
    """int64 open times and float64 prices, all of one length."""
    times, *prices = columns
    typed: list[npt.NDArray[np.int64] | npt.NDArray[np.float64]] = [
        np.asarray(times, dtype=np.int64),
        *(np.asarray(p, dtype=np.float64) for p in prices),
    ]
    if len({len(column) for column in typed}) > 1:
        raise ValueError(f"bar columns of different lengths {[len(c) for c in typed]}")
    return typed


def _row_blocks(bars: Bars) -> Iterator[list[str]]:
    """CSV rows, a block at a time: the open time as an integer, the prices as ``repr``."""
    columns = _columns_of(bars)
    rows: Iterator[str]
    if columns is None:
        rows = (_ROW(*_FIELDS(bar)) for bar in cast(Iterable[Bar], bars))
    else:
        rows = map(_ROW, *(column.tolist() for column in _typed(columns)))
    while block := list(islice(rows, _BLOCK_ROWS)):
        yield block


def _write_parquet(path: Path, bars: Bars) -> None:
    import pyarrow as pa  # only Parquet needs it: writing CSV stays light to import
    import pyarrow.parquet as pq

    columns = _columns_of(bars)
    if columns is None:
        rows = map(_FIELDS, cast(Iterable[Bar], bars))
        columns = list(zip(*rows, strict=True)) or [()] * len(_NAMES)
    pq.write_table(pa.table(dict(zip(_NAMES, _typed(columns), strict=True))), path)
