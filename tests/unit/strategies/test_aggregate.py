from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from barbus.daemon.core.aggregate import TimeframeAggregator
from barbus.daemon.core.events import Bar
from barbus.replay.loader import load_bars
from tests.factories import aggregate, bars_of, make_bar


def aggregate_all(path: Path, interval: str) -> tuple[list[Bar], list[int]]:
    """Aggregate a whole file; also return the index of the minute that released each bar."""
    return aggregate(bars_of(load_bars(path)), interval)


def pandas_resample(path: Path, rule: str) -> pd.DataFrame:
    frame = pd.read_csv(path)
    frame.index = pd.to_datetime(frame["open_time_ms"], unit="ms", utc=True)
    agg = frame.resample(rule, label="left", closed="left").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    return agg.dropna(subset=["open"])


@pytest.mark.parametrize(("interval", "rule"), [("5m", "5min"), ("15m", "15min"), ("1h", "1h")])
@pytest.mark.parametrize("which", ["btc_2025_path", "btc_2023_path"])
def test_aggregation_matches_pandas_resample(
    interval: str, rule: str, which: str, request: pytest.FixtureRequest
) -> None:
    path: Path = request.getfixturevalue(which)

    bars, _ = aggregate_all(path, interval)
    expected = pandas_resample(path, rule)

    # The last bucket of a file may be incomplete: it is released only by a later minute.
    assert len(bars) in (len(expected), len(expected) - 1)
    expected = expected.iloc[: len(bars)]
    times = pd.DatetimeIndex(expected.index).as_unit("ms").asi8
    assert [b.open_time_ms for b in bars] == times.tolist()
    assert [b.interval for b in bars] == [interval] * len(bars)
    for column in ("open", "high", "low", "close"):
        assert [getattr(b, column) for b in bars] == expected[column].tolist()
    # pandas sums with compensation; ours is a plain running sum.
    np.testing.assert_allclose([b.volume for b in bars], expected["volume"], rtol=1e-12)


def test_bucket_is_released_on_its_last_minute_not_the_next(btc_2025_path: Path) -> None:
    bars, released_at = aggregate_all(btc_2025_path, "15m")
    series = load_bars(btc_2025_path)

    for bar, index in zip(bars[:200], released_at[:200], strict=True):
        assert series.open_time_ms[index] == bar.open_time_ms + 14 * 60_000


def test_missing_last_minute_releases_on_next_buckets_first_minute() -> None:
    agg = TimeframeAggregator("BTCUSDT", "5m")
    for minute in range(4):  # minutes 0..3 of the bucket, minute 4 missing
        assert agg.add(make_bar(100.0 + minute, minute=minute)) is None
        assert agg.late is None

    assert agg.add(make_bar(200.0, minute=7)) is None

    late = agg.late
    assert late is not None
    assert (late.open, late.close, late.open_time_ms) == (
        100.0,
        103.0,
        make_bar(minute=0).open_time_ms,
    )
    agg.late = None
    done = agg.add(make_bar(201.0, minute=9))
    assert done is not None
    assert (done.open, done.close, done.high) == (200.0, 201.0, 201.0)


def test_snapshot_restore_continues_identically(btc_2023_path: Path) -> None:
    minutes = bars_of(load_bars(btc_2023_path))[:5000]
    whole = TimeframeAggregator("BTCUSDT", "1h")
    first = TimeframeAggregator("BTCUSDT", "1h")
    out_whole = [whole.add(m) for m in minutes]
    out_split = [first.add(m) for m in minutes[:2017]]
    second = TimeframeAggregator("BTCUSDT", "1h")
    second.restore(first.snapshot())
    out_split += [second.add(m) for m in minutes[2017:]]
    assert out_split == out_whole
