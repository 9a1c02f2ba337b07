"""The trade log formats, shared by replay and the daemon so their logs compare byte for byte.

Floats are written with ``repr`` (shortest round-trip form): the CSV is exact, and two runs that
made the same decisions produce the same bytes. The same columns serve ``barbus trades`` (CSV,
JSON objects, an aligned table for a terminal) and the daemon's ``/trades`` endpoint.

:data:`TRADE_FIELDS` with :func:`trade_values` / :func:`trade_from_values` is the one mapping
between a :class:`Trade` and a row of plain values: the CSV columns, the JSON objects and the
daemon state's ``trades`` rows are all made from it.
"""

from __future__ import annotations

import csv
import dataclasses
import enum
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

from barbus.daemon.core.events import Direction, ExitReason, Trade, format_time_ms

__all__ = [
    "TABLE_COLUMNS",
    "TRADE_COLUMNS",
    "TRADE_FIELDS",
    "format_trades_table",
    "trade_dict",
    "trade_from_values",
    "trade_row",
    "trade_values",
    "write_trades",
    "write_trades_csv",
]

TRADE_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Trade))
"""A trade's fields in order: the state's ``trades`` columns (``engine`` for ``strategy``)."""
_ENUMS: dict[str, Callable[[str], Any]] = {"exit_reason": ExitReason, "direction": Direction}
_TIMES_AT = TRADE_FIELDS.index("symbol") + 1  # where the log adds the times as text

TRADE_COLUMNS = (*TRADE_FIELDS[:_TIMES_AT], "entry_time", "exit_time", *TRADE_FIELDS[_TIMES_AT:])
"""The fields, with the open and close times as text after ``symbol``. ``direction`` (long or
short) came last, with short positions: the columns before it are the first releases' log, byte
for byte."""


def trade_values(trade: Trade) -> tuple[Any, ...]:
    """``trade``'s fields in :data:`TRADE_FIELDS` order, its reason and direction as text."""
    values = (getattr(trade, name) for name in TRADE_FIELDS)
    return tuple(v.value if isinstance(v, enum.Enum) else v for v in values)


def trade_from_values(values: Sequence[Any]) -> Trade:
    """The :class:`Trade` of a row of :func:`trade_values` (e.g. read back from SQLite)."""
    return Trade(
        *(
            _ENUMS[name](value) if name in _ENUMS else value
            for name, value in zip(TRADE_FIELDS, values, strict=True)
        )
    )


def trade_dict(trade: Trade) -> dict[str, Any]:
    """``trade`` as a JSON object with :data:`TRADE_COLUMNS` keys (numbers stay numbers)."""
    values = trade_values(trade)
    times = (format_time_ms(trade.entry_time_ms), format_time_ms(trade.exit_time_ms))
    return dict(zip(TRADE_COLUMNS, (*values[:_TIMES_AT], *times, *values[_TIMES_AT:]), strict=True))


def trade_row(trade: Trade) -> list[str]:
    """One CSV row for ``trade``, in :data:`TRADE_COLUMNS` order: :func:`trade_dict`'s values,
    numbers as ``repr`` (exact)."""
    return [v if isinstance(v, str) else repr(v) for v in trade_dict(trade).values()]


def write_trades(handle: TextIO, trades: Iterable[Trade]) -> None:
    """Write ``trades`` (one row per round trip) with a header line, ``\\n`` line endings."""
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(TRADE_COLUMNS)
    writer.writerows(trade_row(t) for t in trades)


def write_trades_csv(path: Path, trades: Iterable[Trade]) -> None:
    """:func:`write_trades` to the file ``path``."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        write_trades(handle, trades)


# The table leaves out the millisecond twins of the times; numbers are rounded for reading
# (csv and json keep them exact).
TABLE_COLUMNS = (
    "strategy",
    "symbol",
    "entry_time",
    "exit_time",
    "entry_price",
    "exit_price",
    "size",
    "fees",
    "profit",
    "profit_pct",
    "exit_reason",
    "direction",
)


def _table_cells(trade: Trade) -> list[str]:
    return [
        trade.strategy,
        trade.symbol,
        format_time_ms(trade.entry_time_ms),
        format_time_ms(trade.exit_time_ms),
        f"{trade.entry_price:.2f}",
        f"{trade.exit_price:.2f}",
        f"{trade.size:.6f}",
        f"{trade.entry_fee + trade.exit_fee:.2f}",
        f"{trade.profit:+.2f}",
        f"{trade.profit_pct:+.3f}",
        trade.exit_reason.value,
        trade.direction.value,
    ]


def format_trades_table(trades: Iterable[Trade]) -> list[str]:
    """Lines of an aligned table (header first): text left-aligned, numbers right-aligned."""
    rows = [list(TABLE_COLUMNS), *(_table_cells(t) for t in trades)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(TABLE_COLUMNS))]
    text = {0, 1, 2, 3, len(TABLE_COLUMNS) - 2, len(TABLE_COLUMNS) - 1}
    return [
        "  ".join(
            cell.ljust(width) if i in text else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]
