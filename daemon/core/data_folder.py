"""The data folder: downloaded bars by symbol, interval and month, in barbus's own CSV layout.

``$BARBUS_DATA_DIR``, else ``$XDG_DATA_HOME/barbus`` (``~/.local/share/barbus``). One file a
month, ``<root>/<SYMBOL>/<interval>/<SYMBOL>-<interval>-<YYYY-MM>.csv``, with the barbus export
header and every price as its ``repr`` (the loader reads it back bit for bit), and beside them
``fetched.json``: the time ranges already asked of the exchange. A re-run asks only for what is
missing from those ranges, so an exchange's own gaps (asked once, answered with no bars) are
never asked again, and an interrupted download resumes where its last written page ended.

In the kernel because both sides of the system read it: the replay (``--data SYMBOL``) and the
daemon (warm-up). Every file is written under a temporary name and renamed.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from barbus.daemon.core.errors import DataError
from barbus.daemon.core.events import Bar

__all__ = [
    "BAR_CSV_HEADER",
    "BAR_CSV_ROW",
    "DATA_DIR_ENV",
    "DataFolder",
    "Range",
    "bar_csv_row",
    "default_data_dir",
    "gaps_of",
    "missing_ranges",
    "month_span",
]

DATA_DIR_ENV = "BARBUS_DATA_DIR"
BAR_CSV_HEADER = "open_time_ms,open,high,low,close,volume\n"
# A row from the open time and the five prices: the time an integer, each float its repr.
BAR_CSV_ROW = "{},{!r},{!r},{!r},{!r},{!r}\n".format
_MANIFEST = "fetched.json"

Range = tuple[int, int]
"""Open times from the first to the last, both included (epoch ms)."""


def bar_csv_row(bar: Bar) -> str:
    """One bar as a barbus CSV row: the open time as an integer, the prices as ``repr``."""
    return BAR_CSV_ROW(bar.open_time_ms, bar.open, bar.high, bar.low, bar.close, bar.volume)


def default_data_dir() -> Path:
    """``$BARBUS_DATA_DIR``, else the XDG data home's ``barbus`` folder."""
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).expanduser()
    home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(home).expanduser() / "barbus"


def month_of(open_time_ms: int) -> str:
    """``YYYY-MM`` of a UTC time."""
    return datetime.fromtimestamp(open_time_ms / 1000, tz=UTC).strftime("%Y-%m")


def month_span(month: str) -> tuple[int, int]:
    """``[start, end)`` of a ``YYYY-MM`` month in UTC epoch ms (the next month's start as end)."""
    start = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
    end = start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def gaps_of(times: Sequence[int], step_ms: int) -> tuple[int, int]:
    """(holes, bars missing in the largest) of rising open times on a ``step_ms`` grid."""
    holes = [(b - a) // step_ms - 1 for a, b in itertools.pairwise(times) if b - a > step_ms]
    return len(holes), max(holes, default=0)


def merge_ranges(ranges: Iterable[Range], step_ms: int) -> list[Range]:
    """``ranges`` sorted and joined where they overlap or touch (one step apart)."""
    merged: list[list[int]] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + step_ms:
            merged[-1][1] = max(merged[-1][1], last)
        else:
            merged.append([first, last])
    return [(first, last) for first, last in merged]


def missing_ranges(wanted: Range, have: Sequence[Range], step_ms: int) -> list[Range]:
    """The parts of ``wanted`` that no range of ``have`` covers, on the ``step_ms`` grid."""
    first, last = wanted
    out: list[Range] = []
    cursor = first
    for lo, hi in merge_ranges(have, step_ms):
        if hi < cursor:
            continue
        if lo > last:
            break
        if lo > cursor:
            out.append((cursor, min(lo - step_ms, last)))
        cursor = max(cursor, hi + step_ms)
        if cursor > last:
            break
    if cursor <= last:
        out.append((cursor, last))
    return out


@dataclass(frozen=True)
class DataFolder:
    """One data folder (``root``); every method takes the symbol and the interval."""

    root: Path

    def series_dir(self, symbol: str, interval: str) -> Path:
        return self.root / symbol / interval

    def month_path(self, symbol: str, interval: str, month: str) -> Path:
        return self.series_dir(symbol, interval) / f"{symbol}-{interval}-{month}.csv"

    def month_files(self, symbol: str, interval: str) -> list[Path]:
        """The month files of one series, oldest first."""
        folder = self.series_dir(symbol, interval)
        return sorted(folder.glob(f"{symbol}-{interval}-????-??.csv")) if folder.is_dir() else []

    def series(self) -> list[tuple[str, str]]:
        """Every (symbol, interval) that has a manifest or a month file, sorted."""
        if not self.root.is_dir():
            return []
        found = []
        for symbol_dir in sorted(p for p in self.root.iterdir() if p.is_dir()):
            for interval_dir in sorted(p for p in symbol_dir.iterdir() if p.is_dir()):
                symbol, interval = symbol_dir.name, interval_dir.name
                if (interval_dir / _MANIFEST).is_file() or self.month_files(symbol, interval):
                    found.append((symbol, interval))
        return found

    # -- what was asked of the exchange ---------------------------------------------------

    def fetched(self, symbol: str, interval: str) -> list[Range]:
        """The ranges already downloaded (an unreadable manifest is one clear error)."""
        path = self.series_dir(symbol, interval) / _MANIFEST
        if not path.is_file():
            return []
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return [(int(lo), int(hi)) for lo, hi in data["fetched"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataError(
                f"{path}: not a data folder manifest ({exc}); delete it to download again"
            ) from None

    def add_fetched(self, symbol: str, interval: str, done: Range, step_ms: int) -> None:
        ranges = merge_ranges([*self.fetched(symbol, interval), done], step_ms)
        path = self.series_dir(symbol, interval) / _MANIFEST
        _write_atomic(path, json.dumps({"fetched": ranges}) + "\n")

    # -- bars --------------------------------------------------------------------------------

    def month_rows(self, path: Path) -> list[str]:
        """The data rows of one month file, in file order (its header checked)."""
        with path.open(encoding="utf-8") as handle:
            header = handle.readline()
            if header != BAR_CSV_HEADER:
                raise DataError(f"{path}: not a barbus data folder file (header {header!r})")
            return [line for line in handle if line.strip()]

    def month_times(self, path: Path) -> list[int]:
        """The open times of one month file, in file order."""
        return [int(line.partition(",")[0]) for line in self.month_rows(path)]

    def open_times(self, symbol: str, interval: str) -> list[int]:
        """The open times of one series, every month file in order (for listing and gaps)."""
        return [t for path in self.month_files(symbol, interval) for t in self.month_times(path)]

    def tail_bars(self, symbol: str, interval: str, count: int) -> list[Bar]:
        """The newest ``count`` stored bars of a series (fewer if it holds fewer), oldest first:
        what the daemon warms up on before it asks the exchange for the rest."""
        rows: list[str] = []
        for path in reversed(self.month_files(symbol, interval)):
            rows[:0] = self.month_rows(path)
            if len(rows) >= count:
                break
        bars = []
        for line in rows[max(len(rows) - count, 0) :]:
            try:
                time, open_, high, low, close, volume = line.rstrip("\n").split(",")[:6]
                bar = Bar(
                    symbol,
                    interval,
                    int(time),
                    float(open_),
                    float(high),
                    float(low),
                    float(close),
                    float(volume),
                )
            except ValueError:
                raise DataError(f"{symbol} {interval}: a malformed row {line.strip()!r}") from None
            bars.append(bar)
        return bars

    def add_bars(self, symbol: str, interval: str, bars: Sequence[Bar]) -> None:
        """Write ``bars`` into their month files, merged by open time with what is there
        (a bar already stored keeps its row: the exchange's first answer stands)."""
        by_month: dict[str, list[Bar]] = {}
        for bar in bars:
            by_month.setdefault(month_of(bar.open_time_ms), []).append(bar)
        for month, new in by_month.items():
            path = self.month_path(symbol, interval, month)
            rows: dict[int, str] = {}
            if path.is_file():
                with path.open(encoding="utf-8") as handle:
                    handle.readline()
                    for line in handle:
                        if line.strip():
                            rows[int(line.partition(",")[0])] = line
            for bar in new:
                rows.setdefault(bar.open_time_ms, bar_csv_row(bar))
            _write_atomic(path, BAR_CSV_HEADER + "".join(rows[t] for t in sorted(rows)))


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
