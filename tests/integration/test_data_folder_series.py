"""``--data SYMBOL``: a downloaded symbol replayed, batched and served from the data folder.

The folder holds the bundled 2025 sample as the downloader writes it (one barbus CSV a month,
four months). Each reading by symbol is compared with the same command on the bundled file
itself: trades byte for byte, figures equal. The cache counters say which months were parsed.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from barbus import backtest
from barbus.daemon.core.data_folder import DataFolder
from barbus.daemon.core.errors import DataError
from barbus.daemon.core.events import MINUTE_MS, Bar
from barbus.daemon.core.series import BarSeries
from barbus.replay.cache import BarCache
from barbus.replay.folder_series import load_data, resolve_data
from barbus.replay.loader import load_bars
from barbus.replay.periods import parse_time
from barbus.replay.runner import ReplayConfig, run_replay
from tests.conftest import BTC_2025
from tests.kit.processes import Processes, barbus

SYMBOL = "BTCUSDT"
MONTHS = ["2025-05", "2025-06", "2025-07", "2025-08"]


@pytest.fixture(scope="module")
def whole() -> BarSeries:
    return load_bars(BTC_2025)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory, whole: BarSeries) -> Path:
    """A data folder holding the bundled sample, a month file each, as a download writes it."""
    root = tmp_path_factory.mktemp("folder") / "data"
    DataFolder(root).add_bars(SYMBOL, "1m", whole.to_bars())
    return root


def test_the_folder_holds_one_file_a_month(data_dir: Path) -> None:
    files = DataFolder(data_dir).month_files(SYMBOL, "1m")

    assert [p.name for p in files] == [f"{SYMBOL}-1m-{m}.csv" for m in MONTHS]


@pytest.mark.process
def test_replay_by_symbol_is_the_replay_of_the_file_byte_for_byte(
    data_dir: Path, tmp_path: Path
) -> None:
    by_name = barbus(
        "replay", "--strategy", "sma_cross", "--data", "btcusdt", "--data-dir", data_dir,
        "--out", tmp_path / "name", "--no-plot",
    )  # fmt: skip
    by_file = barbus(
        "replay", "--strategy", "sma_cross", "--data", BTC_2025,
        "--out", tmp_path / "file", "--no-plot",
    )  # fmt: skip

    assert by_name.returncode == 0, by_name.stderr
    assert by_file.returncode == 0, by_file.stderr
    trades = (tmp_path / "name" / "trades.csv").read_bytes()
    assert trades == (tmp_path / "file" / "trades.csv").read_bytes()
    assert trades.count(b"\n") > 100
    name, file = (json.loads((tmp_path / d / "summary.json").read_text()) for d in ("name", "file"))
    assert name.pop("data") == str(data_dir / SYMBOL / "1m")
    assert file.pop("data") == str(BTC_2025)
    for timing in ("replay_seconds", "bars_per_second"):
        name.pop(timing), file.pop(timing)
    assert name == file


def test_a_period_across_a_month_boundary_replays_as_the_file_does(data_dir: Path) -> None:
    start, end = parse_time("2025-06-25", "start"), parse_time("2025-07-10", "end")
    folder = resolve_data(SYMBOL, data_dir)
    by_name = run_replay(ReplayConfig("sma_cross", data=folder, start_ms=start, end_ms=end))
    by_file = run_replay(ReplayConfig("sma_cross", data=BTC_2025, start_ms=start, end_ms=end))

    assert len(by_name.trades) > 10
    assert by_name.trades == by_file.trades
    assert by_name.equity.tobytes() == by_file.equity.tobytes()
    assert by_name.series.open_time_ms[0] == start
    assert by_name.series.open_time_ms[-1] == end - MINUTE_MS


def test_only_the_months_a_period_touches_are_parsed(data_dir: Path, tmp_path: Path) -> None:
    cache = BarCache(tmp_path / "cache")
    start, end = parse_time("2025-06-25", "start"), parse_time("2025-07-10", "end")

    series = load_data(data_dir / SYMBOL / "1m", None, cache, start, end)

    assert cache.stats.builds == 2  # June and July: May and August are never read
    assert series.open_time_ms[0] == parse_time("2025-06-01", "june")
    assert series.open_time_ms[-1] == parse_time("2025-08-01", "august") - MINUTE_MS


def test_a_period_inside_one_month_maps_its_cache_entry_without_a_copy(
    data_dir: Path, tmp_path: Path
) -> None:
    cache = BarCache(tmp_path / "cache")
    july = parse_time("2025-07-02", "start"), parse_time("2025-07-09", "end")

    series = load_data(data_dir / SYMBOL / "1m", None, cache, *july)
    month = cache.load(data_dir / SYMBOL / "1m" / f"{SYMBOL}-1m-2025-07.csv", SYMBOL)

    assert cache.stats.builds == 1
    assert np.shares_memory(series.close, month.close)
    assert not series.close.flags.writeable  # the memory map itself


def test_an_update_parses_again_only_the_month_it_changed(whole: BarSeries, tmp_path: Path) -> None:
    root = tmp_path / "data"
    folder = DataFolder(root)
    folder.add_bars(SYMBOL, "1m", whole.to_bars())
    first = BarCache(tmp_path / "cache")
    load_data(root / SYMBOL / "1m", None, first)
    last = whole.to_bars()[-1]
    one_more = Bar(SYMBOL, "1m", last.open_time_ms + MINUTE_MS, 1.0, 2.0, 0.5, 1.5, 3.0)
    folder.add_bars(SYMBOL, "1m", [one_more])

    second = BarCache(tmp_path / "cache")
    series = load_data(root / SYMBOL / "1m", None, second)

    assert first.stats.builds == 4
    assert (second.stats.disk_hits, second.stats.builds + second.stats.rebuilds) == (3, 1)
    assert len(series) == len(whole) + 1
    assert series.to_bars()[-1] == one_more


@pytest.mark.process
def test_a_batch_by_symbol_gives_the_figures_of_the_batch_on_the_file(
    data_dir: Path, tmp_path: Path
) -> None:
    grid = ("--strategy", "sma_cross", "--grid", "fast=5,10", "--period", "2025-06-01:2025-07-15")
    name = barbus("batch", *grid, "--data", SYMBOL, "--data-dir", data_dir, "--out", tmp_path / "n")
    file = barbus("batch", *grid, "--data", BTC_2025, "--out", tmp_path / "f")

    assert name.returncode == 0, name.stderr
    assert file.returncode == 0, file.stderr
    rows = {d: _rows(tmp_path / d / "results.csv") for d in ("n", "f")}
    assert {r["file"] for r in rows["n"]} == {f"{SYMBOL}/1m"}
    figures = ("params", "final_equity", "sharpe", "trades", "max_drawdown_pct")
    assert [[r[k] for k in figures] for r in rows["n"]] == [
        [r[k] for k in figures] for r in rows["f"]
    ]
    assert len(rows["n"]) == 2


@pytest.mark.process
def test_a_batch_spec_names_the_symbol_and_finds_it_through_the_environment(
    data_dir: Path, tmp_path: Path
) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text(
        '[[run]]\nstrategy = "sma_cross"\ndata = ["BTCUSDT"]\nstart = "2025-08-01"\n'
        "grid = { fast = [5, 10] }\n",
        encoding="utf-8",
    )

    done = barbus("batch", spec, "--out", tmp_path / "out", env={"BARBUS_DATA_DIR": str(data_dir)})

    assert done.returncode == 0, done.stderr
    rows = _rows(tmp_path / "out" / "results.csv")
    assert [r["file"] for r in rows] == [f"{SYMBOL}/1m"] * 2
    assert {r["data"] for r in rows} == {str(data_dir / SYMBOL / "1m")}


@pytest.mark.process
def test_the_sim_exchange_serves_a_symbol_of_the_data_folder_within_start_and_end(
    data_dir: Path, whole: BarSeries, tmp_path: Path
) -> None:
    period = ("2025-06-30T20:00", "2025-07-01T04:00")  # across the June/July boundary
    expected = whole.between(parse_time(period[0], "start"), parse_time(period[1], "end"))
    procs = Processes(tmp_path / "processes")
    try:
        _, port = procs.sim(
            Path(SYMBOL), "--data-dir", str(data_dir), "--start", period[0], "--end", period[1],
            history=len(expected) + 1, exit_at_end=False,
        )  # fmt: skip
        done = barbus(
            "data", "download", SYMBOL, "--start", period[0], "--end", period[1],
            "--rest-url", f"http://127.0.0.1:{port}", "--data-dir", tmp_path / "copy",
        )  # fmt: skip
    finally:
        procs.close()

    assert done.returncode == 0, done.stderr
    copy = load_data(tmp_path / "copy" / SYMBOL / "1m")
    assert len(expected) == 480
    for column in ("open_time_ms", "open", "high", "low", "close", "volume"):
        assert getattr(copy, column).tobytes() == getattr(expected, column).tobytes(), column


@pytest.mark.process
def test_the_sim_exchange_command_takes_a_symbol_and_refuses_an_empty_period(
    data_dir: Path,
) -> None:
    done = barbus(
        "sim-exchange", "--data", SYMBOL, "--data-dir", data_dir,
        "--start", "2026-01-01", "--port", "0",
    )  # fmt: skip

    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert "no bars in the requested period" in done.stderr
    assert "it starts after the data ends" in done.stderr


@pytest.mark.process
@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("ETHUSDT", "no ETHUSDT in the data folder"),
        ("BTCUSDT:1h", "holds BTCUSDT at 1m only, not 1h"),
    ],
)
def test_a_symbol_the_folder_lacks_is_one_line_that_says_how_to_get_it(
    data_dir: Path, value: str, says: str
) -> None:
    done = barbus("replay", "--strategy", "sma_cross", "--data", value, "--data-dir", data_dir)

    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert says in done.stderr
    if value == "ETHUSDT":
        assert "barbus data download ETHUSDT --start DATE" in done.stderr


def test_a_symbol_held_at_several_intervals_but_not_1m_must_say_which(tmp_path: Path) -> None:
    folder = DataFolder(tmp_path)
    hour = 3_600_000
    for interval in ("1h", "4h"):
        bars = [Bar(SYMBOL, interval, 1_751_328_000_000 + i * hour, 1, 1, 1, 1, 1) for i in (0, 4)]
        folder.add_bars(SYMBOL, interval, bars)

    with pytest.raises(DataError, match=r"holds BTCUSDT at 1h, 4h; say which, e\.g\. "):
        resolve_data(SYMBOL, tmp_path)
    assert resolve_data("BTCUSDT:4h", tmp_path) == tmp_path / SYMBOL / "4h"


def test_a_file_whose_name_reads_as_a_symbol_stays_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("BTCUSDT").write_bytes(BTC_2025.read_bytes())

    assert resolve_data("BTCUSDT", tmp_path / "empty") == Path("BTCUSDT")
    assert resolve_data("btc.csv", tmp_path / "empty") == Path("btc.csv")  # a file name: as is


def test_a_month_file_that_overlaps_the_one_before_is_refused_naming_both(
    whole: BarSeries, tmp_path: Path
) -> None:
    folder = DataFolder(tmp_path)
    folder.add_bars(SYMBOL, "1m", whole.to_bars()[:20_000])  # May and a little of June
    june = folder.month_path(SYMBOL, "1m", "2025-06")
    may = folder.month_path(SYMBOL, "1m", "2025-05")
    stray = may.read_text().splitlines()[-1]  # May's last bar, also in June's file
    june.write_text(june.read_text().replace("\n", f"\n{stray}\n", 1))

    with pytest.raises(DataError, match=r"2025-06\.csv: starts at 2025-05-31.*2025-05\.csv"):
        load_data(tmp_path / SYMBOL / "1m")


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return sorted(csv.DictReader(handle), key=lambda r: r["params"])


def test_the_python_api_backtests_a_symbol_of_the_data_folder(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BARBUS_DATA_DIR", str(data_dir))

    by_name = backtest("sma_cross", "BTCUSDT", start="2025-07-20", end="2025-08-05")
    by_file = backtest("sma_cross", BTC_2025, start="2025-07-20", end="2025-08-05")

    assert len(by_name.replay.trades) > 10
    assert by_name.replay.trades == by_file.replay.trades
    assert by_name.replay.series.source == str(data_dir / SYMBOL / "1m")
