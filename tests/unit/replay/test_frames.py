"""DataFrame ingest (:mod:`replay.frames`): every time form gives the same bars, every bad frame
the file loader's message, and no epoch unit is ever silently read as 1970."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from barbus.daemon.core.errors import ConfigError, DataError
from barbus.replay.frames import series_from_frame
from barbus.replay.loader import load_bars

T0_MS = 1_747_699_200_000  # 2025-05-20T00:00:00Z, by hand: 20228 days x 86_400_000 ms
MINUTE_MS = 60_000
N = 500
PRICES = ("open", "high", "low", "close", "volume")


@pytest.fixture(scope="module")
def reference(btc_2025_path: Path) -> pd.DataFrame:
    """The first N bars of the bundled file: an integer ms column and five float columns."""
    series = load_bars(btc_2025_path)
    frame = pd.DataFrame(
        {
            name: column[:N]
            for name, column in zip(("open_time_ms", *PRICES), series.columns(), strict=True)
        }
    )
    # Hand-checked anchors: the file starts at 2025-05-20T00:00Z and has no gap in its first N.
    assert frame["open_time_ms"].iloc[0] == T0_MS
    assert (np.diff(frame["open_time_ms"]) == MINUTE_MS).all()
    return frame


def _prices(reference: pd.DataFrame) -> pd.DataFrame:
    return reference[list(PRICES)].copy()


def _assert_same_bars(frame: pd.DataFrame, reference: pd.DataFrame, **kwargs: object) -> None:
    series = series_from_frame(frame, "BTCUSDT", **kwargs)  # type: ignore[arg-type]
    expected_times = T0_MS + MINUTE_MS * np.arange(N, dtype=np.int64)
    assert np.array_equal(series.open_time_ms, expected_times)
    assert series.open_time_ms.dtype == np.int64
    for name in PRICES:
        assert np.array_equal(getattr(series, name), reference[name].to_numpy(np.float64)), name
    assert series.symbol == "BTCUSDT"
    assert series.source == "DataFrame"


def _utc_index(unit: str) -> pd.DatetimeIndex:
    stamps = np.datetime64(T0_MS, "ms") + np.arange(N) * np.timedelta64(1, "m")
    return pd.DatetimeIndex(stamps.astype(f"datetime64[{unit}]"))


def _indexed(unit: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    return lambda r: _prices(r).set_axis(_utc_index(unit))


def _time_column(unit: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    return lambda r: _prices(r).assign(time=_utc_index(unit).to_numpy())


FORMS: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
    "index naive ns": lambda r: _prices(r).set_axis(_utc_index("ns")),
    "index UTC": lambda r: _prices(r).set_axis(_utc_index("ns").tz_localize("UTC")),
    "index New York": lambda r: _prices(r).set_axis(
        _utc_index("ns").tz_localize("UTC").tz_convert("America/New_York")
    ),
    "index Tokyo [s]": lambda r: _prices(r).set_axis(
        _utc_index("s").tz_localize("UTC").tz_convert("Asia/Tokyo")
    ),
    **{f"index datetime64[{unit}]": _indexed(unit) for unit in ("s", "ms", "us", "ns")},
    **{f"column datetime64[{unit}]": _time_column(unit) for unit in ("s", "ms", "us", "ns")},
    "column Timestamp with +02:00": lambda r: _prices(r).assign(
        Date=_utc_index("ns").tz_localize("UTC").tz_convert("Europe/Berlin")
    ),
    "epoch ms int": lambda r: r.copy(),
    "epoch s int": lambda r: _prices(r).assign(timestamp=r["open_time_ms"] // 1000),
    "epoch us int": lambda r: _prices(r).assign(open_time=r["open_time_ms"] * 1000),
    "epoch ns int": lambda r: _prices(r).assign(open_time=r["open_time_ms"] * 1_000_000),
    "epoch ms float": lambda r: r.astype({"open_time_ms": "float64"}),
    "epoch s uint32": lambda r: _prices(r).assign(time=(r["open_time_ms"] // 1000).astype("u4")),
    "epoch ms nullable Int64": lambda r: r.astype({"open_time_ms": "Int64"}),
    "epoch ms as index named": lambda r: r.set_index("open_time_ms"),
    "ISO text with Z": lambda r: _prices(r).assign(
        timestamp=[f"{t.isoformat()}Z" for t in _utc_index("s").to_pydatetime()]
    ),
    "ISO text naive (UTC)": lambda r: _prices(r).assign(
        datetime=[str(t) for t in _utc_index("s").to_pydatetime()]
    ),
    "epoch us text": lambda r: _prices(r).assign(open_time=(r["open_time_ms"] * 1000).astype(str)),
    "capitalised yfinance-like": lambda r: (
        _prices(r)
        .rename(columns=str.title)
        .assign(**{"Adj Close": 1.0})
        .set_axis(pd.DatetimeIndex(_utc_index("ns"), name="Datetime"))
    ),
    "prices as text": lambda r: r.astype({name: str for name in PRICES}),
}


@pytest.mark.parametrize("form", list(FORMS))
def test_every_time_form_gives_the_same_bars(form: str, reference: pd.DataFrame) -> None:
    _assert_same_bars(FORMS[form](reference), reference)


@pytest.mark.parametrize(("unit", "scale"), [("s", 1 / 1000), ("ms", 1), ("us", 1000)])
def test_a_declared_unit_that_matches_is_accepted(
    unit: str, scale: float, reference: pd.DataFrame
) -> None:
    times = (reference["open_time_ms"] * scale).astype("int64")
    _assert_same_bars(_prices(reference).assign(time=times), reference, time_unit=unit)


def test_a_declared_unit_the_magnitude_contradicts_is_an_error(reference: pd.DataFrame) -> None:
    frame = _prices(reference).assign(time=reference["open_time_ms"] * 1000)
    with pytest.raises(DataError) as caught:
        series_from_frame(frame, "BTCUSDT", time_unit="ms")
    assert str(caught.value) == (
        "DataFrame: time_unit='ms' but the first open time 1747699200000000 looks like epoch us "
        "(2025-05-20T00:00:00Z); read as ms it would be 57352-05-20T00:00:00Z"
    )


@pytest.mark.parametrize(("unit", "factor"), [("us", 1000), ("ms", 1), ("s", 1 / 1000)])
def test_epoch_numbers_parsed_by_pandas_as_nanoseconds_are_an_error_not_1970(
    unit: str, factor: float, reference: pd.DataFrame
) -> None:
    """The reported bug: ``pd.to_datetime(us)`` silently gives January 1970 dates."""
    epoch = (reference["open_time_ms"] * factor).astype("int64")
    frame = _prices(reference).set_axis(pd.to_datetime(epoch))  # pandas' default unit: ns
    assert frame.index[0].year == 1970  # the trap itself
    with pytest.raises(DataError, match=re.escape(f"looks like epoch {unit} read as nanosec")):
        series_from_frame(frame, "BTCUSDT")
    with pytest.raises(DataError, match=re.escape(f"pd.to_datetime(values, unit='{unit}')")):
        series_from_frame(frame, "BTCUSDT")


def test_the_symbol_comes_from_a_one_valued_column_or_must_be_given(
    reference: pd.DataFrame,
) -> None:
    assert series_from_frame(reference.assign(symbol="ETHUSDT")).symbol == "ETHUSDT"
    with pytest.raises(DataError, match=r"DataFrame: cannot tell the symbol; pass symbol="):
        series_from_frame(reference)
    mixed = reference.assign(symbol=["A", "B"] * (N // 2))
    with pytest.raises(DataError, match=r"several symbols \(A, B\)"):
        series_from_frame(mixed)


# --------------------------------------------------------------------------------------------
# bad frames: the file loader's own message for the same data


def _csv_error(frame: pd.DataFrame, folder: Path) -> tuple[int, str]:
    """(data row, message tail) of the loader's error on ``frame`` written as a CSV."""
    path = folder / "BTCUSDT_1m_bad.csv"
    frame.to_csv(path, index=False, columns=["open_time_ms", *PRICES])
    with pytest.raises(DataError) as caught:
        load_bars(path)
    match = re.fullmatch(rf"{re.escape(str(path))}: line (\d+): (.*)", str(caught.value))
    assert match is not None, caught.value
    return int(match.group(1)) - 2, match.group(2)  # line 1 is the header, line 2 is row 0


def _frame_error(frame: pd.DataFrame) -> tuple[int, str]:
    with pytest.raises(DataError) as caught:
        series_from_frame(frame, "BTCUSDT")
    match = re.fullmatch(r"DataFrame: row (\d+): (.*)", str(caught.value))
    assert match is not None, caught.value
    return int(match.group(1)), match.group(2)


def _with(frame: pd.DataFrame, row: int, column: str, value: object) -> pd.DataFrame:
    changed = frame.astype({column: object}) if isinstance(value, str) else frame.copy()
    changed.loc[row, column] = value  # type: ignore[call-overload]
    return changed


BAD: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
    "unsorted": lambda r: r.iloc[[0, 1, 3, 2, *range(4, N)]].reset_index(drop=True),
    "duplicate time": lambda r: _with(r, 7, "open_time_ms", int(r["open_time_ms"].iloc[6])),
    "infinite volume": lambda r: _with(r, 12, "volume", float("inf")),
    "non-numeric text": lambda r: _with(r, 13, "high", "abc"),
    "empty text": lambda r: _with(r, 14, "low", " "),
    "high below low": lambda r: _with(r, 15, "high", float(r["low"].iloc[15]) - 1.0),
    "negative price": lambda r: _with(r, 16, "low", -1.0),
    "negative volume": lambda r: _with(r, 17, "volume", -2.0),
    "off-minute time": lambda r: _with(r, 18, "open_time_ms", int(r["open_time_ms"].iloc[18]) + 1),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_frame_gets_the_loaders_message_for_the_same_row(
    case: str, reference: pd.DataFrame, tmp_path: Path
) -> None:
    frame = BAD[case](reference)
    assert _frame_error(frame) == _csv_error(frame, tmp_path)


def test_seconds_apart_bars_get_the_loaders_whole_file_message(
    reference: pd.DataFrame, tmp_path: Path
) -> None:
    spaced = reference.assign(open_time_ms=T0_MS + 2 * MINUTE_MS * np.arange(N))
    path = tmp_path / "BTCUSDT_1m_spaced.csv"
    spaced.to_csv(path, index=False)
    with pytest.raises(DataError) as from_file:
        load_bars(path)
    with pytest.raises(DataError) as from_frame:
        series_from_frame(spaced, "BTCUSDT")
    assert str(from_frame.value) == str(from_file.value).replace(str(path), "DataFrame")


def test_a_missing_column_gets_the_parquet_message(reference: pd.DataFrame, tmp_path: Path) -> None:
    lacking = reference.drop(columns="volume")
    path = tmp_path / "BTCUSDT_1m_lacking.parquet"
    pq.write_table(pa.Table.from_pandas(lacking, preserve_index=False), path)
    with pytest.raises(DataError) as from_file:
        load_bars(path)
    with pytest.raises(DataError) as from_frame:
        series_from_frame(lacking, "BTCUSDT")
    tail = "columns ['open_time_ms', 'open', 'high', 'low', 'close'] lack ['volume']"
    assert str(from_file.value) == f"{path}: Parquet {tail}"
    assert str(from_frame.value) == f"DataFrame: {tail}"


def test_no_time_anywhere_names_every_accepted_form(reference: pd.DataFrame) -> None:
    with pytest.raises(DataError) as caught:
        series_from_frame(_prices(reference), "BTCUSDT")
    assert str(caught.value) == (
        "DataFrame: columns ['open', 'high', 'low', 'close', 'volume'] lack a time column "
        "(open_time_ms/open_time/timestamp/time/datetime/date/a DatetimeIndex)"
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.assign(close=True), "DataFrame: column close is bool, not numeric"),
        (
            lambda r: r.assign(open=pd.Timestamp("2025-01-01").as_unit("ns")),
            "DataFrame: column open is datetime64[ns], not numeric",
        ),
        (
            lambda r: _with(r, 11, "close", float("nan")),
            "DataFrame: row 11: NaN or infinite value",
        ),
        (
            lambda r: _with(r, 3, "open_time_ms", float("nan")),
            "DataFrame: row 3: open time is empty, negative or out of range",
        ),
        (
            lambda r: _with(r, 4, "open_time_ms", -60_000),
            "DataFrame: row 4: open time is empty, negative or out of range",
        ),
        (
            lambda r: r.assign(open_time_ms=r["open_time_ms"] + 0.5),
            "DataFrame: row 0: open time is not an integer",
        ),
        (
            lambda r: _prices(r).set_axis(_utc_index("ns") + pd.Timedelta(microseconds=5)),
            "DataFrame: row 0: open time is not on a whole minute",
        ),
        (
            lambda r: _prices(r).assign(
                time=pd.Series(_utc_index("ns")).where(lambda s: s.index != 9)
            ),
            "DataFrame: row 9: open time is empty (NaT)",
        ),
        (lambda r: r.iloc[:0], "DataFrame: no data rows"),
        (
            lambda r: r.assign(Close=r["close"]),
            "DataFrame: columns 'close' and 'Close' clash",
        ),
    ],
)
def test_other_bad_frames(
    change: Callable[[pd.DataFrame], pd.DataFrame], message: str, reference: pd.DataFrame
) -> None:
    with pytest.raises(DataError) as caught:
        series_from_frame(change(reference), "BTCUSDT")
    assert str(caught.value) == message


def test_wrong_arguments_are_config_errors(reference: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match="expected a pandas DataFrame, got list"):
        series_from_frame([1, 2], "BTCUSDT")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="time_unit must be one of s, ms, us, ns"):
        series_from_frame(reference, "BTCUSDT", time_unit="minutes")
    with pytest.raises(ConfigError, match="time_unit='s' is for epoch numbers"):
        series_from_frame(_prices(reference).set_axis(_utc_index("ns")), "X", time_unit="s")


def test_a_parquet_file_with_nanosecond_integer_times_loads(
    reference: pd.DataFrame, tmp_path: Path
) -> None:
    """The loader's rule the frames share: integer ns epochs are converted exactly (they were
    refused as invalid open times, being beyond a float's exact integers)."""
    path = tmp_path / "BTCUSDT_1m_ns.parquet"
    table = pa.Table.from_pandas(
        reference.assign(open_time_ms=reference["open_time_ms"] * 1_000_000), preserve_index=False
    )
    pq.write_table(table, path)
    series = load_bars(path)
    assert np.array_equal(series.open_time_ms, T0_MS + MINUTE_MS * np.arange(N))


def test_ignored_columns_may_clash(reference: pd.DataFrame) -> None:
    """Only the columns barbus reads must be unambiguous; the README says the rest are ignored."""
    plain = series_from_frame(reference, "BTCUSDT")
    clashing = series_from_frame(reference.assign(note="a", Note="b"), "BTCUSDT")
    assert list(clashing.close) == list(plain.close)
    assert list(clashing.open_time_ms) == list(plain.open_time_ms)
