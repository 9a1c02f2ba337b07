"""Input bars of any interval: an hourly file replays an hourly strategy as the minutes do.

The reference hourly file is the bundled 1-minute sample resampled by plain pandas
(``resample("1h", label="left", closed="left")``: first open, highest high, lowest low, last
close, summed volume), independent of barbus's own aggregation. metatrend at 1h without a stop
decides on the same hourly bars either way, and its market orders fill at the open of the next
input bar, which is the next hour's open in both: the trades are identical.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from barbus import backtest, sweep
from barbus.daemon.core.errors import DataError, StrategyError
from barbus.daemon.core.events import MINUTE_MS
from barbus.daemon.core.series import BarSeries
from barbus.replay.cache import BarCache
from barbus.replay.loader import load_bars
from barbus.replay.runner import ReplayConfig, close_marks, run_replay
from tests.conftest import BTC_2025
from tests.kit.processes import barbus

START = "2025-06-01"
END = "2025-08-01"  # on the hour: the last hour is whole in both files
HOUR_MS = 60 * MINUTE_MS


def resampled(path: Path, rule: str, out: Path) -> Path:
    """``path``'s bars resampled to ``rule`` with pandas, written in the barbus layout."""
    minutes = load_bars(path)
    frame = pd.DataFrame(
        {name: getattr(minutes, name) for name in ("open", "high", "low", "close", "volume")},
        index=pd.to_datetime(minutes.open_time_ms, unit="ms", utc=True),
    )
    bars = frame.resample(rule, label="left", closed="left").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    bars = bars.dropna()
    opens = pd.DatetimeIndex(bars.index)
    bars.insert(0, "open_time_ms", (opens - pd.Timestamp(0, tz="UTC")) // pd.Timedelta("1ms"))
    bars.to_csv(out, index=False, float_format=lambda value: repr(float(value)))  # type: ignore[arg-type]
    return out


@pytest.fixture(scope="module")
def hourly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return resampled(BTC_2025, "1h", tmp_path_factory.mktemp("hourly") / "BTCUSDT_1h.csv")


def test_the_hourly_file_is_detected_as_hourly(hourly: Path) -> None:
    series = load_bars(hourly)
    hours_with_minutes = np.unique(load_bars(BTC_2025).open_time_ms // HOUR_MS)

    assert series.interval == "1h"
    assert (series.open_time_ms // HOUR_MS).tolist() == hours_with_minutes.tolist()
    assert series.gaps().count == 0


def test_metatrend_at_1h_trades_the_same_on_minutes_and_on_their_hours(hourly: Path) -> None:
    def trades(data: Path) -> list[object]:
        config = ReplayConfig(
            "metatrend",
            params={"timeframe": "1h"},
            data=data,
            start_ms=_ms(START),
            end_ms=_ms(END),
        )
        return list(run_replay(config).trades)

    on_minutes, on_hours = trades(BTC_2025), trades(hourly)

    assert len(on_minutes) >= 5
    assert on_hours == on_minutes


@pytest.mark.process
def test_the_cli_replays_the_hourly_file_to_the_same_trade_log(
    hourly: Path, tmp_path: Path
) -> None:
    args = ("--strategy", "metatrend", "--param", "timeframe=1h", "--start", START, "--end", END)
    minutes = barbus("replay", *args, "--out", tmp_path / "m", "--no-plot")
    hours = barbus("replay", *args, "--data", hourly, "--out", tmp_path / "h", "--no-plot")

    assert minutes.returncode == 0, minutes.stderr
    assert hours.returncode == 0, hours.stderr
    trades = (tmp_path / "h" / "trades.csv").read_bytes()
    assert trades == (tmp_path / "m" / "trades.csv").read_bytes()
    summary = json.loads((tmp_path / "h" / "summary.json").read_text())
    assert summary["bars"] == 61 * 24  # June and July, an hour a bar


def test_a_4h_strategy_runs_on_hourly_bars_as_on_minutes(hourly: Path) -> None:
    def trades(data: Path) -> list[object]:
        params: dict[str, str | int | float | bool] = {"fast": 3, "slow": 8, "timeframe": "4h"}
        config = ReplayConfig("sma_cross", params, data=data, end_ms=_ms("2025-08-18"))
        return list(run_replay(config).trades)

    on_minutes = trades(BTC_2025)

    assert len(on_minutes) >= 10
    assert trades(hourly) == on_minutes


@pytest.mark.process
def test_a_strategy_finer_than_the_data_is_one_clear_line(hourly: Path) -> None:
    done = barbus("replay", "--strategy", "sma_cross", "--param", "timeframe=15m", "--data", hourly)

    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert "decides on 15m bars, finer than the data's 1h bars" in done.stderr


def test_a_timeframe_that_is_no_whole_number_of_bars_is_refused(tmp_path: Path) -> None:
    three = load_bars(resampled(BTC_2025, "3min", tmp_path / "BTCUSDT_3m.csv"))

    assert three.interval == "3m"
    with pytest.raises(StrategyError, match=r"5m bars, not a whole number of the data's 3m"):
        run_replay(ReplayConfig("sma_cross", {"timeframe": "5m"}), series=three)


def test_a_file_named_for_one_interval_holding_another_is_refused(
    hourly: Path, tmp_path: Path
) -> None:
    misnamed = tmp_path / "BTCUSDT-15m-2025-06.csv"
    misnamed.write_bytes(hourly.read_bytes())

    with pytest.raises(DataError, match=r"its name says 15m bars, but they are 1h apart"):
        load_bars(misnamed)


def test_the_cache_keeps_the_interval_and_counts_gaps_in_minutes(
    hourly: Path, tmp_path: Path
) -> None:
    lines = hourly.read_text().splitlines(keepends=True)
    gappy = tmp_path / "BTCUSDT_1h_gappy.csv"
    gappy.write_text("".join(lines[:100] + lines[103:]))  # three hours missing
    one_shot = BarCache(tmp_path / "a").load(gappy)
    chunked_cache = BarCache(tmp_path / "b", chunk_bytes=4096)
    chunked = chunked_cache.load(gappy)
    [entry] = chunked_cache.entries()

    assert (one_shot.interval, chunked.interval, entry.interval) == ("1h", "1h", "1h")
    assert chunked_cache.chunked_ingests == 1
    assert entry.gaps["count"] == 1
    assert entry.gaps["missing_minutes"] == 3 * 60
    assert one_shot.gaps() == chunked.gaps()
    assert one_shot.gaps().missing_minutes == 180


def test_equity_is_marked_at_each_hourly_close(hourly: Path) -> None:
    series: BarSeries = load_bars(hourly)
    result = run_replay(ReplayConfig("sma_cross", {"timeframe": "1h"}), series=series)
    marks = close_marks(series)

    assert len(result.equity) == len(marks) == len(series) + 1
    assert marks[0] == series.open_time_ms[0]
    assert (marks[1:] - series.open_time_ms).tolist() == [HOUR_MS] * len(series)


def _ms(text: str) -> int:
    return int(pd.Timestamp(text, tz="UTC").value // 1_000_000)


def test_the_python_api_takes_an_hourly_dataframe_and_sweeps_it(
    hourly: Path, tmp_path: Path
) -> None:
    frame = pd.read_csv(hourly)
    frame.index = pd.to_datetime(frame.pop("open_time_ms"), unit="ms", utc=True)
    params: dict[str, str | int | float | bool] = {"timeframe": "1h"}

    result = backtest("metatrend", frame, symbol="BTCUSDT", params=params, start=START, end=END)
    swept = sweep(
        "sma_cross", frame, {"fast": [3, 5]}, params={"timeframe": "4h"}, symbol="BTCUSDT",
        workers=1, parallel=False, out=tmp_path / "sweep",
    )  # fmt: skip

    on_minutes = run_replay(
        ReplayConfig("metatrend", params, data=BTC_2025, start_ms=_ms(START), end_ms=_ms(END))
    )
    assert result.replay.series.interval == "1h"
    assert result.replay.trades == on_minutes.trades
    assert list(swept["status"]) == ["ok", "ok"]
    [written] = (tmp_path / "sweep" / "data").glob("*.parquet")
    assert written.name.startswith("BTCUSDT_1h_frame-")
