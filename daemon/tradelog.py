"""The trade log file format, shared by replay and the daemon so their logs compare byte for byte.

Floats are written with ``repr`` (shortest round-trip form): the file is exact, and two runs that
made the same decisions produce the same bytes.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

from daemon.events import Trade, format_time_ms

__all__ = ["TRADE_COLUMNS", "trade_row", "write_trades_csv"]

TRADE_COLUMNS = (
    "strategy",
    "symbol",
    "entry_time",
    "exit_time",
    "entry_time_ms",
    "exit_time_ms",
    "entry_price",
    "exit_price",
    "size",
    "entry_fee",
    "exit_fee",
    "profit",
    "profit_pct",
    "exit_reason",
)


def trade_row(trade: Trade) -> list[str]:
    """One CSV row for ``trade``, in :data:`TRADE_COLUMNS` order."""
    return [
        trade.strategy,
        trade.symbol,
        format_time_ms(trade.entry_time_ms),
        format_time_ms(trade.exit_time_ms),
        str(trade.entry_time_ms),
        str(trade.exit_time_ms),
        repr(trade.entry_price),
        repr(trade.exit_price),
        repr(trade.size),
        repr(trade.entry_fee),
        repr(trade.exit_fee),
        repr(trade.profit),
        repr(trade.profit_pct),
        trade.exit_reason.value,
    ]


def write_trades_csv(path: Path, trades: Iterable[Trade]) -> None:
    """Write ``trades`` (one row per round trip) with a header line, ``\\n`` line endings."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(TRADE_COLUMNS)
        writer.writerows(trade_row(t) for t in trades)
