"""The kline loader on real files: the bundled samples, both layouts, every kind of bad input."""

from __future__ import annotations

import gzip
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from barbus.daemon.core.errors import DataError
from barbus.daemon.core.series import BarSeries
from barbus.replay.loader import bundled_data_path, load_bars

HEADER_LINE = "open_time_ms,open,high,low,close,volume"
T0_MS = 1_747_699_200_000  # 2025-05-20T00:00:00Z
MINUTE_MS = 60_000

Row = tuple[int, float, float, float, float, float]


# --------------------------------------------------------------------------------------------
# builders


def utc_ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    """Epoch milliseconds of a UTC wall-clock time (computed independently of the loader)."""
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()) * 1000


def kline_rows(n: int, *, start_ms: int = T0_MS, step_ms: int = MINUTE_MS) -> list[Row]:
    """``n`` consistent rows: open, high, low, close and volume all differ from row to row."""
    rows: list[Row] = []
    for i in range(n):
        base = 100.0 + i
        rows.append((start_ms + i * step_ms, base, base + 2.0, base - 1.0, base + 0.5, 1.25 + i))
    return rows


def header_text(rows: Sequence[Row]) -> str:
    """The barbus/freqtrade export layout: a header line, then six columns."""
    lines = [HEADER_LINE]
    lines += [f"{t},{o!r},{h!r},{lo!r},{c!r},{v!r}" for t, o, h, lo, c, v in rows]
    return "\n".join(lines) + "\n"


def binance_text(rows: Sequence[Row], *, microseconds: bool = False) -> str:
    """The data.binance.vision kline layout: no header, 12 columns, open time first."""
    scale = 1000 if microseconds else 1
    lines = []
    for t, o, h, lo, c, v in rows:
        open_time = t * scale
        close_time = (t + MINUTE_MS) * scale - 1
        lines.append(
            f"{open_time},{o:.8f},{h:.8f},{lo:.8f},{c:.8f},{v:.8f},"
            f"{close_time},{v * c:.8f},17,{v / 2:.8f},{v * c / 2:.8f},0"
        )
    return "\n".join(lines) + "\n"


def lines_with(rows: Sequence[Row], line_number: int, replacement: str) -> str:
    """Header layout text whose 1-based file line ``line_number`` is replaced by ``replacement``."""
    lines = header_text(rows).splitlines()
    lines[line_number - 1] = replacement
    return "\n".join(lines) + "\n"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def write_gz(path: Path, text: str) -> Path:
    path.write_bytes(gzip.compress(text.encode("utf-8")))
    return path


def assert_same_bars(left: BarSeries, right: BarSeries) -> None:
    assert left.symbol == right.symbol
    assert left.interval == right.interval
    for column in ("open_time_ms", "open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(left, column), getattr(right, column), err_msg=column)


# --------------------------------------------------------------------------------------------
# the bundled real samples


@pytest.fixture(scope="module")
def btc_2025(btc_2025_path: Path) -> BarSeries:
    return load_bars(btc_2025_path)


@pytest.fixture(scope="module")
def btc_2023(btc_2023_path: Path) -> BarSeries:
    return load_bars(btc_2023_path)


def test_bundled_2025_file_loads_every_row_gap_free(btc_2025: BarSeries) -> None:
    assert len(btc_2025) == 130_708
    assert btc_2025.symbol == "BTCUSDT"
    assert btc_2025.interval == "1m"
    assert int(btc_2025.open_time_ms[0]) == utc_ms(2025, 5, 20)
    assert int(btc_2025.open_time_ms[-1]) == utc_ms(2025, 5, 20) + (130_708 - 1) * MINUTE_MS
    assert btc_2025.gaps().count == 0
    assert btc_2025.gaps().describe() == "no gaps"
    assert btc_2025.open_time_ms.dtype == np.int64
    assert btc_2025.close.dtype == np.float64


def test_bundled_2025_file_first_row_matches_the_file_text(btc_2025: BarSeries) -> None:
    # First data line of the file: 1747699200000,105573.73,105597.1,105554.31,105554.32,10.82647
    first = [float(getattr(btc_2025, c)[0]) for c in ("open", "high", "low", "close", "volume")]

    assert first == [105573.73, 105597.1, 105554.31, 105554.32, 10.82647]


def test_bundled_2023_file_reports_one_80_minute_gap(btc_2023: BarSeries) -> None:
    gaps = btc_2023.gaps()

    assert len(btc_2023) == 71_041
    assert btc_2023.symbol == "BTCUSDT"
    assert int(btc_2023.open_time_ms[0]) == utc_ms(2023, 3, 16, 22, 15)
    assert int(btc_2023.open_time_ms[-1]) == utc_ms(2023, 5, 5, 7, 35)
    assert gaps.count == 1
    assert gaps.largest_minutes == 80
    assert gaps.missing_minutes == 80
    assert gaps.largest_after_ms == utc_ms(2023, 3, 24, 12, 39)
    assert "largest 80 min after 2023-03-24T12:39:00Z" in gaps.describe()
    # Rows present plus minutes missing cover the span exactly.
    span = (int(btc_2023.open_time_ms[-1]) - int(btc_2023.open_time_ms[0])) // MINUTE_MS + 1
    assert span == len(btc_2023) + gaps.missing_minutes


def test_bundled_2023_file_counts_72_zero_volume_bars_before_the_gap(btc_2023: BarSeries) -> None:
    zero = np.flatnonzero(btc_2023.volume == 0.0)

    assert btc_2023.zero_volume_bars() == 72
    assert zero.size == 72
    assert int(btc_2023.open_time_ms[zero[-1]]) <= utc_ms(2023, 3, 24, 12, 39)
    # The halted minutes are flat: open == high == low == close.
    assert np.all(btc_2023.high[zero] == btc_2023.low[zero])


def test_bundled_data_path_defaults_to_the_2025_sample(btc_2025_path: Path) -> None:
    assert bundled_data_path().resolve() == btc_2025_path.resolve()


def test_bundled_data_path_of_unknown_name_raises_data_error() -> None:
    with pytest.raises(DataError, match=re.escape("nope.csv.gz")):
        bundled_data_path("nope.csv.gz")


# --------------------------------------------------------------------------------------------
# the two layouts


def test_header_csv_loads_every_column_exactly(tmp_path: Path) -> None:
    rows = kline_rows(5)
    path = write(tmp_path / "BTCUSDT_1m.csv", header_text(rows))

    series = load_bars(path)

    assert series.symbol == "BTCUSDT"
    assert series.source == str(path)
    assert series.open_time_ms.tolist() == [r[0] for r in rows]
    assert series.open.tolist() == [r[1] for r in rows]
    assert series.high.tolist() == [r[2] for r in rows]
    assert series.low.tolist() == [r[3] for r in rows]
    assert series.close.tolist() == [r[4] for r in rows]
    assert series.volume.tolist() == [r[5] for r in rows]


def test_gzip_csv_loads_identically_to_plain_csv(tmp_path: Path) -> None:
    text = header_text(kline_rows(20))
    plain = write(tmp_path / "BTCUSDT_1m.csv", text)
    packed = write_gz(tmp_path / "BTCUSDT_1m.csv.gz", text)

    assert_same_bars(load_bars(packed), load_bars(plain))


def test_open_time_header_alias_and_extra_columns_are_accepted(tmp_path: Path) -> None:
    rows = kline_rows(4)
    text = header_text(rows).splitlines()
    extended = [text[0].replace("open_time_ms", "open_time") + ",trades"]
    extended += [f"{line},{i}" for i, line in enumerate(text[1:])]
    reference = write(tmp_path / "BTCUSDT_a.csv", header_text(rows))
    path = write(tmp_path / "BTCUSDT_b.csv", "\n".join(extended) + "\n")

    assert_same_bars(load_bars(path), load_bars(reference))


def test_headerless_binance_klines_load_identically_to_header_layout(tmp_path: Path) -> None:
    rows = kline_rows(6)
    binance = write(tmp_path / "BTCUSDT-1m-2025-05-20.csv", binance_text(rows))
    reference = write(tmp_path / "BTCUSDT_1m.csv", header_text(rows))

    assert_same_bars(load_bars(binance), load_bars(reference))


def test_headerless_binance_gzip_loads_identically_to_header_layout(tmp_path: Path) -> None:
    rows = kline_rows(6)
    binance = write_gz(tmp_path / "BTCUSDT-1m-2025-05-20.csv.gz", binance_text(rows))
    reference = write(tmp_path / "BTCUSDT_1m.csv", header_text(rows))

    assert_same_bars(load_bars(binance), load_bars(reference))


def test_binance_microsecond_open_times_are_converted_to_ms(tmp_path: Path) -> None:
    rows = kline_rows(6)
    micro = write(tmp_path / "BTCUSDT-1m-2025-05-20.csv", binance_text(rows, microseconds=True))

    series = load_bars(micro)

    assert series.open_time_ms.tolist() == [r[0] for r in rows]
    assert series.open_time_ms.dtype == np.int64
    assert_same_bars(series, load_bars(write(tmp_path / "BTCUSDT_1m.csv", header_text(rows))))


def test_symbol_is_read_from_a_dash_separated_binance_file_name(tmp_path: Path) -> None:
    path = write(tmp_path / "ETHUSDT-1m-2025-05.csv", binance_text(kline_rows(3)))

    assert load_bars(path).symbol == "ETHUSDT"


def test_explicit_symbol_overrides_the_file_name(tmp_path: Path) -> None:
    path = write(tmp_path / "data.csv", header_text(kline_rows(3)))

    assert load_bars(path, symbol="SOLUSDT").symbol == "SOLUSDT"


def test_a_single_row_file_loads(tmp_path: Path) -> None:
    path = write(tmp_path / "BTCUSDT_1m.csv", header_text(kline_rows(1)))

    series = load_bars(path)

    assert len(series) == 1
    assert series.gaps().count == 0


def test_windows_line_endings_load_like_unix_ones(tmp_path: Path) -> None:
    text = header_text(kline_rows(4))
    crlf = tmp_path / "BTCUSDT_crlf.csv"
    crlf.write_bytes(text.replace("\n", "\r\n").encode("utf-8"))

    assert_same_bars(load_bars(crlf), load_bars(write(tmp_path / "BTCUSDT_lf.csv", text)))


# --------------------------------------------------------------------------------------------
# gaps and zero volume on small files


def test_gaps_are_counted_measured_and_located(tmp_path: Path) -> None:
    minutes = [0, 1, 4, 5, 6, 12, 13]  # holes: 2 missing after minute 1, 5 missing after minute 6
    rows = [(T0_MS + m * MINUTE_MS, 100.0, 101.0, 99.0, 100.0, 1.0) for m in minutes]
    path = write(tmp_path / "BTCUSDT_1m.csv", header_text(rows))

    gaps = load_bars(path).gaps()

    assert (gaps.count, gaps.largest_minutes, gaps.missing_minutes) == (2, 5, 7)
    assert gaps.largest_after_ms == T0_MS + 6 * MINUTE_MS
    assert gaps.describe() == (
        "2 gap(s), 7 missing minute(s), largest 5 min after 2025-05-20T00:06:00Z"
    )


def test_zero_volume_bars_are_counted_not_rejected(tmp_path: Path) -> None:
    rows = [
        (t, o, h, lo, c, 0.0 if i in (1, 3) else v)
        for i, (t, o, h, lo, c, v) in enumerate(kline_rows(5))
    ]
    path = write(tmp_path / "BTCUSDT_1m.csv", header_text(rows))

    assert load_bars(path).zero_volume_bars() == 2


# --------------------------------------------------------------------------------------------
# between(start, end) is [start, end)


@pytest.fixture
def ten_minutes(tmp_path: Path) -> BarSeries:
    return load_bars(write(tmp_path / "BTCUSDT_1m.csv", header_text(kline_rows(10))))


def minute_ms(m: int) -> int:
    return T0_MS + m * MINUTE_MS


def test_between_includes_start_and_excludes_end(ten_minutes: BarSeries) -> None:
    window = ten_minutes.between(minute_ms(2), minute_ms(5))

    assert window.open_time_ms.tolist() == [minute_ms(2), minute_ms(3), minute_ms(4)]
    assert window.close.tolist() == ten_minutes.close[2:5].tolist()
    assert window.volume.tolist() == ten_minutes.volume[2:5].tolist()
    assert window.symbol == ten_minutes.symbol
    assert window.source == ten_minutes.source


def test_between_with_unaligned_bounds_keeps_bars_opening_inside(ten_minutes: BarSeries) -> None:
    window = ten_minutes.between(minute_ms(2) + 1, minute_ms(5) + 1)

    assert window.open_time_ms.tolist() == [minute_ms(3), minute_ms(4), minute_ms(5)]


def test_between_without_bounds_returns_every_bar(ten_minutes: BarSeries) -> None:
    assert len(ten_minutes.between(None, None)) == 10
    assert ten_minutes.between(None, minute_ms(3)).open_time_ms.tolist() == [
        minute_ms(0),
        minute_ms(1),
        minute_ms(2),
    ]
    assert ten_minutes.between(minute_ms(8), None).open_time_ms.tolist() == [
        minute_ms(8),
        minute_ms(9),
    ]


@pytest.mark.parametrize(
    ("start", "end"),
    [(3, 3), (5, 2), (10, 20), (-20, 0)],
    ids=["empty-range", "reversed", "after-the-data", "before-the-data"],
)
def test_between_outside_or_empty_range_is_empty(
    ten_minutes: BarSeries, start: int, end: int
) -> None:
    assert len(ten_minutes.between(minute_ms(start), minute_ms(end))) == 0


def test_between_on_the_bundled_file_gives_one_week_of_minutes(btc_2025: BarSeries) -> None:
    week = btc_2025.between(utc_ms(2025, 6, 1), utc_ms(2025, 6, 8))

    assert len(week) == 7 * 24 * 60
    assert int(week.open_time_ms[0]) == utc_ms(2025, 6, 1)
    assert int(week.open_time_ms[-1]) == utc_ms(2025, 6, 8) - MINUTE_MS


# --------------------------------------------------------------------------------------------
# bad input: DataError naming the problem and the 1-based file line


def line_error(line: int, what: str) -> str:
    return rf": line {line}: {what}"


ROWS = kline_rows(5)  # file lines 2..6 in the header layout
T = [r[0] for r in ROWS]

BAD_CONTENT: list[tuple[str, str, str]] = [
    (
        "wrong-header",
        header_text(ROWS).replace(HEADER_LINE, "time,open,high,low,close,volume"),
        r"unexpected header 'time,open,high,low,close,volume'",
    ),
    (
        "header-columns-out-of-order",
        header_text(ROWS).replace(HEADER_LINE, "open_time_ms,high,open,low,close,volume"),
        r"unexpected header",
    ),
    (
        "non-numeric-close",
        lines_with(ROWS, 4, f"{T[2]},102.0,104.0,101.0,abc,3.25"),
        line_error(4, r"close is not a number: 'abc'"),
    ),
    (
        "non-numeric-open-time",
        lines_with(ROWS, 3, "yesterday,101.0,103.0,100.0,101.5,2.25"),
        line_error(3, r"open_time_ms is not a number: 'yesterday'"),
    ),
    (
        "empty-field",
        lines_with(ROWS, 5, f"{T[3]},103.0,105.0,102.0,,4.25"),
        line_error(5, r"close is empty"),
    ),
    (
        "nan",
        lines_with(ROWS, 4, f"{T[2]},102.0,104.0,101.0,NaN,3.25"),
        line_error(4, r"close is not a number: 'NaN'"),
    ),
    (
        "infinite-volume",
        lines_with(ROWS, 6, f"{T[4]},104.0,106.0,103.0,104.5,inf"),
        line_error(6, r"NaN or infinite value"),
    ),
    (
        "high-below-low",
        lines_with(ROWS, 3, f"{T[1]},101.0,99.0,100.0,101.0,2.25"),
        line_error(3, r"high is below low"),
    ),
    (
        "close-above-high",
        lines_with(ROWS, 4, f"{T[2]},102.0,104.0,101.0,104.5,3.25"),
        line_error(4, r"open/close outside \[low, high\]"),
    ),
    (
        "open-below-low",
        lines_with(ROWS, 2, f"{T[0]},98.0,102.0,99.0,100.5,1.25"),
        line_error(2, r"open/close outside \[low, high\]"),
    ),
    (
        "negative-volume",
        lines_with(ROWS, 5, f"{T[3]},103.0,105.0,102.0,103.5,-0.5"),
        line_error(5, r"negative volume"),
    ),
    (
        "zero-price",
        lines_with(ROWS, 4, f"{T[2]},0.0,0.0,0.0,0.0,3.25"),
        line_error(4, r"non-positive price"),
    ),
    (
        "duplicated-open-time",
        lines_with(ROWS, 4, f"{T[1]},102.0,104.0,101.0,102.5,3.25"),
        line_error(4, r"duplicated open time"),
    ),
    (
        "unsorted-open-times",
        header_text([ROWS[0], ROWS[2], ROWS[1], ROWS[3], ROWS[4]]),
        line_error(4, r"open time earlier than the previous row \(file not sorted\)"),
    ),
    (
        "open-time-not-on-a-minute",
        lines_with(ROWS, 5, f"{T[3] + 30_000},103.0,105.0,102.0,103.5,4.25"),
        line_error(5, r"open time is not on a whole minute"),
    ),
    (
        "fractional-open-time",
        lines_with(ROWS, 3, f"{T[1]}.5,101.0,103.0,100.0,101.5,2.25"),
        line_error(3, r"open time is not an integer"),
    ),
    (
        "hourly-rows-in-a-file-named-1m",
        header_text(kline_rows(5, step_ms=60 * MINUTE_MS)),
        r"its name says 1m bars, but they are 1h apart at the closest",
    ),
    (
        "seven-minute-rows",
        header_text(kline_rows(5, step_ms=7 * MINUTE_MS)),
        r"bars are 420 s apart at the closest, which is no bar interval barbus replays "
        r"\(1m, 3m, 5m, 15m, 30m, 1h, 2h, 4h, 6h, 8h, 12h, 1d\)",
    ),
    (
        "header-only",
        HEADER_LINE + "\n",
        r"no data rows",
    ),
    (
        "binance-row-with-too-few-columns",
        f"{T0_MS},100.0,101.0,99.0\n",
        r"line 1 has 4 columns",
    ),
    (
        "binance-bad-row-counts-lines-from-1",
        binance_text(ROWS).replace(f"{T[2]},102.00000000", f"{T[2]},-102.00000000"),
        line_error(3, r"open/close outside \[low, high\]"),
    ),
    (
        # Reported against the *first* offending line, with a count of the others.
        "several-bad-rows",
        header_text([(t, o, h, lo, c, -1.0) for t, o, h, lo, c, _ in ROWS]),
        line_error(2, r"negative volume \(and 4 more\)"),
    ),
]


@pytest.mark.parametrize(
    ("text", "message"),
    [pytest.param(text, message, id=name) for name, text, message in BAD_CONTENT],
)
@pytest.mark.parametrize("compressed", [False, True], ids=["csv", "gzip"])
def test_bad_content_raises_data_error_naming_file_line_and_problem(
    tmp_path: Path, text: str, message: str, compressed: bool
) -> None:
    name = "BTCUSDT_1m.csv.gz" if compressed else "BTCUSDT_1m.csv"
    path = write_gz(tmp_path / name, text) if compressed else write(tmp_path / name, text)

    with pytest.raises(DataError, match=message) as info:
        load_bars(path)

    assert str(info.value).startswith(f"{path}: ")
    assert "\n" not in str(info.value)


def test_missing_file_raises_data_error(tmp_path: Path) -> None:
    path = tmp_path / "BTCUSDT_1m_missing.csv"

    with pytest.raises(DataError, match=re.escape(f"{path}: no such data file")):
        load_bars(path)


def test_missing_file_with_explicit_symbol_raises_data_error(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"

    with pytest.raises(DataError, match="no such data file"):
        load_bars(path, symbol="BTCUSDT")


def test_directory_raises_data_error(tmp_path: Path) -> None:
    folder = tmp_path / "BTCUSDT_1m"
    folder.mkdir()

    with pytest.raises(DataError, match=re.escape(f"{folder}: is a directory")):
        load_bars(folder)


def test_empty_file_raises_data_error(tmp_path: Path) -> None:
    path = write(tmp_path / "BTCUSDT_1m.csv", "")

    with pytest.raises(DataError, match="file is empty"):
        load_bars(path)


def test_empty_gzip_file_raises_data_error(tmp_path: Path) -> None:
    path = write_gz(tmp_path / "BTCUSDT_1m.csv.gz", "")

    with pytest.raises(DataError, match="file is empty"):
        load_bars(path)


def test_truncated_real_gzip_raises_corrupt_gzip_error(tmp_path: Path, btc_2023_path: Path) -> None:
    data = btc_2023_path.read_bytes()
    path = tmp_path / "BTCUSDT_1m_truncated.csv.gz"
    path.write_bytes(data[: len(data) // 2])

    with pytest.raises(DataError, match="corrupt gzip data"):
        load_bars(path)


def test_gzip_with_damaged_body_raises_corrupt_gzip_error(tmp_path: Path) -> None:
    packed = bytearray(gzip.compress(header_text(kline_rows(50)).encode("utf-8")))
    packed[20:40] = b"\xff" * 20
    path = tmp_path / "BTCUSDT_1m.csv.gz"
    path.write_bytes(bytes(packed))

    with pytest.raises(DataError, match="corrupt gzip data"):
        load_bars(path)


def test_binary_junk_raises_not_utf8_error(tmp_path: Path) -> None:
    path = tmp_path / "BTCUSDT_1m.csv"
    path.write_bytes(bytes(range(256)) * 8)

    with pytest.raises(DataError, match="not a UTF-8 text CSV file"):
        load_bars(path)


def test_latin1_text_raises_not_utf8_error(tmp_path: Path) -> None:
    path = tmp_path / "BTCUSDT_1m.csv"
    path.write_bytes((header_text(kline_rows(3)) + "# prix en \xa3\n").encode("latin-1"))

    with pytest.raises(DataError, match="not a UTF-8 text CSV file"):
        load_bars(path)


def test_file_name_without_symbol_and_no_symbol_given_raises(tmp_path: Path) -> None:
    path = write(tmp_path / "data.csv", header_text(kline_rows(3)))

    with pytest.raises(DataError, match="cannot tell the symbol from the file name; pass --symbol"):
        load_bars(path)


def test_lowercase_symbol_in_file_name_is_not_guessed(tmp_path: Path) -> None:
    path = write(tmp_path / "btcusdt_1m.csv", header_text(kline_rows(3)))

    with pytest.raises(DataError, match="cannot tell the symbol"):
        load_bars(path)


def test_bad_row_after_a_blank_line_names_its_true_file_line(tmp_path: Path) -> None:
    # Line 1 header, lines 2-3 rows, line 4 blank, line 5 the bad row.
    rows = kline_rows(3)
    text = header_text(rows[:2]) + "\n" + f"{rows[2][0]},102.0,104.0,101.0,abc,3.25\n"
    path = write(tmp_path / "BTCUSDT_1m.csv", text)

    with pytest.raises(DataError, match=line_error(5, "close is not a number")):
        load_bars(path)


def test_infinite_open_time_raises_data_error_without_numpy_warning(tmp_path: Path) -> None:
    # pytest turns warnings into errors here: a RuntimeWarning from the int64 cast fails the test.
    path = write(
        tmp_path / "BTCUSDT_1m.csv", lines_with(ROWS, 4, "inf,102.0,104.0,101.0,102.5,3.25")
    )

    with pytest.raises(DataError, match=line_error(4, "")):
        load_bars(path)


def test_open_time_beyond_int64_raises_data_error_without_numpy_warning(tmp_path: Path) -> None:
    path = write(
        tmp_path / "BTCUSDT_1m.csv", lines_with(ROWS, 4, "1e20,102.0,104.0,101.0,102.5,3.25")
    )

    with pytest.raises(DataError, match=line_error(4, "")):
        load_bars(path)
