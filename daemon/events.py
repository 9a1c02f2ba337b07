"""The import path of the record types for strategy files written before the kernel package.

The types live in :mod:`barbus.daemon.core.events`; strategies (the shipped ones included, whose
code fingerprints should not change with a move) import ``Bar`` and ``Signal`` from here.
"""

from barbus.daemon.core.events import (
    INTERVAL_MS,
    MINUTE_MS,
    Bar,
    BarGuard,
    Direction,
    ExitReason,
    Fill,
    Side,
    Signal,
    Trade,
    format_time_ms,
    interval_ms,
    parse_utc_ms,
    validate_bar,
)

__all__ = [
    "INTERVAL_MS",
    "MINUTE_MS",
    "Bar",
    "BarGuard",
    "Direction",
    "ExitReason",
    "Fill",
    "Side",
    "Signal",
    "Trade",
    "format_time_ms",
    "interval_ms",
    "parse_utc_ms",
    "validate_bar",
]
