"""The one bar interval of a series: what its bars' steps say, and what its name declares.

A series is of one interval from 1m to 1d (:data:`~daemon.core.events.INTERVAL_MS`): the
smallest step between its bars. Its own module, importing neither pandas nor pyarrow, because
the loader, the DataFrame ingest and the cache writer (which a batch worker imports) all ask it.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from barbus.daemon.core.errors import DataError
from barbus.daemon.core.events import INTERVAL_MS, INTERVAL_NAMES
from barbus.daemon.core.series import IntArray

__all__ = ["bar_interval", "declared_interval", "join_facts", "step_facts"]

# An interval between separators in a file name: BTCUSDT_1m_..., BTCUSDT-1h-2025-06.csv.
_DECLARED = re.compile(r"(?:^|[_-])([0-9]{1,2}[mhd])(?=[_.-])")


def declared_interval(path: Path | str) -> str | None:
    """The interval a data file's name declares (``BTCUSDT_1m_...``, ``BTCUSDT-1h-2025-06.csv``),
    or its folder in the data folder (``.../BTCUSDT/4h/``); None when neither says one."""
    path = Path(path)
    match = _DECLARED.search(path.name)
    if match is not None and match.group(1) in INTERVAL_MS:
        return match.group(1)
    return path.parent.name if path.parent.name in INTERVAL_MS else None


def step_facts(times: IntArray, before_ms: int | None = None) -> tuple[int, int] | None:
    """(smallest step, greatest common divisor of the steps) between ``times`` (after
    ``before_ms``, the previous chunk's last), or None for fewer than two bars."""
    if before_ms is not None:
        times = np.concatenate(([before_ms], times))
    if times.size < 2:
        return None
    steps = np.diff(times)
    return int(steps.min()), int(np.gcd.reduce(steps))


def join_facts(a: tuple[int, int] | None, b: tuple[int, int] | None) -> tuple[int, int] | None:
    """The :func:`step_facts` of two runs of steps together."""
    if a is None or b is None:
        return a or b
    return min(a[0], b[0]), math.gcd(a[1], b[1])


def bar_interval(
    where: Path | str, first_ms: int, facts: tuple[int, int] | None, declared: str | None
) -> str:
    """The one interval of a series' bars: its smallest step between bars, which must be a
    known interval (1m ... 1d), a step every other step is a multiple of, and the one its name
    declares, if it declares one. A single bar is what its name says, else 1 minute.

    Every open time must be on that interval's UTC grid (as the exchange's candles are), so a
    bucket of a coarser strategy timeframe always starts on a bar.
    """
    if facts is None:
        return declared or "1m"
    smallest, common = facts
    name = INTERVAL_NAMES.get(smallest)
    if name is None:
        raise DataError(
            f"{where}: bars are {smallest / 1000:g} s apart at the closest, which is no bar "
            f"interval barbus replays ({', '.join(INTERVAL_MS)})"
        )
    if declared is not None and declared != name:
        raise DataError(
            f"{where}: its name says {declared} bars, but they are {name} apart at the closest"
        )
    if common != smallest or first_ms % smallest:
        raise DataError(
            f"{where}: open times are not all on one {name} grid (multiples of {name} from "
            "00:00 UTC); bars of one interval, please"
        )
    return name
