"""``write_bars`` inverts ``load_bars``: any valid bars come back bit for bit, in every format."""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from barbus.daemon.core.errors import ConfigError
from barbus.daemon.core.events import MINUTE_MS, Bar
from barbus.daemon.core.series import BarSeries
from barbus.replay.bars_out import write_bars
from barbus.replay.loader import load_bars

# The loader tells the epoch unit by magnitude: milliseconds are from 1e11 to below 1e14.
FIRST_MINUTE = -(-(10**11) // MINUTE_MS)
LAST_MINUTE = 10**14 // MINUTE_MS - 1
# Positive, finite, and small enough that the loader's finiteness check (a sum) cannot overflow.
PRICES = st.floats(min_value=0.0, max_value=1e300, exclude_min=True)
VOLUMES = st.floats(min_value=0.0, max_value=1e300) | st.just(-0.0)
SUFFIXES = [".csv", ".csv.gz", ".parquet"]


@st.composite
def valid_bars(draw: st.DrawFn) -> list[Bar]:
    """Bars the loader accepts: whole minutes, rising, the smallest step one minute (gaps
    allowed), open and close within [low, high], positive prices, volume not negative."""
    n = draw(st.integers(1, 40))
    steps = draw(st.lists(st.integers(1, 10_000), min_size=n - 1, max_size=n - 1))
    if steps:
        steps[draw(st.integers(0, len(steps) - 1))] = 1
    minute = draw(st.integers(FIRST_MINUTE, LAST_MINUTE - sum(steps)))
    bars = []
    for step in [0, *steps]:
        minute += step
        low, a, b, high = sorted(draw(st.lists(PRICES, min_size=4, max_size=4)))
        opened, closed = draw(st.permutations([a, b]))
        volume = draw(VOLUMES)
        bars.append(Bar("BTCUSDT", "1m", minute * MINUTE_MS, opened, high, low, closed, volume))
    return bars


def assert_same_bits(loaded: BarSeries, expected: BarSeries) -> None:
    assert loaded.symbol == expected.symbol
    for got, want in zip(loaded.columns(), expected.columns(), strict=True):
        assert got.dtype == want.dtype
        assert got.tobytes() == want.tobytes()  # -0.0 and every last bit included


@given(valid_bars(), st.sampled_from(SUFFIXES), st.sampled_from(["series", "bars", "columns"]))
def test_load_bars_reads_back_exactly_what_write_bars_wrote(
    bars: list[Bar], suffix: str, form: str
) -> None:
    series = BarSeries.from_bars(bars, "drawn")
    given_as = {
        "series": series,
        "bars": iter(bars),  # any iterable of bars, read once
        "columns": tuple(column.tolist() for column in series.columns()),
    }[form]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"BTCUSDT_1m_drawn{suffix}"

        written = write_bars(path, given_as)  # type: ignore[arg-type]

        assert written == path
        assert_same_bits(load_bars(path), series)
        assert load_bars(path).to_bars() == bars
        assert sorted(p.name for p in Path(folder).iterdir()) == [path.name]  # no partial left


def test_a_csv_is_the_export_header_and_exact_float_text(tmp_path: Path) -> None:
    bars = [
        Bar("BTCUSDT", "1m", 1_747_699_200_000, 0.1 + 0.2, 101.0, 0.25, 100.5, 1e-05),
        Bar("BTCUSDT", "1m", 1_747_699_320_000, 100.0, 1e16, 99.0, 100.0, 0.0),
    ]
    expected = (
        "open_time_ms,open,high,low,close,volume\n"
        "1747699200000,0.30000000000000004,101.0,0.25,100.5,1e-05\n"
        "1747699320000,100.0,1e+16,99.0,100.0,0.0\n"
    )

    plain = write_bars(tmp_path / "BTCUSDT_1m_a.csv", bars)
    packed = write_bars(tmp_path / "deeper" / "BTCUSDT_1m_a.csv.gz", bars)

    assert plain.read_text(encoding="utf-8") == expected
    assert gzip.decompress(packed.read_bytes()).decode("utf-8") == expected
    again = write_bars(tmp_path / "BTCUSDT_1m_b.csv.gz", BarSeries.from_bars(bars, "x"))
    assert again.read_bytes() == packed.read_bytes()  # no time stamp or name in the gzip header


def test_a_file_of_another_kind_is_refused_and_nothing_is_left(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"bars are written as \.csv, \.csv\.gz or \.parquet"):
        write_bars(tmp_path / "BTCUSDT_1m.json", [])
    for suffix in (".csv", ".parquet"):
        with pytest.raises(
            ValueError, match=r"bar columns of different lengths \[1, 1, 1, 1, 1, 0\]"
        ):
            write_bars(tmp_path / f"BTCUSDT_1m{suffix}", ([6e12], [1.0], [1.0], [1.0], [1.0], []))
    with pytest.raises(ValueError, match="bars as columns are 6 columns, got 5"):
        write_bars(tmp_path / "BTCUSDT_1m.csv", ([6e12], [1.0], [1.0], [1.0], [1.0]))
    assert list(tmp_path.iterdir()) == []
