"""Time and period texts of the command line and spec files, read into epoch milliseconds.

A time is an ISO-8601 date or date-time (UTC unless it has an offset) or a bare epoch number:
below 1e11 it is read as seconds (1e11 seconds is the year 5138, 1e11 milliseconds 1973), else as
milliseconds. A bare number is logged with the unit it was read in, so a wrong guess shows.

A period ``START:END`` may hold a time of day on either side (``2025-07-01T12:00:2025-07-02``):
it splits at the one colon that leaves a valid time (or nothing) on both sides.
"""

from __future__ import annotations

import datetime as dt
import logging

from barbus.daemon.core.errors import BarbusError, ConfigError
from barbus.daemon.core.events import epoch_ms, format_time_ms, parse_utc_ms

__all__ = ["parse_period", "parse_time", "split_period"]

log = logging.getLogger("barbus.periods")

_FORMS = "an ISO date or time (2025-06-01, 2025-06-01T12:00) or epoch seconds or milliseconds"

TimeValue = str | int | dt.date  # a TOML spec may hold bare integers, dates and datetimes


def parse_time(value: TimeValue, what: str) -> int:
    """``value`` as epoch ms; ``what`` names the option or key in messages (e.g. ``--start``)."""
    if isinstance(value, bool):
        raise ConfigError(f"{what}: cannot read time {value!r}: use {_FORMS}")
    if isinstance(value, dt.date):
        moment = value if isinstance(value, dt.datetime) else dt.datetime.combine(value, dt.time())
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        return int(moment.timestamp() * 1000)
    if isinstance(value, int):
        return _epoch(value, str(value), what)
    if not isinstance(value, str):
        raise ConfigError(f"{what}: cannot read time {value!r}: use {_FORMS}")
    text = value.strip()
    if text.isascii() and text.isdigit():
        return _epoch(int(text), text, what)
    try:
        return parse_utc_ms(text)
    except BarbusError:
        raise ConfigError(f"{what}: cannot read time {value!r}: use {_FORMS}") from None


def _epoch(number: int, shown: str, what: str) -> int:
    if number < 0:
        raise ConfigError(f"{what} {shown} is before 1970: use {_FORMS}")
    ms, seconds = epoch_ms(number)
    try:
        when = format_time_ms(ms)
    except (OverflowError, ValueError, OSError):
        raise ConfigError(f"{what} {shown} is out of range: use {_FORMS}") from None
    unit = "seconds" if seconds else "milliseconds"
    log.info("%s %s read as epoch %s: %s", what, shown, unit, when)
    return ms


def _is_time(text: str) -> bool:
    stripped = text.strip()
    if stripped.isascii() and stripped.isdigit():
        return True
    try:
        parse_utc_ms(stripped)
    except BarbusError:
        return False
    return True


def split_period(text: str, what: str = "--period") -> tuple[str | None, str | None]:
    """``START:END`` as its two texts (None for an empty side).

    Every colon is a candidate; the split is the one whose both sides are times or empty (an
    ISO time needs its date, so a colon inside a time of day never leaves one on both sides).
    """
    candidates = [
        (text[:i], text[i + 1 :])
        for i, char in enumerate(text)
        if char == ":"
        and (not text[:i].strip() or _is_time(text[:i]))
        and (not text[i + 1 :].strip() or _is_time(text[i + 1 :]))
    ]
    if len(candidates) != 1:
        problem = "is ambiguous" if candidates else "is not a period"
        raise ConfigError(
            f"{what} {text!r} {problem}: expected START:END, each {_FORMS} "
            "(e.g. 2025-06-01:2025-07-01 or 2025-07-01T12:00:2025-07-02; either side may be "
            "empty)"
        )
    start, end = candidates[0]
    return start.strip() or None, end.strip() or None


def parse_period(
    start: TimeValue | None,
    end: TimeValue | None,
    what: str = "period",
    names: tuple[str, str] | None = None,
) -> tuple[int | None, int | None]:
    """A ``[start, end)`` period in epoch ms; an empty one (end not after start) is an error.

    ``what`` names the period in messages, ``names`` its two times (default: "WHAT start/end").
    """
    start_name, end_name = names or (f"{what} start", f"{what} end")
    start_ms = parse_time(start, start_name) if start not in (None, "") else None
    end_ms = parse_time(end, end_name) if end not in (None, "") else None
    if start_ms is not None and end_ms is not None and end_ms <= start_ms:
        relation = "before" if end_ms < start_ms else "the same as"
        raise ConfigError(
            f"{what} {start} .. {end} is empty: its end ({format_time_ms(end_ms)}) is "
            f"{relation} its start ({format_time_ms(start_ms)})"
        )
    return start_ms, end_ms
