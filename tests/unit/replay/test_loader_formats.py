"""The newer loader layouts: Parquet, plain OHLCV CSV with a ``timestamp`` column, the pyarrow
fast path against the pandas slow path, and a large synthetic file.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from barbus.daemon.core.errors import DataError
from barbus.daemon.core.series import BarSeries, IntArray
from barbus.daemon.core.synthetic import synthetic_series
from barbus.replay.loader import _fast_csv_columns, load_bars

COLUMNS = ("open_time_ms", "open", "high", "low", "close", "volume")
PRICES = ("open", "high", "low", "close", "volume")
HEADER_LINE = "open_time_ms,open,high,low,close,volume"
TIMESTAMP_HEADER = "timestamp,open,high,low,close,volume"
T0_MS = 1_747_699_200_000  # 2025-05-20T00:00:00Z
MINUTE_MS = 60_000

Row = tuple[int, float, float, float, float, float]


# --------------------------------------------------------------------------------------------
# builders


def kline_rows(n: int, *, start_ms: int = T0_MS) -> list[Row]:
    rows: list[Row] = []
    for i in range(n):
        base = 100.0 + i
        rows.append((start_ms + i * MINUTE_MS, base, base + 2.0, base - 1.0, base + 0.5, 1.25 + i))
    return rows


def csv_text(header: str | None, stamps: Sequence[str], rows: Sequence[Row]) -> str:
    """A CSV with the given time texts and the prices of ``rows`` (no header if None)."""
    lines = [] if header is None else [header]
    lines += [
        f"{stamp},{o!r},{h!r},{lo!r},{c!r},{v!r}"
        for stamp, (_, o, h, lo, c, v) in zip(stamps, rows, strict=True)
    ]
    return "\n".join(lines) + "\n"


def binance_line(row: Row) -> str:
    t, o, h, lo, c, v = row
    return f"{t},{o!r},{h!r},{lo!r},{c!r},{v!r},{t + MINUTE_MS - 1},{v * c!r},17,0.5,1.5,0"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def assert_same_bars(actual: BarSeries, expected: BarSeries) -> None:
    assert actual.symbol == expected.symbol
    assert len(actual) == len(expected)
    for name in COLUMNS:
        assert np.array_equal(getattr(actual, name), getattr(expected, name)), name
    assert actual.open_time_ms.dtype == np.int64


def csv_lines(path: Path) -> list[str]:
    """The text lines of a bundled ``.csv.gz`` (line 0 is the header)."""
    return gzip.decompress(path.read_bytes()).decode("utf-8").splitlines()


def series_table(series: BarSeries, time: pa.Array | None = None, name: str = "") -> pa.Table:
    """The series as an Arrow table; the time column as given (default open_time_ms int64)."""
    columns: dict[str, pa.Array] = {
        name or "open_time_ms": pa.array(series.open_time_ms) if time is None else time
    }
    columns.update({price: pa.array(getattr(series, price)) for price in PRICES})
    return pa.table(columns)


def utc_iso(ms: IntArray, suffix: str = "Z", sep: str = "T") -> list[str]:
    text = np.datetime_as_string(ms.astype("datetime64[ms]"), unit="s")
    return [t.replace("T", sep) + suffix for t in text.tolist()]


@pytest.fixture(scope="module")
def btc_2025(btc_2025_path: Path) -> BarSeries:
    return load_bars(btc_2025_path)


@pytest.fixture(scope="module")
def btc_2023(btc_2023_path: Path) -> BarSeries:
    return load_bars(btc_2023_path)


# --------------------------------------------------------------------------------------------
# Parquet


def test_parquet_written_by_pyarrow_loads_equal_to_the_csv(
    tmp_path: Path, btc_2025: BarSeries
) -> None:
    path = tmp_path / "BTCUSDT_1m_2025.parquet"
    pq.write_table(series_table(btc_2025), path)

    series = load_bars(path)

    assert_same_bars(series, btc_2025)
    assert series.source == str(path)
    assert series.interval == "1m"


def test_parquet_written_by_pandas_keeps_the_gap_of_the_2023_file(
    tmp_path: Path, btc_2023: BarSeries
) -> None:
    frame = pd.DataFrame({name: getattr(btc_2023, name) for name in COLUMNS})
    path = tmp_path / "BTCUSDT_1m_2023.parquet"
    frame.to_parquet(path, index=False)

    series = load_bars(path)

    assert_same_bars(series, btc_2023)
    assert series.gaps() == btc_2023.gaps()
    assert series.gaps().largest_minutes == 80


@pytest.mark.parametrize("unit", ["ms", "us", "ns"])
def test_parquet_with_a_utc_datetime_timestamp_column_loads_equal_to_the_csv(
    tmp_path: Path, btc_2025: BarSeries, unit: str
) -> None:
    frame = pd.DataFrame({name: getattr(btc_2025, name) for name in PRICES})
    stamps = pd.to_datetime(btc_2025.open_time_ms, unit="ms", utc=True)
    frame.insert(0, "timestamp", stamps.astype(f"datetime64[{unit}, UTC]"))
    path = tmp_path / "BTCUSDT_1m_ts.parquet"
    frame.to_parquet(path, index=False)
    assert pq.read_schema(path).field("timestamp").type == pa.timestamp(unit, tz="UTC")

    assert_same_bars(load_bars(path), btc_2025)


def test_parquet_with_a_naive_timestamp_column_is_read_as_utc(
    tmp_path: Path, btc_2023: BarSeries
) -> None:
    naive = pa.array(btc_2023.open_time_ms, type=pa.timestamp("ms"))
    path = tmp_path / "BTCUSDT_1m_naive.parquet"
    pq.write_table(series_table(btc_2023, naive, "timestamp"), path)

    assert_same_bars(load_bars(path), btc_2023)


def test_parquet_with_open_time_alias_and_capitalised_names_loads(
    tmp_path: Path, btc_2023: BarSeries
) -> None:
    table = series_table(btc_2023, name="open_time")
    table = table.rename_columns([n.title() for n in table.column_names])
    table = table.append_column("Trades", pa.array(np.arange(len(btc_2023))))
    path = tmp_path / "BTCUSDT_1m_alias.parquet"
    pq.write_table(table, path)

    assert_same_bars(load_bars(path), btc_2023)


def test_parquet_with_integer_prices_loads_them_as_floats(tmp_path: Path) -> None:
    rows = kline_rows(3)
    table = pa.table(
        {
            "open_time_ms": pa.array([r[0] for r in rows], pa.int64()),
            **{name: pa.array([100, 101, 102], pa.int32()) for name in ("open", "close")},
            "high": pa.array([103, 103, 103], pa.int64()),
            "low": pa.array([99, 99, 99], pa.int64()),
            "volume": pa.array([1, 0, 2], pa.int64()),
        }
    )
    path = tmp_path / "BTCUSDT_int.parquet"
    pq.write_table(table, path)

    series = load_bars(path)

    assert series.close.dtype == np.float64
    assert series.close.tolist() == [100.0, 101.0, 102.0]
    assert series.zero_volume_bars() == 1


@pytest.mark.parametrize("missing", PRICES)
def test_parquet_missing_a_price_column_names_it(
    tmp_path: Path, btc_2023: BarSeries, missing: str
) -> None:
    path = tmp_path / "BTCUSDT_1m.parquet"
    pq.write_table(series_table(btc_2023).drop_columns([missing]), path)

    with pytest.raises(DataError, match=re.escape(f"lack ['{missing}']")) as info:
        load_bars(path)

    assert str(info.value).startswith(f"{path}: ")


def test_parquet_without_a_time_column_says_which_names_are_accepted(
    tmp_path: Path, btc_2023: BarSeries
) -> None:
    path = tmp_path / "BTCUSDT_1m.parquet"
    pq.write_table(series_table(btc_2023, name="time"), path)

    with pytest.raises(
        DataError, match=re.escape("a time column (open_time_ms/open_time/timestamp)")
    ):
        load_bars(path)


def test_parquet_with_a_text_price_column_is_rejected(tmp_path: Path) -> None:
    rows = kline_rows(3)
    table = pa.table({name: [r[i] for r in rows] for i, name in enumerate(COLUMNS)})
    table = table.set_column(4, "close", pa.array(["1", "2", "3"]))
    path = tmp_path / "BTCUSDT_text.parquet"
    pq.write_table(table, path)

    with pytest.raises(DataError, match="Parquet column close is string, not numeric"):
        load_bars(path)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(HEADER_LINE.encode() + b"\n1747699200000,1,1,1,1,1\n", id="csv-text"),
        pytest.param(bytes(range(256)) * 16, id="binary-junk"),
        pytest.param(b"", id="empty"),
        pytest.param(b"PAR1", id="magic-only"),
    ],
)
def test_non_parquet_file_named_parquet_raises_data_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "BTCUSDT_1m.parquet"
    path.write_bytes(content)

    with pytest.raises(DataError, match="not a readable Parquet file") as info:
        load_bars(path)

    assert str(info.value).startswith(f"{path}: ")


def test_truncated_parquet_raises_data_error(tmp_path: Path, btc_2023: BarSeries) -> None:
    path = tmp_path / "BTCUSDT_1m.parquet"
    pq.write_table(series_table(btc_2023), path)
    path.write_bytes(path.read_bytes()[:-100])

    with pytest.raises(DataError, match="not a readable Parquet file"):
        load_bars(path)


def test_parquet_with_a_duplicated_open_time_names_the_row(tmp_path: Path) -> None:
    rows = kline_rows(5)
    times = [r[0] for r in rows]
    times[2] = times[1]
    table = pa.table(
        {"open_time_ms": times, **{n: [r[i + 1] for r in rows] for i, n in enumerate(PRICES)}}
    )
    path = tmp_path / "BTCUSDT_dup.parquet"
    pq.write_table(table, path)

    with pytest.raises(DataError, match=re.escape(f"{path}: row 3: duplicated open time")):
        load_bars(path)


def test_parquet_with_a_missing_price_names_the_column(tmp_path: Path) -> None:
    rows = kline_rows(3)
    table = pa.table({name: [r[i] for r in rows] for i, name in enumerate(COLUMNS)})
    table = table.set_column(4, "close", pa.array([100.5, None, 102.5], pa.float64()))
    path = tmp_path / "BTCUSDT_null.parquet"
    pq.write_table(table, path)

    with pytest.raises(DataError, match=re.escape("Parquet columns ['close'] have missing values")):
        load_bars(path)


@pytest.mark.parametrize(
    ("name", "times"),
    [
        pytest.param("open_time_ms", pa.array([T0_MS, None, T0_MS + 2 * MINUTE_MS]), id="int"),
        pytest.param(
            "timestamp",
            pa.array([T0_MS, None, T0_MS + 2 * MINUTE_MS], pa.timestamp("ms", tz="UTC")),
            id="datetime",
        ),
    ],
)
def test_parquet_with_a_missing_open_time_says_so(
    tmp_path: Path, name: str, times: pa.Array
) -> None:
    # BUG (datetime case): a null timestamp becomes NaT, is cast to int64 min and is then
    # reported as "row 2: open time is not on a whole minute" instead of as a missing time.
    columns = {name: times, **{price: pa.array([100.0, 100.0, 100.0]) for price in PRICES}}
    path = tmp_path / "BTCUSDT_null_time.parquet"
    pq.write_table(pa.table(columns), path)

    with pytest.raises(DataError, match=re.escape(f"column {name} holds invalid or missing")):
        load_bars(path)


def test_parquet_without_rows_raises_data_error(tmp_path: Path, btc_2023: BarSeries) -> None:
    path = tmp_path / "BTCUSDT_empty.parquet"
    pq.write_table(series_table(btc_2023).slice(0, 0), path)

    with pytest.raises(DataError, match="no data rows"):
        load_bars(path)


# --------------------------------------------------------------------------------------------
# plain OHLCV CSV: header timestamp,open,high,low,close,volume


def as_text(fmt: Callable[[datetime], str]) -> list[str]:
    return [fmt(datetime.fromtimestamp(r[0] / 1000, UTC)) for r in kline_rows(4)]


TIMESTAMP_FORMATS: dict[str, list[str]] = {
    "iso-space-naive": as_text(lambda d: d.strftime("%Y-%m-%d %H:%M:%S")),
    "iso-t-z": as_text(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")),
    "iso-plus-02": as_text(lambda d: (d + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+02:00")),
    "iso-minus-05": as_text(lambda d: (d - timedelta(hours=5)).strftime("%Y-%m-%d %H:%M:%S-05:00")),
    "iso-milliseconds": as_text(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.000Z")),
    "epoch-seconds": [str(r[0] // 1000) for r in kline_rows(4)],
    "epoch-ms": [str(r[0]) for r in kline_rows(4)],
    "epoch-us": [str(r[0] * 1000) for r in kline_rows(4)],
}


def test_timestamp_formats_spell_the_times_expected() -> None:
    # The literal texts, so the parametrised cases below are checked against something readable.
    assert TIMESTAMP_FORMATS["iso-space-naive"][0] == "2025-05-20 00:00:00"
    assert TIMESTAMP_FORMATS["iso-t-z"][1] == "2025-05-20T00:01:00Z"
    assert TIMESTAMP_FORMATS["iso-plus-02"][0] == "2025-05-20T02:00:00+02:00"
    assert TIMESTAMP_FORMATS["iso-minus-05"][0] == "2025-05-19 19:00:00-05:00"
    assert TIMESTAMP_FORMATS["epoch-seconds"][0] == "1747699200"
    assert TIMESTAMP_FORMATS["epoch-us"][0] == "1747699200000000"


@pytest.mark.parametrize("compressed", [False, True], ids=["csv", "gzip"])
@pytest.mark.parametrize("stamps", TIMESTAMP_FORMATS.values(), ids=TIMESTAMP_FORMATS.keys())
def test_every_timestamp_spelling_gives_the_same_open_times(
    tmp_path: Path, stamps: list[str], compressed: bool
) -> None:
    rows = kline_rows(4)
    text = csv_text(TIMESTAMP_HEADER, stamps, rows)
    path = tmp_path / ("BTCUSDT_ohlcv.csv.gz" if compressed else "BTCUSDT_ohlcv.csv")
    if compressed:
        path.write_bytes(gzip.compress(text.encode("utf-8")))
    else:
        write(path, text)

    series = load_bars(path)

    assert series.open_time_ms.tolist() == [r[0] for r in rows]
    assert series.open_time_ms.dtype == np.int64
    assert series.close.tolist() == [r[4] for r in rows]


def test_mixed_iso_spellings_in_one_file_agree(tmp_path: Path) -> None:
    rows = kline_rows(4)
    stamps = [
        "2025-05-20T00:00:00Z",
        "2025-05-20T02:01:00+02:00",
        "2025-05-20 00:02:00",
        "2025-05-20T00:03:00.000Z",
    ]
    path = write(tmp_path / "BTCUSDT_mixed.csv", csv_text(TIMESTAMP_HEADER, stamps, rows))

    assert load_bars(path).open_time_ms.tolist() == [r[0] for r in rows]


def bundled_with_times(path: Path, stamps: Sequence[str]) -> str:
    lines = csv_lines(path)
    body = [f"{s},{line.split(',', 1)[1]}" for s, line in zip(stamps, lines[1:], strict=True)]
    return "\n".join([TIMESTAMP_HEADER, *body]) + "\n"


SPELLINGS: dict[str, Callable[[IntArray], list[str]]] = {
    "iso-z": utc_iso,
    "iso-space-naive": lambda ms: utc_iso(ms, suffix="", sep=" "),
    "iso-plus-02": lambda ms: utc_iso(ms + 2 * 3_600_000, suffix="+02:00"),
    "epoch-seconds": lambda ms: [str(t // 1000) for t in ms.tolist()],
    "epoch-ms": lambda ms: [str(t) for t in ms.tolist()],
    "epoch-us": lambda ms: [str(t * 1000) for t in ms.tolist()],
}


@pytest.mark.parametrize("spell", SPELLINGS.values(), ids=SPELLINGS.keys())
def test_bundled_2023_file_with_a_timestamp_column_loads_equal_to_the_original(
    tmp_path: Path,
    btc_2023_path: Path,
    btc_2023: BarSeries,
    spell: Callable[[IntArray], list[str]],
) -> None:
    text = bundled_with_times(btc_2023_path, spell(btc_2023.open_time_ms))
    path = write(tmp_path / "BTCUSDT_1m_2023_ohlcv.csv", text)

    series = load_bars(path)

    assert_same_bars(series, btc_2023)
    assert series.gaps().largest_minutes == 80


@pytest.mark.parametrize(
    "bad",
    ["2025-05-2OT00:02:00Z", "2025-02-30 00:00:00", "20 May 2025 00:02", "", "yesterday"],
    ids=["letter-o", "february-30", "words", "empty", "not-a-time"],
)
def test_bad_iso_timestamp_names_its_line(tmp_path: Path, bad: str) -> None:
    stamps = [*TIMESTAMP_FORMATS["iso-t-z"][:2], bad, TIMESTAMP_FORMATS["iso-t-z"][3]]
    path = write(tmp_path / "BTCUSDT_bad.csv", csv_text(TIMESTAMP_HEADER, stamps, kline_rows(4)))

    with pytest.raises(DataError, match=re.escape(f"{path}: line 4: timestamp is not an ISO-8601")):
        load_bars(path)


@pytest.mark.parametrize("bad", ["abc", ""], ids=["text", "empty"])
def test_bad_value_among_epoch_ms_timestamps_names_its_own_line(tmp_path: Path, bad: str) -> None:
    # BUG: one non-number makes the slow path treat the whole column as ISO text, so the error
    # names line 2 (the first, valid, epoch number) instead of line 4.
    stamps = [*TIMESTAMP_FORMATS["epoch-ms"][:2], bad, TIMESTAMP_FORMATS["epoch-ms"][3]]
    path = write(tmp_path / "BTCUSDT_bad.csv", csv_text(TIMESTAMP_HEADER, stamps, kline_rows(4)))

    with pytest.raises(DataError, match=re.escape(f"{path}: line 4: ")):
        load_bars(path)


def test_timestamp_layout_validation_errors_name_the_line(tmp_path: Path) -> None:
    stamps = [*TIMESTAMP_FORMATS["iso-t-z"][:2], "2025-05-20T02:01:00+02:00"]
    path = write(tmp_path / "BTCUSDT_dup.csv", csv_text(TIMESTAMP_HEADER, stamps, kline_rows(3)))

    with pytest.raises(DataError, match=re.escape(f"{path}: line 4: duplicated open time")):
        load_bars(path)


# --------------------------------------------------------------------------------------------
# the pyarrow fast path and the pandas slow path agree


def with_line_inserted(lines: list[str], index: int, extra: Sequence[str]) -> str:
    return "\n".join([*lines[:index], *extra, *lines[index:]]) + "\n"


@pytest.mark.parametrize(
    "blank",
    [[""], ["", ""], ["   "], ["\t"]],
    ids=["empty-line", "two-empty-lines", "spaces-only", "tab-only"],
)
def test_blank_lines_in_the_middle_of_the_bundled_file_change_nothing(
    tmp_path: Path, btc_2023_path: Path, btc_2023: BarSeries, blank: list[str]
) -> None:
    # An empty line keeps pyarrow's fast path; a whitespace-only one sends the file to the
    # pandas path. Both must give the very same floats.
    lines = csv_lines(btc_2023_path)
    path = write(
        tmp_path / "BTCUSDT_1m_blank.csv", with_line_inserted(lines, len(lines) // 2, blank)
    )

    assert_same_bars(load_bars(path), btc_2023)


def test_padded_fields_load_like_plain_ones(tmp_path: Path) -> None:
    rows = kline_rows(5)
    plain = write(
        tmp_path / "BTCUSDT_plain.csv", csv_text(HEADER_LINE, [str(r[0]) for r in rows], rows)
    )
    padded_text = "\n".join([HEADER_LINE] + [", ".join(f" {v!r} " for v in row) for row in rows])
    padded = write(tmp_path / "BTCUSDT_padded.csv", padded_text + "\n")

    assert_same_bars(load_bars(padded), load_bars(plain))


def header_layout(rows: Sequence[Row]) -> list[str]:
    return csv_text(HEADER_LINE, [str(r[0]) for r in rows], rows).splitlines()


def timestamp_layout(rows: Sequence[Row]) -> list[str]:
    stamps = utc_iso(np.array([r[0] for r in rows], dtype=np.int64))
    return csv_text(TIMESTAMP_HEADER, stamps, rows).splitlines()


def binance_layout(rows: Sequence[Row]) -> list[str]:
    return [binance_line(r) for r in rows]


LAYOUTS: dict[str, Callable[[Sequence[Row]], list[str]]] = {
    "header": header_layout,
    "timestamp": timestamp_layout,
    "binance": binance_layout,
}


def break_close(line: str) -> str:
    fields = line.split(",")
    fields[4] = "abc"
    return ",".join(fields)


def repeat_previous_time(line: str, previous: str) -> str:
    return previous.split(",", 1)[0] + "," + line.split(",", 1)[1]


@pytest.mark.parametrize("blank", [[""], ["", "  ", ""]], ids=["one-blank", "three-blank"])
@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=LAYOUTS.keys())
@pytest.mark.parametrize("problem", ["not-a-number", "duplicated-time"])
def test_errors_after_blank_lines_name_the_true_file_line(
    tmp_path: Path,
    layout: Callable[[Sequence[Row]], list[str]],
    blank: list[str],
    problem: str,
) -> None:
    lines = layout(kline_rows(8))
    first_data = 1 if lines[0].startswith(("open_time_ms", "timestamp")) else 0
    bad_index = first_data + 5  # the sixth data row
    if problem == "not-a-number":
        lines[bad_index] = break_close(lines[bad_index])
        what = "close is not a number: 'abc'"
    else:
        lines[bad_index] = repeat_previous_time(lines[bad_index], lines[bad_index - 1])
        what = "duplicated open time"
    text = with_line_inserted(lines, first_data + 2, blank)
    path = write(tmp_path / "BTCUSDT_1m.csv", text)
    true_line = 1 + text.splitlines().index(lines[bad_index])

    with pytest.raises(DataError, match=re.escape(f"{path}: line {true_line}: {what}")):
        load_bars(path)

    assert true_line == bad_index + 1 + len(blank)


def test_headerless_binance_csv_takes_the_pyarrow_fast_path(tmp_path: Path) -> None:
    # BUG: the fast path names 64 columns for a headerless file, and pyarrow insists every row
    # has exactly that many ("Expected 64 columns, got 12"), so every Binance kline file falls
    # back to the much slower pandas text parse even when nothing is wrong with it.
    rows = kline_rows(5)
    path = write(tmp_path / "BTCUSDT-1m-2025-05-20.csv", "\n".join(map(binance_line, rows)) + "\n")

    columns = _fast_csv_columns(path, path.read_bytes())

    assert columns is not None
    times, prices = columns
    assert times.tolist() == [r[0] for r in rows]
    assert prices[3].tolist() == [r[4] for r in rows]


def test_header_csv_takes_the_pyarrow_fast_path(tmp_path: Path) -> None:
    rows = kline_rows(5)
    path = write(tmp_path / "BTCUSDT_1m.csv", "\n".join(header_layout(rows)) + "\n")

    assert _fast_csv_columns(path, path.read_bytes()) is not None


# --------------------------------------------------------------------------------------------
# a large synthetic file


@pytest.fixture(scope="module")
def synthetic_200k() -> BarSeries:
    """Prices on a 0.01 tick, volumes on a 1e-5 step (synthetic_series' default)."""
    return synthetic_series(200_000, seed=11, symbol="SYNTHUSDT")


@pytest.mark.parametrize("layout", ["open_time_ms", "timestamp-iso"])
def test_200k_row_synthetic_csv_loads_the_written_values_exactly(
    tmp_path: Path, synthetic_200k: BarSeries, layout: str
) -> None:
    s = synthetic_200k
    assert np.all(s.low <= np.minimum(s.open, s.close))
    assert np.all(s.high >= np.maximum(s.open, s.close))
    if layout == "open_time_ms":
        header, stamps = HEADER_LINE, [str(t) for t in s.open_time_ms.tolist()]
    else:
        header, stamps = TIMESTAMP_HEADER, utc_iso(s.open_time_ms)
    body = zip(
        stamps,
        s.open.tolist(),
        s.high.tolist(),
        s.low.tolist(),
        s.close.tolist(),
        s.volume.tolist(),
        strict=True,
    )
    lines = [header, *(f"{t},{o!r},{h!r},{lo!r},{c!r},{v!r}" for t, o, h, lo, c, v in body)]
    path = write(tmp_path / "SYNTHUSDT_1m_200k.csv", "\n".join(lines) + "\n")

    series = load_bars(path)

    assert len(series) == 200_000
    assert_same_bars(series, s)
    assert series.gaps().count == 0
    assert int(series.open_time_ms[-1]) == T0_MS + 199_999 * MINUTE_MS
