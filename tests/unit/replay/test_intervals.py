"""The one bar interval of a series: from its steps, checked against what its name declares."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from barbus.daemon.core.errors import DataError
from barbus.daemon.core.events import MINUTE_MS
from barbus.replay.intervals import bar_interval, declared_interval, join_facts, step_facts

HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
T0 = 1_750_000_000_000 // DAY_MS * DAY_MS  # a UTC midnight: on every interval's grid


@pytest.mark.parametrize(
    ("path", "declared"),
    [
        ("BTCUSDT_1m_2025-05-20_2025-08-18.csv.gz", "1m"),
        ("BTCUSDT-1h-2025-06.csv", "1h"),
        ("ETHUSDT-15m-2024-01-01.zip", "15m"),
        ("data/BTCUSDT/4h/BTCUSDT-4h-2025-06.csv", "4h"),
        ("data/BTCUSDT/1d/anything.csv", "1d"),  # the data folder's interval folder
        ("BTCUSDT_2025-05-20.csv", None),  # dates are not intervals
        ("BTCUSDT_7m.csv", None),  # not an interval barbus knows
        ("my1hdata.csv", None),  # not between separators
        ("1h-tests/btc.csv", None),  # a folder that merely starts like one
    ],
)
def test_what_a_name_declares(path: str, declared: str | None) -> None:
    assert declared_interval(Path(path)) == declared


@pytest.mark.parametrize(
    ("step_ms", "interval"),
    [
        (MINUTE_MS, "1m"),
        (3 * MINUTE_MS, "3m"),
        (5 * MINUTE_MS, "5m"),
        (15 * MINUTE_MS, "15m"),
        (30 * MINUTE_MS, "30m"),
        (HOUR_MS, "1h"),
        (2 * HOUR_MS, "2h"),
        (4 * HOUR_MS, "4h"),
        (DAY_MS, "1d"),
    ],
)
def test_the_interval_is_the_smallest_step_gaps_or_not(step_ms: int, interval: str) -> None:
    times = T0 + np.array([0, 1, 2, 5, 6, 10], dtype=np.int64) * step_ms  # two gaps

    assert bar_interval("f", int(times[0]), step_facts(times), None) == interval
    assert bar_interval("f", int(times[0]), step_facts(times), interval) == interval


def test_facts_joined_over_chunks_equal_the_facts_of_the_whole() -> None:
    times = T0 + np.array([0, 2, 4, 10, 12, 13, 20], dtype=np.int64) * MINUTE_MS
    head, tail = times[:3], times[3:]

    joined = join_facts(step_facts(head), step_facts(tail, int(head[-1])))

    assert joined == step_facts(times) == (MINUTE_MS, MINUTE_MS)
    assert join_facts(None, step_facts(times)) == step_facts(times)


def test_one_bar_is_what_its_name_says_else_one_minute() -> None:
    assert bar_interval("f", T0, step_facts(np.array([T0], dtype=np.int64)), None) == "1m"
    assert bar_interval("f", T0, None, "4h") == "4h"


@pytest.mark.parametrize(
    ("steps", "declared", "message"),
    [
        ([7 * MINUTE_MS] * 3, None, r"420 s apart at the closest, which is no bar interval"),
        ([HOUR_MS] * 3, "1m", r"its name says 1m bars, but they are 1h apart at the closest"),
        (
            [5 * MINUTE_MS, 7 * MINUTE_MS],
            None,
            r"open times are not all on one 5m grid",
        ),  # 5 then 7 minutes: the second bar is off the 5-minute grid
    ],
)
def test_spacing_that_is_no_one_interval_is_refused(
    steps: list[int], declared: str | None, message: str
) -> None:
    times = T0 + np.cumsum([0, *steps]).astype(np.int64)

    with pytest.raises(DataError, match=message):
        bar_interval("f", int(times[0]), step_facts(times), declared)


def test_bars_off_the_utc_grid_of_their_interval_are_refused() -> None:
    times = T0 + MINUTE_MS + np.arange(4, dtype=np.int64) * HOUR_MS  # every hour at :01

    with pytest.raises(DataError, match=r"not all on one 1h grid \(multiples of 1h from 00:00"):
        bar_interval("f", int(times[0]), step_facts(times), None)
